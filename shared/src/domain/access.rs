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
//! A one-time purchase (beside the subscriptions, in `purchases`) grants its product:
//!
//! | purchase state (first match wins)                | grants | reason            |
//! |--------------------------------------------------|--------|-------------------|
//! | session completed unpaid (async payment pending) | no     | unpaid            |
//! | charge fully refunded                            | no     | refunded          |
//! | a dispute of the charge lost                     | no     | dispute_lost      |
//! | a dispute of the charge open (it may be won)     | yes    | disputed          |
//! | a gift, otherwise (for its buyer: its recipient has it) | no | gift         |
//! | paid; no dispute, or every dispute won or closed otherwise (`warning_closed`, `prevented`); not or partly refunded | yes | paid |
//!
//! A purchase finds its charge by its payment intent (a one-off invoice's by the invoice the
//! charge names). Disputes and refunds of a subscription invoice's charge are kept with the
//! customer but never change the subscription's access: Stripe does not cancel a subscription
//! over a dispute.
//!
//! A gift (a purchase with gift metadata, see `events::Gift`) grants its recipient its tier for
//! its period, under the source `gift:<provider>:<buyer>`, while its reason is `gift` (paid,
//! not fully refunded, no dispute lost).

use super::charge::{dispute_closed, Charge};
use super::customer::{CustomerBilling, RefundRecord, SubscriptionRecord};
use super::events::{PaymentOutcome, PurchaseKind};
use super::ids::{CustomerId, ProductId, Provider, SubscriptionId, UserId};
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
    pub status: String,
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
        status: snap.status.clone(),
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

/// The table above for a subscription that is not deleted.
fn rule(
    status: &str,
    payment: Option<PaymentOutcome>,
    cancel_at_period_end: bool,
) -> (bool, Standing, BillingStatus) {
    let overdue = (false, Standing::Overdue, BillingStatus::PastDue);
    let action = (false, Standing::ActionRequired, BillingStatus::Required);
    match status {
        "trialing" => (true, Standing::Trial, BillingStatus::Done),
        "active" => match payment {
            Some(PaymentOutcome::Failed) => overdue,
            Some(PaymentOutcome::ActionRequired) => action,
            _ if cancel_at_period_end => (true, Standing::Cancelling, BillingStatus::Done),
            _ => (true, Standing::Good, BillingStatus::Done),
        },
        // Stripe moves a renewal that needs authentication to past_due as well: what the
        // customer must do is authenticate, not update a card.
        "past_due" | "unpaid" if payment == Some(PaymentOutcome::ActionRequired) => action,
        "past_due" | "unpaid" => overdue,
        "incomplete" => action,
        "canceled" => (false, Standing::Ended, BillingStatus::Cancelled),
        _ => (false, Standing::Inactive, BillingStatus::Inactive),
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
        status: GRANTED.into(),
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

/// What one one-time purchase gives (see the second table above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseAccess {
    pub provider: Provider,
    pub customer: CustomerId,
    /// The Checkout Session id, or the invoice id of a one-off invoice.
    pub purchase: String,
    pub kind: PurchaseKind,
    pub product: Option<ProductId>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub payment_intent: Option<String>,
    pub grants: bool,
    /// `paid`, `refunded`, `dispute_lost`, `disputed` or `unpaid`.
    pub reason: String,
    /// Refunded so far from the charge that paid it (0: none).
    pub amount_refunded: i64,
    /// The charge's dispute that decides the reason (a lost one, else an open one, else the
    /// last closed), if the charge was ever disputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<PurchaseDispute>,
    /// The session's (or invoice's) own creation time, when its events carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// Purchases a user's item and its feed messages carry whole: the newest of all its sources.
/// The rest are counted in [`PurchaseTotals`] and listed, a page at a time, by the billing
/// route. About 1 KB each at most (Stripe's ids are at most 255 characters).
pub const PURCHASES_SHOWN: usize = 10;
/// Products [`PurchaseTotals::products`] names; past them only a count (`more_products`).
pub const PRODUCTS_SHOWN: usize = 50;

/// Exact counts over every purchase of one source (or of a user): what a consumer needs to
/// decide what a user owns without the whole list. Bounded whatever the history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseTotals {
    /// Every purchase, granting or not.
    pub count: u64,
    /// The purchases that grant their product now (`grants`).
    pub granting: u64,
    /// Granting purchases per product (`""`: a purchase that names none), the first
    /// [`PRODUCTS_SHOWN`] product ids in id order.
    #[serde(default)]
    pub products: std::collections::BTreeMap<String, u64>,
    /// How many more products have granting purchases than `products` names (over several
    /// sources, each source's count added: a product past the cap in two counts twice).
    #[serde(default)]
    pub more_products: u64,
}

/// What a user's item keeps of one source's purchases: exact totals and the newest few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseSummary {
    #[serde(flatten)]
    pub totals: PurchaseTotals,
    /// The [`PURCHASES_SHOWN`] newest (see [`newest_first`]), newest first.
    pub newest: Vec<PurchaseAccess>,
}

/// The order "newest first": by the purchase's own `created` (undated ones last), then by id
/// descending, so every reader lists the same ones.
pub fn newest_first(a: &PurchaseAccess, b: &PurchaseAccess) -> std::cmp::Ordering {
    (b.created, &b.purchase, &b.customer).cmp(&(a.created, &a.purchase, &a.customer))
}

impl PurchaseSummary {
    /// The summary of a list of purchases (one source's, or several sources' newest).
    pub fn of(all: &[PurchaseAccess]) -> Self {
        let mut per_product: std::collections::BTreeMap<String, u64> = Default::default();
        for p in all.iter().filter(|p| p.grants) {
            let product = p.product.as_ref().map_or("", |id| id.as_str());
            *per_product.entry(product.to_owned()).or_default() += 1;
        }
        let mut newest: Vec<PurchaseAccess> = all.to_vec();
        newest.sort_by(newest_first);
        newest.truncate(PURCHASES_SHOWN);
        let mut summary = Self {
            totals: PurchaseTotals {
                count: all.len() as u64,
                granting: all.iter().filter(|p| p.grants).count() as u64,
                products: per_product,
                more_products: 0,
            },
            newest,
        };
        summary.totals.bound_products();
        summary
    }

    /// Several sources' summaries as one: counts add up, the newest of all are kept.
    pub fn merge<'a>(summaries: impl IntoIterator<Item = &'a PurchaseSummary>) -> Self {
        let mut out = Self::default();
        for s in summaries {
            out.totals.count += s.totals.count;
            out.totals.granting += s.totals.granting;
            out.totals.more_products += s.totals.more_products;
            for (product, n) in &s.totals.products {
                *out.totals.products.entry(product.clone()).or_default() += n;
            }
            out.newest.extend(s.newest.iter().cloned());
        }
        out.newest.sort_by(newest_first);
        out.newest.truncate(PURCHASES_SHOWN);
        out.totals.bound_products();
        out
    }
}

/// A customer's purchases as its user item needs them, kept in its aggregate and moved only by
/// the change of each purchase an event touches (`shift`): so it needs no purchase but the
/// ones an event addresses, and stays the same whatever order the events came in.
///
/// Equal to [`PurchaseBook::of`] over every purchase, as long as a purchase's place in
/// [`newest_first`] only rises (its `created` arrives late; two events of one session never
/// name two dates): one that fell out of the newest could not be brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseBook {
    pub count: u64,
    pub granting: u64,
    /// Granting purchases per product (`""`: none named), every product: bounded by the
    /// catalogue, not by the history ([`PurchaseBook::summary`] names the first few).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub products: std::collections::BTreeMap<String, u64>,
    /// The [`PURCHASES_SHOWN`] newest, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newest: Vec<PurchaseAccess>,
}

impl PurchaseBook {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The book of a whole list (an aggregate written before purchases were booked).
    pub fn of(all: &[PurchaseAccess]) -> Self {
        let mut book = Self::default();
        for p in all {
            book.shift(None, p);
        }
        book
    }

    /// Moves the book by one purchase's change: `before` is its access before the event
    /// (`None`: the event brought it), `after` its access now.
    pub fn shift(&mut self, before: Option<&PurchaseAccess>, after: &PurchaseAccess) {
        let product =
            |p: &PurchaseAccess| p.product.as_ref().map_or("", |id| id.as_str()).to_owned();
        match before {
            None => self.count += 1,
            Some(b) if b.grants => {
                // Saturating: a book read from a damaged item must not panic an event.
                self.granting = self.granting.saturating_sub(1);
                let key = product(b);
                if let Some(n) = self.products.get_mut(&key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.products.remove(&key);
                    }
                }
            }
            Some(_) => {}
        }
        if after.grants {
            self.granting += 1;
            *self.products.entry(product(after)).or_default() += 1;
        }
        self.newest
            .retain(|p| (&p.customer, &p.purchase) != (&after.customer, &after.purchase));
        self.newest.push(after.clone());
        self.newest.sort_by(newest_first);
        self.newest.truncate(PURCHASES_SHOWN);
    }

    /// What the user item keeps of it: the totals with the first products named.
    pub fn summary(&self) -> PurchaseSummary {
        let mut totals = PurchaseTotals {
            count: self.count,
            granting: self.granting,
            products: self.products.clone(),
            more_products: 0,
        };
        totals.bound_products();
        PurchaseSummary {
            totals,
            newest: self.newest.clone(),
        }
    }
}

impl PurchaseTotals {
    /// Keeps the first [`PRODUCTS_SHOWN`] products, counting the others.
    fn bound_products(&mut self) {
        while self.products.len() > PRODUCTS_SHOWN {
            if self.products.pop_last().is_some() {
                self.more_products += 1;
            }
        }
    }
}

/// A dispute as the access answer and the billing route show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseDispute {
    pub id: String,
    /// Stripe's status (`needs_response`, `under_review`, `won`, `lost`, …).
    pub status: String,
    pub reason: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub funds_withdrawn: bool,
    pub funds_reinstated: bool,
}

impl PurchaseDispute {
    fn of(charge: &Charge) -> Option<Self> {
        let (id, record) = charge.deciding_dispute()?;
        let state = record.state.current()?;
        Some(Self {
            id: id.clone(),
            status: state.status.clone(),
            reason: state.reason.clone(),
            amount: state.amount,
            currency: state.currency.clone(),
            funds_withdrawn: record.funds_withdrawn,
            funds_reinstated: record.funds_reinstated,
        })
    }
}

/// The reason a paid purchase grants or not, from its charge (see the table above).
fn paid_reason(refund: Option<&RefundRecord>, charge: Option<&Charge>) -> &'static str {
    let dispute = charge.and_then(|c| c.deciding_dispute().and_then(|(_, d)| d.status()));
    if refund.is_some_and(RefundRecord::full) || charge.is_some_and(Charge::fully_refunded) {
        "refunded"
    } else if dispute == Some("lost") {
        "dispute_lost"
    } else if dispute.is_some_and(|s| !dispute_closed(s)) {
        "disputed"
    } else {
        "paid"
    }
}

/// Every purchase's access for one customer, in session-id order.
pub fn purchase_access(state: &CustomerBilling) -> Vec<PurchaseAccess> {
    state
        .purchases
        .values()
        .map(|p| {
            let refund = state.refund_of(p);
            let charge = state.charge_of(p);
            // A deleted customer keeps what it bought: Stripe refunds nothing with the
            // customer (its subscriptions end; a purchase has nothing left to bill).
            let reason = match (p.paid, paid_reason(refund, charge)) {
                (false, _) => "unpaid",
                // What a gift bought is its recipient's (see `gift_access`).
                (true, "paid" | "disputed") if p.gift.is_some() => "gift",
                (true, reason) => reason,
            };
            PurchaseAccess {
                provider: state.provider,
                customer: state.customer.clone(),
                purchase: p.session.clone(),
                kind: p.kind,
                product: p.product.clone(),
                amount_total: p.amount_total,
                currency: p.currency.clone(),
                payment_intent: p.payment_intent.clone(),
                grants: matches!(reason, "paid" | "disputed"),
                reason: reason.into(),
                amount_refunded: refund
                    .map_or(0, |r| r.amount_refunded)
                    .max(charge.map_or(0, Charge::refunded_total)),
                dispute: charge.and_then(PurchaseDispute::of),
                created: p.created,
            }
        })
        .collect()
}

/// The status of a gift period in the recipient's access.
pub const GIFT: &str = "gift";

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
                status: GIFT.into(),
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
            status: Some(s.status.clone()),
            standing: Standing::Ended,
            billing_status: BillingStatus::Cancelled,
            current_period_end: s.current_period_end,
            subscription: Some(s.subscription.clone()),
            ..Access::none()
        },
        Some(s) => Access {
            tier: s.grants.then(|| s.tier.clone()).flatten(),
            status: Some(s.status.clone()),
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
    use crate::domain::customer::{Attempt, Candidate, Deletion, InvoiceRecord, Snapshots};
    use crate::domain::events::Settlement;
    use crate::domain::events::SubscriptionSnapshot;
    use crate::domain::ids::InvoiceId;
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
            status: status.into(),
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
            snapshots: Some(Snapshots {
                candidates: vec![Candidate {
                    version: v.clone(),
                    snapshot,
                    evidence: Default::default(),
                }],
            }),
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
                status: if grants { "active" } else { "past_due" }.into(),
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

    /// A summary is bounded whatever the history, and its counts are exact: the newest few
    /// whole, granting purchases per product (the first products by id, the rest counted).
    #[test]
    fn a_purchase_summary_counts_everything_and_keeps_the_newest() {
        let bought = |i: u64, grants: bool| PurchaseAccess {
            provider: Provider::STRIPE,
            customer: CustomerId::new("cus"),
            purchase: format!("cs_{i:05}"),
            kind: PurchaseKind::Checkout,
            product: Some(ProductId::new(format!("prod_{:03}", i % 80))),
            amount_total: Some(100),
            currency: Some("eur".into()),
            payment_intent: None,
            grants,
            reason: if grants { "paid" } else { "refunded" }.into(),
            amount_refunded: 0,
            dispute: None,
            created: Some(i as i64),
        };
        let all: Vec<PurchaseAccess> = (0..5_000).map(|i| bought(i, i % 5 != 0)).collect();
        let summary = PurchaseSummary::of(&all);
        assert_eq!(
            (summary.totals.count, summary.totals.granting),
            (5_000, 4_000)
        );
        assert_eq!(summary.totals.products.len(), PRODUCTS_SHOWN);
        // 64 products have a granting purchase (every fifth purchase is refunded).
        assert_eq!(summary.totals.more_products, 64 - PRODUCTS_SHOWN as u64);
        assert_eq!(summary.totals.products["prod_001"], 63);
        let newest: Vec<&str> = summary.newest.iter().map(|p| p.purchase.as_str()).collect();
        assert_eq!(newest.len(), PURCHASES_SHOWN);
        assert_eq!((newest[0], newest[9]), ("cs_04999", "cs_04990"));
        let json = serde_json::to_string(&summary).expect("json");
        assert!(json.len() < 8 * 1024, "{} bytes", json.len());
        // Two sources: counts add up, the newest of both are kept.
        let other: Vec<PurchaseAccess> = (5_000..5_003).map(|i| bought(i, true)).collect();
        let merged = PurchaseSummary::merge([&summary, &PurchaseSummary::of(&other)]);
        assert_eq!(
            (merged.totals.count, merged.totals.granting),
            (5_003, 4_003)
        );
        assert_eq!(merged.newest[0].purchase, "cs_05002");
        assert_eq!(merged.newest[3].purchase, "cs_04999");
    }
}
