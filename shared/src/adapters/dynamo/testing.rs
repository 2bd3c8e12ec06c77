//! What test and benchmark builds (feature `testing`) add to the store: a capacity meter on
//! every request, seeders that write straight into the table, and a switch for the size
//! check. A production build gets the same methods as no-ops, so the store's code has no
//! `cfg` of its own.

#[cfg(feature = "testing")]
use super::super::capacity::billed_write_units;
#[cfg(feature = "testing")]
use super::errors::{failed, unavailable};
#[cfg(feature = "testing")]
use super::item::{key, ledger_item, n, price_item, product_item, purchase_items, s, Item};
#[cfg(feature = "testing")]
use super::keys::{product_pk, STATE_SK};
use super::store::DynamoBillingStore;
#[cfg(feature = "testing")]
use crate::domain::ids::{CustomerId, ProductId, Provider};
use crate::ports::Commit;
#[cfg(feature = "testing")]
use crate::ports::{PurchaseWrite, StoreError};
use aws_sdk_dynamodb::types::ConsumedCapacity;
#[cfg(feature = "testing")]
use aws_sdk_dynamodb::types::Put;

/// Test and benchmark builds count every request and the capacity it consumed, and may switch
/// the size check off.
#[cfg(feature = "testing")]
impl DynamoBillingStore {
    /// Sends items over 400 KB to DynamoDB, so a test can see its own refusal.
    pub fn without_size_check(mut self) -> Self {
        self.check_sizes = false;
        self
    }

    pub(super) fn checks_sizes(&self) -> bool {
        self.check_sizes
    }

    /// Writes a whole product (its own record and every price, at revision 1) straight into
    /// the table, 25 items a request: tests and benchmarks of large catalogues, which would
    /// otherwise apply each price through the pipeline.
    pub async fn seed_product(
        &self,
        entry: &crate::domain::catalogue::CatalogueEntry,
    ) -> Result<(), StoreError> {
        let own = &entry.product;
        let mut items = vec![product_item(own, None)?];
        for (id, record) in &entry.prices {
            items.push(price_item(own.provider, &own.product, id, record, None)?);
        }
        self.batch_put(&items).await
    }

    /// Writes a customer's purchase items (and their intent pointers) straight into the table,
    /// 25 items a request: tests and benchmarks of long histories, which through commits would
    /// cost moto a copy of the table per transaction.
    pub async fn seed_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        purchases: &[PurchaseWrite],
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for w in purchases {
            items.extend(
                purchase_items(provider, customer, w)?
                    .into_iter()
                    .map(|(i, _)| i),
            );
        }
        self.batch_put(&items).await
    }

    /// Unconditional puts, 25 items a `BatchWriteItem` (the seeders above).
    async fn batch_put(&self, items: &[Item]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let requests = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(unavailable)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(failed)?;
            if out.unprocessed_items().is_some_and(|u| !u.is_empty()) {
                return Err(StoreError::Unavailable("seed: unprocessed items".into()));
            }
        }
        Ok(())
    }

    /// Writes a product's `STATE` item as the code before per-price items wrote it (`doc`:
    /// that layout's JSON, every price inside), at revision `rev`: tests of the conversion.
    pub async fn seed_old_product(
        &self,
        provider: Provider,
        product: &ProductId,
        doc: &serde_json::Value,
        rev: u64,
    ) -> Result<(), StoreError> {
        let mut item = key(product_pk(provider, product), STATE_SK);
        item.insert("kind".into(), s("product"));
        item.insert("doc".into(), s(doc.to_string()));
        item.insert("rev".into(), n(rev));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    pub(super) fn count_read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.meter.record_read(consumed);
    }

    /// `written`: the commit a write wrote; its items give the units DynamoDB bills when the
    /// backend reports none (moto).
    pub(super) fn count_write<'a>(
        &self,
        consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        written: Option<&Commit>,
    ) {
        self.meter.record_write(consumed, || match written {
            None => 0.0,
            Some(c) if c.is_ledger_only() => {
                billed_write_units([&ledger_item(&c.ledger, &self.retention)], false)
            }
            Some(c) => {
                let items = self.commit_items(c).unwrap_or_default();
                billed_write_units(items.iter().filter_map(|t| t.put().map(Put::item)), true)
            }
        });
    }
}

/// A production build checks every size and counts nothing.
#[cfg(not(feature = "testing"))]
impl DynamoBillingStore {
    pub(super) fn checks_sizes(&self) -> bool {
        true
    }

    pub(super) fn count_read<'a>(&self, _consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    }

    pub(super) fn count_write<'a>(
        &self,
        _consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        _written: Option<&Commit>,
    ) {
    }
}
