//! Hostile input is answered within bounded time and memory (issue 17, point 9): deep JSON
//! nesting, huge arrays and a `Stripe-Signature` header of 10,000 items each get a clear error
//! or a bounded result from every entry point that reads outside bytes. The fuzz targets
//! (`fuzz/`, `scripts/fuzz`) explore the same entry points at random; these are the extremes.

use crate::domain::events::BillingEvent;
use crate::providers::stripe::event::{Envelope, EnvelopeError};
use crate::providers::stripe::signature::{sign, verify, SignatureError, WebhookSecret};

/// Deeper than anything real and far past serde_json's recursion limit (128).
const DEPTH: usize = 100_000;
/// Stripe embeds lists of at most 100 entries (its largest page); 1,000 times that.
const HUGE: usize = 100_000;

fn nested(prefix: &str) -> String {
    format!("{prefix}{}", "[".repeat(DEPTH))
}

/// A Stripe event of `event_type` around `object` (already JSON text).
fn stripe_event(event_type: &str, object: &str) -> String {
    format!(
        r#"{{"id":"evt_hostile","type":"{event_type}","created":1,"data":{{"object":{object}}}}}"#
    )
}

fn stripe_read(body: &str) -> Result<BillingEvent, String> {
    let env = Envelope::parse(body.as_bytes()).map_err(|e| e.to_string())?;
    crate::providers::stripe::translate::translate(
        &env,
        &crate::providers::stripe::translate::StripeMapping::default(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn deep_nesting_is_not_a_stripe_event() {
    for body in [
        nested(""),
        nested(r#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":"#),
        "{\"a\":".repeat(DEPTH),
    ] {
        let refused = Envelope::parse(body.as_bytes());
        assert!(
            matches!(&refused, Err(EnvelopeError::NotJson(why)) if why.contains("recursion limit")),
            "{refused:?}"
        );
    }
}

#[test]
fn deep_nesting_is_not_a_paypal_event() {
    use crate::providers::paypal::translate::{Envelope, EnvelopeError};
    for body in [
        nested(""),
        nested(r#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","resource":"#),
    ] {
        assert_eq!(
            Envelope::parse(body.as_bytes()).err(),
            Some(EnvelopeError("not JSON"))
        );
    }
}

#[test]
fn deep_nesting_is_no_lambda_event_outbox_doc_or_email_job() {
    let body = nested("");
    assert!(lambda_http::request::from_str(&body).is_err());
    assert!(serde_json::from_str::<aws_lambda_events::event::dynamodb::Event>(&body).is_err());
    let doc = nested(r#"{"id":"m1","kind":"access.changed","created_at":1,"body":"#);
    let unreadable = crate::ports::read_outbox_doc("m1", Some(&doc)).expect_err("unreadable");
    assert!(
        unreadable.reason.contains("error at line"),
        "{}",
        unreadable.reason
    );
    assert!(crate::emails::job::EmailJob::from_body(&body).is_err());
}

#[test]
fn a_huge_array_is_not_an_event() {
    let body = format!("[{}0]", "0,".repeat(1_000_000));
    assert_eq!(
        Envelope::parse(body.as_bytes()).err(),
        Some(EnvelopeError::Missing("id"))
    );
    assert_eq!(
        crate::providers::paypal::translate::Envelope::parse(body.as_bytes()).err(),
        Some(crate::providers::paypal::translate::EnvelopeError("no id"))
    );
}

#[test]
fn a_huge_entitlement_list_keeps_at_most_one_page_and_says_it_is_partial() {
    let data: Vec<String> = (0..HUGE)
        .map(|i| format!(r#"{{"object":"entitlements.active_entitlement","lookup_key":"f{i}"}}"#))
        .collect();
    let object = format!(
        r#"{{"object":"entitlements.active_entitlement_summary","customer":"cus_1","entitlements":{{"object":"list","data":[{}],"has_more":false}}}}"#,
        data.join(",")
    );
    let event = stripe_read(&stripe_event(
        crate::providers::stripe::entitlements::SUMMARY_UPDATED,
        &object,
    ));
    let Ok(BillingEvent::Entitlements { entitlements, .. }) = event else {
        panic!("not an entitlements event: {event:?}");
    };
    assert!(
        entitlements.lookup_keys.len() <= crate::providers::stripe::entitlements::MAX_KEYS,
        "{} keys kept",
        entitlements.lookup_keys.len()
    );
    assert!(!entitlements.complete, "a cut list is not the whole list");
}

#[test]
fn a_huge_schedule_keeps_a_bounded_number_of_phases() {
    let phases: Vec<String> = (0..HUGE)
        .map(|i| {
            format!(
                r#"{{"start_date":{},"end_date":{},"items":[{{"price":"price_1"}}]}}"#,
                1_000 + i * 10,
                1_010 + i * 10
            )
        })
        .collect();
    let object = format!(
        r#"{{"id":"sub_sched_1","object":"subscription_schedule","customer":"cus_1","status":"not_started","phases":[{}]}}"#,
        phases.join(",")
    );
    let event = stripe_read(&stripe_event("subscription_schedule.updated", &object));
    let Ok(BillingEvent::Schedule { snapshot, .. }) = event else {
        panic!("not a schedule event: {event:?}");
    };
    assert!(
        snapshot.phases.len() <= crate::providers::stripe::schedule::MAX_PHASES,
        "{} phases kept",
        snapshot.phases.len()
    );
    // The first phases are the ones kept: the nearest future.
    assert_eq!(snapshot.phases.first().map(|p| p.start), Some(1_000));
}

const T: i64 = 1_700_000_000;

fn secret() -> WebhookSecret {
    WebhookSecret::new("whsec_hostile")
}

#[test]
fn ten_thousand_signature_items_are_refused_before_any_mac() {
    let body = b"{}";
    let valid = sign(body, &[secret()], T);
    let (_, v1) = valid.split_once(",v1=").expect("a v1");
    // 10,000 `v1` items, the valid one last; 10,000 bare items; 10,000 unknown keys.
    for header in [
        format!(
            "t={T}{},v1={v1}",
            format!(",v1={}", "0".repeat(64)).repeat(9_999)
        ),
        format!("t={T},v1={v1}{}", ",".repeat(10_000)),
        format!("t={T},v1={v1}{}", ",x=1".repeat(10_000)),
    ] {
        assert_eq!(
            verify(Some(&header), body, &[secret()], T, 300),
            Err(SignatureError::Malformed("header longer than 8 KiB")),
            "{} bytes",
            header.len()
        );
    }
}

#[tokio::test]
async fn a_signed_but_deeply_nested_body_is_parked_not_applied() {
    use crate::adapters::memory::{InMemoryBillingStore, StaticSecrets};
    use crate::pipeline::Outcome;
    use crate::ports::{FixedClock, LedgerState};
    use crate::providers::stripe::Family;
    use crate::providers::stripe::{pipeline, Settings, StripeDelivery};
    use std::sync::Arc;

    let service = pipeline(
        Arc::new(InMemoryBillingStore::new()),
        Arc::new(StaticSecrets::everywhere(vec![secret()])),
        Arc::new(FixedClock::at(T)),
        Arc::new(crate::telemetry::Metrics::memory()),
        Settings::default(),
    );
    let body = nested("");
    let header = sign(body.as_bytes(), &[secret()], T);
    let outcome = service
        .receive_stripe(Family::Invoice, Some(&header), body.as_bytes())
        .await;
    assert!(
        matches!(
            outcome,
            Outcome::Recorded {
                state: LedgerState::Parked,
                ..
            }
        ),
        "{outcome:?}"
    );
}

/// Found by the `lambda_events` fuzz target: lambda_http panics (its `expect`s) converting an
/// API Gateway event whose body is marked base64 but does not decode, or whose `host` header
/// makes no URI. API Gateway sends neither (it encodes bodies itself, and routes by host), and
/// lambda_runtime's panic layer would answer that invocation with an error, so the target
/// treats a panic in the conversion as that error. When this fails, upstream stopped panicking
/// and `convert` in `fuzz/fuzz_targets/lambda_events.rs` can call it directly.
#[test]
fn lambda_http_panics_on_events_api_gateway_does_not_send() {
    let event = |host: &str, base64: bool, body: &str| {
        format!(
            r#"{{"version":"2.0","routeKey":"POST /x","rawPath":"/x","rawQueryString":"",
            "headers":{{"host":"{host}"}},"requestContext":{{"accountId":"1","apiId":"a",
            "domainName":"d","domainPrefix":"d","http":{{"method":"POST","path":"/x",
            "protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"u"}},"requestId":"r",
            "routeKey":"POST /x","stage":"$default","time":"t","timeEpoch":0}},
            "isBase64Encoded":{base64},"body":"{body}"}}"#
        )
    };
    for bad in [
        event("d.example", true, "e30=!"),
        event("d}.example", false, "{{}}"),
    ] {
        let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(&bad));
        assert!(converted.is_err(), "lambda_http no longer panics on {bad}");
    }
    assert!(lambda_http::request::from_str(&event("d.example", true, "e30=")).is_ok());
}
