//! Fault injection around any store or queue: fail a chosen step before or after it takes
//! effect, to prove that a crash at any point loses nothing and duplicates nothing. Compiled
//! with the `testing` feature only (tests and examples), never into a production build.

use crate::domain::ids::{CustomerId, EventId, InvoiceId, Provider, UserId};
use crate::domain::invoice::Invoice;
use crate::ports::{
    AuditRecord, BillingStore, Commit, LedgerRecord, Loaded, OutboxMessage, PendingOutbox, Queue,
    QueueError, SetAsideOutbox, StoreError, Stored, UnreadableOutbox, UserAccessDoc,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

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
}

impl FaultPlan {
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
    ) -> Result<Loaded, StoreError> {
        if self.plan.trips(Step::Load) {
            return Err(injected(Step::Load));
        }
        self.inner.load(provider, event, customer, user).await
    }

    async fn load_with_invoice(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        invoice: &InvoiceId,
    ) -> Result<Loaded, StoreError> {
        if self.plan.trips(Step::Load) {
            return Err(injected(Step::Load));
        }
        self.inner
            .load_with_invoice(provider, event, customer, user, invoice)
            .await
    }

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        self.inner.load_user(user).await
    }

    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<Invoice>, StoreError> {
        self.inner.invoices(provider, customer, limit).await
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

    async fn parked(&self, limit: usize) -> Result<Vec<LedgerRecord>, StoreError> {
        self.inner.parked(limit).await
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

    async fn unreadable_outbox(&self, limit: usize) -> Result<Vec<SetAsideOutbox>, StoreError> {
        self.inner.unreadable_outbox(limit).await
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
            return Err(QueueError("injected fault at Send".into()));
        }
        self.inner.send(message).await?;
        if self.plan.trips(Step::SendAfter) {
            return Err(QueueError("injected fault at SendAfter".into()));
        }
        Ok(())
    }
}
