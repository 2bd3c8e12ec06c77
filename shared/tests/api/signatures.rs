//! Authenticity at the HTTP boundary: every bad signature is a 400 and stores nothing.

use crate::helpers::*;
use billing::domain::ids::{EventId, Provider};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::json;

fn body() -> Vec<u8> {
    event(
        "evt_sig_1",
        "customer.subscription.created",
        NOW - 10,
        subscription("sub_sig", "cus_sig", "active", Some("u_sig")),
    )
}

async fn assert_rejected(app: &TestApp, header: Option<&str>, body: &[u8], why: &str) {
    let (status, json) = app.post_raw(Family::Subscription, body, header).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {json}");
    let recorded = app
        .store
        .ledger(Provider::STRIPE, &EventId::new("evt_sig_1"))
        .await
        .expect("read");
    assert!(
        recorded.is_none(),
        "{why}: a rejected delivery must store nothing"
    );
}

#[tokio::test]
async fn bad_signatures_are_rejected_and_store_nothing() {
    let app = spawn_memory(false);
    let b = body();
    let good = signed(&b, NOW);
    let v1 = good.split("v1=").nth(1).expect("v1").to_owned();
    assert_rejected(&app, None, &b, "missing header").await;
    assert_rejected(&app, Some("garbage"), &b, "malformed header").await;
    assert_rejected(&app, Some(&format!("v1={v1}")), &b, "no timestamp").await;
    let wrong = sign(&b, &[WebhookSecret::new("whsec_wrong")], NOW);
    assert_rejected(&app, Some(&wrong), &b, "wrong secret").await;
    let mut tampered = b.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert_rejected(&app, Some(&good), &tampered, "tampered body").await;
    assert_rejected(&app, Some(&signed(&b, NOW - 301)), &b, "stale timestamp").await;
    assert_rejected(&app, Some(&signed(&b, NOW + 301)), &b, "future timestamp").await;
    assert_rejected(&app, Some(&format!("t={NOW},v0={v1}")), &b, "v0 only").await;
    assert_rejected(&app, Some(""), b"not json at all", "unsigned garbage").await;
    assert_eq!(
        app.metrics
            .count(billing::telemetry::Counter::SignatureRejected),
        9
    );
}

#[tokio::test]
async fn edge_of_tolerance_and_several_signatures_are_accepted() {
    let app = spawn_memory(false);
    let b = body();
    let good = signed(&b, NOW - 300);
    let v1 = good.split("v1=").nth(1).expect("v1");
    let header = format!(
        "t={},v1={},v1={v1},v0=abc,v9=zzz",
        NOW - 300,
        "0".repeat(64)
    );
    let (status, json) = app.post_raw(Family::Subscription, &b, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "applied");
}

#[tokio::test]
async fn two_secrets_on_one_endpoint_both_verify() {
    let app = spawn_memory(false);
    app.secrets.rotate(
        Family::Subscription,
        vec![WebhookSecret::new(SECRET), WebhookSecret::new("whsec_new")],
    );
    // A miss makes the service re-read its secrets once: the staged rotation is picked up.
    let b = body();
    let header = sign(&b, &[WebhookSecret::new("whsec_new")], NOW);
    let (status, json) = app.post_raw(Family::Subscription, &b, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // The old secret still verifies too (Stripe signs with both during a rotation).
    let b2 = event(
        "evt_sig_2",
        "customer.updated",
        NOW,
        json!({"id": "cus_sig", "object": "customer", "metadata": {}}),
    );
    let (status, _) = app.post(Family::Charge, &b2).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_real_signed_stripe_delivery_verifies_with_an_injected_clock() {
    let vectors: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/SIGNED_VECTORS.json")).expect("vectors");
    let v = &vectors["vectors"][0];
    let body = fixture(&format!(
        "stripe/{}",
        v["body_file"].as_str().expect("file")
    ));
    let header = v["stripe_signature"].as_str().expect("header");
    let t: i64 = header[2..header.find(',').expect(",")].parse().expect("t");
    let app = spawn_memory(false);
    app.secrets.rotate(
        Family::Invoice,
        vec![WebhookSecret::new(v["secret"].as_str().expect("secret"))],
    );
    app.clock.set(t + 5);
    let (status, json) = app.post_raw(Family::Invoice, &body, Some(header)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_ne!(json["state"], "parked");
    // The same bytes an hour later are stale.
    let late = spawn_memory(false);
    late.secrets.rotate(
        Family::Invoice,
        vec![WebhookSecret::new(v["secret"].as_str().expect("secret"))],
    );
    late.clock.set(t + 3600);
    let (status, _) = late.post_raw(Family::Invoice, &body, Some(header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_event_of_the_other_mode_is_rejected() {
    let app = spawn_memory(true);
    let (status, json) = app.post(Family::Subscription, &body()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("livemode"),
        "{json}"
    );
    let recorded = app
        .store
        .ledger(Provider::STRIPE, &EventId::new("evt_sig_1"))
        .await
        .expect("read");
    assert!(recorded.is_none());
}

/// Items Stripe's own libraries skip (bare words, unknown keys, empty items, whitespace) do
/// not stop a delivery with a valid `t` and `v1`; without a `t` it is still a 400.
#[tokio::test]
async fn bare_unknown_and_empty_items_are_ignored_like_stripe_does() {
    let b = body();
    let good = signed(&b, NOW);
    let v1 = good.split("v1=").nth(1).expect("v1").to_owned();
    for header in [
        format!("t={NOW},v1={v1},garbage"),
        format!("t={NOW},future-item=1,v1={v1}"),
        format!(",t={NOW},,v1={v1},"),
        format!("  t={NOW} ,  v1={v1}  , bare ,  "),
    ] {
        let app = spawn_memory(false);
        let (status, json) = app.post_raw(Family::Subscription, &b, Some(&header)).await;
        assert_eq!(status, StatusCode::OK, "{header:?}: {json}");
        assert_eq!(json["state"], "applied", "{header:?}: {json}");
    }
    let app = spawn_memory(false);
    for (header, error) in [
        (
            "bare,words=,only",
            "malformed Stripe-Signature header: missing t",
        ),
        (",, ,", "malformed Stripe-Signature header: missing t"),
    ] {
        let (status, json) = app.post_raw(Family::Subscription, &b, Some(header)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header:?}");
        assert_eq!(json["error"], error, "{header:?}");
    }
    let header = format!("t={NOW},bare,v0={v1}");
    let (status, json) = app.post_raw(Family::Subscription, &b, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "Stripe-Signature header has no v1 signature");
    assert_rejected(&app, Some("bare"), &b, "only a bare item").await;
}
