//! A store that reads the real one and writes nothing: `--dry-run` of the catch-up jobs.
//!
//! Every read is delegated; a commit is counted (what it would have written) and answers
//! success, so the pipeline decides each body exactly as it would for real and its outcome
//! says what would change. Commits are not visible to later reads: two bodies of one customer
//! are each judged against the stored state, which is what a dry run can promise.

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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the commits a dry run swallowed would have written.
#[derive(Debug, Default)]
pub struct WouldWrite {
    /// Commits (one per recorded event).
    pub commits: AtomicU64,
    /// Customer aggregates changed.
    pub customers: AtomicU64,
    /// User access documents changed.
    pub users: AtomicU64,
    /// Feed messages (`access.changed`, …) that would have been announced.
    pub outbox: AtomicU64,
    /// Products or prices changed.
    pub catalogue: AtomicU64,
}

impl WouldWrite {
    /// `commits N, customers N, users N, feed messages N, catalogue N`.
    pub fn describe(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "would write: {} ledger records, {} customers, {} user access documents, {} feed messages, {} catalogue items",
            get(&self.commits),
            get(&self.customers),
            get(&self.users),
            get(&self.outbox),
            get(&self.catalogue)
        )
    }
}

/// Reads `inner`, writes nothing.
pub struct DryRunStore {
    inner: Arc<dyn BillingStore>,
    pub would: WouldWrite,
}

impl DryRunStore {
    pub fn new(inner: Arc<dyn BillingStore>) -> Self {
        Self {
            inner,
            would: WouldWrite::default(),
        }
    }
}

fn refused() -> StoreError {
    StoreError::Refused("a dry run writes nothing".into())
}

#[async_trait]
impl BillingStore for DryRunStore {
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError> {
        self.inner
            .load(provider, event, customer, user, beside)
            .await
    }

    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError> {
        self.inner.customer(provider, customer).await
    }

    async fn purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        keys: &[PurchaseKey],
    ) -> Result<Vec<Stored<Purchase>>, StoreError> {
        self.inner.purchases(provider, customer, keys).await
    }

    async fn all_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Vec<Purchase>, StoreError> {
        self.inner.all_purchases(provider, customer).await
    }

    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError> {
        self.inner.charge(provider, charge).await
    }

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        self.inner.load_user(user).await
    }

    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError> {
        self.inner
            .load_product(provider, event, product, price)
            .await
    }

    async fn product(
        &self,
        provider: Provider,
        product: &ProductId,
    ) -> Result<Option<Stored<ProductRecord>>, StoreError> {
        self.inner.product(provider, product).await
    }

    async fn product_prices(
        &self,
        provider: Provider,
        product: &ProductId,
        after: Option<&PriceId>,
        limit: usize,
    ) -> Result<PricePage, StoreError> {
        self.inner
            .product_prices(provider, product, after, limit)
            .await
    }

    async fn product_audit(
        &self,
        provider: Provider,
        product: &ProductId,
        limit: usize,
    ) -> Result<Vec<CatalogueAudit>, StoreError> {
        self.inner.product_audit(provider, product, limit).await
    }

    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
        older_than: Option<(i64, &InvoiceId)>,
    ) -> Result<Vec<Invoice>, StoreError> {
        self.inner
            .invoices(provider, customer, limit, older_than)
            .await
    }

    async fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let w = &self.would;
        w.commits.fetch_add(1, Ordering::Relaxed);
        w.customers
            .fetch_add(u64::from(commit.customer.is_some()), Ordering::Relaxed);
        w.users
            .fetch_add(commit.users.len() as u64, Ordering::Relaxed);
        w.outbox
            .fetch_add(commit.outbox.len() as u64, Ordering::Relaxed);
        w.catalogue
            .fetch_add(u64::from(commit.product.is_some()), Ordering::Relaxed);
        Ok(())
    }

    async fn ledger(
        &self,
        provider: Provider,
        event: &EventId,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        self.inner.ledger(provider, event).await
    }

    async fn parked(&self, limit: usize) -> Result<Vec<LedgerRecord>, StoreError> {
        self.inner.parked(limit).await
    }

    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError> {
        self.inner.parked_page(after, limit).await
    }

    async fn audit(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit(provider, customer, limit).await
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError> {
        self.inner.pending_outbox(limit).await
    }

    async fn delete_outbox(&self, _id: &str) -> Result<(), StoreError> {
        Err(refused())
    }

    async fn set_aside_outbox(&self, _item: &UnreadableOutbox, _at: i64) -> Result<(), StoreError> {
        Err(refused())
    }

    async fn unreadable_outbox(&self, limit: usize) -> Result<Vec<SetAsideOutbox>, StoreError> {
        self.inner.unreadable_outbox(limit).await
    }

    async fn requeue_outbox(&self, _id: &str, _at: i64) -> Result<bool, StoreError> {
        Err(refused())
    }

    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError> {
        self.inner.unreadable_page(after, limit).await
    }
}
