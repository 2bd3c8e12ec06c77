//! A customer with a long history (issue 17, point 1): thousands of one-time purchases must not
//! grow the user's item or the feed's message, so a late `customer.subscription.deleted` is
//! still applied and still revokes access. In memory, with DynamoDB's item size rule.

use crate::helpers::*;
use billing::adapters::memory::InMemoryBillingStore;
use billing::domain::ids::UserId;
use billing::providers::stripe::translate::family_of;
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// Past the old cliff: each purchase was ~300 bytes in the user item, which passed DynamoDB's
/// 400 KB at about 1,360 of them.
const PURCHASES: usize = 1_500;
/// The bound README documents for a feed message and the user item.
const BOUND: usize = 64 * 1024;

/// A paid payment-mode session of `cus_heavy` for `user_heavy`, with Stripe-length ids.
pub fn purchase(i: usize, created: i64) -> Value {
    json!({
        "id": format!("cs_live_a1{i:0>56}"),
        "object": "checkout.session",
        "mode": "payment",
        "customer": "cus_heavy",
        "client_reference_id": "user_heavy",
        "payment_intent": format!("pi_3Kl36gJDPojXS6LN{i:0>8}"),
        "amount_total": 1900,
        "currency": "eur",
        "payment_status": "paid",
        "status": "complete",
        "created": created,
        "metadata": {"product_id": format!("prod_book_{}", i % 7)}
    })
}

async fn deliver(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) -> Value {
    let body = event(id, kind, created, object);
    let (status, json) = app.post(family_of(kind), &body).await;
    assert_eq!(status, StatusCode::OK, "{id}: {json}");
    json
}

#[tokio::test]
async fn a_user_with_thousands_of_purchases_still_loses_access_when_the_subscription_ends() {
    let memory = Arc::new(InMemoryBillingStore::with_item_limit());
    let app = spawn_on_memory(memory.clone());
    let sub = subscription("sub_heavy", "cus_heavy", "active", Some("user_heavy"));
    let created = deliver(
        &app,
        "evt_h0",
        "customer.subscription.created",
        NOW - 9_000,
        sub.clone(),
    )
    .await;
    assert_eq!(created["state"], "applied");
    for i in 0..PURCHASES {
        let at = NOW - 8_000 + i as i64;
        let answer = deliver(
            &app,
            &format!("evt_hp{i}"),
            "checkout.session.completed",
            at,
            purchase(i, at),
        )
        .await;
        assert_eq!(answer["state"], "applied", "purchase {i}: {answer}");
    }
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    let mut ended = sub;
    ended["status"] = json!("canceled");
    let deleted = deliver(
        &app,
        "evt_hd",
        "customer.subscription.deleted",
        NOW - 10,
        ended,
    )
    .await;
    assert_eq!(deleted["state"], "applied", "{deleted}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    assert_eq!(access["standing"], "ended", "{access}");

    // Every feed message and the user's item stay under the documented bound.
    let user = memory
        .user(&UserId::new("user_heavy"))
        .expect("the user's item");
    let user_size = serde_json::to_string(&user).expect("json").len();
    assert!(user_size <= BOUND, "user item {user_size} bytes");
    let pending = app.store.pending_outbox(usize::MAX).await.expect("outbox");
    assert!(pending.len() > PURCHASES, "one message per change");
    for message in pending {
        let message = message.expect("readable");
        let size = serde_json::to_string(&message.body).expect("json").len();
        assert!(size <= BOUND, "{} is {size} bytes", message.id);
    }
}
