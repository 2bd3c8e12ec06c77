//! Offline verification end to end: PayPal's two real signed deliveries, then deliveries signed
//! under a CA made here (rcgen), each refused for one reason while everything else is right.

use super::cert_url::CertUrlPolicy;
use super::certs::TrustRoots;
use super::fetch::{CertFetchError, CertFetcher};
use super::{PaypalRejection, PaypalVerifier};
use crate::error::{Error, ErrorKind, Rejection};
use crate::ports::{ApiError, FixedClock};
use async_trait::async_trait;
use base64::Engine;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::Url;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/paypal");
const REAL_CERT_URL: &str =
    "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77";

/// Serves fixed documents by URL and counts every fetch; an unknown URL is PayPal's 404.
#[derive(Default)]
struct CountingFetcher {
    documents: Mutex<HashMap<String, Vec<u8>>>,
    /// URLs whose fetch fails as if PayPal could not be reached.
    down: Mutex<Vec<String>>,
    fetches: AtomicUsize,
}

impl CountingFetcher {
    fn serving(url: &str, pem: &str) -> Arc<Self> {
        let fetcher = Self::default();
        fetcher
            .documents
            .lock()
            .expect("lock")
            .insert(url.to_owned(), pem.as_bytes().to_vec());
        Arc::new(fetcher)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CertFetcher for CountingFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self
            .down
            .lock()
            .expect("lock")
            .iter()
            .any(|u| u == url.as_str())
        {
            return Err(ApiError("connect".into()).into());
        }
        let documents = self.documents.lock().expect("lock");
        documents
            .get(url.as_str())
            .cloned()
            .ok_or(CertFetchError::NotFound(404))
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    map
}

fn paypal(e: Result<impl std::fmt::Debug, Error>) -> PaypalRejection {
    match e {
        Err(Error::Rejected(Rejection::Unauthentic(r))) => r
            .downcast_ref::<PaypalRejection>()
            .cloned()
            .unwrap_or_else(|| panic!("expected a PayPal rejection, got {r:?}")),
        other => panic!("expected a PayPal rejection, got {other:?}"),
    }
}

// ---- The real deliveries -------------------------------------------------------------------

/// One of the real signed deliveries: its headers, its exact body, its webhook id and time.
struct Real {
    headers: http::HeaderMap,
    body: Vec<u8>,
    webhook_id: String,
    sent: i64,
}

fn real(year: u16) -> Real {
    let dir = format!("real-signed-{year}");
    let doc: serde_json::Value =
        serde_json::from_slice(&read(&format!("{dir}/PAYMENT.SALE.COMPLETED.signed.json")))
            .expect("JSON");
    let body = read(&format!("{dir}/PAYMENT.SALE.COMPLETED.body.json"));
    assert_eq!(doc["raw_body"].as_str().expect("raw_body").as_bytes(), body);
    let pairs: Vec<(String, String)> = doc["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (&**k, &**v)).collect();
    let headers = headers(&pairs);
    let time = headers["PAYPAL-TRANSMISSION-TIME"].to_str().expect("ascii");
    Real {
        sent: super::transmission::parse_rfc3339(time).expect("time"),
        webhook_id: doc["webhook_id"].as_str().expect("webhook_id").to_owned(),
        headers,
        body,
    }
}

/// The DigiCert root and intermediate beside the 2015 certificate, as the trust roots.
fn real_chain() -> TrustRoots {
    let mut pem = read("real-signed-2015/DigiCertHighAssuranceEVRootCA.crt.pem");
    pem.push(b'\n'); // the file has no final newline
    pem.extend(read(
        "real-signed-2015/DigiCertSHA2ExtendedValidationServerCA.crt.pem",
    ));
    TrustRoots::from_pem(&pem).expect("DigiCert PEMs")
}

/// A verifier for `r` with PayPal's certificate pre-seeded (the fetcher serves nothing).
async fn real_verifier(r: &Real, roots: TrustRoots) -> (PaypalVerifier, Arc<CountingFetcher>) {
    let fetcher = Arc::new(CountingFetcher::default());
    let verifier = PaypalVerifier::offline(
        r.webhook_id.clone(),
        300,
        CertUrlPolicy::default(),
        roots,
        fetcher.clone(),
        Arc::new(FixedClock::at(r.sent)),
    );
    let cert = read("real-signed-2015/CERT-360caa42-fca2a594-a5cafa77.pem");
    verifier
        .cert_cache()
        .expect("offline")
        .seed(REAL_CERT_URL, &cert)
        .await
        .expect("seed");
    (verifier, fetcher)
}

#[tokio::test]
async fn real_2015_delivery_verifies_at_its_send_time() {
    let r = real(2015);
    assert_eq!(r.sent, 1_431_963_913); // 2015-05-18T15:45:13Z
    let (verifier, fetcher) = real_verifier(&r, real_chain()).await;
    let verified = verifier
        .verify(&r.headers, &r.body)
        .await
        .expect("authentic");
    assert_eq!(verified.signed_at, r.sent);
    assert_eq!(fetcher.fetches(), 0, "the certificate came from the cache");
}

/// The 2016 delivery names the same certificate URL, and its signature verifies under that
/// certificate (checked with openssl too when the fixture was copied).
#[tokio::test]
async fn real_2016_delivery_verifies_with_the_same_certificate() {
    let r = real(2016);
    assert_eq!(r.headers["PAYPAL-CERT-URL"], REAL_CERT_URL);
    let (verifier, _) = real_verifier(&r, real_chain()).await;
    let verified = verifier
        .verify(&r.headers, &r.body)
        .await
        .expect("authentic");
    assert_eq!(verified.signed_at, 1_474_495_246); // 2016-09-21T22:00:46Z
}

#[tokio::test]
async fn real_deliveries_verify_with_the_built_in_roots() {
    for year in [2015, 2016] {
        let r = real(year);
        let (verifier, _) = real_verifier(&r, TrustRoots::built_in()).await;
        assert!(verifier.verify(&r.headers, &r.body).await.is_ok(), "{year}");
    }
}

#[tokio::test]
async fn real_deliveries_refuse_a_changed_body_a_changed_id_and_an_unrelated_root() {
    let r = real(2016);
    let (verifier, _) = real_verifier(&r, real_chain()).await;
    let mut body = r.body.clone();
    body.push(b'\n');
    let got = paypal(verifier.verify(&r.headers, &body).await);
    assert_eq!(got, PaypalRejection::SignatureMismatch);
    // The 2015 delivery's webhook id with the 2016 delivery: the signed string differs.
    let other = Real {
        webhook_id: real(2015).webhook_id,
        ..real(2016)
    };
    let (verifier, _) = real_verifier(&other, real_chain()).await;
    let got = paypal(verifier.verify(&other.headers, &other.body).await);
    assert_eq!(got, PaypalRejection::SignatureMismatch);
    // Global Root G2 alone is not this certificate's root.
    let g2 = include_bytes!("roots/DigiCert_Global_Root_G2.pem");
    let (verifier, _) = real_verifier(&r, TrustRoots::from_pem(g2).expect("pem")).await;
    let got = paypal(verifier.verify(&r.headers, &r.body).await);
    assert_eq!(got, PaypalRejection::CertUntrusted);
}

/// From configuration to verdict: `read_paypal` with the real chain as `PAYPAL_TRUST_ROOTS`,
/// then `from_settings` (its https fetcher is never used: the certificate is seeded).
#[tokio::test]
async fn configured_offline_verifier_accepts_the_real_delivery() {
    let path = chain_file();
    let r = real(2015);
    let vars = HashMap::from([
        ("PAYPAL_WEBHOOK_ID", r.webhook_id.clone()),
        ("PAYPAL_TRUST_ROOTS", path.clone()),
    ]);
    let settings = super::settings::read_paypal(|k| vars.get(k).cloned()).expect("settings");
    let clock = Arc::new(FixedClock::at(r.sent));
    let verifier =
        PaypalVerifier::from_settings(&settings, crate::bounds::CallBounds::default(), None, clock)
            .await
            .expect("built");
    let cert = read("real-signed-2015/CERT-360caa42-fca2a594-a5cafa77.pem");
    let cache = verifier.cert_cache().expect("offline");
    cache.seed(REAL_CERT_URL, &cert).await.expect("seed");
    assert!(verifier.verify(&r.headers, &r.body).await.is_ok());
    std::fs::remove_file(path).expect("clean up");
}

/// The real root and intermediate in one PEM file under the temp directory; its path.
fn chain_file() -> String {
    let path = std::env::temp_dir().join(format!("paypal-roots-{}.pem", std::process::id()));
    let mut pem = read("real-signed-2015/DigiCertHighAssuranceEVRootCA.crt.pem");
    pem.push(b'\n');
    pem.extend(read(
        "real-signed-2015/DigiCertSHA2ExtendedValidationServerCA.crt.pem",
    ));
    std::fs::write(&path, pem).expect("write");
    path.to_string_lossy().into_owned()
}

// ---- A CA made here ------------------------------------------------------------------------

const OUR_WEBHOOK_ID: &str = "8PT597110X687430LKGECATA";
/// 2025-06-01T12:00:00Z: the clock and, unless a test says otherwise, the transmission time.
const NOW: i64 = 1_748_779_200;
const NOW_TEXT: &str = "2025-06-01T12:00:00Z";
const CERT_URL: &str = "https://api.paypal.com/v1/notifications/certs/CERT-test-0001";
const BODY: &[u8] =
    br#"{"id":"WH-TEST-0WNFX","event_type":"PAYMENT.SALE.COMPLETED","resource":{"id":"S1"}}"#;
const PAYPAL_CN: &str = "messageverificationcerts.paypal.com";

/// A certificate authority: its parameters and key (ECDSA P-256: quick to make).
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2035, 1, 1);
    let pem = params.self_signed(&key).expect("self-signed").pem();
    Ca { params, key, pem }
}

/// The signing key of every leaf: RSA 2048, as PayPal's, made once (RSA generation is slow).
fn leaf_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("rsa")
    })
}

/// The trusted test CA, made once.
fn trusted_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| ca("Test Root CA"))
}

/// A leaf certificate (PEM) issued by `issuer`, with subject CN `cn` (none if `None`), valid
/// over the given years, for TLS server use like PayPal's.
fn leaf(issuer: &Ca, cn: Option<&str>, years: (i32, i32)) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "PayPal, Inc.");
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = date_time_ymd(years.0, 1, 1);
    params.not_after = date_time_ymd(years.1, 1, 1);
    let issuer = Issuer::from_params(&issuer.params, &issuer.key);
    params.signed_by(leaf_key(), &issuer).expect("signed").pem()
}

fn good_leaf() -> String {
    leaf(trusted_ca(), Some(PAYPAL_CN), (2024, 2027))
}

/// RSA PKCS#1 v1.5 with SHA-256 over `message` with the leaf key.
fn rsa_sign(message: &str) -> String {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let pair = RsaKeyPair::from_pkcs8(&leaf_key().serialize_der()).expect("pkcs8");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    base64::engine::general_purpose::STANDARD.encode(sig)
}

/// A delivery as PayPal would send it; each test changes one thing.
struct Delivery {
    id: &'static str,
    time: &'static str,
    cert_url: &'static str,
    /// The `PAYPAL-AUTH-ALGO` header (the signature is always SHA-256).
    algo: &'static str,
    /// The webhook id the signature covers.
    signed_webhook_id: &'static str,
    body: &'static [u8],
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            id: "5d1d8a30-1f3c-11f0-9a4e-0WNFX0000001",
            time: NOW_TEXT,
            cert_url: CERT_URL,
            algo: "SHA256withRSA",
            signed_webhook_id: OUR_WEBHOOK_ID,
            body: BODY,
        }
    }
}

impl Delivery {
    fn headers(&self) -> http::HeaderMap {
        let message = format!(
            "{}|{}|{}|{}",
            self.id,
            self.time,
            self.signed_webhook_id,
            crc32fast::hash(self.body)
        );
        let sig = rsa_sign(&message);
        headers(&[
            ("PAYPAL-TRANSMISSION-ID", self.id),
            ("PAYPAL-TRANSMISSION-TIME", self.time),
            ("PAYPAL-TRANSMISSION-SIG", &sig),
            ("PAYPAL-CERT-URL", self.cert_url),
            ("PAYPAL-AUTH-ALGO", self.algo),
        ])
    }
}

/// A verifier trusting only the test CA, whose fetcher serves `pem` at `CERT_URL`.
fn verifier_serving(pem: &str) -> (PaypalVerifier, Arc<CountingFetcher>) {
    let fetcher = CountingFetcher::serving(CERT_URL, pem);
    let roots = TrustRoots::from_pem(trusted_ca().pem.as_bytes()).expect("test CA");
    let verifier = PaypalVerifier::offline(
        OUR_WEBHOOK_ID,
        300,
        CertUrlPolicy::default(),
        roots,
        fetcher.clone(),
        Arc::new(FixedClock::at(NOW)),
    );
    (verifier, fetcher)
}

/// The delivery checked against a verifier whose certificate URL serves `pem`.
async fn check(delivery: &Delivery, pem: &str) -> Result<(), Error> {
    let (verifier, _) = verifier_serving(pem);
    verifier
        .verify(&delivery.headers(), delivery.body)
        .await
        .map(|_| ())
}

/// The baseline every refusal below departs from by one change.
#[tokio::test]
async fn a_delivery_signed_under_the_test_ca_verifies() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let verified = verifier
        .verify(&Delivery::default().headers(), BODY)
        .await
        .expect("authentic");
    assert_eq!(verified.signed_at, NOW);
    assert_eq!(fetcher.fetches(), 1);
}

#[tokio::test]
async fn a_certificate_from_a_rogue_root_is_refused() {
    // A root of its own name, and one copying the trusted root's name with another key.
    for name in ["Rogue Root CA", "Test Root CA"] {
        let rogue = ca(name);
        let pem = leaf(&rogue, Some(PAYPAL_CN), (2024, 2027));
        let got = paypal(check(&Delivery::default(), &pem).await);
        assert_eq!(got, PaypalRejection::CertUntrusted, "{name}");
    }
}

#[tokio::test]
async fn a_common_name_that_only_looks_like_paypal_is_refused() {
    for cn in [
        "paypal.com.evil.example",
        "messageverificationcerts.paypal.com.evil.example",
        "evilpaypal.com",
    ] {
        let pem = leaf(trusted_ca(), Some(cn), (2024, 2027));
        let got = paypal(check(&Delivery::default(), &pem).await);
        assert_eq!(got, PaypalRejection::CertNotPaypal, "{cn}");
    }
}

#[tokio::test]
async fn a_certificate_without_a_common_name_is_refused() {
    let pem = leaf(trusted_ca(), None, (2024, 2027));
    let got = paypal(check(&Delivery::default(), &pem).await);
    assert_eq!(got, PaypalRejection::CertNoCommonName);
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let pem = leaf(trusted_ca(), Some(PAYPAL_CN), (2022, 2024));
    let got = paypal(check(&Delivery::default(), &pem).await);
    assert_eq!(got, PaypalRejection::CertNotValidNow);
    let not_yet = leaf(trusted_ca(), Some(PAYPAL_CN), (2026, 2028));
    let got = paypal(check(&Delivery::default(), &not_yet).await);
    assert_eq!(got, PaypalRejection::CertNotValidNow);
}

#[tokio::test]
async fn a_cert_url_on_another_host_is_refused_without_a_fetch() {
    for url in [
        "https://evil.example/v1/notifications/certs/CERT-test-0001",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-test-0001",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-test-0001",
    ] {
        let (verifier, fetcher) = verifier_serving(&good_leaf());
        let delivery = Delivery {
            cert_url: url,
            ..Delivery::default()
        };
        let got = paypal(verifier.verify(&delivery.headers(), BODY).await);
        assert_eq!(got, PaypalRejection::CertUrlNotAllowed, "{url}");
        assert_eq!(fetcher.fetches(), 0, "{url}");
    }
}

#[tokio::test]
async fn a_cert_url_over_http_is_refused_without_a_fetch() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let delivery = Delivery {
        cert_url: "http://api.paypal.com/v1/notifications/certs/CERT-test-0001",
        ..Delivery::default()
    };
    let got = paypal(verifier.verify(&delivery.headers(), BODY).await);
    assert_eq!(got, PaypalRejection::CertUrlNotHttps);
    assert_eq!(fetcher.fetches(), 0);
}

/// The signature is a valid SHA-256 one: only the refusal of what the header names rejects it.
#[tokio::test]
async fn sha1_is_refused_before_anything_is_fetched() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let delivery = Delivery {
        algo: "SHA1withRSA",
        ..Delivery::default()
    };
    let got = paypal(verifier.verify(&delivery.headers(), BODY).await);
    assert_eq!(got, PaypalRejection::WeakAlgorithm);
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let (verifier, _) = verifier_serving(&good_leaf());
    let tampered =
        br#"{"id":"WH-TEST-0WNFX","event_type":"PAYMENT.SALE.COMPLETED","resource":{"id":"S2"}}"#;
    let e = verifier
        .verify(&Delivery::default().headers(), tampered)
        .await;
    // A rejection: answered 400, nothing stored.
    assert_eq!(
        e.as_ref().map_err(Error::kind).err(),
        Some(ErrorKind::Rejected)
    );
    assert_eq!(paypal(e), PaypalRejection::SignatureMismatch);
}

/// Signed for another webhook (another PayPal app's listener): our id is in the signed
/// string, not the delivery's, so it does not verify here.
#[tokio::test]
async fn a_delivery_for_another_webhook_id_is_refused() {
    let delivery = Delivery {
        signed_webhook_id: "3XW51226GF2939201",
        ..Delivery::default()
    };
    let got = paypal(check(&delivery, &good_leaf()).await);
    assert_eq!(got, PaypalRejection::SignatureMismatch);
}

#[tokio::test]
async fn a_stale_transmission_time_is_refused() {
    // NOW - 301 s is refused, NOW - 300 s is not: the window is 300 s.
    let stale = Delivery {
        time: "2025-06-01T11:54:59Z",
        ..Delivery::default()
    };
    let got = paypal(check(&stale, &good_leaf()).await);
    assert_eq!(got, PaypalRejection::OutsideTolerance { age_secs: 301 });
    let edge = Delivery {
        time: "2025-06-01T11:55:00Z",
        ..Delivery::default()
    };
    assert!(check(&edge, &good_leaf()).await.is_ok());
    let future = Delivery {
        time: "2025-06-01T12:05:01Z",
        ..Delivery::default()
    };
    let got = paypal(check(&future, &good_leaf()).await);
    assert_eq!(got, PaypalRejection::OutsideTolerance { age_secs: -301 });
}

#[tokio::test]
async fn the_certificate_is_fetched_once_per_url() {
    let pem = good_leaf();
    let (verifier, fetcher) = verifier_serving(&pem);
    let other_url = "https://api.paypal.com/v1/notifications/certs/CERT-test-0002";
    fetcher
        .documents
        .lock()
        .expect("lock")
        .insert(other_url.to_owned(), pem.into_bytes());
    for _ in 0..3 {
        assert!(verifier
            .verify(&Delivery::default().headers(), BODY)
            .await
            .is_ok());
    }
    assert_eq!(fetcher.fetches(), 1);
    let other = Delivery {
        cert_url: other_url,
        ..Delivery::default()
    };
    for _ in 0..2 {
        assert!(verifier.verify(&other.headers(), BODY).await.is_ok());
    }
    assert_eq!(fetcher.fetches(), 2);
}

#[tokio::test]
async fn missing_or_malformed_headers_are_named() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let full = Delivery::default().headers();
    for name in [
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ] {
        let mut h = full.clone();
        h.remove(name);
        let got = paypal(verifier.verify(&h, BODY).await);
        assert_eq!(got, PaypalRejection::MissingHeader(name));
        let mut h = full.clone();
        h.insert(
            http::HeaderName::from_static(static_lower(name)),
            http::HeaderValue::from_static("not|valid%%"),
        );
        let got = paypal(verifier.verify(&h, BODY).await);
        let expected = if name == "PAYPAL-AUTH-ALGO" {
            PaypalRejection::UnknownAlgorithm
        } else {
            PaypalRejection::MalformedHeader(name)
        };
        assert_eq!(got, expected, "{name}");
        // Every message names the check, never the value.
        assert!(!got.to_string().contains("not|valid"));
    }
    assert_eq!(fetcher.fetches(), 0);
}

fn static_lower(name: &str) -> &'static str {
    match name {
        "PAYPAL-TRANSMISSION-ID" => "paypal-transmission-id",
        "PAYPAL-TRANSMISSION-TIME" => "paypal-transmission-time",
        "PAYPAL-TRANSMISSION-SIG" => "paypal-transmission-sig",
        "PAYPAL-CERT-URL" => "paypal-cert-url",
        _ => "paypal-auth-algo",
    }
}

// ---- What a forgery costs (issue 17, point 5) ----------------------------------------------

use super::transmission::crc32_suffix;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn the_crc32_suffix_collides() {
    let mut forged = BODY.to_vec();
    forged.extend(crc32_suffix(BODY, crc32fast::hash(BODY)));
    assert_ne!(forged, BODY);
    assert_eq!(crc32fast::hash(&forged), crc32fast::hash(BODY));
}

/// The signature covers the body's CRC-32 only: a captured signature with another body of the
/// same CRC-32 verifies. The transmission id is accepted once per body: the forgery is refused,
/// while PayPal's own redelivery of the same body still passes (the ledger dedupes it).
#[tokio::test]
async fn a_transmission_id_carries_one_body_only() {
    let (verifier, _) = verifier_serving(&good_leaf());
    let headers = Delivery::default().headers();
    let mut forged = BODY.to_vec();
    forged.extend(crc32_suffix(BODY, crc32fast::hash(BODY)));
    assert!(verifier.verify(&headers, BODY).await.is_ok());
    let e = verifier.verify(&headers, &forged).await;
    assert_eq!(
        e.as_ref().map_err(Error::kind).err(),
        Some(ErrorKind::Rejected),
        "{e:?}"
    );
    assert!(
        verifier.verify(&headers, BODY).await.is_ok(),
        "a redelivery"
    );
}

#[tokio::test]
async fn a_cert_url_off_paypals_certificate_path_is_refused_without_a_fetch() {
    for url in [
        "https://api.paypal.com/v1/oauth2/token",
        "https://api.paypal.com/",
        "https://api.paypal.com/v1/notifications/certs/",
        "https://api.paypal.com/v1/notifications/certs/CERT-test-0001/more",
        "https://api.paypal.com/v1/notifications/certs/NOT-A-CERT",
        "https://api.paypal.com/v1/notifications/certs/%43ERT-test-0001",
        "https://api.paypal.com/x/v1/notifications/certs/CERT-test-0001",
        "https://api.paypal.com/v1/notifications/certs/CERT-test-0001?v=1",
        "https://api.paypal.com/v1/notifications/certs/CERT-test-0001?",
    ] {
        let (verifier, fetcher) = verifier_serving(&good_leaf());
        let delivery = Delivery {
            cert_url: url,
            ..Delivery::default()
        };
        let got = paypal(verifier.verify(&delivery.headers(), BODY).await);
        assert_eq!(got, PaypalRejection::CertUrlNotAllowed, "{url}");
        assert_eq!(fetcher.fetches(), 0, "{url}");
    }
}

/// Query variants once each cost a fetch and, past 64 of them, evicted the real certificate.
#[tokio::test]
async fn query_variants_neither_cost_a_fetch_nor_evict_the_certificate() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    assert!(verifier
        .verify(&Delivery::default().headers(), BODY)
        .await
        .is_ok());
    for n in 0..100 {
        let variant = Delivery {
            cert_url: leak(format!("{CERT_URL}?v={n}")),
            ..Delivery::default()
        };
        assert!(verifier.verify(&variant.headers(), BODY).await.is_err());
    }
    assert!(verifier
        .verify(&Delivery::default().headers(), BODY)
        .await
        .is_ok());
    assert_eq!(fetcher.fetches(), 1);
}

/// A signature shorter than any RSA key PayPal could use is refused before a fetch.
#[tokio::test]
async fn a_signature_too_short_for_rsa_is_refused_without_a_fetch() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let mut headers = Delivery::default().headers();
    headers.insert(
        "paypal-transmission-sig",
        http::HeaderValue::from_static("c2hvcnQ="),
    );
    let got = paypal(verifier.verify(&headers, BODY).await);
    assert_eq!(
        got,
        PaypalRejection::MalformedHeader("PAYPAL-TRANSMISSION-SIG")
    );
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn without_a_webhook_id_nothing_is_fetched() {
    let fetcher = CountingFetcher::serving(CERT_URL, &good_leaf());
    let roots = TrustRoots::from_pem(trusted_ca().pem.as_bytes()).expect("test CA");
    let verifier = PaypalVerifier::offline(
        "",
        300,
        CertUrlPolicy::default(),
        roots,
        fetcher.clone(),
        Arc::new(FixedClock::at(NOW)),
    );
    let e = verifier.verify(&Delivery::default().headers(), BODY).await;
    assert!(matches!(e, Err(Error::Rejected(_))), "{e:?}");
    assert_eq!(fetcher.fetches(), 0);
}

/// A certificate PayPal says does not exist is the sender's fault: 400, remembered for the
/// failure period, then asked again.
#[tokio::test]
async fn a_certificate_paypal_does_not_have_is_400_and_remembered_briefly() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let missing = Delivery {
        cert_url: "https://api.paypal.com/v1/notifications/certs/CERT-missing",
        ..Delivery::default()
    };
    for _ in 0..3 {
        let e = verifier.verify(&missing.headers(), BODY).await;
        assert_eq!(
            e.as_ref().map_err(Error::kind).err(),
            Some(ErrorKind::Rejected),
            "{e:?}"
        );
    }
    assert_eq!(fetcher.fetches(), 1);
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    tokio::time::resume();
    assert!(verifier.verify(&missing.headers(), BODY).await.is_err());
    assert_eq!(fetcher.fetches(), 2);
}

/// PayPal unreachable is transient (503), and remembered for the failure period too, so a
/// flood of deliveries makes one call per period.
#[tokio::test]
async fn an_unreachable_certificate_is_503_and_remembered_briefly() {
    let (verifier, fetcher) = verifier_serving(&good_leaf());
    let down = "https://api.paypal.com/v1/notifications/certs/CERT-down";
    fetcher.down.lock().expect("lock").push(down.to_owned());
    let delivery = Delivery {
        cert_url: down,
        ..Delivery::default()
    };
    for _ in 0..3 {
        let e = verifier
            .verify(&delivery.headers(), BODY)
            .await
            .expect_err("unreachable");
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    }
    assert_eq!(fetcher.fetches(), 1);
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    tokio::time::resume();
    let e = verifier.verify(&delivery.headers(), BODY).await;
    assert_eq!(e.map_err(|e| e.kind()).err(), Some(ErrorKind::Transient));
    assert_eq!(fetcher.fetches(), 2);
}

/// Serves `pem` at every URL, each fetch waiting for a permit; counts fetches.
struct GatedFetcher {
    pem: Vec<u8>,
    gate: tokio::sync::Semaphore,
    fetches: AtomicUsize,
}

#[async_trait]
impl CertFetcher for GatedFetcher {
    async fn fetch(&self, _url: &Url) -> Result<Vec<u8>, CertFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await.expect("gate open");
        Ok(self.pem.clone())
    }
}

/// Deliveries naming one new certificate wait for one fetch; a delivery whose certificate is
/// known is not held up by it.
#[tokio::test]
async fn one_fetch_per_url_and_no_lock_held_across_it() {
    let fetcher = Arc::new(GatedFetcher {
        pem: good_leaf().into_bytes(),
        gate: tokio::sync::Semaphore::new(0),
        fetches: AtomicUsize::new(0),
    });
    let roots = TrustRoots::from_pem(trusted_ca().pem.as_bytes()).expect("test CA");
    let verifier = Arc::new(PaypalVerifier::offline(
        OUR_WEBHOOK_ID,
        300,
        CertUrlPolicy::default(),
        roots,
        fetcher.clone(),
        Arc::new(FixedClock::at(NOW)),
    ));
    let known = "https://api.paypal.com/v1/notifications/certs/CERT-known";
    let cache = verifier.cert_cache().expect("offline");
    cache
        .seed(known, good_leaf().as_bytes())
        .await
        .expect("seed");
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let verifier = verifier.clone();
            tokio::spawn(async move {
                let headers = Delivery::default().headers();
                verifier.verify(&headers, BODY).await.map(|_| ())
            })
        })
        .collect();
    while fetcher.fetches.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let other = Delivery {
        id: "5d1d8a30-1f3c-11f0-9a4e-0WNFX0000002",
        cert_url: known,
        ..Delivery::default()
    };
    // A hang guard, not a timing assertion: with the cache locked across the fetch this
    // delivery would wait for the gate, which opens only after it.
    let quick = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        verifier.verify(&other.headers(), BODY),
    )
    .await;
    assert!(matches!(quick, Ok(Ok(_))), "{quick:?}");
    fetcher.gate.add_permits(10);
    for task in waiting {
        assert_eq!(task.await.expect("joined"), Ok(()));
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
}
