//! Stripe event → canonical [`BillingEvent`], for every API version from 2018 to basil.
//!
//! Drift handled here (invoices: `invoice.rs`): the current period moved from the
//! subscription to `items.data[]` (2025-03-31), ids may arrive expanded as objects, and the
//! price may appear as `plan` (before 2018-02) or `price`. A recurring price is also announced
//! as the legacy plan object (`plan.*`: `amount`, `interval` on the object) beside `price.*`
//! (`unit_amount`, `recurring.interval`): both become one price snapshot.

use super::charges;
use super::event::{as_bool, i64_field, id_field, metadata, str_field, Envelope};
use super::family::Family;
use super::invoice::{invoice_event, invoice_kind, invoice_payment_paid};
pub use super::mapping::{StripeMapping, TranslateError};
use crate::domain::events::{
    AddressChange, BillingEvent, CatalogueChange, CatalogueEvent, ChargeRefund, CustomerProfile,
    EmailAddress, Gift, PriceBilling, PriceObject, PriceSnapshot, ProductSnapshot, Purchase,
    PurchaseKind, SubscriptionChange, SubscriptionSnapshot, SubscriptionStatus,
};
use crate::domain::ids::{CustomerId, PriceId, ProductId, SubscriptionId, UserId};
use crate::providers::evidence::{before_update, order_evidence, snapshot_evidence};
use serde_json::Value;

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
    // Disputes, refund objects and the charge's binding to its customer (`charges.rs`).
    if let Some(event) = charges::translate(env) {
        return event;
    }
    let event = match env.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            checkout_completed(env, map)?
        }
        "charge.refunded" => match id_field(obj, "customer") {
            // A guest charge names no customer: no aggregate holds its purchase.
            None => BillingEvent::Unsupported,
            Some(customer) => BillingEvent::ChargeRefunded(ChargeRefund {
                customer: CustomerId::new(customer),
                charge: need("id", id_field(obj, "id"))?,
                payment_intent: id_field(obj, "payment_intent"),
                invoice: id_field(obj, "invoice"),
                amount: i64_field(obj, "amount").unwrap_or_default(),
                amount_refunded: i64_field(obj, "amount_refunded").unwrap_or_default(),
                refunded: obj.get("refunded").and_then(as_bool).unwrap_or(false),
            }),
        },
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
                status: SubscriptionStatus::parse(&need(
                    "status",
                    str_field(obj, "status").map(str::to_owned),
                )?),
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
            // A customer object always has `email`; null or empty: no address any more.
            email: obj.get("email").map(|v| match email_field(Some(v)) {
                Some(address) => AddressChange::Set(address),
                None => AddressChange::Removed,
            }),
            profile: customer_profile(obj),
        },
        "customer.deleted" => BillingEvent::CustomerDeleted {
            customer: CustomerId::new(need("id", id_field(obj, "id"))?),
        },
        super::entitlements::SUMMARY_UPDATED => super::entitlements::summary(env)?,
        t if t.starts_with(super::schedule::PREFIX) => super::schedule::schedule(env)?,
        t if t.starts_with("product.") || t.starts_with("price.") || t.starts_with("plan.") => {
            catalogue(env, map)?
        }
        _ => BillingEvent::Unsupported,
    };
    Ok(event)
}

/// The customer object's `name` and `preferred_locales`, when it has either field.
fn customer_profile(obj: &Value) -> Option<CustomerProfile> {
    if obj.get("name").is_none() && obj.get("preferred_locales").is_none() {
        return None;
    }
    let locales: Vec<&str> = obj
        .get("preferred_locales")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Some(CustomerProfile::new(str_field(obj, "name"), &locales))
}

/// A completed (or asynchronously paid) Checkout Session: the link to the user and, in payment
/// mode, the purchase (a gift among them).
fn checkout_completed(env: &Envelope, map: &StripeMapping) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    let user = str_field(obj, "client_reference_id")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(UserId::new);
    let purchase = purchase(obj, map).map_err(|field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    })?;
    match id_field(obj, "customer") {
        // A gift must be kept by its buyer's customer: parked, never dropped.
        None if purchase.as_ref().is_some_and(|p| p.gift.is_some()) => Err(TranslateError {
            event_type: env.event_type.clone(),
            field: "customer",
        }),
        // A guest payment without a customer object: nothing to link.
        None => Ok(BillingEvent::Unsupported),
        Some(customer) => Ok(BillingEvent::CheckoutCompleted {
            customer: CustomerId::new(customer),
            subscription: id_field(obj, "subscription").map(SubscriptionId::new),
            user,
            purchase,
            email: email_field(obj.get("customer_details").and_then(|d| d.get("email")))
                .or_else(|| email_field(obj.get("customer_email"))),
        }),
    }
}

/// An address field as the customer record keeps it: a non-empty string (its shape is checked
/// when an email is sent, so a bad one is never mailed but the newest value still wins).
fn email_field(value: Option<&Value>) -> Option<EmailAddress> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(EmailAddress::new)
}

/// Checkout Session metadata naming a gift's recipient (see [`crate::domain::events::Gift`]).
pub const GIFT_RECIPIENT_KEY: &str = "gift_recipient_user_id";
/// Checkout Session metadata: the gift's length in days.
pub const GIFT_DAYS_KEY: &str = "gift_days";
/// The longest gift (ten years).
const MAX_GIFT_DAYS: i64 = 3650;

/// The gift a payment-mode session's metadata describes; `Err(field)` for a gift whose
/// metadata is incomplete (the event is parked with the field's name, nothing applied).
fn gift(obj: &Value, map: &StripeMapping) -> Result<Option<Gift>, &'static str> {
    let Some(recipient) = metadata(obj, GIFT_RECIPIENT_KEY) else {
        return Ok(None);
    };
    let days = metadata(obj, GIFT_DAYS_KEY)
        .and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| (1..=MAX_GIFT_DAYS).contains(d))
        .ok_or("metadata.gift_days")?;
    let tier = metadata(obj, &map.tier_metadata_key).ok_or("metadata.tier")?;
    let start = i64_field(obj, "created").ok_or("created")?;
    Ok(Some(Gift {
        recipient: UserId::new(recipient),
        tier,
        start,
        end: start + days * 86_400,
    }))
}

/// The one-time purchase of a payment-mode session (`None` for subscription and setup mode).
/// The product comes from expanded line items when present, else the `product_id` metadata.
fn purchase(obj: &Value, map: &StripeMapping) -> Result<Option<Purchase>, &'static str> {
    if str_field(obj, "mode") != Some("payment") {
        return Ok(None);
    }
    let gift = gift(obj, map)?;
    let Some(session) = id_field(obj, "id") else {
        return Ok(None);
    };
    let line_product = obj
        .pointer("/line_items/data/0/price")
        .and_then(|price| id_field(price, "product"));
    Ok(Some(Purchase {
        session,
        kind: PurchaseKind::Checkout,
        payment_intent: id_field(obj, "payment_intent"),
        product: line_product
            .or_else(|| metadata(obj, "product_id"))
            .map(ProductId::new),
        amount_total: i64_field(obj, "amount_total"),
        currency: str_field(obj, "currency").map(str::to_owned),
        paid: matches!(
            str_field(obj, "payment_status"),
            Some("paid" | "no_payment_required")
        ),
        gift,
        created: i64_field(obj, "created"),
        paid_by: Default::default(),
    }))
}

/// `product.*`, `price.*` and `plan.*` (created, updated, deleted). The evidence is taken per
/// field of the snapshot, before and after the change (the object with its
/// `previous_attributes` put back), so a plan and a price give the same fields.
fn catalogue(env: &Envelope, map: &StripeMapping) -> Result<BillingEvent, TranslateError> {
    let (object, action) = env.event_type.split_once('.').unwrap_or_default();
    let change = match action {
        "created" => CatalogueChange::Created,
        "updated" => CatalogueChange::Updated,
        "deleted" => CatalogueChange::Deleted,
        _ => return Ok(BillingEvent::Unsupported),
    };
    let missing = |field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    };
    // Only updates report what they replaced; creations and deletions order by rank.
    let before = env
        .previous
        .as_ref()
        .filter(|_| change == CatalogueChange::Updated)
        .map(|previous| before_update(&env.object, previous));
    let event = if object == "product" {
        let snapshot = product_snapshot(&env.object, map, change).ok_or_else(|| missing("id"))?;
        let was = before
            .as_ref()
            .and_then(|b| product_snapshot(b, map, change));
        CatalogueEvent::Product {
            change,
            evidence: snapshot_evidence(&snapshot, was.as_ref()),
            snapshot,
        }
    } else {
        let shape = if object == "plan" {
            PriceObject::Plan
        } else {
            PriceObject::Price
        };
        let snapshot = price_snapshot(&env.object, map, shape, change).map_err(missing)?;
        let was = before
            .as_ref()
            .and_then(|b| price_snapshot(b, map, shape, change).ok());
        CatalogueEvent::Price {
            change,
            object: shape,
            evidence: snapshot_evidence(&snapshot, was.as_ref()),
            snapshot,
        }
    };
    Ok(BillingEvent::Catalogue(event))
}

/// A string attribute; an empty string is no value.
fn text(obj: &Value, key: &str) -> Option<String> {
    str_field(obj, key)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `active` as sent; a deleted object without one is no longer active.
fn active(obj: &Value, change: CatalogueChange) -> bool {
    obj.get("active")
        .and_then(as_bool)
        .unwrap_or(change != CatalogueChange::Deleted)
}

fn product_snapshot(
    obj: &Value,
    map: &StripeMapping,
    change: CatalogueChange,
) -> Option<ProductSnapshot> {
    Some(ProductSnapshot {
        id: ProductId::new(id_field(obj, "id")?),
        name: text(obj, "name"),
        description: text(obj, "description"),
        active: active(obj, change),
        tier: metadata(obj, &map.tier_metadata_key),
    })
}

/// A price or plan object as a price snapshot; `Err` names the missing attribute.
fn price_snapshot(
    obj: &Value,
    map: &StripeMapping,
    shape: PriceObject,
    change: CatalogueChange,
) -> Result<PriceSnapshot, &'static str> {
    let (unit_amount, billing, lookup_key) = match shape {
        // A plan is always recurring, its period on the object itself (2018-02-05 to today).
        PriceObject::Plan => (i64_field(obj, "amount"), recurring(obj)?, None),
        PriceObject::Price => {
            let billing = match (str_field(obj, "type"), obj.get("recurring")) {
                (Some("one_time"), _) => PriceBilling::OneTime,
                (Some("recurring") | None, Some(r)) if r.is_object() => recurring(r)?,
                (Some("recurring"), _) => return Err("recurring"),
                (None, _) => PriceBilling::OneTime,
                (Some(_), _) => return Err("type"),
            };
            (
                i64_field(obj, "unit_amount"),
                billing,
                text(obj, "lookup_key"),
            )
        }
    };
    Ok(PriceSnapshot {
        id: PriceId::new(id_field(obj, "id").ok_or("id")?),
        product: ProductId::new(id_field(obj, "product").ok_or("product")?),
        active: active(obj, change),
        currency: text(obj, "currency").ok_or("currency")?,
        unit_amount,
        billing,
        tier: metadata(obj, &map.tier_metadata_key),
        nickname: text(obj, "nickname"),
        lookup_key,
    })
}

/// `interval` and `interval_count` of a price's `recurring` hash or of a plan.
fn recurring(v: &Value) -> Result<PriceBilling, &'static str> {
    Ok(PriceBilling::Recurring {
        interval: text(v, "interval").ok_or("interval")?,
        interval_count: i64_field(v, "interval_count")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
    })
}

/// A subscription object (as the API returns it) as a snapshot; `None` without id, customer
/// or status.
pub fn subscription_snapshot(obj: &Value, map: &StripeMapping) -> Option<SubscriptionSnapshot> {
    Some(SubscriptionSnapshot {
        id: SubscriptionId::new(id_field(obj, "id")?),
        customer: CustomerId::new(id_field(obj, "customer")?),
        status: SubscriptionStatus::parse(str_field(obj, "status")?),
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
        // Filled by the caller.
        status: SubscriptionStatus::Unknown(String::new()),
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
        trial_start: i64_field(obj, "trial_start"),
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
    use crate::domain::events::{InvoiceChange, InvoicePayment, OrderEvidence};
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
    fn the_customer_address_comes_from_customer_events_and_checkout() {
        let email = |event_type: &str, object: Value| {
            let event = translate(&env(event_type, object), &StripeMapping::default());
            match event.expect("ok") {
                BillingEvent::CustomerUpdated { email, .. } => email.map(|e| {
                    e.address()
                        .map_or("removed".to_owned(), |a| a.as_str().to_owned())
                }),
                BillingEvent::CheckoutCompleted { email, .. } => {
                    email.map(|e| e.as_str().to_owned())
                }
                other => panic!("{other:?}"),
            }
        };
        let customer = |e: Value| json!({"id": "cus_1", "object": "customer", "email": e});
        assert_eq!(
            email("customer.created", customer(json!("a@example.com"))),
            Some("a@example.com".into())
        );
        assert_eq!(
            email("customer.updated", customer(Value::Null)),
            Some("removed".into())
        );
        assert_eq!(
            email("customer.updated", customer(json!("  "))),
            Some("removed".into())
        );
        // No `email` field at all (a trimmed payload): says nothing about the address.
        assert_eq!(
            email(
                "customer.updated",
                json!({"id": "cus_1", "object": "customer"})
            ),
            None
        );
        let session = |details: Value, fallback: Value| {
            json!({"id": "cs_1", "customer": "cus_1", "mode": "subscription",
                "subscription": "sub_1", "customer_details": details, "customer_email": fallback})
        };
        let completed = "checkout.session.completed";
        assert_eq!(
            email(
                completed,
                session(json!({"email": "d@example.com"}), json!("f@example.com"))
            ),
            Some("d@example.com".into())
        );
        assert_eq!(
            email(completed, session(Value::Null, json!("f@example.com"))),
            Some("f@example.com".into())
        );
        assert_eq!(email(completed, session(json!({}), Value::Null)), None);
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

    fn catalogue_event(e: &Envelope) -> CatalogueEvent {
        match translate(e, &StripeMapping::default()).expect("translate") {
            BillingEvent::Catalogue(c) => c,
            other => panic!("not a catalogue event: {other:?}"),
        }
    }

    fn price_of(e: &Envelope) -> (PriceObject, PriceSnapshot, OrderEvidence) {
        match catalogue_event(e) {
            CatalogueEvent::Price {
                object,
                snapshot,
                evidence,
                ..
            } => (object, snapshot, evidence),
            other => panic!("not a price: {other:?}"),
        }
    }

    /// A recurring price and its legacy plan object describe one price: the same snapshot
    /// (the plan has no lookup key), the same evidence fields.
    #[test]
    fn a_plan_and_its_price_give_one_snapshot() {
        let price = env(
            "price.updated",
            json!({"id": "price_1", "object": "price", "active": true, "currency": "usd",
            "product": "prod_1", "type": "recurring", "unit_amount": 900, "lookup_key": "k",
            "recurring": {"interval": "month", "interval_count": 3, "usage_type": "licensed"},
            "nickname": "Quarterly", "metadata": {"tier": "pro", "other": "x"}}),
        );
        let plan = env(
            "plan.updated",
            json!({"id": "price_1", "object": "plan", "active": true, "currency": "usd",
            "product": {"id": "prod_1", "object": "product"}, "interval": "month",
            "interval_count": 3, "amount": 900, "amount_decimal": "900",
            "nickname": "Quarterly", "metadata": {"tier": "pro"}}),
        );
        let (a, mut from_price, e1) = price_of(&price);
        let (b, from_plan, e2) = price_of(&plan);
        assert_eq!((a, b), (PriceObject::Price, PriceObject::Plan));
        assert_eq!(from_price.lookup_key.take().as_deref(), Some("k"));
        assert_eq!(from_price, from_plan);
        assert_eq!(
            from_plan.billing,
            PriceBilling::Recurring {
                interval: "month".into(),
                interval_count: 3
            }
        );
        assert_eq!(from_plan.tier.as_deref(), Some("pro"));
        assert_eq!(
            e1.values.keys().collect::<Vec<_>>(),
            e2.values.keys().collect::<Vec<_>>()
        );
    }

    /// An update's evidence lists exactly the snapshot fields it changed, whatever else
    /// `previous_attributes` reports (`updated`, metadata keys the model does not read).
    #[test]
    fn catalogue_updates_carry_the_fields_they_changed() {
        let body = json!({"id": "evt_u", "type": "price.updated", "created": 10, "data": {
            "object": {"id": "price_1", "object": "price", "active": false, "currency": "eur",
                "product": "prod_1", "type": "one_time", "unit_amount": 500,
                "metadata": {"tier": "team", "other": "y"}},
            "previous_attributes": {"active": true, "metadata": {"tier": null, "other": "x"}}}});
        let e = Envelope::parse(body.to_string().as_bytes()).expect("parse");
        let (_, snapshot, evidence) = price_of(&e);
        assert_eq!((snapshot.active, snapshot.unit_amount), (false, Some(500)));
        let changed: Vec<&str> = evidence.previous.keys().map(String::as_str).collect();
        assert_eq!(changed, ["active", "tier"]);
        let body = json!({"id": "evt_p", "type": "product.updated", "created": 10, "data": {
            "object": {"id": "prod_1", "object": "product", "active": true, "name": "New",
                "updated": 10},
            "previous_attributes": {"name": "Old", "updated": 5}}});
        let e = Envelope::parse(body.to_string().as_bytes()).expect("parse");
        let CatalogueEvent::Product { evidence, .. } = catalogue_event(&e) else {
            panic!("not a product");
        };
        assert_eq!(evidence.previous.keys().collect::<Vec<_>>(), ["name"]);
    }

    #[test]
    fn a_catalogue_object_that_cannot_be_placed_is_an_error() {
        let cases = [
            (
                "price.created",
                json!({"id": "price_1", "currency": "usd"}),
                "product",
            ),
            (
                "plan.created",
                json!({"id": "p", "product": "prod_1", "currency": "usd"}),
                "interval",
            ),
            (
                "price.created",
                json!({"id": "p", "product": "prod_1", "currency": "usd", "type": "weird"}),
                "type",
            ),
            (
                "price.deleted",
                json!({"id": "p", "object": "price", "deleted": true}),
                "product",
            ),
            ("product.updated", json!({"name": "no id"}), "id"),
        ];
        for (event_type, object, field) in cases {
            let err = translate(&env(event_type, object), &StripeMapping::default())
                .expect_err(event_type);
            assert_eq!(err.field, field, "{event_type}");
        }
        assert_eq!(
            translate(
                &env("product.frobnicated", json!({})),
                &StripeMapping::default()
            ),
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
        for catalogue in ["product.created", "price.updated", "plan.deleted"] {
            assert_eq!(family_of(catalogue), Family::Charge, "{catalogue}");
        }
    }
}
