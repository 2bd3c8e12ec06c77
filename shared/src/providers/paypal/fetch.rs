//! Getting PayPal's certificate: a [`CertFetcher`] (https, the platform's roots and
//! `SSL_CERT_FILE`, no redirects) behind a [`CertCache`] that keeps what each URL served for
//! the life of the process, so the hot path makes no call once a certificate is known.

use super::certs::CertBundle;
use super::PaypalRejection;
use crate::config::CallBounds;
use crate::error::{Error, Rejection};
use crate::ports::ApiError;
use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest certificate document read: a PEM chain is a few KB.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// Most URLs kept. PayPal rotates its certificate every year or two; a delivery can only name
/// URLs under the allowed prefixes, but each distinct one that serves a certificate is kept,
/// so the map is bounded (emptied when full).
const MAX_CACHED_URLS: usize = 64;

/// Fetches the document at a certificate URL. Any failure is an [`ApiError`]: transient, the
/// delivery is answered 503 and PayPal sends it again.
#[async_trait]
pub trait CertFetcher: Send + Sync {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, ApiError>;
}

/// Fetches over https with the TLS stack of the Stripe API client: rustls on aws-lc-rs with
/// the platform's roots (`rustls-native-certs`, which reads `SSL_CERT_FILE` when it is set).
pub struct HttpsCertFetcher {
    client: reqwest::Client,
    bounds: CallBounds,
}

impl HttpsCertFetcher {
    pub fn new(bounds: CallBounds) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(crate::adapters::stripe_api::tls_config(true)?)
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

    async fn get(&self, url: &Url) -> Result<Vec<u8>, ApiError> {
        let failed = |kind: &str| ApiError(format!("PayPal certificate fetch failed: {kind}"));
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(if e.is_timeout() { "timeout" } else { "request" }))?;
        if response.status() != StatusCode::OK {
            return Err(failed(&format!("status {}", response.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| failed("body"))? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(failed("answer too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl CertFetcher for HttpsCertFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, ApiError> {
        tokio::time::timeout(self.bounds.operation, self.get(url))
            .await
            .unwrap_or_else(|_| Err(ApiError("PayPal certificate fetch failed: timeout".into())))
    }
}

/// Certificates by URL, for the life of the process. Only documents that read as
/// certificates are kept; their chain, validity and CN are checked on every delivery (the
/// clock moves), which costs no call.
pub struct CertCache {
    fetcher: Arc<dyn CertFetcher>,
    // Held across a fetch: one fetch per URL even when deliveries arrive together.
    entries: tokio::sync::Mutex<HashMap<String, Arc<CertBundle>>>,
}

impl CertCache {
    pub fn new(fetcher: Arc<dyn CertFetcher>) -> Self {
        Self {
            fetcher,
            entries: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Stores `pem` as what `url` serves, as if it had been fetched (tests; a deployment that
    /// pins PayPal's certificate).
    pub async fn seed(&self, url: &str, pem: &[u8]) -> Result<(), PaypalRejection> {
        let url = Url::parse(url).map_err(|_| PaypalRejection::CertUnreadable)?;
        let bundle = Arc::new(CertBundle::from_pem(pem)?);
        self.entries.lock().await.insert(url.into(), bundle);
        Ok(())
    }

    /// The certificate `url` serves: from the cache, else fetched (and kept if it reads).
    pub async fn get(&self, url: &Url) -> Result<Arc<CertBundle>, Error> {
        let mut entries = self.entries.lock().await;
        if let Some(bundle) = entries.get(url.as_str()) {
            return Ok(bundle.clone());
        }
        let pem = self.fetcher.fetch(url).await?;
        let bundle = Arc::new(
            CertBundle::from_pem(&pem).map_err(|r| Error::Rejected(Rejection::Paypal(r)))?,
        );
        if entries.len() >= MAX_CACHED_URLS {
            entries.clear();
        }
        entries.insert(url.as_str().to_owned(), bundle.clone());
        // Once per certificate URL per process; the URL itself is the sender's, not logged.
        tracing::info!(cached = entries.len(), "PayPal certificate fetched");
        Ok(bundle)
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
        assert!(e.0.starts_with("PayPal certificate fetch failed"), "{e}");
    }

    #[tokio::test]
    async fn a_document_that_is_not_a_certificate_is_refused_and_not_kept() {
        struct Html(std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl CertFetcher for Html {
            async fn fetch(&self, _: &Url) -> Result<Vec<u8>, ApiError> {
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
                Error::Rejected(Rejection::Paypal(PaypalRejection::CertUnreadable))
            );
        }
        assert_eq!(fetcher.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
