//! Thin events end to end against a fake of Stripe's API on 127.0.0.1 (no network): the
//! notification is verified with the thin endpoint's own secret, the event and its object are
//! fetched (with `Stripe-Context` for a connected account), and the snapshot applies like its
//! snapshot twin delivered to a family endpoint, once; a fetch that fails answers 503 with
//! nothing written.

use crate::helpers::*;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::adapters::stripe_api::StripeApiKey;
use billing::adapters::stripe_v2::StripeV2Api;
use billing::domain::ids::{CustomerId, Provider};
use billing::emails::kinds::EmailKind;
use billing::http::local_router;
use billing::pipeline::Pipeline;
use billing::ports::{BillingStore, FixedClock};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::{thin, Family, StripeProvider};
use billing::telemetry::Metrics;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const THIN_SECRET: &str = "whsec_test_thin_endpoint_secret";
const KEY: &str = "rk_test_fake_thin_reader_0123456789";
const ACCOUNT: &str = "acct_1ThinConnected01";

/// Each thin fixture: (notification, fetched event, the snapshot twin in `lifecycle/`).
const PAIRS: [(&str, &str, &str); 2] = [
    (
        "stripe-thin/01_v1.checkout.session.completed.notification.json",
        "stripe-thin/01_v1.checkout.session.completed.event.json",
        "stripe/lifecycle/01_checkout.session.completed.json",
    ),
    (
        "stripe-thin/02_v1.customer.subscription.created.notification.json",
        "stripe-thin/02_v1.customer.subscription.created.event.json",
        "stripe/lifecycle/02_customer.subscription.created.json",
    ),
];

/// One request the fake received: its path and its `Stripe-Context`.
type Seen = (String, Option<String>);

/// Stripe's `GET /v2/core/events/{id}` and `GET /v1/…`: scripted statuses first, then what it
/// knows (else 404). `hang` accepts requests and never answers.
#[derive(Default)]
struct FakeStripe {
    answers: Mutex<HashMap<String, Value>>,
    script: Mutex<VecDeque<StatusCode>>,
    seen: Mutex<Vec<Seen>>,
    hang: AtomicBool,
}

impl FakeStripe {
    /// Knows the fixtures' events and, at each event's `related_object.url`, its twin's object.
    fn with_fixtures() -> Self {
        let fake = Self::default();
        for (_, event, twin) in PAIRS {
            let event: Value = serde_json::from_slice(&fixture(event)).expect("event");
            let twin: Value = serde_json::from_slice(&fixture(twin)).expect("twin");
            let url = event["related_object"]["url"].as_str().expect("url");
            fake.know(url, twin["data"]["object"].clone());
            let id = event["id"].as_str().expect("id");
            fake.know(&format!("/v2/core/events/{id}"), event);
        }
        fake
    }

    fn know(&self, path: &str, answer: Value) {
        self.answers
            .lock()
            .expect("lock")
            .insert(path.to_owned(), answer);
    }

    fn forget(&self, path: &str) {
        self.answers.lock().expect("lock").remove(path);
    }

    fn script(&self, statuses: &[StatusCode]) {
        self.script.lock().expect("lock").extend(statuses);
    }

    fn seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

async fn answer(
    State(fake): State<Arc<FakeStripe>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{rest}");
    let context = headers
        .get("stripe-context")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.seen
        .lock()
        .expect("lock")
        .push((path.clone(), context));
    if fake.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if let Some(status) = fake.script.lock().expect("lock").pop_front() {
        return (status, Json(json!({"error": {"type": "api_error"}}))).into_response();
    }
    let known = fake.answers.lock().expect("lock").get(&path).cloned();
    match known {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "resource_missing"}})),
        )
            .into_response(),
    }
}

async fn spawn_fake(fake: Arc<FakeStripe>) -> String {
    let router = axum::Router::new()
        .route("/{*rest}", axum::routing::get(answer))
        .with_state(fake);
    serve_on_loopback(router).await
}

struct ThinApp {
    clock: Arc<FixedClock>,
    service: Arc<Pipeline>,
    router: axum::Router,
    store: Arc<dyn BillingStore>,
    metrics: Arc<Metrics>,
}

/// A pipeline on `store` whose Stripe provider serves the families (`SECRET`) and the thin
/// endpoint (`THIN_SECRET`), resolving with the real v2 client against `base`.
fn thin_app(store: Arc<dyn BillingStore>, base: &str) -> ThinApp {
    thin_app_with(store, base, BTreeSet::new(), THIN_SECRET)
}

/// [`thin_app`] queueing the jobs of `email_kinds`, as the thin function does.
fn thin_app_with(
    store: Arc<dyn BillingStore>,
    base: &str,
    email_kinds: BTreeSet<EmailKind>,
    thin_secret: &str,
) -> ThinApp {
    let secrets = Family::ALL
        .into_iter()
        .map(|f| (f.endpoint(), vec![WebhookSecret::new(SECRET)]))
        .chain([(thin::ENDPOINT, vec![WebhookSecret::new(thin_secret)])]);
    let secrets = Arc::new(billing::adapters::memory::StaticSecrets::new(secrets));
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let key = StripeApiKey::parse(KEY).expect("key");
    let api = StripeV2Api::new(base, &key, quick_bounds()).expect("client");
    let provider = StripeProvider::new(secrets, clock.clone(), metrics.clone(), settings(false))
        .with_thin(Arc::new(api));
    let service = Arc::new(
        Pipeline::new(
            store.clone(),
            clock.clone(),
            metrics.clone(),
            settings(false).tiers,
        )
        .with_provider(Arc::new(provider))
        .with_email_kinds(email_kinds),
    );
    ThinApp {
        clock,
        router: local_router(service.clone()),
        service,
        store,
        metrics,
    }
}

impl ThinApp {
    async fn post(&self, body: &[u8], secret: &str) -> (StatusCode, Value) {
        let header = sign(body, &[WebhookSecret::new(secret)], NOW);
        let req = http::Request::post(thin::PATH)
            .header("content-type", "application/json")
            .header("stripe-signature", header)
            .body(axum::body::Body::from(body.to_vec()))
            .expect("request");
        call_router(&self.router, req).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let req = http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request");
        call_router(&self.router, req).await
    }

    /// The lifecycle's customer and user as JSON, the thin ids written as their twins'.
    async fn model(&self) -> String {
        let customer = self
            .store
            .customer(Provider::STRIPE, &CustomerId::new("cus_life1"))
            .await
            .expect("read")
            .expect("the customer exists")
            .value;
        let (_, access) = self.get("/users/user_42/access").await;
        let mut text =
            serde_json::to_string(&json!({"customer": customer, "access": access})).expect("json");
        for (notification, _, twin) in PAIRS {
            let id = |rel: &str| {
                let v: Value = serde_json::from_slice(&fixture(rel)).expect("json");
                v["id"].as_str().expect("id").to_owned()
            };
            text = text.replace(&id(notification), &id(twin));
        }
        text
    }
}

/// The snapshot twins to the family endpoints of one app, the notifications to the thin endpoint
/// of another: the same customer and the same access.
async fn the_twins_apply_alike(snapshots: TestApp, thin_store: Arc<dyn BillingStore>) {
    let fake = Arc::new(FakeStripe::with_fixtures());
    let app = thin_app(thin_store, &spawn_fake(fake.clone()).await);
    for (notification, _, twin) in PAIRS {
        let (status, body) = snapshots.post_fixture(twin).await;
        assert_eq!(
            (status, &body["state"]),
            (StatusCode::OK, &json!("applied"))
        );
        let (status, body) = app.post(&fixture(notification), THIN_SECRET).await;
        assert_eq!(
            (status, &body["state"]),
            (StatusCode::OK, &json!("applied")),
            "{body}"
        );
    }
    let twin = ThinApp {
        clock: snapshots.clock.clone(),
        service: snapshots.service.clone(),
        router: snapshots.router.clone(),
        store: snapshots.store.clone(),
        metrics: snapshots.metrics.clone(),
    };
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(access["known"], true, "{access}");
    let model = app.model().await;
    assert!(
        model.contains("sub_life1") && model.contains("\"grants\":true"),
        "{model}"
    );
    assert_eq!(model, twin.model().await);
    let seen: Vec<String> = fake.seen().into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        seen,
        [
            "/v2/core/events/evt_test_thin_life_01_checkout",
            "/v1/checkout/sessions/cs_test_life1",
            "/v2/core/events/evt_test_thin_life_02_sub_created",
            "/v1/subscriptions/sub_life1",
        ]
    );
}

#[tokio::test]
async fn a_thin_notification_applies_like_its_snapshot_twin() {
    let thin_store = Arc::new(billing::adapters::memory::InMemoryBillingStore::new());
    the_twins_apply_alike(spawn_memory(false), thin_store).await;
}

#[tokio::test]
async fn moto_a_thin_notification_applies_like_its_snapshot_twin() {
    let thin_store = moto_store().await;
    the_twins_apply_alike(spawn_moto(false).await, thin_store).await;
}

/// Every thin fixture's notification delivered to a thin app on `store` (every email kind on),
/// each applied: what the thin function's code calls (`permissions.rs`).
pub async fn deliver_every_notification(store: Arc<dyn BillingStore>) {
    let fake = Arc::new(FakeStripe::with_fixtures());
    let app = thin_app_with(
        store,
        &spawn_fake(fake).await,
        EmailKind::ALL.into_iter().collect(),
        THIN_SECRET,
    );
    for (notification, _, _) in PAIRS {
        let (status, body) = app.post(&fixture(notification), THIN_SECRET).await;
        assert_eq!(
            (status, &body["state"]),
            (StatusCode::OK, &json!("applied"))
        );
    }
}

/// A memory app with the fixtures' fake, and the subscription's notification.
async fn fixture_app() -> (ThinApp, Arc<FakeStripe>, Vec<u8>) {
    let fake = Arc::new(FakeStripe::with_fixtures());
    let store = Arc::new(billing::adapters::memory::InMemoryBillingStore::new());
    let app = thin_app(store, &spawn_fake(fake.clone()).await);
    (app, fake, fixture(PAIRS[1].0))
}

#[tokio::test]
async fn a_second_thin_delivery_is_a_duplicate() {
    let (app, fake, body) = fixture_app().await;
    let (status, first) = app.post(&body, THIN_SECRET).await;
    assert_eq!(
        (status, &first["state"]),
        (StatusCode::OK, &json!("applied"))
    );
    // Every family's events arrive at the thin endpoint: none is "outside its endpoint".
    assert_eq!(
        app.metrics
            .count(billing::telemetry::Counter::OutsideFamily),
        0
    );
    // `seen` hands over (and forgets) the requests made so far.
    assert!(
        !fake.seen().is_empty(),
        "the first delivery fetched its event"
    );
    let before = app.model_of_sub().await;
    let (status, again) = app.post(&body, THIN_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["state"], "duplicate", "{again}");
    assert_eq!(again["event_id"], "evt_test_thin_life_02_sub_created");
    // Answered from the ledger: Stripe's API is not asked again for an event already recorded.
    assert_eq!(fake.seen(), [], "a redelivery fetched again");
    assert_eq!(app.model_of_sub().await, before);
}

impl ThinApp {
    async fn model_of_sub(&self) -> Value {
        let customer = self
            .store
            .customer(Provider::STRIPE, &CustomerId::new("cus_life1"))
            .await
            .expect("read")
            .map(|c| c.value);
        json!(customer)
    }

    async fn ledger(&self, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/events/stripe/{id}")).await
    }
}

#[tokio::test]
async fn a_failing_fetch_answers_503_writes_nothing_and_the_retry_applies_once() {
    let (app, fake, body) = fixture_app().await;
    let id = "evt_test_thin_life_02_sub_created";
    // Three 503s: every attempt of the delivery's fetch fails.
    fake.script(&[StatusCode::SERVICE_UNAVAILABLE; 3]);
    let (status, _) = app.post(&body, THIN_SECRET).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(app.ledger(id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.model_of_sub().await, Value::Null);
    // Stripe's retry: a 429 on the event, retried within the bounds, then applied.
    fake.script(&[StatusCode::TOO_MANY_REQUESTS]);
    let (status, applied) = app.post(&body, THIN_SECRET).await;
    assert_eq!(
        (status, &applied["state"]),
        (StatusCode::OK, &json!("applied"))
    );
    assert_eq!(app.ledger(id).await.1["state"], "applied");
    let (status, again) = app.post(&body, THIN_SECRET).await;
    assert_eq!(
        (status, &again["state"]),
        (StatusCode::OK, &json!("duplicate"))
    );
}

#[tokio::test]
async fn a_hanging_api_answers_503_within_the_bounds_and_the_retry_applies() {
    let (app, fake, body) = fixture_app().await;
    fake.hang.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, _) = app.post(&body, THIN_SECRET).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        app.ledger("evt_test_thin_life_02_sub_created").await.0,
        StatusCode::NOT_FOUND
    );
    fake.hang.store(false, Ordering::SeqCst);
    let (status, applied) = app.post(&body, THIN_SECRET).await;
    assert_eq!(
        (status, &applied["state"]),
        (StatusCode::OK, &json!("applied"))
    );
}

#[tokio::test]
async fn a_forged_thin_notification_is_refused_before_any_fetch() {
    let (app, fake, body) = fixture_app().await;
    // Signed with a family's secret, not the thin endpoint's: refused, nothing fetched.
    let (status, refused) = app.post(&body, SECRET).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let header = sign(&body, &[WebhookSecret::new(THIN_SECRET)], NOW);
    let req = http::Request::post(thin::PATH)
        .header("stripe-signature", header)
        .body(axum::body::Body::from(tampered))
        .expect("request");
    assert_eq!(
        call_router(&app.router, req).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(fake.seen().is_empty());
    assert_eq!(app.model_of_sub().await, Value::Null);
}

#[tokio::test]
async fn a_live_notification_at_a_test_endpoint_is_refused_before_any_fetch() {
    let (app, fake, body) = fixture_app().await;
    let mut live: Value = serde_json::from_slice(&body).expect("json");
    live["livemode"] = json!(true);
    let (status, refused) = app
        .post(&serde_json::to_vec(&live).expect("json"), THIN_SECRET)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn a_connected_accounts_notification_is_fetched_in_its_context() {
    let (app, fake, body) = fixture_app().await;
    let mut connected: Value = serde_json::from_slice(&body).expect("json");
    connected["context"] = json!(ACCOUNT);
    let (status, applied) = app
        .post(&serde_json::to_vec(&connected).expect("json"), THIN_SECRET)
        .await;
    assert_eq!(
        (status, &applied["state"]),
        (StatusCode::OK, &json!("applied"))
    );
    let contexts: Vec<Option<String>> = fake.seen().into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        contexts,
        [Some(ACCOUNT.to_owned()), Some(ACCOUNT.to_owned())]
    );
    // Applied in the connected account, not the platform's.
    let account = billing::domain::ids::Account::parse(ACCOUNT).expect("an account id");
    let scoped = Provider::STRIPE.in_account(account);
    let in_account = app
        .store
        .customer(scoped, &CustomerId::new("cus_life1"))
        .await;
    assert!(matches!(in_account, Ok(Some(_))), "the account's customer");
    assert_eq!(
        app.model_of_sub().await,
        Value::Null,
        "nothing in the platform's"
    );
    // Without a context, no header.
    let other = fixture(PAIRS[0].0);
    let (status, _) = app.post(&other, THIN_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    let contexts: Vec<Option<String>> = fake.seen().into_iter().map(|(_, c)| c).collect();
    assert_eq!(contexts, [None, None]);
}

#[tokio::test]
async fn an_event_stripe_does_not_have_is_parked_and_replayed_once_it_is_found() {
    let (app, fake, body) = fixture_app().await;
    let id = "evt_test_thin_life_02_sub_created";
    let event_path = format!("/v2/core/events/{id}");
    let event = fake.answers.lock().expect("lock")[&event_path].clone();
    fake.forget(&event_path);
    let (status, parked) = app.post(&body, THIN_SECRET).await;
    assert_eq!(
        (status, &parked["state"]),
        (StatusCode::OK, &json!("parked"))
    );
    let (_, record) = app.ledger(id).await;
    assert_eq!(record["state"], "parked");
    assert_eq!(record["family"], "thin");
    assert!(
        record["detail"].as_str().is_some_and(|d| d.contains("404")),
        "{record}"
    );
    // Stripe's retry of the same notification is a duplicate of the parked record.
    let (_, again) = app.post(&body, THIN_SECRET).await;
    assert_eq!(again["state"], "duplicate");
    fake.know(&event_path, event);
    let outcome = app
        .service
        .replay(Provider::STRIPE, &billing::domain::ids::EventId::new(id))
        .await;
    assert!(
        matches!(outcome, billing::pipeline::Outcome::Recorded { .. }),
        "{outcome:?}"
    );
    assert_eq!(app.ledger(id).await.1["state"], "applied");
    assert_ne!(app.model_of_sub().await, Value::Null);
}

/// A connected account's notification whose event Stripe does not have yet is parked in that
/// account, and its replay applies it there.
#[tokio::test]
async fn a_connected_accounts_parked_notification_is_replayed_in_its_account() {
    let (app, fake, body) = fixture_app().await;
    let mut connected: Value = serde_json::from_slice(&body).expect("json");
    connected["context"] = json!(ACCOUNT);
    let id = "evt_test_thin_life_02_sub_created";
    let event_path = format!("/v2/core/events/{id}");
    let event = fake.answers.lock().expect("lock")[&event_path].clone();
    fake.forget(&event_path);
    let body = serde_json::to_vec(&connected).expect("json");
    let (_, parked) = app.post(&body, THIN_SECRET).await;
    assert_eq!(parked["state"], "parked", "{parked}");
    let (_, record) = app
        .get(&format!("/events/stripe/{id}?account={ACCOUNT}"))
        .await;
    assert_eq!(record["state"], "parked", "parked in its account: {record}");
    fake.know(&event_path, event);
    let account = billing::domain::ids::Account::parse(ACCOUNT).expect("an account id");
    let scoped = Provider::STRIPE.in_account(account);
    let outcome = app
        .service
        .replay(scoped, &billing::domain::ids::EventId::new(id))
        .await;
    assert!(
        matches!(outcome, billing::pipeline::Outcome::Recorded { .. }),
        "{outcome:?}"
    );
    let (_, record) = app
        .get(&format!("/events/stripe/{id}?account={ACCOUNT}"))
        .await;
    assert_eq!(record["state"], "applied", "{record}");
    let (status, _) = app.ledger(id).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing in the platform's ledger"
    );
}

/// `events/thin.v1.customer.subscription.created.json` (scripts/events) is the subscription's
/// thin notification, byte for byte, signed with the local thin secret for the thin route.
/// Delivered after the samples expected.json lists before it (the checkout and the
/// subscription's snapshot creation, the fake standing in for Stripe's API as
/// scripts/fake_stripe.py does in lambda-invoke-check), it answers what expected.json says, its
/// redelivery a duplicate from the ledger, and a tampered copy 400 before any fetch.
#[tokio::test]
async fn the_thin_sample_answers_as_expected_json_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("read"))
            .expect("json");
    let entries = expected["events"].as_array().expect("events");
    let at = entries
        .iter()
        .position(|e| e["function"] == "thin")
        .expect("expected.json lists the thin sample");
    let entry = &entries[at];
    let name = entry["file"].as_str().expect("file");
    let event = std::fs::read_to_string(dir.join(name)).expect("the thin sample");
    let request = lambda_http::request::from_str(&event).expect("lambda_http parses it");
    assert_eq!(request.uri().path(), thin::PATH);
    assert_eq!(
        request.body().to_vec(),
        fixture(PAIRS[1].0),
        "{name}: not the fixture's bytes"
    );
    let header = request.headers()["stripe-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let t: i64 = header[2..header.find(',').expect(",")].parse().expect("t");

    let fake = Arc::new(FakeStripe::with_fixtures());
    let store = Arc::new(billing::adapters::memory::InMemoryBillingStore::new());
    let app = thin_app_with(
        store,
        &spawn_fake(fake.clone()).await,
        BTreeSet::new(),
        "whsec_local_invoke_thin",
    );
    // The webhook samples before it, as their functions apply them.
    for before in &entries[..at] {
        let (fixture_name, family) = match before["file"].as_str() {
            Some("checkout.session.completed.json") => (PAIRS[0].2, "checkout"),
            Some("customer.subscription.created.json") => (PAIRS[1].2, "subscription"),
            _ => continue,
        };
        let body = fixture(fixture_name);
        let req = http::Request::post(format!("/webhooks/stripe/{family}"))
            .header(
                "stripe-signature",
                sign(&body, &[WebhookSecret::new(SECRET)], NOW),
            )
            .body(axum::body::Body::from(body))
            .expect("request");
        let (status, answer) = call_router(&app.router, req).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    app.clock.set(t);
    let (status, first) = call_router(&app.router, request).await;
    let want = json!({"event_id": entry["event_id"], "state": entry["state"]});
    assert_eq!(
        (status.as_u16(), &first),
        (entry["status"].as_u64().expect("status") as u16, &want)
    );
    assert!(!fake.seen().is_empty(), "the sample's event was fetched");
    let again = lambda_http::request::from_str(&event).expect("parses");
    let (_, again) = call_router(&app.router, again).await;
    let redelivery = &expected["redelivery"];
    assert_eq!(
        again,
        json!({"event_id": entry["event_id"], "state": redelivery["state"],
               "detected_by": entry["detected_by"]})
    );
    let tampered = event.replacen("evt_test_thin", "Xvt_test_thin", 1);
    let tampered = lambda_http::request::from_str(&tampered).expect("parses");
    let (status, answer) = call_router(&app.router, tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(fake.seen(), [], "a refused delivery fetched");
}
