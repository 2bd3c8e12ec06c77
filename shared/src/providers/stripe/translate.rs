//! Stripe event → canonical [`BillingEvent`], for every API version from 2018 to basil.
//!
//! Drift handled here (invoices: `invoice.rs`): the current period moved from the
//! subscription to `items.data[]` (2025-03-31), ids may arrive expanded as objects, and the
//! price may appear as `plan` (before 2018-02) or `price`.

use super::event::{i64_field, id_field, metadata, str_field, Envelope};
use super::invoice::{invoice_event, invoice_kind, invoice_payment_paid};
use crate::domain::events::{BillingEvent, SubscriptionChange, SubscriptionSnapshot};
use crate::domain::ids::{CustomerId, SubscriptionId, UserId};
use crate::providers::evidence::order_evidence;
use crate::routing::Family;
use serde_json::Value;

/// Where the translation looks for user ids and tiers (configured once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeMapping {
    /// Metadata key on customers and subscriptions that holds the application's user id.
    pub user_metadata_key: String,
    /// Metadata key on prices or products that names the tier.
    pub tier_metadata_key: String,
}

impl Default for StripeMapping {
    fn default() -> Self {
        Self {
            user_metadata_key: "user_id".into(),
            tier_metadata_key: "tier".into(),
        }
    }
}

/// A modelled type whose object lacks what the model needs: the event is parked, not dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type}: data.object has no usable `{field}`")]
pub struct TranslateError {
    pub event_type: String,
    pub field: &'static str,
}

/// The endpoint family a Stripe type belongs to (what the endpoint should be subscribed to).
pub fn family_of(event_type: &str) -> Family {
    if event_type.starts_with("checkout.") {
        Family::Checkout
    } else if event_type.starts_with("customer.subscription.") {
        Family::Subscription
    } else if event_type.starts_with("invoice.") || event_type.starts_with("invoice_payment.") {
        Family::Invoice
    } else {
        // charge.*, payment_intent.*, setup_intent.*, customer.*, refunds and the rest.
        Family::Charge
    }
}

pub fn translate(env: &Envelope, map: &StripeMapping) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    let need = |field: &'static str, v: Option<String>| {
        v.ok_or_else(|| TranslateError {
            event_type: env.event_type.clone(),
            field,
        })
    };
    let event = match env.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let user = str_field(obj, "client_reference_id")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(UserId::new);
            match id_field(obj, "customer") {
                // A guest payment without a customer object: nothing to link.
                None => BillingEvent::Unsupported,
                Some(customer) => BillingEvent::CheckoutCompleted {
                    customer: CustomerId::new(customer),
                    subscription: id_field(obj, "subscription").map(SubscriptionId::new),
                    user,
                },
            }
        }
        t if t.starts_with("customer.subscription.") => {
            let change = match &t["customer.subscription.".len()..] {
                "created" => SubscriptionChange::Created,
                "updated" => SubscriptionChange::Updated,
                "deleted" => SubscriptionChange::Deleted,
                "trial_will_end" => SubscriptionChange::TrialWillEnd,
                "paused" => SubscriptionChange::Paused,
                "resumed" => SubscriptionChange::Resumed,
                _ => return Ok(BillingEvent::Unsupported),
            };
            let snapshot = SubscriptionSnapshot {
                id: SubscriptionId::new(need("id", id_field(obj, "id"))?),
                customer: CustomerId::new(need("customer", id_field(obj, "customer"))?),
                status: need("status", str_field(obj, "status").map(str::to_owned))?,
                ..subscription_details(obj, map)
            };
            let evidence = order_evidence(obj, env.previous.as_ref());
            BillingEvent::Subscription {
                change,
                snapshot,
                evidence,
            }
        }
        t if t.starts_with("invoice.") => match invoice_kind(t) {
            Some(kind) => invoice_event(env, map, kind)?,
            None => BillingEvent::Unsupported,
        },
        "invoice_payment.paid" => invoice_payment_paid(env)?,
        "customer.created" | "customer.updated" => BillingEvent::CustomerUpdated {
            customer: CustomerId::new(need("id", id_field(obj, "id"))?),
            user_claim: metadata(obj, &map.user_metadata_key).map(UserId::new),
        },
        _ => BillingEvent::Unsupported,
    };
    Ok(event)
}

/// A subscription object (as the API returns it) as a snapshot; `None` without id, customer
/// or status.
pub fn subscription_snapshot(obj: &Value, map: &StripeMapping) -> Option<SubscriptionSnapshot> {
    Some(SubscriptionSnapshot {
        id: SubscriptionId::new(id_field(obj, "id")?),
        customer: CustomerId::new(id_field(obj, "customer")?),
        status: str_field(obj, "status")?.to_owned(),
        ..subscription_details(obj, map)
    })
}

/// The optional parts of a subscription snapshot (ids and status are filled by the caller).
fn subscription_details(obj: &Value, map: &StripeMapping) -> SubscriptionSnapshot {
    let first_item = obj
        .get("items")
        .and_then(|i| i.get("data"))
        .and_then(Value::as_array)
        .and_then(|items| items.first());
    // `price` since 2018-02; `plan` before it and alongside it since.
    let price = first_item
        .and_then(|i| i.get("price").or_else(|| i.get("plan")))
        .or_else(|| obj.get("plan"))
        .filter(|p| p.is_object());
    let price_id = price.and_then(|p| id_field(p, "id"));
    let product_id = price.and_then(|p| id_field(p, "product"));
    let tier_hint = price
        .and_then(|p| metadata(p, &map.tier_metadata_key))
        .or_else(|| {
            price
                .and_then(|p| p.get("product"))
                .filter(|p| p.is_object())
                .and_then(|p| metadata(p, &map.tier_metadata_key))
        });
    // Basil moved the current period onto the items; older versions keep it on the subscription.
    let period = |key: &str| {
        first_item
            .and_then(|i| i64_field(i, key))
            .or_else(|| i64_field(obj, key))
    };
    SubscriptionSnapshot {
        id: SubscriptionId::new(""),
        customer: CustomerId::new(""),
        status: String::new(),
        price_id,
        product_id,
        tier_hint,
        current_period_start: period("current_period_start"),
        current_period_end: period("current_period_end"),
        cancel_at_period_end: obj
            .get("cancel_at_period_end")
            .and_then(super::event::as_bool)
            .unwrap_or(false),
        cancel_at: i64_field(obj, "cancel_at"),
        trial_end: i64_field(obj, "trial_end"),
        cancellation_reason: obj
            .get("cancellation_details")
            .and_then(|c| str_field(c, "reason"))
            .map(str::to_owned),
        user_claim: metadata(obj, &map.user_metadata_key).map(UserId::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{InvoiceChange, InvoicePayment};
    use serde_json::json;

    fn env(event_type: &str, object: Value) -> Envelope {
        let body =
            json!({"id": "evt_t", "type": event_type, "created": 10, "data": {"object": object}});
        Envelope::parse(body.to_string().as_bytes()).expect("parse")
    }

    fn payment(e: &Envelope) -> InvoicePayment {
        match translate(e, &StripeMapping::default()).expect("translate") {
            BillingEvent::Invoice(invoice) => invoice.payment().expect("a payment event"),
            other => panic!("not an invoice payment: {other:?}"),
        }
    }

    #[test]
    fn invoice_subscription_is_found_before_and_after_basil() {
        let old = env(
            "invoice.payment_failed",
            json!({"id": "in_1", "customer": "cus_1", "subscription": "sub_1",
            "subscription_details": {"metadata": {"user_id": "u_old"}}}),
        );
        let basil = env(
            "invoice.paid",
            json!({"id": "in_2", "customer": {"id": "cus_1", "object": "customer"},
            "parent": {"subscription_details": {"subscription": "sub_1", "metadata": {"user_id": "u_new"}}}}),
        );
        let (a, b) = (payment(&old), payment(&basil));
        assert_eq!(a.subscription, Some(SubscriptionId::new("sub_1")));
        assert_eq!(b.subscription, Some(SubscriptionId::new("sub_1")));
        assert_eq!(
            (a.change, b.change),
            (InvoiceChange::Failed, InvoiceChange::Paid)
        );
        assert_eq!(
            b.customer,
            CustomerId::new("cus_1"),
            "expanded customer objects are read"
        );
        assert_eq!(a.user_hint, Some(UserId::new("u_old")));
        assert_eq!(b.user_hint, Some(UserId::new("u_new")));
    }

    #[test]
    fn subscription_period_and_price_come_from_wherever_the_version_put_them() {
        let basil = env(
            "customer.subscription.updated",
            json!({"id": "sub_1", "customer": "cus_1", "status": "active",
            "items": {"data": [{"current_period_start": 100, "current_period_end": 200,
                "price": {"id": "price_1", "product": {"id": "prod_1", "metadata": {"tier": "team"}}}}]}}),
        );
        let old = env(
            "customer.subscription.updated",
            json!({"id": "sub_1", "customer": "cus_1", "status": "past_due",
            "current_period_start": 100, "current_period_end": 200, "cancel_at_period_end": "true",
            "plan": {"id": "gold", "product": "prod_1", "metadata": {"tier": "gold"}},
            "metadata": {"user_id": "u_1"}}),
        );
        for (e, tier, price) in [(basil, "team", "price_1"), (old, "gold", "gold")] {
            let BillingEvent::Subscription { snapshot, .. } =
                translate(&e, &StripeMapping::default()).expect("ok")
            else {
                panic!("not a subscription event");
            };
            assert_eq!(
                (snapshot.current_period_start, snapshot.current_period_end),
                (Some(100), Some(200))
            );
            assert_eq!(snapshot.tier_hint.as_deref(), Some(tier));
            assert_eq!(snapshot.price_id.as_deref(), Some(price));
            assert_eq!(snapshot.product_id.as_deref(), Some("prod_1"));
        }
    }

    #[test]
    fn a_modelled_type_missing_what_it_needs_is_an_error_and_others_are_unsupported() {
        let no_customer = env(
            "customer.subscription.created",
            json!({"id": "sub_1", "status": "active"}),
        );
        let err = translate(&no_customer, &StripeMapping::default()).expect_err("must fail");
        assert_eq!(err.field, "customer");
        let unknown = env("customer.subscription.frobnicated", json!({}));
        assert_eq!(
            translate(&unknown, &StripeMapping::default()),
            Ok(BillingEvent::Unsupported)
        );
        let charge = env("charge.succeeded", json!({"id": "ch_1"}));
        assert_eq!(
            translate(&charge, &StripeMapping::default()),
            Ok(BillingEvent::Unsupported)
        );
        let guest = env(
            "checkout.session.completed",
            json!({"id": "cs_1", "customer": null}),
        );
        assert_eq!(
            translate(&guest, &StripeMapping::default()),
            Ok(BillingEvent::Unsupported)
        );
    }

    #[test]
    fn families_follow_the_type_prefix() {
        assert_eq!(family_of("checkout.session.expired"), Family::Checkout);
        assert_eq!(
            family_of("customer.subscription.paused"),
            Family::Subscription
        );
        assert_eq!(family_of("invoice_payment.paid"), Family::Invoice);
        assert_eq!(family_of("customer.updated"), Family::Charge);
        assert_eq!(family_of("payment_intent.succeeded"), Family::Charge);
    }
}
