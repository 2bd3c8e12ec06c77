//! Parked events: kept with their bytes, answered 200, visible, and replayable idempotently.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::domain::ids::{EventId, Provider};
use billing::pipeline::{DuplicateBy, Outcome};
use billing::ports::LedgerState;
use billing::providers::stripe::Family;
use billing::telemetry::Counter;
use http::StatusCode;
use serde_json::{json, Value};

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
        .ledger(Provider::STRIPE, &EventId::new("evt_odd"))
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
        .replay(Provider::STRIPE, &EventId::new("evt_odd"))
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
        .replay(Provider::STRIPE, &EventId::new("evt_fix"))
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
        .replay(Provider::STRIPE, &EventId::new("evt_fix"))
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
        .replay(Provider::STRIPE, &EventId::new("evt_fix"))
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
        .ledger(Provider::STRIPE, &id)
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
    let outcome = app.service.replay(Provider::STRIPE, &id).await;
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

/// Incompressible text (a-z, A-Z, 0-9) of `len` characters: gzip keeps about three quarters.
fn noise(len: usize, seed: u32) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(ALPHABET[(x % 62) as usize])
        })
        .collect()
}

/// Issue 17, point 7: 20 parked events with bodies of about 270 KB each (gzip). DynamoDB pages
/// a query at 1 MB, so the listing read one page, three records: `billing parked`, the route
/// and `billing replay --all` saw three of twenty. Every listing now pages through all of
/// them, the route with a cursor, and a replay of all applies all twenty.
#[tokio::test]
async fn moto_twenty_parked_events_with_large_bodies_are_all_listed_and_replayed() {
    let app = spawn_moto(false).await;
    let store = app.dynamo.as_ref().expect("dynamo");
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let key = |k: &str| AttributeValue::S(k.into());
    // An aggregate our code cannot read: every event of its customer parks until it is fixed.
    client
        .put_item()
        .table_name(store.table())
        .item("PK", key("CUS#stripe#cus_big"))
        .item("SK", key("STATE"))
        .item("doc", key("{not json"))
        .item("rev", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("put");
    for i in 0..20 {
        let mut object = subscription(&format!("sub_big_{i}"), "cus_big", "active", Some("u_big"));
        object["x_padding"] = json!(noise(360_000, i + 1));
        let body = event(
            &format!("evt_big_{i:02}"),
            "customer.subscription.created",
            NOW + i64::from(i),
            object,
        );
        let (_, json) = app.post(Family::Subscription, &body).await;
        assert_eq!(json["state"], "parked", "{i}: {json}");
    }
    assert_eq!(app.store.parked(1000).await.expect("parked").len(), 20);

    let mut listed = Vec::new();
    let mut path = "/events/parked?limit=7".to_owned();
    for _ in 0..5 {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for r in page["parked"].as_array().expect("list") {
            assert_eq!(r["parked_body"]["stored"], true, "{r}");
            listed.push(r["event_id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/events/parked?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("evt_big_{i:02}")).collect();
    assert_eq!(listed, expected, "every page, oldest first, each once");

    client
        .delete_item()
        .table_name(store.table())
        .key("PK", key("CUS#stripe#cus_big"))
        .key("SK", key("STATE"))
        .send()
        .await
        .expect("delete");
    // What `billing replay --all` does: every parked record, then each replayed.
    let all = billing::ports::all_parked(app.store.as_ref())
        .await
        .expect("all");
    assert_eq!(all.len(), 20);
    let mut applied = 0;
    for r in all {
        let outcome = app.service.replay(r.provider, &r.event_id).await;
        if matches!(
            outcome,
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            }
        ) {
            applied += 1;
        }
    }
    assert_eq!(applied, 20);
    assert!(app.store.parked(1000).await.expect("parked").is_empty());
}

/// The listing routes take a cursor they gave out and a limit of 1 to 1000; anything else is a
/// clear 400 that quotes nothing.
#[tokio::test]
async fn a_listing_pages_with_its_cursor_and_refuses_a_bad_one() {
    let app = spawn_memory(false);
    for i in 0..5 {
        let body = event(
            &format!("evt_page_{i}"),
            "customer.subscription.updated",
            NOW + i,
            json!({"id": format!("sub_page_{i}"), "status": "active"}),
        );
        let (_, json) = app.post(Family::Subscription, &body).await;
        assert_eq!(json["state"], "parked", "{json}");
    }
    let (_, first) = app.get("/events/parked?limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    assert_eq!(first["parked"][1]["event_id"], "evt_page_1");
    let (_, second) = app
        .get(&format!("/events/parked?cursor={cursor}&limit=3"))
        .await;
    let ids: Vec<&str> = second["parked"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["event_id"].as_str())
        .collect();
    assert_eq!(ids, ["evt_page_2", "evt_page_3", "evt_page_4"]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, none) = app.get("/outbox/unreadable").await;
    assert_eq!(none["unreadable"], json!([]));
    assert_eq!(none["next_cursor"], Value::Null);
    for bad in [
        "/events/parked?limit=0",
        "/events/parked?limit=1001",
        "/events/parked?limit=many",
        "/events/parked?cursor=not%20a%20cursor",
        "/events/parked?cursor=ZXZ0X3NlY3JldA",
        "/outbox/unreadable?cursor=",
    ] {
        let (status, json) = app.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
        let why = json["error"].as_str().unwrap_or_default();
        assert!(
            !why.is_empty() && !why.contains("evt_secret"),
            "{bad}: {why}"
        );
    }
}
