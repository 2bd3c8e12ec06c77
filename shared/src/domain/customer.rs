//! The billing state of one provider customer, and how one event changes it.
//!
//! A customer is the unit of consistency: every modelled event names exactly one customer, so
//! one conditional write of this aggregate (with the ledger record) applies an event atomically.
//! All state lives in [`Register`]s, so `apply` is commutative and idempotent (see `version`).

use super::events::{
    BillingEvent, EventMeta, LinkSource, PaymentOutcome, SubscriptionChange, SubscriptionSnapshot,
};
use super::ids::{CustomerId, InvoiceId, Provider, SubscriptionId, UserId};
use super::version::{offer, Offer, Register, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The payment state of a subscription, as the newest invoice event left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    pub invoice: InvoiceId,
    pub outcome: PaymentOutcome,
    pub hosted_invoice_url: Option<String>,
}

/// A deletion: terminal; the reason is kept (`cancellation_requested`, `payment_failed`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Register<SubscriptionSnapshot>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Register<Deletion>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Register<PaymentState>>,
}

/// Everything the model knows about one provider customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerBilling {
    pub provider: Provider,
    pub customer: CustomerId,
    /// One register per way of learning the user; the strongest source present wins.
    #[serde(default)]
    pub links: BTreeMap<LinkSource, Register<UserId>>,
    #[serde(default)]
    pub subscriptions: BTreeMap<SubscriptionId, SubscriptionRecord>,
}

/// What applying one event did to the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// At least one register moved.
    Applied,
    /// Every register it addresses already holds a newer event.
    Stale,
    /// The type is recorded but not modelled.
    Ignored,
}

/// Same-second precedence of subscription events: creation first, deletion last.
fn subscription_rank(change: SubscriptionChange) -> u8 {
    match change {
        SubscriptionChange::Created | SubscriptionChange::TrialWillEnd => 1,
        SubscriptionChange::Updated | SubscriptionChange::Paused | SubscriptionChange::Resumed => 2,
        SubscriptionChange::Deleted => 3,
    }
}

/// Same-second precedence of invoice outcomes: a payment settles a failure of the same second.
fn payment_rank(outcome: PaymentOutcome) -> u8 {
    match outcome {
        PaymentOutcome::ActionRequired => 1,
        PaymentOutcome::Failed => 2,
        PaymentOutcome::Paid => 3,
    }
}

/// Folds register offers into one effect: any move is `Applied`; otherwise any older is `Stale`.
#[derive(Default)]
struct Tally {
    taken: bool,
    older: bool,
    same: bool,
}

impl Tally {
    fn add(&mut self, offer: Offer) {
        match offer {
            Offer::Taken => self.taken = true,
            Offer::Older => self.older = true,
            Offer::Same => self.same = true,
        }
    }
    fn effect(&self) -> Effect {
        if self.taken {
            Effect::Applied
        } else if self.older || self.same {
            Effect::Stale
        } else {
            Effect::Ignored
        }
    }
}

impl CustomerBilling {
    pub fn new(provider: Provider, customer: CustomerId) -> Self {
        Self {
            provider,
            customer,
            links: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
        }
    }

    /// The user this customer belongs to: the claim of the strongest source present.
    pub fn user(&self) -> Option<&UserId> {
        self.links.values().next_back().map(|r| &r.value)
    }

    /// Applies one event. Pure: no clock, no I/O; the result depends only on the set of events.
    pub fn apply(&mut self, meta: &EventMeta, event: &BillingEvent) -> Effect {
        let mut tally = Tally::default();
        match event {
            BillingEvent::CheckoutCompleted { user, .. } => {
                let Some(user) = user else {
                    // A guest checkout names no user: nothing to link.
                    return Effect::Ignored;
                };
                // Only the link: the subscription's own events bring its state (creating an
                // empty record here would make the stored aggregate depend on arrival order).
                tally.add(self.claim(LinkSource::CheckoutClientReference, meta, user));
            }
            BillingEvent::CustomerUpdated { user_claim, .. } => match user_claim {
                Some(user) => tally.add(self.claim(LinkSource::CustomerMetadata, meta, user)),
                None => return Effect::Ignored,
            },
            BillingEvent::Subscription { change, snapshot } => {
                if let Some(user) = &snapshot.user_claim {
                    tally.add(self.claim(LinkSource::SubscriptionMetadata, meta, user));
                }
                let version =
                    Version::new(meta.created, subscription_rank(*change), meta.id.as_str());
                let record = self.subscriptions.entry(snapshot.id.clone()).or_default();
                tally.add(offer(&mut record.snapshot, &version, snapshot.clone()));
                if *change == SubscriptionChange::Deleted {
                    let deletion = Deletion {
                        reason: snapshot.cancellation_reason.clone(),
                    };
                    tally.add(offer(&mut record.deletion, &version, deletion));
                }
            }
            BillingEvent::InvoicePayment(payment) => {
                let Some(sub) = &payment.subscription else {
                    // One-off invoices do not change access; the invoice model comes later.
                    return Effect::Ignored;
                };
                let version = Version::new(
                    meta.created,
                    payment_rank(payment.outcome),
                    meta.id.as_str(),
                );
                let state = PaymentState {
                    invoice: payment.invoice.clone(),
                    outcome: payment.outcome,
                    hosted_invoice_url: payment.hosted_invoice_url.clone(),
                };
                let record = self.subscriptions.entry(sub.clone()).or_default();
                tally.add(offer(&mut record.payment, &version, state));
            }
            BillingEvent::Unsupported => return Effect::Ignored,
        }
        tally.effect()
    }

    fn claim(&mut self, source: LinkSource, meta: &EventMeta, user: &UserId) -> Offer {
        let version = Version::new(meta.created, 0, meta.id.as_str());
        let mut slot = self.links.remove(&source);
        let result = offer(&mut slot, &version, user.clone());
        if let Some(register) = slot {
            self.links.insert(source, register);
        }
        result
    }
}
