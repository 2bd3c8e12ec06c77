//! The provider seam, proved by a provider that exists only here. "Acme" has its own wire format,
//! its own signature header and its own route; it is registered through
//! `Pipeline::with_provider` and nothing else, and its deliveries go the whole way: the HTTP
//! route, the pipeline, the ledger (once per id), the customer and the user's access, the read
//! routes, and the CLI's question "whose event id is this?". No line of the core names it.

use crate::helpers::{call_router, moto_store, NOW};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use billing::adapters::memory::InMemoryBillingStore;
use billing::digest::sha256_hex;
use billing::domain::access::TierPolicy;
use billing::domain::events::{BillingEvent, EventMeta, OrderEvidence, SubscriptionChange};
use billing::domain::ids::{EventId, Provider};
use billing::error::{Error, Refusal, Rejection};
use billing::http::local_router;
use billing::pipeline::Pipeline;
use billing::ports::{BillingStore, FixedClock};
use billing::providers::seam::{ReadError, ReadEvent, Verified, WebhookProvider};
use billing::routing::{Endpoint, Route};
use billing::telemetry::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const ACME: Provider = Provider::named("acme");
const ENDPOINT: Endpoint = Endpoint::new(ACME, "acme");
const KEY: &str = "acme-shared-key";

/// Acme's wire format: flat, with its own names for everything.
#[derive(Deserialize)]
struct AcmeNotice {
    notice: String,
    at: i64,
    account: String,
    member: String,
    contract: String,
    plan: String,
    state: String,
    paid_until: i64,
}

/// Acme signs `sha256(key + body)` into `acme-signature`.
fn sign(body: &[u8]) -> String {
    let mut keyed = KEY.as_bytes().to_vec();
    keyed.extend_from_slice(body);
    sha256_hex(&keyed)
}

#[derive(Debug, thiserror::Error)]
#[error("acme-signature does not match")]
struct BadSignature;

struct AcmeProvider;

#[async_trait::async_trait]
impl WebhookProvider for AcmeProvider {
    fn id(&self) -> Provider {
        ACME
    }

    fn routes(&self) -> Vec<Route> {
        vec![Route {
            endpoint: ENDPOINT,
            path: "/webhooks/acme".into(),
        }]
    }

    fn owns_event_id(&self, id: &str) -> bool {
        id.starts_with("acme_")
    }

    async fn verify(
        &self,
        _endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, Error> {
        let given = headers.get("acme-signature").and_then(|v| v.to_str().ok());
        if given != Some(sign(body).as_str()) {
            return Err(Rejection::Unauthentic(Refusal::new(BadSignature)).into());
        }
        Ok(Verified { signed_at: NOW })
    }

    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError> {
        let n: AcmeNotice =
            serde_json::from_slice(body).map_err(|e| ReadError::Unreadable(e.to_string()))?;
        // The canonical snapshot, built from its serialised form so this test does not depend
        // on how the core spells a status inside.
        let snapshot = serde_json::from_value(json!({
            "id": n.contract,
            "customer": n.account,
            "status": n.state,
            "price_id": n.plan,
            "product_id": null,
            "tier_hint": null,
            "current_period_start": n.at,
            "current_period_end": n.paid_until,
            "cancel_at_period_end": false,
            "cancel_at": null,
            "trial_end": null,
            "cancellation_reason": null,
            "user_claim": n.member,
        }))
        .map_err(|e| ReadError::Unreadable(e.to_string()))?;
        Ok(ReadEvent {
            meta: EventMeta {
                provider: ACME,
                id: EventId::new(n.notice),
                event_type: "acme.contract".into(),
                created: n.at,
                millis: 0,
                livemode: false,
                api_version: None,
            },
            home: ENDPOINT.name,
            event: Ok(BillingEvent::Subscription {
                change: SubscriptionChange::Updated,
                snapshot,
                evidence: OrderEvidence::default(),
            }),
        })
    }
}

fn notice(id: &str, at: i64, state: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "notice": id,
        "at": at,
        "account": "acme_account_1",
        "member": "user_acme",
        "contract": "acme_contract_1",
        "plan": "price_pro_monthly",
        "state": state,
        "paid_until": NOW + 30 * 86_400,
    }))
    .expect("json")
}

fn pipeline(store: Arc<dyn BillingStore>) -> Arc<Pipeline> {
    let tiers = TierPolicy {
        price_tiers: [("price_pro_monthly".to_owned(), "pro".to_owned())].into(),
        order: vec!["pro".into()],
    };
    Arc::new(
        Pipeline::new(
            store,
            Arc::new(FixedClock::at(NOW)),
            Arc::new(Metrics::memory()),
            tiers,
        )
        .with_provider(Arc::new(AcmeProvider)),
    )
}

async fn post(router: &axum::Router, body: &[u8], signature: &str) -> (StatusCode, Value) {
    let req = Request::post("/webhooks/acme")
        .header("acme-signature", signature)
        .body(Body::from(body.to_vec()))
        .expect("request");
    call_router(router, req).await
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    call_router(router, Request::get(path).body(Body::empty()).expect("get")).await
}

/// The whole way through the seam, on `store`.
async fn acme_delivers_end_to_end(store: Arc<dyn BillingStore>) {
    let service = pipeline(store);
    let router = local_router(service.clone());

    // A forged delivery: 400, nothing stored.
    let first = notice("acme_n1", NOW - 60, "active");
    let (status, answer) = post(&router, &first, "forged").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "acme-signature does not match");
    let (status, _) = get(&router, "/events/acme/acme_n1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signed: applied once; the same notice again is a duplicate.
    let (status, answer) = post(&router, &first, &sign(&first)).await;
    assert_eq!(
        (status, &answer["state"]),
        (StatusCode::OK, &json!("applied")),
        "{answer}"
    );
    let (_, again) = post(&router, &first, &sign(&first)).await;
    assert_eq!(again["state"], "duplicate", "{again}");

    // The read routes answer from what the pipeline stored.
    let (status, record) = get(&router, "/events/acme/acme_n1").await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(
        (&record["provider"], &record["family"], &record["state"]),
        (&json!("acme"), &json!("acme"), &json!("applied")),
        "{record}"
    );
    let (_, access) = get(&router, "/users/user_acme/access").await;
    assert_eq!(
        (&access["status"], &access["tier"]),
        (&json!("active"), &json!("pro")),
        "{access}"
    );

    // Ordered like any provider's events: an older notice is stale, a newer one wins.
    let older = notice("acme_n0", NOW - 120, "canceled");
    let (_, answer) = post(&router, &older, &sign(&older)).await;
    assert_eq!(answer["state"], "stale", "{answer}");
    let newer = notice("acme_n2", NOW - 30, "canceled");
    let (_, answer) = post(&router, &newer, &sign(&newer)).await;
    assert_eq!(answer["state"], "applied", "{answer}");
    let (_, access) = get(&router, "/users/user_acme/access").await;
    assert_eq!(access["status"], "canceled", "{access}");
    assert!(access["tier"].is_null(), "{access}");
    let (_, events) = get(&router, "/users/user_acme/events").await;
    let ids: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert!(
        ids.contains(&"acme_n1") && ids.contains(&"acme_n2"),
        "{events}"
    );

    // A webhook path no registered provider serves: refused by the status policy, with a body.
    let req = Request::post("/webhooks/nobody/x")
        .body(Body::from(first.clone()))
        .expect("request");
    let (status, answer) = call_router(&router, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "no webhook endpoint for provider `nobody`");

    // The CLI's question: each registered provider answers for its own ids.
    assert_eq!(service.provider_of_event("acme_n1"), Some(ACME));
    assert_eq!(service.provider_of_event("evt_1"), None);
    assert_eq!(
        service.provider_of_event("grant_00ff"),
        Some(Provider::SYSTEM)
    );
}

#[tokio::test]
async fn a_provider_that_exists_only_in_the_tests_delivers_through_the_seam() {
    acme_delivers_end_to_end(Arc::new(InMemoryBillingStore::new())).await;
}

#[tokio::test]
async fn moto_a_provider_that_exists_only_in_the_tests_delivers_through_the_seam() {
    acme_delivers_end_to_end(moto_store().await).await;
}

/// The built-in providers answer for their own ids only (the CLI's `replay ID`).
#[tokio::test]
async fn each_built_in_provider_recognises_its_own_event_ids() {
    let app = crate::helpers::spawn_memory(false);
    let service = Pipeline::new(
        app.store.clone(),
        Arc::new(FixedClock::at(NOW)),
        Arc::new(Metrics::memory()),
        TierPolicy::default(),
    )
    .with_provider(Arc::new(
        billing::providers::paypal::PaypalProvider::read_only(),
    ));
    assert_eq!(
        service.provider_of_event("WH-2HB96170UN4612531-6PJ1555491044161R"),
        Some(Provider::PAYPAL)
    );
    assert_eq!(
        service.provider_of_event("grant_00ff"),
        Some(Provider::SYSTEM)
    );
    assert_eq!(
        app.service.provider_of_event("evt_1"),
        Some(Provider::STRIPE)
    );
    assert_eq!(app.service.provider_of_event("in_1"), None);
}
