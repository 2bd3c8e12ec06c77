//! Stripe events about one charge: disputes (`charge.dispute.*`), refund objects (`refund.*`,
//! `charge.refund.updated`) and the binding of a charge to its customer
//! (`payment_intent.succeeded`). Disputes and refunds name the charge (and, since about 2019,
//! the payment intent) but never the customer; the charge's own item joins them.

use super::event::{i64_field, id_field, str_field, Envelope};
use super::mapping::TranslateError;
use crate::domain::events::{
    BillingEvent, ChargeBinding, DisputeChange, DisputeEvent, RefundChange, RefundEvent,
};
use crate::domain::ids::CustomerId;
use serde_json::Value;

/// The event if its type is one of this module's (`None`: not a charge event modelled here).
pub fn translate(env: &Envelope) -> Option<Result<BillingEvent, TranslateError>> {
    if let Some(change) = dispute_change(&env.event_type) {
        return Some(dispute(env, change));
    }
    if let Some(change) = refund_change(&env.event_type) {
        return Some(refund(env, change));
    }
    (env.event_type == "payment_intent.succeeded").then(|| Ok(binding(env)))
}

/// The dispute change a `charge.dispute.*` type reports (`None`: not a dispute type we model).
pub fn dispute_change(event_type: &str) -> Option<DisputeChange> {
    Some(match event_type.strip_prefix("charge.dispute.")? {
        "created" => DisputeChange::Created,
        "updated" => DisputeChange::Updated,
        "closed" => DisputeChange::Closed,
        "funds_withdrawn" => DisputeChange::FundsWithdrawn,
        "funds_reinstated" => DisputeChange::FundsReinstated,
        _ => return None,
    })
}

/// The refund change a refund object's type reports.
pub fn refund_change(event_type: &str) -> Option<RefundChange> {
    Some(match event_type {
        "refund.created" => RefundChange::Created,
        "refund.updated" | "charge.refund.updated" => RefundChange::Updated,
        "refund.failed" => RefundChange::Failed,
        _ => return None,
    })
}

fn missing(env: &Envelope, field: &'static str) -> TranslateError {
    TranslateError {
        event_type: env.event_type.clone(),
        field,
    }
}

/// A `charge.dispute.*` event: the dispute object with its charge.
pub fn dispute(env: &Envelope, change: DisputeChange) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    Ok(BillingEvent::Dispute(DisputeEvent {
        change,
        dispute: id_field(obj, "id").ok_or_else(|| missing(env, "id"))?,
        charge: id_field(obj, "charge").ok_or_else(|| missing(env, "charge"))?,
        payment_intent: id_field(obj, "payment_intent"),
        status: str_field(obj, "status")
            .map(str::to_owned)
            .ok_or_else(|| missing(env, "status"))?,
        amount: i64_field(obj, "amount"),
        currency: str_field(obj, "currency").map(str::to_owned),
        reason: str_field(obj, "reason").map(str::to_owned),
    }))
}

/// A refund object's event.
pub fn refund(env: &Envelope, change: RefundChange) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    Ok(BillingEvent::Refund(RefundEvent {
        change,
        refund: id_field(obj, "id").ok_or_else(|| missing(env, "id"))?,
        charge: id_field(obj, "charge").ok_or_else(|| missing(env, "charge"))?,
        payment_intent: id_field(obj, "payment_intent"),
        status: str_field(obj, "status")
            .map(str::to_owned)
            .ok_or_else(|| missing(env, "status"))?,
        amount: i64_field(obj, "amount"),
        currency: str_field(obj, "currency").map(str::to_owned),
    }))
}

/// The charge that paid a succeeded payment intent: `latest_charge` (API 2022-11-15 and
/// later), or the succeeded entry of `charges.data[]` (before).
fn paying_charge(obj: &Value) -> Option<String> {
    id_field(obj, "latest_charge").or_else(|| {
        obj.pointer("/charges/data")?
            .as_array()?
            .iter()
            .find(|c| str_field(c, "status") == Some("succeeded"))
            .and_then(|c| id_field(c, "id"))
    })
}

/// `payment_intent.succeeded`: binds its charge to its customer. A guest payment (no customer)
/// or one without a charge binds nothing and is recorded as not modelled.
pub fn binding(env: &Envelope) -> BillingEvent {
    let obj = &env.object;
    let (Some(customer), Some(charge)) = (id_field(obj, "customer"), paying_charge(obj)) else {
        return BillingEvent::Unsupported;
    };
    BillingEvent::ChargeBound(ChargeBinding {
        customer: CustomerId::new(customer),
        charge,
        payment_intent: id_field(obj, "id"),
        amount: i64_field(obj, "amount_received").or_else(|| i64_field(obj, "amount")),
        currency: str_field(obj, "currency").map(str::to_owned),
    })
}
