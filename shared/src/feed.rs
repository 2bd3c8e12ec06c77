//! The change feed and the audit summary: what an applied event tells the application.
//! Messages are built here and written to the outbox in the event's own commit.

use crate::digest::sha256_hex;
use crate::domain::access::{best_access, Access, SubscriptionAccess, TierPolicy};
use crate::domain::customer::CustomerBilling;
use crate::domain::events::EventMeta;
use crate::domain::ids::UserId;
use crate::ports::{OutboxMessage, UserAccessDoc};
use serde_json::json;

/// Puts (or, with `None`, removes) one source's subscriptions in a user's document and
/// recomputes the access; returns the previous and new access when the access changed.
pub fn update_user(
    mut doc: UserAccessDoc,
    source: &str,
    subs: Option<Vec<SubscriptionAccess>>,
    tiers: &TierPolicy,
    now: i64,
) -> (UserAccessDoc, Option<(Access, Access)>) {
    match subs {
        Some(subs) => doc.sources.insert(source.to_owned(), subs),
        None => doc.sources.remove(source),
    };
    let access = best_access(doc.sources.values().flatten(), tiers);
    doc.updated_at = now;
    if access == doc.access {
        return (doc, None);
    }
    let previous = std::mem::replace(&mut doc.access, access.clone());
    doc.feed_seq += 1;
    (doc, Some((previous, access)))
}

/// Names of the access fields that differ (the feed's `changed`).
fn changed_fields(a: &Access, b: &Access) -> Vec<&'static str> {
    [
        ("tier", a.tier != b.tier),
        ("status", a.status != b.status),
        ("standing", a.standing != b.standing),
        ("billing_status", a.billing_status != b.billing_status),
        (
            "current_period_end",
            a.current_period_end != b.current_period_end,
        ),
        (
            "cancel_at_period_end",
            a.cancel_at_period_end != b.cancel_at_period_end,
        ),
        ("subscription", a.subscription != b.subscription),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// Feed schema version 1 (documented in README).
pub const FEED_SCHEMA: &str = "billing.access_changed.v1";

pub fn access_changed(
    doc: &UserAccessDoc,
    previous: &Access,
    access: &Access,
    meta: &EventMeta,
    now: i64,
) -> OutboxMessage {
    let id = format!(
        "chg_{}",
        &sha256_hex(format!("{}\n{}\n{}", doc.user, doc.feed_seq, meta.id).as_bytes())[..24]
    );
    OutboxMessage {
        id: id.clone(),
        kind: "access.changed".into(),
        body: json!({
            "schema": FEED_SCHEMA,
            "change_id": id,
            "user_id": doc.user,
            "seq": doc.feed_seq,
            "access": access,
            "previous": previous,
            "grants_paid_tier": access.grants_paid_tier(),
            "changed": changed_fields(previous, access),
            "cause": cause(meta),
            "occurred_at": now,
        }),
        created_at: now,
        order_key: format!("{now:011}#{}#{:010}", doc.user, doc.feed_seq),
    }
}

pub fn customer_unlinked(
    state: &CustomerBilling,
    subs: &[SubscriptionAccess],
    meta: &EventMeta,
    now: i64,
) -> OutboxMessage {
    let id = format!(
        "unl_{}",
        &sha256_hex(format!("{}\n{}", state.customer, meta.id).as_bytes())[..24]
    );
    OutboxMessage {
        id: id.clone(),
        kind: "customer.unlinked".into(),
        body: json!({
            "schema": "billing.customer_unlinked.v1",
            "change_id": id,
            "provider": state.provider,
            "customer": state.customer,
            "subscriptions": subs,
            "cause": cause(meta),
            "occurred_at": now,
        }),
        created_at: now,
        order_key: format!("{now:011}#{}#{:010}", state.customer, 0),
    }
}

fn cause(meta: &EventMeta) -> serde_json::Value {
    json!({
        "provider": meta.provider,
        "event_id": meta.id,
        "event_type": meta.event_type,
        "created": meta.created,
    })
}

/// The part of a customer's state an audit entry shows: the link and the subscriptions that
/// differ from `other` (before vs after).
pub fn summary(
    user: Option<&UserId>,
    subs: &[SubscriptionAccess],
    other: &[SubscriptionAccess],
) -> serde_json::Value {
    let changed: Vec<&SubscriptionAccess> = subs.iter().filter(|s| !other.contains(s)).collect();
    json!({ "user": user, "subscriptions": changed })
}
