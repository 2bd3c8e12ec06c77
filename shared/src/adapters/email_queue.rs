//! The email queue's `ChangeMessageVisibility` (issue 17, point 6): returns a waiting email
//! job's message at the time the consumer names, so a job that waits (sending paused, a
//! decision not settled, a lease held) spends one receive per wait, not one per visibility
//! timeout. The queue is the record's own (`eventSourceARN`), or a fixed URL (the local run).

use crate::emails::send::{SqsRecord, Visibility};
use async_trait::async_trait;
use aws_sdk_sqs::Client;

pub struct SqsVisibility {
    client: Client,
    /// The queue of every record (the local consumer); `None`: each record's source queue.
    queue_url: Option<String>,
}

impl SqsVisibility {
    /// For Lambda's records: each names its queue by ARN.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            queue_url: None,
        }
    }

    /// For records of one known queue.
    pub fn for_queue(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: Some(queue_url.into()),
        }
    }
}

/// The queue URL of an SQS queue ARN (`arn:{partition}:sqs:{region}:{account}:{name}`), or
/// `None` if it is not one.
pub fn queue_url_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let domain = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    (ok(region) && ok(account) && ok(name))
        .then(|| format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

#[async_trait]
impl Visibility for SqsVisibility {
    async fn return_after(&self, record: &SqsRecord, secs: i64) -> Result<(), String> {
        let url = match &self.queue_url {
            Some(url) => url.clone(),
            None => queue_url_of_arn(&record.event_source_arn)
                .ok_or_else(|| "the record names no SQS queue".to_owned())?,
        };
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&record.receipt_handle)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::adapters::sdk_error::describe(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_arn_gives_its_url_and_anything_else_none() {
        assert_eq!(
            queue_url_of_arn("arn:aws:sqs:eu-west-1:123456789012:billing-EmailQueue-AbC"),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/billing-EmailQueue-AbC".into())
        );
        assert_eq!(
            queue_url_of_arn("arn:aws-cn:sqs:cn-north-1:123456789012:q"),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q".into())
        );
        for bad in [
            "",
            "arn:aws:sns:eu-west-1:1:q",
            "arn:aws:sqs:eu-west-1:1",
            "arn:aws:sqs:eu-west-1:1:q:extra",
            "arn:aws:sqs:eu-west-1:1:q/../x",
        ] {
            assert_eq!(queue_url_of_arn(bad), None, "{bad}");
        }
    }
}
