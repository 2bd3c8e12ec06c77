//! The billing state of one provider customer, and how one event changes it.
//!
//! A customer is the unit of consistency: every modelled event names exactly one customer, so
//! one conditional write of this aggregate (with the ledger record) applies an event atomically.
//! Every part of the state is a join of the events seen — a register that only moves to a greater
//! version, a set of same-second candidates, a per-invoice maximum — so `apply` is commutative
//! and idempotent: any delivery order of the same events ends in the same aggregate.
//!
//! This file holds the aggregate and `apply`; its parts live beside it and import nothing from
//! it: `subscriptions.rs` (each subscription's record), `purchases.rs` (one-time purchases, what
//! they grant, the book the user item carries) and `links.rs` (the user a customer belongs to,
//! the record's address).

pub mod links;
pub mod purchases;
pub mod subscriptions;

#[cfg(test)]
pub(crate) mod fixtures;

pub use purchases::{RefundRecord, UNCLAIMED_CHARGES_KEPT};
pub use subscriptions::{
    Candidate, Deletion, InvoiceRecord, Latest, Snapshots, SubscriptionRecord, ENDED_KEPT_WHOLE,
    FETCHED_RANK, TOMBSTONE_HORIZON,
};

use super::charge::Charge;
use super::events::{
    AddressChange, BillingEvent, ChargeRefund, CustomerProfile, EmailAddress, EntitlementSet,
    EventMeta, InvoiceEvent, InvoicePayment, LinkSource, OrderEvidence, Purchase, PurchaseKind,
    ScheduleSnapshot, SubscriptionChange, SubscriptionSnapshot, SystemGrant,
};
use super::ids::{CustomerId, Provider, SubscriptionId, UserId};
use super::periods::{self, PeriodView};
use super::same_second;
use super::version::{offer, Offer, Register, Version};
use purchases::{PurchaseAccess, PurchaseBook};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use subscriptions::subscription_rank;

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
    /// The customer's name and preferred locales, as the newest customer event gave them: read
    /// only by the email consumer, like [`Self::email`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Register<CustomerProfile>>,
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
            profile: None,
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
                let p = self.purchases.values().find(|p| purchases::pays(c, p))?;
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
            .filter(|c| purchases::pays(c, purchase))
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
            .and_then(|s| s.latest())
            .map(|l| l.candidate.snapshot.lookup_keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The user this customer belongs to: the claim of the strongest source present.
    pub fn user(&self) -> Option<&UserId> {
        links::user(&self.links)
    }

    /// The customer record's address, if the newest event about it gave one.
    /// The customer's name and preferred locales, if a customer event gave them.
    pub fn profile(&self) -> Option<&CustomerProfile> {
        self.profile.as_ref().map(|r| &r.value)
    }

    pub fn email(&self) -> Option<&EmailAddress> {
        links::email(&self.email)
    }

    /// Every purchase's access, in session-id order (see `purchases.rs` for the table).
    pub fn purchase_access(&self) -> Vec<PurchaseAccess> {
        self.purchases
            .values()
            .map(|p| {
                let (refund, charge) = (self.refund_of(p), self.charge_of(p));
                purchases::access_of(self.provider, &self.customer, p, refund, charge)
            })
            .collect()
    }

    /// Runs a change of the state and moves [`Self::bought`] by what it did to each purchase
    /// present. An aggregate written before the book existed gets it from its whole list first.
    fn booked<R>(&mut self, change: impl FnOnce(&mut Self) -> R) -> R {
        if self.bought.is_empty() && !self.purchases.is_empty() {
            self.bought = PurchaseBook::of(&self.purchase_access());
        }
        let before: BTreeMap<String, PurchaseAccess> = self
            .purchase_access()
            .into_iter()
            .map(|p| (p.purchase.clone(), p))
            .collect();
        let out = change(self);
        for after in self.purchase_access() {
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

    /// What a customer object says: its user, its address, its name and languages.
    fn apply_customer_object(
        &mut self,
        meta: &EventMeta,
        user_claim: &Option<UserId>,
        email: &Option<AddressChange>,
        profile: &Option<CustomerProfile>,
        tally: &mut Tally,
    ) {
        if let Some(profile) = profile {
            tally.add(offer(
                &mut self.profile,
                &Version::of(meta, 0),
                profile.clone(),
            ));
        }
        if let Some(user) = user_claim {
            tally.add(self.claim(LinkSource::CustomerMetadata, meta, user));
        }
        if let Some(change) = email {
            tally.add(self.offer_email(meta, change.address().cloned()));
        }
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
                    tally.add(purchases::join(&mut self.purchases, p));
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
                user_claim,
                email,
                profile,
                ..
            } => {
                if user_claim.is_none() && email.is_none() && profile.is_none() {
                    return Effect::Ignored;
                }
                self.apply_customer_object(meta, user_claim, email, profile, &mut tally);
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
                let candidate = same_second::Candidate {
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
        if let Some(p) = purchases::invoice_purchase(invoice) {
            tally.add(purchases::join(&mut self.purchases, &p));
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
        let candidate = same_second::Candidate {
            version: Version::of(meta, 1),
            snapshot: entitlements.clone(),
            evidence: evidence.clone(),
        };
        self.entitlements
            .get_or_insert_with(Default::default)
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
        let candidate = same_second::Candidate {
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
            .get_or_insert_with(Default::default)
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
        let candidate = same_second::Candidate {
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
            s.drop_needless_aids();
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

    /// The record's address register (see `links.rs`).
    fn offer_email(&mut self, meta: &EventMeta, address: Option<EmailAddress>) -> Offer {
        links::offer_email(&mut self.email, meta, address)
    }

    /// One source's claim of the user (see `links.rs`).
    fn claim(&mut self, source: LinkSource, meta: &EventMeta, user: &UserId) -> Offer {
        links::claim(&mut self.links, source, meta, user)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{evidence, meta, snapshot};
    use super::*;

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
