//! Customer emails, the sending half (issue 10, points 2–5): the job in the event's commit,
//! the relay's routing, and the consumer's once-only sending under duplicates, races, crashes,
//! throttling, rejections, a paused account and suppressed addresses. `moto_*` tests read
//! what SES was asked to send back from moto's `/moto-api/data.json`.

use crate::helpers::{fixture, moto_store, sdk_config, settings, unique, TestApp, NOW, SECRET};
use billing::adapters::dynamo::DynamoBillingStore;
use billing::adapters::email_store::{DynamoEmailLedger, InMemoryEmailLedger};
use billing::adapters::email_testing::{FaultyMailer, InMemoryMailer};
use billing::adapters::faults::{FaultPlan, FaultyStore};
use billing::adapters::memory::{InMemoryBillingStore, InMemoryQueue, StaticSecrets};
use billing::adapters::ses::SesMailer;
use billing::adapters::sqs::SqsQueue;
use billing::domain::events::EmailAddress;
use billing::emails::job::{EmailJob, EMAIL_JOB_KIND};
use billing::emails::kinds::{EmailKind, EmailQueueing, EmailSettings};
use billing::emails::records::{Claim, EmailKey, EmailLedger, EmailState};
use billing::emails::send::{
    EmailSender, JobOutcome, Mailer, SendError, SendPolicy, SqsEvent, SqsRecord,
};
use billing::http::local_router;
use billing::ports::{BillingStore, Clock, FixedClock, Queue};
use billing::providers::stripe::pipeline;
use billing::providers::stripe::signature::WebhookSecret;
use billing::providers::stripe::Family;
use billing::relay::{drain, RoutedQueue};
use billing::telemetry::{Counter, Metrics};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const SENDER: &str = "billing@example.com";
const EUR: &str = "stripe/SYNTH-emails/invoice.payment_action_required__two_decimal_eur.json";

/// A test app whose pipeline queues the action-required email (`kinds` on).
pub(crate) fn email_app(store: Arc<dyn BillingStore>, kinds: BTreeSet<EmailKind>) -> TestApp {
    email_app_with(
        store,
        EmailQueueing {
            kinds,
            connected_accounts: false,
        },
    )
}

/// [`email_app`] queueing what `emails` says (connected accounts' customers too, or not).
pub(crate) fn email_app_with(store: Arc<dyn BillingStore>, emails: EmailQueueing) -> TestApp {
    let faults = Arc::new(FaultPlan::default());
    let faulty: Arc<dyn BillingStore> = Arc::new(FaultyStore {
        inner: store,
        plan: faults.clone(),
    });
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let secrets = Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)]));
    let service = Arc::new(
        pipeline(
            faulty.clone(),
            secrets.clone(),
            clock.clone(),
            metrics.clone(),
            settings(false),
        )
        .with_email_queueing(emails),
    );
    TestApp {
        router: local_router(service.clone()),
        service,
        store: faulty,
        memory: None,
        dynamo: None,
        clock,
        metrics,
        secrets,
        faults,
    }
}

pub(crate) fn on() -> BTreeSet<EmailKind> {
    [EmailKind::PaymentActionRequired].into()
}

pub(crate) fn all_kinds() -> BTreeSet<EmailKind> {
    EmailKind::ALL.into()
}

/// The EUR action-required fixture under new ids (`tag`): its own event, invoice and address,
/// so tests sharing moto's one SES never read each other's emails. Returns body and address.
pub(crate) fn action_required(tag: &str, event_suffix: &str) -> (Vec<u8>, String) {
    let mut event: Value = serde_json::from_slice(&fixture(EUR)).expect("fixture json");
    let address = format!("{tag}@example.com");
    event["id"] = json!(format!("evt_{tag}{event_suffix}"));
    event["data"]["object"]["id"] = json!(format!("in_{tag}"));
    event["data"]["object"]["customer_email"] = json!(address);
    (serde_json::to_vec(&event).expect("json"), address)
}

/// The email jobs waiting in the outbox.
pub(crate) async fn pending_jobs(store: &dyn BillingStore) -> Vec<EmailJob> {
    let pending = store.pending_outbox(100).await.expect("outbox");
    pending
        .into_iter()
        .filter_map(Result::ok)
        .filter(|m| m.kind == EMAIL_JOB_KIND)
        .map(|m| EmailJob::from_body(&m.body.to_string()).expect("a job"))
        .collect()
}

fn email_settings(from: &str) -> EmailSettings {
    EmailSettings {
        // The consumer sends every kind its jobs name; the pipeline decides which are queued.
        kinds: all_kinds(),
        // As the Lambda sends: the brand is the sender's display name.
        from: Some(suite_brand().sender(&EmailAddress::new(from))),
        reply_to: None,
        configuration_set: None,
        connected_accounts: false,
    }
}

/// A consumer over `store`, with a short backoff so throttling tests stay quick.
pub(crate) fn consumer(
    store: Arc<dyn BillingStore>,
    ledger: Arc<dyn EmailLedger>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
) -> EmailSender {
    EmailSender {
        store,
        ledger,
        mailer,
        settings: email_settings(SENDER),
        clock,
        metrics: Arc::new(Metrics::memory()),
        policy: SendPolicy {
            lease_secs: 180,
            throttle_attempts: 3,
            backoff: Duration::from_millis(1),
            ..SendPolicy::default()
        },
        visibility: None,
        templates: test_templates(),
    }
}

/// The suite's brand: a name, a support address and a postal address.
pub(crate) fn suite_brand() -> billing::emails::brand::Brand {
    billing::emails::brand::Brand {
        support_email: Some("help@suite.example".into()),
        postal_address: Some("1 Suite Street, Testville".into()),
        ..billing::emails::brand::Brand::named("Suite Co")
    }
}

/// The built-in templates under the suite's brand.
pub(crate) fn test_templates() -> Arc<billing::emails::templates::Templates> {
    Arc::new(billing::emails::templates::Templates::built_in(&suite_brand()).expect("templates"))
}

/// In memory: the app, its queued job, and a consumer with a scriptable mailer.
struct Rig {
    app: TestApp,
    job: EmailJob,
    address: String,
    ledger: Arc<InMemoryEmailLedger>,
    mailbox: Arc<InMemoryMailer>,
    mailer: Arc<FaultyMailer>,
}

impl Rig {
    async fn new(tag: &str) -> Self {
        let app = email_app(Arc::new(InMemoryBillingStore::new()), on());
        let (body, address) = action_required(tag, "");
        assert_eq!(app.post(Family::Invoice, &body).await.0, StatusCode::OK);
        let mut jobs = pending_jobs(app.store.as_ref()).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let mailbox = Arc::new(InMemoryMailer::default());
        Self {
            app,
            job: jobs.remove(0),
            address,
            ledger: Arc::new(InMemoryEmailLedger::default()),
            mailer: Arc::new(FaultyMailer::new(mailbox.clone())),
            mailbox,
        }
    }

    fn sender(&self) -> EmailSender {
        consumer(
            self.app.store.clone(),
            self.ledger.clone(),
            self.mailer.clone(),
            self.app.clock.clone(),
        )
    }

    fn sent_to(&self) -> Vec<String> {
        self.mailbox.sent().into_iter().map(|(to, _)| to).collect()
    }
}

#[tokio::test]
async fn an_action_required_invoice_queues_one_job_in_its_commit_and_none_when_off() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), on());
    let (body, _) = action_required("jobonce", "");
    for _ in 0..2 {
        // The second is a redelivery: the ledger lets the event commit once, so one job.
        assert_eq!(app.post(Family::Invoice, &body).await.0, StatusCode::OK);
    }
    let pending = app.store.pending_outbox(100).await.expect("outbox");
    let jobs: Vec<_> = pending
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .filter(|m| m.kind == EMAIL_JOB_KIND)
        .collect();
    assert_eq!(jobs.len(), 1, "{pending:?}");
    assert_eq!(
        jobs[0].body,
        json!({"email": "payment_action_required", "provider": "stripe",
            "object": "in_jobonce", "customer": "cus_synmail_two_decimal_eur",
            "event_id": "evt_jobonce"})
    );
    assert!(
        !jobs[0].body.to_string().contains('@'),
        "no address in a job"
    );

    let off = email_app(Arc::new(InMemoryBillingStore::new()), BTreeSet::new());
    assert_eq!(off.post(Family::Invoice, &body).await.0, StatusCode::OK);
    assert!(pending_jobs(off.store.as_ref()).await.is_empty());
}

#[tokio::test]
async fn the_relay_sends_email_jobs_to_the_email_queue_and_the_rest_to_the_feed() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), on());
    let (body, _) = action_required("route", "");
    app.post(Family::Invoice, &body).await;
    app.post_fixture("stripe/lifecycle/02_customer.subscription.created.json")
        .await;
    let (feed, emails) = (
        Arc::new(InMemoryQueue::default()),
        Arc::new(InMemoryQueue::default()),
    );
    let routed = RoutedQueue {
        feed: feed.clone(),
        emails: Some(emails.clone()),
    };
    let report = drain(app.store.as_ref(), &routed, &app.metrics, 100)
        .await
        .expect("drain");
    assert_eq!(report.failed, 0);
    let kinds = |q: &InMemoryQueue| -> Vec<String> {
        q.sent
            .lock()
            .expect("lock")
            .iter()
            .map(|m| m.kind.clone())
            .collect()
    };
    assert_eq!(kinds(&emails), [EMAIL_JOB_KIND]);
    assert!(!kinds(&feed).is_empty());
    assert!(!kinds(&feed).iter().any(|k| k == EMAIL_JOB_KIND));

    // Without an email queue the job stays in the outbox (not on the feed).
    let app = email_app(Arc::new(InMemoryBillingStore::new()), on());
    app.post(Family::Invoice, &body).await;
    let feed = Arc::new(InMemoryQueue::default());
    let routed = RoutedQueue {
        feed: feed.clone(),
        emails: None,
    };
    let report = drain(app.store.as_ref(), &routed, &app.metrics, 100)
        .await
        .expect("drain");
    assert_eq!(report.failed, 1);
    assert!(kinds(&feed).is_empty());
    assert_eq!(pending_jobs(app.store.as_ref()).await.len(), 1);
}

#[tokio::test]
async fn a_job_sent_again_or_asked_for_by_a_second_event_sends_one_email() {
    let rig = Rig::new("dup").await;
    let sender = rig.sender();
    let first = sender.handle(&rig.job).await;
    assert!(matches!(first, JobOutcome::Sent { .. }), "{first:?}");
    // The queue redelivers the same job.
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::AlreadyDone(EmailState::Sent)
    );
    // Stripe asks again for the same invoice (a second attempt): a second job, no second email.
    let (again, _) = action_required("dup", "_second");
    assert_eq!(
        rig.app.post(Family::Invoice, &again).await.0,
        StatusCode::OK
    );
    let jobs = pending_jobs(rig.app.store.as_ref()).await;
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        assert_eq!(
            sender.handle(job).await,
            JobOutcome::AlreadyDone(EmailState::Sent)
        );
    }
    assert_eq!(rig.sent_to(), vec![rig.address.clone()]);
    let records = rig.ledger.records(10).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].state, records[0].detail.as_deref()),
        (EmailState::Sent, Some("mem-0"))
    );
}

#[tokio::test]
async fn racing_consumers_send_one_email() {
    let mut rig = Rig::new("race").await;
    let mut slow = FaultyMailer::new(rig.mailbox.clone());
    slow.delay = Duration::from_millis(50);
    rig.mailer = Arc::new(slow);
    let (a, b) = (rig.sender(), rig.sender());
    let (ra, rb) = tokio::join!(a.handle(&rig.job), b.handle(&rig.job));
    let outcomes = [ra, rb];
    let sent = outcomes
        .iter()
        .filter(|o| matches!(o, JobOutcome::Sent { .. }))
        .count();
    assert_eq!(sent, 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&JobOutcome::Wait {
            why: "claimed_elsewhere",
            until: Some(NOW + 180)
        }),
        "{outcomes:?}"
    );
    assert_eq!(rig.sent_to().len(), 1);
    // The loser's message comes back and finds the email sent.
    assert_eq!(
        a.handle(&rig.job).await,
        JobOutcome::AlreadyDone(EmailState::Sent)
    );
}

#[tokio::test]
async fn a_consumer_that_died_after_claiming_is_taken_over_after_its_lease() {
    let rig = Rig::new("crash").await;
    // A consumer claimed at NOW and died before sending.
    let key = rig.job.key();
    let claim = rig
        .ledger
        .claim(&key, "dead", NOW, 180)
        .await
        .expect("claim");
    assert_eq!(claim, Claim::Won { attempts: 1 });
    let sender = rig.sender();
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Wait {
            why: "claimed_elsewhere",
            until: Some(NOW + 180)
        }
    );
    assert!(rig.sent_to().is_empty());
    // The queue returns the message after its visibility timeout (= the lease).
    rig.app.clock.set(NOW + 180);
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
    assert_eq!(rig.sent_to().len(), 1);
    assert_eq!(rig.ledger.records(1).await.expect("records")[0].attempts, 2);
    // The dead consumer's late outcome is refused: its lease is gone.
    let late = billing::emails::records::Finished::Skipped {
        reason: "late".into(),
    };
    assert!(!rig
        .ledger
        .finish(&key, "dead", &late, NOW + 200)
        .await
        .expect("finish"));
}

#[tokio::test]
async fn an_invoice_paid_before_the_job_runs_is_skipped_and_recorded() {
    let rig = Rig::new("paidfirst").await;
    let mut paid: Value =
        serde_json::from_slice(&action_required("paidfirst", "_paid").0).expect("json");
    paid["type"] = json!("invoice.paid");
    paid["created"] = json!(paid["created"].as_i64().expect("created") + 60);
    paid["data"]["object"]["status"] = json!("paid");
    paid["data"]["object"]["amount_paid"] = paid["data"]["object"]["amount_due"].clone();
    paid["data"]["object"]["amount_remaining"] = json!(0);
    let body = serde_json::to_vec(&paid).expect("json");
    assert_eq!(rig.app.post(Family::Invoice, &body).await.0, StatusCode::OK);
    assert_eq!(
        rig.sender().handle(&rig.job).await,
        JobOutcome::Skipped {
            reason: "invoice_paid".into()
        }
    );
    assert!(rig.sent_to().is_empty());
    let record = &rig.ledger.records(1).await.expect("records")[0];
    assert_eq!(
        (record.state, record.detail.as_deref()),
        (EmailState::Skipped, Some("invoice_paid"))
    );
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_returned_to_the_queue_then_sent_once() {
    let rig = Rig::new("throttle").await;
    let sender = rig.sender();
    // Throttled once: retried in place and sent.
    rig.mailer.fail_next(SendError::Throttled(
        "service TooManyRequestsException".into(),
    ));
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
    assert_eq!(rig.mailer.calls(), 2);
    assert_eq!(sender.metrics.count(Counter::EmailsThrottled), 1);

    let rig = Rig::new("throttle2").await;
    let sender = rig.sender();
    for _ in 0..3 {
        rig.mailer.fail_next(SendError::Throttled(
            "service LimitExceededException".into(),
        ));
    }
    // Throttled on every attempt: the message goes back and the claim is given back…
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Retry("throttled")
    );
    assert_eq!(rig.mailer.calls(), 3);
    // …so the redelivery sends at once, once.
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::AlreadyDone(EmailState::Sent)
    );
    assert_eq!(rig.sent_to().len(), 1);
}

#[tokio::test]
async fn a_rejection_is_recorded_and_never_retried() {
    let rig = Rig::new("reject").await;
    let sender = rig.sender();
    rig.mailer
        .fail_next(SendError::Rejected("MessageRejected".into()));
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Rejected {
            code: "MessageRejected".into()
        }
    );
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::AlreadyDone(EmailState::Rejected)
    );
    assert_eq!(rig.mailer.calls(), 1);
    assert!(rig.sent_to().is_empty());
    assert_eq!(sender.metrics.count(Counter::EmailsRejected), 1);
}

#[tokio::test]
async fn a_paused_account_leaves_the_job_queued_and_counts_it() {
    let rig = Rig::new("paused").await;
    let sender = rig.sender();
    rig.mailer
        .fail_next(SendError::Paused("service SendingPausedException".into()));
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Wait {
            why: "sending_paused",
            until: None
        }
    );
    assert_eq!(sender.metrics.count(Counter::EmailsSendingPaused), 1);
    // Sending resumes: the returned message sends.
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
}

#[tokio::test]
async fn no_answer_from_ses_keeps_the_claim_until_its_lease_ends() {
    let rig = Rig::new("noanswer").await;
    let sender = rig.sender();
    rig.mailer
        .fail_next(SendError::Unavailable("timeout".into()));
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Wait {
            why: "ses_unavailable",
            until: Some(NOW + 180)
        }
    );
    // SES may have sent it: no second try before the lease ends.
    assert_eq!(
        sender.handle(&rig.job).await,
        JobOutcome::Wait {
            why: "claimed_elsewhere",
            until: Some(NOW + 180)
        }
    );
    rig.app.clock.set(NOW + 180);
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
}

/// An SES bounce event as SNS delivers it to SQS (modelled on the SES developer guide's
/// "Examples of event data that Amazon SES publishes to Amazon SNS").
fn sns_bounce(address: &str, bounce_type: &str) -> String {
    let ses = json!({
        "eventType": "Bounce",
        "bounce": {"bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address}], "timestamp": "2025-01-01T00:00:00.000Z"},
        "mail": {"messageId": "m-1", "source": SENDER}
    });
    json!({"Type": "Notification", "MessageId": "sns-1", "Message": ses.to_string()}).to_string()
}

#[tokio::test]
async fn a_permanently_bounced_address_is_suppressed_and_skipped() {
    let rig = Rig::new("bounced").await;
    let sender = rig.sender();
    let batch = |id: &str, body: String| SqsEvent {
        records: vec![SqsRecord {
            message_id: id.into(),
            body,
            ..Default::default()
        }],
    };
    // A transient bounce suppresses nothing; a permanent one does; junk is returned.
    let transient = sender
        .handle_batch(&batch("t", sns_bounce(&rig.address, "Transient")))
        .await;
    assert!(transient.batch_item_failures.is_empty());
    let permanent = sender
        .handle_batch(&batch(
            "p",
            sns_bounce(&rig.address.to_uppercase(), "Permanent"),
        ))
        .await;
    assert!(permanent.batch_item_failures.is_empty());
    assert_eq!(sender.metrics.count(Counter::EmailSuppressions), 1);
    let junk = sender.handle_batch(&batch("j", "{not json".into())).await;
    assert_eq!(junk.batch_item_failures.len(), 1);

    let job = batch("job", serde_json::to_string(&rig.job).expect("json"));
    assert!(sender
        .handle_batch(&job)
        .await
        .batch_item_failures
        .is_empty());
    assert!(rig.sent_to().is_empty());
    let record = &rig.ledger.records(1).await.expect("records")[0];
    assert_eq!(
        (record.state, record.detail.as_deref()),
        (EmailState::Skipped, Some("suppressed"))
    );
}

// --- against moto: SQS, DynamoDB and SES ---------------------------------------------------

/// The messages moto's SES accepted for `address`: (subject, body).
pub(crate) async fn moto_mails_to(address: &str) -> Vec<(String, String)> {
    moto_messages_to(address)
        .await
        .into_iter()
        .map(|m| (m.subject, m.body))
        .collect()
}

/// One email as moto's SES keeps it.
pub(crate) struct MotoMessage {
    pub source: String,
    pub subject: String,
    /// The HTML part (moto keeps one part, the HTML when there is one).
    pub body: String,
}

/// What moto's SES "sent" to `address`.
pub(crate) async fn moto_messages_to(address: &str) -> Vec<MotoMessage> {
    let data: Value = serde_json::from_str(&http_get("/moto-api/data.json").await).expect("json");
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["destinations"]["ToAddresses"][0] == address)
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            MotoMessage {
                source: text("source"),
                subject: text("subject"),
                body: text("body"),
            }
        })
        .collect()
}

/// GET `path` from moto (plain HTTP/1.0: the whole body, then the connection closes).
pub(crate) async fn http_get(path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = crate::helpers::endpoint();
    let host = endpoint
        .strip_prefix("http://")
        .expect("an http endpoint")
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

/// Verifies the sender in moto's SES (v2 `CreateEmailIdentity`; an existing one is fine).
pub(crate) async fn verify_sender(ses: &aws_sdk_sesv2::Client, identity: &str) {
    let _ = ses
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await;
}

/// The product's pieces against moto: table, email ledger on it, SES v2, an email queue.
struct MotoRig {
    app: TestApp,
    dynamo: Arc<DynamoBillingStore>,
    ledger: Arc<DynamoEmailLedger>,
    ses: Arc<SesMailer>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl MotoRig {
    async fn new() -> Self {
        Self::with_kinds(on()).await
    }

    async fn with_kinds(kinds: BTreeSet<EmailKind>) -> Self {
        let dynamo = moto_store().await;
        let app = email_app(dynamo.clone(), kinds);
        let sdk = sdk_config();
        let ses_client = aws_sdk_sesv2::Client::new(&sdk);
        verify_sender(&ses_client, SENDER).await;
        let (sqs, queue_url) = crate::helpers::moto_queue("emails").await;
        Self {
            ledger: Arc::new(DynamoEmailLedger::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                dynamo.table(),
            )),
            ses: Arc::new(SesMailer::new(ses_client)),
            app,
            dynamo,
            sqs,
            queue_url,
        }
    }

    fn sender(&self, mailer: Arc<dyn Mailer>) -> EmailSender {
        consumer(
            self.app.store.clone(),
            self.ledger.clone(),
            mailer,
            Arc::new(billing::ports::SystemClock),
        )
    }

    /// Relays the outbox (email jobs to the email queue) and receives the queue as Lambda's
    /// event source mapping would hand it over.
    async fn relay_and_receive(&self) -> SqsEvent {
        let emails: Arc<dyn Queue> = Arc::new(SqsQueue::new(self.sqs.clone(), &self.queue_url));
        let routed = RoutedQueue {
            feed: Arc::new(InMemoryQueue::default()),
            emails: Some(emails),
        };
        let report = drain(self.app.store.as_ref(), &routed, &self.app.metrics, 100)
            .await
            .expect("drain");
        assert_eq!(report.failed, 0);
        let received = crate::helpers::receive_all(&self.sqs, &self.queue_url).await;
        SqsEvent {
            records: received
                .into_iter()
                .map(|(id, kind, body)| {
                    assert_eq!(kind, EMAIL_JOB_KIND);
                    SqsRecord {
                        message_id: id,
                        body: body.to_string(),
                        ..Default::default()
                    }
                })
                .collect(),
        }
    }
}

#[tokio::test]
async fn moto_one_email_per_action_required_invoice_under_duplicate_events_jobs_and_races() {
    let rig = MotoRig::new().await;
    let tag = unique("once");
    let (body, address) = action_required(&tag, "");
    let (second, _) = action_required(&tag, "_second");
    // A duplicate event (redelivered) and a second event asking for the same email.
    for b in [&body, &body, &second] {
        assert_eq!(rig.app.post(Family::Invoice, b).await.0, StatusCode::OK);
    }
    let batch = rig.relay_and_receive().await;
    assert_eq!(batch.records.len(), 2, "one job per applied event");
    // Two consumers race on the same batch, then the queue redelivers it whole.
    let (a, b) = (rig.sender(rig.ses.clone()), rig.sender(rig.ses.clone()));
    let (ra, rb) = tokio::join!(a.handle_batch(&batch), b.handle_batch(&batch));
    let again = a.handle_batch(&batch).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    let mails = moto_messages_to(&address).await;
    assert_eq!(mails.len(), 1, "{ra:?} {rb:?}");
    assert!(
        mails[0].subject.contains("SYN-MAIL-0001"),
        "{:?}",
        mails[0].subject
    );
    // The branded email: who writes (the From's display name and the subject), and the footer.
    assert_eq!(mails[0].source, format!("Suite Co <{SENDER}>"));
    assert!(
        mails[0].subject.starts_with("Suite Co: "),
        "{:?}",
        mails[0].subject
    );
    for footer in [
        "help@suite.example",
        "Suite Co · 1 Suite Street, Testville",
        "You receive this email because",
    ] {
        assert!(
            mails[0].body.contains(footer),
            "{footer}: {}",
            mails[0].body
        );
    }
    let records = rig.ledger.records(100).await.expect("records");
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.object == format!("in_{tag}"))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, EmailState::Sent);
    assert!(!serde_json::to_string(&records).expect("json").contains('@'));
    drop(rig.dynamo);
}

#[tokio::test]
async fn moto_a_throttled_send_is_retried_then_sent_once() {
    let rig = MotoRig::new().await;
    let tag = unique("throttled");
    let (body, address) = action_required(&tag, "");
    rig.app.post(Family::Invoice, &body).await;
    let batch = rig.relay_and_receive().await;
    let mailer = Arc::new(FaultyMailer::new(rig.ses.clone()));
    for _ in 0..3 {
        mailer.fail_next(SendError::Throttled(
            "service TooManyRequestsException".into(),
        ));
    }
    let sender = rig.sender(mailer.clone());
    let first = sender.handle_batch(&batch).await;
    assert_eq!(first.batch_item_failures.len(), 1, "returned to the queue");
    assert!(moto_mails_to(&address).await.is_empty());
    let retry = sender.handle_batch(&batch).await;
    assert!(retry.batch_item_failures.is_empty());
    sender.handle_batch(&batch).await;
    assert_eq!(moto_mails_to(&address).await.len(), 1);
    assert_eq!(mailer.calls(), 4);
}

#[tokio::test]
async fn moto_a_rejection_is_recorded_and_not_retried() {
    let rig = MotoRig::new().await;
    let tag = unique("rejected");
    let (body, address) = action_required(&tag, "");
    rig.app.post(Family::Invoice, &body).await;
    let batch = rig.relay_and_receive().await;
    // moto, as SES in the sandbox, refuses an unverified sender with MessageRejected.
    let mailer = Arc::new(FaultyMailer::new(rig.ses.clone()));
    let mut sender = rig.sender(mailer.clone());
    sender.settings = email_settings("nobody@unverified.example");
    for _ in 0..2 {
        assert!(sender
            .handle_batch(&batch)
            .await
            .batch_item_failures
            .is_empty());
    }
    assert_eq!(mailer.calls(), 1, "not retried");
    assert!(moto_mails_to(&address).await.is_empty());
    let key = EmailKey {
        email: EmailKind::PaymentActionRequired,
        provider: "stripe".into(),
        object: format!("in_{tag}"),
    };
    let claim = rig
        .ledger
        .claim(&key, "probe", i64::MAX / 2, 1)
        .await
        .expect("claim");
    let Claim::Done(record) = claim else {
        panic!("{claim:?}")
    };
    assert_eq!(
        (record.state, record.detail.as_deref()),
        (EmailState::Rejected, Some("MessageRejected"))
    );
}

#[tokio::test]
async fn moto_a_suppressed_address_is_skipped() {
    let rig = MotoRig::new().await;
    let tag = unique("suppressed");
    let (body, address) = action_required(&tag, "");
    rig.app.post(Family::Invoice, &body).await;
    let mut batch = rig.relay_and_receive().await;
    batch.records.insert(
        0,
        SqsRecord {
            message_id: "bounce".into(),
            body: sns_bounce(&address, "Permanent"),
            ..Default::default()
        },
    );
    let sender = rig.sender(rig.ses.clone());
    assert!(sender
        .handle_batch(&batch)
        .await
        .batch_item_failures
        .is_empty());
    assert!(moto_mails_to(&address).await.is_empty());
    assert_eq!(sender.metrics.count(Counter::EmailsSkipped), 1);
}

/// Requests and DynamoDB capacity per email sent (BENCHMARKS.md, "Customer emails"): the
/// consumer's reads and writes for one job, against moto, printed for the note.
#[tokio::test]
async fn moto_cost_of_one_email() {
    let rig = MotoRig::new().await;
    let tag = unique("cost");
    let (body, address) = action_required(&tag, "");
    // The same delivery with emails off (another invoice, same table), then with its job.
    let off = email_app(rig.dynamo.clone(), BTreeSet::new());
    let (twin, _) = action_required(&unique("costoff"), "");
    rig.dynamo.meter.take();
    off.post(Family::Invoice, &twin).await;
    let without = rig.dynamo.meter.take();
    rig.app.post(Family::Invoice, &body).await;
    let with = rig.dynamo.meter.take();
    println!("delivery without its email job: {without:?}; with: {with:?}");
    // The job is one more small item in the same transaction: 1 KB, doubled.
    assert_eq!(with.requests, without.requests);
    assert_eq!(with.write_units - without.write_units, 2.0);
    let batch = rig.relay_and_receive().await;
    let sender = rig.sender(rig.ses.clone());
    rig.dynamo.meter.take();
    rig.ledger.meter.take();
    assert!(sender
        .handle_batch(&batch)
        .await
        .batch_item_failures
        .is_empty());
    let (store, ledger) = (rig.dynamo.meter.take(), rig.ledger.meter.take());
    println!("email cost: store {store:?} ledger {ledger:?}");
    // Read invoice and customer (one request), claim, suppression check, outcome.
    assert_eq!((store.requests, ledger.requests), (1, 3));
    assert_eq!(moto_mails_to(&address).await.len(), 1);
}

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_consumer_logs_the_email_and_its_outcome_never_the_address_or_the_body() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    // The test's runtime is single-threaded: the guard covers every await below.
    let _guard = tracing::subscriber::set_default(subscriber);
    let rig = Rig::new("privacy").await;
    // Another test's thread may have registered the consumer's log sites while no subscriber
    // was set and cached "never" for them: recompute now that this one is.
    tracing::callsite::rebuild_interest_cache();
    let sender = rig.sender();
    rig.mailer.fail_next(SendError::Throttled(
        "service TooManyRequestsException".into(),
    ));
    assert!(matches!(
        sender.handle(&rig.job).await,
        JobOutcome::Sent { .. }
    ));
    sender.handle(&rig.job).await;
    let bounce = SqsEvent {
        records: vec![SqsRecord {
            message_id: "b".into(),
            body: sns_bounce(&rig.address, "Permanent"),
            ..Default::default()
        }],
    };
    sender.handle_batch(&bounce).await;
    let text = String::from_utf8(logs.0.lock().expect("log lock").clone()).expect("utf8");
    assert!(
        text.contains("in_privacy") && text.contains("sent mem-0"),
        "{text}"
    );
    for secret in [
        rig.address.as_str(),
        "privacy@",
        "https://invoice.stripe.com",
        "29.00",
    ] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}

/// The claim's conditions on DynamoDB: a live lease holds, an ended one is taken over (and
/// counted), a dead consumer's late outcome is refused, a finished email stays finished.
#[tokio::test]
async fn moto_a_claim_is_held_by_its_lease_then_taken_over_once() {
    let rig = MotoRig::new().await;
    let key = EmailKey {
        email: EmailKind::PaymentActionRequired,
        provider: "stripe".into(),
        object: unique("in_lease"),
    };
    let claim = |token: &'static str, at: i64| {
        let (ledger, key) = (rig.ledger.clone(), key.clone());
        async move { ledger.claim(&key, token, at, 180).await.expect("claim") }
    };
    assert_eq!(claim("dead", NOW).await, Claim::Won { attempts: 1 });
    assert_eq!(
        claim("other", NOW + 179).await,
        Claim::Held { until: NOW + 180 }
    );
    assert_eq!(claim("next", NOW + 180).await, Claim::Won { attempts: 2 });
    let late = billing::emails::records::Finished::Skipped {
        reason: "late".into(),
    };
    assert!(!rig
        .ledger
        .finish(&key, "dead", &late, NOW + 181)
        .await
        .expect("finish"));
    let sent = billing::emails::records::Finished::Sent {
        message_id: "m-1".into(),
    };
    assert!(rig
        .ledger
        .finish(&key, "next", &sent, NOW + 182)
        .await
        .expect("finish"));
    let Claim::Done(record) = claim("again", NOW + 10_000).await else {
        panic!("a sent email is done")
    };
    assert_eq!(
        (record.state, record.detail.as_deref(), record.attempts),
        (EmailState::Sent, Some("m-1"), 2)
    );
    // Giving back a claim that is not ours changes nothing.
    rig.ledger.release(&key, "dead").await.expect("release");
    assert!(matches!(claim("again", NOW + 10_000).await, Claim::Done(_)));
}

#[tokio::test]
async fn a_parked_action_required_event_queues_its_job_when_replayed() {
    use billing::adapters::faults::Step;
    use billing::domain::ids::{EventId, Provider};
    let app = email_app(Arc::new(InMemoryBillingStore::new()), on());
    let (body, _) = action_required("replayed", "");
    app.faults.fail_next(Step::CommitRefused);
    let (status, json) = app.post(Family::Invoice, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked"))
    );
    assert!(pending_jobs(app.store.as_ref()).await.is_empty());
    app.service
        .replay(Provider::STRIPE, &EventId::new("evt_replayed"))
        .await;
    let jobs = pending_jobs(app.store.as_ref()).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].object(), "in_replayed");
}

// --- the other three kinds and the customer record's address --------------------------------

const LIFE: &str = "stripe/lifecycle";
const LIFE_ADDRESS: &str = "user42@example.com";
/// When the lifecycle's failed attempt (`04`, created 1759316402) has waited out
/// `emails::decide::SCA_SETTLE_SECS` for an action-required event.
const LIFE_FAILURE_SETTLED: i64 = 1_759_316_402 + billing::emails::decide::SCA_SETTLE_SECS;

/// A lifecycle fixture (`name` without `.json`) under ids of its own (`tag`): customer,
/// subscription, invoice, session, user, the address and the event id, so tests sharing
/// moto's one SES never read each other's emails. Returns the body and its family.
pub(crate) fn life(tag: &str, name: &str) -> (Vec<u8>, Family) {
    let text = String::from_utf8(fixture(&format!("{LIFE}/{name}.json"))).expect("utf-8");
    let text = text
        .replace("cus_life1", &format!("cus_{tag}"))
        .replace("sub_life1", &format!("sub_{tag}"))
        .replace("in_life2", &format!("in_{tag}"))
        .replace("cs_test_life1", &format!("cs_{tag}"))
        .replace("\"user_42\"", &format!("\"user_{tag}\""))
        .replace(LIFE_ADDRESS, &format!("{tag}@example.com"))
        .replace("\"evt_life_", &format!("\"evt_{tag}_"));
    let env = billing::providers::stripe::event::Envelope::parse(text.as_bytes()).expect("env");
    let family = billing::providers::stripe::translate::family_of(&env.event_type);
    (text.into_bytes(), family)
}

/// Posts lifecycle fixtures, each twice (the second a redelivery).
async fn post_twice(app: &TestApp, tag: &str, names: &[&str]) {
    for name in names {
        let (body, family) = life(tag, name);
        for _ in 0..2 {
            let (status, json) = app.post(family, &body).await;
            assert_eq!(status, StatusCode::OK, "{name}: {json}");
        }
    }
}

/// Handles every job in the outbox not handled yet, each twice (a redelivered job).
async fn handle_new_jobs(
    app: &TestApp,
    sender: &EmailSender,
    seen: &mut Vec<EmailJob>,
) -> Vec<JobOutcome> {
    let mut outcomes = Vec::new();
    for job in pending_jobs(app.store.as_ref()).await {
        if seen.contains(&job) {
            continue;
        }
        outcomes.push(sender.handle(&job).await);
        assert!(matches!(
            sender.handle(&job).await,
            JobOutcome::AlreadyDone(_)
        ));
        seen.push(job);
    }
    outcomes
}

pub(crate) fn memory_consumer(app: &TestApp, mailbox: Arc<InMemoryMailer>) -> EmailSender {
    consumer(
        app.store.clone(),
        Arc::new(InMemoryEmailLedger::default()),
        mailbox,
        app.clock.clone(),
    )
}

#[tokio::test]
async fn each_other_kind_switched_on_sends_one_email_under_duplicate_events() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    let mut seen = Vec::new();
    let sent = |o: &[JobOutcome]| {
        o.iter()
            .filter(|o| matches!(o, JobOutcome::Sent { .. }))
            .count()
    };
    // Checkout, then its subscription: the welcome (to Checkout's address: the record's).
    post_twice(
        &app,
        "k1",
        &[
            "01_checkout.session.completed",
            "02_customer.subscription.created",
        ],
    )
    .await;
    assert_eq!(sent(&handle_new_jobs(&app, &sender, &mut seen).await), 1);
    post_twice(&app, "k1", &["04_invoice.payment_failed"]).await;
    // A failed attempt's email waits for a possible action-required event first.
    app.clock.set(LIFE_FAILURE_SETTLED);
    assert_eq!(sent(&handle_new_jobs(&app, &sender, &mut seen).await), 1);
    app.clock.set(NOW);
    post_twice(&app, "k1", &["08_customer.subscription.deleted"]).await;
    assert_eq!(sent(&handle_new_jobs(&app, &sender, &mut seen).await), 1);
    let jobs: Vec<_> = seen.iter().map(|j| (j.kind(), j.object())).collect();
    assert_eq!(
        jobs,
        [
            (EmailKind::Welcome, "sub_k1"),
            (EmailKind::PaymentFailed, "in_k1"),
            (EmailKind::SubscriptionCancelled, "sub_k1"),
        ]
    );
    let mails = mailbox.sent();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails.iter().all(|(to, _)| to == "k1@example.com"));
    let subjects: Vec<_> = mails.iter().map(|(_, subject)| subject.clone()).collect();
    assert!(subjects[1].contains("LIFE-0002"), "{subjects:?}");
}

#[tokio::test]
async fn kinds_switched_off_queue_nothing() {
    for kinds in [BTreeSet::new(), on()] {
        let app = email_app(Arc::new(InMemoryBillingStore::new()), kinds);
        post_twice(
            &app,
            "off",
            &[
                "01_checkout.session.completed",
                "02_customer.subscription.created",
                "04_invoice.payment_failed",
                "08_customer.subscription.deleted",
            ],
        )
        .await;
        assert!(pending_jobs(app.store.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn an_invoice_without_an_address_is_mailed_to_the_customer_record_newest_first() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    let (body, family) = life("fb", "04_invoice.payment_failed");
    let mut failed: Value = serde_json::from_slice(&body).expect("json");
    failed["data"]["object"]["customer_email"] = Value::Null;
    let body = serde_json::to_vec(&failed).expect("json");
    assert_eq!(app.post(family, &body).await.0, StatusCode::OK);
    let customer = |id: &str, created: i64, email: &str| {
        crate::helpers::event(
            id,
            "customer.updated",
            created,
            json!({"id": "cus_fb", "object": "customer", "email": email, "metadata": {}}),
        )
    };
    // The newer address arrives first; the older one must not replace it.
    for (id, created, email) in [
        ("evt_fb_new", NOW - 10, "record-new@example.com"),
        ("evt_fb_old", NOW - 20, "record-old@example.com"),
    ] {
        let (status, json) = app
            .post(Family::Checkout, &customer(id, created, email))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }
    app.clock.set(LIFE_FAILURE_SETTLED);
    let outcomes = handle_new_jobs(&app, &sender, &mut Vec::new()).await;
    assert!(
        matches!(outcomes[..], [JobOutcome::Sent { .. }]),
        "{outcomes:?}"
    );
    let to: Vec<_> = mailbox.sent().into_iter().map(|(to, _)| to).collect();
    assert_eq!(to, ["record-new@example.com"]);
}

#[tokio::test]
async fn without_the_record_an_invoice_without_an_address_is_skipped_no_recipient() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let sender = memory_consumer(&app, Arc::new(InMemoryMailer::default()));
    let (body, family) = life("norec", "04_invoice.payment_failed");
    let mut failed: Value = serde_json::from_slice(&body).expect("json");
    failed["data"]["object"]["customer_email"] = Value::Null;
    let body = serde_json::to_vec(&failed).expect("json");
    assert_eq!(app.post(family, &body).await.0, StatusCode::OK);
    let outcomes = handle_new_jobs(&app, &sender, &mut Vec::new()).await;
    assert_eq!(
        outcomes,
        [JobOutcome::Skipped {
            reason: "no_recipient".into()
        }]
    );
}

#[tokio::test]
async fn a_failed_invoice_paid_before_its_job_runs_is_skipped() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let sender = memory_consumer(&app, Arc::new(InMemoryMailer::default()));
    let (body, family) = life("paidfail", "04_invoice.payment_failed");
    assert_eq!(app.post(family, &body).await.0, StatusCode::OK);
    let mut paid: Value = serde_json::from_slice(&body).expect("json");
    paid["id"] = json!("evt_paidfail_paid");
    paid["type"] = json!("invoice.paid");
    paid["created"] = json!(paid["created"].as_i64().expect("created") + 60);
    paid["data"]["object"]["status"] = json!("paid");
    paid["data"]["object"]["amount_paid"] = paid["data"]["object"]["amount_due"].clone();
    paid["data"]["object"]["amount_remaining"] = json!(0);
    let paid = serde_json::to_vec(&paid).expect("json");
    assert_eq!(app.post(family, &paid).await.0, StatusCode::OK);
    let outcomes = handle_new_jobs(&app, &sender, &mut Vec::new()).await;
    assert_eq!(
        outcomes,
        [JobOutcome::Skipped {
            reason: "invoice_paid".into()
        }]
    );
}

#[tokio::test]
async fn a_welcome_waits_for_its_subscription_and_is_skipped_once_nothing_grants() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    post_twice(&app, "wait", &["01_checkout.session.completed"]).await;
    let jobs = pending_jobs(app.store.as_ref()).await;
    assert_eq!(jobs.len(), 1);
    // The subscription's own events have not arrived: the job goes back to the queue.
    assert_eq!(
        sender.handle(&jobs[0]).await,
        JobOutcome::Wait {
            why: "not_yet_known",
            until: None
        }
    );
    post_twice(&app, "wait", &["02_customer.subscription.created"]).await;
    assert!(matches!(
        sender.handle(&jobs[0]).await,
        JobOutcome::Sent { .. }
    ));
    // A checkout whose subscription ended before its job ran: no welcome.
    let late = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let sender = memory_consumer(&late, Arc::new(InMemoryMailer::default()));
    post_twice(
        &late,
        "late",
        &[
            "01_checkout.session.completed",
            "02_customer.subscription.created",
            "08_customer.subscription.deleted",
        ],
    )
    .await;
    let jobs = pending_jobs(late.store.as_ref()).await;
    let welcome = jobs
        .iter()
        .find(|j| j.kind() == EmailKind::Welcome)
        .expect("welcome job");
    assert_eq!(
        sender.handle(welcome).await,
        JobOutcome::Skipped {
            reason: "nothing_granted".into()
        }
    );
}

#[tokio::test]
async fn the_customer_record_address_is_in_no_read_route_audit_entry_or_feed_message() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let customer = crate::helpers::event(
        "evt_priv_cus",
        "customer.updated",
        NOW - 5,
        json!({"id": "cus_priv", "object": "customer", "email": "priv@example.com",
            "metadata": {"user_id": "user_priv"}}),
    );
    assert_eq!(
        app.post(Family::Checkout, &customer).await.0,
        StatusCode::OK
    );
    post_twice(
        &app,
        "priv",
        &[
            "01_checkout.session.completed",
            "02_customer.subscription.created",
            "04_invoice.payment_failed",
        ],
    )
    .await;
    // The record holds it (else this test would prove nothing).
    let stored = app
        .store
        .customer(
            billing::domain::ids::Provider::STRIPE,
            &billing::domain::ids::CustomerId::new("cus_priv"),
        )
        .await
        .expect("read")
        .expect("customer");
    assert_eq!(
        stored.value.email().map(|a| a.as_str()),
        Some("priv@example.com")
    );
    for path in [
        "/users/user_priv/access",
        "/users/user_priv/billing",
        "/users/user_priv/events",
        "/events/stripe/evt_priv_cus",
        "/events/stripe/evt_priv_01_checkout_completed",
    ] {
        let (status, json) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        assert!(!json.to_string().contains("example.com"), "{path}: {json}");
    }
    let outbox = app.store.pending_outbox(100).await.expect("outbox");
    assert!(outbox.len() > 1, "feed messages and jobs: {outbox:?}");
    for message in outbox.iter().filter_map(|m| m.as_ref().ok()) {
        assert!(!message.body.to_string().contains('@'), "{}", message.kind);
    }
}

/// Against moto: each of the three kinds, its event delivered twice and its job handled twice,
/// is one email in SES's `data.json`, to the customer record's address for the two
/// subscription kinds; prints what the consumer read and wrote per email (docs/ARCHITECTURE.md, "Scale").
#[tokio::test]
async fn moto_one_email_of_each_other_kind_under_duplicate_events_and_its_cost() {
    let rig = MotoRig::with_kinds(all_kinds()).await;
    let tag = unique("kinds");
    let address = format!("{tag}@example.com");
    let stages: [(&[&str], EmailKind); 3] = [
        (
            &[
                "01_checkout.session.completed",
                "02_customer.subscription.created",
            ],
            EmailKind::Welcome,
        ),
        (&["04_invoice.payment_failed"], EmailKind::PaymentFailed),
        (
            &["08_customer.subscription.deleted"],
            EmailKind::SubscriptionCancelled,
        ),
    ];
    // Handled an hour after the deletion (1761991202): the news is fresh, so each is sent.
    let at = Arc::new(billing::ports::FixedClock::at(1_761_991_202 + 3600));
    let sender = consumer(
        rig.app.store.clone(),
        rig.ledger.clone(),
        rig.ses.clone(),
        at,
    );
    for (names, kind) in stages {
        post_twice(&rig.app, &tag, names).await;
        let batch = rig.relay_and_receive().await;
        assert_eq!(batch.records.len(), 1, "{kind}: one job");
        rig.dynamo.meter.take();
        rig.ledger.meter.take();
        let first = sender.handle_batch(&batch).await;
        let (store, ledger) = (rig.dynamo.meter.take(), rig.ledger.meter.take());
        println!("{kind} email cost: store {store:?} ledger {ledger:?}");
        // One read of the model; claim, suppression check, outcome.
        assert_eq!((store.requests, ledger.requests), (1, 3), "{kind}");
        let again = sender.handle_batch(&batch).await;
        assert!(first.batch_item_failures.is_empty(), "{first:?}");
        assert!(again.batch_item_failures.is_empty(), "{again:?}");
    }
    let mails = moto_mails_to(&address).await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails[1].0.contains("LIFE-0002"), "{:?}", mails[1].0);
    let records = rig.ledger.records(100).await.expect("records");
    let sent: Vec<_> = records
        .iter()
        .filter(|r| r.object.ends_with(&tag) && r.state == EmailState::Sent)
        .collect();
    assert_eq!(sent.len(), 3, "{records:?}");
    drop(rig.dynamo);
}

#[tokio::test]
async fn a_customer_whose_address_was_removed_is_not_mailed_at_the_old_one() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), all_kinds());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    let (body, family) = life("gone", "04_invoice.payment_failed");
    let mut failed: Value = serde_json::from_slice(&body).expect("json");
    failed["data"]["object"]["customer_email"] = Value::Null;
    let body = serde_json::to_vec(&failed).expect("json");
    assert_eq!(app.post(family, &body).await.0, StatusCode::OK);
    // The removal is the newer event; it arrives first.
    for (id, created, email) in [
        ("evt_gone_removed", NOW - 10, Value::Null),
        ("evt_gone_set", NOW - 20, json!("gone-old@example.com")),
    ] {
        let customer = crate::helpers::event(
            id,
            "customer.updated",
            created,
            json!({"id": "cus_gone", "object": "customer", "email": email, "metadata": {}}),
        );
        assert_eq!(
            app.post(Family::Checkout, &customer).await.0,
            StatusCode::OK
        );
    }
    let outcomes = handle_new_jobs(&app, &sender, &mut Vec::new()).await;
    assert_eq!(
        outcomes,
        [JobOutcome::Skipped {
            reason: "no_recipient".into()
        }]
    );
    assert!(mailbox.sent().is_empty());
}

/// Issue 17, points 2 and 7: email records are spread over the index's shards, and the
/// listing (`billing emails list`) reads them all, newest change first, page after page.
#[tokio::test]
async fn moto_email_records_on_every_shard_are_listed_newest_first() {
    use billing::adapters::listing::shard_of;
    let dynamo = moto_store().await;
    let ledger =
        DynamoEmailLedger::new(aws_sdk_dynamodb::Client::new(&sdk_config()), dynamo.table());
    let keys: Vec<EmailKey> = (0..12)
        .map(|i| EmailKey {
            email: EmailKind::PaymentActionRequired,
            provider: "stripe".into(),
            object: format!("in_list_{i:02}"),
        })
        .collect();
    let shards: BTreeSet<u32> = keys
        .iter()
        .map(|k| shard_of(&format!("EMAIL#{}", k.as_key())))
        .collect();
    assert!(shards.len() >= 3, "{shards:?}");
    for (i, key) in keys.iter().enumerate() {
        let claim = ledger
            .claim(key, "t", NOW + i as i64, 60)
            .await
            .expect("claim");
        assert!(matches!(claim, Claim::Won { .. }), "{claim:?}");
    }
    let newest_first: Vec<String> = keys.iter().rev().map(|k| k.object.clone()).collect();
    let mut listed = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let page = ledger.records_page(before.as_ref(), 5).await.expect("page");
        listed.extend(page.items.into_iter().map(|r| r.object));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, newest_first);
    let all: Vec<String> = ledger
        .records(1000)
        .await
        .expect("records")
        .into_iter()
        .map(|r| r.object)
        .collect();
    assert_eq!(all, newest_first);
}

/// A connected account's customers (a Connect endpoint's events, `account` on each) get the
/// emails only when `BILLING_EMAILS_CONNECTED_ACCOUNTS` is on: by default none is queued for
/// them, while the platform's own customer, with the same events, gets hers. Switched on, the
/// connected account's welcome is queued in its account and sent.
#[tokio::test]
async fn a_connected_accounts_customers_get_emails_only_when_switched_on() {
    for connected_accounts in [false, true] {
        let app = email_app_with(
            Arc::new(InMemoryBillingStore::new()),
            EmailQueueing {
                kinds: all_kinds(),
                connected_accounts,
            },
        );
        for file in [
            "A_01_checkout.session.completed",
            "A_02_customer.subscription.created",
            "A_03_invoice.paid",
        ] {
            let body = fixture(&format!("stripe/connect/{file}.json"));
            let env = billing::providers::stripe::event::Envelope::parse(&body).expect("env");
            let family = billing::providers::stripe::translate::family_of(&env.event_type);
            let header = crate::helpers::signed(&body, NOW);
            let req = http::Request::post(format!("/webhooks/stripe/{family}/connect"))
                .header("stripe-signature", header)
                .body(axum::body::Body::from(body))
                .expect("request");
            let (status, answer) = crate::helpers::call_router(&app.router, req).await;
            assert_eq!(
                (status, &answer["state"]),
                (StatusCode::OK, &json!("applied"))
            );
        }
        let jobs = pending_jobs(app.store.as_ref()).await;
        if !connected_accounts {
            assert!(jobs.is_empty(), "queued for a connected account: {jobs:?}");
            // The platform's own customer, with the same events, gets her welcome.
            post_twice(&app, "own", &["01_checkout.session.completed"]).await;
            let own = pending_jobs(app.store.as_ref()).await;
            assert!(
                own.iter()
                    .any(|j| j.provider == billing::domain::ids::Provider::STRIPE),
                "{own:?}"
            );
            continue;
        }
        let account = billing::domain::ids::Account::parse("acct_1LifeConnectA0001").expect("id");
        assert!(!jobs.is_empty());
        assert!(
            jobs.iter().all(|j| j.provider.account() == Some(account)),
            "{jobs:?}"
        );
        let mailbox = Arc::new(InMemoryMailer::default());
        let sender = memory_consumer(&app, mailbox.clone());
        let mut seen = Vec::new();
        let outcomes = handle_new_jobs(&app, &sender, &mut seen).await;
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, JobOutcome::Sent { .. })),
            "{outcomes:?}"
        );
    }
}
