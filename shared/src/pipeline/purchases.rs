//! Purchases in the use case: each one-time purchase is an item of its own beside its
//! customer's aggregate (which keeps only their book, `CustomerBilling::bought`), so a customer's
//! item and the write units of its events do not grow with its history.
//!
//! Contract: an event reads the purchases it addresses (its session or one-off invoice; for a
//! charge's events, the purchase its payment intent or invoice paid), applies to the aggregate
//! holding just those, and writes each purchase it changed in its one commit, guarded by the
//! purchase's revision. Every such commit also writes the customer (the book moves), whose
//! revision it checks, so the purchases read after the customer are as current as it.
//!
//! An aggregate written before purchases had items still holds them (`purchases`): they stay
//! there, read with it, until an event changes one; that event moves it into its own item.

use super::charges::ChargeUpdate;
use super::service::Pipeline;
use super::verified::Verified;
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::{BillingEvent, Purchase};
use crate::domain::ids::CustomerId;
use crate::ports::{Commit, PurchaseKey, PurchaseWrite, StoreError, Stored};
use std::collections::{BTreeMap, BTreeSet};

impl Pipeline {
    /// The event's customer as read (new if absent), with the purchases it addresses read
    /// and put in it, and its revision. `charge` is the event's charge as read and as the event
    /// leaves it: its copy as read is put back too (the customer keeps no copy of a charge
    /// whose purchase it does not hold, or may have dropped it).
    pub(super) async fn read_customer(
        &self,
        v: &Verified<'_>,
        customer: &CustomerId,
        stored: Option<Stored<CustomerBilling>>,
        charge: Option<&ChargeUpdate>,
    ) -> Result<(CustomerBilling, Option<u64>, ReadPurchases), StoreError> {
        let charge_before = charge.and_then(|c| c.before.as_ref());
        let charge = charge.map(|c| &c.after);
        let (mut state, rev) = match stored {
            Some(s) => (s.value, Some(s.rev)),
            None => (
                CustomerBilling::new(v.meta.provider, customer.clone()),
                None,
            ),
        };
        let keys = purchase_keys(&v.event, charge);
        let read = if keys.is_empty() {
            Vec::new()
        } else {
            self.store
                .purchases(v.meta.provider, customer, &keys)
                .await?
        };
        let purchases = ReadPurchases::into_aggregate(read, &mut state);
        if let Some(c) = charge_before {
            state.restore_charge(c);
        }
        Ok((state, rev, purchases))
    }
}

/// How the event (and the charge it names, as read) addresses its customer's purchases.
pub(super) fn purchase_keys(event: &BillingEvent, charge: Option<&Charge>) -> Vec<PurchaseKey> {
    let mut keys = Vec::new();
    let mut paid_by = |intent: Option<&String>, invoice: Option<&String>| {
        keys.extend(intent.cloned().map(PurchaseKey::Intent));
        keys.extend(invoice.cloned().map(PurchaseKey::Session));
    };
    match event {
        BillingEvent::CheckoutCompleted {
            purchase: Some(p), ..
        } => paid_by(None, Some(&p.session)),
        BillingEvent::Invoice(e) if e.snapshot.subscription.is_none() => {
            paid_by(None, Some(&e.snapshot.id.to_string()));
        }
        BillingEvent::ChargeRefunded(r) => paid_by(r.payment_intent.as_ref(), r.invoice.as_ref()),
        _ => {}
    }
    if let Some(c) = charge {
        paid_by(c.payment_intent.as_ref(), c.invoice.as_ref());
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The purchases an event read, and those its aggregate still held.
pub(super) struct ReadPurchases {
    read: BTreeMap<String, Stored<Purchase>>,
    /// Sessions the stored aggregate itself held (written before purchases had items).
    kept: BTreeSet<String>,
}

impl ReadPurchases {
    /// Puts the purchases read into the aggregate as read (an item is newer than a copy the
    /// aggregate kept: it was moved out of it).
    pub(super) fn into_aggregate(read: Vec<Stored<Purchase>>, state: &mut CustomerBilling) -> Self {
        let kept = state.purchases.keys().cloned().collect();
        let read: BTreeMap<String, Stored<Purchase>> = read
            .into_iter()
            .map(|s| (s.value.session.clone(), s))
            .collect();
        for (session, s) in &read {
            state.purchases.insert(session.clone(), s.value.clone());
        }
        Self { read, kept }
    }

    /// Writes each purchase the event changed as its item and leaves in the aggregate only
    /// the older copies nothing moved out.
    pub(super) fn attach(&self, commit: &mut Commit, before: &CustomerBilling) {
        let Some((after, _)) = commit.customer.as_mut() else {
            return;
        };
        let changed: Vec<PurchaseWrite> = after
            .purchases
            .iter()
            .filter(|(session, p)| before.purchases.get(*session) != Some(*p))
            .map(|(session, p)| {
                let stored = self.read.get(session);
                let named = stored.and_then(|s| s.value.payment_intent.as_ref());
                PurchaseWrite {
                    purchase: p.clone(),
                    rev: stored.map(|s| s.rev),
                    // The pointer, once: when the item first names its payment intent.
                    intent: p.payment_intent.clone().filter(|_| named.is_none()),
                }
            })
            .collect();
        after.purchases.retain(|session, _| {
            self.kept.contains(session)
                && !self.read.contains_key(session)
                && !changed.iter().any(|w| &w.purchase.session == session)
        });
        commit.purchases = changed;
    }
}
