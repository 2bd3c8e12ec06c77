//! Getting PayPal's certificate: a [`CertFetcher`] (https, the platform's roots and
//! `SSL_CERT_FILE`, no redirects) behind a [`CertCache`] keyed by the normalised certificate
//! URL ([`super::cert_url`]). A certificate is kept for the life of the process, so the hot
//! path makes no call once it is known; a failure is kept for [`FAILURE_TTL`], so a flood of
//! deliveries naming a missing or unreachable certificate costs one fetch per period. One
//! fetch per URL at a time: deliveries naming a URL being fetched wait for that fetch, and
//! nothing else waits for it (the map's lock is never held across a call).

use super::certs::CertBundle;
use super::PaypalRejection;
use crate::bounds::CallBounds;
use crate::error::{Error, Refusal, Rejection};
use crate::ports::ApiError;
use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
// tokio's `Instant` is the standard one unless a test pauses tokio's clock.
use tokio::time::Instant;

/// The largest certificate document read: a PEM chain is a few KB.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// Most URLs kept (certificates, failures and fetches in flight; about 1 KB each beside a
/// certificate's few KB). Only PayPal's certificate path on PayPal's hosts is ever fetched, and
/// PayPal rotates its certificate every year or two, so known certificates never fill it;
/// when it is full, failures and fetches in flight are dropped first, known certificates last.
pub const MAX_CACHED_URLS: usize = 256;

/// How long a failed fetch is remembered: a certificate PayPal says does not exist (answered
/// 400), or PayPal not answering (503). Short beside PayPal's retry schedule (its first retry
/// comes minutes later), long enough that a flood makes one fetch per 30 s, not one per delivery.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);

/// Why a certificate could not be fetched, by whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertFetchError {
    /// PayPal answered that nothing is there (404 or 410): the delivery named a certificate
    /// that does not exist (400).
    #[error("PayPal certificate fetch failed: status {0}")]
    NotFound(u16),
    /// No answer, a 5xx, another status, an answer too large: transient (503, PayPal retries).
    #[error(transparent)]
    Unavailable(#[from] ApiError),
}

/// Fetches the document at a certificate URL.
#[async_trait]
pub trait CertFetcher: Send + Sync {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertFetchError>;
}

/// Fetches over https with the providers' shared TLS stack (`adapters::https`): rustls on
/// aws-lc-rs with the platform's roots (`rustls-native-certs`, which reads `SSL_CERT_FILE`
/// when it is set).
pub struct HttpsCertFetcher {
    client: reqwest::Client,
    bounds: CallBounds,
}

impl HttpsCertFetcher {
    pub fn new(bounds: CallBounds) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(crate::adapters::https::tls_config(true)?)
            .https_only(true)
            .connect_timeout(bounds.connect)
            .timeout(bounds.attempt)
            // A redirect could leave the allowed prefixes.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("billing-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError(format!("building the certificate client: {e}")))?;
        Ok(Self { client, bounds })
    }

    async fn get(&self, url: &Url) -> Result<Vec<u8>, CertFetchError> {
        let failed = |kind: &str| ApiError(format!("PayPal certificate fetch failed: {kind}"));
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(if e.is_timeout() { "timeout" } else { "request" }))?;
        match response.status() {
            StatusCode::OK => {}
            s @ (StatusCode::NOT_FOUND | StatusCode::GONE) => {
                return Err(CertFetchError::NotFound(s.as_u16()))
            }
            s => return Err(failed(&format!("status {}", s.as_u16())).into()),
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| failed("body"))? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(failed("answer too large").into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl CertFetcher for HttpsCertFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertFetchError> {
        tokio::time::timeout(self.bounds.operation, self.get(url))
            .await
            .unwrap_or_else(|_| {
                Err(ApiError("PayPal certificate fetch failed: timeout".into()).into())
            })
    }
}

/// What a URL is known to serve.
#[derive(Clone)]
enum Known {
    Cert(Arc<CertBundle>),
    /// A failed fetch, remembered until `until`.
    Failed {
        until: Instant,
        error: Failure,
    },
}

#[derive(Debug, Clone)]
enum Failure {
    Rejected(PaypalRejection),
    Unavailable(ApiError),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Rejected(r) => Error::Rejected(Rejection::Unauthentic(Refusal::new(r))),
            Failure::Unavailable(e) => Error::Api(e),
        }
    }
}

/// One URL's entry. Its lock is held by the one fetch of that URL, so the deliveries naming it
/// wait for that fetch instead of making their own.
#[derive(Default)]
struct Slot(tokio::sync::Mutex<Option<Known>>);

/// Certificates by normalised URL. Only documents that read as certificates are kept as
/// such; their chain, validity and CN are checked on every delivery (the clock moves), which
/// costs no call.
pub struct CertCache {
    fetcher: Arc<dyn CertFetcher>,
    /// Held only to find or add a slot, never across an await.
    slots: std::sync::Mutex<HashMap<String, Arc<Slot>>>,
}

impl CertCache {
    pub fn new(fetcher: Arc<dyn CertFetcher>) -> Self {
        Self {
            fetcher,
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Stores `pem` as what `url` serves, as if it had been fetched (tests; a deployment that
    /// pins PayPal's certificate).
    pub async fn seed(&self, url: &str, pem: &[u8]) -> Result<(), PaypalRejection> {
        let url = Url::parse(url).map_err(|_| PaypalRejection::CertUnreadable)?;
        let bundle = Arc::new(CertBundle::from_pem(pem)?);
        *self.slot(url.as_str()).0.lock().await = Some(Known::Cert(bundle));
        Ok(())
    }

    /// The certificate `url` serves: known, else fetched once (and kept if it reads); a
    /// failure within [`FAILURE_TTL`] of the last one is answered without a call.
    pub async fn get(&self, url: &Url) -> Result<Arc<CertBundle>, Error> {
        let slot = self.slot(url.as_str());
        let mut known = slot.0.lock().await;
        match known.as_ref() {
            Some(Known::Cert(bundle)) => return Ok(bundle.clone()),
            Some(Known::Failed { until, error }) if Instant::now() < *until => {
                return Err(error.clone().into())
            }
            _ => {}
        }
        let fetched = self.fetch(url).await;
        *known = Some(match &fetched {
            Ok(bundle) => Known::Cert(bundle.clone()),
            Err(error) => Known::Failed {
                until: Instant::now() + FAILURE_TTL,
                error: error.clone(),
            },
        });
        fetched.map_err(Error::from)
    }

    async fn fetch(&self, url: &Url) -> Result<Arc<CertBundle>, Failure> {
        // The URL is the sender's: it is not logged, nor is what it served.
        let fetched = match self.fetcher.fetch(url).await {
            Ok(pem) => CertBundle::from_pem(&pem)
                .map(Arc::new)
                .map_err(Failure::Rejected),
            Err(CertFetchError::NotFound(_)) => {
                Err(Failure::Rejected(PaypalRejection::CertNotFound))
            }
            Err(CertFetchError::Unavailable(e)) => Err(Failure::Unavailable(e)),
        };
        match &fetched {
            Ok(_) => tracing::info!("PayPal certificate fetched"),
            Err(Failure::Rejected(r)) => tracing::warn!(reason = %r, "PayPal certificate refused"),
            Err(Failure::Unavailable(e)) => {
                tracing::warn!(error = %e, "PayPal certificate fetch failed")
            }
        }
        fetched
    }

    /// The slot for `key`, added if new (making room first when the map is full).
    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        if slots.len() >= MAX_CACHED_URLS {
            // Known certificates stay; failures and fetches in flight go (a fetch in flight
            // still answers the deliveries waiting on it, which hold its slot).
            slots
                .retain(|_, slot| matches!(slot.0.try_lock().as_deref(), Ok(Some(Known::Cert(_)))));
            if slots.len() >= MAX_CACHED_URLS {
                slots.clear();
            }
        }
        let slot = Arc::new(Slot::default());
        slots.insert(key.to_owned(), slot.clone());
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fetcher builds with the platform's roots and never speaks plain http, even when
    /// a URL got past the policy by mistake. No request leaves the machine.
    #[tokio::test]
    async fn the_https_fetcher_refuses_plain_http() {
        let fetcher = HttpsCertFetcher::new(CallBounds::default()).expect("client");
        let url = Url::parse("http://127.0.0.1:9/v1/notifications/certs/CERT-1").expect("url");
        let e = fetcher.fetch(&url).await.expect_err("http refused");
        assert!(
            e.to_string().contains("PayPal certificate fetch failed"),
            "{e}"
        );
    }

    /// Serves `pem` at one URL; every other is PayPal's 404. Counts fetches per URL.
    struct OneCert {
        url: &'static str,
        pem: Vec<u8>,
        fetches: std::sync::Mutex<HashMap<String, usize>>,
    }

    #[async_trait]
    impl CertFetcher for OneCert {
        async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertFetchError> {
            let mut fetches = self.fetches.lock().expect("lock");
            *fetches.entry(url.as_str().to_owned()).or_default() += 1;
            if url.as_str() == self.url {
                Ok(self.pem.clone())
            } else {
                Err(CertFetchError::NotFound(404))
            }
        }
    }

    /// Failures past the bound make room by going themselves: the known certificate stays.
    #[tokio::test]
    async fn a_flood_of_missing_urls_does_not_evict_a_known_certificate() {
        let real = "https://api.paypal.com/v1/notifications/certs/CERT-real";
        let pem = rcgen::generate_simple_self_signed(vec!["paypal.com".into()])
            .expect("certificate")
            .cert
            .pem();
        let fetcher = Arc::new(OneCert {
            url: real,
            pem: pem.into_bytes(),
            fetches: Default::default(),
        });
        let cache = CertCache::new(fetcher.clone());
        let real_url = Url::parse(real).expect("url");
        assert!(cache.get(&real_url).await.is_ok());
        for n in 0..3 * MAX_CACHED_URLS {
            let url = format!("https://api.paypal.com/v1/notifications/certs/CERT-{n}");
            let e = cache.get(&Url::parse(&url).expect("url")).await;
            assert_eq!(
                e.err(),
                Some(Error::Rejected(Rejection::Unauthentic(Refusal::new(
                    PaypalRejection::CertNotFound
                ))))
            );
        }
        assert!(cache.get(&real_url).await.is_ok());
        assert_eq!(fetcher.fetches.lock().expect("lock")[real], 1);
        assert!(cache.slots.lock().expect("lock").len() <= MAX_CACHED_URLS);
    }

    #[tokio::test]
    async fn a_document_that_is_not_a_certificate_is_refused_and_remembered() {
        struct Html(std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl CertFetcher for Html {
            async fn fetch(&self, _: &Url) -> Result<Vec<u8>, CertFetchError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(b"<html>not a certificate</html>".to_vec())
            }
        }
        let fetcher = Arc::new(Html(Default::default()));
        let cache = CertCache::new(fetcher.clone());
        let url = Url::parse("https://api.paypal.com/v1/notifications/certs/X").expect("url");
        for _ in 0..2 {
            let e = cache.get(&url).await.expect_err("not PEM");
            assert_eq!(
                e,
                Error::Rejected(Rejection::Unauthentic(Refusal::new(
                    PaypalRejection::CertUnreadable
                )))
            );
        }
        // Within the failure period the refusal is remembered: one fetch.
        assert_eq!(fetcher.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
