//! A customer's one-time purchases: what each one grants (the table below), the book of them a
//! user's item carries, and the refund records of older aggregates.
//!
//! A one-time purchase (beside the subscriptions, in the aggregate's `purchases`) grants its
//! product:
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

use crate::domain::charge::{dispute_closed, Charge};
use crate::domain::events::{InvoiceChange, InvoiceEvent, Purchase, PurchaseKind};
use crate::domain::ids::{CustomerId, ProductId, Provider};
use crate::domain::version::Offer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Charge copies kept that no purchase the aggregate holds claims: those of subscription
/// invoices (shown by the billing route, no access depends on them) and those that came
/// before their purchase. Claimed copies live in their purchase's item.
pub const UNCLAIMED_CHARGES_KEPT: usize = 32;

/// Whether `charge` paid `purchase`: by the payment intent, or for a one-off invoice by the
/// invoice the charge names.
pub(crate) fn pays(charge: &Charge, purchase: &Purchase) -> bool {
    let pi = purchase.payment_intent.as_ref();
    (pi.is_some() && charge.payment_intent.as_ref() == pi)
        || (purchase.kind == PurchaseKind::Invoice
            && charge.invoice.as_ref() == Some(&purchase.session))
}

/// What one one-time purchase gives (see the table above).
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

/// What one purchase grants, from the charge that paid it as the customer knows it (and, in
/// an aggregate written before refunds joined the charge copies, its refund record). A deleted
/// customer keeps what it bought: Stripe refunds nothing with the customer (its subscriptions
/// end; a purchase has nothing left to bill).
pub fn access_of(
    provider: Provider,
    customer: &CustomerId,
    p: &Purchase,
    refund: Option<&RefundRecord>,
    charge: Option<&Charge>,
) -> PurchaseAccess {
    let reason = match (p.paid, paid_reason(refund, charge)) {
        (false, _) => "unpaid",
        // What a gift bought is its recipient's (see `access::gift_access`).
        (true, "paid" | "disputed") if p.gift.is_some() => GIFT,
        (true, reason) => reason,
    };
    PurchaseAccess {
        provider,
        customer: customer.clone(),
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
}

/// The status of a gift period in the recipient's access.
pub const GIFT: &str = "gift";

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

/// The purchase a paid invoice of no subscription records (`None` for any other).
pub fn invoice_purchase(invoice: &InvoiceEvent) -> Option<Purchase> {
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
pub fn join(purchases: &mut BTreeMap<String, Purchase>, p: &Purchase) -> Offer {
    let Some(current) = purchases.get_mut(&p.session) else {
        purchases.insert(p.session.clone(), p.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::purchase_access;
    use crate::domain::customer::fixtures::meta;
    use crate::domain::customer::{CustomerBilling, Effect};
    use crate::domain::events::{BillingEvent, ChargeRefund, EventMeta};

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
        charge.apply(
            &meta("evt_bind", 50),
            bound.charge_event().expect("a charge event"),
        );
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
        charge.apply(
            &meta("evt_dispute", 60),
            dispute.charge_event().expect("a charge event"),
        );
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
