//! Stripe Connect against moto: two connected accounts whose events carry the same ids for
//! everything (events, customer, subscription, invoice, user), delivered through the families'
//! Connect endpoints in several interleavings. Each account keeps its own ledger, customer,
//! invoice and user; the read routes answer per account (`?account=`); the platform's own account
//! sees none of it.

use crate::helpers::*;
use billing::adapters::memory::StaticSecrets;
use billing::domain::ids::{Account, EventId, Provider, UserId};
use billing::http::local_router;
use billing::ports::{BillingStore, FixedClock};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::{pipeline, Family};
use billing::telemetry::Metrics;
use http::{Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;

const A: &str = "acct_1LifeConnectA0001";
const B: &str = "acct_1LifeConnectB0002";
const CONNECT_SECRET: &str = "whsec_connect_secret_for_the_suite";

/// Account A: paid and active. Account B: the same, then deleted.
const A_FILES: [&str; 3] = [
    "A_01_checkout.session.completed",
    "A_02_customer.subscription.created",
    "A_03_invoice.paid",
];
const B_FILES: [&str; 4] = [
    "B_01_checkout.session.completed",
    "B_02_customer.subscription.created",
    "B_03_invoice.paid",
    "B_08_customer.subscription.deleted",
];

struct ConnectApp {
    store: Arc<dyn BillingStore>,
    service: Arc<billing::pipeline::Pipeline>,
    router: axum::Router,
}

async fn connect_app() -> ConnectApp {
    let store: Arc<dyn BillingStore> = moto_store().await;
    let secrets = StaticSecrets::new(Family::ALL.into_iter().flat_map(|f| {
        [
            (f.endpoint(), vec![WebhookSecret::new(SECRET)]),
            (
                f.connect_endpoint(),
                vec![WebhookSecret::new(CONNECT_SECRET)],
            ),
        ]
    }));
    let service = Arc::new(pipeline(
        store.clone(),
        Arc::new(secrets),
        Arc::new(FixedClock::at(NOW)),
        Arc::new(Metrics::memory()),
        settings(false),
    ));
    ConnectApp {
        store,
        router: local_router(service.clone()),
        service,
    }
}

impl ConnectApp {
    /// POSTs a Connect fixture to its family's Connect endpoint, signed with `secret`.
    async fn post(&self, file: &str, secret: &str, path_suffix: &str) -> (StatusCode, Value) {
        let body = fixture(&format!("stripe/connect/{file}.json"));
        let env = billing::providers::stripe::event::Envelope::parse(&body).expect("envelope");
        let family = billing::providers::stripe::translate::family_of(&env.event_type);
        self.post_body(&format!("{family}{path_suffix}"), body, secret)
            .await
    }

    /// POSTs `body` to `/webhooks/stripe/{route}`, signed with `secret`.
    async fn post_body(&self, route: &str, body: Vec<u8>, secret: &str) -> (StatusCode, Value) {
        let header = sign(&body, &[WebhookSecret::new(secret)], NOW);
        let req = Request::post(format!("/webhooks/stripe/{route}"))
            .header("stripe-signature", header)
            .body(axum::body::Body::from(body))
            .expect("request");
        call_router(&self.router, req).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let req = Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request");
        call_router(&self.router, req).await
    }
}

/// Three interleavings of both accounts' events (B's deletion first, last, in between).
fn orders() -> Vec<Vec<&'static str>> {
    vec![
        A_FILES.iter().chain(B_FILES.iter()).copied().collect(),
        vec![
            B_FILES[3], A_FILES[2], B_FILES[1], A_FILES[0], B_FILES[2], A_FILES[1], B_FILES[0],
        ],
        vec![
            A_FILES[1], B_FILES[0], B_FILES[3], A_FILES[0], B_FILES[2], B_FILES[1], A_FILES[2],
        ],
    ]
}

#[tokio::test]
async fn moto_two_connected_accounts_with_the_same_ids_keep_separate_answers_in_every_order() {
    for order in orders() {
        let app = connect_app().await;
        for file in &order {
            let (status, json) = app.post(file, CONNECT_SECRET, "/connect").await;
            // A first delivery: applied, or stale when its account's deletion came first.
            assert!(
                status == StatusCode::OK
                    && ["applied", "stale"].contains(&json["state"].as_str().unwrap_or_default()),
                "{file} in {order:?}: {json}"
            );
        }
        let (_, a) = app.get(&format!("/users/user_42/access?account={A}")).await;
        assert_eq!(
            (a["known"].as_bool(), a["tier"].as_str()),
            (Some(true), Some("pro")),
            "A in {order:?}: {a}"
        );
        let (_, b) = app.get(&format!("/users/user_42/access?account={B}")).await;
        assert_eq!(b["known"], true, "B in {order:?}: {b}");
        assert_ne!(b["tier"], "pro", "B in {order:?}: {b}");
        assert_eq!(b["billing_status"], "CANCELLED", "B in {order:?}: {b}");
        assert_eq!(b["user_id"], format!("{B}/user_42"), "{b}");
        // The platform's own user 42 was never linked.
        let (_, own) = app.get("/users/user_42/access").await;
        assert_eq!(own["known"], false, "platform in {order:?}: {own}");
        // Each account's ledger holds its own copy of the shared event id; the platform none.
        let id = "evt_life_01_checkout_completed";
        for account in [A, B] {
            let (status, record) = app
                .get(&format!("/events/stripe/{id}?account={account}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{account}: {record}");
        }
        let (status, _) = app.get(&format!("/events/stripe/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let scoped = |a: &str| Provider::STRIPE.in_account(Account::parse(a).expect("account"));
        let user = |a: &str| UserId::new("user_42").in_account(Account::parse(a).expect("id"));
        for account in [A, B] {
            let doc = app.store.load_user(&user(account)).await.expect("read");
            let doc = doc.expect("the account's user document");
            let sources: Vec<_> = doc.value.sources.keys().cloned().collect();
            assert_eq!(
                sources,
                [format!("stripe@{account}:cus_life1")],
                "{account}"
            );
            let ledger = app.store.ledger(scoped(account), &EventId::new(id)).await;
            assert!(matches!(ledger, Ok(Some(_))), "{account}");
        }
    }
}

/// A redelivery is a duplicate within its account only, and each endpoint checks its own
/// secrets: the platform's secret at a Connect endpoint (and the reverse) is refused.
#[tokio::test]
async fn moto_a_connect_redelivery_is_a_duplicate_and_secrets_do_not_cross() {
    let app = connect_app().await;
    let (status, _) = app.post(A_FILES[0], SECRET, "/connect").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post(A_FILES[0], CONNECT_SECRET, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, first) = app.post(A_FILES[0], CONNECT_SECRET, "/connect").await;
    assert_eq!(first["state"], "applied", "{first}");
    let (_, again) = app.post(A_FILES[0], CONNECT_SECRET, "/connect").await;
    assert_eq!(again["state"], "duplicate", "{again}");
    // The same event id in the other account is that account's first delivery.
    let (_, other) = app.post(B_FILES[0], CONNECT_SECRET, "/connect").await;
    assert_eq!(other["state"], "applied", "{other}");
}

/// A read route refuses an `account` that is not a connected account id.
#[tokio::test]
async fn a_read_route_refuses_a_malformed_account() {
    let app = spawn_memory(false);
    for path in [
        "/users/user_42/access?account=cus_1",
        "/users/user_42/billing?account=acct_",
        "/users/user_42/events?account=acct_a%2Fb",
        "/events/stripe/evt_1?account=nope",
        "/products/prod_1?account=acct_x%23y",
    ] {
        let (status, json) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {json}");
    }
}

/// A connected account's event that cannot be translated is parked in its account, listed, and
/// replayed there (the provider that reads it is the platform's Stripe).
#[tokio::test]
async fn moto_a_connected_accounts_parked_event_is_listed_and_replayed_in_its_account() {
    let app = connect_app().await;
    let id = unique("evt_connect_parked");
    // A subscription event whose object names no customer: read, not placeable.
    let body = serde_json::to_vec(&serde_json::json!({
        "id": id, "object": "event", "account": A, "type": "customer.subscription.created",
        "created": NOW, "livemode": false,
        "data": {"object": {"id": "sub_x", "object": "subscription", "status": "active"}},
    }))
    .expect("json");
    let (status, json) = app
        .post_body("subscription/connect", body, CONNECT_SECRET)
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    let scoped = Provider::STRIPE.in_account(Account::parse(A).expect("account"));
    let parked = billing::ports::all_parked(app.store.as_ref())
        .await
        .expect("listing");
    let mine: Vec<_> = parked
        .iter()
        .filter(|r| r.event_id.as_str() == id)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].provider, scoped, "listed in its account");
    let outcome = app.service.replay(scoped, &EventId::new(id.clone())).await;
    assert!(
        matches!(
            outcome,
            billing::pipeline::Outcome::Recorded {
                state: billing::ports::LedgerState::Parked,
                ..
            }
        ),
        "read again in its account, still unplaceable: {outcome:?}"
    );
}

/// A connected account's event that arrives through EventBridge (its `detail` carries `account`)
/// is applied in that account, and the Connect endpoint's webhook copy of it is a duplicate.
#[tokio::test]
async fn moto_a_connected_accounts_event_through_eventbridge_is_its_accounts_and_the_webhook_copy_a_duplicate(
) {
    use billing::eventbridge::{sqs_event, Ingress, Settings, SAMPLE_ACCOUNT, SAMPLE_SOURCE};
    let app = connect_app().await;
    let ingress = Ingress {
        pipeline: app.service.clone(),
        settings: Settings::sample(),
        metrics: Arc::new(Metrics::memory()),
    };
    let detail: Value =
        serde_json::from_slice(&fixture(&format!("stripe/connect/{}.json", A_FILES[0])))
            .expect("json");
    let batch = serde_json::from_value(sqs_event(&detail, SAMPLE_SOURCE, SAMPLE_ACCOUNT, NOW))
        .expect("an SQS event");
    let response = ingress.handle_batch(&batch).await;
    assert!(response.batch_item_failures.is_empty());
    let id = EventId::new("evt_life_01_checkout_completed");
    let scoped = Provider::STRIPE.in_account(Account::parse(A).expect("account"));
    let record = app.store.ledger(scoped, &id).await.expect("read");
    assert_eq!(
        record.map(|r| r.state),
        Some(billing::ports::LedgerState::Applied)
    );
    assert!(matches!(
        app.store.ledger(Provider::STRIPE, &id).await,
        Ok(None)
    ));
    let (_, copy) = app.post(A_FILES[0], CONNECT_SECRET, "/connect").await;
    assert_eq!(copy["state"], "duplicate", "{copy}");
    let (_, access) = app.get(&format!("/users/user_42/access?account={A}")).await;
    assert_eq!(access["known"], true, "{access}");
}

/// An event whose `account` is not an account id is parked whole with the reason (200: it was
/// validly signed; `billing replay` after a fix), and applies nowhere.
#[tokio::test]
async fn moto_an_event_with_a_malformed_account_is_parked_and_applies_nowhere() {
    let app = connect_app().await;
    let mut event: Value =
        serde_json::from_slice(&fixture(&format!("stripe/connect/{}.json", A_FILES[0])))
            .expect("json");
    let id = unique("evt_bad_account");
    event["id"] = serde_json::json!(id);
    event["account"] = serde_json::json!("acct_1/../cus_x");
    let body = serde_json::to_vec(&event).expect("json");
    let (status, json) = app
        .post_body("checkout/connect", body, CONNECT_SECRET)
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    // Unreadable, so parked under its body's hash, with the reason (never the value).
    let parked_id = json["event_id"].as_str().expect("an id").to_owned();
    assert!(parked_id.starts_with("unparsed_"), "{parked_id}");
    let record = app
        .store
        .ledger(Provider::STRIPE, &EventId::new(parked_id))
        .await
        .expect("read")
        .expect("the parked record");
    let detail = record.detail.unwrap_or_default();
    assert!(detail.contains("not a Stripe account id"), "{detail}");
    assert!(
        record.parked.is_some_and(|p| p.gzip.is_some()),
        "the body is kept"
    );
    let (_, own) = app.get("/users/user_42/access").await;
    assert_eq!(own["known"], false, "{own}");
}
