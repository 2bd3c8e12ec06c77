//! The outbox relay: delivers outbox messages to the queue at least once, then forgets them.
//!
//! A message is deleted only after the queue accepted it, so a crash between the two sends it
//! again: consumers deduplicate by the message id. In AWS the same `deliver` runs on the table's
//! DynamoDB Stream; locally and in tests `drain` polls the outbox index.

use crate::ports::{BillingStore, OutboxMessage, Queue};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub sent: usize,
    pub failed: usize,
}

/// Sends each message and deletes it once sent. Stops counting a message as sent if either
/// step fails; it stays in the outbox for the next pass.
pub async fn deliver(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    messages: &[OutboxMessage],
) -> RelayReport {
    let mut report = RelayReport::default();
    for m in messages {
        if let Err(e) = queue.send(m).await {
            tracing::warn!(message_id = %m.id, error = %e, "outbox send failed; will retry");
            report.failed += 1;
            continue;
        }
        if let Err(e) = store.delete_outbox(&m.id).await {
            tracing::warn!(message_id = %m.id, error = %e, "outbox delete failed; message will be sent again");
            report.failed += 1;
            continue;
        }
        report.sent += 1;
    }
    report
}

/// One pass over the pending outbox (at most `batch` messages).
pub async fn drain(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    batch: usize,
) -> Result<RelayReport, crate::ports::StoreError> {
    let pending = store.pending_outbox(batch).await?;
    Ok(deliver(store, queue, &pending).await)
}

/// Outbox messages inserted into the table, read from a DynamoDB Streams event (new images),
/// each with the record's sequence number (the identifier a partial batch failure reports).
pub fn outbox_inserts(
    stream_event: &serde_json::Value,
) -> Vec<(String, Result<OutboxMessage, String>)> {
    let records = stream_event
        .get("Records")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .filter(|r| r.get("eventName").and_then(|n| n.as_str()) == Some("INSERT"))
        .filter_map(|r| {
            let data = r.get("dynamodb")?;
            let image = data.get("NewImage")?;
            let pk = image.get("PK")?.get("S")?.as_str()?;
            if !pk.starts_with("OUTBOX#") {
                return None;
            }
            let seq = data
                .get("SequenceNumber")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned();
            let message = image
                .get("doc")
                .and_then(|d| d.get("S"))
                .and_then(|d| d.as_str())
                .ok_or_else(|| format!("{pk}: no doc"))
                .and_then(|d| serde_json::from_str(d).map_err(|e| format!("{pk}: {e}")));
            Some((seq, message))
        })
        .collect()
}

/// Handles one stream batch: delivers every inserted outbox message and returns the Lambda
/// partial-batch response naming the records to retry.
pub async fn handle_stream_batch(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    stream_event: &serde_json::Value,
) -> serde_json::Value {
    let mut failures = Vec::new();
    for (seq, message) in outbox_inserts(stream_event) {
        let ok = match message {
            Ok(m) => deliver(store, queue, std::slice::from_ref(&m)).await.failed == 0,
            Err(e) => {
                // A message we cannot read would block the shard forever: log it and go on;
                // it stays in the outbox index for `billing relay`.
                tracing::error!(error = %e, "unreadable outbox record in stream");
                true
            }
        };
        if !ok {
            failures.push(serde_json::json!({ "itemIdentifier": seq }));
        }
    }
    serde_json::json!({ "batchItemFailures": failures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::faults::{FaultPlan, FaultyQueue, Step};
    use crate::adapters::memory::{InMemoryBillingStore, InMemoryQueue};
    use std::sync::Arc;

    fn stream_event(messages: &[OutboxMessage]) -> serde_json::Value {
        let mut records: Vec<serde_json::Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                serde_json::json!({
                    "eventName": "INSERT",
                    "dynamodb": {
                        "SequenceNumber": format!("{}", 100 + i),
                        "NewImage": {
                            "PK": {"S": format!("OUTBOX#{}", m.id)},
                            "doc": {"S": serde_json::to_string(m).expect("json")}
                        }
                    }
                })
            })
            .collect();
        // Other items and removals on the same stream are not the relay's business.
        records.push(
            serde_json::json!({"eventName": "INSERT", "dynamodb": {"SequenceNumber": "7",
            "NewImage": {"PK": {"S": "EVT#stripe#evt_1"}}}}),
        );
        records.push(
            serde_json::json!({"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "8",
            "OldImage": {"PK": {"S": "OUTBOX#gone"}}}}),
        );
        serde_json::json!({ "Records": records })
    }

    fn message(id: &str) -> OutboxMessage {
        OutboxMessage {
            id: id.into(),
            kind: "test.ping".into(),
            body: serde_json::json!({"n": id}),
            created_at: 1,
            order_key: format!("1#{id}"),
        }
    }

    #[tokio::test]
    async fn a_stream_batch_delivers_inserts_and_reports_failures_for_retry() {
        let store = InMemoryBillingStore::new();
        let inner = Arc::new(InMemoryQueue::default());
        let plan = Arc::new(FaultPlan::default());
        let queue = FaultyQueue {
            inner: inner.clone(),
            plan: plan.clone(),
        };
        let event = stream_event(&[message("m1"), message("m2")]);
        assert_eq!(outbox_inserts(&event).len(), 2);
        plan.fail_next(Step::Send);
        let response = handle_stream_batch(&store, &queue, &event).await;
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "100"}])
        );
        let sent: Vec<String> = inner
            .sent
            .lock()
            .expect("lock")
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(sent, vec!["m2".to_owned()]);
    }
}
