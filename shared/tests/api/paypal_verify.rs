//! PayPal verification as configured: `PAYPAL_VERIFICATION=api` with the client secret in
//! Secrets Manager (moto), read once at cold start, against a fake PayPal on 127.0.0.1.

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use billing::bounds::CallBounds;
use billing::error::Error;
use billing::ports::FixedClock;
use billing::providers::paypal::settings::read_paypal;
use billing::providers::paypal::PaypalVerifier;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const CLIENT_ID: &str = "AbC-moto-client-id";
const CLIENT_SECRET: &str = "EFg-moto-client-secret";
const SENT: i64 = 1_474_495_246; // the 2016 delivery's transmission time

/// Counts token requests that carried our client id and the secret from Secrets Manager.
#[derive(Default)]
struct Fake {
    good_tokens: AtomicUsize,
}

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    if headers["authorization"] != format!("Basic {basic}").as_str() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    fake.good_tokens.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": "A21AA-moto", "expires_in": 32400})).into_response()
}

async fn verify(headers: HeaderMap, _body: Bytes) -> Response {
    let ok = headers["authorization"] == "Bearer A21AA-moto";
    Json(json!({"verification_status": if ok { "SUCCESS" } else { "FAILURE" }})).into_response()
}

async fn spawn_fake(fake: Arc<Fake>) -> String {
    let router = axum::Router::new()
        .route("/v1/oauth2/token", axum::routing::post(token))
        .route(
            "/v1/notifications/verify-webhook-signature",
            axum::routing::post(verify),
        )
        .with_state(fake);
    serve_on_loopback(router).await
}

fn delivery() -> (http::HeaderMap, Vec<u8>) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/paypal/real-signed-2016"
    );
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{dir}/PAYMENT.SALE.COMPLETED.signed.json")).expect("fixture"),
    )
    .expect("JSON");
    let mut headers = http::HeaderMap::new();
    for (k, v) in doc["headers"].as_object().expect("headers") {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v.as_str().expect("str")).expect("value"),
        );
    }
    let body = std::fs::read(format!("{dir}/PAYMENT.SALE.COMPLETED.body.json")).expect("body");
    (headers, body)
}

async fn build(base: &str, arn: &str) -> Result<PaypalVerifier, Error> {
    let vars = HashMap::from([
        ("PAYPAL_WEBHOOK_ID", "9XL90610J3647323C"),
        ("PAYPAL_VERIFICATION", "api"),
        ("PAYPAL_API_BASE", base),
        ("PAYPAL_CLIENT_ID", CLIENT_ID),
        ("PAYPAL_CLIENT_SECRET_ARN", arn),
    ]);
    let settings = read_paypal(|k| vars.get(k).map(|v| (*v).to_owned())).expect("settings");
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    PaypalVerifier::from_settings(
        &settings,
        CallBounds::default(),
        Some(&client),
        Arc::new(FixedClock::at(SENT)),
    )
    .await
}

#[tokio::test]
async fn moto_api_mode_reads_the_client_secret_from_secrets_manager() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    let arn = client
        .create_secret()
        .name(unique("paypal-client-secret"))
        .secret_string(format!("{CLIENT_SECRET}\n"))
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn");
    let fake = Arc::new(Fake::default());
    let base = spawn_fake(fake.clone()).await;
    let verifier = build(&base, &arn).await.expect("cold start");
    let (headers, body) = delivery();
    let verified = verifier.verify(&headers, &body).await.expect("SUCCESS");
    assert_eq!(verified.signed_at, SENT);
    assert_eq!(fake.good_tokens.load(Ordering::SeqCst), 1);

    // An ARN that does not exist stops the cold start.
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:paypal-nope";
    let e = build(&base, missing).await.err().expect("no such secret");
    assert!(matches!(e, Error::Secrets(_)), "{e:?}");
}
