//! The outbox: side effects written with the state change, relayed to SQS (moto) at least
//! once with a stable id, in any order; unreadable items set aside without blocking the rest.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::adapters::sqs::SqsQueue;
use billing::domain::ids::{EventId, Provider};
use billing::ports::{BillingStore, Commit, LedgerGuard, LedgerRecord, LedgerState, OutboxMessage};
use billing::relay;
use billing::telemetry::{Counter, Metrics};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn probe_commit(event_id: &str, messages: Vec<OutboxMessage>) -> Commit {
    Commit {
        ledger: LedgerRecord {
            provider: Provider::STRIPE,
            event_id: EventId::new(event_id),
            event_type: "test.ping".into(),
            created: NOW,
            livemode: false,
            state: LedgerState::Applied,
            family: "charge".into(),
            received_at: NOW,
            customer: None,
            detail: None,
            parked: None,
        },
        guard: LedgerGuard::New,
        customer: None,
        users: vec![],
        audit: vec![],
        outbox: messages,
        product: None,
        invoice: None,
        charge: None,
        purchases: vec![],
    }
}

fn ping(id: &str, created_at: i64) -> OutboxMessage {
    OutboxMessage {
        id: id.into(),
        kind: "test.ping".into(),
        body: json!({"hello": id}),
        created_at,
    }
}

#[tokio::test]
async fn moto_a_test_message_written_with_a_commit_reaches_sqs_once_per_id() {
    let store = moto_store().await;
    let (sqs, url) = moto_queue("outbox").await;
    let commit = probe_commit("evt_outbox_probe", vec![ping("msg_probe_1", NOW)]);
    store.commit(&commit).await.expect("commit");
    // The same commit again is refused whole: the message is not written twice.
    assert!(store.commit(&commit).await.is_err());
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let report = relay::drain(store.as_ref(), &queue, &Metrics::Off, 10)
        .await
        .expect("drain");
    assert_eq!((report.sent, report.failed), (1, 0));
    let again = relay::drain(store.as_ref(), &queue, &Metrics::Off, 10)
        .await
        .expect("drain");
    assert_eq!(again.sent, 0, "delivered messages leave the outbox");
    let got = receive_all(&sqs, &url).await;
    assert_eq!(
        got,
        vec![(
            "msg_probe_1".to_owned(),
            "test.ping".to_owned(),
            json!({"hello": "msg_probe_1"})
        )]
    );
}

/// The consumer docs/MODEL.md describes: per user, keep the message with the highest `seq`; ignore
/// lower ones and repeats. Returns each user's kept `access`.
fn keep_highest_seq(deliveries: &[&Value]) -> BTreeMap<String, Value> {
    let mut held: BTreeMap<String, (u64, Value)> = BTreeMap::new();
    for body in deliveries {
        let user = body["user_id"].as_str().expect("user_id").to_owned();
        let seq = body["seq"].as_u64().expect("seq");
        if held.get(&user).is_none_or(|(kept, _)| seq > *kept) {
            held.insert(user, (seq, body["access"].clone()));
        }
    }
    held.into_iter().map(|(u, (_, a))| (u, a)).collect()
}

#[tokio::test]
async fn moto_a_consumer_keeping_the_highest_seq_ends_with_what_get_access_answers() {
    let app = spawn_moto(false).await;
    let (sqs, url) = moto_queue("feed").await;
    // A lifecycle with several access changes and one late (stale) event.
    let files = [
        "01_checkout.session.completed",
        "02_customer.subscription.created",
        "04_invoice.payment_failed",
        "06_customer.subscription.updated__past_due",
        "07_customer.subscription.updated__cancel_at_period_end",
        "03_invoice.paid",
        "05_invoice.payment_action_required",
    ];
    for (i, file) in files.iter().enumerate() {
        // Each change at its own time, so a message kept by mistake shows in `updated_at`.
        app.clock.set(NOW + i as i64);
        let (status, json) = app
            .post_fixture(&format!("stripe/lifecycle/{file}.json"))
            .await;
        assert_eq!(status, StatusCode::OK, "{file}: {json}");
    }
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    relay::drain(app.store.as_ref(), &queue, &app.metrics, 100)
        .await
        .expect("drain");
    let got = receive_all(&sqs, &url).await;
    let feed: Vec<&Value> = got
        .iter()
        .filter(|(_, kind, _)| kind == "access.changed")
        .map(|(_, _, b)| b)
        .collect();
    assert!(feed.len() >= 4, "several changes: {got:?}");
    for b in &feed {
        assert_eq!(b["schema"], billing::feed::FEED_SCHEMA);
        assert!(b["change_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chg_")));
        assert_eq!(b["access"]["feed_seq"], b["seq"], "{b}");
    }
    // The last fixture, an action-required event for the invoice that failed, turns the
    // overdue standing into REQUIRED: the same attempt both failed and needs the customer.
    let last = feed
        .iter()
        .max_by_key(|b| b["seq"].as_i64())
        .expect("a message");
    assert_eq!(last["access"]["billing_status"], "REQUIRED", "{last}");
    let (_, mut answer) = app.get("/users/user_42/access").await;
    let answer = answer.as_object_mut().expect("object");
    assert_eq!(answer.remove("known"), Some(json!(true)));
    assert_eq!(answer.remove("user_id"), Some(json!("user_42")));
    let expected = BTreeMap::from([("user_42".to_owned(), Value::Object(answer.clone()))]);
    // Any order, any repeats: the consumer ends where GET does.
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..25 {
        let mut deliveries: Vec<&Value> = feed.clone();
        for b in &feed {
            if rng.random_bool(0.4) {
                deliveries.push(b);
            }
        }
        deliveries.shuffle(&mut rng);
        assert_eq!(
            keep_highest_seq(&deliveries),
            expected,
            "round {round}: {deliveries:?}"
        );
    }
}

/// Writes an outbox item whose document no relay can read, straight through the SDK.
async fn put_corrupt_outbox(table: &str, id: &str, created_at: i64) {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let s = |v: String| AttributeValue::S(v);
    // Cut short: valid JSON up to a user id, then nothing.
    let doc = format!(
        r#"{{"id": "{id}", "kind": "access.changed", "body": {{"user_id": "user_secret_42""#
    );
    client
        .put_item()
        .table_name(table)
        .item("PK", s(format!("OUTBOX#{id}")))
        .item("SK", s("OUTBOX".into()))
        .item("kind", s("outbox".into()))
        .item("doc", s(doc))
        .item("GSI1PK", s("OUTBOX".into()))
        .item("GSI1SK", s(format!("{created_at:011}#{id}")))
        .send()
        .await
        .expect("put corrupt item");
}

#[tokio::test]
async fn moto_an_unreadable_outbox_item_is_set_aside_and_the_rest_reach_sqs_in_one_pass() {
    let app = spawn_moto(false).await;
    let store = app.dynamo.clone().expect("dynamo");
    let (sqs, url) = moto_queue("unreadable").await;
    let good = vec![ping("msg_good_1", NOW), ping("msg_good_2", NOW + 1)];
    store
        .commit(&probe_commit("evt_unreadable_probe", good))
        .await
        .expect("commit");
    // The oldest item of the pending index, so it comes first in the pass.
    put_corrupt_outbox(store.table(), "bad_1", NOW - 60).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let report = relay::drain(store.as_ref(), &queue, &app.metrics, 10)
        .await
        .expect("one corrupt item does not fail the pass");
    assert_eq!((report.sent, report.failed, report.set_aside), (2, 0, 1));
    let mut ids: Vec<String> = receive_all(&sqs, &url)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["msg_good_1", "msg_good_2"]);
    let (status, listed) = app.get("/outbox/unreadable").await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed["unreadable"].as_array().expect("list").clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], "bad_1");
    assert!(listed[0]["set_aside_at"].as_i64().is_some_and(|t| t > 0));
    let reason = listed[0]["reason"].as_str().expect("reason");
    assert!(
        !reason.is_empty() && !reason.contains("user_secret_42"),
        "{reason}"
    );
    assert_eq!(app.metrics.count(Counter::OutboxUnreadable), 1);
    // Not retried: the next pass finds nothing, and the raw item is still there for an operator.
    let again = relay::drain(store.as_ref(), &queue, &app.metrics, 10)
        .await
        .expect("drain");
    assert_eq!((again.sent, again.failed, again.set_aside), (0, 0, 0));
    assert_eq!(app.metrics.count(Counter::OutboxUnreadable), 1);
    let kept = aws_sdk_dynamodb::Client::new(&sdk_config())
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S("OUTBOX#bad_1".into()))
        .key("SK", AttributeValue::S("OUTBOX".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the raw item is kept");
    assert!(kept.contains_key("doc"));
}

/// A fresh moto queue with these attributes (`.fifo` queues: a name ending in `.fifo`).
async fn moto_queue_with(
    name: String,
    attributes: &[(aws_sdk_sqs::types::QueueAttributeName, &str)],
) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let mut create = sqs.create_queue().queue_name(name);
    for (name, value) in attributes {
        create = create.attributes(name.clone(), *value);
    }
    let url = create
        .send()
        .await
        .expect("create queue in moto")
        .queue_url
        .expect("queue url");
    (sqs, url)
}

fn listed_unreadable(json: &Value) -> Vec<(String, String)> {
    json["unreadable"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| {
            let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (text("id"), text("reason"))
        })
        .collect()
}

/// `billing relay --once` (`relay::sweep`) against a queue that refuses one message for good
/// (moto refuses a body over the queue's `MaximumMessageSize` as SQS does, with
/// `InvalidParameterValue`): the pass finishes, the others reach SQS, the refused one is listed
/// and counted; once the limit is raised, `billing outbox requeue --all` and the next sweep send it.
#[tokio::test]
async fn moto_a_message_sqs_refuses_is_set_aside_the_rest_flow_and_it_is_sent_after_a_fix() {
    use aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize;
    let app = spawn_moto(false).await;
    let store = app.dynamo.clone().expect("dynamo");
    let (sqs, url) = moto_queue_with(unique("refusing"), &[(MaximumMessageSize, "1024")]).await;
    let big = OutboxMessage {
        body: json!({"hello": "x".repeat(2000)}),
        ..ping("msg_big", NOW)
    };
    let messages = vec![
        ping("msg_small_1", NOW - 1),
        big,
        ping("msg_small_2", NOW + 1),
    ];
    store
        .commit(&probe_commit("evt_refused_probe", messages))
        .await
        .expect("commit");
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let report = relay::sweep(store.as_ref(), &queue, &app.metrics, 10)
        .await
        .expect("the pass finishes");
    assert_eq!((report.sent, report.failed, report.refused), (2, 0, 1));
    let mut ids: Vec<String> = receive_all(&sqs, &url)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["msg_small_1", "msg_small_2"]);
    let (status, listed) = app.get("/outbox/unreadable").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed_unreadable(&listed),
        [(
            "msg_big".to_owned(),
            "refused by SQS: InvalidParameterValue (message too large)".to_owned()
        )]
    );
    assert_eq!(app.metrics.count(Counter::OutboxRefused), 1);
    let again = relay::sweep(store.as_ref(), &queue, &app.metrics, 10)
        .await
        .expect("sweep");
    assert_eq!(again, relay::RelayReport::default(), "not retried");

    // The fix: the queue takes larger messages. Requeued, the next sweep sends it, whole.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(MaximumMessageSize, "262144")
        .send()
        .await
        .expect("raise the limit");
    let requeued = relay::requeue(store.as_ref(), &relay::Requeue::All, NOW + 60).await;
    assert_eq!(requeued, Ok(vec!["msg_big".to_owned()]));
    let report = relay::sweep(store.as_ref(), &queue, &app.metrics, 10)
        .await
        .expect("sweep");
    assert_eq!((report.sent, report.failed, report.refused), (1, 0, 0));
    let got = receive_all(&sqs, &url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "msg_big");
    assert_eq!(got[0].2["hello"].as_str().map(str::len), Some(2000));
    let (_, listed) = app.get("/outbox/unreadable").await;
    assert!(listed_unreadable(&listed).is_empty(), "{listed}");
}

/// SQS takes a FIFO group id of 1 to 128 ASCII letters, digits and punctuation; the group is
/// the user id, which the application chooses. (moto does not check group ids, so the test
/// reads back the groups the relay sent and checks them itself.)
#[tokio::test]
async fn moto_a_fifo_feed_gets_a_valid_group_for_any_user_id_one_per_user() {
    use aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId;
    use aws_sdk_sqs::types::QueueAttributeName::FifoQueue;
    let store = moto_store().await;
    let name = format!("{}.fifo", unique("feed"));
    let (sqs, url) = moto_queue_with(name, &[(FifoQueue, "true")]).await;
    let for_user = |id: &str, user: &str, at: i64| OutboxMessage {
        body: json!({"user_id": user}),
        ..ping(id, at)
    };
    let long = "u".repeat(200);
    let messages = vec![
        for_user("m_long_1", &long, NOW),
        for_user("m_long_2", &long, NOW + 1),
        for_user("m_unicode", "ユーザー 42", NOW + 2),
        for_user("m_space", "user 42", NOW + 3),
        for_user("m_plain", "user_42", NOW + 4),
    ];
    store
        .commit(&probe_commit("evt_fifo_probe", messages))
        .await
        .expect("commit");
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let report = relay::sweep(store.as_ref(), &queue, &Metrics::Off, 10)
        .await
        .expect("sweep");
    assert_eq!((report.sent, report.failed, report.refused), (5, 0, 0));
    let mut groups = BTreeMap::new();
    for _ in 0..10 {
        let batch = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageGroupId)
            .send()
            .await
            .expect("receive");
        for m in batch.messages() {
            let id = m.message_attributes().and_then(|a| a.get("message_id"));
            let id = id.and_then(|v| v.string_value()).expect("message_id");
            let group = m.attributes().and_then(|a| a.get(&MessageGroupId));
            groups.insert(id.to_owned(), group.cloned().expect("group id"));
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    assert_eq!(groups.len(), 5, "{groups:?}");
    for (id, group) in &groups {
        let valid = (1..=128).contains(&group.len())
            && group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
        assert!(valid, "{id}: {group:?}");
    }
    assert_eq!(
        groups["m_long_1"], groups["m_long_2"],
        "one user, one group"
    );
    assert_eq!(groups["m_plain"], "user_42", "a valid user id is kept");
    let distinct: std::collections::BTreeSet<_> = groups.values().collect();
    assert_eq!(distinct.len(), 4, "{groups:?}");
}

/// Issue 17, point 2: the pending outbox is spread over the index's shards, and the local
/// sweep reads every one of them (and the unsharded key older items still carry): 130
/// messages over dozens of shards, plus one item written before the sharding, all reach SQS.
#[tokio::test]
async fn moto_outbox_items_on_every_shard_are_all_relayed() {
    use billing::adapters::listing::shard_of;
    let app = spawn_moto(false).await;
    let store = app.dynamo.clone().expect("dynamo");
    let (sqs, url) = moto_queue("shards").await;
    let mut expected = Vec::new();
    for batch in 0..13 {
        let messages: Vec<OutboxMessage> = (0..10)
            .map(|i| ping(&format!("msg_{batch}_{i}"), NOW + batch))
            .collect();
        expected.extend(messages.iter().map(|m| m.id.clone()));
        store
            .commit(&probe_commit(&format!("evt_shards_{batch}"), messages))
            .await
            .expect("commit");
    }
    let shards: std::collections::BTreeSet<u32> = expected
        .iter()
        .map(|id| shard_of(&format!("OUTBOX#{id}")))
        .collect();
    assert!(shards.len() >= 3, "{shards:?}");
    // Written before the sharding: the unsharded key, still read.
    let legacy = ping("msg_legacy", NOW - 5);
    aws_sdk_dynamodb::Client::new(&sdk_config())
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S("OUTBOX#msg_legacy".into()))
        .item("SK", AttributeValue::S("OUTBOX".into()))
        .item("kind", AttributeValue::S("outbox".into()))
        .item(
            "doc",
            AttributeValue::S(serde_json::to_string(&legacy).expect("json")),
        )
        .item("GSI1PK", AttributeValue::S("OUTBOX".into()))
        .item(
            "GSI1SK",
            AttributeValue::S(format!("{:011}#msg_legacy", NOW - 5)),
        )
        .send()
        .await
        .expect("put legacy item");
    expected.push("msg_legacy".into());
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let mut sent = 0;
    for _ in 0..10 {
        let report = relay::drain(store.as_ref(), &queue, &app.metrics, 50)
            .await
            .expect("drain");
        assert_eq!(report.failed, 0);
        if report.sent == 0 {
            break;
        }
        sent += report.sent;
    }
    assert_eq!(sent, expected.len());
    let mut received = Vec::new();
    loop {
        let batch = receive_all(&sqs, &url).await;
        if batch.is_empty() {
            break;
        }
        received.extend(batch.into_iter().map(|(id, _, _)| id));
    }
    received.sort();
    expected.sort();
    assert_eq!(received, expected);
    assert!(store.pending_outbox(10).await.expect("pending").is_empty());
}
