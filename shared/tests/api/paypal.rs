//! PayPal through the whole pipeline: every fixture signed under the suite's CA, accepted and
//! mapped as its type says; PayPal's two real signed deliveries with the clock at their send
//! time and their certificate pre-seeded; once per event id; a user with a PayPal and a Stripe
//! subscription gets the best of both.

use crate::helpers::*;
use crate::paypal_support as pp;
use axum::body::Body;
use billing::adapters::faults::{FaultPlan, FaultyStore, Step};
use billing::adapters::memory::InMemoryBillingStore;
use billing::domain::access::TierPolicy;
use billing::domain::events::BillingEvent;
use billing::http::local_router;
use billing::pipeline::WebhookProvider;
use billing::ports::FixedClock;
use billing::providers::paypal::certs::TrustRoots;
use billing::providers::paypal::PaypalProvider;
use billing::providers::stripe::Family;
use billing::telemetry::Metrics;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

struct PaypalApp {
    router: axum::Router,
    clock: Arc<FixedClock>,
    service: Arc<billing::pipeline::Pipeline>,
    faults: Arc<FaultPlan>,
}

impl PaypalApp {
    /// PayPal and Stripe on one in-memory store, the suite's CA trusted, the clock at `now`.
    async fn new(now: i64) -> Self {
        let clock = Arc::new(FixedClock::at(now));
        let verifier = pp::suite_verifier(clock.clone()).await;
        Self::with_verifier(clock, verifier)
    }

    fn with_verifier(
        clock: Arc<FixedClock>,
        verifier: billing::providers::paypal::PaypalVerifier,
    ) -> Self {
        Self::on(Arc::new(InMemoryBillingStore::new()), clock, verifier)
    }

    /// On `store` (in memory, or a table in moto).
    fn on(
        store: Arc<dyn billing::ports::BillingStore>,
        clock: Arc<FixedClock>,
        verifier: billing::providers::paypal::PaypalVerifier,
    ) -> Self {
        let mut settings = settings(false);
        settings.tiers = TierPolicy {
            price_tiers: [
                ("price_pro_monthly".to_owned(), "pro".to_owned()),
                ("P-0WNFXBASICPLAN".to_owned(), "basic".to_owned()),
            ]
            .into(),
            order: vec!["basic".into(), "pro".into()],
        };
        let faults = Arc::new(FaultPlan::default());
        let store = Arc::new(FaultyStore {
            inner: store,
            plan: faults.clone(),
        });
        let service = Arc::new(pp::pipeline_with_paypal(
            store,
            clock.clone(),
            Arc::new(Metrics::memory()),
            settings,
            SECRET,
            verifier,
        ));
        Self {
            router: local_router(service.clone()),
            clock,
            service,
            faults,
        }
    }

    async fn post_headers(&self, headers: http::HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        let mut req = Request::post("/webhooks/paypal").header("content-type", "application/json");
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        call_router(
            &self.router,
            req.body(Body::from(body.to_vec())).expect("request"),
        )
        .await
    }

    /// POSTs `body` signed now under the suite's CA.
    async fn post(&self, body: &[u8]) -> (StatusCode, Value) {
        let now = billing::ports::Clock::now(self.clock.as_ref());
        self.post_headers(pp::headers(body, now), body).await
    }

    async fn post_stripe(&self, family: Family, body: &[u8]) -> (StatusCode, Value) {
        let req = Request::post(format!("/webhooks/stripe/{family}"))
            .header("stripe-signature", signed(body, NOW))
            .body(Body::from(body.to_vec()))
            .expect("request");
        call_router(&self.router, req).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        call_router(
            &self.router,
            Request::get(path).body(Body::empty()).expect("request"),
        )
        .await
    }
}

/// What the translation makes of a body (read by a provider like the pipeline's).
async fn mapped(body: &[u8]) -> Value {
    let verifier = pp::suite_verifier(Arc::new(FixedClock::at(NOW))).await;
    let read = PaypalProvider::new(verifier).read(body).expect("an event");
    let event: BillingEvent = read.event.expect("translated");
    serde_json::to_value(event).expect("JSON")
}

/// `(fixture, ledger state, JSON pointers into the canonical event and their values)`.
type Expectation = (&'static str, &'static str, Vec<(&'static str, Value)>);

fn expectations() -> Vec<Expectation> {
    let sub = |change: &str, status: &str, id: &str| {
        vec![
            ("/kind", json!("subscription")),
            ("/change", json!(change)),
            ("/snapshot/status", json!(status)),
            ("/snapshot/id", json!(id)),
            ("/snapshot/customer", json!(id)),
        ]
    };
    let unsupported = || vec![("/kind", json!("unsupported"))];
    let dispute = |change: &str, charge: &str, status: &str, amount: i64| {
        vec![
            ("/kind", json!("dispute")),
            ("/change", json!(change)),
            ("/charge", json!(charge)),
            ("/status", json!(status)),
            ("/amount", json!(amount)),
            ("/currency", json!("usd")),
        ]
    };
    let refund = |charge: &str, amount: i64| {
        vec![
            ("/kind", json!("refund")),
            ("/charge", json!(charge)),
            ("/status", json!("succeeded")),
            ("/amount", json!(amount)),
        ]
    };
    let v1 = "I-PE7JWXKGVN0R";
    let v2 = "I-0WNFX2024SUB";
    vec![
        (
            "BILLING.SUBSCRIPTION.CANCELLED__dj-paypal.json",
            "applied",
            sub("deleted", "canceled", v1),
        ),
        (
            "BILLING.SUBSCRIPTION.CANCELLED__v2-subscriptions__own.json",
            "applied",
            {
                let mut s = sub("deleted", "canceled", v2);
                s.push(("/snapshot/price_id", json!("P-0WNFIXTUREPLAN000000000")));
                s
            },
        ),
        (
            "BILLING.SUBSCRIPTION.CREATED__dj-paypal.json",
            "applied",
            sub("created", "incomplete", v1),
        ),
        (
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED__v2-subscriptions__own.json",
            "applied",
            vec![
                ("/kind", json!("invoice_payment")),
                ("/change", json!("failed")),
                ("/customer", json!(v2)),
                ("/subscription", json!(v2)),
                ("/attempt", json!(1)),
            ],
        ),
        (
            "BILLING.SUBSCRIPTION.RE-ACTIVATED__dj-paypal.json",
            "applied",
            sub("resumed", "active", v1),
        ),
        (
            "BILLING.SUBSCRIPTION.SUSPENDED__dj-paypal.json",
            "applied",
            sub("paused", "paused", v1),
        ),
        (
            "BILLING.SUBSCRIPTION.UPDATED__dj-paypal.json",
            "applied",
            sub("updated", "paused", v1),
        ),
        (
            "CUSTOMER.DISPUTE.CREATED__2018__own.json",
            "applied",
            dispute("created", "0WNFX00000SELLER1", "needs_response", 1250),
        ),
        (
            "CUSTOMER.DISPUTE.CREATED__2019-11__dj-paypal.json",
            "applied",
            dispute("created", "45V487086B989905H", "under_review", 1156),
        ),
        (
            "CUSTOMER.DISPUTE.CREATED__dj-paypal.json",
            "applied",
            dispute("created", "45V487086B989905H", "needs_response", 1156),
        ),
        (
            "CUSTOMER.DISPUTE.CREATED__ppra214__dj-paypal.json",
            "applied",
            dispute("created", "45V487086B989905H", "under_review", 1156),
        ),
        (
            "CUSTOMER.DISPUTE.RESOLVED__dj-paypal.json",
            "applied",
            dispute("closed", "6C589962JJ4368547", "lost", 998),
        ),
        (
            "PAYMENT.CAPTURE.COMPLETED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
        (
            "PAYMENT.CAPTURE.DENIED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
        (
            "PAYMENT.CAPTURE.REFUNDED__dj-paypal.json",
            "applied",
            refund("5LK72275CG489890D", 15),
        ),
        (
            "PAYMENT.CAPTURE.REVERSED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
        (
            "PAYMENT.SALE.COMPLETED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
        (
            "PAYMENT.SALE.COMPLETED__from-subscription__dj-paypal.json",
            "applied",
            vec![
                ("/kind", json!("invoice_payment")),
                ("/change", json!("paid")),
                ("/invoice", json!("7D51924877811803R")),
                ("/customer", json!("I-W0Y05RHBK9VG")),
                ("/subscription", json!("I-W0Y05RHBK9VG")),
                ("/amount_paid", json!(499)),
            ],
        ),
        (
            "PAYMENT.SALE.DENIED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
        (
            "PAYMENT.SALE.REFUNDED__dj-paypal.json",
            "applied",
            refund("9T0916710M1105906", 2),
        ),
        (
            "PAYMENT.SALE.REVERSED__dj-paypal.json",
            "ignored",
            unsupported(),
        ),
    ]
}

#[tokio::test]
async fn every_paypal_fixture_is_accepted_and_mapped_as_its_type_says() {
    let listed: Vec<&str> = expectations().iter().map(|(f, _, _)| *f).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_path("paypal"))
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, listed, "every fixture has its expectation");
    for (file, state, pointers) in expectations() {
        let body = fixture(&format!("paypal/{file}"));
        let event = mapped(&body).await;
        for (pointer, want) in &pointers {
            assert_eq!(
                event.pointer(pointer),
                Some(want),
                "{file} {pointer}: {event}"
            );
        }
        // Some fixtures share an event id: each goes to its own app.
        let app = PaypalApp::new(NOW).await;
        let (status, answer) = app.post(&body).await;
        assert_eq!(status, StatusCode::OK, "{file}: {answer}");
        assert_eq!(answer["state"], state, "{file}: {answer}");
        let id = serde_json::from_slice::<Value>(&body).expect("JSON")["id"].clone();
        let (status, record) = app
            .get(&format!("/events/paypal/{}", id.as_str().expect("id")))
            .await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(record["provider"], "paypal", "{file}: {record}");
        assert_eq!(record["family"], "paypal", "{file}: {record}");
        assert_eq!(record["state"], state, "{file}: {record}");
        // Once per event id: a redelivery (a new transmission of the same event) changes nothing.
        let (status, again) = app.post(&body).await;
        assert_eq!(
            (status, &again["state"]),
            (StatusCode::OK, &json!("duplicate")),
            "{file}"
        );
    }
}

/// One of PayPal's real signed deliveries: headers, exact body, webhook id, send time.
fn real(year: u16) -> (http::HeaderMap, Vec<u8>, String, i64) {
    let dir = format!("paypal/real-signed-{year}");
    let doc: Value = serde_json::from_slice(&fixture(&format!(
        "{dir}/PAYMENT.SALE.COMPLETED.signed.json"
    )))
    .expect("JSON");
    let body = fixture(&format!("{dir}/PAYMENT.SALE.COMPLETED.body.json"));
    let mut headers = http::HeaderMap::new();
    for (k, v) in doc["headers"].as_object().expect("headers") {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v.as_str().expect("str")).expect("value"),
        );
    }
    let sent = billing::providers::paypal::transmission::parse_rfc3339(
        headers["paypal-transmission-time"].to_str().expect("ascii"),
    )
    .expect("time");
    let id = doc["webhook_id"].as_str().expect("webhook_id").to_owned();
    (headers, body, id, sent)
}

#[tokio::test]
async fn the_real_signed_deliveries_go_through_the_whole_pipeline() {
    let mut chain = fixture("paypal/real-signed-2015/DigiCertHighAssuranceEVRootCA.crt.pem");
    chain.push(b'\n');
    chain.extend(fixture(
        "paypal/real-signed-2015/DigiCertSHA2ExtendedValidationServerCA.crt.pem",
    ));
    let cert = fixture("paypal/real-signed-2015/CERT-360caa42-fca2a594-a5cafa77.pem");
    for year in [2015, 2016] {
        let (headers, body, webhook_id, sent) = real(year);
        let clock = Arc::new(FixedClock::at(sent));
        let url = headers["paypal-cert-url"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let verifier = pp::verifier(
            &webhook_id,
            TrustRoots::from_pem(&chain).expect("DigiCert"),
            &url,
            &cert,
            clock.clone(),
        )
        .await;
        let app = PaypalApp::with_verifier(clock, verifier);
        // A changed byte is refused, nothing stored.
        let mut tampered = body.clone();
        tampered.push(b' ');
        let (status, _) = app.post_headers(headers.clone(), &tampered).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{year}");
        // A sale of no subscription: recorded once, answered ignored.
        let (status, answer) = app.post_headers(headers.clone(), &body).await;
        assert_eq!(status, StatusCode::OK, "{year}: {answer}");
        assert_eq!(answer["state"], "ignored", "{year}: {answer}");
        let id = serde_json::from_slice::<Value>(&body).expect("JSON")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        assert!(id.starts_with("WH-"));
        let (_, record) = app.get(&format!("/events/paypal/{id}")).await;
        assert_eq!(record["type"], "PAYMENT.SALE.COMPLETED", "{record}");
        assert_eq!(record["state"], "ignored");
        // PayPal's sandbox links: not live.
        assert_eq!(record["livemode"], false);
        let (status, again) = app.post_headers(headers, &body).await;
        assert_eq!(
            (status, &again["state"]),
            (StatusCode::OK, &json!("duplicate"))
        );
    }
}

/// A v2 subscription resource for the access test.
fn paypal_sub(event_id: &str, event_type: &str, time: &str, status: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id, "event_version": "1.0", "create_time": time,
        "resource_type": "subscription", "resource_version": "2.0", "event_type": event_type,
        "resource": {
            "id": "I-0WNFXBOTH", "plan_id": "P-0WNFXBASICPLAN", "status": status,
            "custom_id": user, "billing_info": {"next_billing_time": "2025-02-01T00:00:00Z"}
        }
    }))
    .expect("JSON")
}

#[tokio::test]
async fn a_user_with_a_paypal_and_a_stripe_subscription_gets_the_best() {
    let app = PaypalApp::new(NOW).await;
    let user = "user_both";
    let activated = paypal_sub(
        "WH-0WNFX-BOTH-1",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "2024-12-31T10:00:00.100Z",
        "ACTIVE",
        user,
    );
    let (status, answer) = app.post(&activated).await;
    assert_eq!(
        (status, &answer["state"]),
        (StatusCode::OK, &json!("applied")),
        "{answer}"
    );
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["tier"], "basic", "{access}");
    assert_eq!(access["billing_status"], "DONE", "{access}");
    // A Stripe subscription to the higher tier for the same user: the best one counts.
    let stripe = event(
        "evt_both_1",
        "customer.subscription.created",
        NOW - 50,
        subscription("sub_both", "cus_both", "active", Some(user)),
    );
    let (status, answer) = app.post_stripe(Family::Subscription, &stripe).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["tier"], "pro", "{access}");
    assert_eq!(
        access["sources"].as_array().map(Vec::len),
        Some(2),
        "{access}"
    );
    // The Stripe one ends: the PayPal one still grants its tier.
    let deleted = event(
        "evt_both_2",
        "customer.subscription.deleted",
        NOW - 40,
        subscription("sub_both", "cus_both", "canceled", Some(user)),
    );
    app.post_stripe(Family::Subscription, &deleted).await;
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["tier"], "basic", "{access}");
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    // Suspended in PayPal (later in the same second): nothing grants any more.
    let suspended = paypal_sub(
        "WH-0WNFX-BOTH-0",
        "BILLING.SUBSCRIPTION.SUSPENDED",
        "2024-12-31T10:00:00.900Z",
        "SUSPENDED",
        user,
    );
    app.post(&suspended).await;
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
}

#[tokio::test]
async fn a_parked_paypal_event_is_listed_and_replayed() {
    let app = PaypalApp::new(NOW).await;
    let user = "user_parked";
    let body = paypal_sub(
        "WH-0WNFX-PARK-1",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "2024-12-31T10:00:00.100Z",
        "ACTIVE",
        user,
    );
    app.faults.fail_next(Step::CommitRefused);
    let (status, answer) = app.post(&body).await;
    assert_eq!(
        (status, &answer["state"]),
        (StatusCode::OK, &json!("parked")),
        "{answer}"
    );
    let (_, listed) = app.get("/events/parked").await;
    assert_eq!(listed["parked"][0]["provider"], "paypal", "{listed}");
    assert_eq!(
        listed["parked"][0]["event_id"], "WH-0WNFX-PARK-1",
        "{listed}"
    );
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    // The replay reads the kept bytes with PayPal's reader and applies them.
    let id = billing::domain::ids::EventId::new("WH-0WNFX-PARK-1");
    let outcome = app
        .service
        .replay(billing::domain::ids::Provider::PAYPAL, &id)
        .await;
    assert!(
        matches!(&outcome, billing::pipeline::Outcome::Recorded { state, .. } if state.as_str() == "applied"),
        "{outcome:?}"
    );
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    // Replayed once: the delivery again is a duplicate.
    let (_, again) = app.post(&body).await;
    assert_eq!(again["state"], "duplicate", "{again}");
}

#[tokio::test]
async fn a_paypal_delivery_to_a_pipeline_without_paypal_is_refused() {
    let app = spawn_memory(false);
    let body = paypal_sub(
        "WH-0WNFX-NONE-1",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "2024-12-31T10:00:00Z",
        "ACTIVE",
        "u",
    );
    let mut req = Request::post("/webhooks/paypal");
    for (name, value) in &pp::headers(&body, NOW) {
        req = req.header(name, value);
    }
    let (status, answer) =
        call_router(&app.router, req.body(Body::from(body)).expect("request")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = app.get("/events/paypal/WH-0WNFX-NONE-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// In DynamoDB: the ledger item is `EVT#paypal#WH-…`, written once.
#[tokio::test]
async fn moto_a_paypal_event_is_recorded_once_under_its_paypal_key() {
    let store = moto_store().await;
    let clock = Arc::new(FixedClock::at(NOW));
    let verifier = pp::suite_verifier(clock.clone()).await;
    let app = PaypalApp::on(store.clone(), clock, verifier);
    let body = fixture("paypal/PAYMENT.SALE.COMPLETED__from-subscription__dj-paypal.json");
    let (status, answer) = app.post(&body).await;
    assert_eq!(
        (status, &answer["state"]),
        (StatusCode::OK, &json!("applied")),
        "{answer}"
    );
    let id = "WH-2HB96170UN4612531-6PJ1555491044161R";
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let item = client
        .get_item()
        .table_name(store.table())
        .key(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("EVT#paypal#{id}")),
        )
        .key(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("EVT".into()),
        )
        .send()
        .await
        .expect("get")
        .item;
    assert!(
        item.is_some(),
        "the ledger item is keyed by provider and id"
    );
    let (status, again) = app.post(&body).await;
    assert_eq!(
        (status, &again["state"]),
        (StatusCode::OK, &json!("duplicate")),
        "{again}"
    );
}

/// In DynamoDB: a transmission id is claimed as `PAYPAL_TX#{id}` with the body's SHA-256 and an
/// expiry. A captured signature carrying another body of the same CRC-32 is refused (400, nothing
/// stored); PayPal's redelivery of the same body still reaches the ledger (a duplicate).
#[tokio::test]
async fn moto_a_transmission_id_is_accepted_once_per_body() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use billing::adapters::paypal_transmissions::DynamoTransmissionGuard;
    use billing::providers::paypal::transmission::crc32_suffix;
    let store = moto_store().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let clock = Arc::new(FixedClock::at(NOW));
    let verifier = pp::suite_verifier(clock.clone())
        .await
        .with_transmissions(Arc::new(DynamoTransmissionGuard::new(
            client.clone(),
            store.table(),
        )));
    let app = PaypalApp::on(store.clone(), clock, verifier);
    let body = fixture("paypal/PAYMENT.SALE.COMPLETED__from-subscription__dj-paypal.json");
    let headers = pp::headers(&body, NOW);
    let mut forged = body.clone();
    forged.extend(crc32_suffix(&body, crc32fast::hash(&body)));
    assert_eq!(crc32fast::hash(&forged), crc32fast::hash(&body));

    let (status, answer) = app.post_headers(headers.clone(), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = app.post_headers(headers.clone(), &forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = app.post_headers(headers.clone(), &body).await;
    assert_eq!(
        (status, &answer["state"]),
        (StatusCode::OK, &json!("duplicate")),
        "{answer}"
    );

    let id = headers["paypal-transmission-id"].to_str().expect("ascii");
    let item = client
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(format!("PAYPAL_TX#{id}")))
        .key("SK", AttributeValue::S("PAYPAL_TX".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the transmission item");
    assert_eq!(
        item["body_sha256"],
        AttributeValue::S(billing::digest::sha256_hex(&body))
    );
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((NOW + 300).to_string())
    );
}

/// The claim's condition in DynamoDB itself: another body under a live id is refused, and an
/// expired item that TTL has not removed yet counts as absent.
#[tokio::test]
async fn moto_an_expired_transmission_item_frees_its_id() {
    use billing::adapters::paypal_transmissions::DynamoTransmissionGuard;
    use billing::ports::{TransmissionClaim, TransmissionGuard};
    let store = moto_store().await;
    let guard =
        DynamoTransmissionGuard::new(aws_sdk_dynamodb::Client::new(&sdk_config()), store.table());
    let claim = |hash, now| guard.claim("tx-moto-1", hash, now, 1_000);
    assert_eq!(claim("aa", 700).await, Ok(TransmissionClaim::Accepted));
    assert_eq!(claim("bb", 800).await, Ok(TransmissionClaim::OtherBody));
    assert_eq!(claim("aa", 900).await, Ok(TransmissionClaim::Accepted));
    assert_eq!(claim("bb", 1_001).await, Ok(TransmissionClaim::Accepted));
}
