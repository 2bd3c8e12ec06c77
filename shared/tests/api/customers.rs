//! `customer.deleted`: the customer's subscriptions end, in any order with their own deletions.

use crate::helpers::*;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn every_customer_deleted_fixture_is_applied_to_its_customer() {
    for (file, customer) in [
        (
            "stripe/2018-01-23/customer.deleted__stripe_model_callbacks.json",
            "cus_00000000000000",
        ),
        (
            "stripe/2020-03-02/customer.deleted__stripe-sync-engine.json",
            "cus_IhGfebO16cMIGN",
        ),
    ] {
        let app = spawn_memory(false);
        let (status, json) = app.post_fixture(file).await;
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{file}: {json}"
        );
        let id = json["event_id"].as_str().expect("event id");
        let (_, record) = app.get(&format!("/events/stripe/{id}")).await;
        assert_eq!(record["customer"], customer, "{file}: {record}");
    }
}

/// Three events: the subscription's creation, then (one second later) the customer's deletion
/// and the subscription's. In all six orders the user ends with no paid tier, CANCELLED, and
/// the same view; the subscription's own reason wins over `customer_deleted` once it is known.
#[tokio::test]
async fn a_deleted_customer_ends_its_subscriptions_in_every_order() {
    let created = event(
        "evt_c1",
        "customer.subscription.created",
        NOW - 10,
        subscription("sub_d", "cus_d", "active", Some("u_d")),
    );
    let mut deleted_sub = subscription("sub_d", "cus_d", "canceled", Some("u_d"));
    deleted_sub["cancellation_details"] = json!({"reason": "cancellation_requested"});
    let sub_deleted = event("evt_c2", "customer.subscription.deleted", NOW, deleted_sub);
    let customer_deleted = event(
        "evt_c3",
        "customer.deleted",
        NOW,
        json!({"id": "cus_d", "object": "customer", "deleted": true}),
    );
    let events = [
        (Family::Subscription, &created),
        (Family::Subscription, &sub_deleted),
        (Family::Charge, &customer_deleted),
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut views: Vec<Value> = Vec::new();
    for order in orders {
        let app = spawn_memory(false);
        for i in order {
            let (status, json) = app.post(events[i].0, events[i].1).await;
            assert_eq!(status, StatusCode::OK, "{order:?}: {json}");
        }
        let (_, access) = app.get("/users/u_d/access").await;
        assert_eq!(access["billing_status"], "CANCELLED", "{order:?}: {access}");
        assert_eq!(access["grants_paid_tier"], false, "{order:?}");
        assert_eq!(
            access["sources"][0]["cancellation_reason"], "cancellation_requested",
            "{order:?}: {access}"
        );
        views.push(json!([
            access["sources"],
            access["billing_status"],
            access["tier"]
        ]));
    }
    assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");

    // Without the subscription's own deletion, the customer's deletion alone ends it.
    let app = spawn_memory(false);
    for body in [&created, &customer_deleted] {
        let family = if body == &created {
            Family::Subscription
        } else {
            Family::Charge
        };
        app.post(family, body).await;
    }
    let (_, access) = app.get("/users/u_d/access").await;
    assert_eq!(access["billing_status"], "CANCELLED", "{access}");
    assert_eq!(
        access["sources"][0]["cancellation_reason"],
        "customer_deleted"
    );
    assert_eq!(access["sources"][0]["standing"], "ended");
}
