//! Outbox messages to SQS. Every message carries its stable id as the `message_id` attribute
//! (and, on FIFO queues, as the deduplication id), so consumers can drop repeats.
//!
//! A failed send is either transient (`QueueError::Unavailable`: sent again later) or a refusal
//! of this one message that SQS would repeat (`QueueError::Refused`, by SQS's error code), which
//! the relay sets aside. On a FIFO queue the group and deduplication ids are always ones SQS
//! accepts, whatever the user id ([`sqs_id`]).

use super::sdk_error::Describe;
use crate::ports::{OutboxMessage, Queue, QueueError};
use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use std::borrow::Cow;

pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Unavailable(e.describe()))
}

/// SQS's bound on a `MessageGroupId` and a `MessageDeduplicationId`: 1 to 128 characters, each
/// an ASCII letter, digit or punctuation mark (SendMessage's reference).
const SQS_ID_MAX: usize = 128;

fn is_sqs_id(s: &str) -> bool {
    (1..=SQS_ID_MAX).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation())
}

/// `raw` as a FIFO group (or deduplication) id SQS accepts: `raw` itself when it is one, else
/// `h-` and its SHA-256 in hex (66 characters). Deterministic, so one user's messages keep one
/// group. A user id that happens to spell another's hash form shares its group: that only
/// orders their messages together.
pub fn sqs_id(raw: &str) -> Cow<'_, str> {
    if is_sqs_id(raw) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(format!("h-{}", crate::digest::sha256_hex(raw.as_bytes())))
    }
}

/// The FIFO group of a message: its user (or customer), so each user's feed keeps its order.
pub fn message_group_id(message: &OutboxMessage) -> Cow<'_, str> {
    let owner = ["user_id", "customer"]
        .iter()
        .find_map(|k| message.body.get(k).and_then(|v| v.as_str()));
    sqs_id(owner.unwrap_or("billing"))
}

/// SQS's error codes that refuse the message itself, so sending it again can never succeed:
/// characters outside the allowed set (`InvalidMessageContents`); a body over the queue's size
/// limit, or an invalid group or deduplication id (`InvalidParameterValue`); a required
/// parameter absent (`MissingParameter`). Every other code (throttling, KMS, a missing queue,
/// access denied) would fail every message alike and clears once fixed: transient.
const REFUSALS: [&str; 3] = [
    "InvalidMessageContents",
    "InvalidParameterValue",
    "MissingParameter",
];

/// The code without a namespace: the JSON protocol may name it `com.amazonaws.sqs#Code`, the
/// query protocol `AWS.SimpleQueueService.Code`.
fn bare_code(code: &str) -> &str {
    code.rsplit(['#', '.']).next().unwrap_or(code)
}

/// Which part SQS refused, in our words. SQS's own text is read but never kept: it can quote
/// the refused value (a group id is a user id).
fn refused_part(code: &str, message: &str) -> Option<&'static str> {
    if code == "InvalidMessageContents" {
        Some("a character outside the allowed set")
    } else if message.contains("shorter than") {
        Some("message too large")
    } else if message.contains("MessageGroupId") {
        Some("message group id")
    } else if message.contains("MessageDeduplicationId") {
        Some("message deduplication id")
    } else {
        None
    }
}

/// A failed SendMessage as the relay acts on it: refused for good, or worth another try.
pub fn send_error<R>(e: &SdkError<SendMessageError, R>) -> QueueError
where
    R: std::fmt::Debug,
{
    let refused = e.as_service_error().and_then(|service| {
        let code = bare_code(service.code()?);
        let code = REFUSALS.into_iter().find(|r| *r == code)?;
        Some(QueueError::Refused {
            code: code.to_owned(),
            what: refused_part(code, service.message().unwrap_or_default()),
        })
    });
    refused.unwrap_or_else(|| QueueError::Unavailable(e.describe()))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &OutboxMessage) -> Result<(), QueueError> {
        let body = serde_json::to_string(&message.body)
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("message_id", attribute(&message.id)?)
            .message_attributes("kind", attribute(&message.kind)?);
        if self.url.ends_with(".fifo") {
            // One group per user (or customer) keeps each user's feed in order.
            req = req
                .message_deduplication_id(sqs_id(&message.id))
                .message_group_id(message_group_id(message));
        }
        req.send().await.map_err(|e| send_error(&e))?;
        Ok(())
    }
}

/// One record of the event Lambda hands a function for an SQS queue (`queue_arn`): `body` as
/// the message, `message_id` as its id and receipt handle, sent and first received at `at` (Unix
/// seconds). For the sample events (`events/`) and the tests, never for sending.
pub fn lambda_record(message_id: &str, body: &str, at: i64, queue_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "messageId": message_id,
        "receiptHandle": message_id,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": (at * 1000).to_string(),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": (at * 1000).to_string()
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::config::http::HttpResponse;
    use aws_sdk_sqs::error::ErrorMetadata;
    use serde_json::json;

    fn for_user(user: &str) -> OutboxMessage {
        OutboxMessage {
            id: "chg_1".into(),
            kind: "access.changed".into(),
            body: json!({"user_id": user}),
            created_at: 1,
        }
    }

    #[test]
    fn a_valid_user_id_is_its_own_group() {
        for user in ["user_42", "a", "U-1:{x}~!", &"z".repeat(128)] {
            assert_eq!(message_group_id(&for_user(user)), user);
        }
        let customer = OutboxMessage {
            body: json!({"customer": "cus_1", "user_id": null}),
            ..for_user("x")
        };
        assert_eq!(message_group_id(&customer), "cus_1");
        let nobody = OutboxMessage {
            body: json!({}),
            ..for_user("x")
        };
        assert_eq!(message_group_id(&nobody), "billing");
    }

    /// Raw user ids SQS would refuse as a group id: each gets a valid one, the same every time,
    /// and no two of them share it.
    #[test]
    fn a_hostile_user_id_gets_a_valid_stable_group() {
        let hostile = [
            "u".repeat(129),
            "x".repeat(200),
            "ユーザー42".to_owned(),
            "user 42".to_owned(),
            "user\t42\n".to_owned(),
            "émile@example.com".to_owned(),
            String::new(),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for user in &hostile {
            let group = message_group_id(&for_user(user)).into_owned();
            assert!(is_sqs_id(&group), "{user:?} -> {group:?}");
            assert_eq!(message_group_id(&for_user(user)), group, "deterministic");
            assert!(seen.insert(group), "{user:?} shares a group");
        }
        assert!(!is_sqs_id("user 42") && !is_sqs_id(&"x".repeat(129)) && !is_sqs_id(""));
    }

    fn failed(code: &str, message: &str) -> SdkError<SendMessageError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let response = HttpResponse::new(400.try_into().expect("status"), "".into());
        SdkError::service_error(SendMessageError::generic(meta), response)
    }

    #[test]
    fn refusals_of_the_message_are_permanent_and_say_which_part_without_quoting_it() {
        let cases = [
            (
                "InvalidParameterValue",
                "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
                "refused by SQS: InvalidParameterValue (message too large)",
            ),
            (
                "InvalidParameterValue",
                "Value user 42 for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.",
                "refused by SQS: InvalidParameterValue (message group id)",
            ),
            (
                "com.amazonaws.sqs#InvalidMessageContents",
                "Invalid binary character '#x1' was found in the message body",
                "refused by SQS: InvalidMessageContents (a character outside the allowed set)",
            ),
            (
                "MissingParameter",
                "The request must contain the parameter MessageGroupId.",
                "refused by SQS: MissingParameter (message group id)",
            ),
        ];
        for (code, message, reason) in cases {
            let e = send_error(&failed(code, message));
            assert!(e.is_permanent(), "{code}: {e:?}");
            assert_eq!(e.to_string(), reason);
            assert!(!e.to_string().contains("user 42"));
        }
    }

    #[test]
    fn other_failures_are_transient() {
        for code in [
            "RequestThrottled",
            "KmsThrottled",
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "AccessDenied",
            "InternalError",
        ] {
            let e = send_error(&failed(code, "x"));
            assert!(!e.is_permanent(), "{code}");
            assert!(
                e.to_string().starts_with("queue unavailable: service "),
                "{e}"
            );
        }
        let timeout: SdkError<SendMessageError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(
            matches!(send_error(&timeout), QueueError::Unavailable(t) if t.starts_with("timeout"))
        );
    }
}
