//! The change feed and the audit summary: what an applied event tells the application.
//! Messages are built here and written to the outbox in the event's own commit.
//!
//! The feed's contract (docs/MODEL.md, "Change feed"): every `access.changed` message carries the
//! user's whole access view — exactly what `GET /users/{id}/access` answers — and its `seq`;
//! delivery is at least once and in any order, so a consumer keeps the highest `seq` per user.

use crate::digest::sha256_hex;
use crate::domain::access::{
    best_access, Access, PurchaseAccess, PurchaseSummary, PurchaseTotals, SubscriptionAccess,
    TierPolicy,
};
use crate::domain::customer::CustomerBilling;
use crate::domain::events::EventMeta;
use crate::domain::ids::UserId;
use crate::ports::{OutboxMessage, UserAccessDoc};
use serde::Serialize;
use serde_json::json;

/// A user's whole access as `GET /users/{id}/access` answers it and as every `access.changed`
/// message carries it (under `access`): built only by [`access_view`], so the two never drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessView {
    #[serde(flatten)]
    pub access: Access,
    pub grants_paid_tier: bool,
    /// Every subscription of every source linked to the user.
    pub sources: Vec<SubscriptionAccess>,
    /// The newest one-time purchases of the sources linked to the user (at most
    /// `PURCHASES_SHOWN`), granting or not and why; the billing route pages through all.
    pub purchases: Vec<PurchaseAccess>,
    /// Exact counts over every purchase of those sources (what is granted, per product).
    pub purchase_totals: PurchaseTotals,
    /// The `seq` of the newest change; a consumer holding it is up to date.
    pub feed_seq: u64,
    /// When the view last changed (`None`: an unknown user).
    pub updated_at: Option<i64>,
}

/// The access view of a user's document (`None`: a user we know nothing about).
pub fn access_view(doc: Option<&UserAccessDoc>) -> AccessView {
    let access = doc.map_or_else(Access::none, |d| d.access.clone());
    let bought = doc.map_or_else(PurchaseSummary::default, |d| {
        PurchaseSummary::merge(d.purchases.values())
    });
    AccessView {
        grants_paid_tier: access.grants_paid_tier(),
        access,
        sources: doc.map_or_else(Vec::new, |d| {
            d.sources.values().flatten().cloned().collect()
        }),
        purchases: bought.newest,
        purchase_totals: bought.totals,
        feed_seq: doc.map_or(0, |d| d.feed_seq),
        updated_at: doc.map(|d| d.updated_at),
    }
}

/// What one source (a provider customer) gives its user: its subscriptions' access, its
/// active features and its one-time purchases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAccess {
    pub subscriptions: Vec<SubscriptionAccess>,
    pub features: Vec<String>,
    /// The source's purchases as its aggregate books them (never the whole list).
    pub purchases: PurchaseSummary,
}

/// Puts (or, with `None`, removes) one source's access in a user's document and recomputes
/// the user's access; returns the previous and new access when the user's access view
/// changed (the access or any subscription in it), which is when a message is due: a message
/// carries the whole view, so a view that changed unannounced would leave consumers behind.
pub fn update_user(
    doc: UserAccessDoc,
    source: &str,
    given: Option<SourceAccess>,
    tiers: &TierPolicy,
    now: i64,
) -> (UserAccessDoc, Option<(Access, Access)>) {
    update_user_sources(doc, vec![(source.to_owned(), given)], tiers, now)
}

/// [`update_user`] for several sources of one event at once (a customer and the gifts it
/// bought the same user): one document write, at most one message.
pub fn update_user_sources(
    mut doc: UserAccessDoc,
    updates: Vec<(String, Option<SourceAccess>)>,
    tiers: &TierPolicy,
    now: i64,
) -> (UserAccessDoc, Option<(Access, Access)>) {
    let view_before = access_view(Some(&doc));
    for (source, given) in updates {
        doc.features.remove(&source);
        doc.purchases.remove(&source);
        match given {
            Some(given) => {
                if !given.features.is_empty() {
                    doc.features.insert(source.clone(), given.features);
                }
                if given.purchases.totals.count > 0 {
                    doc.purchases.insert(source.clone(), given.purchases);
                }
                doc.sources.insert(source, given.subscriptions);
            }
            None => {
                doc.sources.remove(&source);
            }
        }
    }
    let access = current_access(&doc, tiers, now);
    let previous = std::mem::replace(&mut doc.access, access.clone());
    let view_after = access_view(Some(&doc));
    // A change of a purchase outside the newest that moves no total is not announced: the
    // message would carry nothing new (it is in the audit trail and the billing route).
    let unchanged = (
        view_after.access,
        view_after.sources,
        view_after.purchases,
        view_after.purchase_totals,
    ) == (
        view_before.access,
        view_before.sources,
        view_before.purchases,
        view_before.purchase_totals,
    );
    if unchanged {
        if doc.updated_at == 0 {
            // A new document: stamped when created, and not again until its view changes.
            doc.updated_at = now;
        }
        return (doc, None);
    }
    doc.updated_at = now;
    doc.feed_seq += 1;
    (doc, Some((previous, access)))
}

/// A user's access from its document's sources at `now`. Stored with each change, and
/// recomputed by the read routes, since a fixed period (a grant, a gift) lapses by itself.
pub fn current_access(doc: &UserAccessDoc, tiers: &TierPolicy, now: i64) -> Access {
    let mut access = best_access(doc.sources.values().flatten(), tiers, now);
    let features: std::collections::BTreeSet<&String> = doc.features.values().flatten().collect();
    access.features = features.into_iter().cloned().collect();
    access
}

/// Names of the access fields that differ (the feed's `changed`; empty when only a
/// subscription in `sources` or a purchase changed).
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
        ("features", a.features != b.features),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// Feed schema version 1 (documented in docs/MODEL.md).
pub const FEED_SCHEMA: &str = "billing.access_changed.v1";

/// The message announcing a change of `doc` (already updated); `previous` and `access` are the
/// access before and after it.
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
    let mut body = json!({
            "schema": FEED_SCHEMA,
            "change_id": id,
            "user_id": doc.user,
            "seq": doc.feed_seq,
            "access": access_view(Some(doc)),
            "previous": previous,
            "grants_paid_tier": access.grants_paid_tier(),
            "changed": changed_fields(previous, access),
            "cause": cause(meta),
            "occurred_at": now,
    });
    if let Some(account) = meta.provider.account() {
        // A connected account's user (`user_id` is `{account}/{user}`): the account by itself.
        body["account"] = json!(account.as_str());
    }
    OutboxMessage {
        id: id.clone(),
        kind: "access.changed".into(),
        body,
        created_at: now,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{EventId, Provider};

    fn doc() -> UserAccessDoc {
        UserAccessDoc {
            user: UserId::new("u"),
            sources: Default::default(),
            features: Default::default(),
            purchases: Default::default(),
            access: Access::none(),
            feed_seq: 0,
            updated_at: 0,
        }
    }

    fn given(features: &[&str]) -> Option<SourceAccess> {
        Some(SourceAccess {
            subscriptions: Vec::new(),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            purchases: PurchaseSummary::default(),
        })
    }

    /// The access lists the features of every source once, sorted; a change of features alone
    /// is a change of the view (a message, `changed: ["features"]`); a source that leaves takes
    /// its features with it.
    #[test]
    fn features_of_every_source_are_listed_and_announced() {
        let tiers = TierPolicy::default();
        let (d, change) = update_user(
            doc(),
            "stripe:cus_a",
            given(&["seats", "export"]),
            &tiers,
            5,
        );
        assert!(change.is_some());
        let (d, change) = update_user(d, "stripe:cus_b", given(&["export", "api"]), &tiers, 6);
        let (previous, access) = change.expect("a new feature is a change");
        assert_eq!(access.features, ["api", "export", "seats"]);
        let meta = EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new("evt_1"),
            event_type: "entitlements.active_entitlement_summary.updated".into(),
            created: 6,
            millis: 0,
            livemode: false,
            api_version: None,
        };
        let message = access_changed(&d, &previous, &access, &meta, 6);
        assert_eq!(message.body["changed"], json!(["features"]));
        assert_eq!(message.body.get("account"), None, "the platform's own user");
        let account = crate::domain::ids::Account::parse("acct_1Feed").expect("id");
        let connected = EventMeta {
            provider: Provider::STRIPE.in_account(account),
            ..meta.clone()
        };
        let message = access_changed(&d, &previous, &access, &connected, 6);
        assert_eq!(message.body["account"], "acct_1Feed");
        assert_eq!(
            message.body["access"]["features"],
            json!(["api", "export", "seats"])
        );
        let (d, change) = update_user(d, "stripe:cus_b", given(&["export", "api"]), &tiers, 7);
        assert!(change.is_none(), "the same features again change nothing");
        let (d, change) = update_user(d, "stripe:cus_a", None, &tiers, 8);
        assert!(change.is_some());
        assert_eq!(d.access.features, ["api", "export"]);
        assert_eq!(d.features.len(), 1);
    }
}
