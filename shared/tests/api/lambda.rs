//! The Lambda path: an API Gateway event (as `sam local invoke` or `cargo lambda invoke` sends
//! it) through lambda_http's own request parsing into the same router the functions run.

use crate::helpers::*;
use base64::Engine;
use billing::http::webhook_router;
use billing::providers::stripe::Family;
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
    let router = webhook_router(app.service.clone(), &[Family::Invoice.endpoint()]);
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

/// `events/expected.json`: the one statement of what each sample event answers, in delivery
/// order (scripts/lambda-invoke-check asserts the same through `cargo lambda invoke`).
fn expected_outcomes() -> serde_json::Value {
    let path = events_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).expect("events/expected.json");
    serde_json::from_str(&text).expect("events/expected.json is JSON")
}

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The entry's string field, or a panic naming the entry.
fn text<'a>(entry: &'a serde_json::Value, field: &str) -> &'a str {
    entry[field]
        .as_str()
        .unwrap_or_else(|| panic!("expected.json: {field} missing in {entry}"))
}

/// The event file's names (expected.json aside) and the entries' names are the same set.
#[test]
fn every_sample_event_has_one_expected_outcome() {
    let expected = expected_outcomes();
    let mut listed: Vec<&str> = expected["events"]
        .as_array()
        .expect("expected.json: an `events` list")
        .iter()
        .map(|e| text(e, "file"))
        .collect();
    listed.sort_unstable();
    let before = listed.len();
    listed.dedup();
    assert_eq!(before, listed.len(), "a file listed twice in expected.json");
    // Every file is a sample; a folder holds other inputs (sam-local/env.json).
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().into_string().expect("utf8"))
        .filter(|name| name != "expected.json")
        .collect();
    files.sort_unstable();
    assert_eq!(files, listed, "events/ and events/expected.json differ");
}

/// The request of an API Gateway event with one byte of its body's event id changed (plain or
/// base64, as the event carries it): what a tampered delivery looks like.
fn tampered(event: &str) -> http::Request<lambda_http::Body> {
    let mut value: serde_json::Value = serde_json::from_str(event).expect("json");
    let b64 = value["isBase64Encoded"].as_bool().unwrap_or(false);
    let engine = base64::engine::general_purpose::STANDARD;
    let body = value["body"].as_str().expect("a body");
    let mut raw = if b64 {
        engine.decode(body).expect("base64")
    } else {
        body.as_bytes().to_vec()
    };
    let at = raw.windows(4).position(|w| w == b"\"id\"").expect("an id") + 7;
    raw[at] = if raw[at] == b'X' { b'Y' } else { b'X' };
    value["body"] = if b64 {
        engine.encode(&raw).into()
    } else {
        String::from_utf8(raw).expect("utf8").into()
    };
    lambda_http::request::from_str(&value.to_string()).expect("parses")
}

/// `events/` stays in step with the fixtures and with `expected.json`: each webhook sample is
/// a fixture's exact bytes, signed with the local-invoke secret; delivered in the listed order
/// through lambda_http into its function's router, each answers its expected status and body,
/// the same file again the redelivery answer, and a tampered copy the tampered answer.
#[tokio::test]
async fn the_sample_events_parse_verify_and_apply() {
    use billing::providers::stripe::signature::WebhookSecret;
    let expected = expected_outcomes();
    let mut fixtures = Vec::new();
    for sub in ["lifecycle", "2020-03-02", "connect"] {
        for f in std::fs::read_dir(fixture_path(&format!("stripe/{sub}"))).expect("dir") {
            fixtures.push(std::fs::read(f.expect("entry").path()).expect("read"));
        }
    }
    let app = spawn_memory(false);
    for family in Family::ALL {
        app.secrets
            .rotate(family, vec![WebhookSecret::new("whsec_local_invoke_only")]);
        // The Connect samples' secret (scripts/events, scripts/lambda-invoke-check).
        app.secrets.rotate(
            family.connect_endpoint(),
            vec![WebhookSecret::new("whsec_local_invoke_connect")],
        );
    }
    let mut delivered = 0;
    for entry in expected["events"].as_array().expect("events") {
        let name = text(entry, "file");
        let family: Family = match text(entry, "function") {
            // relay::tests::the_relay_sample_event_is_one_outbox_insert; the emails sample is
            // what `billing lambda-event --email-jobs` prints, the PayPal sample a fixture
            // signed by a local key (the CLI's tests; scripts/lambda-invoke-check runs both).
            "relay" | "emails" | "paypal" => continue,
            "reconcile" => continue, // reconcile::tests::the_scheduled_sample_event_is_answered_as_expected
            "thin" => continue,      // thin::the_thin_sample_answers_as_expected_json_says
            "api" => {
                read_sample(&app, name, entry).await;
                continue;
            }
            "eventbridge" => {
                eventbridge_sample(&app, name, entry).await;
                continue;
            }
            function => function.parse().expect("a webhook function is a family"),
        };
        let event = std::fs::read_to_string(events_dir().join(name)).expect("read");
        let request = lambda_http::request::from_str(&event).expect("lambda_http parses it");
        let path = request.uri().path().to_owned();
        let connect = format!("/webhooks/stripe/{family}/connect");
        assert!(
            path == format!("/webhooks/stripe/{family}") || path == connect,
            "{name}: {path}"
        );
        let header = request.headers()["stripe-signature"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let t: i64 = header[2..header.find(',').expect(",")].parse().expect("t");
        assert!(
            fixtures.contains(&request.body().to_vec()),
            "{name}: body is not a fixture's exact bytes"
        );
        app.clock.set(t);
        // The routes a family's function serves (app::run_stripe_lambda).
        let router = webhook_router(
            app.service.clone(),
            &[family.endpoint(), family.connect_endpoint()],
        );
        let event_id = text(entry, "event_id");
        let (status, json) = call_router(&router, request).await;
        assert_eq!(status.as_u16(), entry["status"], "{name}: {json}");
        let mut first = serde_json::json!({"event_id": event_id, "state": entry["state"]});
        if entry["state"] == "duplicate" {
            // Already recorded by another path (the EventBridge sample before it).
            first["detected_by"] = entry["detected_by"].clone();
        }
        assert_eq!(json, first, "{name}");
        let again = lambda_http::request::from_str(&event).expect("parses");
        let (status, json) = call_router(&router, again).await;
        let redelivery = &expected["redelivery"];
        assert_eq!(
            status.as_u16(),
            redelivery["status"],
            "{name} again: {json}"
        );
        let duplicate = serde_json::json!({"event_id": event_id, "state": redelivery["state"],
            "detected_by": entry["detected_by"]});
        assert_eq!(json, duplicate, "{name} again");
        let (status, json) = call_router(&router, tampered(&event)).await;
        assert_eq!(
            status.as_u16(),
            expected["tampered"]["status"],
            "{name} tampered"
        );
        let error = serde_json::json!({"error": expected["tampered"]["error"]});
        assert_eq!(json, error, "{name} tampered");
        delivered += 1;
    }
    assert!(delivered > 0, "expected.json lists no webhook event");
}

/// The EventBridge sample consumed as the eventbridge function does (configured as
/// lambda-invoke-check configures it): it answers `response`, records `event_id` in `state`, and
/// the same file again answers the same and is counted a duplicate.
async fn eventbridge_sample(app: &TestApp, name: &str, entry: &serde_json::Value) {
    use billing::domain::ids::{EventId, Provider};
    use billing::emails::send::SqsEvent;
    use billing::eventbridge::{Ingress, Settings};
    use billing::telemetry::Counter;
    let text = std::fs::read_to_string(events_dir().join(name)).expect("read");
    let event: SqsEvent = serde_json::from_str(&text).expect("an SQS event");
    let ingress = Ingress {
        pipeline: app.service.clone(),
        settings: Settings::sample(),
        metrics: app.metrics.clone(),
    };
    let redelivered = app.metrics.count(Counter::Redelivered);
    for round in ["first", "again"] {
        let response = serde_json::to_value(ingress.handle_batch(&event).await).expect("json");
        assert_eq!(response, entry["response"], "{name} ({round})");
        let id = EventId::new(entry["event_id"].as_str().expect("event_id"));
        let record = app.store.ledger(Provider::STRIPE, &id).await.expect("read");
        let state = record.map(|r| r.state.as_str().to_owned());
        assert_eq!(
            state.as_deref(),
            entry["state"].as_str(),
            "{name} ({round})"
        );
    }
    assert_eq!(
        app.metrics.count(Counter::Redelivered),
        redelivered + 1,
        "{name}: the second copy is a duplicate ({})",
        entry["again"]
    );
}

/// The read-route sample answered by the read routes over the model the samples before it built:
/// its status, and each field `body_includes` names with that value.
async fn read_sample(app: &TestApp, name: &str, entry: &serde_json::Value) {
    let event = std::fs::read_to_string(events_dir().join(name)).expect("read");
    let request = lambda_http::request::from_str(&event).expect("lambda_http parses it");
    let router = billing::http::read_router(app.service.clone());
    let (status, json) = call_router(&router, request).await;
    assert_eq!(status.as_u16(), entry["status"], "{name}: {json}");
    for (field, want) in entry["body_includes"].as_object().expect("body_includes") {
        assert_eq!(&json[field], want, "{name}: {field}");
    }
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
        .ledger(Provider::STRIPE, &EventId::new(LARGE_ID))
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
