//! Test helpers shared by the customer aggregate's tests.

use crate::domain::events::{
    BillingEvent, EventMeta, OrderEvidence, SubscriptionChange, SubscriptionSnapshot,
};
use crate::domain::ids::{CustomerId, EventId, Provider, SubscriptionId};

pub fn meta(id: &str, created: i64) -> EventMeta {
    EventMeta {
        provider: Provider::STRIPE,
        id: EventId::new(id),
        event_type: "customer.subscription.updated".into(),
        created,
        millis: 0,
        livemode: false,
        api_version: None,
    }
}

pub fn snapshot(sub: &str, status: &str) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: SubscriptionId::new(sub),
        customer: CustomerId::new("cus"),
        status: status.into(),
        price_id: None,
        product_id: None,
        tier_hint: None,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        cancel_at: None,
        trial_end: None,
        trial_start: None,
        cancellation_reason: None,
        user_claim: None,
    }
}

pub fn evidence(values: &[(&str, &str)], previous: &[(&str, &str)]) -> OrderEvidence {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    OrderEvidence {
        values: map(values),
        previous: map(previous),
    }
}

pub fn updated(status: &str, ev: OrderEvidence) -> BillingEvent {
    BillingEvent::Subscription {
        change: SubscriptionChange::Updated,
        snapshot: snapshot("sub", status),
        evidence: ev,
    }
}
