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
