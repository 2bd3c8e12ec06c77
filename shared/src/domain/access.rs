//! The access rule: what a user may do, derived from billing state by pure functions.
//!
//! | subscription state                         | paid tier | standing          | billing status |
//! |--------------------------------------------|-----------|-------------------|----------------|
//! | deleted (any reason)                       | no        | ended             | CANCELLED      |
//! | trialing                                   | yes       | trial             | DONE           |
//! | active, newest invoice paid or none yet    | yes       | good              | DONE           |
//! | active + cancel_at_period_end              | yes       | cancelling        | DONE           |
//! | active, newest invoice failed              | no        | overdue           | PAST_DUE       |
//! | active, newest invoice needs action (SCA)  | no        | action_required   | REQUIRED       |
//! | past_due, unpaid, invoice needs action     | no        | action_required   | REQUIRED       |
//! | past_due, unpaid                           | no        | overdue           | PAST_DUE       |
//! | incomplete                                 | no        | action_required   | REQUIRED       |
//! | canceled (not yet deleted)                 | no        | ended             | CANCELLED      |
//! | incomplete_expired, paused, unknown status | no        | inactive          | INACTIVE       |
//! | no subscription at all                     | no        | none              | REQUIRED       |
//!
//! A one-time purchase grants its product by the table of `customer/purchases.rs` (its access is
//! part of the customer aggregate, which books it for the user item).
//!
//! A purchase finds its charge by its payment intent (a one-off invoice's by the invoice the
//! charge names). Disputes and refunds of a subscription invoice's charge are kept with the
//! customer but never change the subscription's access: Stripe does not cancel a subscription
//! over a dispute.
//!
//! A gift (a purchase with gift metadata, see `events::Gift`) grants its recipient its tier for
//! its period, under the source `gift:<provider>:<buyer>`, while its reason is `gift` (paid,
//! not fully refunded, no dispute lost).

pub use super::customer::purchases::{
    newest_first, PurchaseAccess, PurchaseBook, PurchaseDispute, PurchaseSummary, PurchaseTotals,
    GIFT, PRODUCTS_SHOWN, PURCHASES_SHOWN,
};
use super::customer::{CustomerBilling, SubscriptionRecord};
use super::events::PaymentOutcome;
use super::ids::{CustomerId, Provider, SubscriptionId, UserId};
use super::status::SubscriptionStatus;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Seed 003's billing statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BillingStatus {
    /// Payment is needed: no subscription yet, an incomplete first payment, or an SCA challenge.
    Required,
    /// Paid up (or in a trial): access granted.
    Done,
    /// A payment failed; access withdrawn until it is paid.
    PastDue,
    /// The subscription exists but does not bill: expired before paying, paused, unknown state.
    Inactive,
    /// The subscription was cancelled or deleted.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Good,
    Trial,
    Cancelling,
    Overdue,
    ActionRequired,
    Inactive,
    Ended,
    None,
}

/// How tiers are named and ranked; configured once (see `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierPolicy {
    /// `price id → tier` overrides, checked first.
    pub price_tiers: HashMap<String, String>,
    /// Tiers from lowest to highest; a tier not listed ranks below every listed one.
    pub order: Vec<String>,
}

impl TierPolicy {
    fn tier_of(
        &self,
        price: Option<&str>,
        hint: Option<&str>,
        product: Option<&str>,
    ) -> Option<String> {
        price
            .and_then(|p| self.price_tiers.get(p).cloned())
            .or_else(|| hint.map(str::to_owned))
            // Unmapped: the product id stands in as the tier, so access is never silently lost.
            .or_else(|| product.map(str::to_owned))
    }

    fn rank(&self, tier: Option<&str>) -> usize {
        tier.and_then(|t| self.order.iter().position(|o| o == t))
            .map_or(0, |p| p + 1)
    }
}

/// The access one subscription gives, with the facts the read route shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionAccess {
    pub provider: Provider,
    pub customer: CustomerId,
    pub subscription: SubscriptionId,
    pub grants: bool,
    pub tier: Option<String>,
    /// The subscription's status, or `granted` / `gift` for a fixed period; the plain word.
    pub status: SourceStatus,
    pub standing: Standing,
    pub billing_status: BillingStatus,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    pub cancellation_reason: Option<String>,
    /// What the newest invoice event said about paying this subscription.
    pub payment: Option<PaymentOutcome>,
    /// The invoice behind `payment` (its hosted page is kept for "action required" emails).
    pub invoice: Option<String>,
    /// `created` of the newest event behind this view (orders subscriptions that grant nothing).
    pub as_of: i64,
    /// Set while the provider says the subscription runs but its periods overlap or leave a
    /// gap (see [`super::periods`]); access still follows the provider's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<super::periods::Invalid>,
    /// A fixed period (granted by the operator, or a gift) that ends at this time without any
    /// event: it grants only before it; see [`best_access`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
}

/// The status of one source of access: a subscription's, or a fixed period's (an operator's
/// grant, a gift). Stored and sent as the plain word, as when it was a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    Subscription(SubscriptionStatus),
    /// A period the operator granted ([`GRANTED`]).
    Granted,
    /// A gift bought by another customer ([`GIFT`]).
    Gift,
}

impl SourceStatus {
    pub fn as_str(&self) -> &str {
        match self {
            SourceStatus::Subscription(s) => s.as_str(),
            SourceStatus::Granted => GRANTED,
            SourceStatus::Gift => GIFT,
        }
    }

    /// The word read back: `granted` and `gift` name the fixed periods, any other word a
    /// subscription's status (Stripe has no status of either name).
    pub fn parse(word: &str) -> Self {
        match word {
            GRANTED => SourceStatus::Granted,
            GIFT => SourceStatus::Gift,
            other => SourceStatus::Subscription(SubscriptionStatus::parse(other)),
        }
    }
}

impl From<&str> for SourceStatus {
    fn from(word: &str) -> Self {
        SourceStatus::parse(word)
    }
}

impl From<SubscriptionStatus> for SourceStatus {
    fn from(status: SubscriptionStatus) -> Self {
        SourceStatus::Subscription(status)
    }
}

impl std::fmt::Display for SourceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SourceStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SourceStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(SourceStatus::parse(&word))
    }
}

impl SubscriptionAccess {
    /// Whether it grants at `now`: a fixed period lapses by itself.
    pub fn grants_at(&self, now: i64) -> bool {
        self.grants && self.ends_at.is_none_or(|end| now < end)
    }
}

/// The rule for one subscription. `None` while no snapshot of it has arrived.
pub fn subscription_access(
    provider: Provider,
    customer: &CustomerId,
    id: &SubscriptionId,
    record: &SubscriptionRecord,
    tiers: &TierPolicy,
) -> Option<SubscriptionAccess> {
    let snap = &record.latest()?.candidate.snapshot;
    let standing = record.payment();
    let payment = standing.map(|(o, _)| o);
    let (grants, standing_now, billing_status) = if record.deletion.is_some() {
        (false, Standing::Ended, BillingStatus::Cancelled)
    } else {
        rule(&snap.status, payment, snap.cancel_at_period_end)
    };
    Some(SubscriptionAccess {
        provider,
        customer: customer.clone(),
        subscription: id.clone(),
        grants,
        tier: tiers.tier_of(
            snap.price_id.as_deref(),
            snap.tier_hint.as_deref(),
            snap.product_id.as_deref(),
        ),
        status: SourceStatus::Subscription(snap.status.clone()),
        standing: standing_now,
        billing_status,
        current_period_end: snap.current_period_end,
        cancel_at_period_end: snap.cancel_at_period_end,
        trial_end: snap.trial_end,
        cancellation_reason: record
            .deletion
            .as_ref()
            .and_then(|d| d.value.reason.clone())
            .or_else(|| snap.cancellation_reason.clone()),
        payment,
        invoice: standing.map(|(_, invoice)| invoice.to_string()),
        as_of: record.as_of(),
        invalid: record.invalid(),
        ends_at: None,
    })
}

/// The table above for a subscription that is not deleted. Every status is decided here by
/// name, the unknown one too: a word the model does not know grants nothing (as inactive),
/// whatever it may mean, until a known status arrives (docs/MODEL.md).
fn rule(
    status: &SubscriptionStatus,
    payment: Option<PaymentOutcome>,
    cancel_at_period_end: bool,
) -> (bool, Standing, BillingStatus) {
    use SubscriptionStatus as S;
    let overdue = (false, Standing::Overdue, BillingStatus::PastDue);
    let action = (false, Standing::ActionRequired, BillingStatus::Required);
    let inactive = (false, Standing::Inactive, BillingStatus::Inactive);
    match status {
        S::Trialing => (true, Standing::Trial, BillingStatus::Done),
        S::Active => match payment {
            Some(PaymentOutcome::Failed) => overdue,
            Some(PaymentOutcome::ActionRequired) => action,
            Some(PaymentOutcome::Paid) | None if cancel_at_period_end => {
                (true, Standing::Cancelling, BillingStatus::Done)
            }
            Some(PaymentOutcome::Paid) | None => (true, Standing::Good, BillingStatus::Done),
        },
        // Stripe moves a renewal that needs authentication to past_due as well: what the
        // customer must do is authenticate, not update a card.
        S::PastDue | S::Unpaid => match payment {
            Some(PaymentOutcome::ActionRequired) => action,
            Some(PaymentOutcome::Failed | PaymentOutcome::Paid) | None => overdue,
        },
        S::Incomplete => action,
        S::Canceled => (false, Standing::Ended, BillingStatus::Cancelled),
        S::IncompleteExpired | S::Paused => inactive,
        S::Unknown(_) => inactive,
    }
}

/// Every subscription's access for one customer, in subscription-id order. A deleted customer's
/// subscriptions have all ended (the provider cancels them with the customer).
pub fn customer_access(state: &CustomerBilling, tiers: &TierPolicy) -> Vec<SubscriptionAccess> {
    let granted = state.grants.iter().map(|(id, g)| SubscriptionAccess {
        provider: state.provider,
        customer: state.customer.clone(),
        subscription: SubscriptionId::new(id.clone()),
        grants: true,
        tier: Some(g.tier.clone()),
        status: SourceStatus::Granted,
        standing: Standing::Good,
        billing_status: BillingStatus::Done,
        current_period_end: Some(g.end),
        cancel_at_period_end: true,
        trial_end: None,
        cancellation_reason: None,
        payment: None,
        invoice: None,
        as_of: g.start,
        invalid: None,
        ends_at: Some(g.end),
    });
    let subscribed = state.subscriptions.iter().filter_map(|(id, rec)| {
        let mut access = subscription_access(state.provider, &state.customer, id, rec, tiers)?;
        if state.deleted.is_some() && access.standing != Standing::Ended {
            access.grants = false;
            access.standing = Standing::Ended;
            access.billing_status = BillingStatus::Cancelled;
            access.cancellation_reason = Some(CUSTOMER_DELETED.into());
        }
        Some(access)
    });
    subscribed.chain(granted).collect()
}

/// The status of a period the operator granted (`billing grant`).
pub const GRANTED: &str = "granted";

/// Every purchase's access for one customer, in session-id order (the table of
/// `customer/purchases.rs`).
pub fn purchase_access(state: &CustomerBilling) -> Vec<PurchaseAccess> {
    state.purchase_access()
}

/// Every gift the customer bought, as the access it gives its recipient (granting while the
/// purchase is paid and not refunded), with the recipient; in session-id order.
pub fn gift_access(state: &CustomerBilling) -> Vec<(UserId, SubscriptionAccess)> {
    let bought = purchase_access(state);
    state
        .purchases
        .values()
        .filter_map(|p| {
            let gift = p.gift.as_ref()?;
            let grants = bought
                .iter()
                .any(|b| b.purchase == p.session && b.reason == GIFT);
            let access = SubscriptionAccess {
                provider: state.provider,
                customer: state.customer.clone(),
                subscription: SubscriptionId::new(format!("gift_{}", p.session)),
                grants,
                tier: Some(gift.tier.clone()),
                status: SourceStatus::Gift,
                standing: if grants {
                    Standing::Good
                } else {
                    Standing::Ended
                },
                billing_status: if grants {
                    BillingStatus::Done
                } else {
                    BillingStatus::Cancelled
                },
                current_period_end: Some(gift.end),
                cancel_at_period_end: true,
                trial_end: None,
                cancellation_reason: None,
                payment: None,
                invoice: None,
                as_of: gift.start,
                invalid: None,
                ends_at: Some(gift.end),
            };
            Some((gift.recipient.clone(), access))
        })
        .collect()
}

/// The cancellation reason shown for a subscription that ended with its customer's deletion.
pub const CUSTOMER_DELETED: &str = "customer_deleted";

/// A user's effective access: the best entitlement in good standing over all their sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub tier: Option<String>,
    pub status: Option<String>,
    pub standing: Standing,
    pub billing_status: BillingStatus,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// The subscription that decides this access, if any.
    pub subscription: Option<SubscriptionId>,
    /// The features (Stripe Entitlements lookup keys) of every customer linked to the user,
    /// sorted; beside the tier, not part of it: Stripe decides them from the subscriptions.
    #[serde(default)]
    pub features: Vec<String>,
}

impl Access {
    pub fn none() -> Self {
        Self {
            tier: None,
            status: None,
            standing: Standing::None,
            billing_status: BillingStatus::Required,
            current_period_end: None,
            cancel_at_period_end: false,
            subscription: None,
            features: Vec::new(),
        }
    }

    pub fn grants_paid_tier(&self) -> bool {
        matches!(
            self.standing,
            Standing::Good | Standing::Trial | Standing::Cancelling
        )
    }
}

/// Picks the best entitlement: among subscriptions that grant, the highest tier (then the
/// latest period end); if none grants, the most recently changed subscription explains why.
pub fn best_access<'a>(
    subs: impl IntoIterator<Item = &'a SubscriptionAccess>,
    tiers: &TierPolicy,
    now: i64,
) -> Access {
    let subs: Vec<&SubscriptionAccess> = subs.into_iter().collect();
    let granting = subs.iter().filter(|s| s.grants_at(now)).max_by(|a, b| {
        (
            tiers.rank(a.tier.as_deref()),
            a.current_period_end,
            &a.subscription,
        )
            .cmp(&(
                tiers.rank(b.tier.as_deref()),
                b.current_period_end,
                &b.subscription,
            ))
    });
    let chosen = granting.or_else(|| {
        subs.iter()
            .max_by(|a, b| (a.as_of, &a.subscription).cmp(&(b.as_of, &b.subscription)))
    });
    match chosen {
        None => Access::none(),
        // A lapsed fixed period explains the answer as ended.
        Some(s) if !s.grants_at(now) && s.ends_at.is_some() => Access {
            status: Some(s.status.to_string()),
            standing: Standing::Ended,
            billing_status: BillingStatus::Cancelled,
            current_period_end: s.current_period_end,
            subscription: Some(s.subscription.clone()),
            ..Access::none()
        },
        Some(s) => Access {
            tier: s.grants.then(|| s.tier.clone()).flatten(),
            status: Some(s.status.to_string()),
            standing: s.standing,
            billing_status: s.billing_status,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            subscription: Some(s.subscription.clone()),
            features: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::{Candidate, Deletion, InvoiceRecord, Snapshots};
    use crate::domain::events::PurchaseKind;
    use crate::domain::events::Settlement;
    use crate::domain::events::SubscriptionSnapshot;
    use crate::domain::ids::InvoiceId;
    use crate::domain::ids::ProductId;
    use crate::domain::invoice::Attempt;
    use crate::domain::version::{Register, Version};

    fn record(
        status: &str,
        cancel: bool,
        payment: Option<PaymentOutcome>,
        deleted: bool,
    ) -> SubscriptionRecord {
        let v = Version::new(1, 0, "evt");
        let snapshot = SubscriptionSnapshot {
            id: SubscriptionId::new("sub"),
            customer: CustomerId::new("cus"),
            status: SubscriptionStatus::parse(status),
            price_id: Some("price_pro".into()),
            product_id: Some("prod".into()),
            tier_hint: None,
            current_period_start: Some(0),
            current_period_end: Some(100),
            cancel_at_period_end: cancel,
            cancel_at: None,
            trial_end: None,
            trial_start: None,
            cancellation_reason: None,
            user_claim: None,
        };
        let invoice = payment.map(|outcome| InvoiceRecord {
            created: 1,
            dated: true,
            last_event: 1,
            settled: (outcome == PaymentOutcome::Paid).then_some(Settlement::Paid),
            attempt: (outcome != PaymentOutcome::Paid).then_some(Attempt {
                number: 1,
                failed: outcome == PaymentOutcome::Failed,
                action_required: outcome == PaymentOutcome::ActionRequired,
            }),
            hosted_invoice_url: None,
        });
        SubscriptionRecord {
            snapshots: Some(Snapshots::from_candidates(vec![Candidate {
                version: v.clone(),
                snapshot,
                evidence: Default::default(),
            }])),
            deletion: deleted.then(|| Register {
                version: v.clone(),
                value: Deletion {
                    reason: Some("payment_failed".into()),
                },
            }),
            invoices: invoice
                .map(|i| (InvoiceId::new("in"), i))
                .into_iter()
                .collect(),
            periods: Default::default(),
        }
    }

    fn rule(r: &SubscriptionRecord) -> (bool, Standing, BillingStatus) {
        let a = subscription_access(
            Provider::STRIPE,
            &CustomerId::new("cus"),
            &SubscriptionId::new("sub"),
            r,
            &TierPolicy::default(),
        )
        .expect("snapshot present");
        (a.grants, a.standing, a.billing_status)
    }

    /// One assertion per row of the access table of docs/MODEL.md.
    #[test]
    fn the_access_table() {
        use BillingStatus::*;
        use PaymentOutcome::*;
        let rows = [
            (
                record("active", false, None, true),
                (false, Standing::Ended, Cancelled),
            ),
            (
                record("trialing", false, None, false),
                (true, Standing::Trial, Done),
            ),
            (
                record("active", false, None, false),
                (true, Standing::Good, Done),
            ),
            (
                record("active", false, Some(Paid), false),
                (true, Standing::Good, Done),
            ),
            (
                record("active", true, Some(Paid), false),
                (true, Standing::Cancelling, Done),
            ),
            (
                record("active", false, Some(Failed), false),
                (false, Standing::Overdue, PastDue),
            ),
            (
                record("active", true, Some(ActionRequired), false),
                (false, Standing::ActionRequired, Required),
            ),
            (
                record("past_due", false, Some(Paid), false),
                (false, Standing::Overdue, PastDue),
            ),
            (
                record("past_due", false, Some(ActionRequired), false),
                (false, Standing::ActionRequired, Required),
            ),
            (
                record("unpaid", false, None, false),
                (false, Standing::Overdue, PastDue),
            ),
            (
                record("incomplete", false, None, false),
                (false, Standing::ActionRequired, Required),
            ),
            (
                record("canceled", false, None, false),
                (false, Standing::Ended, Cancelled),
            ),
            (
                record("incomplete_expired", false, None, false),
                (false, Standing::Inactive, Inactive),
            ),
            (
                record("paused", false, None, false),
                (false, Standing::Inactive, Inactive),
            ),
            (
                record("some_future_status", false, None, false),
                (false, Standing::Inactive, Inactive),
            ),
        ];
        for (i, (rec, expected)) in rows.iter().enumerate() {
            assert_eq!(rule(rec), *expected, "row {i}");
        }
        // A deletion ends access whatever the snapshot says, and keeps its reason.
        let deleted = subscription_access(
            Provider::STRIPE,
            &CustomerId::new("cus"),
            &SubscriptionId::new("sub"),
            &record("trialing", false, Some(Paid), true),
            &TierPolicy::default(),
        )
        .expect("present");
        assert!(!deleted.grants);
        assert_eq!(
            deleted.cancellation_reason.as_deref(),
            Some("payment_failed")
        );
        assert_eq!(best_access([], &TierPolicy::default(), 0), Access::none());
    }

    /// A status Stripe adds tomorrow is not `canceled` or any other known one: it grants
    /// nothing, and the access names it verbatim (stored and sent as the same word).
    #[test]
    fn an_unknown_status_grants_nothing_and_is_shown_as_its_word() {
        let a = subscription_access(
            Provider::STRIPE,
            &CustomerId::new("cus"),
            &SubscriptionId::new("sub"),
            &record(
                "paused_for_review",
                false,
                Some(PaymentOutcome::Paid),
                false,
            ),
            &TierPolicy::default(),
        )
        .expect("present");
        assert_eq!(
            (a.grants, a.standing, a.billing_status),
            (false, Standing::Inactive, BillingStatus::Inactive)
        );
        assert_eq!(
            a.status,
            SourceStatus::Subscription(SubscriptionStatus::Unknown("paused_for_review".into()))
        );
        let json = serde_json::to_value(&a).expect("json");
        assert_eq!(json["status"], "paused_for_review");
        for word in ["granted", "gift", "active", "paused_for_review"] {
            let read: SourceStatus =
                serde_json::from_value(serde_json::json!(word)).expect("a word");
            assert_eq!(serde_json::to_value(&read).expect("json"), word);
        }
        assert_eq!(SourceStatus::parse("granted"), SourceStatus::Granted);
        assert_eq!(SourceStatus::parse("gift"), SourceStatus::Gift);
    }

    #[test]
    fn the_best_entitlement_in_good_standing_wins() {
        let tiers = TierPolicy {
            price_tiers: [("price_pro".to_owned(), "pro".to_owned())].into(),
            order: vec!["basic".into(), "pro".into(), "team".into()],
        };
        let mk = |sub: &str, tier: Option<&str>, grants: bool, end: i64, as_of: i64| {
            SubscriptionAccess {
                provider: Provider::STRIPE,
                customer: CustomerId::new("cus"),
                subscription: SubscriptionId::new(sub),
                grants,
                tier: tier.map(str::to_owned),
                status: if grants {
                    SubscriptionStatus::Active
                } else {
                    SubscriptionStatus::PastDue
                }
                .into(),
                standing: if grants {
                    Standing::Good
                } else {
                    Standing::Overdue
                },
                billing_status: if grants {
                    BillingStatus::Done
                } else {
                    BillingStatus::PastDue
                },
                current_period_end: Some(end),
                cancel_at_period_end: false,
                trial_end: None,
                cancellation_reason: None,
                payment: None,
                invoice: None,
                as_of,
                invalid: None,
                ends_at: None,
            }
        };
        let subs = [
            mk("sub_team_overdue", Some("team"), false, 900, 9),
            mk("sub_basic", Some("basic"), true, 500, 1),
            mk("sub_pro", Some("pro"), true, 100, 2),
            mk("sub_unlisted", Some("prod_x"), true, 999, 3),
        ];
        let best = best_access(&subs, &tiers, 0);
        assert_eq!(
            best.tier.as_deref(),
            Some("pro"),
            "a higher tier in good standing beats an overdue one"
        );
        assert_eq!(best.subscription, Some(SubscriptionId::new("sub_pro")));
        let none_grant = [
            mk("a", Some("pro"), false, 1, 5),
            mk("b", Some("pro"), false, 1, 7),
        ];
        let why = best_access(&none_grant, &tiers, 0);
        assert_eq!(why.tier, None);
        assert_eq!(
            why.subscription,
            Some(SubscriptionId::new("b")),
            "the most recent explains"
        );
        assert_eq!(why.billing_status, BillingStatus::PastDue);
    }

    /// A customer's deletion ends its subscriptions but not what it bought; a full refund does.
    #[test]
    fn a_purchase_outlives_its_customer_but_not_its_full_refund() {
        use crate::domain::customer::RefundRecord;
        use crate::domain::events::Purchase;
        let mut c = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        let purchase = Purchase {
            session: "cs_1".into(),
            kind: PurchaseKind::Checkout,
            payment_intent: Some("pi_1".into()),
            product: Some(ProductId::new("prod_1")),
            amount_total: Some(900),
            currency: Some("eur".into()),
            paid: true,
            gift: None,
            created: Some(1),
            paid_by: Default::default(),
        };
        c.purchases.insert("cs_1".into(), purchase);
        c.deleted = Some(Register {
            version: Version::new(5, 3, "evt_del"),
            value: (),
        });
        let [p] = purchase_access(&c).try_into().expect("one purchase");
        assert_eq!((p.grants, p.reason.as_str()), (true, "paid"));
        let refund = RefundRecord {
            payment_intent: Some("pi_1".into()),
            invoice: None,
            amount: 900,
            amount_refunded: 900,
            refunded: false,
        };
        c.refunds.insert("ch_1".into(), refund);
        let [p] = purchase_access(&c).try_into().expect("one purchase");
        assert_eq!((p.grants, p.reason.as_str()), (false, "refunded"));
    }
}
