//! Products written before prices were items of their own: their `STATE` item holds every
//! price in its `doc` (docs/MODEL.md, "Products and prices"). Contract: such an item reads as the
//! pieces the per-price layout would hold after the same events (the record with its counts,
//! and the old prices); the first event of the product converts it in place (every price its
//! own item, then the record), idempotently and whatever runs beside it; the read route, which
//! may not write, pages the old prices from the doc until then.

use super::errors::failed;
use super::item::{item_size, key, price_item, product_item, stored, Item};
use super::keys::{product_pk, STATE_SK};
use super::store::{capacity_report, DynamoBillingStore};
use crate::domain::catalogue::{PriceRecord, ProductDoc, ProductRecord};
use crate::domain::ids::PriceId;
use crate::ports::{PricePage, StoreError, Stored};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Most items of one TransactWriteItems request, and most bytes (DynamoDB's limits).
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// A product's `STATE` item as read: its record and, for an item of the old layout, the prices
/// its doc holds (`None`: the per-price layout).
#[derive(Debug, Clone)]
pub(crate) struct ProductState {
    pub stored: Stored<ProductRecord>,
    pub old_prices: Option<BTreeMap<PriceId, PriceRecord>>,
}

/// Reads a product's `STATE` item in either layout.
pub(crate) fn product_state(item: &Item) -> Result<ProductState, StoreError> {
    let doc: Stored<ProductDoc> = stored(item, "product")?;
    let (value, old_prices) = doc.value.into_parts();
    Ok(ProductState {
        stored: Stored {
            value,
            rev: doc.rev,
        },
        old_prices,
    })
}

/// One page of the old prices, as [`crate::ports::BillingStore::product_prices`] pages the
/// price items: in id order (a `PriceId` orders as DynamoDB orders its key), after `after`.
pub(crate) fn old_price_page(
    prices: &BTreeMap<PriceId, PriceRecord>,
    after: Option<&PriceId>,
    limit: usize,
) -> PricePage {
    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut rest = prices.range((from, Bound::Unbounded));
    let page: Vec<(PriceId, PriceRecord)> = rest
        .by_ref()
        .take(limit)
        .map(|(id, p)| (id.clone(), p.clone()))
        .collect();
    let next = rest
        .next()
        .and_then(|_| page.last().map(|(id, _)| id.clone()));
    PricePage { prices: page, next }
}

impl DynamoBillingStore {
    /// Converts an old-layout product read at `state.stored.rev`: every old price becomes its
    /// own item, only where that item does not exist (an earlier, interrupted conversion wrote
    /// the same record; nothing else writes one while the old item stands), then the record
    /// replaces the old item, only at the revision read. One transaction when everything fits
    /// in one; else each price by itself first, so an interrupted conversion leaves the old
    /// item whole and the next reader finishes it. A lost race (another conversion, or an event
    /// after it) is no error: the caller reads again.
    pub(super) async fn convert_old_product(&self, state: ProductState) -> Result<(), StoreError> {
        let own = &state.stored.value;
        let rev = state.stored.rev;
        let mut prices = Vec::new();
        for (id, record) in state.old_prices.iter().flatten() {
            prices.push(price_item(own.provider, &own.product, id, record, None)?);
        }
        let record = product_item(own, Some(rev))?;
        self.fits(prices.iter().chain([&record]))?;
        let bytes: usize = prices.iter().chain([&record]).map(item_size).sum();
        if prices.len() < MAX_TRANSACTION_ITEMS && bytes < MAX_TRANSACTION_BYTES {
            let mut items = Vec::with_capacity(prices.len() + 1);
            for p in &prices {
                items.push(self.guarded_put(p.clone(), None)?);
            }
            items.push(self.guarded_put(record.clone(), Some(rev))?);
            if self.transact_conversion(items).await? {
                return Ok(());
            }
            // A condition failed: some price items exist already. Item by item below.
        }
        for p in prices {
            self.put_once(self.guarded_put(p, None)?).await?;
        }
        self.put_once(self.guarded_put(record, Some(rev))?).await?;
        Ok(())
    }

    /// The conversion's one transaction: `false` when it was cancelled (a condition failed, or
    /// it met another transaction), to be done item by item.
    async fn transact_conversion(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await;
        match out {
            Ok(out) => {
                self.count_write(out.consumed_capacity(), None);
                Ok(true)
            }
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    E::TransactionCanceledException(_) | E::TransactionInProgressException(_)
                ) =>
            {
                self.count_write(None, None);
                Ok(false)
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// One conditional put of the conversion; a failed condition means the item is there
    /// already (or the record moved on), which the conversion accepts.
    async fn put_once(&self, write: TransactWriteItem) -> Result<(), StoreError> {
        let put: &Put = write
            .put()
            .ok_or_else(|| StoreError::Unavailable("conversion: not a put".into()))?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item().clone()))
            .condition_expression(put.condition_expression().unwrap_or_default())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await;
        match out {
            Ok(out) => {
                self.count_write(out.consumed_capacity(), None);
                Ok(())
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                self.count_write(None, None);
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// A product's `STATE` item, in either layout (one consistent read).
    pub(super) async fn product_state_item(
        &self,
        provider: crate::domain::ids::Provider,
        product: &crate::domain::ids::ProductId,
    ) -> Result<Option<ProductState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(product_pk(provider, product), STATE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(product_state).transpose()
    }
}
