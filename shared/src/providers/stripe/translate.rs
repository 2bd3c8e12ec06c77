//! Stripe event → canonical [`BillingEvent`], for every API version from 2018 to basil.
//!
//! Drift handled here: the subscription id of an invoice moved from `subscription` to
//! `parent.subscription_details.subscription` (2025-03-31), the current period moved from the
//! subscription to `items.data[]` (2025-03-31), ids may arrive expanded as objects, and the
//! price may appear as `plan` (before 2018-02) or `price`.

use super::event::{i64_field, id_field, metadata, str_field, Envelope};
use crate::domain::events::{
    BillingEvent, InvoicePayment, PaymentOutcome, SubscriptionChange, SubscriptionSnapshot,
};
use crate::domain::ids::{CustomerId, InvoiceId, SubscriptionId, UserId};
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
            BillingEvent::Subscription { change, snapshot }
        }
        "invoice.paid" | "invoice.payment_succeeded" => invoice(env, PaymentOutcome::Paid)?,
        "invoice.payment_failed" => invoice(env, PaymentOutcome::Failed)?,
        "invoice.payment_action_required" => invoice(env, PaymentOutcome::ActionRequired)?,
        "customer.created" | "customer.updated" => BillingEvent::CustomerUpdated {
            customer: CustomerId::new(need("id", id_field(obj, "id"))?),
            user_claim: metadata(obj, &map.user_metadata_key).map(UserId::new),
        },
        _ => BillingEvent::Unsupported,
    };
    Ok(event)
}

fn invoice(env: &Envelope, outcome: PaymentOutcome) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    let missing = |field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    };
    let subscription = id_field(obj, "subscription").or_else(|| {
        obj.get("parent")
            .and_then(|p| p.get("subscription_details"))
            .and_then(|d| id_field(d, "subscription"))
    });
    Ok(BillingEvent::InvoicePayment(InvoicePayment {
        invoice: InvoiceId::new(id_field(obj, "id").ok_or_else(|| missing("id"))?),
        customer: CustomerId::new(id_field(obj, "customer").ok_or_else(|| missing("customer"))?),
        subscription: subscription.map(SubscriptionId::new),
        outcome,
        hosted_invoice_url: str_field(obj, "hosted_invoice_url").map(str::to_owned),
    }))
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
