//! `billing relay --once`, `billing outbox list` and `billing outbox requeue`, run as the
//! operator runs them, against moto: a message SQS refuses for good (a body over the queue's
//! `MaximumMessageSize`) does not stop the sweep, is listed with SQS's code, and is sent once
//! the queue takes it and it is requeued.

use aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize;
use billing::adapters::dynamo::outbox_item;
use billing::ports::OutboxMessage;
use serde_json::{json, Value};
use std::process::{Command, Output};

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{t}", std::process::id())
}

/// Runs the `billing` binary with the table and feed queue set; moto's endpoint and credentials
/// come from the test's environment. Its development state goes to a temporary directory, not
/// the source tree.
fn billing(table: &str, queue: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(args)
        .env("BILLING_TABLE", table)
        .env("BILLING_FEED_QUEUE_URL", queue)
        .env("BILLING_STATE_DIR", std::env::temp_dir().join(table))
        .output()
        .expect("run billing")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn message(id: &str, body: Value, created_at: i64) -> OutboxMessage {
    OutboxMessage {
        id: id.into(),
        kind: "test.ping".into(),
        body,
        created_at,
    }
}

async fn receive_ids(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let id = m.message_attributes().and_then(|a| a.get("message_id"));
            ids.push(
                id.and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned(),
            );
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn moto_relay_once_finishes_past_a_refused_message_which_is_listed_then_requeued() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts moto)"
    );
    let sdk = billing::app::aws_config().await;
    let (sqs, dynamo) = (
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_dynamodb::Client::new(&sdk),
    );
    let table = unique("relay-once");
    let url = sqs
        .create_queue()
        .queue_name(unique("relay-once"))
        .attributes(MaximumMessageSize, "1024")
        .send()
        .await
        .expect("create queue in moto")
        .queue_url
        .expect("queue url");
    let created = billing(&table, &url, &["create-table"]);
    assert!(created.status.success(), "{created:?}");
    let now = 1_760_000_000;
    for m in [
        message("msg_a", json!({"n": 1}), now),
        message("msg_big", json!({"pad": "x".repeat(2000)}), now + 1),
        message("msg_b", json!({"n": 2}), now + 2),
    ] {
        dynamo
            .put_item()
            .table_name(&table)
            .set_item(Some(outbox_item(&m).expect("item")))
            .send()
            .await
            .expect("put outbox item");
    }

    let once = billing(&table, &url, &["relay", "--once"]);
    assert!(once.status.success(), "the sweep finishes: {once:?}");
    let said = stdout(&once);
    assert!(said.contains("sent 2 failed 0"), "{said}");
    assert!(said.contains("1 refused by SQS"), "{said}");
    assert_eq!(receive_ids(&sqs, &url).await, ["msg_a", "msg_b"]);

    let listed = billing(&table, &url, &["outbox", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let lines: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["id"], "msg_big");
    assert_eq!(
        lines[0]["reason"],
        "refused by SQS: InvalidParameterValue (message too large)"
    );
    // Nothing left to send: the refused message waits aside, the sweep does not retry it.
    let again = billing(&table, &url, &["relay", "--once"]);
    assert!(
        again.status.success() && stdout(&again).is_empty(),
        "{again:?}"
    );

    // The fix, then the requeue: the next sweep sends it.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(MaximumMessageSize, "262144")
        .send()
        .await
        .expect("raise the limit");
    let requeued = billing(&table, &url, &["outbox", "requeue", "msg_big"]);
    assert!(requeued.status.success(), "{requeued:?}");
    assert!(stdout(&requeued).contains("msg_big: pending again"));
    let twice = billing(&table, &url, &["outbox", "requeue", "msg_big"]);
    assert!(!twice.status.success(), "no longer set aside: {twice:?}");
    let sent = billing(&table, &url, &["relay", "--once"]);
    assert!(sent.status.success(), "{sent:?}");
    assert!(stdout(&sent).contains("sent 1 failed 0"), "{sent:?}");
    assert_eq!(receive_ids(&sqs, &url).await, ["msg_big"]);
    let empty = billing(&table, &url, &["outbox", "list"]);
    assert!(stdout(&empty).is_empty(), "{empty:?}");
}
