//! One invoice: what every event about it adds up to — its status, its details and line items
//! from the newest snapshot, its payments. Like the customer aggregate, every part is a join of
//! the events seen (a maximum, a set, registers that only move forward), so applying the same
//! events in any order, any number of times, ends in the same record.
//!
//! Status (a function of the set of events, never of their order):
//!
//! | the events seen include                                          | status          |
//! |------------------------------------------------------------------|-----------------|
//! | `invoice.deleted` (only drafts can be deleted)                   | `deleted`       |
//! | a payment (`invoice.paid`, `invoice.payment_succeeded`, `invoice_payment.paid`, or any snapshot whose status is `paid`) | `paid` |
//! | `invoice.voided` (or a snapshot with status `void`)              | `voided`        |
//! | `invoice.marked_uncollectible` (or status `uncollectible`)       | `uncollectible` |
//! | `invoice.payment_failed` for the newest attempt (`attempt_count`) | `failed`        |
//! | none of these (draft, open, or only awaiting authentication)     | `pending`       |
//!
//! Rows are in precedence order: `deleted`, `paid` and `voided` are final; an invoice written
//! off can still be paid or voided later, so those replace `uncollectible`; a newer attempt
//! that only awaits authentication (`invoice.payment_action_required`) is `pending` with
//! `action_required`.

use super::events::{
    EmailAddress, EventMeta, InvoiceEvent, InvoiceEventKind, InvoiceLine, InvoicePaymentPaid,
    InvoiceSnapshot, Settlement,
};
use super::ids::{CustomerId, InvoiceId, Provider, SubscriptionId, UserId};
use super::same_second::{Candidate, Rule, SameSecond, Shape};
use super::version::{offer, Offer, Register, Version};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The status of an invoice (seed 004's `InvoiceStatus`); see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Pending,
    Failed,
    Paid,
    Voided,
    Uncollectible,
    Deleted,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Pending => "pending",
            InvoiceStatus::Failed => "failed",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Voided => "voided",
            InvoiceStatus::Uncollectible => "uncollectible",
            InvoiceStatus::Deleted => "deleted",
        }
    }
}

/// How an invoice's snapshots of one second order themselves: only those of the highest
/// precedence are kept (a later stage of the invoice's life replaces the earlier), identical
/// ones (`invoice.paid` with its `invoice.payment_succeeded`) once; when the evidence cannot
/// decide, the one of the highest `attempt_count` (it only grows), then the greatest version.
/// Stored bare, each snapshot as `snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByInvoice;

impl Rule<InvoiceSnapshot> for ByInvoice {
    const SHAPE: Shape = Shape::Bare;
    const FIELD: &'static str = "snapshot";
    const TOP_RANK_ONLY: bool = true;
    const TWINS_ONCE: bool = true;

    fn undecided(a: &Candidate<InvoiceSnapshot>, b: &Candidate<InvoiceSnapshot>) -> Ordering {
        (a.snapshot.attempt_count, &a.version).cmp(&(b.snapshot.attempt_count, &b.version))
    }
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
    pub fn merge(current: Option<Attempt>, new: Attempt) -> Attempt {
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

/// A payment reported by `invoice_payment.paid`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
}

/// Everything the model knows about one invoice; stored as its own item beside the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub provider: Provider,
    pub id: InvoiceId,
    /// `None` while only `invoice_payment.paid` (which names no customer) has arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerId>,
    /// The invoice's own creation time: the earliest any event reported (they all report the
    /// same one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// The snapshots of the newest second, of the highest precedence in it ([`Self::latest`]
    /// picks one); identical ones are kept once.
    #[serde(default, skip_serializing_if = "SameSecond::is_empty")]
    pub snapshots: SameSecond<InvoiceSnapshot, ByInvoice>,
    /// Set once at finalization and never changed after; kept from whichever snapshot had them,
    /// so a draft snapshot chosen as the latest cannot hide them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<Register<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_invoice_url: Option<Register<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_pdf: Option<Register<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settlement>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The newest payment attempt that did not succeed, and what was said about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    /// Payments reported by `invoice_payment.paid`, by their id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payments: BTreeMap<String, PaymentRecord>,
    /// `created` of the newest event about it.
    pub last_event: i64,
}

/// How a snapshot's own status settles the invoice (a status Stripe never takes back).
fn status_settlement(status: Option<&str>) -> Option<Settlement> {
    match status? {
        "paid" => Some(Settlement::Paid),
        "void" => Some(Settlement::Voided),
        "uncollectible" => Some(Settlement::Uncollectible),
        _ => None,
    }
}

impl Invoice {
    pub fn new(provider: Provider, id: InvoiceId) -> Self {
        Self {
            provider,
            id,
            customer: None,
            created: None,
            snapshots: SameSecond::default(),
            number: None,
            hosted_invoice_url: None,
            invoice_pdf: None,
            settled: None,
            deleted: false,
            attempt: None,
            payments: BTreeMap::new(),
            last_event: 0,
        }
    }

    /// The status the events add up to (the module's table).
    pub fn status(&self) -> InvoiceStatus {
        if self.deleted {
            return InvoiceStatus::Deleted;
        }
        match self.settled {
            Some(Settlement::Paid) => InvoiceStatus::Paid,
            Some(Settlement::Voided) => InvoiceStatus::Voided,
            Some(Settlement::Uncollectible) => InvoiceStatus::Uncollectible,
            None if self.attempt.is_some_and(|a| a.failed) => InvoiceStatus::Failed,
            None => InvoiceStatus::Pending,
        }
    }

    /// Whether the newest unsuccessful attempt needs the customer to authenticate, while the
    /// invoice is still owed.
    pub fn action_required(&self) -> bool {
        self.settled.is_none() && !self.deleted && self.attempt.is_some_and(|a| a.action_required)
    }

    /// The latest snapshot: among the kept ones, the last of every order the evidence allows;
    /// when the evidence cannot decide, the one of the highest `attempt_count` (it only grows),
    /// then the greatest event id (deterministic).
    pub fn latest(&self) -> Option<&InvoiceSnapshot> {
        self.snapshots.latest().map(|l| &l.candidate.snapshot)
    }

    /// The user this invoice is for: the customer's link when known, else the invoice's hint.
    /// Resolved when read, never stored: a link that arrives after the invoice's events would
    /// otherwise leave the stored invoice depending on the order of arrival.
    pub fn user<'a>(&'a self, link: Option<&'a UserId>) -> Option<&'a UserId> {
        link.or_else(|| self.latest()?.user_hint.as_ref())
    }

    /// The recipient of the customer emails (issue 10); never logged.
    pub fn customer_email(&self) -> Option<&EmailAddress> {
        self.latest()?.customer_email.as_ref()
    }

    /// Whether this is the first invoice of a subscription (`billing_reason`
    /// `subscription_create`): its payment is asked for by the checkout page itself.
    pub fn opens_subscription(&self) -> bool {
        self.latest()
            .and_then(|s| s.billing_reason.as_deref())
            .is_some_and(|r| r == "subscription_create")
    }

    /// When it was created, for ordering: its own `created`, else its first event.
    pub fn sort_time(&self) -> i64 {
        self.created.unwrap_or(self.last_event)
    }

    /// Applies an `invoice.*` event. Pure; `Taken` when the record changed.
    pub fn apply(&mut self, meta: &EventMeta, event: &InvoiceEvent) -> Offer {
        let before = self.clone();
        let s = &event.snapshot;
        // An invoice never changes customer; the smaller id keeps a conflict order-free.
        if self.customer.as_ref().is_none_or(|c| &s.customer < c) {
            self.customer = Some(s.customer.clone());
        }
        if let Some(created) = s.created {
            self.created = Some(self.created.map_or(created, |c| c.min(created)));
        }
        let version = Version::of(meta, event.kind.rank());
        for (slot, value) in [
            (&mut self.number, &s.number),
            (&mut self.hosted_invoice_url, &s.hosted_invoice_url),
            (&mut self.invoice_pdf, &s.invoice_pdf),
        ] {
            if let Some(v) = value {
                offer(slot, &version, v.clone());
            }
        }
        let settlement = event.kind.change().and_then(|c| c.settlement());
        self.settled = self
            .settled
            .max(settlement)
            .max(status_settlement(s.status.as_deref()));
        self.deleted |= event.kind == InvoiceEventKind::Deleted;
        if matches!(
            event.kind,
            InvoiceEventKind::Failed | InvoiceEventKind::ActionRequired
        ) {
            let new = Attempt {
                number: s.attempt_count.unwrap_or(0),
                failed: event.kind == InvoiceEventKind::Failed,
                action_required: event.kind == InvoiceEventKind::ActionRequired,
            };
            self.attempt = Some(Attempt::merge(self.attempt, new));
        }
        self.last_event = self.last_event.max(meta.created);
        // The snapshots of the newest second and highest precedence (see [`ByInvoice`]): a
        // function of the set of events.
        let _ = self.snapshots.offer(Candidate {
            version,
            snapshot: s.clone(),
            evidence: event.evidence.clone(),
        });
        changed(&before, self)
    }

    /// Applies `invoice_payment.paid`: the invoice is paid, and the payment is kept.
    pub fn apply_payment(&mut self, meta: &EventMeta, paid: &InvoicePaymentPaid) -> Offer {
        let before = self.clone();
        self.settled = self.settled.max(Some(Settlement::Paid));
        let record = PaymentRecord {
            payment_intent: paid.payment_intent.clone(),
            amount_paid: paid.amount_paid,
            currency: paid.currency.clone(),
            paid_at: paid.paid_at,
        };
        // One id, one payment; should two events ever disagree, the greater record is kept
        // whatever their order.
        let slot = self
            .payments
            .entry(paid.payment.clone())
            .or_insert(record.clone());
        if record > *slot {
            *slot = record;
        }
        self.last_event = self.last_event.max(meta.created);
        changed(&before, self)
    }

    /// What a read route shows (never the customer's email address).
    pub fn view(&self, user: Option<&UserId>) -> InvoiceView {
        let latest = self.latest();
        let field = |f: fn(&InvoiceSnapshot) -> Option<i64>| latest.and_then(f);
        let register = |r: &Option<Register<String>>| r.as_ref().map(|r| r.value.clone());
        InvoiceView {
            provider: self.provider,
            id: self.id.clone(),
            customer: self.customer.clone(),
            subscription: latest.and_then(|s| s.subscription.clone()),
            user: self.user(user).cloned(),
            status: self.status(),
            provider_status: latest.and_then(|s| s.status.clone()),
            action_required: self.action_required(),
            number: register(&self.number),
            currency: latest.and_then(|s| s.currency.clone()),
            amount_due: field(|s| s.amount_due),
            amount_paid: field(|s| s.amount_paid),
            amount_remaining: field(|s| s.amount_remaining),
            total: field(|s| s.total),
            hosted_invoice_url: register(&self.hosted_invoice_url),
            invoice_pdf: register(&self.invoice_pdf),
            due_date: field(|s| s.due_date),
            next_payment_attempt: field(|s| s.next_payment_attempt),
            attempt_count: latest.and_then(|s| s.attempt_count),
            billing_reason: latest.and_then(|s| s.billing_reason.clone()),
            created: self.created,
            period_start: field(|s| s.period_start),
            period_end: field(|s| s.period_end),
            lines: latest.map(|s| s.lines.clone()).unwrap_or_default(),
            more_lines: latest.is_some_and(|s| s.more_lines),
            payments: self.payments.clone(),
        }
    }
}

fn changed(before: &Invoice, after: &Invoice) -> Offer {
    if before == after {
        Offer::Older
    } else {
        Offer::Taken
    }
}

/// An invoice as the read routes show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceView {
    pub provider: Provider,
    pub id: InvoiceId,
    pub customer: Option<CustomerId>,
    pub subscription: Option<SubscriptionId>,
    pub user: Option<UserId>,
    pub status: InvoiceStatus,
    /// The provider's own status of the latest snapshot (`draft`, `open`, `paid`, …).
    pub provider_status: Option<String>,
    pub action_required: bool,
    pub number: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub total: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub due_date: Option<i64>,
    pub next_payment_attempt: Option<i64>,
    pub attempt_count: Option<u32>,
    pub billing_reason: Option<String>,
    pub created: Option<i64>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub lines: Vec<InvoiceLine>,
    pub more_lines: bool,
    pub payments: BTreeMap<String, PaymentRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::OrderEvidence;
    use crate::domain::ids::EventId;

    fn meta(id: &str, created: i64) -> EventMeta {
        EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new(id),
            event_type: "invoice.updated".into(),
            created,
            millis: 0,
            livemode: false,
            api_version: None,
        }
    }

    fn snapshot(status: &str, attempt: u32) -> InvoiceSnapshot {
        InvoiceSnapshot {
            id: InvoiceId::new("in_1"),
            customer: CustomerId::new("cus_1"),
            subscription: None,
            status: Some(status.into()),
            number: (status != "draft").then(|| "N-1".to_owned()),
            currency: Some("usd".into()),
            amount_due: Some(1000),
            amount_paid: Some(0),
            amount_remaining: Some(1000),
            total: Some(1000),
            hosted_invoice_url: (status != "draft").then(|| "https://h/1".to_owned()),
            invoice_pdf: None,
            due_date: None,
            next_payment_attempt: None,
            attempt_count: Some(attempt),
            customer_email: Some(EmailAddress::new("someone@example.com")),
            billing_reason: Some("subscription_cycle".into()),
            created: Some(5),
            period_start: None,
            period_end: None,
            lines: Vec::new(),
            more_lines: false,
            user_hint: None,
        }
    }

    fn event(kind: InvoiceEventKind, status: &str, attempt: u32) -> InvoiceEvent {
        InvoiceEvent {
            kind,
            snapshot: snapshot(status, attempt),
            evidence: OrderEvidence::default(),
        }
    }

    /// An event of the table: its kind, its snapshot's status and `attempt_count`.
    type Step = (InvoiceEventKind, &'static str, u32);

    fn status_after(events: &[Step]) -> InvoiceStatus {
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        for (i, (kind, status, attempt)) in events.iter().enumerate() {
            invoice.apply(
                &meta(&format!("evt_{i}"), 10 + i as i64),
                &event(*kind, status, *attempt),
            );
        }
        invoice.status()
    }

    #[test]
    fn the_status_follows_the_precedence_table() {
        use InvoiceEventKind::*;
        use InvoiceStatus as S;
        let cases: [(&[Step], InvoiceStatus); 9] = [
            (&[(Created, "draft", 0)], S::Pending),
            (&[(Created, "draft", 0), (Deleted, "draft", 0)], S::Deleted),
            (
                &[(Finalized, "open", 0), (ActionRequired, "open", 1)],
                S::Pending,
            ),
            (
                &[(ActionRequired, "open", 1), (Failed, "open", 1)],
                S::Failed,
            ),
            // A newer attempt that only awaits authentication is no longer a failure.
            (
                &[(Failed, "open", 1), (ActionRequired, "open", 2)],
                S::Pending,
            ),
            (
                &[
                    (Failed, "open", 1),
                    (MarkedUncollectible, "uncollectible", 1),
                ],
                S::Uncollectible,
            ),
            (
                &[(MarkedUncollectible, "uncollectible", 1), (Paid, "paid", 2)],
                S::Paid,
            ),
            (
                &[
                    (MarkedUncollectible, "uncollectible", 1),
                    (Voided, "void", 1),
                ],
                S::Voided,
            ),
            // An update that reports the payment settles it like `invoice.paid`.
            (&[(Finalized, "open", 0), (Updated, "paid", 1)], S::Paid),
        ];
        for (events, want) in cases {
            assert_eq!(status_after(events), want, "{events:?}");
            // The same kinds the other way round: the status depends on the set only.
            let reversed: Vec<Step> = events.iter().rev().copied().collect();
            assert_eq!(status_after(&reversed), want, "{reversed:?} (reversed)");
        }
    }

    #[test]
    fn a_draft_chosen_as_latest_does_not_hide_the_number_or_hosted_page() {
        // In one second: finalized (rank 2), then an update (rank 3) that Stripe sent for the
        // draft before finalizing; the update ranks later, yet the number stays.
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        invoice.apply(
            &meta("evt_f", 10),
            &event(InvoiceEventKind::Finalized, "open", 0),
        );
        invoice.apply(
            &meta("evt_u", 10),
            &event(InvoiceEventKind::Updated, "draft", 0),
        );
        let view = invoice.view(None);
        assert_eq!(view.provider_status.as_deref(), Some("draft"));
        assert_eq!(view.number.as_deref(), Some("N-1"));
        assert_eq!(view.hosted_invoice_url.as_deref(), Some("https://h/1"));
    }

    #[test]
    fn same_second_updates_are_ordered_by_what_they_replaced() {
        let update = |amount: i64, before: i64| {
            let mut e = event(InvoiceEventKind::Updated, "draft", 0);
            e.snapshot.amount_due = Some(amount);
            e.evidence = OrderEvidence {
                values: [("amount_due".to_owned(), amount.to_string())].into(),
                previous: [("amount_due".to_owned(), before.to_string())].into(),
            };
            e
        };
        // True order: 1000 → 1500 (evt_z) → 2000 (evt_a); ids disagree with it.
        let (first, second) = (update(1500, 1000), update(2000, 1500));
        for order in [[0, 1], [1, 0]] {
            let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
            for i in order {
                let (m, e) = if i == 0 {
                    (meta("evt_z", 10), &first)
                } else {
                    (meta("evt_a", 10), &second)
                };
                assert_eq!(invoice.apply(&m, e), Offer::Taken);
            }
            assert_eq!(invoice.view(None).amount_due, Some(2000), "{order:?}");
        }
    }

    #[test]
    fn identical_twins_are_kept_once_and_a_redelivery_changes_nothing() {
        let paid = event(InvoiceEventKind::Paid, "paid", 1);
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        invoice.apply(&meta("evt_paid", 10), &paid);
        invoice.apply(&meta("evt_succeeded", 10), &paid);
        assert_eq!(invoice.snapshots.candidates.len(), 1);
        assert_eq!(
            invoice.snapshots.candidates[0].version.event_id,
            "evt_succeeded"
        );
        assert_eq!(invoice.apply(&meta("evt_paid", 10), &paid), Offer::Older);
    }

    /// The kept snapshots are stored as before the one same-second container (a bare list of
    /// `{"version", "snapshot", "evidence"}`), and such an item reads back the same.
    #[test]
    fn an_invoice_item_keeps_its_stored_shape() {
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        let paid = event(InvoiceEventKind::Paid, "paid", 1);
        invoice.apply(&meta("evt_paid", 10), &paid);
        let text = serde_json::to_string(&invoice).expect("json");
        let snap = serde_json::to_string(&paid.snapshot).expect("json");
        let old = format!(
            r#""snapshots":[{{"version":{{"created":10,"rank":5,"event_id":"evt_paid"}},"snapshot":{snap},"evidence":{{}}}}]"#
        );
        assert!(text.contains(&old), "{text}");
        let read: Invoice = serde_json::from_str(&text).expect("readable");
        assert_eq!(read, invoice);
        let empty = Invoice::new(Provider::STRIPE, InvoiceId::new("in_2"));
        let text = serde_json::to_string(&empty).expect("json");
        assert!(!text.contains("snapshots"), "{text}");
        assert_eq!(
            serde_json::from_str::<Invoice>(&text).expect("readable"),
            empty
        );
    }

    #[test]
    fn an_email_address_never_shows_in_debug_output() {
        let text = format!("{:?}", event(InvoiceEventKind::Created, "draft", 0));
        assert!(!text.contains("someone@example.com"), "{text}");
        assert!(text.contains("EmailAddress(<redacted>)"));
    }
}
