//! The PayPal types recorded once and answered `ignored`, each with why it changes nothing in
//! the model; and the types that are modelled. Any type in neither list (PayPal adds types) is
//! recorded and answered `ignored` too. A test holds the lists against the translation.

/// The types the translation maps onto the model (docs/MODEL.md, "PayPal: the mapping").
pub const MODELLED: &[&str] = &[
    "BILLING.SUBSCRIPTION.CREATED",
    "BILLING.SUBSCRIPTION.ACTIVATED",
    "BILLING.SUBSCRIPTION.UPDATED",
    "BILLING.SUBSCRIPTION.RE-ACTIVATED",
    "BILLING.SUBSCRIPTION.SUSPENDED",
    "BILLING.SUBSCRIPTION.CANCELLED",
    "BILLING.SUBSCRIPTION.EXPIRED",
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
    "PAYMENT.SALE.COMPLETED",
    "PAYMENT.SALE.DENIED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.SALE.REFUNDED",
    "PAYMENT.SALE.REVERSED",
    "PAYMENT.CAPTURE.REFUNDED",
    "PAYMENT.CAPTURE.REVERSED",
    "CUSTOMER.DISPUTE.CREATED",
    "CUSTOMER.DISPUTE.UPDATED",
    "CUSTOMER.DISPUTE.RESOLVED",
];

/// `(event type, why it is not applied)`.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "PAYMENT.CAPTURE.COMPLETED",
        "a v2 Orders capture is a one-time payment: no subscription names it, and PayPal is kept for legacy subscriptions only (nothing is sold once through it)",
    ),
    (
        "PAYMENT.CAPTURE.PENDING",
        "its COMPLETED or DENIED carries the outcome",
    ),
    (
        "PAYMENT.SALE.PENDING",
        "its COMPLETED or DENIED carries the outcome",
    ),
    (
        "PAYMENT.AUTHORIZATION.CREATED",
        "an authorisation moves no money",
    ),
    (
        "PAYMENT.AUTHORIZATION.VOIDED",
        "an authorisation moves no money",
    ),
    (
        "CHECKOUT.ORDER.APPROVED",
        "a one-time order before its capture: not modelled (see PAYMENT.CAPTURE.COMPLETED)",
    ),
    (
        "CHECKOUT.ORDER.COMPLETED",
        "a one-time order: not modelled (see PAYMENT.CAPTURE.COMPLETED)",
    ),
    (
        "BILLING.PLAN.CREATED",
        "a plan is catalogue: tiers come from PRICE_TIERS by plan id",
    ),
    (
        "BILLING.PLAN.UPDATED",
        "a plan is catalogue: tiers come from PRICE_TIERS by plan id",
    ),
    (
        "BILLING.PLAN.ACTIVATED",
        "a plan is catalogue: tiers come from PRICE_TIERS by plan id",
    ),
    (
        "BILLING.PLAN.DEACTIVATED",
        "a plan is catalogue: existing subscriptions keep running",
    ),
    (
        "BILLING.PLAN.PRICING-CHANGE.ACTIVATED",
        "a price change of a plan: the subscription's own events and sales carry its effect",
    ),
];

/// Why a modelled type's one event may still be recorded as ignored (docs/MODEL.md, "PayPal: the mapping").
pub const IGNORED_CASES: &[(&str, &str)] = &[
    (
        "PAYMENT.SALE.COMPLETED / DENIED, PAYMENT.CAPTURE.DENIED without billing_agreement_id",
        "a one-time payment: no subscription names it (see PAYMENT.CAPTURE.COMPLETED)",
    ),
    (
        "a refund or reversal naming no sale or capture",
        "it cannot be joined to any payment (PayPal's reversal samples carry only their own link)",
    ),
];

#[cfg(test)]
mod tests {
    use super::super::translate::{translate, Envelope};
    use super::*;
    use crate::domain::events::BillingEvent;

    /// A rich resource: every field any modelled type reads.
    fn translate_rich(event_type: &str) -> Option<BillingEvent> {
        let body = serde_json::json!({
            "id": "WH-1", "event_type": event_type, "create_time": "2024-01-01T00:00:00.5Z",
            "resource": {
                "id": "I-1", "status": "ACTIVE", "billing_agreement_id": "I-1",
                "sale_id": "S-1", "state": "completed",
                "amount": {"total": "1.00", "currency": "USD"},
                "dispute_id": "PP-1", "disputed_transactions": [{"seller_transaction_id": "S-1"}]
            }
        });
        let env = Envelope::parse(body.to_string().as_bytes()).expect("envelope");
        translate(&env).ok()
    }

    #[test]
    fn the_lists_say_what_the_translation_does() {
        let mut seen = std::collections::BTreeSet::new();
        for t in MODELLED {
            assert!(seen.insert(*t), "{t} listed twice");
            let event = translate_rich(t).expect("translated");
            assert_ne!(
                event,
                BillingEvent::Unsupported,
                "{t} is listed as modelled"
            );
        }
        for (t, why) in IGNORED {
            assert!(seen.insert(*t), "{t} listed twice");
            assert!(!why.is_empty());
            assert_eq!(translate_rich(t), Some(BillingEvent::Unsupported), "{t}");
        }
        assert_eq!(
            translate_rich("SOMETHING.PAYPAL.ADDS"),
            Some(BillingEvent::Unsupported)
        );
    }
}
