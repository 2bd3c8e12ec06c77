//! `billing backfill`'s engine and the reconcile run against localstripe (a stateful Stripe
//! stand-in: `LOCALSTRIPE_URL`, or one started for the test binary) and moto: changes made while no
//! endpoint delivered are applied from Stripe's `/v1/events` and every user's access equals
//! Stripe's truth; a second run applies nothing new; a 429 storm (a small proxy in front of
//! localstripe answering every other request 429, the first among them: localstripe has no rate limit) slows the walk
//! and never fails it. localstripe lacks `types[]` on `/v1/events` (it answers 400 "Unexpected
//! types"); the walk sends it only for an explicit `--types` and filters by type itself, so
//! these runs use the default types and need no fake for it.

use crate::helpers::*;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use billing::adapters::stripe_list::StripeList;
use billing::backfill::{Range, StripeEvents, Summary, TypeFilter};
use billing::reconcile::Settings;
use billing::telemetry::Counter;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_test_backfill_suite";

/// `LOCALSTRIPE_URL` when set (`scripts/start-localstripe`), else one started for this binary.
fn localstripe() -> String {
    std::env::var("LOCALSTRIPE_URL").unwrap_or_else(|_| crate::localstripe::shared_url().to_owned())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// A form request to localstripe; its JSON answer.
async fn stripe(method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
    let response = client()
        .request(method, format!("{}/v1/{path}", localstripe()))
        .bearer_auth(KEY)
        .form(form)
        .send()
        .await
        .expect("localstripe answers");
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A customer of `user` with a subscription to a fresh plan: the subscription's id.
async fn subscriber(user: &str) -> String {
    let product = stripe(
        reqwest::Method::POST,
        "products",
        &[("name", "Pro"), ("type", "service")],
    )
    .await;
    let plan = stripe(
        reqwest::Method::POST,
        "plans",
        &[
            ("amount", "1000"),
            ("currency", "usd"),
            ("interval", "month"),
            ("product", product["id"].as_str().expect("product")),
        ],
    )
    .await;
    // localstripe needs a payment method to charge the first invoice.
    let pm = stripe(
        reqwest::Method::POST,
        "payment_methods",
        &[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2040"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    let pm = pm["id"].as_str().expect("payment method");
    let customer = stripe(
        reqwest::Method::POST,
        "customers",
        &[
            ("email", "someone@example.com"),
            ("metadata[user_id]", user),
            ("payment_method", pm),
            ("invoice_settings[default_payment_method]", pm),
        ],
    )
    .await;
    let customer = customer["id"].as_str().expect("customer");
    let sub = stripe(
        reqwest::Method::POST,
        "subscriptions",
        &[
            ("customer", customer),
            ("items[0][plan]", plan["id"].as_str().expect("plan")),
            ("metadata[user_id]", user),
        ],
    )
    .await;
    sub["id"].as_str().expect("subscription").to_owned()
}

/// Stripe's truth for a subscription: whether it grants access now.
async fn stripe_grants(sub: &str) -> bool {
    let s = stripe(reqwest::Method::GET, &format!("subscriptions/{sub}"), &[]).await;
    matches!(s["status"].as_str(), Some("active" | "trialing"))
}

async fn our_grants(app: &TestApp, user: &str) -> bool {
    let (status, body) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["status"] == "active" || body["status"] == "trialing"
}

fn list_client(base: &str) -> Arc<StripeList> {
    quick_list(base, KEY, 2, billing::adapters::stripe_list::PAGE_LIMIT)
}

async fn backfill(app: &TestApp, base: &str, since: i64) -> Summary {
    backfill_until(app, base, since, None).await
}

/// A backfill of `[since, until]` (`None`: up to now).
async fn backfill_until(app: &TestApp, base: &str, since: i64, until: Option<i64>) -> Summary {
    let source = StripeEvents::new(list_client(base), &TypeFilter::stripe_subscribed());
    let range = Range::checked(since, until, now()).expect("range");
    walk_events(app, &source, range)
        .await
        .expect("the walk finishes")
}

/// Two users subscribe and one cancels while no endpoint delivers anything.
async fn changes_nobody_delivered() -> (i64, [(String, String); 2]) {
    let since = now() - 2;
    let (kept, gone) = (unique("u-kept"), unique("u-gone"));
    let kept_sub = subscriber(&kept).await;
    let gone_sub = subscriber(&gone).await;
    stripe(
        reqwest::Method::DELETE,
        &format!("subscriptions/{gone_sub}"),
        &[],
    )
    .await;
    (since, [(kept, kept_sub), (gone, gone_sub)])
}

#[tokio::test]
async fn moto_localstripe_backfill_applies_what_no_endpoint_delivered_and_a_second_run_nothing() {
    let app = spawn_moto(false).await;
    app.clock.set(now());
    let (since, users) = changes_nobody_delivered().await;
    for (user, _) in &users {
        assert!(!our_grants(&app, user).await, "nothing delivered yet");
    }

    // The one localstripe serves every test at once: the two runs read one closed window, so
    // another test's events created between the runs cannot enter the second. The window
    // closes at a second that has passed before the first run reads it.
    let until = now();
    while now() <= until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = backfill_until(&app, &localstripe(), since, Some(until)).await;
    assert!(first.total().applied > 0, "{:?}", first.lines());
    for (user, sub) in &users {
        assert_eq!(
            our_grants(&app, user).await,
            stripe_grants(sub).await,
            "{user}"
        );
    }
    assert!(
        our_grants(&app, &users[0].0).await,
        "the kept subscription grants access"
    );

    // Again over the same range: every event is a duplicate, nothing applies twice.
    let second = backfill_until(&app, &localstripe(), since, Some(until)).await;
    assert_eq!(second.total().missed(), 0, "{:?}", second.lines());
    assert_eq!(
        second.total().duplicate,
        first.total().missed() + first.total().duplicate
    );
}

/// A proxy in front of localstripe answering every `every`-th request 429.
struct Storm {
    upstream: String,
    every: u64,
    requests: AtomicU64,
    limited: AtomicU64,
}

async fn storm(
    State(storm): State<Arc<Storm>>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let n = storm.requests.fetch_add(1, Ordering::SeqCst) + 1;
    // The first request is refused too, so even a walk of one page meets the storm.
    if (n - 1) % storm.every == 0 {
        storm.limited.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::TOO_MANY_REQUESTS, "{}").into_response();
    }
    let url = format!(
        "{}{}{}",
        storm.upstream,
        uri.path(),
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut request = client().get(url);
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth.clone());
    }
    let answer = request.send().await.expect("localstripe answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    (status, answer.bytes().await.expect("body")).into_response()
}

async fn serve_storm(every: u64) -> (String, Arc<Storm>) {
    let state = Arc::new(Storm {
        upstream: localstripe(),
        every,
        requests: AtomicU64::new(0),
        limited: AtomicU64::new(0),
    });
    let router = axum::Router::new()
        .fallback(axum::routing::get(storm))
        .with_state(state.clone());
    (serve_on_loopback(router).await, state)
}

#[tokio::test]
async fn moto_localstripe_backfill_under_a_429_storm_finishes_with_the_same_access() {
    let app = spawn_moto(false).await;
    app.clock.set(now());
    let (since, users) = changes_nobody_delivered().await;
    let (base, storm) = serve_storm(2).await;
    let summary = backfill(&app, &base, since).await;
    assert!(
        storm.limited.load(Ordering::SeqCst) > 0,
        "the storm answered 429s"
    );
    assert!(summary.total().applied > 0);
    for (user, sub) in &users {
        assert_eq!(
            our_grants(&app, user).await,
            stripe_grants(sub).await,
            "{user}"
        );
    }
}

/// The reconcile run on moto and localstripe: a deadline that closes after a few steps cuts the
/// first run off; the next one resumes from the checkpoint in the table and ends with the same
/// access as Stripe's, having applied each missed event once.
#[tokio::test]
async fn moto_localstripe_reconcile_cut_off_by_its_deadline_resumes_from_its_checkpoint() {
    let app = spawn_moto(false).await;
    app.clock.set(now());
    let (_, users) = changes_nobody_delivered().await;
    let list = list_client(&localstripe());
    // The sample would list every test's subscriptions in the shared localstripe; drift is
    // tested in memory (reconcile_tests.rs).
    let settings = Settings {
        first_lookback_secs: 600,
        sample: 0,
        ..Settings::default()
    };
    let reconciler = moto_reconciler(&app, &list, None, settings);
    let steps = AtomicU64::new(0);
    let closing = || {
        if steps.fetch_add(1, Ordering::SeqCst) < 4 {
            Duration::from_secs(600)
        } else {
            Duration::from_secs(1)
        }
    };
    let first = reconciler.run(&closing).await.expect("first run");
    assert!(first.cut_off, "{first:?}");
    let plenty = || Duration::from_secs(600);
    let second = reconciler.run(&plenty).await.expect("second run");
    assert!(!second.cut_off, "{second:?}");
    let missed = first.events.total().missed() + second.events.total().missed();
    assert_eq!(app.metrics.count(Counter::MissedEvents), missed);
    for (user, sub) in &users {
        assert_eq!(
            our_grants(&app, user).await,
            stripe_grants(sub).await,
            "{user}"
        );
    }
    // Nothing left: a third run applies nothing.
    let third = reconciler.run(&plenty).await.expect("third run");
    assert_eq!(third.events.total().missed(), 0, "{third:?}");
}
