//! Bounces and complaints (issue 10, point 4): the configuration set's event destination
//! publishes SES events to SNS, SNS to the bounce queue, and the emails function records each
//! permanently bounced or complaining address as a suppression (by its hash: the list holds no
//! address). A suppressed address is not mailed again (the send records `skipped suppressed`).
//!
//! Transient bounces (a full mailbox, a greylisting server) suppress nothing: SES retried them
//! already, and the next email may well arrive. Every other event type (send, delivery, open…)
//! is read and dropped.

use super::records::{address_hash, EmailLedger};
use crate::domain::events::EmailAddress;
use crate::telemetry::{Counter, Metrics, EMAILS_DIMENSION};
use serde::Deserialize;

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct Recipient {
    #[serde(rename = "emailAddress")]
    email_address: String,
}

#[derive(Deserialize)]
struct Bounce {
    #[serde(rename = "bounceType", default)]
    bounce_type: String,
    #[serde(rename = "bouncedRecipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Complaint {
    #[serde(rename = "complainedRecipients", default)]
    recipients: Vec<Recipient>,
}

/// An SES event (configuration set: `eventType`) or notification (identity: `notificationType`).
#[derive(Deserialize)]
struct SesEvent {
    #[serde(rename = "eventType", alias = "notificationType")]
    kind: String,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

/// The addresses an SES event asks to suppress, with why.
fn suppressions(event: SesEvent) -> Vec<(String, &'static str)> {
    match (event.kind.as_str(), event.bounce, event.complaint) {
        ("Bounce", Some(b), _) if b.bounce_type == "Permanent" => b
            .recipients
            .into_iter()
            .map(|r| (r.email_address, "bounce"))
            .collect(),
        ("Complaint", _, Some(c)) => c
            .recipients
            .into_iter()
            .map(|r| (r.email_address, "complaint"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads one queue message (an SNS envelope, or the SES event itself under raw message
/// delivery) and records its suppressions; returns how many. The error never quotes the body.
pub async fn record_notification(
    ledger: &dyn EmailLedger,
    metrics: &Metrics,
    body: &str,
    now: i64,
) -> Result<usize, String> {
    let inner = match serde_json::from_str::<SnsEnvelope>(body) {
        Ok(envelope) if envelope.kind == "Notification" => envelope.message,
        Ok(envelope) => {
            // A subscription confirmation or the like: nothing to record.
            tracing::info!(sns_type = %envelope.kind, "SNS message without an SES event");
            return Ok(0);
        }
        Err(_) => body.to_owned(),
    };
    let event: SesEvent = serde_json::from_str(&inner).map_err(|e| {
        format!(
            "neither an email job nor an SES event ({:?} error)",
            e.classify()
        )
    })?;
    let kind = event.kind.clone();
    let mut recorded = 0;
    for (address, reason) in suppressions(event) {
        let hash = address_hash(&EmailAddress::new(address));
        ledger
            .suppress(&hash, reason, now)
            .await
            .map_err(|e| e.to_string())?;
        metrics.incr(Counter::EmailSuppressions, EMAILS_DIMENSION);
        recorded += 1;
    }
    tracing::info!(ses_event = %kind, suppressed = recorded, "SES event recorded");
    Ok(recorded)
}
