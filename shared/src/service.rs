//! The use case, once: verify → record once → translate → apply → effects (through the outbox).
//!
//! Guarantees and where each is enforced:
//! - authenticity: `receive_stripe` verifies the signature before reading the body;
//! - exactly once: the ledger item's conditional write inside the one commit (`BillingStore`);
//! - any order: `CustomerBilling::apply` (registers versioned by the event);
//! - nothing lost: state, ledger, audit and outbox are one atomic commit; transient failures
//!   answer 5xx so the provider retries; unreadable events are parked with their bytes.

use crate::domain::access::{customer_access, Access, TierPolicy};
use crate::domain::customer::{CustomerBilling, Effect};
use crate::domain::events::{BillingEvent, EventMeta};
use crate::domain::ids::{CustomerId, EventId, Provider, UserId};
use crate::feed::{access_changed, customer_unlinked, summary, update_user};
use crate::ports::{
    source_key, AuditRecord, BillingStore, Clock, Commit, LedgerGuard, LedgerRecord, LedgerState,
    ParkedBody, SecretSource, SecretsError, StoreError, Stored, UserAccessDoc,
};
use crate::providers::stripe::event::Envelope;
use crate::providers::stripe::signature::{self, SignatureError};
use crate::providers::stripe::translate::{family_of, translate, StripeMapping};
use crate::routing::Family;
use crate::telemetry::{Counter, Metrics};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Compressed bodies above this are not stored in the ledger item (DynamoDB caps items at
/// 400 KB); the record keeps the hash and the event must be re-sent from Stripe to replay.
pub const MAX_PARKED_GZIP_BYTES: usize = 300 * 1024;
/// Optimistic-concurrency attempts before answering 5xx.
const MAX_ATTEMPTS: usize = 8;

/// Policy the service is configured with (read once at cold start).
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

/// Why a delivery was refused (400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("event livemode={event} but this endpoint runs livemode={configured}")]
    Livemode { event: bool, configured: bool },
}

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
    },
    Rejected(Rejection),
    /// A transient failure: the provider must retry.
    Unavailable(String),
}

pub struct WebhookService {
    store: Arc<dyn BillingStore>,
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    /// customer → user links seen before: lets the first read fetch the user item too.
    /// A link only ever names the user it was read with, since the commit checks revisions.
    link_cache: Mutex<HashMap<CustomerId, UserId>>,
}

/// A delivery whose signature has been checked (on arrival, or when it was parked).
struct Delivery<'a> {
    family: Family,
    raw: &'a [u8],
    signed_at: i64,
}

/// An event ready to apply: verified, parsed and translated.
struct Verified<'a> {
    meta: EventMeta,
    event: BillingEvent,
    delivery: &'a Delivery<'a>,
}

impl WebhookService {
    pub fn new(
        store: Arc<dyn BillingStore>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            secrets,
            clock,
            metrics,
            settings,
            link_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn BillingStore> {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Handles one Stripe delivery at `family`'s endpoint.
    pub async fn receive_stripe(
        &self,
        family: Family,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Outcome {
        let outcome = self.receive_inner(family, signature_header, body).await;
        self.count(family, &outcome);
        outcome
    }

    fn count(&self, family: Family, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Recorded { state, .. } => match state {
                LedgerState::Applied => Counter::Applied,
                LedgerState::Stale => Counter::Stale,
                LedgerState::Ignored => Counter::Ignored,
                LedgerState::Parked => Counter::Parked,
            },
            Outcome::Duplicate { .. } => Counter::Redelivered,
            Outcome::Rejected(Rejection::Signature(_)) => Counter::SignatureRejected,
            Outcome::Rejected(Rejection::Livemode { .. }) => Counter::LivemodeRejected,
            Outcome::Unavailable(_) => Counter::Unavailable,
        };
        self.metrics.incr(counter, family.as_str());
    }

    async fn receive_inner(
        &self,
        family: Family,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Outcome {
        let signed_at = match self.verify(family, signature_header, body).await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let delivery = Delivery {
            family,
            raw: body,
            signed_at,
        };
        let envelope = match self.parse_or_park(&delivery, LedgerGuard::New).await {
            Ok(env) => env,
            Err(parked) => return parked,
        };
        if let Some(event_mode) = envelope.livemode {
            if event_mode != self.settings.livemode {
                return Outcome::Rejected(Rejection::Livemode {
                    event: event_mode,
                    configured: self.settings.livemode,
                });
            }
        }
        let home = family_of(&envelope.event_type);
        if home != family {
            // Applied all the same: the same event id may reach several endpoints.
            self.metrics.incr(Counter::OutsideFamily, family.as_str());
            tracing::info!(event_id = %envelope.id, event_type = %envelope.event_type, %family, %home, "event outside its family");
        }
        self.translate_and_apply(&delivery, &envelope, LedgerGuard::New)
            .await
    }

    /// Reads the envelope; a signed body that is not one is parked under its hash.
    async fn parse_or_park(
        &self,
        delivery: &Delivery<'_>,
        guard: LedgerGuard,
    ) -> Result<Envelope, Outcome> {
        match Envelope::parse(delivery.raw) {
            Ok(env) => Ok(env),
            Err(err) => {
                let meta = EventMeta {
                    provider: Provider::Stripe,
                    id: unparsed_id(delivery.raw),
                    event_type: "unknown".into(),
                    created: 0,
                    livemode: self.settings.livemode,
                    api_version: None,
                };
                Err(self
                    .park(delivery, &meta, None, &err.to_string(), guard)
                    .await)
            }
        }
    }

    /// The same second half for an arriving and a replayed event.
    async fn translate_and_apply(
        &self,
        delivery: &Delivery<'_>,
        envelope: &Envelope,
        guard: LedgerGuard,
    ) -> Outcome {
        let meta = EventMeta {
            provider: Provider::Stripe,
            id: EventId::new(envelope.id.clone()),
            event_type: envelope.event_type.clone(),
            created: envelope.created,
            livemode: envelope.livemode.unwrap_or(self.settings.livemode),
            api_version: envelope.api_version.clone(),
        };
        match translate(envelope, &self.settings.mapping) {
            Ok(event) => {
                let verified = Verified {
                    meta,
                    event,
                    delivery,
                };
                self.apply(&verified, guard).await
            }
            Err(err) => {
                self.park(delivery, &meta, None, &err.to_string(), guard)
                    .await
            }
        }
    }

    /// Checks the signature; after a miss, re-reads the secrets once (a rotation) and retries.
    async fn verify(
        &self,
        family: Family,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<i64, Outcome> {
        let check = |secrets: &[signature::WebhookSecret]| {
            signature::verify(
                header,
                body,
                secrets,
                self.clock.now(),
                self.settings.tolerance_secs,
            )
        };
        let unavailable = |e: SecretsError| Outcome::Unavailable(e.to_string());
        let secrets = self.secrets.secrets(family).await.map_err(unavailable)?;
        match check(&secrets) {
            Err(SignatureError::NoMatch) => {
                use crate::ports::RefreshOutcome;
                let refresh = self.secrets.refresh(family).await.map_err(unavailable)?;
                if refresh != RefreshOutcome::NotDue {
                    // Only a real re-read counts: most misses fall inside the refresh interval.
                    self.metrics.incr(Counter::SecretRefresh, family.as_str());
                }
                if refresh != RefreshOutcome::Changed {
                    return Err(Outcome::Rejected(SignatureError::NoMatch.into()));
                }
                let secrets = self.secrets.secrets(family).await.map_err(unavailable)?;
                check(&secrets).map_err(|e| Outcome::Rejected(e.into()))
            }
            other => other.map_err(|e| Outcome::Rejected(e.into())),
        }
    }

    /// Records a validly signed event that cannot be translated or applied, with its bytes.
    /// On arrival (`New`) the record must not exist; on a replay (`ReplaceParked`) it is
    /// rewritten with the newest reason, and stays parked.
    async fn park(
        &self,
        delivery: &Delivery<'_>,
        meta: &EventMeta,
        customer: Option<CustomerId>,
        reason: &str,
        guard: LedgerGuard,
    ) -> Outcome {
        tracing::warn!(event_id = %meta.id, event_type = %meta.event_type, reason, "parking event");
        let record = LedgerRecord {
            provider: meta.provider,
            event_id: meta.id.clone(),
            event_type: meta.event_type.clone(),
            created: meta.created,
            livemode: meta.livemode,
            state: LedgerState::Parked,
            family: delivery.family,
            received_at: self.clock.now(),
            customer,
            detail: Some(reason.to_owned()),
            parked: Some(parked_body(delivery.raw, delivery.signed_at)),
        };
        let result = self.store.commit(&Commit::ledger_only(record, guard)).await;
        self.finish(meta.id.as_str(), result.map(|()| LedgerState::Parked))
    }

    /// Applies a verified event: read once, decide, commit once; retried on contention.
    async fn apply(&self, v: &Verified<'_>, guard: LedgerGuard) -> Outcome {
        let event_id = v.meta.id.as_str();
        let Some(customer_id) = v.event.customer().cloned() else {
            // Not modelled: one conditional write records it as ignored.
            let record = self.ledger_record(v, LedgerState::Ignored, None);
            let result = self.store.commit(&Commit::ledger_only(record, guard)).await;
            return self.finish(event_id, result.map(|()| LedgerState::Ignored));
        };
        let mut last_error = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            match self.attempt(v, guard, &customer_id).await {
                Err(StoreError::Contention(why)) => last_error = why,
                Err(StoreError::Corrupt(why)) => {
                    return self
                        .park(v.delivery, &v.meta, Some(customer_id), &why, guard)
                        .await;
                }
                result => return self.finish(event_id, result),
            }
        }
        Outcome::Unavailable(format!(
            "gave up after {MAX_ATTEMPTS} attempts: {last_error}"
        ))
    }

    /// The outcome of a commit: recorded in `state`, already recorded, or retry later.
    fn finish(&self, event_id: &str, result: Result<LedgerState, StoreError>) -> Outcome {
        match result {
            Ok(state) => Outcome::Recorded {
                event_id: event_id.to_owned(),
                state,
            },
            Err(StoreError::AlreadyRecorded) => Outcome::Duplicate {
                event_id: event_id.to_owned(),
            },
            Err(e) => {
                tracing::error!(event_id, error = %e, "transient failure");
                Outcome::Unavailable(e.to_string())
            }
        }
    }

    fn ledger_record(
        &self,
        v: &Verified<'_>,
        state: LedgerState,
        customer: Option<CustomerId>,
    ) -> LedgerRecord {
        LedgerRecord {
            provider: v.meta.provider,
            event_id: v.meta.id.clone(),
            event_type: v.meta.event_type.clone(),
            created: v.meta.created,
            livemode: v.meta.livemode,
            state,
            family: v.delivery.family,
            received_at: self.clock.now(),
            customer,
            detail: None,
            parked: None,
        }
    }

    /// One read-decide-commit attempt. Returns the ledger state it committed.
    async fn attempt(
        &self,
        v: &Verified<'_>,
        guard: LedgerGuard,
        customer_id: &CustomerId,
    ) -> Result<LedgerState, StoreError> {
        let hint = v
            .event
            .user_claim()
            .cloned()
            .or_else(|| self.cached_link(customer_id));
        let loaded = self
            .store
            .load(
                v.meta.provider,
                &v.meta.id,
                Some(customer_id),
                hint.as_ref(),
            )
            .await?;
        match (&loaded.ledger, guard) {
            (Some(_), LedgerGuard::New) => return Err(StoreError::AlreadyRecorded),
            (Some(rec), LedgerGuard::ReplaceParked) if rec.state != LedgerState::Parked => {
                return Err(StoreError::AlreadyRecorded)
            }
            (None, LedgerGuard::ReplaceParked) => return Err(StoreError::AlreadyRecorded),
            _ => {}
        }
        let (before, rev) = match loaded.customer {
            Some(s) => (s.value, Some(s.rev)),
            None => (
                CustomerBilling::new(v.meta.provider, customer_id.clone()),
                None,
            ),
        };
        let mut after = before.clone();
        let state = match after.apply(&v.meta, &v.event) {
            Effect::Applied => LedgerState::Applied,
            Effect::Stale => LedgerState::Stale,
            Effect::Ignored => LedgerState::Ignored,
        };
        if state != LedgerState::Applied {
            let record = self.ledger_record(v, state, Some(customer_id.clone()));
            let commit = Commit::ledger_only(record, guard);
            self.store.commit(&commit).await?;
            return Ok(state);
        }
        let commit = self
            .applied_commit(v, guard, &before, after, rev, loaded.user, hint)
            .await?;
        self.store.commit(&commit).await?;
        if let Some(user) = commit
            .customer
            .as_ref()
            .and_then(|(c, _)| c.user().cloned())
        {
            self.remember_link(customer_id, user);
        }
        Ok(LedgerState::Applied)
    }

    /// Builds the commit of an applied event: aggregate, user projections, audit, outbox.
    #[allow(clippy::too_many_arguments)]
    async fn applied_commit(
        &self,
        v: &Verified<'_>,
        guard: LedgerGuard,
        before: &CustomerBilling,
        after: CustomerBilling,
        rev: Option<u64>,
        loaded_user: Option<Stored<UserAccessDoc>>,
        hint: Option<UserId>,
    ) -> Result<Commit, StoreError> {
        let tiers = &self.settings.tiers;
        let now = self.clock.now();
        let source = source_key(after.provider, &after.customer);
        let subs_before = customer_access(before, tiers);
        let subs_after = customer_access(&after, tiers);
        let mut users = Vec::new();
        let mut outbox = Vec::new();
        // The user the customer belongs to now, and the one it belonged to (a link can move).
        let targets: Vec<(UserId, bool)> = match (before.user(), after.user()) {
            (Some(old), Some(new)) if old != new => vec![(old.clone(), false), (new.clone(), true)],
            (_, Some(new)) => vec![(new.clone(), true)],
            (_, None) => vec![],
        };
        for (user, keeps_source) in targets {
            let stored = if hint.as_ref() == Some(&user) {
                // The first read already asked for this user's item (absent means new user).
                loaded_user.clone()
            } else {
                // The first read guessed another user (or none): one more read, for this user.
                self.store.load_user(&user).await?
            };
            let (doc, rev) = match stored {
                Some(s) => (s.value, Some(s.rev)),
                None => (empty_user_doc(&user), None),
            };
            let subs = keeps_source.then(|| subs_after.clone());
            let (doc, change) = update_user(doc, &source, subs, tiers, now);
            if let Some((previous, access)) = change {
                outbox.push(access_changed(&doc, &previous, &access, &v.meta, now));
            }
            users.push((doc, rev));
        }
        if after.user().is_none()
            && subs_after.iter().any(|s| s.grants)
            && !subs_before.iter().any(|s| s.grants)
        {
            outbox.push(customer_unlinked(&after, &subs_after, &v.meta, now));
        }
        let audit = AuditRecord {
            provider: after.provider,
            customer: after.customer.clone(),
            event_id: v.meta.id.clone(),
            event_type: v.meta.event_type.clone(),
            created: v.meta.created,
            received_at: now,
            user: after.user().cloned(),
            before: summary(before.user(), &subs_before, &subs_after),
            after: summary(after.user(), &subs_after, &subs_before),
        };
        Ok(Commit {
            ledger: self.ledger_record(v, LedgerState::Applied, Some(after.customer.clone())),
            guard,
            customer: Some((after, rev)),
            users,
            audit: vec![audit],
            outbox,
        })
    }

    fn cached_link(&self, customer: &CustomerId) -> Option<UserId> {
        self.link_cache.lock().ok()?.get(customer).cloned()
    }

    fn remember_link(&self, customer: &CustomerId, user: UserId) {
        if let Ok(mut cache) = self.link_cache.lock() {
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(customer.clone(), user);
        }
    }

    /// Re-applies a parked event through the same pipeline (no signature check: it was
    /// verified when it arrived). Idempotent: a record that is no longer parked is left alone.
    pub async fn replay(&self, provider: Provider, event_id: &EventId) -> Outcome {
        let outcome = self.replay_inner(provider, event_id).await;
        if matches!(outcome, Outcome::Recorded { .. }) {
            self.metrics.incr(Counter::Replayed, "replay");
        }
        outcome
    }

    async fn replay_inner(&self, provider: Provider, event_id: &EventId) -> Outcome {
        let id = event_id.to_string();
        let record = match self.store.ledger(provider, event_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Unavailable(format!("no record of {id}")),
            Err(e) => return Outcome::Unavailable(e.to_string()),
        };
        let Some(parked) = record
            .parked
            .filter(|_| record.state == LedgerState::Parked)
        else {
            return Outcome::Duplicate { event_id: id };
        };
        let Some(raw) = parked.gzip.as_deref().and_then(gunzip) else {
            return Outcome::Unavailable(format!("{id}: body not stored; resend it from Stripe"));
        };
        let delivery = Delivery {
            family: record.family,
            raw: &raw,
            signed_at: parked.signed_at,
        };
        let envelope = match self
            .parse_or_park(&delivery, LedgerGuard::ReplaceParked)
            .await
        {
            Ok(env) => env,
            Err(parked) => return parked,
        };
        if envelope.id != id {
            // Parked under its body's hash when it could not be read; now it reads as another
            // id. Have Stripe resend it: it will be recorded under its own id.
            return Outcome::Unavailable(format!(
                "{id} now reads as {}: resend it from Stripe",
                envelope.id
            ));
        }
        self.translate_and_apply(&delivery, &envelope, LedgerGuard::ReplaceParked)
            .await
    }
}

/// The ledger key of a signed body that has no readable id.
fn unparsed_id(raw: &[u8]) -> EventId {
    EventId::new(format!("unparsed_{}", &sha256_hex(raw)[..32]))
}

fn empty_user_doc(user: &UserId) -> UserAccessDoc {
    UserAccessDoc {
        user: user.clone(),
        sources: Default::default(),
        access: Access::none(),
        feed_seq: 0,
        updated_at: 0,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn parked_body(raw: &[u8], signed_at: i64) -> ParkedBody {
    let gzip = gzip(raw).filter(|g| g.len() <= MAX_PARKED_GZIP_BYTES);
    ParkedBody {
        gzip,
        sha256: sha256_hex(raw),
        len: raw.len(),
        signed_at,
    }
}

pub fn gzip(raw: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(raw).ok()?;
    enc.finish().ok()
}

pub fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(16 * 1024 * 1024)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

async fn backoff(attempt: usize) {
    use rand::Rng;
    let cap_ms = 10u64 << attempt.min(6);
    let jitter = rand::rng().random_range(0..=cap_ms);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}
