//! The outbox relay: delivers outbox messages to the queue at least once, then forgets them.
//!
//! A message is deleted only after the queue accepted it, so a crash between the two sends it
//! again: consumers deduplicate by the message id and need no order (docs/MODEL.md, "Change feed").
//! An item whose document cannot be read is set aside — out of the pending outbox, kept whole
//! for an operator, counted as `OutboxUnreadable` — so it never holds up the others; so is a
//! message the queue refuses for good (`QueueError::Refused`: too large, an invalid character),
//! counted as `OutboxRefused`. `requeue` puts set-aside items back once fixed. In AWS the
//! relay runs on the table's DynamoDB Stream (`handle_stream_batch`); locally and in tests
//! `drain` polls the outbox index. Both send through the same `deliver`.

use crate::ports::{
    read_outbox_doc, BillingStore, Clock, OutboxMessage, PendingOutbox, Queue, StoreError,
    SystemClock, UnreadableOutbox,
};
use crate::telemetry::{Counter, Metrics};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;

/// The `Family` dimension of the relay's metrics.
use crate::telemetry::RELAY_DIMENSION as METRIC_DIMENSION;

/// The Lambda event source mapping's filter pattern (`FilterCriteria.Filters[].Pattern`): only
/// inserts of outbox items reach the relay, so ledger records (and the parked bodies in them),
/// customer aggregates and user documents never leave the table through it.
pub const STREAM_FILTER_PATTERN: &str =
    r#"{"eventName":["INSERT"],"dynamodb":{"Keys":{"PK":{"S":[{"prefix":"OUTBOX#"}]}}}}"#;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub sent: usize,
    pub failed: usize,
    /// Unreadable items moved out of the pending outbox.
    pub set_aside: usize,
    /// Messages the queue refused for good, moved out of the pending outbox.
    pub refused: usize,
}

impl RelayReport {
    fn add(&mut self, other: RelayReport) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.set_aside += other.set_aside;
        self.refused += other.refused;
    }

    /// Items this pass took out of the pending outbox, or tried to.
    fn handled(&self) -> usize {
        self.sent + self.failed + self.set_aside + self.refused
    }
}

/// What became of one message.
enum Delivered {
    Sent,
    /// Still pending: the send or the delete failed, or the queue refused it and setting it
    /// aside failed.
    Failed,
    /// The queue refused it for good; it is set aside.
    Refused,
}

/// Sends each message and deletes it once sent. A message whose send or delete fails counts
/// as failed and stays in the outbox for the next pass; one the queue refuses for good is set
/// aside (`refused`); the others go on.
pub async fn deliver(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    metrics: &Metrics,
    messages: &[OutboxMessage],
) -> RelayReport {
    let mut report = RelayReport::default();
    for m in messages {
        match deliver_one(store, queue, metrics, m).await {
            Delivered::Sent => {
                metrics.incr(Counter::OutboxDelivered, METRIC_DIMENSION);
                report.sent += 1;
            }
            Delivered::Failed => {
                metrics.incr(Counter::OutboxFailed, METRIC_DIMENSION);
                report.failed += 1;
            }
            Delivered::Refused => report.refused += 1,
        }
    }
    report
}

async fn deliver_one(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    metrics: &Metrics,
    m: &OutboxMessage,
) -> Delivered {
    match queue.send(m).await {
        Ok(()) => {}
        Err(e) if e.is_permanent() => return refused(store, metrics, m, &e).await,
        Err(e) => {
            tracing::warn!(message_id = %m.id, error = %e, "outbox send failed; will retry");
            return Delivered::Failed;
        }
    }
    if let Err(e) = store.delete_outbox(&m.id).await {
        tracing::warn!(message_id = %m.id, error = %e, "outbox delete failed; message will be sent again");
        return Delivered::Failed;
    }
    Delivered::Sent
}

/// Sets aside a message the queue refused for good, kept whole with the refusal as its reason
/// (`refused by SQS: CODE (part)`), and counts it (`OutboxRefused`): sending it again as it is
/// could never succeed, and it must not hold up the shard or the sweep. `billing outbox
/// requeue` puts it back once the cause is fixed.
async fn refused(
    store: &dyn BillingStore,
    metrics: &Metrics,
    m: &OutboxMessage,
    refusal: &crate::ports::QueueError,
) -> Delivered {
    let item = UnreadableOutbox {
        id: m.id.clone(),
        reason: refusal.to_string(),
    };
    match store.set_aside_outbox(&item, SystemClock.now()).await {
        Ok(()) => {
            metrics.incr(Counter::OutboxRefused, METRIC_DIMENSION);
            tracing::error!(message_id = %m.id, kind = %m.kind, reason = %item.reason, "outbox message refused by the queue; set aside");
            Delivered::Refused
        }
        Err(e) => {
            tracing::warn!(message_id = %m.id, error = %e, "setting aside a refused message failed; will retry");
            Delivered::Failed
        }
    }
}

/// Moves an unreadable item out of the pending outbox and counts it. The log names the id and
/// the reason (which never quotes the document), never the content.
pub async fn set_aside(
    store: &dyn BillingStore,
    metrics: &Metrics,
    item: &UnreadableOutbox,
) -> Result<(), StoreError> {
    store.set_aside_outbox(item, SystemClock.now()).await?;
    metrics.incr(Counter::OutboxUnreadable, METRIC_DIMENSION);
    tracing::error!(message_id = %item.id, reason = %item.reason, "unreadable outbox item set aside");
    Ok(())
}

/// One pass over the pending outbox (at most `batch` items): unreadable items are set aside and
/// the rest is delivered in the same pass.
pub async fn drain(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    metrics: &Metrics,
    batch: usize,
) -> Result<RelayReport, StoreError> {
    let mut messages = Vec::new();
    let mut set_aside_count = 0;
    let mut failed = 0;
    for item in store.pending_outbox(batch).await? {
        match item {
            Ok(m) => messages.push(m),
            Err(bad) => match set_aside(store, metrics, &bad).await {
                Ok(()) => set_aside_count += 1,
                Err(e) => {
                    tracing::warn!(message_id = %bad.id, error = %e, "setting aside failed; will retry");
                    failed += 1;
                }
            },
        }
    }
    let mut report = deliver(store, queue, metrics, &messages).await;
    report.failed += failed;
    report.set_aside += set_aside_count;
    Ok(report)
}

/// `billing relay --once`: passes of `batch` items until one is not full (the outbox is empty)
/// or a failure, which leaves its messages pending. Refused and unreadable items are set aside
/// in their pass, so whatever sits at the head of the outbox, every pass moves on.
pub async fn sweep(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    metrics: &Metrics,
    batch: usize,
) -> Result<RelayReport, StoreError> {
    let mut total = RelayReport::default();
    loop {
        let pass = drain(store, queue, metrics, batch).await?;
        total.add(pass);
        if pass.failed > 0 || pass.handled() < batch.max(1) {
            return Ok(total);
        }
    }
}

/// What `billing outbox requeue` puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    All,
    One(String),
}

/// Puts set-aside items back in the pending outbox for the relay to send again (after the
/// cause is fixed); returns the ids requeued. Items are listed again until a listing brings no
/// id not seen yet, so the index's pages and its lag cannot hide one or repeat one.
pub async fn requeue(
    store: &dyn BillingStore,
    which: &Requeue,
    at: i64,
) -> Result<Vec<String>, StoreError> {
    let mut requeued = Vec::new();
    match which {
        Requeue::One(id) => {
            if store.requeue_outbox(id, at).await? {
                requeued.push(id.clone());
            }
        }
        Requeue::All => {
            let mut seen = std::collections::BTreeSet::new();
            loop {
                let listed = store.unreadable_outbox(REQUEUE_PAGE).await?;
                let fresh: Vec<String> = listed
                    .into_iter()
                    .map(|item| item.id)
                    .filter(|id| seen.insert(id.clone()))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                for id in fresh {
                    if store.requeue_outbox(&id, at).await? {
                        requeued.push(id);
                    }
                }
            }
        }
    }
    Ok(requeued)
}

/// Set-aside items listed per round of `requeue --all`.
const REQUEUE_PAGE: usize = 1000;

fn string<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name)? {
        AttributeValue::S(s) => Some(s),
        _ => None,
    }
}

/// The outbox item an inserted stream record carries, with the record's sequence number (what a
/// partial batch failure names). `None` for anything else: other items, updates, removals — the
/// filter pattern drops those already; this keeps the relay safe without it.
pub fn outbox_insert(record: &EventRecord) -> Option<(String, PendingOutbox)> {
    if record.event_name != "INSERT" {
        return None;
    }
    let id = string(&record.change.keys, "PK")?.strip_prefix("OUTBOX#")?;
    // An empty identifier makes Lambda retry the whole batch: safe, since delivery is at least once.
    let sequence = record.change.sequence_number.clone().unwrap_or_default();
    let doc = string(&record.change.new_image, "doc");
    Some((sequence, read_outbox_doc(id, doc)))
}

/// Handles one stream batch: delivers every inserted outbox message and sets aside unreadable
/// ones, and answers the partial batch response naming the records to retry. A failed send is
/// retried; an unreadable document or a message the queue refuses for good is not (it would
/// block the shard and never succeed): only a failure to set it aside (the store unavailable) is.
///
/// The first failure ends the pass: it and every later record are reported, none of them tried.
/// A stream's event source mapping resumes from the lowest reported record, so a later record
/// sent now would be sent again on the retry (a duplicate on the feed), and trying them while
/// the queue is down would spend a timeout on each (and the function's time limit on a batch).
pub async fn handle_stream_batch(
    store: &dyn BillingStore,
    queue: &dyn Queue,
    metrics: &Metrics,
    event: &Event,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut failed = false;
    for (sequence, item) in event.records.iter().filter_map(outbox_insert) {
        if failed {
            response.batch_item_failures.push(failure(sequence));
            continue;
        }
        let done = match item {
            Ok(m) => {
                deliver(store, queue, metrics, std::slice::from_ref(&m))
                    .await
                    .failed
                    == 0
            }
            Err(bad) => match set_aside(store, metrics, &bad).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(message_id = %bad.id, error = %e, "setting aside failed; will retry");
                    false
                }
            },
        };
        if !done {
            failed = true;
            response.batch_item_failures.push(failure(sequence));
        }
    }
    response
}

fn failure(sequence: String) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence);
    failure
}

/// Where the relay sends each message: email jobs (`email.job`) to the email queue, every
/// other kind to the feed, untouched. Without an email queue an email job fails to send (and
/// stays in the outbox, named in the log) rather than reach the feed's consumers.
pub struct RoutedQueue {
    pub feed: std::sync::Arc<dyn Queue>,
    pub emails: Option<std::sync::Arc<dyn Queue>>,
}

#[async_trait::async_trait]
impl Queue for RoutedQueue {
    async fn send(&self, message: &OutboxMessage) -> Result<(), crate::ports::QueueError> {
        if message.kind != crate::emails::job::EMAIL_JOB_KIND {
            return self.feed.send(message).await;
        }
        match &self.emails {
            Some(queue) => queue.send(message).await,
            None => Err(crate::ports::QueueError::Unavailable(
                "an email job, and BILLING_EMAIL_QUEUE_URL is not set".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::faults::{FaultPlan, FaultyQueue, Step};
    use crate::adapters::memory::{InMemoryBillingStore, InMemoryQueue};
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn message(id: &str, created_at: i64) -> OutboxMessage {
        OutboxMessage {
            id: id.into(),
            kind: "test.ping".into(),
            body: json!({"n": id}),
            created_at,
        }
    }

    /// One DynamoDB Streams record as Lambda delivers it (table stream view: new images).
    fn record(event_name: &str, sequence: &str, pk: &str, doc: Option<&str>) -> Value {
        let mut image = json!({"PK": {"S": pk}, "SK": {"S": "OUTBOX"}});
        if let Some(d) = doc {
            image["doc"] = json!({"S": d});
        }
        let mut change = json!({
            "ApproximateCreationDateTime": 1_735_689_600,
            "Keys": {"PK": {"S": pk}, "SK": {"S": "OUTBOX"}},
            "SequenceNumber": sequence,
            "SizeBytes": 120,
            "StreamViewType": "NEW_IMAGE"
        });
        if event_name != "REMOVE" {
            change["NewImage"] = image;
        }
        json!({
            "eventID": format!("ev-{sequence}"),
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/billing/stream/2025-01-01T00:00:00.000"
        })
    }

    fn doc(m: &OutboxMessage) -> String {
        serde_json::to_string(m).expect("json")
    }

    fn stream_event(records: Vec<Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB Streams event")
    }

    #[test]
    fn only_outbox_inserts_are_read_from_a_stream_batch() {
        let good = message("m1", 1);
        let event = stream_event(vec![
            record("REMOVE", "1", "OUTBOX#gone", None),
            record("INSERT", "2", "EVT#stripe#evt_1", Some("{}")),
            record("INSERT", "3", "OUTBOX#m1", Some(&doc(&good))),
            record("INSERT", "4", "OUTBOX#m2", Some("{not json")),
            record("MODIFY", "5", "OUTBOX#m3", Some(&doc(&message("m3", 1)))),
        ]);
        let got: Vec<(String, PendingOutbox)> =
            event.records.iter().filter_map(outbox_insert).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], ("3".to_owned(), Ok(good)));
        let (sequence, bad) = &got[1];
        let bad = bad.as_ref().expect_err("unreadable");
        assert_eq!((sequence.as_str(), bad.id.as_str()), ("4", "m2"));
        assert!(!bad.reason.contains("not json"), "{}", bad.reason);
    }

    #[tokio::test]
    async fn a_stream_batch_retries_failed_sends_but_not_unreadable_documents() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let plan = Arc::new(FaultPlan::default());
        let queue = FaultyQueue {
            inner: inner.clone(),
            plan: plan.clone(),
        };
        let (m1, m2) = (message("m1", 1), message("m2", 2));
        store.put_raw_outbox("m1", 1, &doc(&m1));
        store.put_raw_outbox("m2", 2, &doc(&m2));
        store.put_raw_outbox("bad", 3, r#"{"id": "bad", "body": "user_42"}"#);
        // The unreadable document comes before the send that fails (m1's); m2 comes after it.
        let event = stream_event(vec![
            record(
                "INSERT",
                "100",
                "OUTBOX#bad",
                Some(r#"{"id": "bad", "body": "user_42"}"#),
            ),
            record("REMOVE", "101", "OUTBOX#m0", None),
            record("INSERT", "102", "OUTBOX#m1", Some(&doc(&m1))),
            record("INSERT", "103", "OUTBOX#m2", Some(&doc(&m2))),
        ]);
        plan.fail_next(Step::Send);
        let response = handle_stream_batch(&store, &queue, &metrics, &event).await;
        let retried: Vec<Option<String>> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(
            retried,
            vec![Some("102".to_owned()), Some("103".to_owned())],
            "the failed send and what follows it, not the unreadable document"
        );
        assert!(inner.sent_ids().is_empty());
        let aside = store.unreadable_outbox(10).await.expect("list");
        assert_eq!(
            aside.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["bad"]
        );
        assert!(!aside[0].reason.contains("user_42"), "{}", aside[0].reason);
        assert_eq!(metrics.count(Counter::OutboxUnreadable), 1);
        // Both messages stay pending for the retry; the unreadable one has left the outbox.
        let pending = store.pending_outbox(10).await.expect("pending");
        assert_eq!(pending, vec![Ok(m1), Ok(m2)]);
        let json = serde_json::to_value(&response).expect("json");
        assert_eq!(
            json,
            json!({"batchItemFailures": [{"itemIdentifier": "102"}, {"itemIdentifier": "103"}]})
        );
    }

    /// The mapping resumes from the lowest reported record: a later one sent in this pass would
    /// be sent twice. After a failed send, the rest is reported and nothing more is sent.
    #[tokio::test]
    async fn after_a_failed_send_the_rest_of_the_batch_is_reported_not_sent() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let plan = Arc::new(FaultPlan::default());
        let queue = FaultyQueue {
            inner: inner.clone(),
            plan: plan.clone(),
        };
        let (m1, m2, m3) = (message("m1", 1), message("m2", 2), message("m3", 3));
        for m in [&m1, &m2, &m3] {
            store.put_raw_outbox(&m.id, m.created_at, &doc(m));
        }
        let event = stream_event(vec![
            record("INSERT", "100", "OUTBOX#m1", Some(&doc(&m1))),
            record("INSERT", "101", "OUTBOX#m2", Some(&doc(&m2))),
            record("INSERT", "102", "OUTBOX#m3", Some(&doc(&m3))),
        ]);
        plan.fail_next(Step::Send);
        let first = handle_stream_batch(&store, &queue, &metrics, &event).await;
        let reported: Vec<_> = first
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.as_deref())
            .collect();
        assert_eq!(reported, ["100", "101", "102"]);
        assert!(
            inner.sent_ids().is_empty(),
            "nothing after the failure is sent"
        );
        // The retry (the mapping resumes at 100) sends each message once.
        let retry = handle_stream_batch(&store, &queue, &metrics, &event).await;
        assert!(retry.batch_item_failures.is_empty());
        assert_eq!(inner.sent_ids(), ["m1", "m2", "m3"]);
        assert!(store.pending_outbox(10).await.expect("pending").is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_item_is_set_aside_and_the_rest_flows_in_the_same_pass() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let queue = InMemoryQueue::default();
        store.put_raw_outbox("a", 1, &doc(&message("a", 1)));
        store.put_raw_outbox("corrupt", 2, "{\"id\": \"corrupt\", \"kind\": 7");
        store.put_raw_outbox("wrong_key", 3, &doc(&message("other", 3)));
        store.put_raw_outbox("b", 4, &doc(&message("b", 4)));
        let report = drain(&store, &queue, &metrics, 100).await.expect("drain");
        assert_eq!((report.sent, report.failed, report.set_aside), (2, 0, 2));
        let sent = queue.sent_ids();
        assert_eq!(sent, ["a", "b"]);
        let aside: Vec<String> = store
            .unreadable_outbox(10)
            .await
            .expect("list")
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(aside, ["corrupt", "wrong_key"]);
        assert_eq!(metrics.count(Counter::OutboxUnreadable), 2);
        // Nothing is retried: the next pass finds an empty outbox.
        let again = drain(&store, &queue, &metrics, 100).await.expect("drain");
        assert_eq!(again, RelayReport::default());
        assert_eq!(metrics.count(Counter::OutboxUnreadable), 2);
    }

    /// A queue that refuses the named messages for good, as SQS refuses a body over its size
    /// limit, on every attempt; the others go on to `inner`.
    struct RefusingQueue {
        inner: Arc<dyn Queue>,
        refused: Vec<&'static str>,
    }

    #[async_trait::async_trait]
    impl Queue for RefusingQueue {
        async fn send(&self, message: &OutboxMessage) -> Result<(), crate::ports::QueueError> {
            if self.refused.contains(&message.id.as_str()) {
                return Err(crate::ports::QueueError::Refused {
                    code: "InvalidParameterValue".into(),
                    what: Some("message too large"),
                });
            }
            self.inner.send(message).await
        }
    }

    fn aside_ids(aside: &[crate::ports::SetAsideOutbox]) -> Vec<&str> {
        aside.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_message_the_queue_refuses_is_set_aside_and_the_rest_flow_in_the_same_pass() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let queue = RefusingQueue {
            inner: inner.clone(),
            refused: vec!["huge"],
        };
        for (i, id) in ["a", "huge", "b"].into_iter().enumerate() {
            store.put_raw_outbox(id, i as i64, &doc(&message(id, i as i64)));
        }
        let report = drain(&store, &queue, &metrics, 100).await.expect("drain");
        assert_eq!(
            report,
            RelayReport {
                sent: 2,
                failed: 0,
                set_aside: 0,
                refused: 1
            }
        );
        assert_eq!(inner.sent_ids(), ["a", "b"]);
        let aside = store.unreadable_outbox(10).await.expect("list");
        assert_eq!(aside_ids(&aside), ["huge"]);
        assert_eq!(
            aside[0].reason,
            "refused by SQS: InvalidParameterValue (message too large)"
        );
        assert_eq!(metrics.count(Counter::OutboxRefused), 1);
        assert_eq!(metrics.count(Counter::OutboxFailed), 0);
        // Not retried: the next pass finds an empty outbox.
        let again = drain(&store, &queue, &metrics, 100).await.expect("drain");
        assert_eq!(again, RelayReport::default());
    }

    /// A refused record is not a batch failure; a transient failure after it still ends the
    /// pass and is retried, and nothing is lost.
    #[tokio::test]
    async fn a_stream_batch_sets_aside_a_refused_message_and_retries_only_transient_failures() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let plan = Arc::new(FaultPlan::default());
        let queue = RefusingQueue {
            inner: Arc::new(FaultyQueue {
                inner: inner.clone(),
                plan: plan.clone(),
            }),
            refused: vec!["huge"],
        };
        let (m1, huge, m2, m3) = (
            message("m1", 1),
            message("huge", 2),
            message("m2", 3),
            message("m3", 4),
        );
        for m in [&m1, &huge, &m2, &m3] {
            store.put_raw_outbox(&m.id, m.created_at, &doc(m));
        }
        let event = stream_event(vec![
            record("INSERT", "100", "OUTBOX#m1", Some(&doc(&m1))),
            record("INSERT", "101", "OUTBOX#huge", Some(&doc(&huge))),
            record("INSERT", "102", "OUTBOX#m2", Some(&doc(&m2))),
            record("INSERT", "103", "OUTBOX#m3", Some(&doc(&m3))),
        ]);
        let whole = handle_stream_batch(&store, &queue, &metrics, &event).await;
        assert!(whole.batch_item_failures.is_empty(), "{whole:?}");
        assert_eq!(inner.sent_ids(), ["m1", "m2", "m3"]);
        assert_eq!(
            aside_ids(&store.unreadable_outbox(10).await.expect("list")),
            ["huge"]
        );
        assert!(store.pending_outbox(10).await.expect("pending").is_empty());

        // The same shape with the queue failing (a timeout) at m2: m2 and m3 are retried.
        let (n1, big, n2, n3) = (
            message("n1", 5),
            message("huge2", 6),
            message("n2", 7),
            message("n3", 8),
        );
        for m in [&n1, &big, &n2, &n3] {
            store.put_raw_outbox(&m.id, m.created_at, &doc(m));
        }
        let queue = RefusingQueue {
            refused: vec!["huge2"],
            ..queue
        };
        let event = stream_event(vec![
            record("INSERT", "200", "OUTBOX#huge2", Some(&doc(&big))),
            record("INSERT", "201", "OUTBOX#n1", Some(&doc(&n1))),
            record("INSERT", "202", "OUTBOX#n2", Some(&doc(&n2))),
            record("INSERT", "203", "OUTBOX#n3", Some(&doc(&n3))),
        ]);
        plan.fail_next(Step::SendAfter);
        let partial = handle_stream_batch(&store, &queue, &metrics, &event).await;
        let reported: Vec<_> = partial
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.as_deref())
            .collect();
        assert_eq!(reported, ["201", "202", "203"]);
        assert_eq!(
            store.pending_outbox(10).await.expect("pending"),
            vec![Ok(n1), Ok(n2), Ok(n3)]
        );
        assert_eq!(
            aside_ids(&store.unreadable_outbox(10).await.expect("list")),
            ["huge", "huge2"]
        );
        assert_eq!(metrics.count(Counter::OutboxRefused), 2);
    }

    /// `billing relay --once` goes on past a full batch, so one refused message (or a hundred)
    /// at the head of the outbox holds nothing up.
    #[tokio::test]
    async fn a_sweep_delivers_every_batch_past_refused_messages() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let queue = RefusingQueue {
            inner: inner.clone(),
            refused: vec!["m000", "m001", "m002"],
        };
        for i in 0..25 {
            let id = format!("m{i:03}");
            store.put_raw_outbox(&id, i, &doc(&message(&id, i)));
        }
        let report = sweep(&store, &queue, &metrics, 3).await.expect("sweep");
        assert_eq!((report.sent, report.refused, report.failed), (22, 3, 0));
        assert_eq!(inner.sent_ids().len(), 22);
        assert!(store.pending_outbox(100).await.expect("pending").is_empty());
    }

    #[tokio::test]
    async fn a_requeued_item_is_pending_again_and_sent_once_the_cause_is_fixed() {
        let store = InMemoryBillingStore::new();
        let metrics = Metrics::memory();
        let inner = Arc::new(InMemoryQueue::default());
        let refusing = RefusingQueue {
            inner: inner.clone(),
            refused: vec!["huge"],
        };
        store.put_raw_outbox("huge", 1, &doc(&message("huge", 1)));
        store.put_raw_outbox("bad", 2, "{\"id\": \"bad\"");
        sweep(&store, &refusing, &metrics, 10).await.expect("sweep");
        assert_eq!(
            aside_ids(&store.unreadable_outbox(10).await.expect("list")),
            ["bad", "huge"]
        );
        let none = requeue(&store, &Requeue::One("nope".into()), 10).await;
        assert_eq!(none, Ok(vec![]));
        let one = requeue(&store, &Requeue::One("huge".into()), 10).await;
        assert_eq!(one, Ok(vec!["huge".to_owned()]));
        assert_eq!(
            requeue(&store, &Requeue::One("huge".into()), 10).await,
            Ok(vec![]),
            "already pending"
        );
        // Fixed: the queue now takes it. The unreadable one stays aside.
        let report = sweep(&store, inner.as_ref(), &metrics, 10)
            .await
            .expect("sweep");
        assert_eq!((report.sent, report.refused, report.set_aside), (1, 0, 0));
        assert_eq!(inner.sent_ids(), ["huge"]);
        assert_eq!(
            aside_ids(&store.unreadable_outbox(10).await.expect("list")),
            ["bad"]
        );
        // --all puts back every item; an unreadable one is set aside again by the next pass.
        let all = requeue(&store, &Requeue::All, 20).await;
        assert_eq!(all, Ok(vec!["bad".to_owned()]));
        assert!(store.unreadable_outbox(10).await.expect("list").is_empty());
        let report = sweep(&store, inner.as_ref(), &metrics, 10)
            .await
            .expect("sweep");
        assert_eq!((report.sent, report.set_aside), (0, 1));
    }

    /// The subset of Lambda's filter rule syntax the pattern uses: nested objects, and leaves
    /// that are lists of exact values or `{"prefix": …}`. Anything else fails the test.
    fn filter_matches(pattern: &Value, record: &Value) -> bool {
        match pattern {
            Value::Object(fields) => fields.iter().all(|(name, p)| {
                record
                    .get(name)
                    .is_some_and(|value| filter_matches(p, value))
            }),
            Value::Array(options) => options.iter().any(|option| match option {
                Value::Object(op) => match (op.len(), op.get("prefix")) {
                    (1, Some(Value::String(prefix))) => record
                        .as_str()
                        .is_some_and(|s| s.starts_with(prefix.as_str())),
                    _ => panic!("operator outside the tested subset: {option}"),
                },
                exact => exact == record,
            }),
            other => panic!("a pattern leaf must be a list: {other}"),
        }
    }

    /// The deployed event source mapping filters with this very pattern (template.yaml).
    #[test]
    fn the_template_filters_the_stream_with_this_pattern() {
        let template = include_str!("../../template.yaml");
        let line = format!("- Pattern: '{STREAM_FILTER_PATTERN}'");
        assert_eq!(
            template.matches(&line).count(),
            1,
            "template.yaml lacks {line}"
        );
    }

    /// `events/relay.outbox-insert.json` (made by `billing lambda-event --stream`, for `sam
    /// local invoke` and `cargo lambda invoke`) is a DynamoDB Streams event of aws_lambda_events'
    /// type whose records pass the filter pattern, and the relay answers it with exactly what
    /// `events/expected.json` states: the response, and the feed messages it sends.
    #[tokio::test]
    async fn the_relay_sample_event_is_one_outbox_insert() {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(events.join(name)).expect(name);
            serde_json::from_str(&text).expect(name)
        };
        let expected = read("expected.json");
        let entry = expected["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["function"] == "relay")
            .expect("expected.json has the relay's entry");
        let raw = read(entry["file"].as_str().expect("file"));
        let pattern: Value = serde_json::from_str(STREAM_FILTER_PATTERN).expect("valid JSON");
        for record in raw["Records"].as_array().expect("Records") {
            assert!(filter_matches(&pattern, record), "{record}");
        }
        let event: Event = serde_json::from_value(raw).expect("a DynamoDB Streams event");
        let store = InMemoryBillingStore::new();
        let queue = InMemoryQueue::default();
        let metrics = Metrics::memory();
        let response = handle_stream_batch(&store, &queue, &metrics, &event).await;
        assert_eq!(
            serde_json::to_value(&response).expect("json"),
            entry["response"]
        );
        let sent: Vec<Value> = queue
            .sent
            .lock()
            .expect("lock")
            .iter()
            .map(|m| json!({"message_id": m.id, "kind": m.kind, "schema": m.body["schema"]}))
            .collect();
        assert_eq!(Value::from(sent), entry["feed"]);
    }

    #[test]
    fn the_stream_filter_passes_only_outbox_inserts() {
        let pattern: Value = serde_json::from_str(STREAM_FILTER_PATTERN).expect("valid JSON");
        let outbox = record("INSERT", "1", "OUTBOX#chg_1", Some("{}"));
        assert!(filter_matches(&pattern, &outbox));
        for (name, rejected) in [
            (
                "ledger insert",
                record("INSERT", "2", "EVT#stripe#evt_1", Some("{}")),
            ),
            (
                "customer insert",
                record("INSERT", "3", "CUS#stripe#cus_1", Some("{}")),
            ),
            (
                "user insert",
                record("INSERT", "4", "USER#user_42", Some("{}")),
            ),
            (
                "audit insert",
                record("INSERT", "5", "AUDIT#stripe#cus_1", Some("{}")),
            ),
            ("outbox remove", record("REMOVE", "6", "OUTBOX#chg_1", None)),
            (
                "outbox modify",
                record("MODIFY", "7", "OUTBOX#chg_1", Some("{}")),
            ),
        ] {
            assert!(!filter_matches(&pattern, &rejected), "{name} must not pass");
        }
    }
}
