//! [`PaypalVerifier`]: the one check `functions/paypal` calls, offline or through PayPal's API
//! as configured.

use super::api::PaypalApi;
use super::cert_url::CertUrlPolicy;
use super::certs::TrustRoots;
use super::fetch::{CertCache, CertFetcher, HttpsCertFetcher};
use super::settings::{PaypalMode, PaypalSettings};
use super::transmission::Transmission;
use super::PaypalRejection;
use crate::adapters::paypal_transmissions::InMemoryTransmissionGuard;
use crate::bounds::CallBounds;
use crate::error::{Error, Refusal, Rejection};
use crate::ports::{Clock, StoreError, TransmissionClaim, TransmissionGuard};
use crate::providers::seam::Verified;
use std::sync::Arc;

enum Check {
    Offline {
        urls: CertUrlPolicy,
        roots: TrustRoots,
        cache: CertCache,
    },
    Api(PaypalApi),
}

/// Verifies PayPal deliveries for one webhook (`PAYPAL_WEBHOOK_ID`).
pub struct PaypalVerifier {
    webhook_id: String,
    tolerance_secs: u64,
    clock: Arc<dyn Clock>,
    check: Check,
    transmissions: Arc<dyn TransmissionGuard>,
}

fn rejected(r: PaypalRejection) -> Error {
    Error::Rejected(Rejection::Unauthentic(Refusal::new(r)))
}

impl PaypalVerifier {
    /// Offline verification with certificates from `fetcher`.
    pub fn offline(
        webhook_id: impl Into<String>,
        tolerance_secs: u64,
        urls: CertUrlPolicy,
        roots: TrustRoots,
        fetcher: Arc<dyn CertFetcher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            webhook_id: webhook_id.into(),
            tolerance_secs,
            clock,
            check: Check::Offline {
                urls,
                roots,
                cache: CertCache::new(fetcher),
            },
            transmissions: Arc::new(InMemoryTransmissionGuard::default()),
        }
    }

    /// Verification by PayPal's API.
    pub fn api(
        webhook_id: impl Into<String>,
        tolerance_secs: u64,
        api: PaypalApi,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            webhook_id: webhook_id.into(),
            tolerance_secs,
            clock,
            check: Check::Api(api),
            transmissions: Arc::new(InMemoryTransmissionGuard::default()),
        }
    }

    /// As configured; a client secret held in Secrets Manager is read now (cold start). An
    /// error here stops the cold start.
    pub async fn from_settings(
        settings: &PaypalSettings,
        bounds: CallBounds,
        secrets_manager: Option<&aws_sdk_secretsmanager::Client>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let id = settings.webhook_id.clone();
        let tolerance = settings.tolerance_secs;
        match &settings.mode {
            PaypalMode::Offline { urls, roots } => {
                let fetcher = HttpsCertFetcher::new(bounds)?;
                Ok(Self::offline(
                    id,
                    tolerance,
                    urls.clone(),
                    roots.clone(),
                    Arc::new(fetcher),
                    clock,
                ))
            }
            PaypalMode::Api(api) => {
                let client =
                    PaypalApi::from_settings(api, bounds, secrets_manager, clock.clone()).await?;
                Ok(Self::api(id, tolerance, client, clock))
            }
        }
    }

    /// Where accepted transmission ids are claimed (the billing table in AWS); without this,
    /// in this process only.
    #[must_use]
    pub fn with_transmissions(mut self, transmissions: Arc<dyn TransmissionGuard>) -> Self {
        self.transmissions = transmissions;
        self
    }

    /// The certificate cache (offline mode), to pre-seed it.
    pub fn cert_cache(&self) -> Option<&CertCache> {
        match &self.check {
            Check::Offline { cache, .. } => Some(cache),
            Check::Api(_) => None,
        }
    }

    /// Checks a delivery over its exact raw body. Every check that needs no call comes first
    /// (headers, algorithm, signature length, transmission time, our webhook id, the
    /// certificate URL), then the certificate (cached, or fetched once) or PayPal's API, then
    /// the transmission id is claimed for this body. A rejection is answered 400; an
    /// `Error::Api` (certificate or API unreachable) or a failed claim 503.
    pub async fn verify(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Verified, Error> {
        let t = Transmission::from_headers(headers).map_err(rejected)?;
        let now = self.clock.now();
        t.check_age(now, self.tolerance_secs).map_err(rejected)?;
        if self.webhook_id.is_empty() {
            return Err(rejected(PaypalRejection::NoWebhookId));
        }
        match &self.check {
            Check::Offline { urls, roots, cache } => {
                let url = urls.check(&t.cert_url).map_err(rejected)?;
                let message = t.signed_string(&self.webhook_id, body);
                let cert = cache.get(&url).await?;
                cert.verify(roots, now, t.algo, message.as_bytes(), &t.sig)
                    .map_err(rejected)?;
            }
            Check::Api(api) => api.verify(&t, &self.webhook_id, body).await?,
        }
        self.claim(&t, body, now).await?;
        Ok(Verified {
            signed_at: t.time_unix,
        })
    }

    /// Accepts the transmission id once per body within the window. Claimed only once the
    /// signature verified, so a forgery can neither write nor block the genuine delivery's id.
    async fn claim(&self, t: &Transmission, body: &[u8], now: i64) -> Result<(), Error> {
        // Past the window the transmission time is refused anyway: the claim need not outlive it.
        let window = i64::try_from(self.tolerance_secs).unwrap_or(i64::MAX);
        let expires_at = t.time_unix.saturating_add(window);
        let hash = crate::digest::sha256_hex(body);
        match self
            .transmissions
            .claim(&t.id, &hash, now, expires_at)
            .await
        {
            Ok(TransmissionClaim::Accepted) => Ok(()),
            Ok(TransmissionClaim::OtherBody) => Err(rejected(PaypalRejection::TransmissionReused)),
            // Even a permanent refusal is answered 503: the delivery itself may be genuine.
            Err(e) => Err(Error::Store(StoreError::Unavailable(e.to_string()))),
        }
    }
}
