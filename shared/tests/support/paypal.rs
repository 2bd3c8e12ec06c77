//! PayPal deliveries signed for tests: a CA made here (rcgen), one PayPal-like leaf under it
//! (RSA 2048, CN `messageverificationcerts.paypal.com`), and a pipeline whose PayPal verifier
//! trusts only that CA, with the leaf pre-seeded in its certificate cache (nothing is fetched).
//! Shared by the `api` and `permutations` suites.

use async_trait::async_trait;
use base64::Engine;
use billing::adapters::memory::StaticSecrets;
use billing::pipeline::Pipeline;
use billing::ports::{ApiError, BillingStore, FixedClock};
use billing::providers::paypal::cert_url::CertUrlPolicy;
use billing::providers::paypal::certs::TrustRoots;
use billing::providers::paypal::fetch::{CertFetchError, CertFetcher};
use billing::providers::paypal::{PaypalProvider, PaypalVerifier};
use billing::providers::stripe::signature::WebhookSecret;
use billing::providers::stripe::{Settings, StripeProvider};
use billing::telemetry::Metrics;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub const WEBHOOK_ID: &str = "0WNFX-SUITE-WEBHOOK";
pub const CERT_URL: &str = "https://api.paypal.com/v1/notifications/certs/CERT-suite-0WNFX";

/// The test CA's certificate and the leaf's certificate and key, made once per process (RSA
/// key generation is slow).
pub struct Signer {
    pub ca_pem: String,
    pub leaf_pem: String,
    key: KeyPair,
}

pub fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "Suite Root CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = date_time_ymd(2000, 1, 1);
        ca.not_after = date_time_ymd(2040, 1, 1);
        let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("RSA key");
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "messageverificationcerts.paypal.com");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Valid over every clock the suites use (2015 to 2030).
        leaf.not_before = date_time_ymd(2001, 1, 1);
        leaf.not_after = date_time_ymd(2039, 1, 1);
        let issuer = Issuer::from_params(&ca, &ca_key);
        let leaf_pem = leaf.signed_by(&key, &issuer).expect("leaf").pem();
        Signer {
            ca_pem,
            leaf_pem,
            key,
        }
    })
}

/// An RFC 3339 time (`…Z`) for Unix seconds `t`.
pub fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The five `PAYPAL-*` headers PayPal would send with `body` at `at`, for our webhook id.
pub fn headers(body: &[u8], at: i64) -> http::HeaderMap {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("0wnfx-suite-{:012}", NEXT.fetch_add(1, Ordering::Relaxed));
    let time = rfc3339(at);
    let message = format!("{id}|{time}|{WEBHOOK_ID}|{}", crc32fast::hash(body));
    let pair = RsaKeyPair::from_pkcs8(&signer().key.serialize_der()).expect("pkcs8");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    let sig = base64::engine::general_purpose::STANDARD.encode(sig);
    let mut map = http::HeaderMap::new();
    for (name, value) in [
        ("paypal-transmission-id", id.as_str()),
        ("paypal-transmission-time", time.as_str()),
        ("paypal-transmission-sig", sig.as_str()),
        ("paypal-cert-url", CERT_URL),
        ("paypal-auth-algo", "SHA256withRSA"),
    ] {
        map.insert(name, http::HeaderValue::from_str(value).expect("value"));
    }
    map
}

/// Serves no certificate: every certificate a test uses is pre-seeded.
struct NoFetch;

#[async_trait]
impl CertFetcher for NoFetch {
    async fn fetch(&self, _url: &reqwest::Url) -> Result<Vec<u8>, CertFetchError> {
        Err(ApiError("tests fetch nothing".into()).into())
    }
}

/// A verifier for `webhook_id` trusting `roots`, with `pem` seeded at `cert_url`.
pub async fn verifier(
    webhook_id: &str,
    roots: TrustRoots,
    cert_url: &str,
    pem: &[u8],
    clock: Arc<FixedClock>,
) -> PaypalVerifier {
    let verifier = PaypalVerifier::offline(
        webhook_id,
        300,
        CertUrlPolicy::default(),
        roots,
        Arc::new(NoFetch),
        clock,
    );
    let cache = verifier.cert_cache().expect("offline");
    cache.seed(cert_url, pem).await.expect("seed");
    verifier
}

/// The suite's verifier: the test CA, its leaf seeded.
pub async fn suite_verifier(clock: Arc<FixedClock>) -> PaypalVerifier {
    let s = signer();
    let roots = TrustRoots::from_pem(s.ca_pem.as_bytes()).expect("CA");
    verifier(WEBHOOK_ID, roots, CERT_URL, s.leaf_pem.as_bytes(), clock).await
}

/// A pipeline with Stripe (`settings`, one secret everywhere) and PayPal (`verifier`).
pub fn pipeline_with_paypal(
    store: Arc<dyn BillingStore>,
    clock: Arc<FixedClock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    stripe_secret: &str,
    verifier: PaypalVerifier,
) -> Pipeline {
    let tiers = settings.tiers.clone();
    let stripe = StripeProvider::new(
        Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(
            stripe_secret,
        )])),
        clock.clone(),
        metrics.clone(),
        settings,
    );
    Pipeline::new(store, clock, metrics, tiers)
        .with_provider(Arc::new(stripe))
        .with_provider(Arc::new(PaypalProvider::new(verifier)))
}
