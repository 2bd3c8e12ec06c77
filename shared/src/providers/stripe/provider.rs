//! Stripe as a [`WebhookProvider`]: the signature check with the endpoint's secrets (re-read
//! once after a miss, for a rotation), the lenient envelope with the livemode check, the
//! translation, and — when a read-only API key is configured — a subscription's current state.

use super::event::{id_field, str_field, Envelope};
use super::signature::{self, SignatureError};
use super::thin;
use super::translate::{family_of, subscription_snapshot, translate, StripeMapping};
use super::Family;
use crate::domain::access::TierPolicy;
use crate::domain::events::{EventMeta, SubscriptionSnapshot};
use crate::domain::ids::{Account, EventId, Provider, SubscriptionId};
use crate::error::{Error, Refusal, Rejection};
use crate::pipeline::{Outcome, Pipeline};
use crate::ports::{
    BillingStore, Clock, NotificationApi, ProviderApi, RefreshOutcome, SecretSource,
};
use crate::providers::seam::{ReadError, ReadEvent, Resolved, Verified, WebhookProvider};
use crate::routing::{Endpoint, Route};
use crate::telemetry::{Counter, Metrics};
use async_trait::async_trait;
use std::sync::Arc;

/// How the Stripe endpoints are configured (read once at cold start), plus the tier policy the
/// pipeline applies, so tests and the local run build a whole pipeline from one value.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tolerance_secs: u64,
    pub livemode: bool,
    pub mapping: StripeMapping,
    pub tiers: TierPolicy,
}

impl Default for Settings {
    /// Stripe's default tolerance, test mode, default metadata keys, no tier map.
    fn default() -> Self {
        Self {
            tolerance_secs: 300,
            livemode: false,
            mapping: StripeMapping::default(),
            tiers: TierPolicy::default(),
        }
    }
}

pub struct StripeProvider {
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    api: Option<Arc<dyn ProviderApi>>,
    /// The API thin notifications are resolved with (`thin.rs`); without it (no key), each
    /// genuine notification at the thin endpoint answers 503.
    thin: Option<Arc<dyn NotificationApi>>,
}

impl StripeProvider {
    pub fn new(
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Self {
            secrets,
            clock,
            metrics,
            settings,
            api: None,
            thin: None,
        }
    }

    /// Resolves the thin endpoint's notifications (`/webhooks/stripe/thin`) by fetching each
    /// notified event with `api` (`STRIPE_API_KEY`).
    pub fn with_thin(mut self, api: Arc<dyn NotificationApi>) -> Self {
        self.thin = Some(api);
        self
    }

    /// Reads objects from Stripe's API to settle same-second ties (`STRIPE_API_KEY`).
    pub fn with_api(mut self, api: Arc<dyn ProviderApi>) -> Self {
        self.api = Some(api);
        self
    }

    fn check(
        &self,
        header: Option<&str>,
        body: &[u8],
        secrets: &[signature::WebhookSecret],
    ) -> Result<i64, SignatureError> {
        signature::verify(
            header,
            body,
            secrets,
            self.clock.now(),
            self.settings.tolerance_secs,
        )
    }
}

/// A whole pipeline with Stripe as its provider.
pub fn pipeline(
    store: Arc<dyn BillingStore>,
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
) -> Pipeline {
    let tiers = settings.tiers.clone();
    let provider = StripeProvider::new(secrets, clock.clone(), metrics.clone(), settings);
    Pipeline::new(store, clock, metrics, tiers).with_provider(Arc::new(provider))
}

/// Delivering a Stripe body with its `Stripe-Signature` header value (tests, the CLI).
#[async_trait]
pub trait StripeDelivery {
    async fn receive_stripe(&self, family: Family, signature: Option<&str>, body: &[u8])
        -> Outcome;
}

#[async_trait]
impl StripeDelivery for Pipeline {
    async fn receive_stripe(
        &self,
        family: Family,
        signature: Option<&str>,
        body: &[u8],
    ) -> Outcome {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = signature.and_then(|s| http::HeaderValue::from_str(s).ok()) {
            headers.insert("stripe-signature", value);
        }
        self.receive(family.endpoint(), &headers, body).await
    }
}

#[async_trait]
impl WebhookProvider for StripeProvider {
    fn id(&self) -> Provider {
        Provider::STRIPE
    }

    /// `POST /webhooks/stripe/{family}`, one endpoint per family, beside each its Connect
    /// endpoint `POST /webhooks/stripe/{family}/connect`, and `/webhooks/stripe/thin`, where
    /// thin notifications arrive (`thin.rs`). A process serves those it has secrets for.
    fn routes(&self) -> Vec<Route> {
        Family::ALL
            .into_iter()
            .flat_map(|family| {
                let path = format!("/webhooks/stripe/{}", family.as_str());
                [
                    Route {
                        endpoint: family.connect_endpoint(),
                        path: format!("{path}/connect"),
                    },
                    Route {
                        endpoint: family.endpoint(),
                        path,
                    },
                ]
            })
            .chain([thin::route()])
            .collect()
    }

    /// A Connect endpoint's events belong to its family; the thin destination takes every
    /// family's.
    fn home_of(&self, endpoint: Endpoint) -> Option<&'static str> {
        Family::of(endpoint).map(Family::as_str)
    }

    /// Stripe's event ids are `evt_…` (webhook deliveries, `/v1/events`, and import's
    /// snapshots `evt_snap_…`).
    fn owns_event_id(&self, id: &str) -> bool {
        id.starts_with("evt_")
    }

    /// Checks the signature; after a miss, re-reads the secrets once (a rotation) and retries.
    async fn verify(
        &self,
        endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, Error> {
        // A header that is not visible ASCII reads as missing (rejected below).
        let header = headers
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok());
        let reject = |e: SignatureError| Error::Rejected(Rejection::Unauthentic(Refusal::new(e)));
        let secrets = self.secrets.secrets(endpoint).await?;
        match self.check(header, body, &secrets) {
            Ok(signed_at) => Ok(Verified { signed_at }),
            Err(SignatureError::NoMatch) => {
                let refresh = self.secrets.refresh(endpoint).await?;
                if refresh != RefreshOutcome::NotDue {
                    // Only a real re-read counts: most misses fall inside the refresh interval.
                    self.metrics.incr(Counter::SecretRefresh, endpoint.as_str());
                }
                if refresh != RefreshOutcome::Changed {
                    return Err(reject(SignatureError::NoMatch));
                }
                let secrets = self.secrets.secrets(endpoint).await?;
                let signed_at = self.check(header, body, &secrets).map_err(reject)?;
                Ok(Verified { signed_at })
            }
            Err(e) => Err(reject(e)),
        }
    }

    /// A notification at the thin endpoint becomes the event it names (`thin::resolve`); every
    /// other body is the event.
    async fn resolve(&self, endpoint: Endpoint, body: &[u8]) -> Result<Resolved, Error> {
        if endpoint != thin::ENDPOINT {
            return Ok(Resolved::Body);
        }
        thin::resolve(self.thin.as_deref(), body, self.settings.livemode).await
    }

    /// A thin notification's id, in its context's account.
    fn notified_event(&self, endpoint: Endpoint, body: &[u8]) -> Option<(Provider, EventId)> {
        if endpoint != thin::ENDPOINT {
            return None;
        }
        let root = serde_json::from_slice(body).ok()?;
        let meta = thin::Notification::parse(&root)
            .ok()?
            .meta(self.settings.livemode);
        Some((meta.provider, meta.id))
    }

    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError> {
        let envelope = Envelope::parse(body).map_err(|e| ReadError::Unreadable(e.to_string()))?;
        let configured = self.settings.livemode;
        if let Some(event) = envelope.livemode.filter(|m| *m != configured) {
            return Err(ReadError::Rejected(Rejection::Livemode {
                event,
                configured,
            }));
        }
        let account = match envelope.account.as_deref().map(Account::parse) {
            Some(None) => {
                let why = "`account` is not a Stripe account id";
                return Err(ReadError::Unreadable(why.into()));
            }
            given => given.flatten(),
        };
        let provider = Provider::STRIPE.within(account);
        let meta = EventMeta {
            provider,
            id: EventId::new(envelope.id.clone()),
            event_type: envelope.event_type.clone(),
            created: envelope.created,
            millis: 0,
            livemode: envelope.livemode.unwrap_or(configured),
            api_version: envelope.api_version.clone(),
        };
        Ok(ReadEvent {
            home: family_of(&envelope.event_type).as_str(),
            event: translate(&envelope, &self.settings.mapping)
                .map(|mut event| {
                    if let Some(account) = provider.account() {
                        event.scope_users(account);
                    }
                    event
                })
                .map_err(|e| e.to_string()),
            meta,
        })
    }

    /// Asked in the event's account: a connected account's subscription is read with its
    /// `Stripe-Account` header.
    async fn current_subscription(
        &self,
        scope: Provider,
        id: &SubscriptionId,
    ) -> Result<Option<SubscriptionSnapshot>, Error> {
        let Some(api) = &self.api else {
            return Ok(None);
        };
        let path = format!("subscriptions/{id}");
        let Some(object) = api.retrieve(scope.account(), &path).await? else {
            return Ok(None);
        };
        // Only an object that is the subscription asked for is applied.
        if str_field(&object, "object") != Some("subscription")
            || id_field(&object, "id").as_deref() != Some(id.as_str())
        {
            return Ok(None);
        }
        Ok(subscription_snapshot(&object, &self.settings.mapping))
    }
}
