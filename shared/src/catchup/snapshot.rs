//! A Stripe object read from a list endpoint, wrapped as the event that carries it as a plain
//! snapshot, observed at fetch time: what `billing import` (and `reconcile`'s repairs) feed to
//! [`crate::pipeline::Pipeline::receive_trusted`].
//!
//! Contract:
//! - the type is one whose translation is the object's state and nothing more
//!   (`customer.subscription.updated`, `invoice.updated`, `product.updated`, …); a canceled
//!   subscription is `customer.subscription.deleted` and a paid, void or uncollectible invoice
//!   the type Stripe sends for that state, because the model keeps those as final registers;
//! - `created` is the fetch time, so an event Stripe creates after the fetch wins, and one in the
//!   same second is ordered by today's rule for that second;
//! - the id is `evt_snap_{object id}_{16 hex of SHA-256 of the object}`: the same object read
//!   twice (a resumed run, a second import) is the same event, a ledger duplicate that repeats
//!   no work; a changed object is a new event.

use crate::adapters::stripe_api::STRIPE_VERSION;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The event type that carries `object` as a snapshot; `None` for an object the model keeps
/// nothing of (a charge without refunds: `payment_intent.succeeded` binds charges, and the
/// invoices and subscriptions carry the rest).
pub fn snapshot_type(object: &Value) -> Option<&'static str> {
    let status = object.get("status").and_then(Value::as_str).unwrap_or("");
    Some(match object.get("object")?.as_str()? {
        "product" => "product.updated",
        "price" => "price.updated",
        "plan" => "plan.updated",
        "customer" => "customer.updated",
        "subscription" => {
            use crate::domain::events::SubscriptionStatus as S;
            // An ended subscription is imported as its deletion; every other status, an unknown
            // one too (it grants nothing: docs/MODEL.md), as an update.
            match S::parse(status) {
                S::Canceled | S::IncompleteExpired => "customer.subscription.deleted",
                S::Incomplete
                | S::Trialing
                | S::Active
                | S::PastDue
                | S::Unpaid
                | S::Paused
                | S::Unknown(_) => "customer.subscription.updated",
            }
        }
        "invoice" => match status {
            "paid" => "invoice.paid",
            "void" => "invoice.voided",
            "uncollectible" => "invoice.marked_uncollectible",
            _ => "invoice.updated",
        },
        "charge" => {
            let refunded = object
                .get("amount_refunded")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if refunded > 0 {
                "charge.refunded"
            } else {
                return None;
            }
        }
        "refund" => "refund.updated",
        "dispute" => "charge.dispute.updated",
        "entitlements.active_entitlement_summary" => {
            crate::providers::stripe::entitlements::SUMMARY_UPDATED
        }
        _ => return None,
    })
}

/// The id of the snapshot event of `object` (see the module's contract).
pub fn snapshot_id(object: &Value) -> Option<String> {
    let id = object.get("id").and_then(Value::as_str)?;
    let digest = Sha256::digest(object.to_string().as_bytes());
    Some(format!("evt_snap_{id}_{}", hex::encode(&digest[..8])))
}

/// The event body for `object`, fetched at `fetched_at`: `None` when its type carries nothing
/// the model keeps or it has no id. `livemode` is the object's own when it says. An object read
/// in a connected `account` (`Stripe-Account`) is that account's event, as its Connect
/// delivery says (`account`), so it is recorded and applied in the account's namespace.
pub fn snapshot_event(
    object: &Value,
    fetched_at: i64,
    livemode: bool,
    account: Option<crate::domain::ids::Account>,
) -> Option<(String, Vec<u8>)> {
    let event_type = snapshot_type(object)?;
    let id = snapshot_id(object)?;
    let livemode = object
        .get("livemode")
        .and_then(Value::as_bool)
        .unwrap_or(livemode);
    let body = json!({
        "id": id,
        "object": "event",
        "type": event_type,
        "created": fetched_at,
        "livemode": livemode,
        "api_version": STRIPE_VERSION,
        "pending_webhooks": 0,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": object},
    });
    let mut body = body;
    if let (Some(account), Some(fields)) = (account, body.as_object_mut()) {
        fields.insert("account".into(), account.as_str().into());
    }
    Some((id, body.to_string().into_bytes()))
}

/// Stripe's active entitlements of `customer` (a page of `entitlements.active_entitlement`)
/// as the summary object its `entitlements.active_entitlement_summary.updated` event carries.
pub fn entitlement_summary(customer: &str, entitlements: &[Value], has_more: bool) -> Value {
    json!({
        "object": "entitlements.active_entitlement_summary",
        "id": format!("ents_{customer}"),
        "customer": customer,
        "entitlements": {"object": "list", "data": entitlements, "has_more": has_more},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::BillingEvent;
    use crate::providers::stripe::event::Envelope;
    use crate::providers::stripe::translate::{translate, StripeMapping};

    #[test]
    fn types_follow_the_objects_state() {
        let t = |v: Value| snapshot_type(&v);
        assert_eq!(
            t(json!({"object": "subscription", "status": "trialing"})),
            Some("customer.subscription.updated")
        );
        assert_eq!(
            t(json!({"object": "subscription", "status": "canceled"})),
            Some("customer.subscription.deleted")
        );
        assert_eq!(
            t(json!({"object": "invoice", "status": "paid"})),
            Some("invoice.paid")
        );
        assert_eq!(
            t(json!({"object": "invoice", "status": "open"})),
            Some("invoice.updated")
        );
        assert_eq!(t(json!({"object": "charge", "amount_refunded": 0})), None);
        assert_eq!(
            t(json!({"object": "charge", "amount_refunded": 5})),
            Some("charge.refunded")
        );
        assert_eq!(t(json!({"object": "balance_transaction"})), None);
        assert_eq!(t(json!({"status": "active"})), None);
    }

    #[test]
    fn the_id_is_the_objects_content_and_created_is_the_fetch() {
        let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1",
                         "status": "active", "metadata": {"user_id": "u1"}, "livemode": false});
        let (id, body) = snapshot_event(&sub, 1_000, true, None).expect("event");
        let (again, _) = snapshot_event(&sub, 2_000, true, None).expect("event");
        assert_eq!(id, again, "the same object is the same event");
        let mut changed = sub.clone();
        changed["status"] = json!("past_due");
        assert_ne!(
            snapshot_event(&changed, 1_000, true, None)
                .expect("event")
                .0,
            id
        );
        let env = Envelope::parse(&body).expect("envelope");
        assert_eq!((env.created, env.livemode), (1_000, Some(false)));
        assert!(
            env.id.starts_with("evt_snap_sub_1_") && env.id.len() == "evt_snap_sub_1_".len() + 16
        );
        match translate(&env, &StripeMapping::default()).expect("translated") {
            BillingEvent::Subscription { snapshot, .. } => assert_eq!(
                snapshot.status,
                crate::domain::events::SubscriptionStatus::Active
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_object_read_in_a_connected_account_is_that_accounts_event() {
        let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1",
                         "status": "active", "livemode": false});
        let account = crate::domain::ids::Account::parse("acct_1Conn").expect("account");
        let (platform_id, platform) = snapshot_event(&sub, 1_000, false, None).expect("event");
        let (id, body) = snapshot_event(&sub, 1_000, false, Some(account)).expect("event");
        assert_eq!(
            id, platform_id,
            "the id is the object's; the account keys it apart"
        );
        let env = Envelope::parse(&body).expect("envelope");
        assert_eq!(env.account.as_deref(), Some("acct_1Conn"));
        let env = Envelope::parse(&platform).expect("envelope");
        assert_eq!(env.account, None);
    }

    #[test]
    fn an_entitlement_summary_reads_as_stripes_event() {
        let summary = entitlement_summary(
            "cus_1",
            &[
                json!({"object": "entitlements.active_entitlement", "id": "ent_1", "lookup_key": "export"}),
            ],
            false,
        );
        let (_, body) = snapshot_event(&summary, 1_000, false, None).expect("event");
        let env = Envelope::parse(&body).expect("envelope");
        match translate(&env, &StripeMapping::default()).expect("translated") {
            BillingEvent::Entitlements {
                customer,
                entitlements,
                ..
            } => {
                assert_eq!(customer.as_str(), "cus_1");
                assert!(
                    entitlements.lookup_keys.contains("export")
                        && entitlements.lookup_keys.len() == 1
                );
                assert!(entitlements.complete);
            }
            other => panic!("{other:?}"),
        }
    }
}
