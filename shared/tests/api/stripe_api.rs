//! `StripeApi` against a fake Stripe API on 127.0.0.1 (no network): what it sends, how it reads
//! each answer, its bounds, and same-second ties settled through it end to end.

use crate::helpers::*;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::adapters::faults::FaultPlan;
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::adapters::stripe_api::{StripeApi, StripeApiKey, STRIPE_VERSION};
use billing::app::App;
use billing::config::Config;
use billing::pipeline::Pipeline;
use billing::ports::{FixedClock, ProviderApi};
use billing::providers::stripe::signature::WebhookSecret;
use billing::providers::stripe::Family;
use billing::providers::stripe::StripeProvider;
use billing::telemetry::{Counter, Metrics};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "rk_test_fake_restricted_key_0123456789";

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    stripe_version: Option<String>,
    stripe_account: Option<String>,
}

/// A scripted answer: status and `Stripe-Should-Retry`, answered before the normal behaviour.
type Scripted = (StatusCode, Option<&'static str>);

/// Stripe's `GET /v1/subscriptions/{id}`: scripted answers first, then the object if known,
/// else Stripe's 404. `hang` makes it accept requests and never answer.
#[derive(Default)]
struct FakeStripe {
    objects: Mutex<HashMap<String, Value>>,
    script: Mutex<VecDeque<Scripted>>,
    seen: Mutex<Vec<Seen>>,
    hang: bool,
}

impl FakeStripe {
    fn with(objects: &[Value]) -> Self {
        let objects = objects
            .iter()
            .map(|o| (o["id"].as_str().expect("id").to_owned(), o.clone()))
            .collect();
        Self {
            objects: Mutex::new(objects),
            ..Self::default()
        }
    }

    fn script(self, answers: &[Scripted]) -> Self {
        self.script
            .lock()
            .expect("lock")
            .extend(answers.iter().copied());
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn answer(
    State(fake): State<Arc<FakeStripe>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    fake.seen.lock().expect("lock").push(Seen {
        path: format!("/v1/subscriptions/{id}"),
        authorization: header(&headers, "authorization"),
        stripe_version: header(&headers, "stripe-version"),
        stripe_account: header(&headers, "stripe-account"),
    });
    if fake.hang {
        std::future::pending::<()>().await;
    }
    let scripted = fake.script.lock().expect("lock").pop_front();
    if let Some((status, should_retry)) = scripted {
        // Stripe's 401 names the key it got (masked); this fake echoes it whole, so a client
        // that copied the body into its error would leak it.
        let body = json!({"error": {"type": "api_error",
            "message": format!("Invalid API Key provided: {KEY}")}});
        let mut response = (status, Json(body)).into_response();
        if let Some(v) = should_retry {
            response
                .headers_mut()
                .insert("stripe-should-retry", v.parse().expect("header value"));
        }
        return response;
    }
    let object = fake.objects.lock().expect("lock").get(&id).cloned();
    match object {
        Some(o) => Json(o).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                "message": format!("No such subscription: '{id}'")}}),
            ),
        )
            .into_response(),
    }
}

/// Serves `fake` on 127.0.0.1 (a free port) for the rest of the test; returns its base URL.
async fn spawn_fake(fake: Arc<FakeStripe>) -> String {
    let router = axum::Router::new()
        .route("/v1/subscriptions/{id}", axum::routing::get(answer))
        .with_state(fake);
    serve_on_loopback(router).await
}

async fn api_for(fake: &Arc<FakeStripe>) -> StripeApi {
    let base = spawn_fake(fake.clone()).await;
    StripeApi::new(
        &base,
        StripeApiKey::parse(KEY).expect("key"),
        quick_bounds(),
    )
    .expect("client")
}

fn sub(id: &str, status: &str) -> Value {
    subscription(id, "cus_tie", status, Some("user_tie"))
}

#[tokio::test]
async fn retrieves_a_subscription_with_the_bearer_key_and_pinned_version() {
    let fake = Arc::new(FakeStripe::with(&[sub("sub_api1", "active")]));
    let api = api_for(&fake).await;
    let got = api
        .retrieve(None, "subscriptions/sub_api1")
        .await
        .expect("answer");
    assert_eq!(got, Some(sub("sub_api1", "active")));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/v1/subscriptions/sub_api1");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(seen[0].stripe_version.as_deref(), Some(STRIPE_VERSION));
    assert_eq!(STRIPE_VERSION, "2025-06-30.basil");
    assert_eq!(seen[0].stripe_account, None, "the platform's own object");
}

/// A connected account's object is read with the platform's key in that account
/// (`Stripe-Account`), as a tie refetch of a Connect event does.
#[tokio::test]
async fn a_connected_accounts_object_is_read_with_its_stripe_account_header() {
    let fake = Arc::new(FakeStripe::with(&[sub("sub_api1", "active")]));
    let api = api_for(&fake).await;
    let account = billing::domain::ids::Account::parse("acct_1Connected0001").expect("id");
    let got = api.retrieve(Some(account), "subscriptions/sub_api1").await;
    assert_eq!(got, Ok(Some(sub("sub_api1", "active"))));
    let seen = fake.seen();
    assert_eq!(
        seen[0].stripe_account.as_deref(),
        Some("acct_1Connected0001")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
}

#[tokio::test]
async fn an_unknown_subscription_is_none() {
    let fake = Arc::new(FakeStripe::default());
    let api = api_for(&fake).await;
    let got = api.retrieve(None, "subscriptions/sub_missing").await;
    assert_eq!(got, Ok(None));
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_refused_key_is_an_error_that_never_shows_the_key() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let fake = Arc::new(FakeStripe::default().script(&[(status, None)]));
        let api = api_for(&fake).await;
        let e = api
            .retrieve(None, "subscriptions/sub_api1")
            .await
            .expect_err("refused");
        let text = e.to_string();
        println!("{status}: {text}");
        assert!(text.contains("did not accept the API key"), "{text}");
        assert!(text.contains(&status.as_u16().to_string()), "{text}");
        assert!(
            !text.contains(KEY) && !text.contains("fake_restricted"),
            "{text}"
        );
        assert!(!format!("{e:?}").contains(KEY));
        // Another attempt would be refused the same way.
        assert_eq!(fake.seen().len(), 1);
    }
}

#[tokio::test]
async fn a_server_error_is_retried_then_answered() {
    let fake = Arc::new(
        FakeStripe::with(&[sub("sub_api1", "active")])
            .script(&[(StatusCode::INTERNAL_SERVER_ERROR, None)]),
    );
    let api = api_for(&fake).await;
    let got = api
        .retrieve(None, "subscriptions/sub_api1")
        .await
        .expect("answer");
    assert_eq!(got, Some(sub("sub_api1", "active")));
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn throttling_and_server_errors_stop_at_max_attempts_or_when_stripe_says_so() {
    let fake = Arc::new(FakeStripe::with(&[sub("sub_api1", "active")]).script(&[
        (StatusCode::TOO_MANY_REQUESTS, None),
        (StatusCode::BAD_GATEWAY, None),
        (StatusCode::SERVICE_UNAVAILABLE, None),
    ]));
    let api = api_for(&fake).await;
    let e = api
        .retrieve(None, "subscriptions/sub_api1")
        .await
        .expect_err("three failures");
    println!("{e}");
    assert!(e.to_string().contains("status 503"), "{e}");
    assert_eq!(fake.seen().len(), 3, "max_attempts is 3");
    // `Stripe-Should-Retry: false`: another attempt cannot succeed.
    let fake = Arc::new(
        FakeStripe::with(&[sub("sub_api1", "active")])
            .script(&[(StatusCode::TOO_MANY_REQUESTS, Some("false"))]),
    );
    let api = api_for(&fake).await;
    assert!(api.retrieve(None, "subscriptions/sub_api1").await.is_err());
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error_within_the_bound() {
    let fake = Arc::new(FakeStripe {
        hang: true,
        ..FakeStripe::default()
    });
    let api = api_for(&fake).await;
    let started = Instant::now();
    let e = api
        .retrieve(None, "subscriptions/sub_api1")
        .await
        .expect_err("no answer");
    let elapsed = started.elapsed();
    println!(
        "no answer: {e} after {} ms (attempt {} ms, operation {} ms, {} attempts made)",
        elapsed.as_millis(),
        quick_bounds().attempt.as_millis(),
        quick_bounds().operation.as_millis(),
        fake.seen().len()
    );
    assert!(e.to_string().contains("timeout"), "{e}");
    // Generous: the bound is 1 s; this only catches a call that waits for ever.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Same-second ties settled through the API, end to end
// ---------------------------------------------------------------------------------------------

/// When both tie events happened: one second, a minute before the signatures.
const TIE_SECOND: i64 = NOW - 60;

/// `customer.subscription.updated` to `status` from `was`, at `TIE_SECOND`.
fn update(id: &str, status: &str, was: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&event(
        id,
        "customer.subscription.updated",
        TIE_SECOND,
        sub("sub_tie", status),
    ))
    .expect("json");
    body["data"]["previous_attributes"] = json!({"status": was});
    serde_json::to_vec(&body).expect("json")
}

/// Two updates of one second that revert each other: each one's `previous_attributes` are the
/// other's values, so either could be the later. Without an answer from the API the greater id
/// (`evt_tie_b`, past_due) is taken.
fn tie_events() -> [Vec<u8>; 2] {
    [
        update("evt_tie_a", "active", "past_due"),
        update("evt_tie_b", "past_due", "active"),
    ]
}

/// An in-memory app whose Stripe provider reads the API through `api`.
fn app_with_api(api: Arc<dyn ProviderApi>) -> TestApp {
    let memory = Arc::new(InMemoryBillingStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let secrets = Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)]));
    let settings = settings(false);
    let provider = StripeProvider::new(
        secrets.clone(),
        clock.clone(),
        metrics.clone(),
        settings.clone(),
    )
    .with_api(api);
    let service = Arc::new(
        Pipeline::new(
            memory.clone(),
            clock.clone(),
            metrics.clone(),
            settings.tiers,
        )
        .with_provider(Arc::new(provider)),
    );
    TestApp {
        router: billing::http::local_router(service.clone()),
        service,
        store: memory.clone(),
        memory: Some(memory),
        dynamo: None,
        clock,
        metrics,
        secrets,
        faults: Arc::new(FaultPlan::default()),
    }
}

/// Delivers the tie in `order`; every delivery must be answered 200 and applied.
async fn deliver_tie(app: &TestApp, order: [usize; 2]) -> Value {
    let events = tie_events();
    for i in order {
        let (status, body) = app.post(Family::Subscription, &events[i]).await;
        assert_eq!(status, 200, "{order:?}: {body}");
        assert_eq!(body["state"], "applied", "{order:?}: {body}");
    }
    let (status, access) = app.get("/users/user_tie/access").await;
    assert_eq!(status, 200);
    access
}

#[tokio::test]
async fn a_same_second_tie_follows_what_the_stripe_api_answers_in_both_orders() {
    for (current, grants) in [("active", true), ("past_due", false)] {
        for order in [[0, 1], [1, 0]] {
            let fake = Arc::new(FakeStripe::with(&[sub("sub_tie", current)]));
            let app = app_with_api(Arc::new(api_for(&fake).await));
            let access = deliver_tie(&app, order).await;
            assert_eq!(access["status"], current, "{current} {order:?}: {access}");
            assert_eq!(
                access["grants_paid_tier"], grants,
                "{current} {order:?}: {access}"
            );
            assert_eq!(app.metrics.count(Counter::TiesUnresolved), 0, "{order:?}");
            let seen = fake.seen();
            assert!(
                !seen.is_empty() && seen.iter().all(|s| s.path == "/v1/subscriptions/sub_tie"),
                "{seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_stripe_api_leaves_the_tie_unresolved_and_the_delivery_answered() {
    for order in [[0, 1], [1, 0]] {
        let fake = Arc::new(
            FakeStripe::with(&[sub("sub_tie", "active")])
                .script(&[(StatusCode::INTERNAL_SERVER_ERROR, None); 3]),
        );
        let app = app_with_api(Arc::new(api_for(&fake).await));
        let access = deliver_tie(&app, order).await;
        // The deterministic choice: the greater event id, past_due.
        assert_eq!(access["status"], "past_due", "{order:?}: {access}");
        assert_eq!(access["grants_paid_tier"], false, "{order:?}: {access}");
        assert_eq!(app.metrics.count(Counter::TiesUnresolved), 1, "{order:?}");
        assert_eq!(fake.seen().len(), 3, "every attempt was made");
    }
}

// ---------------------------------------------------------------------------------------------
// The product's wiring: `App::with_sdk` with the key in Secrets Manager (moto)
// ---------------------------------------------------------------------------------------------

async fn secret_holding(value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(&sdk_config())
        .create_secret()
        .name(unique("stripe-api-key"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

/// `App::with_sdk` configured through the Lambda's variables, the key read from `arn`.
async fn wire(arn: &str, base: &str) -> Result<App, String> {
    let mut vars: HashMap<String, String> = [
        ("BILLING_TABLE", unique("stripe-api").as_str()),
        ("STRIPE_LIVEMODE", "false"),
        ("STRIPE_WEBHOOK_SECRETS_SUBSCRIPTION", SECRET),
        ("STRIPE_API_KEY_ARN", arn),
        ("STRIPE_API_BASE", base),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert("BILLING_AWS_TIMEOUT_MS".into(), "3000".into());
    let config = Config::from_lookup(|k| vars.get(k).cloned(), &[Family::Subscription], None)
        .expect("config");
    App::with_sdk(&sdk_config(), config, Metrics::memory()).await
}

#[tokio::test]
async fn moto_a_stripe_api_key_in_secrets_manager_settles_ties() {
    let fake = Arc::new(FakeStripe::with(&[sub("sub_tie", "active")]));
    let base = spawn_fake(fake.clone()).await;
    let arn = secret_holding(KEY).await;
    let app = wire(&arn, &base).await.expect("app");
    app.store.create_table_if_missing().await.expect("table");
    let router = billing::http::local_router(app.service.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for body in tie_events() {
        let request = http::Request::post("/webhooks/stripe/subscription")
            .header("stripe-signature", signed(&body, now))
            .body(axum::body::Body::from(body))
            .expect("request");
        let response = tower::ServiceExt::oneshot(router.clone(), request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200);
    }
    let seen = fake.seen();
    assert!(!seen.is_empty(), "the API was never called");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some(&*format!("Bearer {KEY}"))),
        "{seen:?}"
    );
    assert_eq!(app.metrics.count(Counter::TiesUnresolved), 0);
}

#[tokio::test]
async fn moto_an_invalid_key_in_secrets_manager_stops_the_cold_start_without_showing_it() {
    let base = spawn_fake(Arc::new(FakeStripe::default())).await;
    for (value, why) in [
        ("pk_test_publishable_in_the_secret", "publishable"),
        ("sk_live_wrong_mode_in_the_secret", "STRIPE_LIVEMODE=false"),
    ] {
        let arn = secret_holding(value).await;
        let Err(e) = wire(&arn, &base).await else {
            panic!("{value}: started");
        };
        println!("{e}");
        assert!(
            e.starts_with("STRIPE_API_KEY_ARN") && e.contains(&arn),
            "{e}"
        );
        assert!(e.contains(why), "{e}");
        assert!(!e.contains(value), "{e}");
    }
}
