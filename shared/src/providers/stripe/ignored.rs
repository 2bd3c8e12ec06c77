//! The Stripe types the endpoints are subscribed to, record once, and answer `ignored`: each
//! with why it changes nothing in the model. Every other subscribed type is modelled; a test
//! holds the two sets apart and complete, against the translation itself.

/// `(event type, why it is not applied)`.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "checkout.session.async_payment_failed",
        "the delayed payment failed: nothing was bought",
    ),
    (
        "checkout.session.expired",
        "an abandoned checkout bought nothing",
    ),
    (
        "customer.subscription.pending_update_applied",
        "the same change's customer.subscription.updated carries the new state",
    ),
    (
        "customer.subscription.pending_update_expired",
        "the pending update was never applied; the subscription is unchanged",
    ),
    ("invoice.sent", "Stripe emailed the invoice: no state"),
    (
        "invoice.upcoming",
        "a preview of an invoice that does not exist yet (it has no id)",
    ),
    (
        "invoice.overdue",
        "a reminder: the invoice's status is unchanged",
    ),
    (
        "invoice.will_be_due",
        "a reminder: the invoice's status is unchanged",
    ),
    (
        "charge.captured",
        "the invoice or checkout of the payment carries it",
    ),
    (
        "charge.expired",
        "an uncaptured authorisation lapsed: nothing was paid",
    ),
    (
        "charge.failed",
        "the invoice's payment_failed carries the attempt",
    ),
    (
        "charge.pending",
        "the invoice or checkout of the payment carries its outcome",
    ),
    (
        "charge.succeeded",
        "payment_intent.succeeded binds the charge to its customer (every Checkout and invoice charge has a payment intent)",
    ),
    (
        "charge.updated",
        "edits of a charge's description or metadata",
    ),
    (
        "customer.discount.created",
        "discounts are not kept: invoices carry the amounts",
    ),
    (
        "customer.discount.deleted",
        "discounts are not kept: invoices carry the amounts",
    ),
    (
        "customer.discount.updated",
        "discounts are not kept: invoices carry the amounts",
    ),
    ("customer.source.created", "payment details are not kept"),
    ("customer.source.deleted", "payment details are not kept"),
    ("customer.source.expiring", "payment details are not kept"),
    ("customer.source.updated", "payment details are not kept"),
    ("customer.tax_id.created", "tax ids are not kept"),
    ("customer.tax_id.deleted", "tax ids are not kept"),
    ("customer.tax_id.updated", "tax ids are not kept"),
    (
        "payment_intent.amount_capturable_updated",
        "the invoice, checkout or charge of the payment carries what the model needs",
    ),
    (
        "payment_intent.canceled",
        "the invoice, checkout or charge of the payment carries what the model needs",
    ),
    (
        "payment_intent.created",
        "the invoice, checkout or charge of the payment carries what the model needs",
    ),
    (
        "payment_intent.partially_funded",
        "the invoice, checkout or charge of the payment carries what the model needs",
    ),
    (
        "payment_intent.payment_failed",
        "the invoice's payment_failed carries the attempt",
    ),
    (
        "payment_intent.processing",
        "the invoice, checkout or charge of the payment carries what the model needs",
    ),
    (
        "payment_intent.requires_action",
        "the invoice's payment_action_required carries it (with the hosted invoice page)",
    ),
    ("payment_method.attached", "payment details are not kept"),
    (
        "payment_method.automatically_updated",
        "payment details are not kept",
    ),
    ("payment_method.detached", "payment details are not kept"),
    ("payment_method.updated", "payment details are not kept"),
    (
        "setup_intent.canceled",
        "saving a payment method: payment details are not kept",
    ),
    (
        "setup_intent.created",
        "saving a payment method: payment details are not kept",
    ),
    (
        "setup_intent.requires_action",
        "saving a payment method: payment details are not kept",
    ),
    (
        "setup_intent.setup_failed",
        "saving a payment method: payment details are not kept",
    ),
    (
        "setup_intent.succeeded",
        "saving a payment method: payment details are not kept",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::BillingEvent;
    use crate::providers::stripe::enabled_events::enabled_events;
    use crate::providers::stripe::event::Envelope;
    use crate::providers::stripe::translate::{translate, StripeMapping};
    use crate::providers::stripe::Family;
    use serde_json::json;

    /// An object with every field some modelled type needs, so a type that is modelled reads
    /// it as an event (or fails naming a field it needs more of): never as "not modelled".
    fn translate_rich(event_type: &str) -> Option<BillingEvent> {
        let object = json!({
            "id": "x_1", "object": "thing", "customer": "cus_1", "subscription": "sub_1",
            "invoice": "in_1", "charge": "ch_1", "payment_intent": "pi_1", "product": "prod_1",
            "latest_charge": "ch_1",
            "currency": "usd", "status": "active", "mode": "subscription", "created": 1,
            "client_reference_id": "user_1", "amount": 100, "unit_amount": 100, "type": "one_time",
            "interval": "month", "active": true, "metadata": {"user_id": "user_1"},
            "items": {"data": [{"price": {"id": "price_1", "product": "prod_1"}}]},
            "entitlements": {"data": [], "has_more": false}
        });
        let body = json!({
            "id": "evt_1", "object": "event", "type": event_type, "created": 1,
            "livemode": false, "data": {"object": object}
        });
        let env = Envelope::parse(body.to_string().as_bytes()).expect("envelope");
        translate(&env, &StripeMapping::default()).ok()
    }

    fn subscribed() -> Vec<&'static str> {
        Family::ALL
            .into_iter()
            .flat_map(|f| enabled_events(f).iter().copied())
            .collect()
    }

    #[test]
    fn every_ignored_type_is_subscribed_once_and_says_why() {
        let subscribed = subscribed();
        let mut seen = std::collections::BTreeSet::new();
        for (t, why) in IGNORED {
            assert!(
                subscribed.contains(t),
                "{t} is listed but no endpoint receives it"
            );
            assert!(seen.insert(*t), "{t} is listed twice");
            assert!(!why.is_empty());
        }
    }

    /// The list says what the translation does: a listed type is not modelled, and every other
    /// subscribed type is (so a new type is either modelled or listed here with its reason).
    #[test]
    fn the_list_is_exactly_the_subscribed_types_the_translation_leaves_unmodelled() {
        for t in subscribed() {
            let modelled = !matches!(translate_rich(t), Some(BillingEvent::Unsupported));
            match IGNORED.iter().find(|(listed, _)| *listed == t) {
                Some(_) => assert!(!modelled, "{t} is listed as ignored but is modelled"),
                None => assert!(modelled, "{t} is neither modelled nor listed as ignored"),
            }
        }
    }
}
