//! A subscription's periods: the stretches of time its settled invoices cover, its trial, and
//! whether they fit together while the provider calls the subscription active.
//!
//! Each settled invoice of a subscription (paid, voided, written off) says which stretch it
//! billed: its subscription lines' service period (proration lines excluded: they re-bill part
//! of a period already counted). The record keeps them by start, joined so that every delivery
//! order keeps the same ones, and bounded to the newest [`PERIODS_KEPT`].
//!
//! **Invalid**: a subscription the provider calls `active` or `trialing` whose known periods,
//! in start order, overlap (one starts before the previous ends) or leave a gap (one starts
//! after the previous ended). An overlap opened by a plan change that restarts the billing
//! cycle (`billing_reason = subscription_update`) is Stripe's own behaviour and not invalid. A
//! gap can also mean that an invoice event has not arrived yet: it heals when it does.

use super::facts::Settlement;
pub use super::facts::Span;
use super::ids::InvoiceId;
use super::status::SubscriptionStatus;
use super::version::Offer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Periods kept per subscription (two years of monthly billing).
pub const PERIODS_KEPT: usize = 24;

/// What one settled invoice says about the period it billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePeriod {
    pub end: i64,
    pub invoice: InvoiceId,
    pub settled: Settlement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, … verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_reason: Option<String>,
}

impl InvoicePeriod {
    /// The order of two claims on one start: the invoice's own facts joined, else a
    /// deterministic choice (the more settled, then the longer, then the greater id).
    fn key(&self) -> (Settlement, i64, &InvoiceId) {
        (self.settled, self.end, &self.invoice)
    }
}

/// What one settled invoice event contributes to its subscription's periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodClaim {
    pub span: Span,
    pub period: InvoicePeriod,
}

/// Joins a claim into `periods`: commutative, idempotent, bounded. Returns `Taken` when the
/// kept periods changed.
pub fn join(periods: &mut BTreeMap<i64, InvoicePeriod>, claim: &PeriodClaim) -> Offer {
    let before = periods.get(&claim.span.start).cloned();
    let new = &claim.period;
    let merged = match periods.get(&claim.span.start) {
        Some(current) if current.invoice == new.invoice => InvoicePeriod {
            end: current.end.max(new.end),
            invoice: current.invoice.clone(),
            settled: current.settled.max(new.settled),
            amount_paid: current.amount_paid.max(new.amount_paid),
            billing_reason: current
                .billing_reason
                .clone()
                .or_else(|| new.billing_reason.clone()),
        },
        Some(current) if current.key() >= new.key() => current.clone(),
        _ => new.clone(),
    };
    periods.insert(claim.span.start, merged);
    while periods.len() > PERIODS_KEPT {
        periods.pop_first();
    }
    if periods.get(&claim.span.start) == before.as_ref() {
        Offer::Same
    } else {
        Offer::Taken
    }
}

/// How a period came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// Paid by its invoice.
    Paid,
    /// A trial (the subscription's trial, or the free first invoice that covers it).
    Trial,
    /// Its invoice was voided: the time passed unbilled.
    Voided,
    /// Its invoice was written off (it may still be paid).
    Uncollectible,
    /// Granted by the operator (`billing grant`).
    System,
    /// Bought as a gift by another customer (Checkout with gift metadata).
    Gift,
    /// A phase of a subscription schedule that has not begun.
    Scheduled,
}

/// One period as the billing answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodView {
    pub start: i64,
    pub end: i64,
    pub kind: PeriodKind,
    /// The invoice that settled it (`None` for a trial no invoice was seen for).
    pub invoice: Option<InvoiceId>,
    /// A system period's reason and grantor, a gift's buyer: who and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a subscription's periods do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalid {
    /// `gap` or `overlap`.
    pub reason: String,
    /// Where: the end of the earlier period and the start of the later one.
    pub previous_end: i64,
    pub next_start: i64,
}

/// The periods of a subscription in start order: its settled invoices' periods and its trial
/// (`trial` from the latest snapshot). A free invoice inside the trial is the trial.
pub fn periods(invoices: &BTreeMap<i64, InvoicePeriod>, trial: Option<Span>) -> Vec<PeriodView> {
    let in_trial = |start: i64, end: i64| trial.is_some_and(|t| start >= t.start && end <= t.end);
    let mut out: Vec<PeriodView> = invoices
        .iter()
        .map(|(&start, p)| PeriodView {
            start,
            end: p.end,
            kind: match p.settled {
                Settlement::Paid if p.amount_paid == Some(0) && in_trial(start, p.end) => {
                    PeriodKind::Trial
                }
                Settlement::Paid => PeriodKind::Paid,
                Settlement::Voided => PeriodKind::Voided,
                Settlement::Uncollectible => PeriodKind::Uncollectible,
            },
            invoice: Some(p.invoice.clone()),
            note: None,
        })
        .collect();
    if let Some(t) = trial.filter(|t| t.end > t.start) {
        let covered = out
            .iter()
            .any(|p| p.kind == PeriodKind::Trial && p.start == t.start);
        let older_than_kept = invoices.len() >= PERIODS_KEPT
            && invoices
                .first_key_value()
                .is_some_and(|(&s, _)| t.start < s);
        if !covered && !older_than_kept {
            out.push(PeriodView {
                start: t.start,
                end: t.end,
                kind: PeriodKind::Trial,
                invoice: None,
                note: None,
            });
            out.sort_by_key(|p| (p.start, p.end));
        }
    }
    out
}

/// Whether the periods fit together while `status` says the subscription runs (see the module
/// documentation); the first misfit found, in start order.
pub fn validity(
    status: &SubscriptionStatus,
    periods: &[PeriodView],
    invoices: &BTreeMap<i64, InvoicePeriod>,
) -> Option<Invalid> {
    use SubscriptionStatus as S;
    let runs = match status {
        S::Active | S::Trialing => true,
        S::Incomplete | S::IncompleteExpired | S::PastDue | S::Canceled | S::Unpaid | S::Paused => {
            false
        }
        // A word the model does not know says nothing about whether the subscription runs:
        // no misfit is claimed on it (docs/MODEL.md, "A status the model does not know").
        S::Unknown(_) => false,
    };
    if !runs {
        return None;
    }
    let restarts_cycle = |p: &PeriodView| {
        invoices
            .get(&p.start)
            .and_then(|i| i.billing_reason.as_deref())
            == Some("subscription_update")
    };
    periods.windows(2).find_map(|pair| {
        let (earlier, later) = (&pair[0], &pair[1]);
        let misfit = if later.start > earlier.end {
            "gap"
        } else if later.start < earlier.end && !restarts_cycle(later) {
            "overlap"
        } else {
            return None;
        };
        Some(Invalid {
            reason: misfit.into(),
            previous_end: earlier.end,
            next_start: later.start,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn claim(invoice: &str, start: i64, end: i64, settled: Settlement) -> PeriodClaim {
        PeriodClaim {
            span: Span { start, end },
            period: InvoicePeriod {
                end,
                invoice: InvoiceId::new(invoice),
                settled,
                amount_paid: Some(1000),
                billing_reason: Some("subscription_cycle".into()),
            },
        }
    }

    fn joined(claims: &[PeriodClaim]) -> BTreeMap<i64, InvoicePeriod> {
        let mut map = BTreeMap::new();
        for c in claims {
            join(&mut map, c);
        }
        map
    }

    #[test]
    fn every_order_of_the_claims_keeps_the_same_periods() {
        let mut claims: Vec<PeriodClaim> = (0..30)
            .map(|i| {
                claim(
                    &format!("in_{i}"),
                    i * 30 * DAY,
                    (i + 1) * 30 * DAY,
                    Settlement::Paid,
                )
            })
            .collect();
        // Two claims on one start: an uncollectible invoice later paid, and a rival invoice.
        claims.push(claim(
            "in_5",
            5 * 30 * DAY,
            6 * 30 * DAY,
            Settlement::Uncollectible,
        ));
        claims.push(claim(
            "in_x",
            7 * 30 * DAY,
            7 * 30 * DAY + DAY,
            Settlement::Voided,
        ));
        let forward = joined(&claims);
        claims.reverse();
        assert_eq!(joined(&claims), forward);
        claims.rotate_left(11);
        assert_eq!(joined(&claims), forward);
        assert_eq!(forward.len(), PERIODS_KEPT);
        assert_eq!(forward[&(7 * 30 * DAY)].invoice, InvoiceId::new("in_7"));
        // A claim older than every kept period changes nothing.
        let mut map = forward.clone();
        assert_eq!(join(&mut map, &claims[0].clone()), Offer::Same);
        assert_eq!(map, forward);
    }

    #[test]
    fn contiguous_periods_are_valid_and_a_gap_or_overlap_is_not() {
        let map = joined(&[
            claim("in_1", 0, 30 * DAY, Settlement::Paid),
            claim("in_2", 30 * DAY, 60 * DAY, Settlement::Paid),
        ]);
        let list = periods(&map, None);
        assert_eq!(validity(&SubscriptionStatus::Active, &list, &map), None);

        let gap = joined(&[
            claim("in_1", 0, 30 * DAY, Settlement::Paid),
            claim("in_3", 60 * DAY, 90 * DAY, Settlement::Paid),
        ]);
        let found =
            validity(&SubscriptionStatus::Active, &periods(&gap, None), &gap).expect("a gap");
        assert_eq!(
            (found.reason.as_str(), found.previous_end),
            ("gap", 30 * DAY)
        );
        // Not invalid while the provider itself says the subscription does not run.
        assert_eq!(
            validity(&SubscriptionStatus::PastDue, &periods(&gap, None), &gap),
            None
        );
        // Nor while its status is a word the model does not know: no misfit is claimed on it.
        let unknown = SubscriptionStatus::parse("paused_for_review");
        assert_eq!(validity(&unknown, &periods(&gap, None), &gap), None);

        let mut overlap = joined(&[
            claim("in_1", 0, 30 * DAY, Settlement::Paid),
            claim("in_2", 20 * DAY, 50 * DAY, Settlement::Paid),
        ]);
        let list = periods(&overlap, None);
        assert_eq!(
            validity(&SubscriptionStatus::Active, &list, &overlap)
                .unwrap()
                .reason,
            "overlap"
        );
        // The same overlap opened by a plan change that restarts the cycle is Stripe's own.
        overlap.get_mut(&(20 * DAY)).unwrap().billing_reason = Some("subscription_update".into());
        assert_eq!(validity(&SubscriptionStatus::Active, &list, &overlap), None);
    }

    #[test]
    fn the_trial_is_a_period_and_its_free_invoice_is_the_trial() {
        let trial = Span {
            start: 0,
            end: 14 * DAY,
        };
        let mut free = claim("in_0", 0, 14 * DAY, Settlement::Paid);
        free.period.amount_paid = Some(0);
        let map = joined(&[free, claim("in_1", 14 * DAY, 44 * DAY, Settlement::Paid)]);
        let list = periods(&map, Some(trial));
        let kinds: Vec<_> = list.iter().map(|p| (p.kind, p.invoice.is_some())).collect();
        assert_eq!(kinds, [(PeriodKind::Trial, true), (PeriodKind::Paid, true)]);
        assert_eq!(validity(&SubscriptionStatus::Active, &list, &map), None);

        // No invoice seen for the trial: the trial still fills the time before the first.
        let map = joined(&[claim("in_1", 14 * DAY, 44 * DAY, Settlement::Paid)]);
        let list = periods(&map, Some(trial));
        assert_eq!(list[0].kind, PeriodKind::Trial);
        assert_eq!(list[0].invoice, None);
        assert_eq!(validity(&SubscriptionStatus::Active, &list, &map), None);
    }
}
