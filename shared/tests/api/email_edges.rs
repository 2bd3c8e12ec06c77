//! Customer emails at the edges (issue 17, point 6): neither lost nor doubled. A welcome for a
//! basil subscription created `incomplete` waits for it to settle (or for Stripe's 23-hour
//! horizon); one SCA attempt, whose two events arrive in either order, gets one email; a paused
//! SES account that outlasts the email queue's receive budget leaves the job queued, not in the
//! dead-letter queue.

use crate::email_send::{
    action_required, all_kinds, consumer, email_app, memory_consumer, moto_mails_to, pending_jobs,
    verify_sender, SENDER,
};
use crate::helpers::{fixture, moto_store, sdk_config, unique, TestApp, NOW};
use billing::adapters::email_queue::SqsVisibility;
use billing::adapters::email_store::DynamoEmailLedger;
use billing::adapters::email_testing::InMemoryMailer;
use billing::adapters::memory::{InMemoryBillingStore, InMemoryQueue};
use billing::adapters::ses::SesMailer;
use billing::adapters::sqs::SqsQueue;
use billing::emails::job::EmailJob;
use billing::emails::kinds::EmailKind;
use billing::emails::records::{EmailLedger, EmailState};
use billing::emails::send::{
    EmailSender, JobOutcome, Mailer, OutgoingEmail, SendError, SqsEvent, SqsRecord,
    SqsSystemAttributes,
};
use billing::ports::{Clock, Queue, SystemClock};
use billing::relay::{drain, RoutedQueue};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Posts a Stripe event at the signing time (`NOW`), then puts the clock back where the test
/// had it: the consumer's clock is the test's, the webhook's signature check is not.
async fn post(app: &TestApp, body: &[u8]) {
    let env = billing::providers::stripe::event::Envelope::parse(body).expect("envelope");
    let family = billing::providers::stripe::translate::family_of(&env.event_type);
    let then = app.clock.now();
    app.clock.set(NOW);
    let (status, json) = app.post(family, body).await;
    app.clock.set(then);
    assert_eq!(status, StatusCode::OK, "{}: {json}", env.event_type);
}

/// Handles every queued job not finished yet, once each; returns what they came to.
async fn run_jobs(
    app: &TestApp,
    sender: &EmailSender,
    finished: &mut Vec<EmailJob>,
) -> Vec<JobOutcome> {
    let mut outcomes = Vec::new();
    for job in pending_jobs(app.store.as_ref()).await {
        if finished.contains(&job) {
            continue;
        }
        let outcome = sender.handle(&job).await;
        if matches!(
            outcome,
            JobOutcome::Sent { .. }
                | JobOutcome::Skipped { .. }
                | JobOutcome::Rejected { .. }
                | JobOutcome::AlreadyDone(_)
        ) {
            finished.push(job);
        }
        outcomes.push(outcome);
    }
    outcomes
}

// --- the welcome of a subscription created `incomplete` (basil) -----------------------------

const BASIL_CHECKOUT: &str = "stripe/2025-03-31.basil/checkout.session.completed__own.json";
const BASIL_CREATED: &str = "stripe/2025-06-30.basil/customer.subscription.created__own.json";
/// `created` of the basil `customer.subscription.created` fixture.
const SUB_CREATED_AT: i64 = 1_756_900_001;
const BASIL_ADDRESS: &str = "lab.owner@example.com";

/// The basil Checkout for the customer and subscription of the basil
/// `customer.subscription.created` fixture (two accounts' shapes, joined by their ids).
fn basil_checkout() -> Vec<u8> {
    String::from_utf8(fixture(BASIL_CHECKOUT))
        .expect("utf-8")
        .replace("sub_ownbasilCheckout01", "sub_ownLiveIncomplete01")
        .replace("cus_ownbasilCheckout01", "cus_ownLiveCustomer01")
        .into_bytes()
}

/// The basil `customer.subscription.created` (`incomplete`), in test mode like this endpoint.
fn basil_created() -> Value {
    let mut event: Value = serde_json::from_slice(&fixture(BASIL_CREATED)).expect("json");
    event["livemode"] = json!(false);
    event["data"]["object"]["livemode"] = json!(false);
    event
}

/// The `customer.subscription.updated` Stripe sends `after` seconds later, when the first
/// payment settles the subscription (`active`, `trialing`) or 23 hours pass without one
/// (`incomplete_expired`): the created fixture with its new status and what it replaced.
fn basil_settled(status: &str, after: i64) -> Vec<u8> {
    let mut event = basil_created();
    event["id"] = json!(format!("evt_own_basil_{status}"));
    event["type"] = json!("customer.subscription.updated");
    event["created"] = json!(SUB_CREATED_AT + after);
    event["data"]["object"]["status"] = json!(status);
    event["data"]["previous_attributes"] = json!({"status": "incomplete"});
    serde_json::to_vec(&event).expect("json")
}

/// Checkout, then the subscription `incomplete` (both basil): the app, its consumer's mailbox
/// and consumer, and the welcome job, with the clock just after the subscription's creation.
async fn incomplete_welcome() -> (TestApp, Arc<InMemoryMailer>, EmailSender, EmailJob) {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    post(&app, &basil_checkout()).await;
    post(&app, &serde_json::to_vec(&basil_created()).expect("json")).await;
    app.clock.set(SUB_CREATED_AT + 10);
    let welcome = pending_jobs(app.store.as_ref())
        .await
        .into_iter()
        .find(|j| j.kind() == EmailKind::Welcome)
        .expect("a welcome job");
    assert_eq!(welcome.object(), "sub_ownLiveIncomplete01");
    (app, mailbox, sender, welcome)
}

fn is_final(outcome: &JobOutcome) -> bool {
    !matches!(outcome, JobOutcome::Retry(_) | JobOutcome::Wait { .. })
}

#[tokio::test]
async fn a_welcome_for_a_subscription_created_incomplete_waits_and_is_sent_once_it_is_active() {
    for settled in ["active", "trialing"] {
        let (app, mailbox, sender, welcome) = incomplete_welcome().await;
        // The first payment has not settled yet: the decision can still change, so it waits.
        let first = sender.handle(&welcome).await;
        assert!(!is_final(&first), "{settled}: {first:?}");
        assert!(mailbox.sent().is_empty());
        post(&app, &basil_settled(settled, 40)).await;
        app.clock.set(SUB_CREATED_AT + 600);
        let second = sender.handle(&welcome).await;
        assert!(matches!(second, JobOutcome::Sent { .. }), "{second:?}");
        let to: Vec<_> = mailbox.sent().into_iter().map(|(to, _)| to).collect();
        assert_eq!(to, [BASIL_ADDRESS]);
        assert_eq!(
            sender.handle(&welcome).await,
            JobOutcome::AlreadyDone(EmailState::Sent)
        );
    }
}

#[tokio::test]
async fn a_welcome_whose_subscription_stays_incomplete_is_skipped_after_stripes_horizon() {
    // Stripe's `incomplete_expired` arrives: final at once.
    let (app, mailbox, sender, welcome) = incomplete_welcome().await;
    assert!(!is_final(&sender.handle(&welcome).await));
    post(&app, &basil_settled("incomplete_expired", 23 * 3600)).await;
    app.clock.set(SUB_CREATED_AT + 23 * 3600 + 60);
    assert_eq!(
        sender.handle(&welcome).await,
        JobOutcome::Skipped {
            reason: "nothing_granted".into()
        }
    );
    // Nothing more arrives: still waiting just before the horizon, final after it.
    let (app, _, quiet_sender, quiet) = incomplete_welcome().await;
    app.clock.set(SUB_CREATED_AT + 24 * 3600 - 1);
    assert!(!is_final(&quiet_sender.handle(&quiet).await));
    app.clock.set(SUB_CREATED_AT + 24 * 3600);
    assert_eq!(
        quiet_sender.handle(&quiet).await,
        JobOutcome::Skipped {
            reason: "incomplete_expired".into()
        }
    );
    assert!(mailbox.sent().is_empty());
}

// --- one SCA attempt, two events ----------------------------------------------------------

/// `created` of the lifecycle's `invoice.payment_failed` (its `payment_action_required` is one
/// second later): one off-session renewal attempt that needs authentication.
const ATTEMPT_AT: i64 = 1_759_316_402;

#[tokio::test]
async fn one_sca_attempt_gets_one_email_action_required_in_either_order_whichever_kinds_are_on() {
    let every = [
        EmailKind::PaymentActionRequired,
        EmailKind::PaymentFailed,
        EmailKind::SubscriptionCancelled,
        EmailKind::Welcome,
    ];
    let failed = "04_invoice.payment_failed";
    let action = "05_invoice.payment_action_required";
    for mask in 0..16usize {
        let kinds: BTreeSet<EmailKind> = (0..4)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| every[i])
            .collect();
        for (n, order) in [[failed, action], [action, failed]].iter().enumerate() {
            let tag = format!("sca{mask}o{n}");
            let app = email_app(Arc::new(InMemoryBillingStore::new()), kinds.clone());
            let mailbox = Arc::new(InMemoryMailer::default());
            let sender = memory_consumer(&app, mailbox.clone());
            let mut finished = Vec::new();
            // Each event's job runs as soon as it is queued, before the other event arrives.
            for (i, name) in order.iter().enumerate() {
                let (body, _) = crate::email_send::life(&tag, name);
                post(&app, &body).await;
                app.clock.set(ATTEMPT_AT + 2 + i as i64);
                run_jobs(&app, &sender, &mut finished).await;
            }
            // Whatever waited comes back later.
            app.clock.set(ATTEMPT_AT + 2 * 3600);
            run_jobs(&app, &sender, &mut finished).await;
            let jobs = pending_jobs(app.store.as_ref()).await;
            assert_eq!(finished.len(), jobs.len(), "{kinds:?} {order:?}: {jobs:?}");
            let subjects: Vec<_> = mailbox.sent().into_iter().map(|(_, s)| s).collect();
            if kinds.contains(&EmailKind::PaymentActionRequired) {
                assert_eq!(subjects.len(), 1, "{kinds:?} {order:?}: {subjects:?}");
                assert!(
                    subjects[0].contains("confirm your payment for invoice"),
                    "{kinds:?} {order:?}: {subjects:?}"
                );
            } else {
                assert!(subjects.is_empty(), "{kinds:?} {order:?}: {subjects:?}");
            }
        }
    }
}

// --- SES sending paused longer than the queue's receive budget (moto) ---------------------

/// SES as a paused account answers until `until`, then the real (moto) SES.
struct PausedUntil {
    until: Instant,
    inner: Arc<dyn Mailer>,
}

#[async_trait::async_trait]
impl Mailer for PausedUntil {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        if Instant::now() < self.until {
            return Err(SendError::Paused("service SendingPausedException".into()));
        }
        self.inner.send(email).await
    }
}

/// A queue and its dead-letter queue in moto: `visibility` seconds, `max_receives` receives.
async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    visibility: u32,
    max_receives: u32,
) -> (String, String, String) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs
        .create_queue()
        .queue_name(unique("emails-dlq"))
        .send()
        .await
        .expect("dlq")
        .queue_url
        .expect("url");
    let arn = |url: String| async move {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes
            .and_then(|a| a.get(&A::QueueArn).cloned())
            .expect("arn")
    };
    let dlq_arn = arn(dlq.clone()).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives});
    let url = sqs
        .create_queue()
        .queue_name(unique("emails"))
        .attributes(A::VisibilityTimeout, visibility.to_string())
        .attributes(A::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let queue_arn = arn(url.clone()).await;
    (url, queue_arn, dlq)
}

/// One receive as Lambda's event source mapping makes it: the batch handed to the consumer,
/// the finished messages deleted. Returns how many were received.
async fn lambda_pass(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    sender: &EmailSender,
) -> usize {
    use aws_sdk_sqs::types::MessageSystemAttributeName as S;
    let batch = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(S::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive");
    let messages = batch.messages();
    let records = messages
        .iter()
        .map(|m| SqsRecord {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            body: m.body().unwrap_or_default().to_owned(),
            receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
            event_source_arn: arn.to_owned(),
            system: SqsSystemAttributes {
                approximate_receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&S::ApproximateReceiveCount))
                    .cloned(),
            },
            ..Default::default()
        })
        .collect();
    let response = sender.handle_batch(&SqsEvent { records }).await;
    for m in messages {
        let id = m.message_id().unwrap_or_default();
        if response
            .batch_item_failures
            .iter()
            .all(|f| f.item_identifier != id)
        {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    messages.len()
}

#[tokio::test]
async fn moto_a_pause_longer_than_the_receive_budget_leaves_the_job_queued_then_sends_it_once() {
    // The queue's budget, scaled down: 3 receives × 1 s. The pause lasts 4 s: without waiting,
    // the job is received a fourth time while paused and SQS moves it to the dead-letter queue.
    let store = moto_store().await;
    let app = email_app(store.clone(), [EmailKind::PaymentActionRequired].into());
    let sdk = sdk_config();
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    verify_sender(&ses, SENDER).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (url, arn, dlq) = queue_with_dlq(&sqs, 1, 3).await;
    let tag = unique("paused");
    let (body, address) = action_required(&tag, "");
    post(&app, &body).await;
    let emails: Arc<dyn Queue> = Arc::new(SqsQueue::new(sqs.clone(), &url));
    let routed = RoutedQueue {
        feed: Arc::new(InMemoryQueue::default()),
        emails: Some(emails),
    };
    drain(app.store.as_ref(), &routed, &app.metrics, 100)
        .await
        .expect("drain");
    let ledger = Arc::new(DynamoEmailLedger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        store.table(),
    ));
    let paused = Arc::new(PausedUntil {
        until: Instant::now() + Duration::from_secs(4),
        inner: Arc::new(SesMailer::new(ses)),
    });
    let mut sender = consumer(
        app.store.clone(),
        ledger.clone(),
        paused,
        Arc::new(SystemClock),
    );
    // The first wait is the lease (scaled down to 2 s), doubled on each return.
    sender.policy.lease_secs = 2;
    sender.visibility = Some(Arc::new(SqsVisibility::new(sqs.clone())));
    let started = Instant::now();
    while moto_mails_to(&address).await.is_empty() && started.elapsed() < Duration::from_secs(15) {
        lambda_pass(&sqs, &url, &arn, &sender).await;
        let in_dlq = sqs
            .receive_message()
            .queue_url(&dlq)
            .send()
            .await
            .expect("receive dlq");
        assert!(
            in_dlq.messages().is_empty(),
            "the job reached the dead-letter queue after {:?}",
            started.elapsed()
        );
    }
    assert_eq!(moto_mails_to(&address).await.len(), 1);
    let records = ledger.records(1000).await.expect("records");
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.object == format!("in_{tag}"))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, EmailState::Sent);
    // Nothing is left to send: the queue is empty.
    assert_eq!(lambda_pass(&sqs, &url, &arn, &sender).await, 0);
}

// --- the same, on a queue twin under a clock twin (the template's numbers) ------------------

/// SQS as the emails function sees it, on the test's clock: visibility, receive counts, the
/// redrive to a dead-letter queue after `max_receives`, and `ChangeMessageVisibility`.
struct QueueTwin {
    clock: Arc<billing::ports::FixedClock>,
    visibility: i64,
    max_receives: u32,
    state: std::sync::Mutex<TwinState>,
}

#[derive(Default)]
struct TwinState {
    /// (message id, body, receives, visible at, receipt handle)
    queue: Vec<(String, String, u32, i64, String)>,
    dlq: Vec<String>,
    receipts: u64,
}

impl QueueTwin {
    fn new(clock: Arc<billing::ports::FixedClock>, visibility: i64, max_receives: u32) -> Self {
        Self {
            clock,
            visibility,
            max_receives,
            state: Default::default(),
        }
    }

    fn send(&self, id: &str, body: String) {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("lock");
        state
            .queue
            .push((id.to_owned(), body, 0, now, String::new()));
    }

    /// A receive of every visible message; one received `max_receives` times already goes to
    /// the dead-letter queue instead.
    fn receive(&self) -> Vec<SqsRecord> {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("lock");
        let (max, visibility) = (self.max_receives, self.visibility);
        let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut state.queue)
            .into_iter()
            .partition(|m| m.3 <= now && m.2 >= max);
        state.dlq.extend(dead.into_iter().map(|m| m.0));
        state.queue = live;
        let mut records = Vec::new();
        for i in 0..state.queue.len() {
            if state.queue[i].3 > now {
                continue;
            }
            state.receipts += 1;
            let receipt = format!("rh-{}", state.receipts);
            let m = &mut state.queue[i];
            m.2 += 1;
            m.3 = now + visibility;
            m.4 = receipt.clone();
            records.push(SqsRecord {
                message_id: m.0.clone(),
                body: m.1.clone(),
                receipt_handle: receipt,
                system: SqsSystemAttributes {
                    approximate_receive_count: Some(m.2.to_string()),
                },
                ..Default::default()
            });
        }
        records
    }

    fn delete(&self, id: &str) {
        self.state.lock().expect("lock").queue.retain(|m| m.0 != id);
    }

    fn next_visible(&self) -> Option<i64> {
        let state = self.state.lock().expect("lock");
        state.queue.iter().map(|m| m.3).min()
    }

    /// (visible at, receives) of the one message queued.
    fn only(&self) -> (i64, u32) {
        let state = self.state.lock().expect("lock");
        assert_eq!(state.queue.len(), 1);
        (state.queue[0].3, state.queue[0].2)
    }

    fn dead(&self) -> usize {
        self.state.lock().expect("lock").dlq.len()
    }
}

#[async_trait::async_trait]
impl billing::emails::send::Visibility for QueueTwin {
    async fn return_after(&self, record: &SqsRecord, secs: i64) -> Result<(), String> {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("lock");
        let m = state
            .queue
            .iter_mut()
            .find(|m| m.4 == record.receipt_handle)
            .ok_or("ReceiptHandleIsInvalid")?;
        m.3 = now + secs;
        Ok(())
    }
}

/// SES paused until the clock reaches `until`, then the in-memory mailbox.
struct PausedUntilClock {
    clock: Arc<billing::ports::FixedClock>,
    until: i64,
    inner: Arc<InMemoryMailer>,
}

#[async_trait::async_trait]
impl Mailer for PausedUntilClock {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        if self.clock.now() < self.until {
            return Err(SendError::Paused("service SendingPausedException".into()));
        }
        self.inner.send(email).await
    }
}

/// An action-required job on a queue twin with the template's numbers (visibility 180 s,
/// 100 receives), and a consumer on the same clock whose SES is `mailer`.
async fn twin_rig(
    tag: &str,
    mailer: impl FnOnce(Arc<billing::ports::FixedClock>) -> Arc<dyn Mailer>,
) -> (TestApp, Arc<QueueTwin>, EmailSender) {
    let app = email_app(
        Arc::new(InMemoryBillingStore::new()),
        [EmailKind::PaymentActionRequired].into(),
    );
    let (body, _) = action_required(tag, "");
    post(&app, &body).await;
    let job = pending_jobs(app.store.as_ref()).await.remove(0);
    let queue = Arc::new(QueueTwin::new(app.clock.clone(), 180, 100));
    queue.send("m1", serde_json::to_string(&job).expect("json"));
    let mut sender = consumer(
        app.store.clone(),
        Arc::new(billing::adapters::email_store::InMemoryEmailLedger::default()),
        mailer(app.clock.clone()),
        app.clock.clone(),
    );
    sender.visibility = Some(queue.clone());
    (app, queue, sender)
}

/// Lambda's polling on the twin: at each time a message is visible, one batch, the finished
/// messages deleted; until the queue is empty or `limit`.
async fn poll_until_empty(app: &TestApp, queue: &QueueTwin, sender: &EmailSender, limit: i64) {
    while let Some(at) = queue.next_visible() {
        if at > limit {
            return;
        }
        app.clock.set(at.max(app.clock.now()));
        let records = queue.receive();
        let response = sender
            .handle_batch(&SqsEvent {
                records: records.clone(),
            })
            .await;
        for r in &records {
            if response
                .batch_item_failures
                .iter()
                .all(|f| f.item_identifier != r.message_id)
            {
                queue.delete(&r.message_id);
            }
        }
    }
}

#[tokio::test]
async fn a_three_day_pause_keeps_the_job_out_of_the_dead_letter_queue_then_sends_it_once() {
    let mailbox = Arc::new(InMemoryMailer::default());
    let resume = NOW + 3 * 24 * 3600;
    let inner = mailbox.clone();
    let (app, queue, sender) = twin_rig("twinpause", move |clock| {
        Arc::new(PausedUntilClock {
            clock,
            until: resume,
            inner,
        })
    })
    .await;
    poll_until_empty(&app, &queue, &sender, NOW + 30 * 24 * 3600).await;
    assert_eq!(queue.dead(), 0);
    assert_eq!(mailbox.sent().len(), 1);
    // Sent within the longest wait (an hour) of the resume.
    assert!(
        app.clock.now() - resume <= 3600,
        "{}",
        app.clock.now() - resume
    );
    // Without returning waiting jobs later, the same pause empties the job into the DLQ after
    // 100 receives × 180 s = 5 hours.
    let mailbox = Arc::new(InMemoryMailer::default());
    let inner = mailbox.clone();
    let (app, queue, mut sender) = twin_rig("twinold", move |clock| {
        Arc::new(PausedUntilClock {
            clock,
            until: resume,
            inner,
        })
    })
    .await;
    sender.visibility = None;
    poll_until_empty(&app, &queue, &sender, NOW + 30 * 24 * 3600).await;
    assert_eq!(queue.dead(), 1);
    assert!(mailbox.sent().is_empty());
}

#[tokio::test]
async fn a_kept_claim_and_its_message_return_at_the_same_moment() {
    let mailbox = Arc::new(InMemoryMailer::default());
    let flaky = Arc::new(billing::adapters::email_testing::FaultyMailer::new(
        mailbox.clone(),
    ));
    flaky.fail_next(SendError::Unavailable("timeout".into()));
    let faulty = flaky.clone();
    let (app, queue, sender) = twin_rig("twinlease", move |_| faulty).await;
    // The batch is handled 40 s after the receive (a slow batch): the lease starts then.
    app.clock.set(NOW);
    let records = queue.receive();
    app.clock.set(NOW + 40);
    let response = sender.handle_batch(&SqsEvent { records }).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let (visible_at, receives) = queue.only();
    assert_eq!(
        visible_at,
        NOW + 40 + 180,
        "the lease's end, not the receive's"
    );
    // The message comes back exactly when the claim can be taken over: sent on that receive.
    poll_until_empty(&app, &queue, &sender, NOW + 3600).await;
    assert_eq!(receives, 1);
    assert_eq!(app.clock.now(), visible_at);
    assert_eq!(mailbox.sent().len(), 1);
    assert_eq!(flaky.calls(), 2);
}
