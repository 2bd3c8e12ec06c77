//! `PAYPAL_VERIFICATION=api` against a fake PayPal on 127.0.0.1 (no network): the token, the
//! request (the body byte for byte), and how each answer is taken.

use super::api::{ClientSecret, PaypalApi};
use super::{PaypalRejection, PaypalVerifier};
use crate::bounds::CallBounds;
use crate::error::{Error, ErrorKind, Refusal, Rejection};
use crate::ports::FixedClock;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT_ID: &str = "AbC-test-client-id";
const SECRET: &str = "EFg-test-client-secret-DO-NOT-PRINT";
const TOKEN: &str = "A21AA-test-access-token";
const WEBHOOK_ID: &str = "9XL90610J3647323C";
/// Lifetime of the fake's tokens, in seconds.
const TOKEN_LIFETIME: i64 = 32_400;

/// The verification answer the fake gives.
#[derive(Clone, Copy)]
enum Answer {
    Status(&'static str),
    Http(StatusCode),
    Hang,
}

struct FakePaypal {
    answer: Answer,
    /// The webhook event it expects, byte for byte.
    expected_event: Vec<u8>,
    token_calls: AtomicUsize,
    verify_calls: AtomicUsize,
    /// Whether every verify request carried the event exactly and our other fields.
    exact: Mutex<Vec<bool>>,
}

impl FakePaypal {
    fn new(answer: Answer, expected_event: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            answer,
            expected_event: expected_event.to_vec(),
            token_calls: AtomicUsize::new(0),
            verify_calls: AtomicUsize::new(0),
            exact: Mutex::new(Vec::new()),
        })
    }
}

async fn token(State(fake): State<Arc<FakePaypal>>, headers: HeaderMap, body: Bytes) -> Response {
    fake.token_calls.fetch_add(1, Ordering::SeqCst);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{SECRET}"));
    let authorised = headers["authorization"] == format!("Basic {basic}").as_str();
    if !authorised || &body[..] != b"grant_type=client_credentials" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    Json(
        json!({"scope": "https://uri.paypal.com/services/applications/webhooks",
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}),
    )
    .into_response()
}

/// Compares the request's bytes: after `"webhook_event":` come exactly the expected event
/// bytes and the closing brace; the other fields are the delivery's and our webhook id.
fn exact(fake: &FakePaypal, body: &[u8]) -> bool {
    let marker = b",\"webhook_event\":";
    let Some(at) = body.windows(marker.len()).position(|w| w == marker) else {
        return false;
    };
    let event = &body[at + marker.len()..];
    let event_exact = event.strip_suffix(b"}") == Some(&fake.expected_event[..]);
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    event_exact
        && parsed["webhook_id"] == WEBHOOK_ID
        && parsed["auth_algo"] == "SHA256withRSA"
        && parsed["transmission_id"] == "d938e770-8046-11e6-8103-6b62a8a99ac4"
}

async fn verify(State(fake): State<Arc<FakePaypal>>, headers: HeaderMap, body: Bytes) -> Response {
    fake.verify_calls.fetch_add(1, Ordering::SeqCst);
    if headers["authorization"] != format!("Bearer {TOKEN}").as_str() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    }
    fake.exact.lock().expect("lock").push(exact(&fake, &body));
    match fake.answer {
        Answer::Status(s) => Json(json!({"verification_status": s})).into_response(),
        Answer::Http(code) => {
            (code, Json(json!({"name": "INTERNAL_SERVICE_ERROR"}))).into_response()
        }
        Answer::Hang => std::future::pending().await,
    }
}

async fn spawn(fake: Arc<FakePaypal>) -> String {
    let router = axum::Router::new()
        .route("/v1/oauth2/token", axum::routing::post(token))
        .route(
            "/v1/notifications/verify-webhook-signature",
            axum::routing::post(verify),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The real 2016 delivery's headers and body (PayPal's fake does not check the signature).
fn delivery() -> (http::HeaderMap, Vec<u8>, i64) {
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
    (headers, body, 1_474_495_246)
}

async fn api(fake: &Arc<FakePaypal>, clock: Arc<FixedClock>) -> PaypalApi {
    let base = spawn(fake.clone()).await;
    let bounds = CallBounds {
        connect: Duration::from_millis(200),
        attempt: Duration::from_millis(300),
        operation: Duration::from_millis(500),
        max_attempts: 1,
    };
    PaypalApi::new(
        &base,
        CLIENT_ID.into(),
        ClientSecret::new(SECRET),
        bounds,
        clock,
    )
    .expect("client")
}

async fn verifier(fake: &Arc<FakePaypal>, clock: Arc<FixedClock>) -> PaypalVerifier {
    PaypalVerifier::api(WEBHOOK_ID, 300, api(fake, clock.clone()).await, clock)
}

#[tokio::test]
async fn success_accepts_and_the_body_is_passed_byte_for_byte() {
    let (headers, body, sent) = delivery();
    let fake = FakePaypal::new(Answer::Status("SUCCESS"), &body);
    let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
    let verified = v.verify(&headers, &body).await.expect("verified");
    assert_eq!(verified.signed_at, sent);
    assert_eq!(*fake.exact.lock().expect("lock"), vec![true]);
}

/// The fake's byte comparison is not satisfied by an equal but re-serialised event.
#[tokio::test]
async fn the_fake_tells_a_reserialised_event_from_the_received_one() {
    let (headers, body, sent) = delivery();
    let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let reserialised = serde_json::to_vec(&parsed).expect("JSON");
    assert_ne!(reserialised, body);
    let fake = FakePaypal::new(Answer::Status("SUCCESS"), &body);
    let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
    v.verify(&headers, &reserialised)
        .await
        .expect("the fake answers SUCCESS");
    assert_eq!(*fake.exact.lock().expect("lock"), vec![false]);
}

#[tokio::test]
async fn failure_is_a_rejection() {
    let (headers, body, sent) = delivery();
    let fake = FakePaypal::new(Answer::Status("FAILURE"), &body);
    let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
    let e = v.verify(&headers, &body).await.expect_err("not verified");
    assert_eq!(
        e,
        Error::Rejected(Rejection::Unauthentic(Refusal::new(
            PaypalRejection::ApiNotVerified
        )))
    );
    assert_eq!(e.kind(), ErrorKind::Rejected);
}

#[tokio::test]
async fn a_server_error_or_no_answer_is_transient() {
    let (headers, body, sent) = delivery();
    for answer in [
        Answer::Http(StatusCode::INTERNAL_SERVER_ERROR),
        Answer::Http(StatusCode::SERVICE_UNAVAILABLE),
        Answer::Hang,
    ] {
        let fake = FakePaypal::new(answer, &body);
        let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
        let e = v.verify(&headers, &body).await.expect_err("unavailable");
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
        assert!(matches!(e, Error::Api(_)), "{e:?}");
        assert!(!e.to_string().contains(SECRET) && !e.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn a_bad_request_is_a_rejection() {
    let (headers, body, sent) = delivery();
    let fake = FakePaypal::new(Answer::Http(StatusCode::BAD_REQUEST), &body);
    let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
    let e = v.verify(&headers, &body).await.expect_err("refused");
    assert_eq!(
        e,
        Error::Rejected(Rejection::Unauthentic(Refusal::new(
            PaypalRejection::ApiRequestRefused(400)
        )))
    );
}

#[tokio::test]
async fn the_token_is_cached_until_shortly_before_it_expires() {
    let (headers, body, sent) = delivery();
    let t = super::transmission::Transmission::from_headers(&headers).expect("headers");
    let fake = FakePaypal::new(Answer::Status("SUCCESS"), &body);
    let clock = Arc::new(FixedClock::at(sent));
    let api = api(&fake, clock.clone()).await;
    let tokens = || fake.token_calls.load(Ordering::SeqCst);
    for _ in 0..3 {
        api.verify(&t, WEBHOOK_ID, &body).await.expect("verified");
    }
    assert_eq!((tokens(), fake.verify_calls.load(Ordering::SeqCst)), (1, 3));
    // Renewed 60 s before PayPal's expiry, not earlier.
    clock.set(sent + TOKEN_LIFETIME - 61);
    api.verify(&t, WEBHOOK_ID, &body).await.expect("verified");
    assert_eq!(tokens(), 1);
    clock.set(sent + TOKEN_LIFETIME - 60);
    api.verify(&t, WEBHOOK_ID, &body).await.expect("verified");
    assert_eq!(tokens(), 2);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_without_a_call() {
    let (headers, _, sent) = delivery();
    let fake = FakePaypal::new(Answer::Status("SUCCESS"), b"");
    let v = verifier(&fake, Arc::new(FixedClock::at(sent))).await;
    for bad in [&b"[1,2]"[..], b"{\"a\":", b"not json", b""] {
        let e = v.verify(&headers, bad).await.expect_err("not an object");
        assert_eq!(
            e,
            Error::Rejected(Rejection::Unauthentic(Refusal::new(
                PaypalRejection::BodyNotJsonObject
            )))
        );
    }
    assert_eq!(fake.token_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_client_secret_is_transient_and_never_shown() {
    let (headers, body, sent) = delivery();
    let fake = FakePaypal::new(Answer::Status("SUCCESS"), &body);
    let base = spawn(fake.clone()).await;
    let clock = Arc::new(FixedClock::at(sent));
    let wrong = "wrong-secret-DO-NOT-PRINT";
    let api = PaypalApi::new(
        &base,
        CLIENT_ID.into(),
        ClientSecret::new(wrong),
        CallBounds::default(),
        clock.clone(),
    )
    .expect("client");
    assert!(!format!("{api:?}").contains(wrong));
    let v = PaypalVerifier::api(WEBHOOK_ID, 300, api, clock);
    let e = v.verify(&headers, &body).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(!format!("{e} {e:?}").contains(wrong), "{e:?}");
    assert_eq!(fake.verify_calls.load(Ordering::SeqCst), 0);
}
