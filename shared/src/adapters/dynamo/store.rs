//! The store itself: its client, table and retention, and the requests every part of it sends
//! (one consistent read, a batch read, a listing page) and the size check before any write.
//! Its [`BillingStore`](crate::ports::BillingStore) methods are in `billing_store.rs`, the
//! commit in `commit.rs`, table creation in `create_table.rs`, and what test builds add in
//! `testing.rs`.

#[cfg(feature = "testing")]
use super::super::capacity::CapacityMeter;
use super::super::listing::{self, Listing, Order};
use super::errors::{failed, unavailable};
use super::item::{get_s, item_size, key, stored, Item, Retention, MAX_ITEM_BYTES};
use super::keys::WARM_UP_KEY;
use crate::ports::{Cursor, StoreError, Stored, MAX_PAGE};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
#[cfg(feature = "testing")]
use std::sync::Arc;

pub struct DynamoBillingStore {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) retention: Retention,
    /// Requests and capacity units spent (tests and benchmarks).
    #[cfg(feature = "testing")]
    pub meter: Arc<CapacityMeter>,
    /// Off only to test DynamoDB's own refusal of an oversized item.
    #[cfg(feature = "testing")]
    pub(super) check_sizes: bool,
}

/// What DynamoDB is asked to report of the capacity a request consumed: the totals, for the
/// meter of tests and benchmarks; nothing in a production build.
pub(super) fn capacity_report() -> Option<ReturnConsumedCapacity> {
    cfg!(feature = "testing").then_some(ReturnConsumedCapacity::Total)
}

impl DynamoBillingStore {
    pub fn new(client: Client, table: impl Into<String>, retention: Retention) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
            #[cfg(feature = "testing")]
            meter: Arc::new(CapacityMeter::default()),
            #[cfg(feature = "testing")]
            check_sizes: true,
        }
    }

    /// Opens the DynamoDB connection during init (DNS, TCP, TLS, credentials) with one cheap
    /// read, so the first delivery does not pay for it. A failure is logged and ignored: the
    /// first delivery then connects itself, within the same bounds.
    pub async fn warm_up(&self) {
        let started = std::time::Instant::now();
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(WARM_UP_KEY.into()))
            .key("SK", AttributeValue::S(WARM_UP_KEY.into()))
            .consistent_read(false)
            .send()
            .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(_) => tracing::info!(elapsed_ms, "DynamoDB connection warmed"),
            Err(e) => tracing::warn!(
                elapsed_ms,
                error = %super::super::sdk_error::describe(&e),
                "DynamoDB warm-up failed; the first delivery will connect"
            ),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One strongly consistent `GetItem` of a versioned item (`doc` and `rev`): a customer
    /// aggregate, a charge.
    pub(super) async fn get_stored<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
        what: &str,
    ) -> Result<Option<Stored<T>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(|i| stored(i, what)).transpose()
    }

    /// One consistent `BatchGetItem` of `keys` (a delivery's single read), asking again only
    /// for the keys DynamoDB left unprocessed under load.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for _ in 0..5 {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .set_return_consumed_capacity(capacity_report())
                .send()
                .await
                .map_err(failed)?;
            self.count_read(out.consumed_capacity());
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Unavailable(
            "batch read left keys unprocessed".into(),
        ))
    }

    /// One page of a sharded listing, oldest first (`listing::page`).
    pub(super) async fn list(
        &self,
        listing: Listing,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        listing::page(
            &self.client,
            &self.table,
            listing,
            after,
            limit,
            Order::OldestFirst,
        )
        .await
    }

    /// Refuses, before sending, the first item DynamoDB would refuse for its size: the reason
    /// names the item's kind and size, never its content.
    pub(super) fn fits<'a>(
        &self,
        items: impl IntoIterator<Item = &'a Item>,
    ) -> Result<(), StoreError> {
        if !self.checks_sizes() {
            return Ok(());
        }
        for item in items {
            let size = item_size(item);
            if size > MAX_ITEM_BYTES {
                let kind = match get_s(item, "kind") {
                    Some("event") => "ledger",
                    Some(kind) => kind,
                    None => "an",
                };
                return Err(StoreError::Refused(format!(
                    "{kind} item is {size} bytes, over DynamoDB's item limit of {MAX_ITEM_BYTES}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::item::s;
    use super::*;
    use std::collections::HashMap;

    /// A store whose client has no credentials: a request it actually sent would fail as
    /// `Unavailable`, so a `Refused` shows the check ran before sending.
    pub(in super::super) fn unsendable_store() -> DynamoBillingStore {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        DynamoBillingStore::new(Client::from_conf(conf), "billing", Retention::default())
    }

    #[test]
    fn the_size_limit_is_dynamodb_s_400_kb() {
        let store = unsendable_store();
        let item = |size: usize| -> Item {
            HashMap::from([
                ("kind".to_owned(), s("user")),
                (
                    "doc".to_owned(),
                    s("x".repeat(size - "kind".len() - "user".len() - 3)),
                ),
            ])
        };
        assert_eq!(item_size(&item(MAX_ITEM_BYTES)), MAX_ITEM_BYTES);
        assert_eq!(store.fits([&item(MAX_ITEM_BYTES)]), Ok(()));
        assert_eq!(
            store.fits([&item(MAX_ITEM_BYTES + 1)]),
            Err(StoreError::Refused(
                "user item is 409601 bytes, over DynamoDB's item limit of 409600".into()
            ))
        );
    }
}
