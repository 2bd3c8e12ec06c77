//! `spawn_app`-style helpers: a service wired to the in-memory twins or to moto.

use axum::body::Body;
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::faults::{FaultPlan, FaultyStore};
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::domain::access::TierPolicy;
use billing::http::local_router;
use billing::pipeline::Pipeline;
use billing::ports::{BillingStore, FixedClock};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, Settings};
use billing::telemetry::Metrics;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const SECRET: &str = "whsec_test_secret_for_the_suite";
/// The clock of every test app: 2025-01-01T00:00:00Z.
pub const NOW: i64 = 1_735_689_600;

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

pub fn settings(livemode: bool) -> Settings {
    Settings {
        tolerance_secs: 300,
        livemode,
        mapping: Default::default(),
        tiers: TierPolicy {
            price_tiers: [("price_pro_monthly".to_owned(), "pro".to_owned())].into(),
            order: vec!["basic".into(), "pro".into()],
        },
    }
}

pub struct TestApp {
    pub service: Arc<Pipeline>,
    pub store: Arc<dyn BillingStore>,
    pub memory: Option<Arc<InMemoryBillingStore>>,
    pub dynamo: Option<Arc<DynamoBillingStore>>,
    pub clock: Arc<FixedClock>,
    pub metrics: Arc<Metrics>,
    pub secrets: Arc<StaticSecrets>,
    pub faults: Arc<FaultPlan>,
    pub router: axum::Router,
}

fn build(store: Arc<dyn BillingStore>, livemode: bool) -> TestApp {
    let faults = Arc::new(FaultPlan::default());
    let faulty: Arc<dyn BillingStore> = Arc::new(FaultyStore {
        inner: store.clone(),
        plan: faults.clone(),
    });
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let secrets = Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)]));
    let service = Arc::new(pipeline(
        faulty.clone(),
        secrets.clone(),
        clock.clone(),
        metrics.clone(),
        settings(livemode),
    ));
    TestApp {
        router: local_router(service.clone()),
        service,
        store: faulty,
        memory: None,
        dynamo: None,
        clock,
        metrics,
        secrets,
        faults,
    }
}

pub fn spawn_memory(livemode: bool) -> TestApp {
    memory_app(Arc::new(InMemoryBillingStore::new()), livemode)
}

/// A test-mode app on an in-memory store the test built itself.
pub fn spawn_on_memory(memory: Arc<InMemoryBillingStore>) -> TestApp {
    memory_app(memory, false)
}

fn memory_app(memory: Arc<InMemoryBillingStore>, livemode: bool) -> TestApp {
    let mut app = build(memory.clone(), livemode);
    app.memory = Some(memory);
    app
}

/// A second app (a cold instance: empty caches) on the in-memory store of `app`.
pub fn spawn_beside(app: &TestApp) -> TestApp {
    let memory = app.memory.clone().expect("an in-memory app");
    let mut other = build(memory.clone(), false);
    other.memory = Some(memory);
    other
}

/// The emulator's endpoint; the suite refuses to pretend when it is missing.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts moto), \
         or start moto with scripts/start-moto and export what it prints",
    )
}

pub fn sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "static"),
        ))
        .endpoint_url(endpoint())
        .build()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// A fresh table in moto; each test gets its own, kept small (moto copies the table on
/// every transaction).
pub async fn moto_store() -> Arc<DynamoBillingStore> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let store = Arc::new(DynamoBillingStore::new(
        client,
        unique("billing"),
        Retention::default(),
    ));
    store
        .create_table_if_missing()
        .await
        .expect("create table in moto");
    store
}

pub async fn spawn_moto(livemode: bool) -> TestApp {
    spawn_on(moto_store().await, livemode)
}

/// An app on a DynamoDB store the test built itself (its table already created).
pub fn spawn_on(dynamo: Arc<DynamoBillingStore>, livemode: bool) -> TestApp {
    let mut app = build(dynamo.clone(), livemode);
    app.dynamo = Some(dynamo);
    app
}

pub fn signed(body: &[u8], at: i64) -> String {
    sign(body, &[WebhookSecret::new(SECRET)], at)
}

impl TestApp {
    /// POSTs `body` to a family's endpoint with the given signature header (if any).
    pub async fn post_raw(
        &self,
        family: Family,
        body: &[u8],
        header: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::post(format!("/webhooks/stripe/{family}"))
            .header("content-type", "application/json");
        if let Some(h) = header {
            req = req.header("stripe-signature", h);
        }
        let req = req.body(Body::from(body.to_vec())).expect("request");
        self.call(req).await
    }

    /// POSTs `body` correctly signed at the app's clock.
    pub async fn post(&self, family: Family, body: &[u8]) -> (StatusCode, Value) {
        let header = signed(body, NOW);
        self.post_raw(family, body, Some(&header)).await
    }

    /// POSTs a fixture file's bytes to the endpoint of its event type's family.
    pub async fn post_fixture(&self, rel: &str) -> (StatusCode, Value) {
        let body = fixture(rel);
        let env = billing::providers::stripe::event::Envelope::parse(&body)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let family = billing::providers::stripe::translate::family_of(&env.event_type);
        self.post(family, &body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let req = Request::get(path).body(Body::empty()).expect("request");
        self.call(req).await
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        call_router(&self.router, req).await
    }
}

/// Sends one request through `router` and reads the JSON answer (`Null` if not JSON).
pub async fn call_router<B>(router: &axum::Router, req: Request<B>) -> (StatusCode, Value)
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

/// Minimal Stripe event envelope around `object`.
pub fn event(id: &str, event_type: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "livemode": false,
        "type": event_type,
        "data": {"object": object}
    }))
    .expect("json")
}

pub fn subscription(id: &str, customer: &str, status: &str, user: Option<&str>) -> Value {
    let metadata = match user {
        Some(u) => serde_json::json!({"user_id": u}),
        None => serde_json::json!({}),
    };
    serde_json::json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": false,
        "metadata": metadata,
        "items": {"object": "list", "data": [{
            "id": "si_1",
            "current_period_start": NOW - 100,
            "current_period_end": NOW + 2_592_000,
            "price": {"id": "price_pro_monthly", "product": "prod_pro"}
        }]}
    })
}

/// Receives (and deletes) everything in an SQS queue: `(message_id, kind, body)`.
pub async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for _ in 0..5 {
        let batch = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        if batch.messages().is_empty() {
            break;
        }
        for m in batch.messages() {
            let attr = |k: &str| {
                m.message_attributes()
                    .and_then(|a| a.get(k))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push((
                attr("message_id"),
                attr("kind"),
                serde_json::from_str(m.body().unwrap_or("null")).expect("json body"),
            ));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    out
}

/// A fresh SQS queue in moto and a client for it.
pub async fn moto_queue(prefix: &str) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let url = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await
        .expect("create queue in moto")
        .queue_url
        .expect("queue url");
    (sqs, url)
}

/// Serves `router` on a free port of 127.0.0.1 for the rest of the test (a fake of a provider's
/// API); its base URL, `http://127.0.0.1:PORT`.
pub async fn serve_on_loopback(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A catch-up list client of `base` with `key` whose retries wait milliseconds (5 ms to 50 ms),
/// `concurrency` requests at once, pages of `page_limit` (small pages cross page boundaries
/// with few objects).
pub fn quick_list(
    base: &str,
    key: &str,
    concurrency: usize,
    page_limit: u32,
) -> Arc<billing::adapters::stripe_list::StripeList> {
    use billing::adapters::stripe_list::{ListBounds, StripeList};
    let key = billing::adapters::stripe_api::StripeApiKey::parse(key).expect("key");
    let bounds = ListBounds {
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..ListBounds::default()
    };
    Arc::new(
        StripeList::new(base, &key, bounds, concurrency, 1000)
            .expect("client")
            .with_page_limit(page_limit),
    )
}

/// The reconcile run of `account` (`None`: the platform's own) over `list`, on the moto app's
/// table, clock and metrics, with `settings`.
pub fn moto_reconciler(
    app: &TestApp,
    list: &Arc<billing::adapters::stripe_list::StripeList>,
    account: Option<billing::domain::ids::Account>,
    settings: billing::reconcile::Settings,
) -> billing::reconcile::Reconciler {
    use billing::backfill::{StripeEvents, TypeFilter};
    let table = app.dynamo.as_ref().expect("a moto app").table().to_owned();
    billing::reconcile::Reconciler {
        account,
        events: Arc::new(
            StripeEvents::new(list.clone(), &TypeFilter::stripe_subscribed()).in_account(account),
        ),
        subscriptions: Arc::new(billing::reconcile::StripeSubscriptions(
            list.clone(),
            account,
        )),
        pipeline: app.service.clone(),
        checkpoints: Arc::new(billing::adapters::checkpoints::DynamoCheckpoints::new(
            aws_sdk_dynamodb::Client::new(&sdk_config()),
            table,
        )),
        clock: app.clock.clone(),
        metrics: app.metrics.clone(),
        mapping: Default::default(),
        livemode: false,
        settings,
    }
}

/// Walks `range` of `source`'s events into `app`'s pipeline (the default types), as
/// `billing backfill` does; its summary, or why it stopped.
pub async fn walk_events(
    app: &TestApp,
    source: &dyn billing::backfill::EventSource,
    range: billing::backfill::Range,
) -> Result<billing::backfill::Summary, String> {
    use billing::backfill::{walk_all, TypeFilter, Walker};
    let filter = TypeFilter::stripe_subscribed();
    let mut walker = Walker::new(range);
    walk_all(
        &mut walker,
        source,
        app.service.as_ref(),
        &filter,
        &mut |_, _| {},
    )
    .await
    .map_err(|e| e.to_string())
}

/// Short bounds for a fake of Stripe's API, so a test that exhausts them is quick: 3 attempts
/// of at most 300 ms within 1 s.
pub fn quick_bounds() -> billing::bounds::CallBounds {
    billing::bounds::CallBounds {
        connect: Duration::from_millis(200),
        attempt: Duration::from_millis(300),
        operation: Duration::from_millis(1_000),
        max_attempts: 3,
    }
}
