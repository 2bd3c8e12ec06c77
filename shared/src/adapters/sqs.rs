//! Outbox messages to SQS. Every message carries its stable id as the `message_id` attribute
//! (and, on FIFO queues, as the deduplication id), so consumers can drop repeats.

use super::sdk_error::Describe;
use crate::ports::{OutboxMessage, Queue, QueueError};
use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;

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
        .map_err(|e| QueueError(e.describe()))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &OutboxMessage) -> Result<(), QueueError> {
        let body = serde_json::to_string(&message.body).map_err(|e| QueueError(e.to_string()))?;
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("message_id", attribute(&message.id)?)
            .message_attributes("kind", attribute(&message.kind)?);
        if self.url.ends_with(".fifo") {
            // One group per user (or customer) keeps each user's feed in order.
            let group = message
                .body
                .get("user_id")
                .or_else(|| message.body.get("customer"))
                .and_then(|v| v.as_str())
                .unwrap_or("billing");
            req = req
                .message_deduplication_id(&message.id)
                .message_group_id(group);
        }
        req.send().await.map_err(|e| QueueError(e.describe()))?;
        Ok(())
    }
}
