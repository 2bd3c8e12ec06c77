//! The email job: what the outbox carries to the email queue when an applied event calls for
//! a customer email. It names the email (kind and object) and where the consumer reads the
//! model at send time; never an address or a body (docs/EMAILS.md).

use super::kinds::EmailKind;
use super::records::EmailKey;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, Provider, SubscriptionId};
use crate::ports::OutboxMessage;
use serde::{Deserialize, Serialize};

/// The outbox kind of an email job; the relay sends these to the email queue, not the feed.
pub const EMAIL_JOB_KIND: &str = "email.job";

/// What one email is about: its kind and the object the consumer reads at send time. Each
/// kind names the one object it can be about, so a new kind is a new case here and every
/// decision about it is a `match` the compiler checks (no `_` arm chooses an email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailSubject {
    /// The customer must confirm a payment of this invoice.
    PaymentActionRequired { invoice: InvoiceId },
    /// A payment of this invoice failed.
    PaymentFailed { invoice: InvoiceId },
    /// This subscription ended.
    SubscriptionCancelled { subscription: SubscriptionId },
    /// A checkout started this subscription.
    SubscriptionWelcome { subscription: SubscriptionId },
    /// A checkout bought this one-time purchase (its Checkout Session id).
    PurchaseWelcome { session: String },
    /// This subscription's trial ends soon.
    TrialEnding { subscription: SubscriptionId },
}

impl EmailSubject {
    pub fn kind(&self) -> EmailKind {
        match self {
            EmailSubject::PaymentActionRequired { .. } => EmailKind::PaymentActionRequired,
            EmailSubject::PaymentFailed { .. } => EmailKind::PaymentFailed,
            EmailSubject::SubscriptionCancelled { .. } => EmailKind::SubscriptionCancelled,
            EmailSubject::SubscriptionWelcome { .. } | EmailSubject::PurchaseWelcome { .. } => {
                EmailKind::Welcome
            }
            EmailSubject::TrialEnding { .. } => EmailKind::TrialEnding,
        }
    }

    /// The object's id: with the kind and provider, the email's one key.
    pub fn object(&self) -> &str {
        match self {
            EmailSubject::PaymentActionRequired { invoice }
            | EmailSubject::PaymentFailed { invoice } => invoice.as_str(),
            EmailSubject::SubscriptionCancelled { subscription }
            | EmailSubject::SubscriptionWelcome { subscription }
            | EmailSubject::TrialEnding { subscription } => subscription.as_str(),
            EmailSubject::PurchaseWelcome { session } => session,
        }
    }
}

/// One email to decide and send (at most once per kind and object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "JobWire", into = "JobWire")]
pub struct EmailJob {
    pub subject: EmailSubject,
    pub provider: Provider,
    /// The customer whose aggregate the consumer reads (subscription status).
    pub customer: Option<CustomerId>,
    /// The event that asked for it (for the operator; two events may ask for one email).
    pub event_id: EventId,
}

/// A welcome's object, on the wire (the other kinds' objects follow from the kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum About {
    Subscription,
    Purchase,
}

/// The job as the queue carries it: flat, and readable by the consumer of the version before
/// (which had no `about`).
#[derive(Serialize, Deserialize)]
struct JobWire {
    email: EmailKind,
    provider: Provider,
    object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    about: Option<About>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer: Option<CustomerId>,
    event_id: EventId,
}

impl TryFrom<JobWire> for EmailJob {
    type Error = String;

    fn try_from(w: JobWire) -> Result<Self, String> {
        if w.object.is_empty() {
            return Err("an email job names no object".into());
        }
        // A job written before `about` existed: a Checkout Session id (`cs_…`) is a purchase.
        let about = w.about.unwrap_or(if w.object.starts_with("cs_") {
            About::Purchase
        } else {
            About::Subscription
        });
        let subject = match (w.email, about) {
            (EmailKind::PaymentActionRequired, _) => EmailSubject::PaymentActionRequired {
                invoice: InvoiceId::new(w.object),
            },
            (EmailKind::PaymentFailed, _) => EmailSubject::PaymentFailed {
                invoice: InvoiceId::new(w.object),
            },
            (EmailKind::SubscriptionCancelled, _) => EmailSubject::SubscriptionCancelled {
                subscription: SubscriptionId::new(w.object),
            },
            (EmailKind::Welcome, About::Subscription) => EmailSubject::SubscriptionWelcome {
                subscription: SubscriptionId::new(w.object),
            },
            (EmailKind::Welcome, About::Purchase) => {
                EmailSubject::PurchaseWelcome { session: w.object }
            }
            (EmailKind::TrialEnding, _) => EmailSubject::TrialEnding {
                subscription: SubscriptionId::new(w.object),
            },
        };
        Ok(EmailJob {
            subject,
            provider: w.provider,
            customer: w.customer,
            event_id: w.event_id,
        })
    }
}

impl From<EmailJob> for JobWire {
    fn from(job: EmailJob) -> Self {
        let about = match &job.subject {
            EmailSubject::SubscriptionWelcome { .. } => Some(About::Subscription),
            EmailSubject::PurchaseWelcome { .. } => Some(About::Purchase),
            EmailSubject::PaymentActionRequired { .. }
            | EmailSubject::PaymentFailed { .. }
            | EmailSubject::SubscriptionCancelled { .. }
            | EmailSubject::TrialEnding { .. } => None,
        };
        JobWire {
            email: job.subject.kind(),
            provider: job.provider,
            object: job.subject.object().to_owned(),
            about,
            customer: job.customer,
            event_id: job.event_id,
        }
    }
}

impl EmailJob {
    pub fn kind(&self) -> EmailKind {
        self.subject.kind()
    }

    pub fn object(&self) -> &str {
        self.subject.object()
    }

    /// The one key of the email: a job, its redelivery and a second event asking for the same
    /// email share it, so the claim on it lets one email out.
    pub fn key(&self) -> EmailKey {
        EmailKey {
            email: self.kind(),
            provider: self.provider.to_string(),
            object: self.object().to_owned(),
        }
    }

    /// The outbox item: its id is unique per event and kind (the ledger already lets an event
    /// commit once, so a redelivered event adds no second job).
    pub fn outbox_message(&self, created_at: i64) -> OutboxMessage {
        OutboxMessage {
            id: format!("email-{}-{}-{}", self.kind(), self.provider, self.event_id),
            kind: EMAIL_JOB_KIND.to_owned(),
            body: serde_json::to_value(self).unwrap_or_default(),
            created_at,
        }
    }

    /// Reads a job from a queue message's body. The error names what is wrong, never quoting
    /// the body.
    pub fn from_body(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| {
            format!(
                "not an email job ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_names_the_email_and_no_address_and_reads_back() {
        let job = EmailJob {
            subject: EmailSubject::PaymentActionRequired {
                invoice: InvoiceId::new("in_1"),
            },
            provider: Provider::STRIPE,
            customer: Some(CustomerId::new("cus_1")),
            event_id: EventId::new("evt_1"),
        };
        let m = job.outbox_message(7);
        assert_eq!(m.kind, EMAIL_JOB_KIND);
        assert_eq!(m.id, "email-payment_action_required-stripe-evt_1");
        assert_eq!(
            m.body,
            serde_json::json!({"email": "payment_action_required", "provider": "stripe",
                "object": "in_1", "customer": "cus_1", "event_id": "evt_1"})
        );
        let back = EmailJob::from_body(&m.body.to_string()).expect("job");
        assert_eq!(back, job);
        assert_eq!(back.key().as_key(), "payment_action_required#stripe#in_1");
        let bad = EmailJob::from_body(r#"{"email": "someone@example.com"}"#).expect_err("bad");
        assert!(!bad.contains("example.com"), "{bad}");
    }

    #[test]
    fn a_welcome_says_what_it_welcomes_and_a_job_from_before_is_read_by_its_id() {
        let purchase = EmailJob {
            subject: EmailSubject::PurchaseWelcome {
                session: "cs_test_1".into(),
            },
            provider: Provider::STRIPE,
            customer: Some(CustomerId::new("cus_1")),
            event_id: EventId::new("evt_1"),
        };
        let body = purchase.outbox_message(7).body;
        assert_eq!(body["email"], "welcome");
        assert_eq!(body["about"], "purchase");
        assert_eq!(EmailJob::from_body(&body.to_string()), Ok(purchase));
        // Written by the version before: no `about`.
        let old = |object: &str| {
            let body = serde_json::json!({"email": "welcome", "provider": "stripe",
                "object": object, "customer": "cus_1", "event_id": "evt_1"});
            EmailJob::from_body(&body.to_string()).expect("job").subject
        };
        assert_eq!(
            old("cs_live_9"),
            EmailSubject::PurchaseWelcome {
                session: "cs_live_9".into()
            }
        );
        assert_eq!(
            old("sub_9"),
            EmailSubject::SubscriptionWelcome {
                subscription: SubscriptionId::new("sub_9")
            }
        );
        let empty = r#"{"email": "welcome", "provider": "stripe", "object": "", "event_id": "e"}"#;
        assert!(EmailJob::from_body(empty).is_err());
    }
}
