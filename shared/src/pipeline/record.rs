//! Record once and apply: one consistent read, a pure decision, one conditional commit —
//! retried on contention, parked on a permanent failure, answered 503 on a transient one.

use super::charges::{attach_charge, charge_update};
use super::invoices::{attach_invoice, invoice_update};
use super::project::Projection;
use super::service::{Delivery, DuplicateBy, Outcome, Pipeline};
use super::verified::{seen, Attempted, Verified};
use crate::domain::customer::{CustomerBilling, Effect};
use crate::domain::events::{AggregateKey, BillingEvent};
use crate::domain::ids::CustomerId;
use crate::domain::ids::UserId;
use crate::domain::version::Offer;
use crate::error::Error;
use crate::ports::Beside;
use crate::ports::{Commit, LedgerGuard, LedgerRecord, LedgerState, Loaded, StoreError};
use crate::providers::seam::ReadEvent;
use crate::telemetry::Counter;

/// Optimistic-concurrency attempts before answering 5xx.
const MAX_ATTEMPTS: usize = 8;

impl Pipeline {
    pub(super) fn cached_charge(&self, v: &Verified<'_>) -> Option<CustomerId> {
        let key = (v.meta.provider, v.event.charge()?.to_owned());
        self.charges.lock().ok()?.get(&key).cloned()
    }

    /// The same second half for an arriving and a replayed event.
    pub(super) async fn translate_and_apply(
        &self,
        delivery: &Delivery<'_>,
        read: ReadEvent,
        guard: LedgerGuard,
    ) -> Outcome {
        match read.event {
            Ok(event) => {
                let verified = Verified {
                    meta: read.meta,
                    event,
                    delivery,
                };
                self.apply(&verified, guard).await
            }
            Err(why) => self.park(delivery, &read.meta, None, &why, guard).await,
        }
    }

    /// Applies a verified event to its aggregate; retried on contention.
    async fn apply(&self, v: &Verified<'_>, guard: LedgerGuard) -> Outcome {
        let event_id = v.meta.id.as_str();
        // The aggregate the event changes; `invoice_payment.paid` has none (it changes only its
        // invoice's own record).
        let aggregate = v.event.aggregate();
        if aggregate.is_none() && v.event.invoice().is_none() && v.event.charge().is_none() {
            // Not modelled: one conditional write records it as ignored.
            let record = self.ledger_record(v, LedgerState::Ignored, None);
            let result = self.store.commit(&Commit::ledger_only(record, guard)).await;
            return self.finish(event_id, result.map(|()| LedgerState::Ignored));
        }
        let mut last_error = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let attempted = match &aggregate {
                Some(AggregateKey::Product(product)) => {
                    self.attempt_product(v, guard, product).await
                }
                Some(AggregateKey::Customer(customer_id)) => {
                    self.attempt(v, guard, Some(customer_id)).await
                }
                // A warm instance may know the customer of the event's charge already.
                None => match self.attempt(v, guard, self.cached_charge(v).as_ref()).await {
                    // A dispute or refund of a bound charge: its customer joins the read.
                    Ok(Attempted::Bound(customer)) => self.attempt(v, guard, Some(&customer)).await,
                    other => other,
                },
            };
            match attempted {
                Err(StoreError::Contention(why)) => last_error = why,
                Err(e) if e.is_permanent() => {
                    // Retrying can never help: keep the bytes and say why, for a replay.
                    let why = format!("permanent store error: {e}");
                    let customer = aggregate.as_ref().and_then(|a| a.customer().cloned());
                    return self.park(v.delivery, &v.meta, customer, &why, guard).await;
                }
                Ok(Attempted::SeenInLedger) => {
                    return Outcome::Duplicate {
                        event_id: event_id.to_owned(),
                        by: DuplicateBy::Read,
                    }
                }
                Ok(Attempted::Recorded(state)) => return self.finish(event_id, Ok(state)),
                // Only a read without a customer answers this; the retry reads with it.
                Ok(Attempted::Bound(customer)) => last_error = format!("bound to {customer}"),
                Err(e) => return self.finish(event_id, Err(e)),
            }
        }
        self.failed(
            Some(event_id),
            StoreError::Contention(format!(
                "gave up after {MAX_ATTEMPTS} attempts: {last_error}"
            ))
            .into(),
        )
    }

    /// The outcome of a commit: recorded in `state`, already recorded, or retry later.
    pub(super) fn finish(
        &self,
        event_id: &str,
        result: Result<LedgerState, StoreError>,
    ) -> Outcome {
        match result {
            Ok(state) => Outcome::Recorded {
                event_id: event_id.to_owned(),
                state,
            },
            Err(StoreError::AlreadyRecorded) => Outcome::Duplicate {
                event_id: event_id.to_owned(),
                by: DuplicateBy::Condition,
            },
            Err(e) => self.failed(Some(event_id), Error::Store(e)),
        }
    }

    pub(super) fn ledger_record(
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
            family: v.delivery.endpoint.to_owned(),
            received_at: self.clock.now(),
            customer,
            detail: None,
            parked: None,
        }
    }

    /// The event's one consistent read: ledger record, customer, a user, and its invoice.
    async fn load_event(
        &self,
        v: &Verified<'_>,
        customer_id: Option<&CustomerId>,
        hint: Option<&UserId>,
    ) -> Result<Loaded, StoreError> {
        let (provider, id) = (v.meta.provider, &v.meta.id);
        let beside = match (v.event.charge(), v.event.invoice()) {
            (Some(charge), _) => Beside::Charge(charge),
            (None, Some(invoice)) => Beside::Invoice(invoice),
            (None, None) => Beside::Nothing,
        };
        self.store
            .load(provider, id, customer_id, hint, beside)
            .await
    }

    /// One read-decide-commit attempt.
    async fn attempt(
        &self,
        v: &Verified<'_>,
        guard: LedgerGuard,
        customer_id: Option<&CustomerId>,
    ) -> Result<Attempted, StoreError> {
        let hint = v
            .event
            .user_claim()
            .cloned()
            .or_else(|| self.cached_link(v.meta.provider, customer_id?));
        let loaded = self.load_event(v, customer_id, hint.as_ref()).await?;
        if seen(loaded.ledger.as_ref(), guard) {
            return Ok(Attempted::SeenInLedger);
        }
        let invoice = invoice_update(v, loaded.invoice.clone());
        let charge = charge_update(v, loaded.charge.clone());
        if let Some(stored) = &loaded.charge {
            self.remember_charge(v.meta.provider, &stored.value);
        }
        // A customer-less event read with a customer its charge does not name (a stale guess)
        // goes on without it.
        let confirmed = customer_id.filter(|c| {
            v.event.customer().is_some()
                || charge.as_ref().and_then(|ch| ch.after.customer.as_ref()) == Some(*c)
        });
        let Some(customer_id) = confirmed else {
            // Only a change needs the customer: every change of a bound charge was carried to
            // its customer, so a stale event leaves the customer's copy as current as it was.
            let changed = charge.as_ref().filter(|c| c.effect == Effect::Applied);
            if let Some(bound) = changed.and_then(|c| c.after.customer.clone()) {
                if customer_id != Some(&bound) {
                    return Ok(Attempted::Bound(bound));
                }
            }
            // Names only an invoice (`invoice_payment.paid`) or a charge not bound to a
            // customer yet: the event changes that item alone.
            return self
                .commit_invoice_only(v, guard, (invoice, charge), None, Effect::Ignored)
                .await;
        };
        let (before, rev, purchases) = self
            .read_customer(v, customer_id, loaded.customer, charge.as_ref())
            .await?;
        let mut after = before.clone();
        let mut effect = after.apply(&v.meta, &v.event);
        if let Some(c) = &charge {
            // The charge's joined state (a dispute or refund that came before its binding, or
            // this event's own) reaches its customer in this commit.
            if after.absorb_charge(&c.after) == Offer::Taken {
                effect = Effect::Applied;
            }
        }
        if effect != Effect::Applied {
            // The aggregate did not move: only the ledger record, and its own items if moved.
            return self
                .commit_invoice_only(v, guard, (invoice, charge), Some(&before), effect)
                .await;
        }
        let unresolved = self.settle_ties(v, &mut after).await;
        let projection = Projection {
            verified: v,
            guard,
            before: &before,
            rev,
            loaded_user: loaded.user,
            hint,
            unresolved,
        };
        let mut commit = self.applied_commit(projection, after).await?;
        purchases.attach(&mut commit, &before);
        attach_invoice(&mut commit, invoice);
        attach_charge(&mut commit, charge);
        self.add_email_jobs(v, &mut commit);
        self.store.commit(&commit).await?;
        if let Some((charge, _)) = &commit.charge {
            self.remember_charge(v.meta.provider, charge);
        }
        if commit.audit.iter().any(|a| !a.unresolved_ties.is_empty()) {
            self.metrics
                .incr(Counter::TiesUnresolved, v.delivery.endpoint);
        }
        if let Some(user) = commit
            .customer
            .as_ref()
            .and_then(|(c, _)| c.user().cloned())
        {
            self.remember_link(v.meta.provider, customer_id, user);
        }
        Ok(Attempted::Recorded(LedgerState::Applied))
    }

    /// Same-second snapshots of the event's subscription that the events cannot order: asks
    /// the provider's API for the current state (when configured) and applies it above them.
    /// Returns the subscription if it stays unresolved (counted; the audit entry says so).
    async fn settle_ties(&self, v: &Verified<'_>, after: &mut CustomerBilling) -> Vec<String> {
        let BillingEvent::Subscription { snapshot, .. } = &v.event else {
            return Vec::new();
        };
        let id = &snapshot.id;
        let Some(second) = after.unresolved_tie(id) else {
            return Vec::new();
        };
        match v
            .delivery
            .provider
            .current_subscription(v.meta.provider, id)
            .await
        {
            Ok(Some(current)) if current.customer == after.customer => {
                after.apply_fetched(second, current);
                tracing::info!(event_id = %v.meta.id, subscription = %id, "same-second tie settled from the provider's API");
                return Vec::new();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(event_id = %v.meta.id, subscription = %id, kind = e.kind().as_str(), error = %e, "could not read the subscription to settle a tie");
            }
        }
        tracing::warn!(event_id = %v.meta.id, subscription = %id, "same-second events could not be ordered; the choice is deterministic");
        vec![id.to_string()]
    }
}

async fn backoff(attempt: usize) {
    use rand::Rng;
    let cap_ms = 10u64 << attempt.min(6);
    let jitter = rand::rng().random_range(0..=cap_ms);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}
