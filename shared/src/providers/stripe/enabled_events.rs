//! The event types each family's Stripe webhook endpoint subscribes to (its `enabled_events`),
//! listed once. `billing stripe-endpoints` provisions them; the tests below hold every list to
//! the routing ([`family_of`]), so an endpoint is only sent what its own function is for.
//!
//! Stripe takes exact event types or `*` (everything) in `enabled_events`, no prefix
//! wildcards, hence explicit lists. They are the types of Stripe's catalogue under the
//! families' prefixes that exist at the API version the endpoints are created with
//! (`stripe_api::STRIPE_VERSION`, 2025-06-30.basil). Left out: `invoice.payment_attempt_required`
//! (added in 2025-10-29.clover), `invoice.overpaid` (not modelled, and its introduction could
//! not be dated), and every other prefix (`invoiceitem.*`, `account.*`, `payout.*`, …), which
//! the model does not read.

use crate::providers::stripe::Family;

#[cfg(doc)]
use super::translate::family_of;

const CHECKOUT: &[&str] = &[
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
];

const SUBSCRIPTION: &[&str] = &[
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
];

const INVOICE: &[&str] = &[
    "invoice.created",
    "invoice.deleted",
    "invoice.finalization_failed",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.sent",
    "invoice.upcoming",
    "invoice.updated",
    "invoice.voided",
    "invoice.will_be_due",
    "invoice_payment.paid",
];

/// Everything else the model or the audit trail may use: payments, refunds, disputes, the
/// customer itself (not its subscriptions), the catalogue (products, prices, plans),
/// subscription schedules, entitlements and payment methods.
const CHARGE: &[&str] = &[
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "customer.created",
    "customer.deleted",
    "customer.discount.created",
    "customer.discount.deleted",
    "customer.discount.updated",
    "customer.source.created",
    "customer.source.deleted",
    "customer.source.expiring",
    "customer.source.updated",
    "customer.tax_id.created",
    "customer.tax_id.deleted",
    "customer.tax_id.updated",
    "customer.updated",
    "entitlements.active_entitlement_summary.updated",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.automatically_updated",
    "payment_method.detached",
    "payment_method.updated",
    "plan.created",
    "plan.deleted",
    "plan.updated",
    "price.created",
    "price.deleted",
    "price.updated",
    "product.created",
    "product.deleted",
    "product.updated",
    "refund.created",
    "refund.failed",
    "refund.updated",
    "setup_intent.canceled",
    "setup_intent.created",
    "setup_intent.requires_action",
    "setup_intent.setup_failed",
    "setup_intent.succeeded",
    "subscription_schedule.aborted",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "subscription_schedule.created",
    "subscription_schedule.expiring",
    "subscription_schedule.released",
    "subscription_schedule.updated",
];

/// The event types `family`'s Stripe endpoint subscribes to, sorted.
pub fn enabled_events(family: Family) -> &'static [&'static str] {
    match family {
        Family::Checkout => CHECKOUT,
        Family::Subscription => SUBSCRIPTION,
        Family::Invoice => INVOICE,
        Family::Charge => CHARGE,
        // No Stripe endpoint: operator records and PayPal deliveries never come from Stripe.
    }
}

#[cfg(test)]
mod tests {
    use super::super::translate::family_of;
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::path::Path;

    #[test]
    fn every_listed_type_routes_to_its_own_family() {
        for family in Family::ALL {
            for t in enabled_events(family) {
                assert_eq!(family_of(t), family, "{t} is listed for {family}");
            }
        }
    }

    #[test]
    fn the_lists_are_sorted_without_repeats_and_disjoint() {
        let mut owner: HashMap<&str, Family> = HashMap::new();
        for family in Family::ALL {
            let list = enabled_events(family);
            assert!(!list.is_empty(), "{family}");
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "{family}: sorted, no repeat"
            );
            for t in list {
                assert!(!t.contains('*'), "{t}: Stripe takes no prefix wildcard");
                if let Some(other) = owner.insert(t, family) {
                    panic!("{t} is listed for {other} and {family}");
                }
            }
        }
    }

    /// The product's catalogue (BRIEF.md "Event catalogue", seeds 001 and 004) and every type
    /// the translator models: each must reach an endpoint.
    #[test]
    fn the_catalogue_and_every_modelled_type_are_enabled() {
        let catalogue = [
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "invoice.created",
            "invoice.finalized",
            "invoice.updated",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
            "invoice.voided",
            "invoice.marked_uncollectible",
            "invoice.deleted",
            "invoice.upcoming",
            "charge.succeeded",
            "charge.failed",
            "charge.refunded",
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "payment_intent.created",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "setup_intent.created",
            "setup_intent.succeeded",
            "setup_intent.setup_failed",
            "customer.created",
            "customer.updated",
            "customer.deleted",
            "customer.source.expiring",
            "customer.source.updated",
            "product.created",
            "product.updated",
            "product.deleted",
            "price.created",
            "price.updated",
            "price.deleted",
            "plan.created",
            "plan.updated",
            "plan.deleted",
        ];
        let enabled = all_enabled();
        let missing: Vec<_> = catalogue
            .iter()
            .filter(|t| !enabled.contains(**t))
            .collect();
        assert!(missing.is_empty(), "not enabled: {missing:?}");
    }

    /// Every event type among the fixtures (real deliveries of 13 API versions) is enabled on
    /// the endpoint it routes to.
    #[test]
    fn every_fixture_event_type_is_enabled() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe");
        let mut types = BTreeSet::new();
        collect_types(&root, &mut types);
        assert!(types.len() > 20, "fixtures found: {types:?}");
        let enabled = all_enabled();
        let missing: Vec<_> = types.iter().filter(|t| !enabled.contains(*t)).collect();
        assert!(missing.is_empty(), "not enabled: {missing:?}");
    }

    fn all_enabled() -> BTreeSet<String> {
        Family::ALL
            .into_iter()
            .flat_map(enabled_events)
            .map(|t| (*t).to_owned())
            .collect()
    }

    fn collect_types(dir: &Path, types: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("fixtures dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                collect_types(&path, types);
                continue;
            }
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("fixture");
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if value["object"] == "event" {
                if let Some(t) = value["type"].as_str() {
                    types.insert(t.to_owned());
                }
            }
        }
    }
}
