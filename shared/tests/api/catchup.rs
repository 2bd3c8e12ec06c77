//! The catch-up pieces (`billing::catchup`): checkpoints on moto, the Stripe list client
//! against a fake list endpoint on 127.0.0.1 (pages, 429 storms, `Stripe-Should-Retry`), and
//! the trusted pipeline entry.

use crate::helpers::*;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use billing::adapters::checkpoints::{check_contract, DynamoCheckpoints};
use billing::adapters::stripe_api::StripeApiKey;
use billing::adapters::stripe_list::{ListBounds, StripeList};
use billing::catchup::{feed, Tally};
use billing::domain::ids::{Provider, UserId};
use billing::pipeline::{DuplicateBy, Outcome};
use billing::ports::LedgerState;
use billing::providers::stripe::Family;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn moto_checkpoints_keep_their_contract_on_dynamodb() {
    let store = moto_store().await;
    let checkpoints =
        DynamoCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk_config()), store.table());
    check_contract(&checkpoints, "import").await;
}

/// `GET /v1/customers`: 250 customers in pages, every `every`-th request answered `status`
/// (with `Stripe-Should-Retry` when given) instead.
struct FakeList {
    requests: AtomicU64,
    every: u64,
    status: StatusCode,
    should_retry: Option<&'static str>,
    queries: Mutex<Vec<HashMap<String, String>>>,
}

impl FakeList {
    fn new(every: u64, status: StatusCode, should_retry: Option<&'static str>) -> Arc<Self> {
        Arc::new(Self {
            requests: AtomicU64::new(0),
            every,
            status,
            should_retry,
            queries: Mutex::new(Vec::new()),
        })
    }
}

/// The query's pairs, decoded.
fn pairs(raw: Option<String>) -> HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", raw.unwrap_or_default())).expect("url");
    url.query_pairs().into_owned().collect()
}

async fn customers(State(fake): State<Arc<FakeList>>, RawQuery(raw): RawQuery) -> Response {
    let q = pairs(raw);
    let n = fake.requests.fetch_add(1, Ordering::SeqCst) + 1;
    fake.queries.lock().expect("lock").push(q.clone());
    if fake.every > 0 && n % fake.every == 0 {
        let mut r = (fake.status, "{}").into_response();
        if let Some(v) = fake.should_retry {
            r.headers_mut()
                .insert("stripe-should-retry", v.parse().expect("header"));
        }
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let start = q
        .get("starting_after")
        .and_then(|s| s.strip_prefix("cus_"))
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(0, |i| i + 1);
    let end = (start + limit).min(250);
    let data: Vec<Value> = (start..end)
        .map(|i| json!({"id": format!("cus_{i:04}"), "object": "customer"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "has_more": end < 250})).into_response()
}

async fn serve(fake: Arc<FakeList>) -> String {
    let router = axum::Router::new()
        .route("/v1/customers", axum::routing::get(customers))
        .with_state(fake);
    serve_on_loopback(router).await
}

fn quick() -> ListBounds {
    ListBounds {
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_attempts: 3,
        ..ListBounds::default()
    }
}

fn list_client(base: &str, bounds: ListBounds) -> StripeList {
    let key = StripeApiKey::parse("rk_test_catchup").expect("key");
    StripeList::new(base, &key, bounds, 2, 1000).expect("client")
}

/// Every page of the fake, following `starting_after`.
async fn all_ids(list: &StripeList) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = list
            .page(
                "customers",
                &[("email", "a+b@example.com")],
                cursor.as_deref(),
            )
            .await
            .map_err(|e| e.to_string())?;
        ids.extend(
            page.data
                .iter()
                .filter_map(|o| o["id"].as_str().map(str::to_owned)),
        );
        if !page.has_more {
            return Ok(ids);
        }
        cursor = page.last_id().map(str::to_owned);
    }
}

#[tokio::test]
async fn the_list_client_pages_through_everything_with_its_params() {
    let fake = FakeList::new(0, StatusCode::OK, None);
    let list = list_client(&serve(fake.clone()).await, quick());
    let ids = all_ids(&list).await.expect("pages");
    assert_eq!(ids.len(), 250);
    assert_eq!(ids[249], "cus_0249");
    let queries = fake.queries.lock().expect("lock").clone();
    assert_eq!(queries.len(), 3);
    assert_eq!(queries[0]["limit"], "100");
    assert_eq!(queries[0]["email"], "a+b@example.com");
    assert_eq!(queries[1]["starting_after"], "cus_0099");
}

/// Every second request is a 429: more 429s than `max_attempts` allows for other failures,
/// and still every page arrives.
#[tokio::test]
async fn a_429_storm_slows_the_list_down_and_never_fails_it() {
    let fake = FakeList::new(2, StatusCode::TOO_MANY_REQUESTS, None);
    let list = list_client(&serve(fake.clone()).await, quick());
    let ids = all_ids(&list).await.expect("finishes under 429s");
    assert_eq!(ids.len(), 250);
    assert_eq!(list.stats.rate_limited.load(Ordering::Relaxed), 2);
    // A storm longer than max_attempts (3): 429 on every request but each 5th success.
    let storm = Arc::new(FakeList {
        requests: AtomicU64::new(0),
        every: 0,
        status: StatusCode::OK,
        should_retry: None,
        queries: Mutex::new(Vec::new()),
    });
    let base = serve_storm(storm.clone(), 5).await;
    let list = list_client(&base, quick());
    let page = list
        .page("customers", &[], None)
        .await
        .expect("after 4 429s");
    assert_eq!(page.data.len(), 100);
    assert_eq!(storm.requests.load(Ordering::SeqCst), 5);
}

/// 429 on every request but each `ok_every`-th.
async fn serve_storm(fake: Arc<FakeList>, ok_every: u64) -> String {
    async fn storm(State((fake, ok_every)): State<(Arc<FakeList>, u64)>, q: RawQuery) -> Response {
        let n = fake.requests.load(Ordering::SeqCst) + 1;
        if n % ok_every != 0 {
            fake.requests.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::TOO_MANY_REQUESTS, "{}").into_response();
        }
        customers(State(fake), q).await
    }
    let router = axum::Router::new()
        .route("/v1/customers", axum::routing::get(storm))
        .with_state((fake, ok_every));
    serve_on_loopback(router).await
}

#[tokio::test]
async fn should_retry_false_is_final_and_5xx_is_bounded() {
    let fake = FakeList::new(1, StatusCode::TOO_MANY_REQUESTS, Some("false"));
    let list = list_client(&serve(fake.clone()).await, quick());
    let e = list.page("customers", &[], None).await.expect_err("final");
    assert!(e.to_string().contains("status 429"), "{e}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);

    let fake = FakeList::new(1, StatusCode::SERVICE_UNAVAILABLE, None);
    let list = list_client(&serve(fake.clone()).await, quick());
    let e = list
        .page("customers", &[], None)
        .await
        .expect_err("bounded");
    assert!(e.to_string().contains("3 attempts"), "{e}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);

    // A 409 that Stripe says to retry is retried; a 400 is not.
    let fake = FakeList::new(2, StatusCode::CONFLICT, Some("true"));
    let list = list_client(&serve(fake.clone()).await, quick());
    assert_eq!(all_ids(&list).await.expect("retried").len(), 250);
    let fake = FakeList::new(1, StatusCode::BAD_REQUEST, None);
    let list = list_client(&serve(fake.clone()).await, quick());
    assert!(list.page("customers", &[], None).await.is_err());
    assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_missing_list_is_told_apart() {
    let fake = FakeList::new(0, StatusCode::OK, None);
    let list = list_client(&serve(fake).await, quick());
    let missing = list
        .page_if_exists(
            "entitlements/active_entitlements",
            &[("customer", "cus_1")],
            None,
        )
        .await
        .expect("answered");
    assert_eq!(missing, None);
    assert!(list
        .page("entitlements/active_entitlements", &[], None)
        .await
        .is_err());
}

fn customer_event(id: &str, created: i64, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": "customer.updated", "created": created,
        "livemode": false, "api_version": "2025-06-30.basil",
        "data": {"object": {"id": "cus_trusted", "object": "customer",
                            "metadata": {"user_id": user}, "email": null}}
    }))
    .expect("json")
}

#[tokio::test]
async fn a_trusted_body_is_recorded_once_without_a_signature() {
    let app = spawn_memory(false);
    let body = customer_event("evt_trusted_1", NOW - 10, "user_trusted");
    let mut tally = Tally::default();
    let first = feed(&app.service, Family::Charge.endpoint(), &body, &mut tally)
        .await
        .expect("fed");
    assert_eq!(
        first,
        Outcome::Recorded {
            event_id: "evt_trusted_1".into(),
            state: LedgerState::Applied
        }
    );
    let again = app
        .service
        .receive_trusted(Family::Charge.endpoint(), &body)
        .await;
    assert_eq!(
        again,
        Outcome::Duplicate {
            event_id: "evt_trusted_1".into(),
            by: DuplicateBy::Read
        }
    );
    // The same event delivered by a webhook afterwards is a duplicate too.
    let (status, answer) = app.post(Family::Charge, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["state"], "duplicate", "{answer}");
    let customer = app
        .store
        .customer(
            Provider::STRIPE,
            &billing::domain::ids::CustomerId::new("cus_trusted"),
        )
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(customer.value.user(), Some(&UserId::new("user_trusted")));
    // Another mode than STRIPE_LIVEMODE is refused, nothing recorded.
    let live = String::from_utf8(customer_event("evt_trusted_live", NOW, "u"))
        .expect("utf8")
        .replace("\"livemode\":false", "\"livemode\":true");
    let refused = feed(
        &app.service,
        Family::Charge.endpoint(),
        live.as_bytes(),
        &mut tally,
    )
    .await
    .expect("counted");
    assert!(matches!(refused, Outcome::Rejected(_)), "{refused:?}");
    assert_eq!(
        tally,
        Tally {
            applied: 1,
            unchanged: 0,
            parked: 0,
            rejected: 1
        }
    );
}

fn subscription(status: &str) -> Value {
    json!({"id": "sub_snap", "object": "subscription", "customer": "cus_snap", "status": status,
        "cancel_at_period_end": false, "metadata": {"user_id": "user_snap"}, "livemode": false,
        "items": {"data": [{"current_period_start": NOW - 1_000,
            "current_period_end": NOW + 2_592_000,
            "price": {"id": "price_pro_monthly", "product": "prod_pro"}}]}})
}

fn webhook(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": id, "object": "event", "type": kind, "created": created,
        "livemode": false, "data": {"object": object}}),
    )
    .expect("json")
}

/// An import's snapshot is observed at its fetch time: an event Stripe created before the
/// fetch is older (stale), one created after it wins.
#[tokio::test]
async fn a_snapshot_is_ordered_by_its_fetch_time_against_webhook_events() {
    use billing::catchup::snapshot::snapshot_event;
    let app = spawn_memory(false);
    let fetched_at = NOW - 100;
    let (_, body) =
        snapshot_event(&subscription("active"), fetched_at, false, None).expect("snapshot");
    let imported = app
        .service
        .receive_trusted(Family::Subscription.endpoint(), &body)
        .await;
    assert!(
        matches!(
            imported,
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            }
        ),
        "{imported:?}"
    );
    let (_, access) = app.get("/users/user_snap/access").await;
    assert_eq!(access["status"], "active", "{access}");

    // Delivered late, created before the fetch: the snapshot already holds a newer state.
    let older = webhook(
        "evt_before_fetch",
        "customer.subscription.updated",
        fetched_at - 50,
        subscription("past_due"),
    );
    let (_, answer) = app.post(Family::Subscription, &older).await;
    assert_eq!(answer["state"], "stale", "{answer}");
    let (_, access) = app.get("/users/user_snap/access").await;
    assert_eq!(access["status"], "active", "{access}");

    // Created after the fetch: it wins.
    let newer = webhook(
        "evt_after_fetch",
        "customer.subscription.deleted",
        fetched_at + 1,
        subscription("canceled"),
    );
    let (_, answer) = app.post(Family::Subscription, &newer).await;
    assert_eq!(answer["state"], "applied", "{answer}");
    let (_, access) = app.get("/users/user_snap/access").await;
    assert!(access["tier"].is_null(), "{access}");
    assert_eq!(access["status"], "canceled", "{access}");
}
