//! The pipeline itself: its parts, its caches, and the ways in (a delivery, a trusted body, an
//! operator's record). The steps live beside it: `park`, `record` and what `record` calls.

use crate::domain::access::TierPolicy;
use crate::domain::ids::{CustomerId, Provider, UserId};
use crate::error::{Error, ErrorKind, Rejection};
use crate::ports::{BillingStore, Clock, LedgerGuard, LedgerState};
use crate::providers::operator::OperatorProvider;
use crate::providers::seam::WebhookProvider;
use crate::routing::{Endpoint, Route};
use crate::telemetry::{Counter, Metrics};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What happened to one delivery; `http::respond` turns it into the status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First time seen: recorded in this state.
    Recorded {
        event_id: String,
        state: LedgerState,
    },
    /// Already recorded (a redelivery, or a concurrent duplicate): nothing changed.
    Duplicate {
        event_id: String,
        by: DuplicateBy,
    },
    Rejected(Rejection),
    /// A transient failure: the provider must retry.
    Unavailable(Error),
}

/// How a redelivery was recognised (the concurrency test and the answer's body tell them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateBy {
    /// The first read found the ledger record: an ordinary redelivery.
    Read,
    /// The commit's condition on the ledger item refused it: a concurrent delivery of the same
    /// event committed between our read and our write.
    Condition,
}

impl DuplicateBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateBy::Read => "ledger_read",
            DuplicateBy::Condition => "ledger_condition",
        }
    }
}

/// A delivery whose authenticity has been checked (on arrival, or when it was parked).
pub(super) struct Delivery<'a> {
    pub(super) provider: &'a dyn WebhookProvider,
    /// The name of the endpoint it arrived at (or was recorded at, for a replay).
    pub(super) endpoint: &'a str,
    pub(super) raw: &'a [u8],
    pub(super) signed_at: i64,
}

pub struct Pipeline {
    pub(super) store: Arc<dyn BillingStore>,
    pub(super) providers: BTreeMap<Provider, Arc<dyn WebhookProvider>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) tiers: TierPolicy,
    /// customer → user links seen before: lets the first read fetch the user item too.
    /// A link only ever names the user it was read with, since the commit checks revisions.
    /// Keyed by provider and account too: the same customer id in two accounts is two customers.
    pub(super) links: Mutex<HashMap<(Provider, CustomerId), UserId>>,
    /// charge → customer bindings read or committed before: lets a dispute's or refund's first
    /// read fetch the customer too. A charge never changes customer; a guess its item does not
    /// confirm is dropped by the read that made it.
    pub(super) charges: Mutex<HashMap<(Provider, String), CustomerId>>,
    /// The customer emails switched on (`BILLING_EMAILS`): their jobs join the commits; for
    /// connected accounts' customers too when `BILLING_EMAILS_CONNECTED_ACCOUNTS` is on.
    pub(super) emails: crate::emails::kinds::EmailQueueing,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn BillingStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        tiers: TierPolicy,
    ) -> Self {
        // The operator's records (`billing grant`) go through every pipeline, so they can be
        // replayed wherever they were parked.
        let operator: Arc<dyn WebhookProvider> = Arc::new(OperatorProvider);
        Self {
            store,
            providers: BTreeMap::from([(operator.id(), operator)]),
            clock,
            metrics,
            tiers,
            links: Mutex::new(HashMap::new()),
            charges: Mutex::new(HashMap::new()),
            emails: crate::emails::kinds::EmailQueueing::default(),
        }
    }

    /// Queues an email job with every applied change that calls for one of `kinds` (none by
    /// default: only the processes that read the email settings pass them).
    pub fn with_email_kinds(mut self, kinds: BTreeSet<crate::emails::kinds::EmailKind>) -> Self {
        self.emails.kinds = kinds;
        self
    }

    /// Queues the email jobs `emails` says: its kinds, and whether for connected accounts'
    /// customers too.
    pub fn with_email_queueing(mut self, emails: crate::emails::kinds::EmailQueueing) -> Self {
        self.emails = emails;
        self
    }

    /// Registers a provider: its deliveries are received at its routes, its stored records read
    /// back, and its event ids recognised. The one way a provider joins.
    pub fn with_provider(mut self, provider: Arc<dyn WebhookProvider>) -> Self {
        provider.id().register();
        self.providers.insert(provider.id(), provider);
        self
    }

    /// Every registered provider's webhook routes.
    pub fn routes(&self) -> Vec<Route> {
        self.providers.values().flat_map(|p| p.routes()).collect()
    }

    /// The registered provider whose event id this is, asking each.
    pub fn provider_of_event(&self, id: &str) -> Option<Provider> {
        self.providers
            .values()
            .find(|p| p.owns_event_id(id))
            .map(|p| p.id())
    }

    pub fn store(&self) -> &Arc<dyn BillingStore> {
        &self.store
    }

    pub fn tiers(&self) -> &TierPolicy {
        &self.tiers
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Handles one delivery at `endpoint`.
    pub async fn receive(
        &self,
        endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Outcome {
        let outcome = match self.providers.get(&endpoint.provider) {
            Some(p) => {
                self.receive_inner(p.as_ref(), endpoint, headers, body)
                    .await
            }
            None => Outcome::Rejected(Rejection::UnknownProvider(endpoint.provider.to_string())),
        };
        self.count(endpoint.as_str(), &outcome);
        outcome
    }

    async fn receive_inner(
        &self,
        provider: &dyn WebhookProvider,
        endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Outcome {
        let verified = match provider.verify(endpoint, headers, body).await {
            Ok(v) => v,
            Err(Error::Rejected(r)) => return Outcome::Rejected(r),
            Err(e) => return self.failed(None, e),
        };
        let delivery = Delivery {
            provider,
            endpoint: endpoint.name,
            raw: body,
            signed_at: verified.signed_at,
        };
        // A notification becomes the event it names (fetched); any other body is the event.
        let fetched = match self.resolve(&delivery, endpoint, LedgerGuard::New).await {
            Ok(fetched) => fetched,
            Err(outcome) => return outcome,
        };
        let delivery = Delivery {
            raw: fetched.as_deref().unwrap_or(body),
            ..delivery
        };
        let read = match self.read_or_park(&delivery, LedgerGuard::New).await {
            Ok(read) => read,
            Err(outcome) => return outcome,
        };
        if provider
            .home_of(endpoint)
            .is_some_and(|home| home != read.home)
        {
            // Applied all the same: the same event id may reach several endpoints.
            self.metrics.incr(Counter::OutsideFamily, endpoint.as_str());
            tracing::info!(event_id = %read.meta.id, event_type = %read.meta.event_type, %endpoint, home = %read.home, "event outside its endpoint");
        }
        self.translate_and_apply(&delivery, read, LedgerGuard::New)
            .await
    }

    /// Handles one event body whose authenticity comes from elsewhere: fetched from the
    /// provider's API with our key (`billing import`'s snapshots, `billing backfill`'s and
    /// `reconcile`'s `/v1/events`, an EventBridge ingress). Everything `receive` does after
    /// `verify`: once per event id in the ledger (the same id as a webhook delivery is a
    /// duplicate), ordered, parked when unreadable, projected, announced, emailed. The parked
    /// copy keeps the receipt time where a delivery keeps its signature's.
    pub async fn receive_trusted(&self, endpoint: Endpoint, body: &[u8]) -> Outcome {
        let outcome = match self.providers.get(&endpoint.provider) {
            Some(p) => {
                let delivery = Delivery {
                    provider: p.as_ref(),
                    endpoint: endpoint.name,
                    raw: body,
                    signed_at: self.clock.now(),
                };
                match self.read_or_park(&delivery, LedgerGuard::New).await {
                    Ok(read) => {
                        self.translate_and_apply(&delivery, read, LedgerGuard::New)
                            .await
                    }
                    Err(outcome) => outcome,
                }
            }
            None => Outcome::Rejected(Rejection::UnknownProvider(endpoint.provider.to_string())),
        };
        self.count(endpoint.as_str(), &outcome);
        outcome
    }

    /// Records an operator's command (a `billing grant` body) through the same second half as a
    /// verified provider event: once per its id, applied, projected, audited, announced.
    pub async fn record_operator(&self, body: &[u8]) -> Outcome {
        let endpoint = crate::providers::operator::ENDPOINT;
        let Some(operator) = self.providers.get(&endpoint.provider) else {
            return Outcome::Rejected(Rejection::UnknownProvider(endpoint.provider.to_string()));
        };
        let delivery = Delivery {
            provider: operator.as_ref(),
            endpoint: endpoint.name,
            raw: body,
            signed_at: self.clock.now(),
        };
        let outcome = match self.read_or_park(&delivery, LedgerGuard::New).await {
            Ok(read) => {
                self.translate_and_apply(&delivery, read, LedgerGuard::New)
                    .await
            }
            Err(outcome) => outcome,
        };
        self.count(endpoint.as_str(), &outcome);
        outcome
    }

    fn count(&self, dimension: &str, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Recorded { state, .. } => match state {
                LedgerState::Applied => Counter::Applied,
                LedgerState::Stale => Counter::Stale,
                LedgerState::Ignored => Counter::Ignored,
                LedgerState::Parked => Counter::Parked,
            },
            Outcome::Duplicate { .. } => Counter::Redelivered,
            Outcome::Rejected(Rejection::Livemode { .. }) => Counter::LivemodeRejected,
            Outcome::Rejected(_) => Counter::SignatureRejected,
            Outcome::Unavailable(_) => Counter::Unavailable,
        };
        self.metrics.incr(counter, dimension);
    }

    /// A failure answered 503; the log says why (kind, ids), never a body or secret.
    pub(super) fn failed(&self, event_id: Option<&str>, error: Error) -> Outcome {
        let kind = error.kind();
        tracing::error!(
            event_id = event_id.unwrap_or("-"),
            kind = kind.as_str(),
            error = %error,
            "delivery not applied; answering 503"
        );
        debug_assert!(kind != ErrorKind::Rejected);
        Outcome::Unavailable(error)
    }

    pub(super) fn cached_link(&self, provider: Provider, customer: &CustomerId) -> Option<UserId> {
        let key = (provider, customer.clone());
        self.links.lock().ok()?.get(&key).cloned()
    }

    /// Remembers a stored (read or committed) charge's customer, once it is bound.
    pub(super) fn remember_charge(
        &self,
        provider: Provider,
        charge: &crate::domain::charge::Charge,
    ) {
        let Some(customer) = &charge.customer else {
            return;
        };
        if let Ok(mut cache) = self.charges.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert((provider, charge.id.clone()), customer.clone());
        }
    }

    pub(super) fn remember_link(&self, provider: Provider, customer: &CustomerId, user: UserId) {
        if let Ok(mut cache) = self.links.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert((provider, customer.clone()), user);
        }
    }
}
