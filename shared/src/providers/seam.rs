//! The provider seam: what the pipeline, the routes and the CLI need from a provider. Stripe,
//! PayPal and the operator plug in here, and so does a provider that exists only in the tests
//! (`tests/api/seam.rs`): nothing outside a provider's own folder names it, except the one place
//! that registers the built-in ones (`app`). Nothing here names a provider.

use crate::domain::events::{BillingEvent, EventMeta, SubscriptionSnapshot};
use crate::domain::ids::{EventId, Provider, SubscriptionId};
use crate::error::{Error, Rejection};
use crate::routing::{Endpoint, Route};
use async_trait::async_trait;

/// A delivery whose authenticity was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// When the provider signed it (Unix seconds); kept with a parked body.
    pub signed_at: i64,
}

/// A verified body read as an event.
#[derive(Debug, Clone)]
pub struct ReadEvent {
    pub meta: EventMeta,
    /// The name of the endpoint this type belongs to ([`Endpoint::name`]); an event that
    /// arrives at another one is applied all the same, and counted.
    pub home: &'static str,
    /// The canonical event, or why this payload could not be translated (then it is parked).
    pub event: Result<BillingEvent, String>,
}

/// What a verified body stands for ([`WebhookProvider::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The body is the event itself (every endpoint that is not sent notifications).
    Body,
    /// The event a notification names, fetched from the provider: read in the body's place (and
    /// parked in its place if it cannot be applied).
    Event(Vec<u8>),
    /// A notification whose event can never be fetched as it is (the provider has no such event
    /// or object, or the notification cannot be read): the notification is parked with `reason`
    /// under `meta` (its own id, type and time) or, without one, under its body's hash.
    Unresolvable {
        meta: Option<EventMeta>,
        reason: String,
    },
}

/// Why a verified body was not read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not an event at all (parked under the body's hash). The text names no value.
    Unreadable(String),
    /// An event this deployment must refuse (e.g. the other livemode).
    Rejected(Rejection),
}

#[async_trait]
pub trait WebhookProvider: Send + Sync {
    fn id(&self) -> Provider;

    /// The webhook routes this provider serves, one per endpoint (none: it never arrives over
    /// HTTP). The paths are public (they are in the providers' dashboards): never change one.
    fn routes(&self) -> Vec<Route> {
        Vec::new()
    }

    /// The home ([`ReadEvent::home`]) of the events `endpoint` is for: its own name unless
    /// several endpoints serve one home (Stripe's Connect endpoints); `None` for an endpoint
    /// every home's events come to (Stripe's thin destination), where none is out of place.
    fn home_of(&self, endpoint: Endpoint) -> Option<&'static str> {
        Some(endpoint.name)
    }

    /// Whether an event id is one of this provider's (the CLI's `replay ID` asks each).
    fn owns_event_id(&self, _id: &str) -> bool {
        false
    }

    /// Checks the delivery over its raw bytes, before anything reads them.
    async fn verify(
        &self,
        endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, Error>;

    /// What a verified body at `endpoint` stands for: itself (the default), or, for an endpoint
    /// that is sent notifications, the event fetched from the provider's API. A fetch that may
    /// succeed later is an `Err` (transient: 503, the provider retries, nothing is written); a
    /// notification of the other mode is `Err(Rejected)` before anything is fetched.
    async fn resolve(&self, _endpoint: Endpoint, _body: &[u8]) -> Result<Resolved, Error> {
        Ok(Resolved::Body)
    }

    /// The ledger key (provider scope, event id) a notification at `endpoint` will be recorded
    /// under, read from the notification alone, so that a redelivery is answered `duplicate`
    /// from the ledger before anything is fetched. `None` (the default) for a body that is the
    /// event itself: its own ledger read comes with the event's first read.
    fn notified_event(&self, _endpoint: Endpoint, _body: &[u8]) -> Option<(Provider, EventId)> {
        None
    }

    /// Reads the envelope and translates the event.
    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError>;

    /// A subscription's current state from the provider's API, to settle a same-second tie the
    /// events cannot decide, asked in the event's `scope` (its provider and account).
    /// `Ok(None)` when no API is configured (the default).
    async fn current_subscription(
        &self,
        _scope: Provider,
        _id: &SubscriptionId,
    ) -> Result<Option<SubscriptionSnapshot>, Error> {
        Ok(None)
    }
}
