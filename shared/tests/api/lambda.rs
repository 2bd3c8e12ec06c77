//! The Lambda path: an API Gateway event (as `sam local invoke` or `cargo lambda invoke` sends
//! it) through lambda_http's own request parsing into the same router the functions run.

use crate::helpers::*;
use base64::Engine;
use billing::http::webhook_router;
use billing::routing::Family;
use http::StatusCode;

fn api_gateway_event(body: &[u8], header: &str, base64: bool) -> String {
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("utf8")
    };
    serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe/invoice",
        "rawPath": "/webhooks/stripe/invoice",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "stripe-signature": header},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "local", "domainPrefix": "local",
            "http": {"method": "POST", "path": "/webhooks/stripe/invoice", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"},
            "requestId": "r1", "routeKey": "POST /webhooks/stripe/invoice", "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

async fn invoke(app: &TestApp, event: &str) -> (StatusCode, serde_json::Value) {
    let request = lambda_http::request::from_str(event).expect("lambda_http parses the event");
    let router = webhook_router(app.service.clone(), &[Family::Invoice]);
    call_router(&router, request).await
}

#[tokio::test]
async fn base64_and_plain_bodies_verify_over_the_same_raw_bytes() {
    let body = fixture("stripe/lifecycle/03_invoice.paid.json");
    let header = signed(&body, NOW);
    for base64 in [false, true] {
        let app = spawn_memory(false);
        let (status, json) = invoke(&app, &api_gateway_event(&body, &header, base64)).await;
        assert_eq!(status, StatusCode::OK, "base64={base64}: {json}");
        assert_eq!(json["state"], "applied", "base64={base64}: {json}");
    }
}

#[tokio::test]
async fn a_reserialized_body_fails_verification() {
    let body = fixture("stripe/lifecycle/03_invoice.paid.json");
    let header = signed(&body, NOW);
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let reserialized = serde_json::to_vec(&value).expect("json");
    assert_ne!(reserialized, body);
    let app = spawn_memory(false);
    let (status, _) = invoke(&app, &api_gateway_event(&reserialized, &header, false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// What each sample event does to an empty model: `sam local invoke` / `cargo lambda invoke`
/// users see these states.
const SAMPLE_OUTCOMES: [(&str, &str); 6] = [
    ("checkout.session.completed.json", "applied"),
    ("customer.subscription.created.json", "applied"),
    ("customer.subscription.deleted.json", "applied"),
    ("invoice.paid.json", "applied"),
    ("invoice.payment_action_required.json", "applied"),
    // Refunds are not modelled yet: recorded and answered as ignored.
    ("charge.refunded.json", "ignored"),
];

/// `events/` stays in step with the fixtures: each sample is a fixture's exact bytes, signed
/// with the local-invoke secret, and goes through lambda_http into the function's router;
/// each answers its expected state, and a second delivery `duplicate`.
#[tokio::test]
async fn the_sample_events_parse_verify_and_apply() {
    use billing::providers::stripe::signature::WebhookSecret;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut fixtures = Vec::new();
    for sub in ["lifecycle", "2020-03-02"] {
        for f in std::fs::read_dir(fixture_path(&format!("stripe/{sub}"))).expect("dir") {
            fixtures.push(std::fs::read(f.expect("entry").path()).expect("read"));
        }
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("events/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let request = lambda_http::request::from_str(&text).expect("lambda_http parses it");
        let family: Family = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .expect("family")
            .parse()
            .expect("family");
        let header = request.headers()["stripe-signature"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let t: i64 = header[2..header.find(',').expect(",")].parse().expect("t");
        let body = request.body().to_vec();
        assert!(
            fixtures.contains(&body),
            "{}: body is not a fixture's exact bytes",
            path.display()
        );
        let app = spawn_memory(false);
        app.secrets
            .rotate(family, vec![WebhookSecret::new("whsec_local_invoke_only")]);
        app.clock.set(t);
        let router = webhook_router(app.service.clone(), &[family]);
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let (status, json) = call_router(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{name}: {json}");
        let expected = SAMPLE_OUTCOMES
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, state)| *state)
            .unwrap_or_else(|| panic!("{name}: add its expected outcome to SAMPLE_OUTCOMES"));
        assert_eq!(json["state"], expected, "{name}: {json}");
        // The same file again is a redelivery.
        let again = lambda_http::request::from_str(&text).expect("parses");
        let (_, json) = call_router(&router, again).await;
        assert_eq!(json["state"], "duplicate", "{name} again: {json}");
        seen += 1;
    }
    assert_eq!(seen, SAMPLE_OUTCOMES.len(), "every sample has its outcome");
}

/// The invoice fixture's exact bytes with its `description` (inside `data.object`) padded so
/// that the body is `len` bytes: the shape of a real large event, validly signed.
fn large_invoice_paid(len: usize) -> Vec<u8> {
    let body = fixture("stripe/lifecycle/03_invoice.paid.json");
    let text = String::from_utf8(body).expect("utf8");
    let needle = "\"description\": null";
    let at = text
        .find(needle)
        .expect("the invoice has a null description");
    let pad = len
        .checked_sub(text.len() - needle.len() + "\"description\": \"\"".len())
        .expect("len is larger than the fixture");
    let padded = format!(
        "{}\"description\": \"{}\"{}",
        &text[..at],
        "x".repeat(pad),
        &text[at + needle.len()..]
    );
    assert_eq!(padded.len(), len);
    padded.into_bytes()
}

const LARGE_ID: &str = "evt_life_03_invoice_paid";

async fn recorded_state(app: &TestApp) -> Option<String> {
    use billing::domain::ids::{EventId, Provider};
    app.store
        .ledger(Provider::Stripe, &EventId::new(LARGE_ID))
        .await
        .expect("read")
        .map(|r| r.state.as_str().to_owned())
}

/// Posts `body` (signed) through the local router and, on a fresh app, through lambda_http
/// into the function's router; returns both answers and what each app recorded.
async fn post_both_ways(body: &[u8]) -> Vec<(StatusCode, serde_json::Value, Option<String>)> {
    let header = signed(body, NOW);
    let local = spawn_memory(false);
    let (status, json) = local.post_raw(Family::Invoice, body, Some(&header)).await;
    let mut answers = vec![(status, json, recorded_state(&local).await)];
    let lambda = spawn_memory(false);
    let (status, json) = invoke(&lambda, &api_gateway_event(body, &header, false)).await;
    answers.push((status, json, recorded_state(&lambda).await));
    answers
}

#[tokio::test]
async fn a_3_mb_signed_event_is_recorded() {
    let body = large_invoice_paid(3 * 1024 * 1024);
    for (status, json, state) in post_both_ways(&body).await {
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["state"], "applied", "{json}");
        assert_eq!(state.as_deref(), Some("applied"));
    }
}

#[tokio::test]
async fn a_5_9_mb_signed_event_is_recorded_or_parked() {
    let body = large_invoice_paid(5_900_000);
    for (status, json, state) in post_both_ways(&body).await {
        assert_eq!(status, StatusCode::OK, "{json}");
        let state = state.expect("a ledger record");
        assert!(["applied", "parked"].contains(&state.as_str()), "{state}");
        assert_eq!(json["state"], state, "{json}");
    }
}

#[tokio::test]
async fn a_body_over_6_mb_is_refused_with_our_json_error_and_stores_nothing() {
    use billing::http::MAX_WEBHOOK_BODY_BYTES;
    // The limit itself is still taken.
    let body = large_invoice_paid(MAX_WEBHOOK_BODY_BYTES);
    for (status, json, _) in post_both_ways(&body).await {
        assert_eq!(status, StatusCode::OK, "{json}");
    }
    let body = large_invoice_paid(MAX_WEBHOOK_BODY_BYTES + 1);
    for (status, json, state) in post_both_ways(&body).await {
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
        assert_eq!(
            json["error"], "request body larger than 6291456 bytes",
            "{json}"
        );
        assert_eq!(state, None);
    }
}
