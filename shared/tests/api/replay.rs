//! Parked events: kept with their bytes, answered 200, visible, and replayable idempotently.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::domain::ids::{EventId, Provider};
use billing::pipeline::{DuplicateBy, Outcome};
use billing::ports::LedgerState;
use billing::routing::Family;
use billing::telemetry::Counter;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_known_type_of_unknown_shape_is_parked_with_its_bytes() {
    let app = spawn_memory(false);
    // A subscription event without a customer: our model cannot place it.
    let body = event(
        "evt_odd",
        "customer.subscription.updated",
        NOW,
        json!({"id": "sub_odd", "status": "active"}),
    );
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    assert_eq!(app.metrics.count(Counter::Parked), 1);
    let (_, listed) = app.get("/events/parked").await;
    assert_eq!(listed["parked"][0]["event_id"], "evt_odd", "{listed}");
    let (_, record) = app.get("/events/stripe/evt_odd").await;
    assert_eq!(record["state"], "parked");
    assert!(
        record["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("customer"),
        "{record}"
    );
    assert_eq!(record["parked_body"]["bytes"], body.len());
    assert_eq!(record["parked_body"]["stored"], true);
    let stored = app
        .store
        .ledger(Provider::Stripe, &EventId::new("evt_odd"))
        .await
        .expect("read")
        .expect("record");
    let gz = stored.parked.and_then(|p| p.gzip).expect("gzip");
    assert_eq!(
        billing::digest::gunzip(&gz).expect("gunzip"),
        body,
        "the exact bytes are kept"
    );
    // Still unreadable: a replay leaves it parked, and a redelivery is a duplicate.
    let outcome = app
        .service
        .replay(Provider::Stripe, &EventId::new("evt_odd"))
        .await;
    assert!(
        matches!(
            outcome,
            Outcome::Recorded {
                state: LedgerState::Parked,
                ..
            }
        ),
        "{outcome:?}"
    );
    let (_, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(json["state"], "duplicate");
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_parked_under_its_hash() {
    let app = spawn_memory(false);
    let (status, json) = app.post(Family::Charge, b"\x00\x01 not json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["state"], "parked");
    assert!(json["event_id"]
        .as_str()
        .unwrap_or_default()
        .starts_with("unparsed_"));
}

#[tokio::test]
async fn a_body_too_large_for_an_item_is_parked_without_it() {
    let app = spawn_memory(false);
    // Incompressible bytes: the gzip stays above the item budget.
    let mut big = Vec::with_capacity(400 * 1024);
    let mut x: u32 = 1;
    while big.len() < 400 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big.extend_from_slice(&x.to_le_bytes());
    }
    let (_, json) = app.post(Family::Charge, &big).await;
    assert_eq!(json["state"], "parked");
    let id = json["event_id"].as_str().expect("id");
    let (_, record) = app.get(&format!("/events/stripe/{id}")).await;
    assert_eq!(record["parked_body"]["stored"], false, "{record}");
    assert_eq!(record["parked_body"]["bytes"], big.len());
}

#[tokio::test]
async fn moto_replay_applies_a_parked_event_once_the_cause_is_fixed() {
    let app = spawn_moto(false).await;
    let store = app.dynamo.as_ref().expect("dynamo");
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    // A stored aggregate our code cannot read (a bug, or a hand edit): events for it park.
    client
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S("CUS#stripe#cus_fix".into()))
        .item("SK", AttributeValue::S("STATE".into()))
        .item("doc", AttributeValue::S("{not json".into()))
        .item("rev", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("put");
    let body = event(
        "evt_fix",
        "customer.subscription.created",
        NOW,
        subscription("sub_fix", "cus_fix", "active", Some("u_fix")),
    );
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    let parked = app.store.parked(10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    let outcome = app
        .service
        .replay(Provider::Stripe, &EventId::new("evt_fix"))
        .await;
    assert_eq!(
        outcome,
        Outcome::Recorded {
            event_id: "evt_fix".into(),
            state: LedgerState::Parked
        },
        "not fixed yet: still parked"
    );
    // The fix: the bad item is removed. Replay now applies it, once.
    client
        .delete_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S("CUS#stripe#cus_fix".into()))
        .key("SK", AttributeValue::S("STATE".into()))
        .send()
        .await
        .expect("delete");
    let outcome = app
        .service
        .replay(Provider::Stripe, &EventId::new("evt_fix"))
        .await;
    assert_eq!(
        outcome,
        Outcome::Recorded {
            event_id: "evt_fix".into(),
            state: LedgerState::Applied
        }
    );
    let again = app
        .service
        .replay(Provider::Stripe, &EventId::new("evt_fix"))
        .await;
    assert_eq!(
        again,
        Outcome::Duplicate {
            event_id: "evt_fix".into(),
            by: DuplicateBy::Read,
        },
        "replay is idempotent"
    );
    assert!(app.store.parked(10).await.expect("parked").is_empty());
    let (_, access) = app.get("/users/u_fix/access").await;
    assert_eq!(access["billing_status"], "DONE", "{access}");
}

/// Issue 7, point 4: a store error that can never succeed (DynamoDB refusing the request, e.g.
/// an item over 400 KB) parks the event with its reason instead of answering 503 for the three
/// days Stripe retries; once the cause is fixed, a replay applies it.
#[tokio::test]
async fn a_permanent_store_error_parks_the_event_instead_of_503() {
    use billing::adapters::faults::Step;
    let app = spawn_memory(false);
    app.post_fixture("stripe/lifecycle/01_checkout.session.completed.json")
        .await;
    app.faults.fail_next(Step::CommitRefused);
    let (status, json) = app
        .post_fixture("stripe/lifecycle/02_customer.subscription.created.json")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "parked", "{json}");
    let id = EventId::new(json["event_id"].as_str().expect("id"));
    let record = app
        .store
        .ledger(Provider::Stripe, &id)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(record.state, LedgerState::Parked);
    assert!(
        record
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("permanent")),
        "{record:?}"
    );
    assert_eq!(app.metrics.count(Counter::Unavailable), 0, "never a 503");
    let (_, before) = app.get("/users/user_42/access").await;
    assert_eq!(
        before["grants_paid_tier"], false,
        "nothing applied: {before}"
    );
    // The cause is gone (the fault fires once): the replay applies it.
    let outcome = app.service.replay(Provider::Stripe, &id).await;
    assert!(
        matches!(
            &outcome,
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            }
        ),
        "{outcome:?}"
    );
    let (_, after) = app.get("/users/user_42/access").await;
    assert_eq!(after["grants_paid_tier"], true, "{after}");
}
