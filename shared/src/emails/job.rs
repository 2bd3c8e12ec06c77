//! The email job: what the outbox carries to the email queue when an applied event calls for
//! a customer email. It names the email (kind and object) and where the consumer reads the
//! model at send time; never an address or a body (README, "Customer emails").

use super::kinds::EmailKind;
use super::records::EmailKey;
use crate::domain::ids::{CustomerId, EventId, Provider};
use crate::ports::OutboxMessage;
use serde::{Deserialize, Serialize};

/// The outbox kind of an email job; the relay sends these to the email queue, not the feed.
pub const EMAIL_JOB_KIND: &str = "email.job";

/// One email to decide and send (at most once per kind and object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    pub email: EmailKind,
    pub provider: Provider,
    /// The object the email is about (an invoice id for the invoice kinds).
    pub object: String,
    /// The customer whose aggregate the consumer reads (subscription status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerId>,
    /// The event that asked for it (for the operator; two events may ask for one email).
    pub event_id: EventId,
}

impl EmailJob {
    /// The one key of the email: a job, its redelivery and a second event asking for the same
    /// email share it, so the claim on it lets one email out.
    pub fn key(&self) -> EmailKey {
        EmailKey {
            email: self.email,
            provider: self.provider.to_string(),
            object: self.object.clone(),
        }
    }

    /// The outbox item: its id is unique per event and kind (the ledger already lets an event
    /// commit once, so a redelivered event adds no second job).
    pub fn outbox_message(&self, created_at: i64) -> OutboxMessage {
        OutboxMessage {
            id: format!("email-{}-{}-{}", self.email, self.provider, self.event_id),
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
            email: EmailKind::PaymentActionRequired,
            provider: Provider::Stripe,
            object: "in_1".into(),
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
}
