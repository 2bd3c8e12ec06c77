//! The Lambda path: an API Gateway event (as `sam local invoke` or `cargo lambda invoke` sends
//! it) through lambda_http's own request parsing into the same router the functions run.

use crate::helpers::*;
use base64::Engine;
use billing::http::webhook_router;
use billing::routing::Family;
use http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

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
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
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

/// `events/` stays in step with the fixtures: each sample is a fixture's exact bytes, signed
/// with the local-invoke secret, and goes through lambda_http into the function's router.
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
        let response = router.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} sample events");
}
