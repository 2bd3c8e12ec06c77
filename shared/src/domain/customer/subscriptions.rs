//! A customer's subscriptions: each one's record (its snapshots of the newest second, its
//! deletion, the invoices that decide its payment standing, the periods its settled invoices
//! billed), and how long ended ones are kept.
//!
//! Every part is a join of the events seen, so the aggregate (`customer/mod.rs`), which offers
//! each event to the record it names, stays commutative and idempotent.

use crate::domain::events::{
    EventMeta, InvoiceChange, InvoicePayment, PaymentOutcome, Settlement, SubscriptionChange,
    SubscriptionSnapshot,
};
use crate::domain::ids::InvoiceId;
use crate::domain::invoice::Attempt;
use crate::domain::periods::{self, Invalid, InvoicePeriod, PeriodClaim, PeriodView, Span};
use crate::domain::same_second::{self, Rule, SameSecond, Shape};
use crate::domain::version::{offer, Offer, Register, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deleted subscriptions kept whole (newest deletions first); older ones are reduced to a
/// tombstone so that a customer billed for years keeps a bounded aggregate.
pub const ENDED_KEPT_WHOLE: usize = 8;
/// How long a tombstone is kept after the customer's newest deletion: Stripe retries a delivery
/// for up to three days and serves an event from its API for 30, so no event of a subscription
/// deleted before that can still arrive for the first time. Older tombstones are dropped and the
/// horizon they leave (the aggregate's `horizon`) answers for them.
pub const TOMBSTONE_HORIZON: i64 = 30 * 86_400;
/// Rank of a snapshot read from the provider's API to settle a same-second tie: above every
/// event of that second.
pub const FETCHED_RANK: u8 = 4;

/// How the snapshots of a subscription order themselves within one second (also a customer's
/// entitlement summaries and a subscription schedule's snapshots): the default rule of
/// `same_second.rs` (`previous_attributes`). A snapshot read from the provider's API
/// ([`FETCHED_RANK`]) is an aid: it fills no place of the events of its second and is dropped
/// once they order themselves. Stored as `{"candidates": [{"version", "snapshot",
/// "evidence"}]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BySnapshot;

impl<T> Rule<T> for BySnapshot {
    const SHAPE: Shape = Shape::Wrapped;
    const FIELD: &'static str = "snapshot";

    fn counts(version: &Version) -> bool {
        version.rank < FETCHED_RANK
    }
}

/// The snapshots of the newest second of a subscription (or of another object ordered like
/// one): see [`BySnapshot`].
pub type Snapshots<T = SubscriptionSnapshot> = SameSecond<T, BySnapshot>;
/// One snapshot of a subscription (by default) with its version and evidence.
pub type Candidate<T = SubscriptionSnapshot> = same_second::Candidate<T>;
/// Which candidate is the subscription's state, and whether the events proved it.
pub type Latest<'a, T = SubscriptionSnapshot> = same_second::Latest<'a, T>;

/// A deletion: terminal; the reason is kept (`cancellation_requested`, `payment_failed`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub reason: Option<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Snapshots>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Register<Deletion>>,
    /// Invoices not older than the newest paid one (older ones cannot change the standing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invoices: BTreeMap<InvoiceId, InvoiceRecord>,
    /// The periods its settled invoices billed, by start (see [`crate::domain::periods`]); kept apart
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

    pub(crate) fn apply_invoice(&mut self, meta: &EventMeta, p: &InvoicePayment) -> Offer {
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

/// Same-second precedence of subscription events: creation first, deletion last.
pub(crate) fn subscription_rank(change: SubscriptionChange) -> u8 {
    match change {
        SubscriptionChange::Created | SubscriptionChange::TrialWillEnd => 1,
        SubscriptionChange::Updated | SubscriptionChange::Paused | SubscriptionChange::Resumed => 2,
        SubscriptionChange::Deleted => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::fixtures::{evidence, meta, snapshot, updated};
    use crate::domain::customer::{CustomerBilling, Effect};
    use crate::domain::events::{BillingEvent, OrderEvidence, SubscriptionStatus};
    use crate::domain::ids::{CustomerId, Provider, SubscriptionId};
    use crate::domain::same_second::MAX_CANDIDATES;

    /// A record as written before the one same-second container (`Snapshots` was its own
    /// struct: `{"candidates": [{"version", "snapshot", "evidence"}]}`) reads back the same and
    /// is written back byte for byte: evidence, an aid (a fetched snapshot) and an invoice.
    #[test]
    fn a_record_stored_before_the_one_container_round_trips() {
        let snap = serde_json::to_string(&snapshot("sub", "active")).expect("json");
        let version =
            |rank: u8, id: &str| format!(r#"{{"created":10,"rank":{rank},"event_id":"{id}"}}"#);
        let stored = format!(
            concat!(
                r#"{{"snapshots":{{"candidates":["#,
                r#"{{"version":{},"snapshot":{},"evidence":{{"values":{{"status":"s_a"}},"#,
                r#""previous":{{"status":"s_x"}}}}}},"#,
                r#"{{"version":{},"snapshot":{},"evidence":{{}}}},"#,
                r#"{{"version":{},"snapshot":{},"evidence":{{}}}}]}},"#,
                r#""invoices":{{"in_1":{{"created":5,"dated":true,"last_event":9,"#,
                r#""attempt":{{"number":1,"failed":true,"action_required":false}}}}}}}}"#
            ),
            version(2, "evt_a"),
            snap,
            version(2, "evt_b"),
            snap,
            version(FETCHED_RANK, "api"),
            snap
        );
        let read: SubscriptionRecord = serde_json::from_str(&stored).expect("readable");
        let snapshots = read.snapshots.as_ref().expect("snapshots");
        assert_eq!(snapshots.candidates.len(), 3);
        assert_eq!(snapshots.candidates[0].evidence.previous["status"], "s_x");
        assert_eq!(
            read.latest().expect("latest").candidate.version.event_id,
            "api"
        );
        assert_eq!(serde_json::to_string(&read).expect("json"), stored);
    }

    /// Found by `lifecycles_match_the_true_order_with_the_stripe_api`: eight events of one
    /// second and a snapshot read from the API while they could not order themselves. The
    /// fetched snapshot must not take one of the eight places, or which event is forgotten
    /// depends on when the fetch happened.
    #[test]
    fn a_fetched_snapshot_takes_no_place_from_the_events_of_its_second() {
        let candidate = |rank: u8, id: &str| same_second::Candidate {
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
        let mut without_fetch = Snapshots::<String>::default();
        for c in &events {
            without_fetch.offer(c.clone());
        }
        let mut fetched_midway = Snapshots::<String>::default();
        for (i, c) in events.iter().enumerate() {
            if i == 3 {
                fetched_midway.offer(candidate(FETCHED_RANK, "fetched"));
            }
            fetched_midway.offer(c.clone());
        }
        assert_eq!(ids(&without_fetch).len(), MAX_CANDIDATES);
        assert_eq!(ids(&fetched_midway), ids(&without_fetch));
    }

    /// The issue's case: a metadata change while incomplete, then the activation, in one
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
            assert_eq!(
                latest.candidate.snapshot.status,
                SubscriptionStatus::Active,
                "{order:?}"
            );
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
        assert_eq!(latest.candidate.snapshot.status, SubscriptionStatus::Active);
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
}
