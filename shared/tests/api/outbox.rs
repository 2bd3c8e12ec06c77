//! The outbox: side effects written with the state change, relayed to SQS (moto) at least
//! once with a stable id.

use crate::helpers::*;
use billing::adapters::sqs::SqsQueue;
use billing::domain::ids::{EventId, Provider};
use billing::ports::{BillingStore, Commit, LedgerGuard, LedgerRecord, LedgerState, OutboxMessage};
use billing::relay;
use billing::routing::Family;
use serde_json::json;

#[tokio::test]
async fn moto_a_test_message_written_with_a_commit_reaches_sqs_once_per_id() {
    let store = moto_store().await;
    let (sqs, url) = moto_queue("outbox").await;
    let commit = Commit {
        ledger: LedgerRecord {
            provider: Provider::Stripe,
            event_id: EventId::new("evt_outbox_probe"),
            event_type: "test.ping".into(),
            created: NOW,
            livemode: false,
            state: LedgerState::Applied,
            family: Family::Charge,
            received_at: NOW,
            customer: None,
            detail: None,
            parked: None,
        },
        guard: LedgerGuard::New,
        customer: None,
        users: vec![],
        audit: vec![],
        outbox: vec![OutboxMessage {
            id: "msg_probe_1".into(),
            kind: "test.ping".into(),
            body: json!({"hello": "feed"}),
            created_at: NOW,
            order_key: "probe".into(),
        }],
    };
    store.commit(&commit).await.expect("commit");
    // The same commit again is refused whole: the message is not written twice.
    assert!(store.commit(&commit).await.is_err());
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let report = relay::drain(store.as_ref(), &queue, 10)
        .await
        .expect("drain");
    assert_eq!((report.sent, report.failed), (1, 0));
    let again = relay::drain(store.as_ref(), &queue, 10)
        .await
        .expect("drain");
    assert_eq!(again.sent, 0, "delivered messages leave the outbox");
    let got = receive_all(&sqs, &url).await;
    assert_eq!(
        got,
        vec![(
            "msg_probe_1".to_owned(),
            "test.ping".to_owned(),
            json!({"hello": "feed"})
        )]
    );
}

#[tokio::test]
async fn moto_access_changes_reach_the_feed_in_the_order_they_were_applied() {
    let app = spawn_moto(false).await;
    let (sqs, url) = moto_queue("feed").await;
    for file in [
        "01_checkout.session.completed",
        "02_customer.subscription.created",
        "04_invoice.payment_failed",
        "03_invoice.paid",
    ] {
        app.post_fixture(&format!("stripe/lifecycle/{file}.json"))
            .await;
    }
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    relay::drain(app.store.as_ref(), &queue, 100)
        .await
        .expect("drain");
    let got = receive_all(&sqs, &url).await;
    let feed: Vec<&serde_json::Value> = got
        .iter()
        .filter(|(_, kind, _)| kind == "access.changed")
        .map(|(_, _, b)| b)
        .collect();
    // created → access granted (seq 1); the failure (newer than the paid invoice) → past due (seq 2);
    // the older invoice.paid arrives late and is stale: no third change.
    let seqs: Vec<i64> = feed
        .iter()
        .map(|b| b["seq"].as_i64().expect("seq"))
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2], "{got:?}");
    for b in &feed {
        assert_eq!(b["schema"], billing::feed::FEED_SCHEMA);
        assert_eq!(b["user_id"], "user_42");
        assert!(b["change_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chg_")));
    }
    let last = feed.iter().max_by_key(|b| b["seq"].as_i64()).expect("last");
    assert_eq!(last["access"]["billing_status"], "PAST_DUE");
    assert_eq!(last["cause"]["event_type"], "invoice.payment_failed");
}
