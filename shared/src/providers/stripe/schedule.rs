//! `subscription_schedule.*`: the phases a schedule will move its subscription through. Each
//! event carries the whole schedule; the latest of them (by second, rank and
//! `previous_attributes`) is its state, as for a subscription.

use super::event::{i64_field, id_field, str_field, Envelope};
use super::mapping::TranslateError;
use crate::domain::events::{BillingEvent, SchedulePhase, ScheduleSnapshot};
use crate::domain::ids::{CustomerId, SubscriptionId};
use crate::domain::periods::Span;
use crate::providers::evidence::order_evidence;
use serde_json::Value;

pub const PREFIX: &str = "subscription_schedule.";

/// The most phases kept from one schedule, the first ones (the nearest). Stripe's schedules
/// hold a handful; the cap only stops a forged or corrupt event from growing the model.
pub const MAX_PHASES: usize = 100;

/// Same-second precedence: a schedule is created, then updated, then ends.
fn rank(action: &str) -> Option<u8> {
    match action {
        "created" => Some(1),
        "updated" | "expiring" => Some(2),
        "released" | "canceled" | "completed" | "aborted" => Some(3),
        _ => None,
    }
}

/// One phase: its dates and the price of its first item (`price` since 2018-02, `plan`
/// before); `None` without both dates.
fn phase(p: &Value) -> Option<SchedulePhase> {
    let item = p
        .get("items")
        .or_else(|| p.get("plans"))
        .and_then(Value::as_array)
        .and_then(|items| items.first());
    let price_id = item
        .and_then(|i| i.get("price").or_else(|| i.get("plan")))
        .and_then(|price| match price {
            Value::String(id) => Some(id.clone()),
            other => id_field(other, "id"),
        });
    Some(SchedulePhase {
        start: i64_field(p, "start_date")?,
        end: i64_field(p, "end_date")?,
        price_id,
        trial_end: i64_field(p, "trial_end"),
    })
}

/// The event as a canonical one; `Unsupported` for an action we do not know yet.
pub fn schedule(env: &Envelope) -> Result<BillingEvent, TranslateError> {
    let Some(rank) = rank(&env.event_type[PREFIX.len().min(env.event_type.len())..]) else {
        return Ok(BillingEvent::Unsupported);
    };
    let obj = &env.object;
    let missing = |field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    };
    let current_phase = obj.get("current_phase").and_then(|c| {
        Some(Span {
            start: i64_field(c, "start_date")?,
            end: i64_field(c, "end_date")?,
        })
    });
    let phases = obj
        .get("phases")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(phase).take(MAX_PHASES).collect())
        .unwrap_or_default();
    let snapshot = ScheduleSnapshot {
        id: id_field(obj, "id").ok_or_else(|| missing("id"))?,
        customer: CustomerId::new(id_field(obj, "customer").ok_or_else(|| missing("customer"))?),
        subscription: id_field(obj, "subscription")
            .or_else(|| id_field(obj, "released_subscription"))
            .map(SubscriptionId::new),
        status: str_field(obj, "status")
            .ok_or_else(|| missing("status"))?
            .to_owned(),
        current_phase,
        phases,
    };
    Ok(BillingEvent::Schedule {
        rank,
        snapshot,
        evidence: order_evidence(obj, env.previous.as_ref()),
    })
}
