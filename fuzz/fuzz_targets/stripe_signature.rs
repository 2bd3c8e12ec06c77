//! The `Stripe-Signature` header and its verification over any bytes. Input: the header, a
//! newline, the raw body. Contract: `verify` never panics, accepts only when one of the first
//! 16 `v1` items is the HMAC of (`t`, body) under a configured secret and `t` is within the
//! tolerance, and always accepts what `sign` produced.
#![no_main]

use billing::providers::stripe::signature::{sign, verify, WebhookSecret};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The real signed delivery's timestamp (shared/tests/fixtures/stripe/SIGNED_VECTORS.json):
/// with it as "now", the seed built from that delivery verifies.
const NOW: i64 = 1_746_757_390;
const TOLERANCE: u64 = 300;

/// The published test-mode secret of the real vector, and one of ours.
fn secrets() -> &'static [WebhookSecret; 2] {
    static SECRETS: OnceLock<[WebhookSecret; 2]> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let doc: serde_json::Value = serde_json::from_str(include_str!(
            "../../shared/tests/fixtures/stripe/SIGNED_VECTORS.json"
        ))
        .expect("the vectors are JSON");
        let real = doc["vectors"][0]["secret"].as_str().expect("a secret");
        [WebhookSecret::new(real), WebhookSecret::new("whsec_fuzz")]
    })
}

/// The `v1` values the verifier may compare: the first 16 items keyed `v1`, trimmed.
fn compared_v1(header: &str) -> impl Iterator<Item = &str> {
    header
        .split(',')
        .filter_map(|item| item.split_once('='))
        .filter(|(key, _)| key.trim() == "v1")
        .take(16)
        .map(|(_, value)| value.trim())
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let secrets = secrets();

    if let Ok(header) = std::str::from_utf8(header) {
        if let Ok(t) = verify(Some(header), body, secrets, NOW, TOLERANCE) {
            assert!((i128::from(NOW) - i128::from(t)).unsigned_abs() <= u128::from(TOLERANCE));
            let genuine = secrets.iter().any(|secret| {
                let signed = sign(body, std::slice::from_ref(secret), t);
                let (_, mac) = signed.split_once(",v1=").expect("sign emits a v1");
                compared_v1(header).any(|v1| v1 == mac)
            });
            assert!(genuine, "accepted a header with no matching v1");
        }
    }

    // Whatever the body, what `sign` makes verifies (a timestamp in the window, from the input).
    let t = NOW - i64::try_from(data.len() % 300).unwrap_or(0);
    let header = sign(body, &secrets[1..], t);
    assert_eq!(verify(Some(&header), body, secrets, NOW, TOLERANCE), Ok(t));
});
