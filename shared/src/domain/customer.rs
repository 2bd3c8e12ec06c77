//! The billing state of one provider customer, and how one event changes it.
//!
//! A customer is the unit of consistency: every modelled event names exactly one customer, so
//! one conditional write of this aggregate (with the ledger record) applies an event atomically.
//! Every part of the state is a join of the events seen — a register that only moves to a greater
//! version, a set of same-second candidates, a per-invoice maximum — so `apply` is commutative
//! and idempotent: any delivery order of the same events ends in the same aggregate.

use super::access::{purchase_access, PurchaseAccess, PurchaseBook};
use super::charge::Charge;
use super::events::{
    BillingEvent, ChargeRefund, EmailAddress, EntitlementSet, EventMeta, InvoiceChange,
    InvoiceEvent, InvoicePayment, LinkSource, OrderEvidence, PaymentOutcome, Purchase,
    PurchaseKind, ScheduleSnapshot, Settlement, SubscriptionChange, SubscriptionSnapshot,
    SystemGrant,
};
use super::ids::{CustomerId, InvoiceId, ProductId, Provider, SubscriptionId, UserId};
use super::periods::{self, Invalid, InvoicePeriod, PeriodClaim, PeriodView, Span};
use super::version::{offer, Offer, Register, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deleted subscriptions kept whole (newest deletions first); older ones are reduced to a
/// tombstone so that a customer billed for years keeps a bounded aggregate.
pub const ENDED_KEPT_WHOLE: usize = 8;
/// How long a tombstone is kept after the customer's newest deletion: Stripe retries a delivery
/// for up to three days and serves an event from its API for 30, so no event of a subscription
/// deleted before that can still arrive for the first time. Older tombstones are dropped and the
/// horizon they leave ([`CustomerBilling::horizon`]) answers for them.
pub const TOMBSTONE_HORIZON: i64 = 30 * 86_400;
/// Charge copies kept that no purchase the aggregate holds claims: those of subscription
/// invoices (shown by the billing route, no access depends on them) and those that came
/// before their purchase. Claimed copies live in their purchase's item.
pub const UNCLAIMED_CHARGES_KEPT: usize = 32;

/// Whether `charge` paid `purchase`: by the payment intent, or for a one-off invoice by the
/// invoice the charge names.
fn pays(charge: &Charge, purchase: &Purchase) -> bool {
    let pi = purchase.payment_intent.as_ref();
    (pi.is_some() && charge.payment_intent.as_ref() == pi)
        || (purchase.kind == PurchaseKind::Invoice
            && charge.invoice.as_ref() == Some(&purchase.session))
}
/// Same-second snapshots kept per subscription (more in one second would be pathological).
pub(crate) const MAX_CANDIDATES: usize = 8;
/// Rank of a snapshot read from the provider's API to settle a same-second tie: above every
/// event of that second.
pub const FETCHED_RANK: u8 = 4;

/// A deletion: terminal; the reason is kept (`cancellation_requested`, `payment_failed`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub reason: Option<String>,
}

/// One snapshot of an object (a subscription by default; also a customer's entitlements), with
/// what orders it against others of the same second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate<T = SubscriptionSnapshot> {
    pub version: Version,
    pub snapshot: T,
    #[serde(default)]
    pub evidence: OrderEvidence,
}

/// Which candidate is the subscription's state, and whether the events proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest<'a, T = SubscriptionSnapshot> {
    pub candidate: &'a Candidate<T>,
    /// `false` when the events of the newest second could not order themselves: the choice is
    /// deterministic (greatest event id) but may not be Stripe's order.
    pub resolved: bool,
}

/// The snapshots of the newest second seen (all share its `created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshots<T = SubscriptionSnapshot> {
    pub candidates: Vec<Candidate<T>>,
}

impl<T> Default for Snapshots<T> {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
        }
    }
}

impl<T: Clone> Snapshots<T> {
    pub(crate) fn second(&self) -> Option<i64> {
        self.candidates.first().map(|c| c.version.created)
    }

    /// Forgets a snapshot read from the API once the events of its second order themselves:
    /// then it adds nothing, and whether it was ever fetched depends only on arrival order.
    fn drop_needless_fetch(&mut self) {
        if !self
            .candidates
            .iter()
            .any(|c| c.version.rank == FETCHED_RANK)
        {
            return;
        }
        let events = Snapshots {
            candidates: self
                .candidates
                .iter()
                .filter(|c| c.version.rank < FETCHED_RANK)
                .cloned()
                .collect(),
        };
        if events.latest().is_some_and(|l| l.resolved) {
            *self = events;
        }
    }

    /// Adds a snapshot: a newer second replaces the set, the same second joins it.
    pub(crate) fn offer(&mut self, candidate: Candidate<T>) -> Offer {
        // By instant: PayPal's events of one second are ordered by their milliseconds.
        match self.candidates.first().map(|c| c.version.instant()) {
            Some(s) if candidate.version.instant() < s => Offer::Older,
            Some(s) if candidate.version.instant() == s => {
                let id = &candidate.version.event_id;
                if self.candidates.iter().any(|c| &c.version.event_id == id) {
                    return Offer::Same;
                }
                self.candidates.push(candidate);
                self.candidates.sort_by(|a, b| a.version.cmp(&b.version));
                // Only the events count towards the cap: a snapshot read from the API comes and
                // goes with arrival order, so letting it push out an event would make which
                // event is forgotten depend on that order. Sorted, the first is the oldest event.
                let events = self
                    .candidates
                    .iter()
                    .filter(|c| c.version.rank < FETCHED_RANK)
                    .count();
                if events > MAX_CANDIDATES {
                    self.candidates.remove(0);
                }
                Offer::Taken
            }
            _ => {
                self.candidates = vec![candidate];
                Offer::Taken
            }
        }
    }

    /// The latest snapshot: the highest rank of the second; among several of that rank, the
    /// last of every order the evidence allows.
    ///
    /// In the true order each update follows the one before it (its `previous_attributes` are
    /// that snapshot's values), so the true order is a path through the "may come right after"
    /// relation that visits every snapshot. When every such path ends at the same snapshot, it
    /// is the latest; otherwise (a change put back within the second, a snapshot that reports
    /// no previous values) the events cannot decide.
    pub fn latest(&self) -> Option<Latest<'_, T>> {
        let top = self.candidates.iter().map(|c| c.version.rank).max()?;
        let pool: Vec<&Candidate<T>> = self
            .candidates
            .iter()
            .filter(|c| c.version.rank == top)
            .collect();
        let evidence: Vec<&OrderEvidence> = pool.iter().map(|c| &c.evidence).collect();
        let ends = path_ends(&evidence);
        let candidate = match ends.as_slice() {
            [one] => {
                return Some(Latest {
                    candidate: pool[*one],
                    resolved: true,
                })
            }
            // Undecided: deterministic, the greatest version among the possible ends (or among
            // all, when no order fits the evidence).
            [] => pool
                .iter()
                .copied()
                .max_by(|a, b| a.version.cmp(&b.version)),
            many => many
                .iter()
                .map(|&i| pool[i])
                .max_by(|a, b| a.version.cmp(&b.version)),
        }?;
        Some(Latest {
            candidate,
            resolved: false,
        })
    }
}

/// The snapshots that end some order of all of `pool` (their evidence) in which each one may
/// come right after the one before it (its `previous_attributes` are the other's values).
pub(crate) fn path_ends(pool: &[&OrderEvidence]) -> Vec<usize> {
    super::version::path_ends(pool.len(), |next, last| pool[next].follows(pool[last]))
}

/// What the events of one invoice of a subscription add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// The invoice's creation time (orders invoices): the invoice object's own `created`, or
    /// for payloads without one the earliest event about it.
    pub created: i64,
    /// Whether `created` is the invoice's own (only such invoices are pruned: the earliest
    /// event is not a stable date once events can be forgotten).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dated: bool,
    /// `created` of the newest event about it.
    pub last_event: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settlement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_invoice_url: Option<Register<String>>,
}

/// The newest payment attempt of an invoice that did not succeed, and what was said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub failed: bool,
    pub action_required: bool,
}

impl Attempt {
    /// A newer attempt replaces; the same attempt gathers what each of its events said.
    pub(crate) fn merge(current: Option<Attempt>, new: Attempt) -> Attempt {
        match current {
            Some(c) if c.number > new.number => c,
            Some(c) if c.number == new.number => Attempt {
                number: c.number,
                failed: c.failed || new.failed,
                action_required: c.action_required || new.action_required,
            },
            _ => new,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Snapshots>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Register<Deletion>>,
    /// Invoices not older than the newest paid one (older ones cannot change the standing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invoices: BTreeMap<InvoiceId, InvoiceRecord>,
    /// The periods its settled invoices billed, by start (see [`super::periods`]); kept apart
    /// from `invoices`, which forgets what can no longer change the standing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub periods: BTreeMap<i64, InvoicePeriod>,
}

impl SubscriptionRecord {
    /// The subscription's current snapshot, if any arrived.
    pub fn latest(&self) -> Option<Latest<'_>> {
        self.snapshots.as_ref()?.latest()
    }

    /// `created` of the newest paid invoice.
    fn paid_until(&self) -> Option<i64> {
        self.invoices
            .values()
            .filter(|i| i.settled == Some(Settlement::Paid))
            .map(|i| i.created)
            .max()
    }

    /// The payment standing the invoices leave, and the invoice that decides it. A failure
    /// counts while its invoice is neither paid, voided nor written off, and no later invoice
    /// was paid. An attempt that both failed and needs authentication needs the customer
    /// (ActionRequired); one that only failed is overdue.
    pub fn payment(&self) -> Option<(PaymentOutcome, &InvoiceId)> {
        let paid_until = self.paid_until();
        let open_failure = self
            .invoices
            .iter()
            .filter(|(_, i)| i.settled.is_none() && paid_until.is_none_or(|p| i.created > p))
            .filter_map(|(id, i)| {
                let outcome = match i.attempt? {
                    a if a.action_required => PaymentOutcome::ActionRequired,
                    _ => PaymentOutcome::Failed,
                };
                Some((outcome, i.created, id))
            })
            // Overdue outranks action required; then the newest invoice explains.
            .max_by_key(|&(o, created, id)| (o == PaymentOutcome::Failed, created, id));
        if let Some((outcome, _, id)) = open_failure {
            return Some((outcome, id));
        }
        self.invoices
            .iter()
            .filter(|(_, i)| i.settled == Some(Settlement::Paid))
            .max_by_key(|(id, i)| (i.created, (*id).clone()))
            .map(|(id, _)| (PaymentOutcome::Paid, id))
    }

    /// `created` of the newest event behind this record.
    pub fn as_of(&self) -> i64 {
        let snapshot = self.snapshots.as_ref().and_then(Snapshots::second);
        let deletion = self.deletion.as_ref().map(|r| r.version.created);
        let invoice = self.invoices.values().map(|i| i.last_event).max();
        [snapshot, deletion, invoice]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default()
    }

    /// The subscription's periods (settled invoices and trial) in start order.
    pub fn periods(&self) -> Vec<PeriodView> {
        let trial = self.latest().and_then(|l| {
            let s = &l.candidate.snapshot;
            Some(Span {
                start: s.trial_start?,
                end: s.trial_end?,
            })
        });
        periods::periods(&self.periods, trial)
    }

    /// Why the periods do not fit together while the provider says the subscription runs
    /// (`None`: they fit, or it does not run, or it was deleted).
    pub fn invalid(&self) -> Option<Invalid> {
        if self.deletion.is_some() {
            return None;
        }
        let status = &self.latest()?.candidate.snapshot.status;
        periods::validity(status, &self.periods(), &self.periods)
    }

    /// Records the period a settled invoice billed.
    fn apply_period(&mut self, p: &InvoicePayment) -> Offer {
        let (Some(span), Some(settled)) = (p.period, p.change.settlement()) else {
            return Offer::Same;
        };
        let claim = PeriodClaim {
            span,
            period: InvoicePeriod {
                end: span.end,
                invoice: p.invoice.clone(),
                settled,
                amount_paid: p.amount_paid,
                billing_reason: p.billing_reason.clone(),
            },
        };
        periods::join(&mut self.periods, &claim)
    }

    fn apply_invoice(&mut self, meta: &EventMeta, p: &InvoicePayment) -> Offer {
        if self.apply_period(p) == Offer::Taken {
            // The standing may still take it too; either way the record moved.
            let _ = self.apply_standing_of(meta, p);
            return Offer::Taken;
        }
        self.apply_standing_of(meta, p)
    }

    fn apply_standing_of(&mut self, meta: &EventMeta, p: &InvoicePayment) -> Offer {
        let created = p.invoice_created.unwrap_or(meta.created);
        let exists = self.invoices.contains_key(&p.invoice);
        let dated = p.invoice_created.is_some();
        if !exists && dated && self.paid_until().is_some_and(|paid| created < paid) {
            // Older than the newest paid invoice: it can no longer change the standing.
            return Offer::Older;
        }
        let before = self.invoices.get(&p.invoice).cloned();
        let inv = self
            .invoices
            .entry(p.invoice.clone())
            .or_insert(InvoiceRecord {
                created,
                dated,
                last_event: meta.created,
                settled: None,
                attempt: None,
                hosted_invoice_url: None,
            });
        inv.created = inv.created.min(created);
        inv.dated |= dated;
        inv.last_event = inv.last_event.max(meta.created);
        if let Some(s) = p.change.settlement() {
            inv.settled = inv.settled.max(Some(s));
        } else {
            let new = Attempt {
                number: p.attempt.unwrap_or(0),
                failed: p.change == InvoiceChange::Failed,
                action_required: p.change == InvoiceChange::ActionRequired,
            };
            inv.attempt = Some(Attempt::merge(inv.attempt, new));
        }
        if let Some(url) = &p.hosted_invoice_url {
            let version = Version::of(meta, 0);
            offer(&mut inv.hosted_invoice_url, &version, url.clone());
        }
        let changed = before.as_ref() != self.invoices.get(&p.invoice);
        self.prune_invoices();
        if changed {
            Offer::Taken
        } else {
            Offer::Older
        }
    }

    /// Forgets invoices created before the newest paid one: a function of the set of events,
    /// so every delivery order prunes the same ones.
    fn prune_invoices(&mut self) {
        if let Some(paid) = self.paid_until() {
            self.invoices.retain(|_, i| !i.dated || i.created >= paid);
        }
    }
}

/// Everything the model knows about one provider customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerBilling {
    pub provider: Provider,
    pub customer: CustomerId,
    /// One register per way of learning the user; the strongest source present wins.
    #[serde(default)]
    pub links: BTreeMap<LinkSource, Register<UserId>>,
    /// The customer record's address (`customer.*`'s `email`, Checkout's): the newest event
    /// that says anything about it wins (`None` inside: a customer object without an address).
    /// Read only by the email consumer ([`Self::email`]); never in a view, an audit entry or a
    /// feed message (`Debug` is redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Register<Option<EmailAddress>>>,
    #[serde(default)]
    pub subscriptions: BTreeMap<SubscriptionId, SubscriptionRecord>,
    /// Long-ended subscriptions as written before [`Self::tombstones`]: the version of their
    /// deletion. Read as tombstones and moved into them by the next event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ended: BTreeMap<SubscriptionId, Version>,
    /// Long-ended subscriptions, reduced to the second of their deletion: later events about
    /// them are stale. Only those deleted within [`TOMBSTONE_HORIZON`] of the newest deletion
    /// are kept (see [`ENDED_KEPT_WHOLE`] for the newest, kept whole).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tombstones: BTreeMap<SubscriptionId, i64>,
    /// Events dated before this second about a subscription the aggregate does not hold are
    /// stale: the newest deletion less [`TOMBSTONE_HORIZON`] (the tombstones before it dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<i64>,
    /// The summaries of the customer's active entitlements of the newest second seen; the
    /// latest of them is the customer's features (Stripe sends the whole list each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlements: Option<Snapshots<EntitlementSet>>,
    /// `customer.deleted`: terminal. Every subscription of the customer has ended, whatever
    /// order its own deletion arrives in, and the customer has no features left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Register<()>>,
    /// One-time purchases by Checkout Session id, all kept (see [`Purchase`]; about 250 bytes
    /// each, so a customer holds well over a thousand within DynamoDB's 400 KB item).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purchases: BTreeMap<String, Purchase>,
    /// What the user item needs of every purchase (totals, the newest), moved by each event
    /// by the change of the purchases it touched (see [`PurchaseBook`]).
    #[serde(default, skip_serializing_if = "PurchaseBook::is_empty")]
    pub bought: PurchaseBook,
    /// Refunds by charge id, as written before refunds joined the charge copies (see
    /// [`RefundRecord`]): read as they are, moved into the copies by the next event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refunds: BTreeMap<String, RefundRecord>,
    /// Subscription schedules by id: the snapshots of the newest second of each (the latest
    /// is its state, as for a subscription). One that ended before [`Self::horizon`] is dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedules: BTreeMap<String, Snapshots<ScheduleSnapshot>>,
    /// Periods the operator granted (an operator account only), by the grant's event id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, SystemGrant>,
    /// The customer's refunded or disputed charges that no purchase it holds claims: copies of
    /// their own items (`domain::charge`), carried over by whichever of the charge's events
    /// arrives once the charge is bound to this customer. Charges with nothing to show are not
    /// copied; a purchase's own are kept with it ([`Purchase::paid_by`]); at most
    /// [`UNCLAIMED_CHARGES_KEPT`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub charges: BTreeMap<String, Charge>,
}

/// How much of one charge was refunded: a join (maximum, or), so any order ends the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub payment_intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    pub refunded: bool,
}

impl RefundRecord {
    /// Fully refunded: Stripe says so, or the refunds reach the charge's amount.
    pub fn full(&self) -> bool {
        self.refunded || (self.amount > 0 && self.amount_refunded >= self.amount)
    }
}

/// What applying one event did to the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// At least one part of the state moved.
    Applied,
    /// Every part it addresses already holds a newer event.
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

/// Folds offers into one effect: any move is `Applied`; otherwise any older is `Stale`.
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
            email: None,
            subscriptions: BTreeMap::new(),
            ended: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            horizon: None,
            entitlements: None,
            deleted: None,
            purchases: BTreeMap::new(),
            bought: PurchaseBook::default(),
            refunds: BTreeMap::new(),
            schedules: BTreeMap::new(),
            grants: BTreeMap::new(),
            charges: BTreeMap::new(),
        }
    }

    /// Takes the joined state of one of this customer's charges from the charge's item. The
    /// item only grows and every copy is taken from it, so the newest copy holds all the
    /// others; a charge of another customer, or with nothing to show, is not kept.
    pub fn absorb_charge(&mut self, charge: &Charge) -> Offer {
        self.booked(|s| s.absorb_charge_unbooked(charge))
    }

    /// Puts back the copy of a charge as its item was read, before the event: what this
    /// aggregate last absorbed of it (every change of a bound charge's item is absorbed in
    /// the same commit), so the book already counts it. The copy may have been dropped from
    /// the aggregate since (see [`UNCLAIMED_CHARGES_KEPT`]).
    pub fn restore_charge(&mut self, charge: &Charge) {
        let _ = self.absorb_charge_unbooked(charge);
    }

    fn absorb_charge_unbooked(&mut self, charge: &Charge) -> Offer {
        if charge.customer.as_ref() != Some(&self.customer) || !charge.has_news() {
            return Offer::Older;
        }
        if self.charge_copy(&charge.id) == Some(charge) {
            return Offer::Same;
        }
        self.charges.insert(charge.id.clone(), charge.clone());
        self.claim_charges();
        Offer::Taken
    }

    /// This customer's copy of a charge: with the purchase it paid, or unclaimed.
    fn charge_copy(&self, id: &str) -> Option<&Charge> {
        self.charges
            .get(id)
            .or_else(|| self.purchases.values().find_map(|p| p.paid_by.get(id)))
    }

    /// Moves each unclaimed charge copy whose purchase the aggregate holds into that purchase
    /// (so it lives in the purchase's item), replacing an older copy there; then keeps only
    /// the [`UNCLAIMED_CHARGES_KEPT`] unclaimed copies of greatest id.
    fn claim_charges(&mut self) {
        let claimed: Vec<(String, String)> = self
            .charges
            .values()
            .filter_map(|c| {
                let p = self.purchases.values().find(|p| pays(c, p))?;
                Some((c.id.clone(), p.session.clone()))
            })
            .collect();
        for (id, session) in claimed {
            if let (Some(copy), Some(p)) =
                (self.charges.remove(&id), self.purchases.get_mut(&session))
            {
                p.paid_by.insert(id, copy);
            }
        }
        while self.charges.len() > UNCLAIMED_CHARGES_KEPT {
            self.charges.pop_first();
        }
    }

    /// The charge that paid `purchase`, as far as this customer knows it (refunded or
    /// disputed charges only): by the payment intent, or for a one-off invoice by the invoice
    /// the charge names; the smallest id should several.
    pub fn charge_of<'a>(&'a self, purchase: &'a Purchase) -> Option<&'a Charge> {
        purchase
            .paid_by
            .values()
            .chain(self.charges.values())
            .filter(|c| pays(c, purchase))
            .min_by(|a, b| a.id.cmp(&b.id))
    }

    /// Every refunded or disputed charge copy of this customer: unclaimed ones, then those of
    /// the purchases it holds.
    pub fn all_charges(&self) -> impl Iterator<Item = &Charge> {
        self.charges
            .values()
            .chain(self.purchases.values().flat_map(|p| p.paid_by.values()))
    }

    /// The refund state of the charge that paid `purchase`: linked by the payment intent, or
    /// for a one-off invoice by the invoice the charge names.
    pub fn refund_of(&self, purchase: &Purchase) -> Option<&RefundRecord> {
        let pi = purchase.payment_intent.as_ref();
        let invoice = (purchase.kind == PurchaseKind::Invoice).then_some(&purchase.session);
        self.refunds
            .values()
            .filter(|r| {
                (pi.is_some() && r.payment_intent.as_ref() == pi)
                    || (invoice.is_some() && r.invoice.as_ref() == invoice)
            })
            .max_by_key(|r| (r.full(), r.amount_refunded))
    }

    /// The purchase a paid invoice of no subscription records (`None` for any other).
    fn invoice_purchase(invoice: &InvoiceEvent) -> Option<Purchase> {
        let s = &invoice.snapshot;
        let paid = invoice.payment().map(|p| p.change) == Some(InvoiceChange::Paid)
            || s.status.as_deref() == Some("paid");
        if s.subscription.is_some() || !paid {
            return None;
        }
        Some(Purchase {
            session: s.id.to_string(),
            kind: PurchaseKind::Invoice,
            payment_intent: None,
            product: s
                .lines
                .iter()
                .find_map(|l| l.product_id.clone())
                .map(ProductId::new),
            amount_total: s.amount_paid.or(s.total),
            currency: s.currency.clone(),
            paid: true,
            gift: None,
            created: s.created,
            paid_by: BTreeMap::new(),
        })
    }

    /// Joins one session's event into its purchase: `paid` once any event says so; the other
    /// facts are the session's own and the same in each of its events.
    fn apply_purchase(&mut self, p: &Purchase) -> Offer {
        let Some(current) = self.purchases.get_mut(&p.session) else {
            self.purchases.insert(p.session.clone(), p.clone());
            return Offer::Taken;
        };
        let before = current.clone();
        current.paid |= p.paid;
        current.payment_intent = current.payment_intent.take().or(p.payment_intent.clone());
        current.product = current.product.take().or(p.product.clone());
        current.amount_total = current.amount_total.or(p.amount_total);
        current.currency = current.currency.take().or(p.currency.clone());
        current.gift = current.gift.take().or(p.gift.clone());
        // The object's own date, the same in each event; the earliest, should two differ.
        current.created = match (current.created, p.created) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if *current == before {
            Offer::Same
        } else {
            Offer::Taken
        }
    }

    /// Joins one `charge.refunded` into this customer's copy of its charge (refunds only
    /// grow); the charge's item, absorbed in the same commit, holds it too.
    fn apply_refund(&mut self, r: &ChargeRefund) -> Offer {
        let mut copy = self
            .charge_copy(&r.charge)
            .cloned()
            .unwrap_or_else(|| Charge::new(self.provider, r.charge.clone()));
        copy.apply_refunded(r);
        self.absorb_charge_unbooked(&copy)
    }

    /// Moves a refund record written before refunds joined the charge copies into its copy.
    fn move_refund(&mut self, charge: String, r: RefundRecord) {
        let refund = ChargeRefund {
            customer: self.customer.clone(),
            charge,
            payment_intent: r.payment_intent,
            invoice: r.invoice,
            amount: r.amount,
            amount_refunded: r.amount_refunded,
            refunded: r.refunded,
        };
        let _ = self.apply_refund(&refund);
    }

    /// The periods behind one entry of a user's access: a subscription's (settled invoices,
    /// trial), a gift's, or an operator's grant.
    pub fn periods_of(&self, id: &SubscriptionId) -> Vec<PeriodView> {
        if let Some(record) = self.subscriptions.get(id) {
            return record.periods();
        }
        let gift = id
            .as_str()
            .strip_prefix("gift_")
            .and_then(|session| self.purchases.get(session))
            .and_then(|p| Some((p, p.gift.as_ref()?)));
        if let Some((purchase, gift)) = gift {
            return vec![PeriodView {
                start: gift.start,
                end: gift.end,
                kind: periods::PeriodKind::Gift,
                invoice: None,
                note: Some(format!("bought in {}", purchase.session)),
            }];
        }
        self.grants
            .get(id.as_str())
            .map(|g| PeriodView {
                start: g.start,
                end: g.end,
                kind: periods::PeriodKind::System,
                invoice: None,
                note: Some(format!("{} (granted by {})", g.reason, g.by)),
            })
            .into_iter()
            .collect()
    }

    /// The phases its schedules have still to come, as periods, by schedule id (schedules
    /// with none left are not listed).
    pub fn scheduled(&self) -> BTreeMap<&str, (&ScheduleSnapshot, Vec<PeriodView>)> {
        self.schedules
            .iter()
            .filter_map(|(id, s)| {
                let latest = &s.latest()?.candidate.snapshot;
                let phases: Vec<PeriodView> = latest
                    .scheduled()
                    .into_iter()
                    .map(|p| PeriodView {
                        start: p.start,
                        end: p.end,
                        kind: periods::PeriodKind::Scheduled,
                        invoice: None,
                        note: p.price_id.as_ref().map(|price| format!("price {price}")),
                    })
                    .collect();
                (!phases.is_empty()).then_some((id.as_str(), (latest, phases)))
            })
            .collect()
    }

    /// The customer's active features (lookup keys), from the latest entitlement summary.
    pub fn features(&self) -> Vec<String> {
        if self.deleted.is_some() {
            return Vec::new();
        }
        self.entitlements
            .as_ref()
            .and_then(Snapshots::latest)
            .map(|l| l.candidate.snapshot.lookup_keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The user this customer belongs to: the claim of the strongest source present.
    pub fn user(&self) -> Option<&UserId> {
        self.links.values().next_back().map(|r| &r.value)
    }

    /// The customer record's address, if the newest event about it gave one.
    pub fn email(&self) -> Option<&EmailAddress> {
        self.email.as_ref()?.value.as_ref()
    }

    /// Runs a change of the state and moves [`Self::bought`] by what it did to each purchase
    /// present. An aggregate written before the book existed gets it from its whole list first.
    fn booked<R>(&mut self, change: impl FnOnce(&mut Self) -> R) -> R {
        if self.bought.is_empty() && !self.purchases.is_empty() {
            self.bought = PurchaseBook::of(&purchase_access(self));
        }
        let before: BTreeMap<String, PurchaseAccess> = purchase_access(self)
            .into_iter()
            .map(|p| (p.purchase.clone(), p))
            .collect();
        let out = change(self);
        for after in purchase_access(self) {
            let was = before.get(&after.purchase);
            if was != Some(&after) {
                self.bought.shift(was, &after);
            }
        }
        out
    }

    /// Applies one event. Pure: no clock, no I/O; the result depends only on the set of events.
    pub fn apply(&mut self, meta: &EventMeta, event: &BillingEvent) -> Effect {
        self.booked(|s| s.apply_unbooked(meta, event))
    }

    fn apply_unbooked(&mut self, meta: &EventMeta, event: &BillingEvent) -> Effect {
        let mut tally = Tally::default();
        match event {
            BillingEvent::CheckoutCompleted {
                user,
                purchase,
                email,
                ..
            } => {
                if let Some(email) = email {
                    tally.add(self.offer_email(meta, Some(email.clone())));
                }
                if let Some(p) = purchase {
                    tally.add(self.apply_purchase(p));
                }
                // Otherwise only the link: the subscription's own events bring its state
                // (creating an empty record here would make the aggregate depend on order).
                if let Some(user) = user {
                    tally.add(self.claim(LinkSource::CheckoutClientReference, meta, user));
                }
            }
            BillingEvent::ChargeRefunded(r) => tally.add(self.apply_refund(r)),
            // The charge's own item joins these; its state reaches this aggregate through
            // `absorb_charge`, in the same commit.
            BillingEvent::ChargeBound(_) | BillingEvent::Dispute(_) | BillingEvent::Refund(_) => {
                return Effect::Ignored
            }
            BillingEvent::CustomerUpdated {
                user_claim, email, ..
            } => {
                if user_claim.is_none() && email.is_none() {
                    return Effect::Ignored;
                }
                if let Some(user) = user_claim {
                    tally.add(self.claim(LinkSource::CustomerMetadata, meta, user));
                }
                if let Some(change) = email {
                    tally.add(self.offer_email(meta, change.address().cloned()));
                }
            }
            BillingEvent::Subscription {
                change,
                snapshot,
                evidence,
            } => {
                if let Some(user) = &snapshot.user_claim {
                    tally.add(self.claim(LinkSource::SubscriptionMetadata, meta, user));
                }
                let version = Version::of(meta, subscription_rank(*change));
                let candidate = Candidate {
                    version,
                    snapshot: snapshot.clone(),
                    evidence: evidence.clone(),
                };
                tally.add(self.offer_snapshot(candidate, *change == SubscriptionChange::Deleted));
            }
            BillingEvent::InvoicePayment(payment) => match self.apply_standing(meta, payment) {
                Some(offered) => tally.add(offered),
                None => return Effect::Ignored,
            },
            BillingEvent::Invoice(invoice) => self.apply_invoice_event(meta, invoice, &mut tally),
            BillingEvent::Entitlements {
                entitlements,
                evidence,
                ..
            } => tally.add(self.apply_entitlements(meta, entitlements, evidence)),
            BillingEvent::Grant(grant) => {
                tally.add(self.claim(LinkSource::Operator, meta, &grant.user));
                tally.add(self.apply_grant(meta, grant));
            }
            BillingEvent::Schedule {
                rank,
                snapshot,
                evidence,
            } => tally.add(self.apply_schedule(meta, *rank, snapshot, evidence)),
            BillingEvent::CustomerDeleted { .. } => {
                let version = Version::of(meta, 3);
                tally.add(offer(&mut self.deleted, &version, ()));
            }
            // Names no customer: it changes the invoice's own record only.
            BillingEvent::InvoicePaymentPaid(_)
            | BillingEvent::Catalogue(_)
            | BillingEvent::Unsupported => return Effect::Ignored,
        }
        self.normalise();
        tally.effect()
    }

    /// Only payment events move a subscription's standing, and a paid one-off invoice is a
    /// purchase; the invoice's own record (`domain::invoice`) keeps everything else, beside
    /// this aggregate.
    fn apply_invoice_event(&mut self, meta: &EventMeta, invoice: &InvoiceEvent, tally: &mut Tally) {
        if let Some(p) = Self::invoice_purchase(invoice) {
            tally.add(self.apply_purchase(&p));
        }
        if let Some(offered) = invoice
            .payment()
            .and_then(|p| self.apply_standing(meta, &p))
        {
            tally.add(offered);
        }
    }

    /// Every summary is the whole list: the latest one (by second, then evidence) is the
    /// state, exactly as for a subscription's snapshots.
    fn apply_entitlements(
        &mut self,
        meta: &EventMeta,
        entitlements: &EntitlementSet,
        evidence: &OrderEvidence,
    ) -> Offer {
        let candidate = Candidate {
            version: Version::of(meta, 1),
            snapshot: entitlements.clone(),
            evidence: evidence.clone(),
        };
        self.entitlements
            .get_or_insert_with(Snapshots::default)
            .offer(candidate)
    }

    /// A grant's facts never change: its first record is its only one.
    fn apply_grant(&mut self, meta: &EventMeta, grant: &SystemGrant) -> Offer {
        match self.grants.entry(meta.id.to_string()) {
            std::collections::btree_map::Entry::Occupied(_) => Offer::Same,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(grant.clone());
                Offer::Taken
            }
        }
    }

    /// Every schedule event carries the whole schedule: the latest is its state.
    fn apply_schedule(
        &mut self,
        meta: &EventMeta,
        rank: u8,
        snapshot: &ScheduleSnapshot,
        evidence: &OrderEvidence,
    ) -> Offer {
        let candidate = Candidate {
            version: Version::of(meta, rank),
            snapshot: snapshot.clone(),
            evidence: evidence.clone(),
        };
        let id = snapshot.id.clone();
        if !self.schedules.contains_key(&id) && self.horizon.is_some_and(|h| meta.created < h) {
            // Dropped once ended before the horizon (see `normalise`), or never held.
            return Offer::Older;
        }
        self.schedules.entry(id).or_default().offer(candidate)
    }

    /// What an invoice payment event says about its subscription's standing; `None` for a
    /// one-off invoice (no subscription: access does not depend on it).
    fn apply_standing(&mut self, meta: &EventMeta, payment: &InvoicePayment) -> Option<Offer> {
        let sub = payment.subscription.as_ref()?;
        if self.is_gone(sub, meta.created) {
            return Some(Offer::Older);
        }
        let record = self.subscriptions.entry(sub.clone()).or_default();
        let offered = record.apply_invoice(meta, payment);
        if record == &SubscriptionRecord::default() {
            // Nothing kept (an invoice older than the newest paid one).
            self.subscriptions.remove(sub);
        }
        Some(offered)
    }

    /// Offers a snapshot (and, for a deletion, the terminal deletion) of one subscription.
    fn offer_snapshot(&mut self, candidate: Candidate, deleted: bool) -> Offer {
        let id = candidate.snapshot.id.clone();
        if self.is_gone(&id, candidate.version.created) {
            return Offer::Older;
        }
        let version = candidate.version.clone();
        let reason = candidate.snapshot.cancellation_reason.clone();
        let record = self.subscriptions.entry(id).or_default();
        let mut offered = record
            .snapshots
            .get_or_insert_with(Snapshots::default)
            .offer(candidate);
        if deleted {
            let moved = offer(&mut record.deletion, &version, Deletion { reason });
            if moved == Offer::Taken {
                offered = Offer::Taken;
            }
        }
        offered
    }

    /// Applies a snapshot read from the provider's API to settle a tie at second `created`:
    /// it ranks above every event of that second. Its id names no event, so whichever event
    /// met the tie first, the stored aggregate is the same; once settled, a second is not
    /// fetched again.
    pub fn apply_fetched(&mut self, created: i64, snapshot: SubscriptionSnapshot) -> Effect {
        let candidate = Candidate {
            version: Version::new(created, FETCHED_RANK, "api"),
            snapshot,
            evidence: OrderEvidence::default(),
        };
        let mut tally = Tally::default();
        tally.add(self.offer_snapshot(candidate, false));
        self.normalise();
        tally.effect()
    }

    /// The second whose snapshots of `subscription` the events could not order, if any.
    pub fn unresolved_tie(&self, subscription: &SubscriptionId) -> Option<i64> {
        let record = self.subscriptions.get(subscription)?;
        if record.deletion.is_some() {
            return None;
        }
        let latest = record.latest()?;
        (!latest.resolved).then_some(latest.candidate.version.created)
    }

    /// Whether an event dated `created` about `sub` comes too late: the subscription ended
    /// long ago (a tombstone), or the aggregate does not hold it and the event is older than
    /// the horizon (its tombstone, if it had one, was dropped).
    fn is_gone(&self, sub: &SubscriptionId, created: i64) -> bool {
        if self.tombstones.contains_key(sub) || self.ended.contains_key(sub) {
            return true;
        }
        !self.subscriptions.contains_key(sub) && self.horizon.is_some_and(|h| created < h)
    }

    /// Keeps the aggregate bounded and canonical, whatever the order events came in: ended
    /// subscriptions need no ordering evidence, only the newest ones are kept whole, and
    /// tombstones older than the horizon are dropped.
    fn normalise(&mut self) {
        self.normalise_records();
        for (charge, r) in std::mem::take(&mut self.refunds) {
            self.move_refund(charge, r);
        }
        self.claim_charges();
        for (id, version) in std::mem::take(&mut self.ended) {
            self.tombstones.insert(id, version.created);
        }
        let newest = self
            .subscriptions
            .values()
            .filter_map(|r| Some(r.deletion.as_ref()?.version.created))
            .chain(self.tombstones.values().copied())
            .max();
        // Only moves forward (its deletions are never forgotten before it passes them).
        let Some(horizon) = newest.map(|n| n - TOMBSTONE_HORIZON).max(self.horizon) else {
            return;
        };
        self.horizon = Some(horizon);
        self.tombstones.retain(|_, deleted| *deleted >= horizon);
        // A schedule that ended (completed, released, canceled) gets no later event: once its
        // newest second is before the horizon, the horizon answers for it.
        self.schedules.retain(|_, s| {
            let ended = s.latest().is_some_and(|l| {
                matches!(
                    l.candidate.snapshot.status.as_str(),
                    "completed" | "released" | "canceled"
                )
            });
            !ended || s.second().is_none_or(|second| second >= horizon)
        });
    }

    fn normalise_records(&mut self) {
        for record in self.subscriptions.values_mut() {
            let Some(s) = record.snapshots.as_mut() else {
                continue;
            };
            if record.deletion.is_some() {
                for c in &mut s.candidates {
                    c.evidence = OrderEvidence::default();
                }
            }
            s.drop_needless_fetch();
        }
        let mut deleted: Vec<(Version, SubscriptionId)> = self
            .subscriptions
            .iter()
            .filter_map(|(id, r)| Some((r.deletion.as_ref()?.version.clone(), id.clone())))
            .collect();
        if deleted.len() <= ENDED_KEPT_WHOLE {
            return;
        }
        deleted.sort();
        let excess = deleted.len() - ENDED_KEPT_WHOLE;
        for (version, id) in deleted.into_iter().take(excess) {
            self.subscriptions.remove(&id);
            self.tombstones.insert(id, version.created);
        }
    }

    /// The record's address register, versioned like the user links.
    fn offer_email(&mut self, meta: &EventMeta, address: Option<EmailAddress>) -> Offer {
        offer(&mut self.email, &Version::of(meta, 0), address)
    }

    fn claim(&mut self, source: LinkSource, meta: &EventMeta, user: &UserId) -> Offer {
        let version = Version::of(meta, 0);
        let mut slot = self.links.remove(&source);
        let result = offer(&mut slot, &version, user.clone());
        if let Some(register) = slot {
            self.links.insert(source, register);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::EventId;

    fn meta(id: &str, created: i64) -> EventMeta {
        EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new(id),
            event_type: "customer.subscription.updated".into(),
            created,
            millis: 0,
            livemode: false,
            api_version: None,
        }
    }

    /// Found by `lifecycles_match_the_true_order_with_the_stripe_api`: eight events of one
    /// second and a snapshot read from the API while they could not order themselves. The
    /// fetched snapshot must not take one of the eight places, or which event is forgotten
    /// depends on when the fetch happened.
    #[test]
    fn a_fetched_snapshot_takes_no_place_from_the_events_of_its_second() {
        let candidate = |rank: u8, id: &str| Candidate {
            version: Version {
                created: 100,
                millis: 0,
                rank,
                event_id: id.into(),
            },
            snapshot: id.to_owned(),
            evidence: OrderEvidence::default(),
        };
        let events: Vec<Candidate<String>> = (1..=MAX_CANDIDATES)
            .map(|i| candidate(if i == 1 { 1 } else { 2 }, &format!("evt_{i}")))
            .collect();
        let ids = |s: &Snapshots<String>| -> Vec<String> {
            s.candidates
                .iter()
                .filter(|c| c.version.rank < FETCHED_RANK)
                .map(|c| c.version.event_id.clone())
                .collect()
        };
        let mut without_fetch = Snapshots::default();
        for c in &events {
            without_fetch.offer(c.clone());
        }
        let mut fetched_midway = Snapshots::default();
        for (i, c) in events.iter().enumerate() {
            if i == 3 {
                fetched_midway.offer(candidate(FETCHED_RANK, "fetched"));
            }
            fetched_midway.offer(c.clone());
        }
        assert_eq!(ids(&without_fetch).len(), MAX_CANDIDATES);
        assert_eq!(ids(&fetched_midway), ids(&without_fetch));
    }

    #[test]
    fn the_record_address_is_a_register_the_newest_customer_or_checkout_event_wins() {
        use super::super::events::AddressChange;
        let customer = |email: Option<AddressChange>| BillingEvent::CustomerUpdated {
            customer: CustomerId::new("cus"),
            user_claim: None,
            email,
        };
        let set = |a: &str| Some(AddressChange::Set(EmailAddress::new(a)));
        let checkout = BillingEvent::CheckoutCompleted {
            customer: CustomerId::new("cus"),
            subscription: None,
            user: None,
            purchase: None,
            email: Some(EmailAddress::new("checkout@example.com")),
        };
        let events = [
            (meta("evt_1", 10), customer(set("old@example.com"))),
            (meta("evt_2", 20), checkout),
            (meta("evt_3", 30), customer(Some(AddressChange::Removed))),
            (meta("evt_4", 40), customer(set("new@example.com"))),
        ];
        // Every order of the first n events ends at the newest of them.
        let want = [
            Some("old@example.com"),
            Some("checkout@example.com"),
            None,
            Some("new@example.com"),
        ];
        for n in 1..=events.len() {
            for reversed in [false, true] {
                let mut state = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
                let mut order: Vec<_> = events[..n].iter().collect();
                if reversed {
                    order.reverse();
                }
                for (m, e) in order {
                    state.apply(m, e);
                }
                assert_eq!(state.email().map(EmailAddress::as_str), want[n - 1], "{n}");
            }
        }
        // An address alone applies; its redelivery is stale; no field at all is ignored.
        let mut state = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        let (m, e) = &events[0];
        assert_eq!(state.apply(m, e), Effect::Applied);
        assert_eq!(state.apply(m, e), Effect::Stale);
        assert_eq!(
            state.apply(&meta("evt_9", 50), &customer(None)),
            Effect::Ignored
        );
    }

    fn snapshot(sub: &str, status: &str) -> SubscriptionSnapshot {
        SubscriptionSnapshot {
            id: SubscriptionId::new(sub),
            customer: CustomerId::new("cus"),
            status: status.into(),
            price_id: None,
            product_id: None,
            tier_hint: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            cancel_at: None,
            trial_end: None,
            trial_start: None,
            cancellation_reason: None,
            user_claim: None,
        }
    }

    fn evidence(values: &[(&str, &str)], previous: &[(&str, &str)]) -> OrderEvidence {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        OrderEvidence {
            values: map(values),
            previous: map(previous),
        }
    }

    fn updated(status: &str, ev: OrderEvidence) -> BillingEvent {
        BillingEvent::Subscription {
            change: SubscriptionChange::Updated,
            snapshot: snapshot("sub", status),
            evidence: ev,
        }
    }

    /// The case: a metadata change while incomplete, then the activation, in one
    /// second, the earlier event with the greater id. Either order ends active.
    #[test]
    fn previous_attributes_order_same_second_updates() {
        let note = updated(
            "incomplete",
            evidence(
                &[("status", "s_incomplete"), ("metadata.note", "n_new")],
                &[("metadata.note", "n_old")],
            ),
        );
        let activation = updated(
            "active",
            evidence(
                &[("status", "s_active"), ("metadata.note", "n_new")],
                &[("status", "s_incomplete")],
            ),
        );
        let (m_note, m_act) = (meta("evt_zz_note", 10), meta("evt_aa_activate", 10));
        for order in [[0, 1], [1, 0]] {
            let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
            for i in order {
                let (m, e) = if i == 0 {
                    (&m_note, &note)
                } else {
                    (&m_act, &activation)
                };
                assert_eq!(c.apply(m, e), Effect::Applied);
            }
            let latest = c.subscriptions[&SubscriptionId::new("sub")]
                .latest()
                .expect("a snapshot");
            assert_eq!(latest.candidate.snapshot.status, "active", "{order:?}");
            assert!(latest.resolved);
            assert_eq!(c.unresolved_tie(&SubscriptionId::new("sub")), None);
        }
    }

    /// Found by the property test: in one second the status changes, then `metadata.note` goes
    /// from absent to b and back, then the items change, then the note goes to a. The put-back makes
    /// the note updates follow each other both ways, yet only one order of all five fits the
    /// evidence end to end, and it ends at the last one.
    #[test]
    fn a_value_put_back_within_the_second_does_not_hide_the_last_update() {
        let ev = |values: &[(&str, &str)], previous: &[(&str, &str)]| evidence(values, previous);
        let steps = [
            // (id, status, evidence): true order A, B, C, D, E; ids disagree with it.
            (
                "evt_a",
                "past_due",
                ev(
                    &[("status", "pd"), ("items", "old")],
                    &[("status", "active")],
                ),
            ),
            (
                "evt_z",
                "past_due",
                ev(
                    &[("status", "pd"), ("items", "old"), ("metadata.note", "b")],
                    &[("metadata.note", "null")],
                ),
            ),
            (
                "evt_c",
                "past_due",
                ev(
                    &[("status", "pd"), ("items", "old")],
                    &[("metadata.note", "b")],
                ),
            ),
            (
                "evt_d",
                "past_due",
                ev(&[("status", "pd"), ("items", "new")], &[("items", "old")]),
            ),
            (
                "evt_e",
                "active",
                ev(
                    &[("status", "pd"), ("items", "new"), ("metadata.note", "a")],
                    &[("metadata.note", "null")],
                ),
            ),
        ];
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        for (id, status, e) in steps.iter().rev() {
            c.apply(&meta(id, 10), &updated(status, e.clone()));
        }
        let latest = c.subscriptions[&SubscriptionId::new("sub")]
            .latest()
            .expect("a snapshot");
        assert_eq!(latest.candidate.version.event_id, "evt_e");
        assert!(latest.resolved);
    }

    #[test]
    fn a_revert_in_one_second_is_unresolved_until_fetched() {
        let a = updated("active", evidence(&[("status", "x")], &[("status", "y")]));
        let b = updated("past_due", evidence(&[("status", "y")], &[("status", "x")]));
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        c.apply(&meta("evt_1", 10), &a);
        c.apply(&meta("evt_2", 10), &b);
        assert_eq!(c.unresolved_tie(&SubscriptionId::new("sub")), Some(10));
        assert_eq!(
            c.apply_fetched(10, snapshot("sub", "active")),
            Effect::Applied
        );
        assert_eq!(c.unresolved_tie(&SubscriptionId::new("sub")), None);
        let latest = c.subscriptions[&SubscriptionId::new("sub")]
            .latest()
            .expect("a snapshot");
        assert_eq!(latest.candidate.snapshot.status, "active");
    }

    fn summary(keys: &[&str], ev: OrderEvidence) -> BillingEvent {
        BillingEvent::Entitlements {
            customer: CustomerId::new("cus"),
            entitlements: EntitlementSet {
                lookup_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                complete: true,
            },
            evidence: ev,
        }
    }

    /// Summaries of three changes: one a second earlier, then two in one second ordered only by
    /// their `previous_attributes` (the later event has the smaller id). Every arrival order
    /// ends with the last list, the earlier ones stale or joined; a redelivery changes nothing.
    #[test]
    fn the_latest_entitlement_summary_wins_in_every_order() {
        let events = [
            (
                meta("evt_m", 9),
                summary(&["a"], evidence(&[("l", "A")], &[])),
            ),
            (
                meta("evt_z", 10),
                summary(&["a", "b"], evidence(&[("l", "AB")], &[("l", "A")])),
            ),
            (
                meta("evt_b", 10),
                summary(&["b"], evidence(&[("l", "B")], &[("l", "AB")])),
            ),
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let mut ends = Vec::new();
        for order in orders {
            let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
            for i in order {
                c.apply(&events[i].0, &events[i].1);
            }
            assert_eq!(c.features(), ["b"], "{order:?}");
            let again = c.clone();
            let first = &events[order[0]];
            assert_eq!(c.apply(&first.0, &first.1), Effect::Stale);
            assert_eq!(c, again, "a redelivery changes nothing");
            ends.push(c);
        }
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "one aggregate");
    }

    fn invoice(id: &str, change: InvoiceChange, created: i64, attempt: u32) -> BillingEvent {
        BillingEvent::InvoicePayment(InvoicePayment {
            invoice: InvoiceId::new(id),
            customer: CustomerId::new("cus"),
            subscription: Some(SubscriptionId::new("sub")),
            change,
            invoice_created: Some(created),
            attempt: Some(attempt),
            hosted_invoice_url: None,
            user_hint: None,
            period: None,
            amount_paid: None,
            billing_reason: None,
        })
    }

    fn standing(c: &CustomerBilling) -> Option<PaymentOutcome> {
        c.subscriptions
            .get(&SubscriptionId::new("sub"))
            .and_then(|r| r.payment().map(|(o, _)| o))
    }

    #[test]
    fn failed_and_action_required_of_one_attempt_need_the_customer() {
        use InvoiceChange::*;
        for order in [[Failed, ActionRequired], [ActionRequired, Failed]] {
            let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
            for (i, change) in order.into_iter().enumerate() {
                c.apply(
                    &meta(&format!("evt_{i}"), 20),
                    &invoice("in_1", change, 5, 1),
                );
            }
            assert_eq!(standing(&c), Some(PaymentOutcome::ActionRequired));
            c.apply(&meta("evt_retry", 30), &invoice("in_1", Failed, 5, 2));
            assert_eq!(
                standing(&c),
                Some(PaymentOutcome::Failed),
                "a later attempt"
            );
            c.apply(&meta("evt_void", 40), &invoice("in_1", Voided, 5, 2));
            assert_eq!(standing(&c), None, "voided: nothing owed");
        }
    }

    #[test]
    fn a_later_paid_invoice_ends_an_earlier_failure_and_prunes_it() {
        use InvoiceChange::*;
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        c.apply(&meta("evt_f", 20), &invoice("in_1", Failed, 5, 1));
        assert_eq!(standing(&c), Some(PaymentOutcome::Failed));
        c.apply(&meta("evt_p", 50), &invoice("in_2", Paid, 40, 1));
        assert_eq!(standing(&c), Some(PaymentOutcome::Paid));
        let record = &c.subscriptions[&SubscriptionId::new("sub")];
        assert_eq!(record.invoices.len(), 1, "the older invoice is forgotten");
        // A late event of the forgotten invoice is stale and changes nothing.
        let before = c.clone();
        assert_eq!(
            c.apply(&meta("evt_late", 60), &invoice("in_1", Failed, 5, 2)),
            Effect::Stale
        );
        assert_eq!(c, before);
    }

    fn bought(i: usize, paid: bool) -> BillingEvent {
        BillingEvent::CheckoutCompleted {
            customer: CustomerId::new("cus"),
            subscription: None,
            user: None,
            purchase: Some(Purchase {
                session: format!("cs_{i:02}"),
                kind: PurchaseKind::Checkout,
                payment_intent: Some(format!("pi_{i:02}")),
                product: Some(ProductId::new(format!("prod_{}", i % 3))),
                amount_total: Some(500),
                currency: Some("eur".into()),
                paid,
                gift: None,
                created: Some(100 + i as i64),
                paid_by: BTreeMap::new(),
            }),
            email: None,
        }
    }

    fn refunded(i: usize, amount_refunded: i64) -> BillingEvent {
        BillingEvent::ChargeRefunded(ChargeRefund {
            customer: CustomerId::new("cus"),
            charge: format!("ch_{i:02}"),
            payment_intent: Some(format!("pi_{i:02}")),
            invoice: None,
            amount: 500,
            amount_refunded,
            refunded: amount_refunded == 500,
        })
    }

    /// The book moves by each event's change of the purchases it touches, yet ends equal to
    /// the book of the whole list in every order: sessions paid late, refunds before their
    /// purchase, a partial refund then a full one, redeliveries.
    #[test]
    fn the_purchase_book_is_the_whole_lists_in_every_order() {
        use crate::domain::access::purchase_access;
        let mut events: Vec<(EventMeta, BillingEvent)> = Vec::new();
        for i in 0..14 {
            events.push((
                meta(&format!("evt_u{i}"), 10 + i as i64),
                bought(i, i % 4 != 0),
            ));
            if i % 4 == 0 {
                events.push((meta(&format!("evt_p{i}"), 40 + i as i64), bought(i, true)));
            }
            if i % 3 == 0 {
                events.push((meta(&format!("evt_r{i}"), 60 + i as i64), refunded(i, 200)));
                events.push((meta(&format!("evt_f{i}"), 80 + i as i64), refunded(i, 500)));
            }
        }
        let mut ends = Vec::new();
        for seed in 0..40u64 {
            let mut order: Vec<usize> = (0..events.len()).collect();
            // A fixed shuffle per seed (an LCG): every run sees the same orders.
            let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for k in (1..order.len()).rev() {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                order.swap(k, (x >> 33) as usize % (k + 1));
            }
            let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
            for (n, &i) in order.iter().enumerate() {
                c.apply(&events[i].0, &events[i].1);
                if n % 7 == 0 {
                    // Redelivered: changes nothing.
                    c.apply(&events[i].0, &events[i].1);
                }
                assert_eq!(
                    c.bought,
                    PurchaseBook::of(&purchase_access(&c)),
                    "seed {seed}"
                );
            }
            ends.push(c);
        }
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "one aggregate");
        let book = &ends[0].bought;
        // 14 purchases, all paid in the end; 5 fully refunded (0, 3, 6, 9, 12).
        assert_eq!((book.count, book.granting), (14, 9));
        assert_eq!(book.newest.len(), crate::domain::access::PURCHASES_SHOWN);
        assert_eq!(book.newest[0].purchase, "cs_13");
    }

    /// An aggregate written before the book (the whole list, no `bought`) is read as it was
    /// and gets its book from the list on its next event.
    #[test]
    fn an_aggregate_without_a_book_is_booked_on_its_next_event() {
        let mut old = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        for i in 0..3 {
            old.apply(&meta(&format!("evt_{i}"), 10), &bought(i, true));
        }
        let mut json = serde_json::to_value(&old).expect("json");
        json.as_object_mut().expect("an object").remove("bought");
        let mut read: CustomerBilling = serde_json::from_value(json).expect("readable");
        assert!(read.bought.is_empty());
        read.apply(&meta("evt_r", 20), &refunded(1, 500));
        assert_eq!((read.bought.count, read.bought.granting), (3, 2));
    }

    #[test]
    fn long_ended_subscriptions_shrink_to_tombstones() {
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        for i in 0..500 {
            let sub = format!("sub_{i:03}");
            let created = BillingEvent::Subscription {
                change: SubscriptionChange::Created,
                snapshot: snapshot(&sub, "active"),
                evidence: OrderEvidence::default(),
            };
            let deleted = BillingEvent::Subscription {
                change: SubscriptionChange::Deleted,
                snapshot: snapshot(&sub, "canceled"),
                evidence: OrderEvidence::default(),
            };
            c.apply(&meta(&format!("evt_c{i}"), 1000 + 10 * i), &created);
            c.apply(&meta(&format!("evt_d{i}"), 1005 + 10 * i), &deleted);
        }
        assert_eq!(c.subscriptions.len(), ENDED_KEPT_WHOLE);
        assert_eq!(c.tombstones.len(), 500 - ENDED_KEPT_WHOLE);
        let size = serde_json::to_vec(&c).expect("json").len();
        assert!(
            size < 100_000,
            "aggregate of 500 subscriptions is {size} bytes"
        );
        // A late event about a long-ended subscription is stale.
        let late = BillingEvent::Subscription {
            change: SubscriptionChange::Updated,
            snapshot: snapshot("sub_000", "active"),
            evidence: OrderEvidence::default(),
        };
        assert_eq!(c.apply(&meta("evt_late", 99_999), &late), Effect::Stale);
    }

    /// 500 subscriptions over 1,000 days: only the deletions of the last 30 days before the
    /// newest stay as tombstones; a late event of an older one is stale all the same, and a
    /// subscription the aggregate holds is not affected by the horizon.
    #[test]
    fn tombstones_older_than_the_horizon_are_dropped_and_their_late_events_are_stale() {
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        let day = 86_400;
        let live = BillingEvent::Subscription {
            change: SubscriptionChange::Created,
            snapshot: snapshot("sub_live", "active"),
            evidence: OrderEvidence::default(),
        };
        c.apply(&meta("evt_live", 1_000), &live);
        for i in 0..500 {
            let sub = format!("sub_{i:03}");
            let at = 10_000 + 2 * day * i;
            for (change, status, kind) in [
                (SubscriptionChange::Created, "active", "c"),
                (SubscriptionChange::Deleted, "canceled", "d"),
            ] {
                let event = BillingEvent::Subscription {
                    change,
                    snapshot: snapshot(&sub, status),
                    evidence: OrderEvidence::default(),
                };
                let at = if kind == "d" { at + day } else { at };
                assert_eq!(
                    c.apply(&meta(&format!("evt_{kind}{i}"), at), &event),
                    Effect::Applied
                );
            }
        }
        let newest = 10_000 + 2 * day * 499 + day;
        assert_eq!(c.horizon, Some(newest - TOMBSTONE_HORIZON));
        assert!(c.tombstones.len() <= 16, "{}", c.tombstones.len());
        let size = serde_json::to_vec(&c).expect("json").len();
        assert!(
            size < 16_000,
            "aggregate of 500 subscriptions is {size} bytes"
        );
        for (sub, at) in [("sub_000", 20_000), ("sub_490", newest - 5 * day)] {
            let late = BillingEvent::Subscription {
                change: SubscriptionChange::Updated,
                snapshot: snapshot(sub, "active"),
                evidence: OrderEvidence::default(),
            };
            let before = c.clone();
            assert_eq!(
                c.apply(&meta("evt_late", at), &late),
                Effect::Stale,
                "{sub}"
            );
            assert_eq!(c, before);
        }
        // The live subscription, created before the horizon, still takes its events.
        let update = BillingEvent::Subscription {
            change: SubscriptionChange::Updated,
            snapshot: snapshot("sub_live", "past_due"),
            evidence: OrderEvidence::default(),
        };
        assert_eq!(
            c.apply(&meta("evt_pd", newest + day), &update),
            Effect::Applied
        );
    }

    fn disputed(i: usize, status: &str) -> Charge {
        let mut charge = Charge::new(Provider::STRIPE, format!("ch_{i:02}"));
        let bound = BillingEvent::ChargeRefunded(ChargeRefund {
            customer: CustomerId::new("cus"),
            charge: format!("ch_{i:02}"),
            payment_intent: Some(format!("pi_{i:02}")),
            invoice: None,
            amount: 500,
            amount_refunded: 100,
            refunded: false,
        });
        charge.apply(&meta("evt_bind", 50), &bound);
        let dispute = BillingEvent::Dispute(crate::domain::events::DisputeEvent {
            dispute: format!("dp_{i:02}"),
            charge: format!("ch_{i:02}"),
            payment_intent: Some(format!("pi_{i:02}")),
            change: crate::domain::events::DisputeChange::Created,
            status: status.into(),
            amount: Some(500),
            currency: Some("eur".into()),
            reason: None,
        });
        charge.apply(&meta("evt_dispute", 60), &dispute);
        charge
    }

    /// A refunded or disputed charge's copy lives with the purchase it paid, whichever came
    /// first; the aggregate keeps unclaimed copies only (at most [`UNCLAIMED_CHARGES_KEPT`]).
    #[test]
    fn charge_copies_ride_with_their_purchase_in_either_order() {
        let mut ends = Vec::new();
        for purchase_first in [true, false] {
            let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
            let buy = |c: &mut CustomerBilling| c.apply(&meta("evt_buy", 10), &bought(1, true));
            if purchase_first {
                buy(&mut c);
            }
            // The item's copy (as a dispute's commit brings it), then a full refund joined in.
            assert_eq!(
                c.absorb_charge(&disputed(1, "needs_response")),
                Offer::Taken
            );
            assert_eq!(
                c.apply(&meta("evt_r", 70), &refunded(1, 500)),
                Effect::Applied
            );
            if !purchase_first {
                assert_eq!(c.charges.len(), 1, "unclaimed until its purchase comes");
                buy(&mut c);
            }
            assert!(c.charges.is_empty());
            let p = &c.purchases["cs_01"];
            assert_eq!(p.paid_by.keys().collect::<Vec<_>>(), ["ch_01"]);
            let access = purchase_access(&c);
            assert_eq!(access[0].reason, "refunded");
            ends.push(c);
        }
        assert_eq!(ends[0].purchases, ends[1].purchases);
        // Charges of subscription invoices are never claimed: only the newest ids are kept.
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        for i in 0..100 {
            c.absorb_charge(&disputed(i, "needs_response"));
        }
        assert_eq!(c.charges.len(), UNCLAIMED_CHARGES_KEPT);
        assert!(c.charges.contains_key("ch_99"));
    }

    /// An aggregate written with refund records (before they joined the charge copies) keeps
    /// its purchases' access, and its next event moves each record into its charge's copy.
    #[test]
    fn refund_records_of_an_older_aggregate_move_into_charge_copies() {
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        for i in 0..3 {
            c.apply(&meta(&format!("evt_{i}"), 10), &bought(i, true));
        }
        c.refunds.insert(
            "ch_01".into(),
            RefundRecord {
                payment_intent: Some("pi_01".into()),
                invoice: None,
                amount: 500,
                amount_refunded: 500,
                refunded: true,
            },
        );
        c.bought = PurchaseBook::of(&purchase_access(&c));
        let book = c.bought.clone();
        assert_eq!(book.granting, 2);
        c.apply(&meta("evt_3", 20), &bought(3, true));
        assert!(c.refunds.is_empty());
        assert!(c.purchases["cs_01"].paid_by["ch_01"].fully_refunded());
        assert_eq!((c.bought.count, c.bought.granting), (4, 3));
    }

    /// A schedule that ended before the horizon is dropped and its late events are stale; one
    /// still running is kept whatever its age.
    #[test]
    fn schedules_that_ended_before_the_horizon_are_dropped() {
        let schedule = |id: &str, status: &str| BillingEvent::Schedule {
            rank: 2,
            snapshot: ScheduleSnapshot {
                id: id.into(),
                customer: CustomerId::new("cus"),
                subscription: None,
                status: status.into(),
                current_phase: None,
                phases: Vec::new(),
            },
            evidence: OrderEvidence::default(),
        };
        let day = 86_400;
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        c.apply(&meta("evt_s1", 1_000), &schedule("sub_sched_1", "active"));
        c.apply(&meta("evt_s2", 2_000), &schedule("sub_sched_1", "released"));
        c.apply(&meta("evt_s3", 2_000), &schedule("sub_sched_2", "active"));
        assert_eq!(c.schedules.len(), 2);
        let gone = BillingEvent::Subscription {
            change: SubscriptionChange::Deleted,
            snapshot: snapshot("sub_x", "canceled"),
            evidence: OrderEvidence::default(),
        };
        c.apply(&meta("evt_d", 2_000 + 40 * day), &gone);
        assert_eq!(
            c.schedules.keys().collect::<Vec<_>>(),
            ["sub_sched_2"],
            "the released one is dropped"
        );
        let before = c.clone();
        let late = schedule("sub_sched_1", "active");
        assert_eq!(c.apply(&meta("evt_late", 1_500), &late), Effect::Stale);
        assert_eq!(c, before);
    }
}
