//! The email records on the billing table (DynamoDB), and their in-memory twin.
//!
//! | item        | PK                                   | SK         | notes                                   |
//! |-------------|--------------------------------------|------------|-----------------------------------------|
//! | email       | `EMAIL#{kind}#{provider}#{object}`   | `EMAIL`    | state, detail, token, lease_until, attempts; in the index under `EMAILS#{shard}` by `updated_at` |
//! | suppression | `SUPPRESS#{sha256(address)}`         | `SUPPRESS` | reason, at; never an address            |
//!
//! A claim is one conditional `UpdateItem`: it wins when no record exists or the last claim's
//! lease has ended, and a refused claim returns the record as it is
//! (`ReturnValuesOnConditionCheckFailure`), so claiming costs one request either way. The
//! outcome is written under the condition that the claim's token still holds.

use super::listing::{self, Listing, Order};
use super::sdk_error::Describe;
use crate::emails::kinds::EmailKind;
use crate::emails::records::{Claim, EmailKey, EmailLedger, EmailRecord, EmailState, Finished};
use crate::ports::{listing_sort_key, page_of, Cursor, Page, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::Mutex;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn unavailable(e: impl Describe) -> StoreError {
    StoreError::Unavailable(e.describe())
}

fn email_pk(key: &EmailKey) -> String {
    format!("EMAIL#{}", key.as_key())
}

fn index_sk(at: i64, key: &EmailKey) -> String {
    listing_sort_key(at, &key.as_key())
}

/// Reads an email item back; `Corrupt` names the attribute, never a value.
fn record_of(item: &Item) -> Result<EmailRecord, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!("email item without {name}"))),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map_err(|_| StoreError::Corrupt(format!("email item {name} not a number"))),
        _ => Ok(0),
    };
    let bad = |what: &str| StoreError::Corrupt(format!("email item with an unknown {what}"));
    Ok(EmailRecord {
        email: EmailKind::parse(&text("email")?).ok_or_else(|| bad("kind"))?,
        provider: text("provider")?,
        object: text("object")?,
        state: EmailState::parse(&text("state")?).ok_or_else(|| bad("state"))?,
        detail: text("detail").ok(),
        attempts: number("attempts")? as u32,
        updated_at: number("updated_at")?,
    })
}

/// What a refused claim found: a live lease, or a finished email.
fn refused_claim(old: Option<&Item>, now: i64) -> Result<Claim, StoreError> {
    let Some(old) = old else {
        // Backends that return nothing: retried as a held claim (the next try reads again).
        return Ok(Claim::Held { until: now });
    };
    let record = record_of(old)?;
    if record.state == EmailState::Claimed {
        let until = match old.get("lease_until") {
            Some(AttributeValue::N(v)) => v.parse().unwrap_or(now),
            _ => now,
        };
        return Ok(Claim::Held { until });
    }
    Ok(Claim::Done(record))
}

/// The email records and suppressions on the billing table.
pub struct DynamoEmailLedger {
    client: Client,
    table: String,
    /// Requests and capacity units spent (tests and benchmarks).
    #[cfg(feature = "testing")]
    pub meter: std::sync::Arc<super::capacity::CapacityMeter>,
}

impl DynamoEmailLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            #[cfg(feature = "testing")]
            meter: Default::default(),
        }
    }

    fn report() -> Option<ReturnConsumedCapacity> {
        cfg!(feature = "testing").then_some(ReturnConsumedCapacity::Total)
    }

    #[cfg(feature = "testing")]
    fn count_write(&self, c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        // One small item plus its GSI1 entry when the backend reports nothing.
        self.meter.record_write(c, || 2.0);
    }
    #[cfg(not(feature = "testing"))]
    fn count_write(&self, _c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {}

    #[cfg(feature = "testing")]
    fn count_read(&self, c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        self.meter.record_read(c);
    }
    #[cfg(not(feature = "testing"))]
    fn count_read(&self, _c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {}

    fn update(
        &self,
        key: &EmailKey,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(email_pk(key)))
            .key("SK", s("EMAIL"))
            .set_return_consumed_capacity(Self::report())
    }
}

#[async_trait]
impl EmailLedger for DynamoEmailLedger {
    async fn claim(
        &self,
        key: &EmailKey,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .update(key)
            .update_expression(
                "SET #kind = :kind, #email = :email, #provider = :provider, #object = :object, \
                 #state = :claimed, #token = :token, lease_until = :until, updated_at = :now, \
                 GSI1PK = :index, GSI1SK = :sort ADD attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(PK) OR (#state = :claimed AND lease_until <= :now)",
            )
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#email", "email")
            .expression_attribute_names("#provider", "provider")
            .expression_attribute_names("#object", "object")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":kind", s("email"))
            .expression_attribute_values(":email", s(key.email.as_str()))
            .expression_attribute_values(":provider", s(&key.provider))
            .expression_attribute_values(":object", s(&key.object))
            .expression_attribute_values(":claimed", s(EmailState::Claimed.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(now + lease_secs))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":index", s(Listing::Emails.key_of(&email_pk(key))))
            .expression_attribute_values(":sort", s(index_sk(now, key)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count_write(out.consumed_capacity());
                let attempts = match out.attributes().and_then(|a| a.get("attempts")) {
                    Some(AttributeValue::N(v)) => v.parse().unwrap_or(1),
                    _ => 1,
                };
                Ok(Claim::Won { attempts })
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                self.count_write(None);
                let old = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                    _ => None,
                };
                refused_claim(old, now)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn finish(
        &self,
        key: &EmailKey,
        token: &str,
        outcome: &Finished,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression(
                "SET #state = :state, detail = :detail, updated_at = :now, GSI1SK = :sort \
                 REMOVE #token, lease_until",
            )
            .condition_expression("#token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":state", s(outcome.state().as_str()))
            .expression_attribute_values(":detail", s(outcome.detail()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":sort", s(index_sk(now, key)))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count_write(out.consumed_capacity());
                Ok(true)
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                self.count_write(None);
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release(&self, key: &EmailKey, token: &str) -> Result<(), StoreError> {
        let result = self
            .update(key)
            .update_expression("SET lease_until = :zero REMOVE #token")
            .condition_expression("#token = :token AND #state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":claimed", s(EmailState::Claimed.as_str()))
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count_write(out.consumed_capacity());
                Ok(())
            }
            // Not ours any more: nothing to give back.
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn suppressed(&self, hash: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(format!("SUPPRESS#{hash}")))
            .key("SK", s("SUPPRESS"))
            .consistent_read(true)
            .projection_expression("PK")
            .set_return_consumed_capacity(Self::report())
            .send()
            .await
            .map_err(unavailable)?;
        self.count_read(out.consumed_capacity());
        Ok(out.item().is_some())
    }

    async fn suppress(&self, hash: &str, reason: &str, at: i64) -> Result<(), StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("SUPPRESS#{hash}")))
            .item("SK", s("SUPPRESS"))
            .item("kind", s("suppression"))
            .item("reason", s(reason))
            .item("at", n(at))
            .set_return_consumed_capacity(Self::report())
            .send()
            .await
            .map_err(unavailable)?;
        self.count_write(out.consumed_capacity());
        Ok(())
    }

    async fn records_page(
        &self,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<EmailRecord>, StoreError> {
        let (items, next) = listing::page(
            &self.client,
            &self.table,
            Listing::Emails,
            before,
            limit,
            Order::NewestFirst,
        )
        .await?;
        Ok(Page {
            items: items.iter().map(record_of).collect::<Result<_, _>>()?,
            next,
        })
    }
}

/// The in-memory twin (tests, examples): the same rules under one lock.
#[derive(Default)]
pub struct InMemoryEmailLedger {
    state: Mutex<MemoryEmails>,
}

#[derive(Default)]
struct MemoryEmails {
    /// By key: the record, its claim's token and lease end.
    emails: HashMap<String, (EmailRecord, Option<String>, i64)>,
    suppressed: HashMap<String, String>,
}

impl InMemoryEmailLedger {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryEmails>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("email ledger lock poisoned".into()))
    }
}

#[async_trait]
impl EmailLedger for InMemoryEmailLedger {
    async fn claim(
        &self,
        key: &EmailKey,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Claim, StoreError> {
        let mut state = self.lock()?;
        let entry = state.emails.get_mut(&key.as_key());
        let attempts = match entry {
            Some((record, _, until)) if record.state == EmailState::Claimed && *until > now => {
                return Ok(Claim::Held { until: *until })
            }
            Some((record, _, _)) if record.state != EmailState::Claimed => {
                return Ok(Claim::Done(record.clone()))
            }
            Some((record, _, _)) => record.attempts + 1,
            None => 1,
        };
        let record = EmailRecord {
            email: key.email,
            provider: key.provider.clone(),
            object: key.object.clone(),
            state: EmailState::Claimed,
            detail: None,
            attempts,
            updated_at: now,
        };
        state.emails.insert(
            key.as_key(),
            (record, Some(token.to_owned()), now + lease_secs),
        );
        Ok(Claim::Won { attempts })
    }

    async fn finish(
        &self,
        key: &EmailKey,
        token: &str,
        outcome: &Finished,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        match state.emails.get_mut(&key.as_key()) {
            Some((record, held, until)) if held.as_deref() == Some(token) => {
                record.state = outcome.state();
                record.detail = Some(outcome.detail().to_owned());
                record.updated_at = now;
                *held = None;
                *until = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &EmailKey, token: &str) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some((record, held, until)) = state.emails.get_mut(&key.as_key()) {
            if held.as_deref() == Some(token) && record.state == EmailState::Claimed {
                *held = None;
                *until = 0;
            }
        }
        Ok(())
    }

    async fn suppressed(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.suppressed.contains_key(hash))
    }

    async fn suppress(&self, hash: &str, reason: &str, _at: i64) -> Result<(), StoreError> {
        self.lock()?
            .suppressed
            .insert(hash.to_owned(), reason.to_owned());
        Ok(())
    }

    async fn records_page(
        &self,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<EmailRecord>, StoreError> {
        let keyed = self
            .lock()?
            .emails
            .iter()
            .map(|(key, (r, _, _))| (listing_sort_key(r.updated_at, key), r.clone()))
            .collect();
        Ok(page_of(keyed, before, limit, true))
    }
}
