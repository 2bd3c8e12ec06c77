//! Fault injection around any store or queue: fail a chosen step before or after it takes
//! effect, to prove that a crash at any point loses nothing and duplicates nothing. Compiled
//! with the `testing` feature only (tests and examples), never into a production build.

use crate::domain::catalogue::ProductRecord;
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::Purchase;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId};
use crate::domain::invoice::Invoice;
use crate::ports::Beside;
use crate::ports::PurchaseKey;
use crate::ports::{
    AuditRecord, BillingStore, CatalogueAudit, Commit, LedgerRecord, Loaded, LoadedProduct,
    OutboxMessage, PendingOutbox, PricePage, Queue, QueueError, SetAsideOutbox, StoreError, Stored,
    UnreadableOutbox, UserAccessDoc,
};
use crate::ports::{Cursor, Page};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The steps a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Named for the command line of the crash server: `commit-after`, `send-after`, ….
    Load,
    /// The commit fails and nothing is written.
    CommitBefore,
    /// The commit is written, then the call fails (a crash or timeout after a durable write).
    CommitAfter,
    /// A state-changing commit is refused as DynamoDB refuses a request it will never accept
    /// (a `ValidationException`, an item over 400 KB); ledger-only writes still go through.
    CommitRefused,
    Send,
    /// The message is sent, then the call fails (the relay dies before deleting it).
    SendAfter,
    DeleteOutbox,
}

/// Steps that fail on their next call, each once; or a step at which the process dies.
#[derive(Default)]
pub struct FaultPlan {
    failures: Mutex<Vec<Step>>,
    crash_at: Mutex<Option<Step>>,
    meeting: Mutex<Option<Meeting>>,
}

/// Loads that wait for each other after reading (see [`FaultPlan::meet_after_load`]).
struct Meeting {
    expected: usize,
    joined: usize,
    arrived: Arc<AtomicUsize>,
}

/// How long a load waits for the others of its meeting before going on alone.
const MEETING_WAIT: Duration = Duration::from_secs(10);

impl FaultPlan {
    /// The next `n` loads each wait, after reading, until all `n` have read: their commits then
    /// race on the revisions they all read (the tests of the optimistic-concurrency retry).
    pub fn meet_after_load(&self, n: usize) {
        if let Ok(mut m) = self.meeting.lock() {
            *m = Some(Meeting {
                expected: n,
                joined: 0,
                arrived: Arc::new(AtomicUsize::new(0)),
            });
        }
    }

    async fn meet(&self) {
        let joined = self.meeting.lock().ok().and_then(|mut m| {
            let meeting = m.as_mut().filter(|m| m.joined < m.expected)?;
            meeting.joined += 1;
            Some((meeting.arrived.clone(), meeting.expected))
        });
        let Some((arrived, expected)) = joined else {
            return;
        };
        arrived.fetch_add(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        while arrived.load(Ordering::SeqCst) < expected && started.elapsed() < MEETING_WAIT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn fail_next(&self, step: Step) {
        if let Ok(mut v) = self.failures.lock() {
            v.push(step);
        }
    }

    /// Aborts the whole process when `step` is reached (the kill tests' crash server).
    pub fn crash_at(&self, step: Step) {
        if let Ok(mut c) = self.crash_at.lock() {
            *c = Some(step);
        }
    }

    fn trips(&self, step: Step) -> bool {
        if self.crash_at.lock().ok().and_then(|c| *c) == Some(step) {
            eprintln!("fault plan: crashing at {step:?}");
            std::process::abort();
        }
        let Ok(mut v) = self.failures.lock() else {
            return false;
        };
        match v.iter().position(|s| *s == step) {
            Some(i) => {
                v.remove(i);
                true
            }
            None => false,
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "load" => Step::Load,
            "commit-before" => Step::CommitBefore,
            "commit-after" => Step::CommitAfter,
            "commit-refused" => Step::CommitRefused,
            "send" => Step::Send,
            "send-after" => Step::SendAfter,
            "delete-outbox" => Step::DeleteOutbox,
            other => return Err(format!("unknown step `{other}`")),
        })
    }
}

fn injected(step: Step) -> StoreError {
    StoreError::Unavailable(format!("injected fault at {step:?}"))
}

pub struct FaultyStore {
    pub inner: Arc<dyn BillingStore>,
    pub plan: Arc<FaultPlan>,
}

#[async_trait]
impl BillingStore for FaultyStore {
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError> {
        if self.plan.trips(Step::Load) {
            return Err(injected(Step::Load));
        }
        let loaded = self
            .inner
            .load(provider, event, customer, user, beside)
            .await;
        self.plan.meet().await;
        loaded
    }

    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError> {
        if self.plan.trips(Step::Load) {
            return Err(injected(Step::Load));
        }
        let loaded = self
            .inner
            .load_product(provider, event, product, price)
            .await;
        self.plan.meet().await;
        loaded
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

    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError> {
        self.inner.customer(provider, customer).await
    }

    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError> {
        self.inner.charge(provider, charge).await
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

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        self.inner.load_user(user).await
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
        if self.plan.trips(Step::CommitBefore) {
            return Err(injected(Step::CommitBefore));
        }
        if !commit.is_ledger_only() && self.plan.trips(Step::CommitRefused) {
            return Err(StoreError::Refused(
                "injected: item size has exceeded the maximum allowed size".into(),
            ));
        }
        self.inner.commit(commit).await?;
        if self.plan.trips(Step::CommitAfter) {
            return Err(injected(Step::CommitAfter));
        }
        Ok(())
    }

    async fn ledger(&self, p: Provider, e: &EventId) -> Result<Option<LedgerRecord>, StoreError> {
        self.inner.ledger(p, e).await
    }

    async fn audit(
        &self,
        p: Provider,
        c: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit(p, c, limit).await
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError> {
        self.inner.pending_outbox(limit).await
    }

    async fn set_aside_outbox(&self, item: &UnreadableOutbox, at: i64) -> Result<(), StoreError> {
        self.inner.set_aside_outbox(item, at).await
    }

    async fn requeue_outbox(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.inner.requeue_outbox(id, at).await
    }

    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError> {
        self.inner.unreadable_page(after, limit).await
    }

    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError> {
        self.inner.parked_page(after, limit).await
    }

    async fn delete_outbox(&self, id: &str) -> Result<(), StoreError> {
        if self.plan.trips(Step::DeleteOutbox) {
            return Err(injected(Step::DeleteOutbox));
        }
        self.inner.delete_outbox(id).await
    }
}

pub struct FaultyQueue {
    pub inner: Arc<dyn Queue>,
    pub plan: Arc<FaultPlan>,
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, message: &OutboxMessage) -> Result<(), QueueError> {
        if self.plan.trips(Step::Send) {
            return Err(QueueError::Unavailable("injected fault at Send".into()));
        }
        self.inner.send(message).await?;
        if self.plan.trips(Step::SendAfter) {
            return Err(QueueError::Unavailable(
                "injected fault at SendAfter".into(),
            ));
        }
        Ok(())
    }
}
