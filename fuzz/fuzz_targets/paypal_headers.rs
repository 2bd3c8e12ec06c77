//! PayPal's transmission headers, certificate URL and certificate over any bytes. Input: the
//! five `PAYPAL-*` values (id, time, signature, certificate URL, algorithm), one a line, then
//! the rest (the body, also read as a PEM certificate). Contract: nothing panics; a URL the
//! policy allows is https on one of PayPal's hosts; a time read is the time the text says.
#![no_main]

use billing::providers::paypal::cert_url::{CertUrlPolicy, DEFAULT_PREFIXES};
use billing::providers::paypal::certs::CertBundle;
use billing::providers::paypal::translate::millis_of;
use billing::providers::paypal::transmission::{
    parse_rfc3339, Transmission, AUTH_ALGO, CERT_URL, TRANSMISSION_ID, TRANSMISSION_SIG,
    TRANSMISSION_TIME,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// 2016-09-21T22:00:46Z, the real signed delivery's time: its seed passes the age check.
const NOW: i64 = 1_474_495_246;

fn policy() -> &'static CertUrlPolicy {
    static POLICY: OnceLock<CertUrlPolicy> = OnceLock::new();
    POLICY.get_or_init(CertUrlPolicy::default)
}

/// One of the default prefixes' hosts.
fn paypal_host(host: Option<&str>) -> bool {
    DEFAULT_PREFIXES
        .iter()
        .any(|prefix| Some(prefix.trim_start_matches("https://").trim_end_matches('/')) == host)
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(6, |&b| b == b'\n');
    let names = [
        TRANSMISSION_ID,
        TRANSMISSION_TIME,
        TRANSMISSION_SIG,
        CERT_URL,
        AUTH_ALGO,
    ];
    let mut headers = http::HeaderMap::new();
    let mut values: Vec<&[u8]> = Vec::new();
    for name in names {
        let value = parts.next().unwrap_or_default();
        values.push(value);
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            headers.insert(name, value);
        }
    }
    let body = parts.next().unwrap_or_default();

    if let Ok(t) = Transmission::from_headers(&headers) {
        let _ = t.check_age(NOW, 300);
        let signed = t.signed_string("9XL90610J3647323C", body);
        // The id cannot hold the separator, so the signed fields cannot shift.
        assert_eq!(signed.matches('|').count(), 3 + t.time.matches('|').count());
        assert!(!t.id.contains('|'));
    }

    if let Ok(time) = std::str::from_utf8(values[1]) {
        if parse_rfc3339(time).is_some() {
            assert!(millis_of(time) < 1000);
        }
    }
    if let Ok(raw) = std::str::from_utf8(values[3]) {
        if let Ok(url) = policy().check(raw) {
            assert_eq!(url.scheme(), "https");
            assert!(
                paypal_host(url.host_str()) && url.port_or_known_default() == Some(443),
                "allowed a URL off PayPal's hosts"
            );
        }
    }
    let _ = CertBundle::from_pem(body);
});
