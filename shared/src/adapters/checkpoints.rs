//! Catch-up checkpoints ([`CheckpointStore`]) on the billing table, and an in-memory twin.
//!
//! | item | PK | SK | notes |
//! |------|----|----|-------|
//! | checkpoint | `CATCHUP#{provider}#{job}` | `KIND#{kind}` | `doc` (JSON: run id, cursor, done, counts, started and updated times, parameters), `rev` |
//!
//! A save is one `PutItem` conditional on the `rev` it was read at (`attribute_not_exists(PK)`
//! for a first save), so two runs of one job never both advance a cursor: the second gets
//! `Contention`. Listing a job's kinds is one `Query` on the PK. The operator's credentials
//! need `GetItem`, `PutItem` and `Query` on the table.

use super::sdk_error::Describe;
use crate::catchup::Checkpoint;
use crate::domain::ids::Provider;
use crate::ports::{CheckpointStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// The partition of a job's checkpoints.
pub fn checkpoint_pk(provider: Provider, job: &str) -> String {
    format!("CATCHUP#{provider}#{job}")
}

/// The sort key of one kind's checkpoint.
pub fn checkpoint_sk(kind: &str) -> String {
    format!("KIND#{kind}")
}

/// The checkpoints on the billing table.
pub struct DynamoCheckpoints {
    client: Client,
    table: String,
}

impl DynamoCheckpoints {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

type Item = HashMap<String, AttributeValue>;

fn from_item(item: &Item) -> Result<Checkpoint, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("checkpoint: {what}"));
    let doc = match item.get("doc") {
        Some(AttributeValue::S(doc)) => doc,
        _ => return Err(corrupt("no doc")),
    };
    let mut checkpoint: Checkpoint =
        serde_json::from_str(doc).map_err(|_| corrupt("unreadable doc"))?;
    checkpoint.rev = match item.get("rev") {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| corrupt("rev"))?,
        _ => return Err(corrupt("no rev")),
    };
    Ok(checkpoint)
}

#[async_trait]
impl CheckpointStore for DynamoCheckpoints {
    async fn load_checkpoint(
        &self,
        provider: Provider,
        job: &str,
        kind: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(checkpoint_pk(provider, job)))
            .key("SK", AttributeValue::S(checkpoint_sk(kind)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(e.describe()))?;
        out.item().map(from_item).transpose()
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let doc =
            serde_json::to_string(checkpoint).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let next = checkpoint.rev + 1;
        let s = |v: String| AttributeValue::S(v);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(checkpoint_pk(checkpoint.provider, &checkpoint.job)))
            .item("SK", s(checkpoint_sk(&checkpoint.kind)))
            .item("kind", s("catchup_checkpoint".into()))
            .item("doc", s(doc))
            .item("rev", AttributeValue::N(next.to_string()));
        put = if checkpoint.rev == 0 {
            put.condition_expression("attribute_not_exists(PK)")
        } else {
            put.condition_expression("rev = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(checkpoint.rev.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(next),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(StoreError::Contention(format!(
                    "checkpoint {}/{} moved since it was read (another run?)",
                    checkpoint.job, checkpoint.kind
                )))
            }
            Err(e) => Err(StoreError::Unavailable(e.describe())),
        }
    }

    async fn checkpoints(
        &self,
        provider: Provider,
        job: &str,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :kind)")
                .expression_attribute_values(":pk", AttributeValue::S(checkpoint_pk(provider, job)))
                .expression_attribute_values(":kind", AttributeValue::S("KIND#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(e.describe()))?;
            for item in out.items() {
                found.push(from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }
}

/// Checkpoints in this process only (tests, dry runs).
#[derive(Default)]
pub struct InMemoryCheckpoints {
    items: Mutex<BTreeMap<(Provider, String, String), Checkpoint>>,
}

#[async_trait]
impl CheckpointStore for InMemoryCheckpoints {
    async fn load_checkpoint(
        &self,
        provider: Provider,
        job: &str,
        kind: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(items
            .get(&(provider, job.to_owned(), kind.to_owned()))
            .cloned())
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (
            checkpoint.provider,
            checkpoint.job.clone(),
            checkpoint.kind.clone(),
        );
        let stored = items.get(&key).map_or(0, |c| c.rev);
        if stored != checkpoint.rev {
            return Err(StoreError::Contention(format!(
                "checkpoint {}/{} moved since it was read (another run?)",
                checkpoint.job, checkpoint.kind
            )));
        }
        let mut next = checkpoint.clone();
        next.rev = stored + 1;
        items.insert(key, next);
        Ok(stored + 1)
    }

    async fn checkpoints(
        &self,
        provider: Provider,
        job: &str,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(items
            .iter()
            .filter(|((p, j, _), _)| *p == provider && j == job)
            .map(|(_, c)| c.clone())
            .collect())
    }
}

/// The contract both implementations keep (the moto test runs it on DynamoDB:
/// `tests/api/catchup.rs`).
#[cfg(any(test, feature = "testing"))]
pub async fn check_contract(store: &dyn CheckpointStore, job: &str) {
    let mut first = Checkpoint::start(Provider::STRIPE, job, "customers", "run1", 100);
    assert_eq!(
        store
            .load_checkpoint(Provider::STRIPE, job, "customers")
            .await,
        Ok(None)
    );
    first.rev = store.save_checkpoint(&first).await.expect("first save");
    assert_eq!(first.rev, 1);
    // A second writer that read nothing (or an old revision) is refused.
    let stale = Checkpoint::start(Provider::STRIPE, job, "customers", "run2", 100);
    assert!(matches!(
        store.save_checkpoint(&stale).await,
        Err(StoreError::Contention(_))
    ));
    first.cursor = Some("cus_9".into());
    first.tally.applied = 100;
    first.params.insert("since".into(), "5".into());
    first.rev = store.save_checkpoint(&first).await.expect("advance");
    let read = store
        .load_checkpoint(Provider::STRIPE, job, "customers")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read, first);
    let mut old = first.clone();
    old.rev = 1;
    assert!(matches!(
        store.save_checkpoint(&old).await,
        Err(StoreError::Contention(_))
    ));
    let other = Checkpoint::start(Provider::STRIPE, job, "subscriptions", "run1", 100);
    store.save_checkpoint(&other).await.expect("other kind");
    let all = store
        .checkpoints(Provider::STRIPE, job)
        .await
        .expect("list");
    let kinds: Vec<&str> = all.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["customers", "subscriptions"]);
    assert!(store
        .checkpoints(Provider::PAYPAL, job)
        .await
        .expect("list")
        .is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_twin_keeps_the_contract() {
        check_contract(&InMemoryCheckpoints::default(), "import").await;
    }
}
