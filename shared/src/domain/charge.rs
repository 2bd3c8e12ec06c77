//! One charge as every event about it tells it (its own item, `CHARGE#{provider}#{charge}`): the
//! meeting point of the events that name a charge but never its customer (`charge.dispute.*`,
//! `refund.*`, `charge.refund.updated`) and the events that name both and so bind the charge to
//! its customer (`charge.refunded`, `payment_intent.succeeded`).
//!
//! Every part is a join of the events seen — facts set once, maxima, and per dispute and per
//! refund a pair of registers ([`Phases`]) in which a closed status is final over open ones and
//! the newer event wins within each — so applying the same events in any order, any number of
//! times, ends in the same charge. No call to the provider is needed.

use super::facts::EventMeta;
use super::ids::{CustomerId, Provider};
use super::version::{offer, Offer, Register, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A charge as `charge.refunded` shows it. `amount_refunded` only grows over a charge's life,
/// so the largest seen is the newest, whatever order the events arrive in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRefund {
    pub customer: CustomerId,
    pub charge: String,
    pub payment_intent: Option<String>,
    /// The invoice the charge paid (charges name it before API 2025-03-31.basil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    /// Stripe's `refunded`: the whole charge was refunded.
    pub refunded: bool,
}

/// A charge bound to its customer by an event that names both (`payment_intent.succeeded`, whose
/// `latest_charge` or succeeded `charges.data[]` entry is the charge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeBinding {
    pub customer: CustomerId,
    pub charge: String,
    pub payment_intent: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// Which `charge.dispute.*` event carried a dispute (decides same-second precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeChange {
    Created,
    Updated,
    FundsWithdrawn,
    FundsReinstated,
    Closed,
}

/// A dispute as one `charge.dispute.*` event shows it. It names its charge (and, since about
/// 2019, the payment intent) but never the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeEvent {
    pub change: DisputeChange,
    pub dispute: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    /// Stripe's status verbatim (`needs_response`, `under_review`, `won`, `lost`, …).
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reason: Option<String>,
}

/// Which refund event carried a refund object (decides same-second precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundChange {
    Created,
    /// `refund.updated` and `charge.refund.updated`.
    Updated,
    Failed,
}

/// A refund object as one `refund.*` / `charge.refund.updated` event shows it: it names its
/// charge but never the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundEvent {
    pub change: RefundChange,
    pub refund: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    /// Stripe's status verbatim (`pending`, `requires_action`, `succeeded`, `failed`, `canceled`).
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// What one event says to a charge's own item: the charge events of [`super::events`]'s
/// `BillingEvent`, by reference (`BillingEvent::charge_event`). Kept here, beside the charge,
/// so that the charge needs nothing from the events module (which holds a charge in a
/// purchase's `paid_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeEvent<'a> {
    /// `charge.refunded`.
    Refunded(&'a ChargeRefund),
    /// An event naming the charge and its customer.
    Bound(&'a ChargeBinding),
    /// `charge.dispute.*`.
    Dispute(&'a DisputeEvent),
    /// `refund.*`, `charge.refund.updated`.
    Refund(&'a RefundEvent),
}

impl<'a> ChargeEvent<'a> {
    /// The charge it names.
    pub fn charge(self) -> &'a str {
        match self {
            ChargeEvent::Refunded(r) => &r.charge,
            ChargeEvent::Bound(b) => &b.charge,
            ChargeEvent::Dispute(d) => &d.charge,
            ChargeEvent::Refund(r) => &r.charge,
        }
    }
}

/// The states of an object that ends in a closed status: while no closed status is known the
/// newest open one is the state; a closed one is final over every open one (Stripe never
/// reopens a closed dispute or a failed refund), and among closed ones the newest wins. Both
/// halves are [`Register`]s; the open one is dropped once closed, so any order stores the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Phases<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<Register<T>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Register<T>>,
}

impl<T> Default for Phases<T> {
    fn default() -> Self {
        Self {
            open: None,
            closed: None,
        }
    }
}

impl<T> Phases<T> {
    /// Offers one event's state; `closed` says whether its status is a closed one.
    pub fn offer(&mut self, closed: bool, version: &Version, value: T) -> Offer {
        if !closed {
            if self.closed.is_some() {
                return Offer::Older;
            }
            return offer(&mut self.open, version, value);
        }
        let offered = offer(&mut self.closed, version, value);
        self.open = None;
        offered
    }

    /// The state now: the closed one if any, else the newest open one.
    pub fn current(&self) -> Option<&T> {
        self.closed
            .as_ref()
            .or(self.open.as_ref())
            .map(|r| &r.value)
    }
}

/// What one dispute event says about the dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One dispute of the charge: its status and whether the disputed funds were withdrawn from the
/// merchant's balance and given back (each set once by its own event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeRecord {
    pub state: Phases<DisputeState>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub funds_withdrawn: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub funds_reinstated: bool,
}

impl DisputeRecord {
    pub fn status(&self) -> Option<&str> {
        self.state.current().map(|s| s.status.as_str())
    }
}

/// What one refund event says about the refund object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

/// A dispute status that ends the dispute: nothing reopens it. `prevented` (a dispute stopped
/// before it became a chargeback) is in Stripe's current list; `charge_refunded` in older ones.
pub fn dispute_closed(status: &str) -> bool {
    matches!(
        status,
        "won" | "lost" | "warning_closed" | "charge_refunded" | "prevented"
    )
}

/// A refund status after which the refund never succeeds (it gives nothing back).
pub fn refund_closed(status: &str) -> bool {
    matches!(status, "failed" | "canceled")
}

/// Same-second precedence of dispute events: created first, closed last.
fn dispute_rank(change: DisputeChange) -> u8 {
    match change {
        DisputeChange::Created => 1,
        DisputeChange::Updated | DisputeChange::FundsWithdrawn | DisputeChange::FundsReinstated => {
            2
        }
        DisputeChange::Closed => 3,
    }
}

/// Same-second precedence of refund events: created first, failed last.
fn refund_rank(change: RefundChange) -> u8 {
    match change {
        RefundChange::Created => 1,
        RefundChange::Updated => 2,
        RefundChange::Failed => 3,
    }
}

/// Joins a fact every event that names it states alike: kept once known; should two events
/// ever disagree, the smaller value is kept so that the order still does not matter.
fn join_fact<T: Ord + Clone>(slot: &mut Option<T>, new: Option<&T>) {
    if let Some(new) = new {
        match slot {
            Some(current) if *current <= *new => {}
            _ => *slot = Some(new.clone()),
        }
    }
}

/// Everything the model knows about one charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub provider: Provider,
    pub id: String,
    /// Learnt from a binding event; `None` while only customer-less events arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    /// The invoice the charge paid (charges name it before API 2025-03-31.basil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `charge.refunded`'s `amount_refunded` (only grows over a charge's life: the maximum).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub amount_refunded: i64,
    /// `charge.refunded`'s `refunded`: the whole charge was refunded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refunded: bool,
    /// Refund objects by refund id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refunds: BTreeMap<String, Phases<RefundState>>,
    /// Disputes by dispute id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disputes: BTreeMap<String, DisputeRecord>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Charge {
    pub fn new(provider: Provider, id: impl Into<String>) -> Self {
        Self {
            provider,
            id: id.into(),
            customer: None,
            payment_intent: None,
            invoice: None,
            amount: None,
            currency: None,
            amount_refunded: 0,
            refunded: false,
            refunds: BTreeMap::new(),
            disputes: BTreeMap::new(),
        }
    }

    /// Applies one event about this charge: `Taken` if anything moved, else `Older` (stale).
    pub fn apply(&mut self, meta: &EventMeta, event: ChargeEvent<'_>) -> Offer {
        let before = self.clone();
        match event {
            ChargeEvent::Refunded(r) => self.apply_refunded(r),
            ChargeEvent::Bound(b) => self.apply_binding(b),
            ChargeEvent::Dispute(d) => self.apply_dispute(meta, d),
            ChargeEvent::Refund(r) => self.apply_refund(meta, r),
        }
        if *self == before {
            Offer::Older
        } else {
            Offer::Taken
        }
    }

    pub(crate) fn apply_refunded(&mut self, r: &ChargeRefund) {
        join_fact(&mut self.customer, Some(&r.customer));
        join_fact(&mut self.payment_intent, r.payment_intent.as_ref());
        join_fact(&mut self.invoice, r.invoice.as_ref());
        self.amount = self.amount.max(Some(r.amount));
        self.amount_refunded = self.amount_refunded.max(r.amount_refunded);
        self.refunded |= r.refunded;
    }

    fn apply_binding(&mut self, b: &ChargeBinding) {
        join_fact(&mut self.customer, Some(&b.customer));
        join_fact(&mut self.payment_intent, b.payment_intent.as_ref());
        join_fact(&mut self.currency, b.currency.as_ref());
        if b.amount.is_some() {
            self.amount = self.amount.max(b.amount);
        }
    }

    fn apply_dispute(&mut self, meta: &EventMeta, d: &DisputeEvent) {
        join_fact(&mut self.payment_intent, d.payment_intent.as_ref());
        let version = Version::of(meta, dispute_rank(d.change));
        let record = self.disputes.entry(d.dispute.clone()).or_default();
        let state = DisputeState {
            status: d.status.clone(),
            amount: d.amount,
            currency: d.currency.clone(),
            reason: d.reason.clone(),
        };
        record
            .state
            .offer(dispute_closed(&d.status), &version, state);
        match d.change {
            DisputeChange::FundsWithdrawn => record.funds_withdrawn = true,
            DisputeChange::FundsReinstated => record.funds_reinstated = true,
            _ => {}
        }
    }

    fn apply_refund(&mut self, meta: &EventMeta, r: &RefundEvent) {
        join_fact(&mut self.payment_intent, r.payment_intent.as_ref());
        join_fact(&mut self.currency, r.currency.as_ref());
        let version = Version::of(meta, refund_rank(r.change));
        let state = RefundState {
            status: r.status.clone(),
            amount: r.amount,
        };
        let closed = refund_closed(&r.status) || r.change == RefundChange::Failed;
        self.refunds
            .entry(r.refund.clone())
            .or_default()
            .offer(closed, &version, state);
    }

    /// Refunded so far: `charge.refunded`'s total, or the succeeded refund objects' sum when
    /// those arrived first (failed and canceled refunds give nothing back).
    pub fn refunded_total(&self) -> i64 {
        let objects: i64 = self
            .refunds
            .values()
            .filter_map(Phases::current)
            .filter(|r| r.status == "succeeded")
            .filter_map(|r| r.amount)
            .sum();
        self.amount_refunded.max(objects)
    }

    /// Fully refunded: Stripe says so, or the refunds reach the charge's amount.
    pub fn fully_refunded(&self) -> bool {
        self.refunded
            || self
                .amount
                .is_some_and(|a| a > 0 && self.refunded_total() >= a)
    }

    /// The dispute that decides what the charge's purchase grants: a lost one, else an open
    /// one, else any (won or closed as an inquiry); the greatest id among equals.
    pub fn deciding_dispute(&self) -> Option<(&String, &DisputeRecord)> {
        self.disputes.iter().max_by_key(|(id, d)| {
            let weight = match d.status() {
                Some("lost") => 2,
                Some(s) if !dispute_closed(s) => 1,
                _ => 0,
            };
            (weight, (*id).clone())
        })
    }

    /// Whether the charge has anything a customer's view shows (a refund or a dispute); only
    /// such charges are copied into the customer's aggregate, which stays small for customers
    /// whose charges are never refunded or disputed.
    pub fn has_news(&self) -> bool {
        self.refunded
            || self.amount_refunded > 0
            || !self.refunds.is_empty()
            || !self.disputes.is_empty()
    }
}

/// A charge as the billing route shows it: what was refunded and disputed, never card details
/// (the item holds none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeView {
    pub provider: Provider,
    pub charge: String,
    pub customer: Option<CustomerId>,
    pub payment_intent: Option<String>,
    /// The invoice the charge paid, when the charge names it (before basil).
    pub invoice: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub amount_refunded: i64,
    pub fully_refunded: bool,
    /// Refund objects: id → status.
    pub refunds: BTreeMap<String, String>,
    /// Disputes: id → status.
    pub disputes: BTreeMap<String, String>,
}

impl Charge {
    pub fn view(&self) -> ChargeView {
        let status = |s: Option<&str>| s.unwrap_or_default().to_owned();
        ChargeView {
            provider: self.provider,
            charge: self.id.clone(),
            customer: self.customer.clone(),
            payment_intent: self.payment_intent.clone(),
            invoice: self.invoice.clone(),
            amount: self.amount,
            currency: self.currency.clone(),
            amount_refunded: self.refunded_total(),
            fully_refunded: self.fully_refunded(),
            refunds: self
                .refunds
                .iter()
                .map(|(id, r)| (id.clone(), status(r.current().map(|r| r.status.as_str()))))
                .collect(),
            disputes: self
                .disputes
                .iter()
                .map(|(id, d)| (id.clone(), status(d.status())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::EventId;

    /// A charge event as the tests hold it (owned).
    enum Ev {
        Dispute(DisputeEvent),
        Refund(RefundEvent),
    }

    /// Applies a test's event through [`Charge::apply`].
    trait Put {
        fn put(&mut self, meta: &EventMeta, event: &Ev) -> Offer;
    }

    impl Put for Charge {
        fn put(&mut self, meta: &EventMeta, event: &Ev) -> Offer {
            let event = match event {
                Ev::Dispute(d) => ChargeEvent::Dispute(d),
                Ev::Refund(r) => ChargeEvent::Refund(r),
            };
            self.apply(meta, event)
        }
    }

    fn meta(id: &str, created: i64) -> EventMeta {
        EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new(id),
            event_type: "charge.dispute.updated".into(),
            created,
            millis: 0,
            livemode: false,
            api_version: None,
        }
    }

    fn dispute(change: DisputeChange, status: &str) -> Ev {
        Ev::Dispute(DisputeEvent {
            change,
            dispute: "dp_1".into(),
            charge: "ch_1".into(),
            payment_intent: Some("pi_1".into()),
            status: status.into(),
            amount: Some(1000),
            currency: Some("usd".into()),
            reason: Some("fraudulent".into()),
        })
    }

    fn refund(change: RefundChange, status: &str, amount: i64) -> Ev {
        Ev::Refund(RefundEvent {
            change,
            refund: "re_1".into(),
            charge: "ch_1".into(),
            payment_intent: None,
            status: status.into(),
            amount: Some(amount),
            currency: Some("usd".into()),
        })
    }

    fn every_order(events: &[(EventMeta, Ev)]) -> Vec<Charge> {
        let n = events.len();
        let mut out = Vec::new();
        let mut order: Vec<usize> = (0..n).collect();
        // Heap's algorithm, iteratively: every permutation once.
        let mut c = vec![0; n];
        let run = |order: &[usize]| {
            let mut charge = Charge::new(Provider::STRIPE, "ch_1");
            for &i in order {
                charge.put(&events[i].0, &events[i].1);
            }
            charge
        };
        out.push(run(&order));
        let mut i = 0;
        while i < n {
            if c[i] < i {
                order.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
                out.push(run(&order));
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        out
    }

    /// A closed status is final over an open one that came later in time (an `updated` of the
    /// evidence deadline stamped after the closing), and every order stores the same charge.
    #[test]
    fn a_closed_dispute_stays_closed_in_every_order() {
        let events = [
            (
                meta("evt_c", 10),
                dispute(DisputeChange::Created, "needs_response"),
            ),
            (
                meta("evt_w", 11),
                dispute(DisputeChange::FundsWithdrawn, "needs_response"),
            ),
            (meta("evt_x", 20), dispute(DisputeChange::Closed, "lost")),
            (
                meta("evt_u", 21),
                dispute(DisputeChange::Updated, "under_review"),
            ),
        ];
        let ends = every_order(&events);
        assert_eq!(ends.len(), 24);
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "one charge");
        let d = &ends[0].disputes["dp_1"];
        assert_eq!(d.status(), Some("lost"));
        assert!(d.funds_withdrawn && !d.funds_reinstated);
        assert_eq!(ends[0].payment_intent.as_deref(), Some("pi_1"));
    }

    #[test]
    fn within_open_statuses_the_newer_event_wins() {
        let mut c = Charge::new(Provider::STRIPE, "ch_1");
        c.put(
            &meta("evt_b", 12),
            &dispute(DisputeChange::Updated, "under_review"),
        );
        assert_eq!(
            c.put(
                &meta("evt_a", 10),
                &dispute(DisputeChange::Created, "needs_response")
            ),
            Offer::Older,
            "an older open status is stale"
        );
        assert_eq!(c.disputes["dp_1"].status(), Some("under_review"));
    }

    /// Only a succeeded refund counts; one that failed afterwards gives nothing back, whatever
    /// order its events arrive in.
    #[test]
    fn a_failed_refund_does_not_count_in_any_order() {
        let events = [
            (
                meta("evt_1", 10),
                refund(RefundChange::Created, "pending", 1000),
            ),
            (
                meta("evt_2", 11),
                refund(RefundChange::Updated, "succeeded", 1000),
            ),
            (
                meta("evt_3", 12),
                refund(RefundChange::Failed, "failed", 1000),
            ),
        ];
        for c in every_order(&events) {
            assert_eq!(c.refunded_total(), 0);
            assert_eq!(
                c.refunds["re_1"].current().map(|r| r.status.as_str()),
                Some("failed")
            );
        }
        let mut c = Charge::new(Provider::STRIPE, "ch_1");
        c.put(&events[1].0, &events[1].1);
        c.amount = Some(1000);
        assert!(c.fully_refunded(), "a succeeded refund of the whole amount");
    }

    /// An inquiry stopped before it became a chargeback is closed: a later-stamped open status
    /// does not reopen it.
    #[test]
    fn a_prevented_dispute_is_closed() {
        let mut c = Charge::new(Provider::STRIPE, "ch_1");
        c.put(
            &meta("evt_p", 10),
            &dispute(DisputeChange::Closed, "prevented"),
        );
        c.put(
            &meta("evt_u", 20),
            &dispute(DisputeChange::Updated, "needs_response"),
        );
        assert_eq!(c.disputes["dp_1"].status(), Some("prevented"));
    }

    #[test]
    fn a_redelivery_is_stale() {
        let mut c = Charge::new(Provider::STRIPE, "ch_1");
        let e = dispute(DisputeChange::Created, "needs_response");
        assert_eq!(c.put(&meta("evt_1", 10), &e), Offer::Taken);
        assert_eq!(c.put(&meta("evt_1", 10), &e), Offer::Older);
    }
}
