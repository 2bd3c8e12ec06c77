//! PayPal transmission ids accepted within the tolerance window ([`TransmissionGuard`]): on the
//! billing table, and an in-memory twin.
//!
//! | item | PK | SK | notes |
//! |------|----|----|-------|
//! | transmission | `PAYPAL_TX#{transmission_id}` | `PAYPAL_TX` | `body_sha256` (hex), TTL `expires_at` |
//!
//! A claim is one `PutItem` under `attribute_not_exists(PK) OR body_sha256 = :h OR
//! expires_at < :now`: it wins for a new id, for PayPal's redelivery of the same body, and
//! over an expired item that DynamoDB's TTL has not yet removed (TTL deletes lazily, within
//! days). A refused condition is another body under a live id. The function needs
//! `dynamodb:PutItem` on the table, nothing more.

use super::sdk_error::Describe;
use crate::ports::{StoreError, TransmissionClaim, TransmissionGuard};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The item's partition key for a transmission id.
pub fn transmission_pk(id: &str) -> String {
    format!("PAYPAL_TX#{id}")
}

const TRANSMISSION_SK: &str = "PAYPAL_TX";

/// The claims on the billing table.
pub struct DynamoTransmissionGuard {
    client: Client,
    table: String,
}

impl DynamoTransmissionGuard {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl TransmissionGuard for DynamoTransmissionGuard {
    async fn claim(
        &self,
        id: &str,
        body_sha256: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<TransmissionClaim, StoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: i64| AttributeValue::N(v.to_string());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(&transmission_pk(id)))
            .item("SK", s(TRANSMISSION_SK))
            .item("kind", s("paypal_transmission"))
            .item("body_sha256", s(body_sha256))
            .item("expires_at", n(expires_at))
            .condition_expression(
                "attribute_not_exists(PK) OR body_sha256 = :h OR expires_at < :now",
            )
            .expression_attribute_values(":h", s(body_sha256))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(TransmissionClaim::Accepted),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(TransmissionClaim::OtherBody)
            }
            // Whatever DynamoDB said, the delivery is answered 503 and PayPal retries it.
            Err(e) => Err(StoreError::Unavailable(e.describe())),
        }
    }
}

/// Most ids the in-memory twin keeps: expired ones are dropped first, then all (a process
/// that sees more than this within one tolerance window is not a test).
const MAX_IN_MEMORY: usize = 100_000;

/// Claims in this process only: the default of a verifier built without a table (tests, the
/// local run without DynamoDB).
#[derive(Default)]
pub struct InMemoryTransmissionGuard {
    claims: Mutex<HashMap<String, (String, i64)>>,
}

#[async_trait]
impl TransmissionGuard for InMemoryTransmissionGuard {
    async fn claim(
        &self,
        id: &str,
        body_sha256: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<TransmissionClaim, StoreError> {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((held, until)) = claims.get(id) {
            if held != body_sha256 && *until >= now {
                return Ok(TransmissionClaim::OtherBody);
            }
        }
        if claims.len() >= MAX_IN_MEMORY {
            claims.retain(|_, (_, until)| *until >= now);
            if claims.len() >= MAX_IN_MEMORY {
                claims.clear();
            }
        }
        claims.insert(id.to_owned(), (body_sha256.to_owned(), expires_at));
        Ok(TransmissionClaim::Accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_twin_accepts_one_body_per_live_id() {
        let guard = InMemoryTransmissionGuard::default();
        let claim = |id, h, now| guard.claim(id, h, now, 100);
        assert_eq!(claim("t1", "a", 0).await, Ok(TransmissionClaim::Accepted));
        assert_eq!(claim("t1", "b", 50).await, Ok(TransmissionClaim::OtherBody));
        assert_eq!(claim("t1", "a", 50).await, Ok(TransmissionClaim::Accepted));
        assert_eq!(claim("t2", "b", 50).await, Ok(TransmissionClaim::Accepted));
        // Past its expiry the id is free again.
        assert_eq!(claim("t1", "b", 101).await, Ok(TransmissionClaim::Accepted));
    }
}
