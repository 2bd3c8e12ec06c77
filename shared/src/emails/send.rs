//! The email consumer (issue 10, points 2–4): takes a job from the email queue, claims its
//! email, decides against the model as it is now, and sends through SES — at most once per
//! email, never lost. The same code runs in the Lambda (`functions/emails`) and in-process in
//! the local run.
//!
//! | SES says                                   | the email               | the queue message      |
//! |--------------------------------------------|-------------------------|------------------------|
//! | accepted (a message id)                    | `sent`                  | deleted                |
//! | `MessageRejected`, `MailFromDomainNotVerified` | `rejected` (its code) | deleted (never retried) |
//! | throttled (after the retries here)         | claim given back        | returned (item failure)|
//! | sending paused (`SendingPaused`, `AccountSuspended`) | claim given back, `EmailsSendingPaused` counted | waits (below) |
//! | no answer (timeout, 5xx)                   | claim kept until its lease ends | waits until the lease ends |
//!
//! "No answer" keeps the claim: SES may have accepted the email, so a retry must wait out the
//! lease (as after a crash) rather than send again at once.
//!
//! A job that waits ([`JobOutcome::Wait`]: sending paused, a decision not settled yet, a claim
//! held elsewhere) is returned with its message's visibility set ([`Visibility`]) to when it
//! should come back: the end of the lease, measured from the instant the claim was taken (one
//! clock reading for both), or the decision's own time, or, for a pause, the lease doubled on
//! each receive up to [`SendPolicy::max_wait_secs`], so a long pause spends few of the queue's
//! receives (`maxReceiveCount`) instead of reaching the dead-letter queue.

use super::context::EmailContext;
use super::decide::{
    payment_action_required, payment_failed, subscription_cancelled, subscription_welcome,
    trial_ending, welcome, SkipReason, Surroundings,
};
use super::job::{EmailJob, EmailSubject};
use super::kinds::{EmailKind, EmailSettings};
use super::records::{address_hash, Claim, EmailKey, EmailLedger, EmailState, Finished};
use super::render::{render, Reader, RenderedEmail};
use super::templates::Templates;
use crate::domain::access::SubscriptionAccess;
use crate::domain::access::{customer_access, purchase_access, TierPolicy};
use crate::domain::customer::CustomerBilling;
use crate::domain::events::EmailAddress;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, SubscriptionId};
use crate::domain::invoice::Invoice;
use crate::ports::Beside;
use crate::ports::{BillingStore, Clock, StoreError};
use crate::telemetry::{Counter, Metrics};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::telemetry::EMAILS_DIMENSION;

/// One email as SES is asked to send it. `Debug` shows no address and no body.
#[derive(Clone)]
pub struct OutgoingEmail {
    pub to: EmailAddress,
    pub from: EmailAddress,
    pub reply_to: Option<EmailAddress>,
    pub configuration_set: Option<String>,
    pub content: RenderedEmail,
    /// The email's kind, as an SES message tag (what the configuration set's events carry).
    pub kind: EmailKind,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why SES did not send. Each string is SES's error code or the SDK's description of a
/// failure, never the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// `TooManyRequestsException`, `LimitExceededException`: try again later.
    #[error("throttled: {0}")]
    Throttled(String),
    /// `MessageRejected`, `MailFromDomainNotVerifiedException`, a bad request: never retried.
    #[error("rejected: {0}")]
    Rejected(String),
    /// `SendingPausedException`, `AccountSuspendedException`: the account sends nothing.
    #[error("sending paused: {0}")]
    Paused(String),
    /// No answer, a 5xx: SES may or may not have accepted it.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Sends one email; `Ok` is SES's message id.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// What one job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Sent {
        message_id: String,
    },
    Skipped {
        reason: String,
    },
    Rejected {
        code: String,
    },
    /// Another job (or an earlier delivery of this one) already finished the email.
    AlreadyDone(EmailState),
    /// Not finished: the queue message goes back (a batch item failure). Names why.
    Retry(&'static str),
    /// Not finished, and not to be retried before `until` (the clock's seconds; `None`: after
    /// the growing wait of the message's receive count). Names why.
    Wait {
        why: &'static str,
        until: Option<i64>,
    },
}

/// How long a claim holds and how throttling is retried in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    /// `BILLING_EMAIL_LEASE_SECS`: at least the email queue's visibility timeout, so a job
    /// that comes back after a consumer died finds the lease ended.
    pub lease_secs: i64,
    /// Sends tried per job while SES throttles (then the message goes back to the queue).
    pub throttle_attempts: u32,
    /// The first wait between them; doubled after each.
    pub backoff: Duration,
    /// The longest wait of a job with no time of its own (sending paused, a subscription not
    /// known yet): the lease, doubled per receive, up to this.
    pub max_wait_secs: i64,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            lease_secs: DEFAULT_LEASE_SECS,
            throttle_attempts: 3,
            backoff: Duration::from_millis(200),
            max_wait_secs: DEFAULT_MAX_WAIT_SECS,
        }
    }
}

/// An hour: how late a job may be after sending resumes.
pub const DEFAULT_MAX_WAIT_SECS: i64 = 3600;

/// SQS's longest visibility, less a margin for the batch's time since the receive (SQS counts
/// its 12 hours from the receive).
const MAX_VISIBILITY_SECS: i64 = 43_200 - 300;

impl SendPolicy {
    /// How long a job with no time of its own waits after its `receive_count`th receive.
    pub fn wait_secs(&self, receive_count: u32) -> i64 {
        let doublings = receive_count.saturating_sub(1).min(30);
        self.lease_secs
            .saturating_mul(1_i64 << doublings)
            .min(self.max_wait_secs)
            .max(1)
    }
}

/// Returns a received queue message later: its visibility set to `secs` from now.
#[async_trait]
pub trait Visibility: Send + Sync {
    async fn return_after(&self, record: &SqsRecord, secs: i64) -> Result<(), String>;
}

/// The retry reason of a welcome whose subscription the model does not know yet.
pub const NOT_YET_KNOWN: &str = "not_yet_known";

/// The email queue's visibility timeout in template.yaml (the function's 30 s timeout × 6).
pub const DEFAULT_LEASE_SECS: i64 = 180;

/// The consumer: what it reads, where it records, how it sends.
pub struct EmailSender {
    pub store: Arc<dyn BillingStore>,
    pub ledger: Arc<dyn EmailLedger>,
    pub mailer: Arc<dyn Mailer>,
    pub settings: EmailSettings,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub policy: SendPolicy,
    /// Where waiting jobs' messages are returned later (`None`: at the queue's visibility).
    pub visibility: Option<Arc<dyn Visibility>>,
    /// The checked templates, with the brand (`BILLING_BRAND_*`, `BILLING_EMAIL_TEMPLATES`).
    pub templates: Arc<Templates>,
}

/// Why a job sends nothing now: a final reason (recorded), or a wait (nothing recorded).
enum NotSent {
    Skip(String),
    Wait(&'static str, Option<i64>),
}

impl From<SkipReason> for NotSent {
    fn from(skip: SkipReason) -> Self {
        match skip {
            SkipReason::Unsettled { why, until } => NotSent::Wait(why, Some(until)),
            other => NotSent::Skip(other.as_str().to_owned()),
        }
    }
}

fn skip(reason: &str) -> NotSent {
    NotSent::Skip(reason.to_owned())
}

/// A claim token no other consumer holds.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// How an invoice email is decided from the invoice and what surrounds it.
type InvoiceDecision = fn(&Invoice, Surroundings<'_>) -> Result<EmailContext, SkipReason>;
/// How a subscription email is decided from the subscription's access, the customer
/// record's address and the time.
type SubscriptionDecision =
    fn(&SubscriptionAccess, Option<&EmailAddress>, i64) -> Result<EmailContext, SkipReason>;

/// How the customer record says to address them (their name, their languages).
fn reader_of(customer: Option<&CustomerBilling>) -> Reader {
    let profile = customer.and_then(CustomerBilling::profile);
    Reader {
        name: profile.and_then(|p| p.name.clone()),
        preferred_locales: profile
            .map(|p| p.preferred_locales.clone())
            .unwrap_or_default(),
    }
}

/// What happens to a job whose object the model does not know (yet).
fn decide_unknown(job: &EmailJob) -> NotSent {
    match job.subject {
        EmailSubject::SubscriptionCancelled { .. } | EmailSubject::TrialEnding { .. } => {
            skip("no_subscription")
        }
        // Checkout linked a subscription or a purchase the aggregate has no event of yet
        // (they arrive in any order): retried, not skipped, so the welcome is not lost.
        EmailSubject::SubscriptionWelcome { .. } | EmailSubject::PurchaseWelcome { .. } => {
            NotSent::Wait(NOT_YET_KNOWN, None)
        }
        EmailSubject::PaymentActionRequired { .. } | EmailSubject::PaymentFailed { .. } => {
            skip("no_invoice")
        }
    }
}

impl EmailSender {
    /// Handles one job: claim, decide, send, record. Logs name the email (kind, object) and
    /// the outcome, never the address or the body.
    pub async fn handle(&self, job: &EmailJob) -> JobOutcome {
        let key = job.key();
        let token = new_token();
        let now = self.clock.now();
        let claim = self
            .ledger
            .claim(&key, &token, now, self.policy.lease_secs)
            .await;
        let outcome = match claim {
            Err(e) => {
                tracing::warn!(email = %job.kind(), object = %job.object(), error = %e, "email claim failed; will retry");
                JobOutcome::Retry("store_unavailable")
            }
            Ok(Claim::Held { until }) => {
                tracing::info!(email = %job.kind(), object = %job.object(), lease_until = until, "email claimed by another consumer; will retry");
                JobOutcome::Wait {
                    why: "claimed_elsewhere",
                    until: Some(until),
                }
            }
            Ok(Claim::Done(record)) => JobOutcome::AlreadyDone(record.state),
            // The lease's end, from the same clock reading as the claim's condition.
            Ok(Claim::Won { .. }) => {
                let lease_until = now + self.policy.lease_secs;
                self.claimed(job, &key, &token, now, lease_until).await
            }
        };
        self.count(&outcome);
        tracing::info!(email = %job.kind(), object = %job.object(), outcome = ?OutcomeLog(&outcome), "email job handled");
        outcome
    }

    /// What follows a won claim (taken at `now`, held until `lease_until`).
    async fn claimed(
        &self,
        job: &EmailJob,
        key: &EmailKey,
        token: &str,
        now: i64,
        lease_until: i64,
    ) -> JobOutcome {
        let email = match self.prepare(job, now).await {
            Err(e) => {
                tracing::warn!(email = %job.kind(), object = %job.object(), error = %e, "reading the model failed; will retry");
                return self.give_back(key, token, "store_unavailable").await;
            }
            // A decision that may still change (a welcome's subscription not known yet or
            // still incomplete, a failed attempt whose action-required event may follow).
            Ok(Err(NotSent::Wait(why, until))) => {
                self.give_back(key, token, why).await;
                return JobOutcome::Wait { why, until };
            }
            Ok(Err(NotSent::Skip(reason))) => {
                return self.finish(key, token, Finished::Skipped { reason }).await
            }
            Ok(Ok(email)) => email,
        };
        match self.ledger.suppressed(&address_hash(&email.to)).await {
            Err(_) => return self.give_back(key, token, "store_unavailable").await,
            Ok(true) => {
                let reason = "suppressed".to_owned();
                return self.finish(key, token, Finished::Skipped { reason }).await;
            }
            Ok(false) => {}
        }
        match self.send_with_backoff(&email).await {
            Ok(message_id) => self.finish(key, token, Finished::Sent { message_id }).await,
            Err(SendError::Rejected(code)) => {
                self.finish(key, token, Finished::Rejected { code }).await
            }
            Err(SendError::Throttled(_)) => self.give_back(key, token, "throttled").await,
            Err(SendError::Paused(_)) => {
                self.metrics
                    .incr(Counter::EmailsSendingPaused, EMAILS_DIMENSION);
                self.give_back(key, token, "sending_paused").await;
                JobOutcome::Wait {
                    why: "sending_paused",
                    until: None,
                }
            }
            // SES may have accepted it: the claim stays until its lease ends, and the message
            // comes back then (not before: it would find the claim held).
            Err(SendError::Unavailable(_)) => JobOutcome::Wait {
                why: "ses_unavailable",
                until: Some(lease_until),
            },
        }
    }

    /// The email to send, or why none (the decision's reason), from the model as it is now.
    async fn prepare(
        &self,
        job: &EmailJob,
        now: i64,
    ) -> Result<Result<OutgoingEmail, NotSent>, StoreError> {
        if !self.settings.enabled(job.kind()) {
            return Ok(Err(skip("kind_off")));
        }
        let Some(from) = self.settings.from.clone() else {
            return Ok(Err(skip("kind_off")));
        };
        let decided = match &job.subject {
            EmailSubject::PaymentActionRequired { invoice } => {
                self.invoice_email(job, invoice, payment_action_required, now)
                    .await?
            }
            EmailSubject::PaymentFailed { invoice } => {
                self.invoice_email(job, invoice, payment_failed, now)
                    .await?
            }
            EmailSubject::SubscriptionCancelled { subscription } => {
                self.subscription_email(job, subscription, subscription_cancelled, now)
                    .await?
            }
            EmailSubject::SubscriptionWelcome { subscription } => {
                self.subscription_email(job, subscription, subscription_welcome, now)
                    .await?
            }
            EmailSubject::PurchaseWelcome { session } => {
                self.purchase_welcome(job, session).await?
            }
            EmailSubject::TrialEnding { subscription } => {
                self.subscription_email(job, subscription, trial_ending, now)
                    .await?
            }
        };
        let (ctx, reader) = match decided {
            Ok(decided) => decided,
            Err(not_sent) => return Ok(Err(not_sent)),
        };
        let content = match render(&ctx, &self.templates, &reader) {
            Ok(content) => content,
            Err(e) => {
                // Checked at cold start, so a template that fails here fails on this email's
                // values: the job waits (and reaches the dead-letter queue if it never renders).
                tracing::error!(email = %job.kind(), object = %job.object(), error = %e, "template failed");
                return Ok(Err(NotSent::Wait("template_failed", None)));
            }
        };
        Ok(Ok(OutgoingEmail {
            content,
            kind: ctx.kind(),
            to: ctx.recipient,
            from,
            reply_to: self.settings.reply_to.clone(),
            configuration_set: self.settings.configuration_set.clone(),
        }))
    }

    /// An invoice email: the invoice and its customer in one consistent read; the recipient is
    /// the invoice's address, else the customer record's.
    async fn invoice_email(
        &self,
        job: &EmailJob,
        invoice: &InvoiceId,
        decide: InvoiceDecision,
        now: i64,
    ) -> Result<Result<(EmailContext, Reader), NotSent>, StoreError> {
        let loaded = self
            .store
            .load(
                job.provider,
                &EventId::new("-"),
                job.customer.as_ref(),
                None,
                Beside::Invoice(invoice),
            )
            .await?;
        let Some(invoice) = loaded.invoice else {
            return Ok(Err(skip("no_invoice")));
        };
        let customer = loaded.customer.as_ref().map(|c| &c.value);
        let status = invoice
            .value
            .latest()
            .and_then(|s| s.subscription.as_ref())
            .and_then(|id| customer?.subscriptions.get(id))
            .and_then(|record| record.latest())
            .map(|latest| latest.candidate.snapshot.status.clone());
        let around = Surroundings {
            subscription_status: status.as_ref(),
            customer_email: customer.and_then(|c| c.email()),
            now,
        };
        let reader = reader_of(customer);
        Ok(decide(&invoice.value, around)
            .map(|ctx| (ctx, reader))
            .map_err(NotSent::from))
    }

    /// The customer's aggregate as the access rule sees it now, and the customer record's
    /// address; `None` when the job names no customer or the aggregate does not exist.
    async fn customer_state(
        &self,
        job: &EmailJob,
    ) -> Result<Option<(CustomerId, CustomerBilling)>, StoreError> {
        let Some(customer) = job.customer.as_ref() else {
            return Ok(None);
        };
        // The same consistent read as the invoice emails' (a ledger key no event has).
        let loaded = self
            .store
            .load(
                job.provider,
                &EventId::new("-"),
                Some(customer),
                None,
                Beside::Nothing,
            )
            .await?;
        Ok(loaded.customer.map(|c| (customer.clone(), c.value)))
    }

    /// A subscription's cancellation or welcome, from the subscription's access now.
    async fn subscription_email(
        &self,
        job: &EmailJob,
        subscription: &SubscriptionId,
        decide: SubscriptionDecision,
        now: i64,
    ) -> Result<Result<(EmailContext, Reader), NotSent>, StoreError> {
        let Some((_, state)) = self.customer_state(job).await? else {
            return Ok(Err(skip("no_customer")));
        };
        // Tiers only name what is granted; whether it is granted does not depend on them.
        let subscriptions = customer_access(&state, &TierPolicy::default());
        match subscriptions
            .iter()
            .find(|a| &a.subscription == subscription)
        {
            Some(access) => Ok(decide(access, state.email(), now)
                .map(|ctx| (ctx, reader_of(Some(&state))))
                .map_err(NotSent::from)),
            None => Ok(Err(decide_unknown(job))),
        }
    }

    /// A one-time purchase's welcome: its item, read beside the aggregate.
    async fn purchase_welcome(
        &self,
        job: &EmailJob,
        session: &str,
    ) -> Result<Result<(EmailContext, Reader), NotSent>, StoreError> {
        let Some((customer, mut state)) = self.customer_state(job).await? else {
            return Ok(Err(skip("no_customer")));
        };
        let key = [crate::ports::PurchaseKey::Session(session.to_owned())];
        for p in self.store.purchases(job.provider, &customer, &key).await? {
            state.purchases.insert(p.value.session.clone(), p.value);
        }
        let access = purchase_access(&state);
        match access.iter().find(|p| p.purchase == session) {
            Some(purchase) => Ok(welcome(session, purchase.grants, state.email())
                .map(|ctx| (ctx, reader_of(Some(&state))))
                .map_err(NotSent::from)),
            None => Ok(Err(decide_unknown(job))),
        }
    }

    /// Sends, retrying throttling here `throttle_attempts` times with a doubling wait.
    async fn send_with_backoff(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut wait = self.policy.backoff;
        let mut attempt = 1;
        loop {
            match self.mailer.send(email).await {
                Err(SendError::Throttled(code)) if attempt < self.policy.throttle_attempts => {
                    self.metrics
                        .incr(Counter::EmailsThrottled, EMAILS_DIMENSION);
                    tracing::info!(kind = %email.kind, code = %code, attempt, "SES throttled; backing off");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(SendError::Throttled(code)) => {
                    self.metrics
                        .incr(Counter::EmailsThrottled, EMAILS_DIMENSION);
                    return Err(SendError::Throttled(code));
                }
                other => return other,
            }
        }
    }

    /// Records the outcome. A record that cannot be written after SES accepted the email is
    /// logged, not retried: the job is done, and a retry would send it again.
    async fn finish(&self, key: &EmailKey, token: &str, outcome: Finished) -> JobOutcome {
        match self
            .ledger
            .finish(key, token, &outcome, self.clock.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(email = %key.email, object = %key.object, "email lease ended before its outcome was recorded")
            }
            Err(e) => {
                tracing::error!(email = %key.email, object = %key.object, error = %e, "email outcome not recorded")
            }
        }
        match outcome {
            Finished::Sent { message_id } => JobOutcome::Sent { message_id },
            Finished::Rejected { code } => JobOutcome::Rejected { code },
            Finished::Skipped { reason } => JobOutcome::Skipped { reason },
        }
    }

    /// Gives the claim back (nothing was sent) and asks for the message to be retried.
    async fn give_back(&self, key: &EmailKey, token: &str, why: &'static str) -> JobOutcome {
        if let Err(e) = self.ledger.release(key, token).await {
            // The lease ends by itself: the retry only waits longer.
            tracing::warn!(email = %key.email, object = %key.object, error = %e, "email claim not released");
        }
        JobOutcome::Retry(why)
    }

    fn count(&self, outcome: &JobOutcome) {
        let counter = match outcome {
            JobOutcome::Sent { .. } => Counter::EmailsSent,
            JobOutcome::Skipped { .. } => Counter::EmailsSkipped,
            JobOutcome::Rejected { .. } => Counter::EmailsRejected,
            JobOutcome::AlreadyDone(_) => Counter::EmailsDuplicate,
            JobOutcome::Retry(_) | JobOutcome::Wait { .. } => Counter::EmailsRetried,
        };
        self.metrics.incr(counter, EMAILS_DIMENSION);
    }
}

/// An outcome as logged: the SES message id and skip reasons are safe; nothing else is there.
struct OutcomeLog<'a>(&'a JobOutcome);

impl std::fmt::Debug for OutcomeLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            JobOutcome::Sent { message_id } => write!(f, "sent {message_id}"),
            JobOutcome::Skipped { reason } => write!(f, "skipped {reason}"),
            JobOutcome::Rejected { code } => write!(f, "rejected {code}"),
            JobOutcome::AlreadyDone(state) => write!(f, "already {}", state.as_str()),
            JobOutcome::Retry(why) => write!(f, "retry {why}"),
            JobOutcome::Wait { why, until } => write!(f, "wait {why} until {until:?}"),
        }
    }
}

/// An SQS event as Lambda delivers it: only what the consumer reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsRecord {
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(default)]
    pub body: String,
    #[serde(rename = "messageAttributes", default)]
    pub attributes: HashMap<String, serde_json::Value>,
    /// What returns the message later (`ChangeMessageVisibility`).
    #[serde(rename = "receiptHandle", default)]
    pub receipt_handle: String,
    /// The queue it came from (`arn:aws:sqs:{region}:{account}:{name}`).
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: String,
    /// SQS's own attributes: only the receive count is read.
    #[serde(rename = "attributes", default)]
    pub system: SqsSystemAttributes,
}

/// The SQS system attributes Lambda passes with each record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsSystemAttributes {
    /// How many times SQS has handed the message out, this time included (a string in the
    /// event).
    #[serde(rename = "ApproximateReceiveCount", default)]
    pub approximate_receive_count: Option<String>,
}

impl SqsRecord {
    /// The receive count, 1 when absent or unreadable.
    pub fn receive_count(&self) -> u32 {
        self.system
            .approximate_receive_count
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
            .max(1)
    }
}

/// The partial batch response (`ReportBatchItemFailures`): the messages to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SqsBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<SqsItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqsItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl EmailSender {
    /// One batch from the email queue or the bounce queue: jobs are handled, SES notifications
    /// recorded; a message that is neither is returned (it reaches the dead-letter queue after
    /// the queue's receive count, for an operator).
    pub async fn handle_batch(&self, event: &SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let done = match EmailJob::from_body(&record.body) {
                Ok(job) => match self.handle(&job).await {
                    JobOutcome::Retry(_) => false,
                    JobOutcome::Wait { until, .. } => {
                        self.return_later(record, until).await;
                        false
                    }
                    _ => true,
                },
                Err(not_a_job) => {
                    match super::bounces::record_notification(
                        self.ledger.as_ref(),
                        &self.metrics,
                        &record.body,
                        self.clock.now(),
                    )
                    .await
                    {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::warn!(message_id = %record.message_id, job = %not_a_job, error = %e, "email queue message not handled");
                            false
                        }
                    }
                }
            };
            if !done {
                response.batch_item_failures.push(SqsItemFailure {
                    item_identifier: record.message_id.clone(),
                });
            }
        }
        response
    }

    /// Sets a waiting job's message to come back at `until` (or after the wait its receive
    /// count earns). A failure only returns it sooner, at the queue's visibility timeout.
    async fn return_later(&self, record: &SqsRecord, until: Option<i64>) {
        let Some(visibility) = &self.visibility else {
            return;
        };
        let now = self.clock.now();
        let until = until.unwrap_or_else(|| now + self.policy.wait_secs(record.receive_count()));
        let secs = (until - now).clamp(0, MAX_VISIBILITY_SECS);
        if let Err(e) = visibility.return_after(record, secs).await {
            tracing::warn!(message_id = %record.message_id, error = %e, "email job's return not delayed");
        }
    }
}
