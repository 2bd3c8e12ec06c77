//! The store behind the [`BillingStore`] port: an event's one consistent read, the read
//! routes' queries, the commit (`commit.rs`), the parked and outbox listings.

use super::errors::failed;
use super::item::{
    corrupt, doc, get_n, get_s, key, ledger_from_item, n, outbox_from_item, outbox_id, s, stored,
    Item,
};
use super::keys::{
    audit_pk, charge_pk, customer_pk, intent_sk, invoice_pk, invoices_gsi_pk, ledger_pk, outbox_pk,
    price_sk, product_pk, purchase_sk, time_sk, user_pk, CHARGE_SK, GSI1, INVOICE_SK, LEDGER_SK,
    OUTBOX_SK, PRICE_PREFIX, PRODUCT_AUDIT_PREFIX, PURCHASE_PREFIX, STATE_SK, USER_SK,
};
use super::old_products::{self, product_state, ProductState};
use super::store::{capacity_report, DynamoBillingStore};
use crate::adapters::listing::Listing;
use crate::domain::catalogue::ProductRecord;
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::Purchase;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId};
use crate::domain::invoice::Invoice;
use crate::ports::{
    AuditRecord, Beside, BillingStore, CatalogueAudit, Commit, Cursor, LedgerRecord, Loaded,
    LoadedProduct, Page, PendingOutbox, PricePage, PurchaseKey, SetAsideOutbox, StoreError, Stored,
    UnreadableOutbox, UserAccessDoc,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

/// The keys of an event's one consistent read: its ledger record, its customer, a user.
fn load_keys(
    provider: Provider,
    event: &EventId,
    customer: Option<&CustomerId>,
    user: Option<&UserId>,
) -> Vec<Item> {
    let mut keys = vec![key(ledger_pk(provider, event), LEDGER_SK)];
    if let Some(c) = customer {
        keys.push(key(customer_pk(provider, c), STATE_SK));
    }
    if let Some(u) = user {
        keys.push(key(user_pk(u), USER_SK));
    }
    keys
}

impl DynamoBillingStore {
    /// One consistent `BatchGetItem` of `keys`, each item read into its place in [`Loaded`].
    async fn batch_load(&self, keys: Vec<Item>) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        for item in self.batch_get(keys).await? {
            let pk = get_s(&item, "PK").unwrap_or_default();
            if pk.starts_with("EVT#") {
                loaded.ledger = Some(ledger_from_item(&item)?);
            } else if pk.starts_with("CUS#") {
                loaded.customer = Some(stored(&item, "customer")?);
            } else if pk.starts_with("USER#") {
                loaded.user = Some(stored(&item, "user")?);
            } else if pk.starts_with("INVOICE#") {
                loaded.invoice = Some(stored(&item, "invoice")?);
            } else if pk.starts_with("CHARGE#") {
                loaded.charge = Some(stored(&item, "charge")?);
            }
        }
        Ok(loaded)
    }

    /// One consistent read of a catalogue event's items; an old-layout product item comes back
    /// as it is, to be converted.
    async fn load_product_once(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<(LoadedProduct, Option<ProductState>), StoreError> {
        let mut keys = vec![
            key(ledger_pk(provider, event), LEDGER_SK),
            key(product_pk(provider, product), STATE_SK),
        ];
        if let Some(p) = price {
            keys.push(key(product_pk(provider, product), &price_sk(p)));
        }
        let mut loaded = LoadedProduct::default();
        let mut old = None;
        for item in self.batch_get(keys).await? {
            let pk = get_s(&item, "PK").unwrap_or_default();
            let sk = get_s(&item, "SK").unwrap_or_default();
            if pk.starts_with("EVT#") {
                loaded.ledger = Some(ledger_from_item(&item)?);
            } else if sk.starts_with(PRICE_PREFIX) {
                loaded.price = Some(stored(&item, "price")?);
            } else if pk.starts_with("PRODUCT#") {
                let state = product_state(&item)?;
                if state.old_prices.is_some() {
                    old = Some(state);
                } else {
                    loaded.product = Some(state.stored);
                }
            }
        }
        Ok((loaded, old))
    }
}

#[async_trait]
impl BillingStore for DynamoBillingStore {
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError> {
        let mut keys = load_keys(provider, event, customer, user);
        match beside {
            Beside::Nothing => {}
            Beside::Invoice(invoice) => keys.push(key(invoice_pk(provider, invoice), INVOICE_SK)),
            Beside::Charge(charge) => keys.push(key(charge_pk(provider, charge), CHARGE_SK)),
        }
        self.batch_load(keys).await
    }

    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError> {
        self.get_stored(customer_pk(provider, customer), STATE_SK, "customer")
            .await
    }

    async fn purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        keys: &[PurchaseKey],
    ) -> Result<Vec<Stored<Purchase>>, StoreError> {
        let pk = customer_pk(provider, customer);
        let mut sessions: Vec<String> = Vec::new();
        let mut intents: Vec<Item> = Vec::new();
        for k in keys {
            match k {
                PurchaseKey::Session(session) => sessions.push(session.clone()),
                PurchaseKey::Intent(pi) => {
                    intents.push(key(pk.clone(), &intent_sk(pi)));
                }
            }
        }
        if !intents.is_empty() {
            // A second read only for a charge's events (refunds, disputes): the pointers first.
            for pointer in self.batch_get(intents).await? {
                let session =
                    get_s(&pointer, "session").ok_or_else(|| corrupt("purchase intent"))?;
                sessions.push(session.to_owned());
            }
        }
        sessions.sort();
        sessions.dedup();
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let keys = sessions
            .iter()
            .map(|session| key(pk.clone(), &purchase_sk(session)))
            .collect();
        let mut found = self
            .batch_get(keys)
            .await?
            .iter()
            .map(|item| stored(item, "purchase"))
            .collect::<Result<Vec<Stored<Purchase>>, _>>()?;
        found.sort_by(|a, b| a.value.session.cmp(&b.value.session));
        Ok(found)
    }

    async fn all_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Vec<Purchase>, StoreError> {
        let pk = customer_pk(provider, customer);
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :purchase)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":purchase", s(PURCHASE_PREFIX))
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(capacity_report())
                .send()
                .await
                .map_err(failed)?;
            self.count_read(out.consumed_capacity());
            for item in out.items() {
                all.push(doc(item, "purchase")?);
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(all),
            }
        }
    }

    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError> {
        self.get_stored(charge_pk(provider, charge), CHARGE_SK, "charge")
            .await
    }

    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
        older_than: Option<(i64, &InvoiceId)>,
    ) -> Result<Vec<Invoice>, StoreError> {
        // A GSI is read eventually consistent: an invoice committed a moment ago may be missing.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", s(invoices_gsi_pk(provider, customer)));
        // The index's sort key is the position itself (see `invoice_item`).
        let query = match older_than {
            None => query.key_condition_expression("GSI1PK = :pk"),
            Some((at, id)) => query
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":before", s(time_sk(at.max(0), id))),
        };
        let out = query
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        out.items().iter().map(|i| doc(i, "invoice")).collect()
    }

    /// An old-layout product is converted first (`old_products.rs`), then read again: a few
    /// rounds at most, as only a concurrent conversion or event can make one lose.
    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError> {
        for _ in 0..3 {
            match self
                .load_product_once(provider, event, product, price)
                .await?
            {
                (loaded, None) => return Ok(loaded),
                (_, Some(old)) => self.convert_old_product(old).await?,
            }
        }
        Err(StoreError::Contention(
            "product item still in the old layout after converting it".into(),
        ))
    }

    async fn product(
        &self,
        provider: Provider,
        product: &ProductId,
    ) -> Result<Option<Stored<ProductRecord>>, StoreError> {
        Ok(self
            .product_state_item(provider, product)
            .await?
            .map(|s| s.stored))
    }

    async fn product_prices(
        &self,
        provider: Provider,
        product: &ProductId,
        after: Option<&PriceId>,
        limit: usize,
    ) -> Result<PricePage, StoreError> {
        let limit = limit.clamp(1, crate::ports::MAX_PRICE_PAGE);
        // The read route may not write: until an event converts an old-layout product, its
        // prices are paged from its doc (a price item of an interrupted conversion holds the
        // same record).
        let state = self.product_state_item(provider, product).await?;
        if let Some(old) = state.and_then(|s| s.old_prices) {
            return Ok(old_products::old_price_page(&old, after, limit));
        }
        let pk = product_pk(provider, product);
        // One more than the page, so that `next` is set only when a price follows.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :price)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":price", s(PRICE_PREFIX))
            .set_exclusive_start_key(after.map(|a| key(pk, &price_sk(a))))
            .limit(limit as i32 + 1)
            .consistent_read(true)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        let mut prices = Vec::with_capacity(limit);
        for item in out.items().iter().take(limit) {
            let id = get_s(item, "SK")
                .and_then(|sk| sk.strip_prefix(PRICE_PREFIX))
                .ok_or_else(|| corrupt("price SK"))?;
            prices.push((PriceId::new(id), doc(item, "price")?));
        }
        // A page cut short by DynamoDB's 1 MB per query also continues after its last price.
        let more = out.items().len() > limit || out.last_evaluated_key().is_some();
        let next = more
            .then(|| prices.last().map(|(id, _)| id.clone()))
            .flatten();
        Ok(PricePage { prices, next })
    }

    async fn product_audit(
        &self,
        provider: Provider,
        product: &ProductId,
        limit: usize,
    ) -> Result<Vec<CatalogueAudit>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :audit)")
            .expression_attribute_values(":pk", s(product_pk(provider, product)))
            .expression_attribute_values(":audit", s(PRODUCT_AUDIT_PREFIX))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(failed)?;
        out.items()
            .iter()
            .map(|i| doc(i, "product audit"))
            .collect()
    }

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), USER_SK)))
            .consistent_read(true)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        out.item().map(|i| stored(i, "user")).transpose()
    }

    async fn commit(&self, c: &Commit) -> Result<(), StoreError> {
        self.write_commit(c).await
    }

    async fn ledger(
        &self,
        provider: Provider,
        event: &EventId,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(ledger_pk(provider, event), LEDGER_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(ledger_from_item).transpose()
    }

    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError> {
        let (items, next) = self.list(Listing::Parked, after, limit).await?;
        Ok(Page {
            items: items
                .iter()
                .map(ledger_from_item)
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn audit(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(audit_pk(provider, customer)))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(failed)?;
        out.items().iter().map(|i| doc(i, "audit")).collect()
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError> {
        // The oldest `limit` over every shard: delivered items are deleted, so the next pass
        // takes the next ones.
        let (items, _) = self.list(Listing::PendingOutbox, None, limit).await?;
        Ok(items.iter().map(outbox_from_item).collect())
    }

    async fn delete_outbox(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(outbox_pk(id), OUTBOX_SK)))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn set_aside_outbox(&self, item: &UnreadableOutbox, at: i64) -> Result<(), StoreError> {
        // Re-tagged in place: the pending index no longer lists it, the raw item stays.
        let pk = outbox_pk(&item.id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), OUTBOX_SK)))
            .update_expression(
                "SET GSI1PK = :pk, GSI1SK = :sk, unreadable_reason = :why, set_aside_at = :at",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":pk", s(Listing::SetAside.key_of(&pk)))
            .expression_attribute_values(":sk", s(time_sk(at, &item.id)))
            .expression_attribute_values(":why", s(item.reason.clone()))
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn requeue_outbox(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        // Re-tagged in place, the inverse of `set_aside_outbox`: only an item set aside, so a
        // second requeue (or one of an item deleted meanwhile) changes nothing. Pending again
        // under its own shard, as the commit wrote it.
        let pk = outbox_pk(id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), OUTBOX_SK)))
            .update_expression(
                "SET GSI1PK = :pk, GSI1SK = :sk REMOVE unreadable_reason, set_aside_at",
            )
            .condition_expression("attribute_exists(set_aside_at)")
            .expression_attribute_values(":pk", s(Listing::PendingOutbox.key_of(&pk)))
            .expression_attribute_values(":sk", s(time_sk(at, id)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError> {
        let (items, next) = self.list(Listing::SetAside, after, limit).await?;
        let items = items
            .iter()
            .map(|i| SetAsideOutbox {
                id: outbox_id(i).to_owned(),
                reason: get_s(i, "unreadable_reason").unwrap_or_default().to_owned(),
                set_aside_at: get_n(i, "set_aside_at").unwrap_or(0),
            })
            .collect();
        Ok(Page { items, next })
    }
}
