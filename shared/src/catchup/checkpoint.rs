//! A catch-up job's checkpoint per (provider, job, object kind), and the counts it carries.
//! Stored by [`crate::ports::CheckpointStore`] (DynamoDB: `adapters/checkpoints.rs`).

use crate::domain::ids::Provider;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a job did with the bodies it fed to the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Recorded and changed the model.
    pub applied: u64,
    /// Recorded stale or ignored, or already in the ledger (a duplicate): nothing changed.
    pub unchanged: u64,
    /// Recorded parked (unreadable or failing for good): `billing parked` lists them.
    pub parked: u64,
    /// Refused (another mode than `STRIPE_LIVEMODE`).
    pub rejected: u64,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.applied + self.unchanged + self.parked + self.rejected
    }

    pub fn add(&mut self, other: &Tally) {
        self.applied += other.applied;
        self.unchanged += other.unchanged;
        self.parked += other.parked;
        self.rejected += other.rejected;
    }
}

/// Where a job stands in one kind of object (or event list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub provider: Provider,
    /// The job: `import`, `backfill`, `reconcile`.
    pub job: String,
    /// The object kind or list: `customers`, `subscriptions`, `events`, …
    pub kind: String,
    /// The run this progress belongs to: a restarted run with the same id resumes it.
    pub run_id: String,
    pub started_at: i64,
    pub updated_at: i64,
    /// The last id of the last page fully fed to the pipeline (`starting_after` of the next).
    pub cursor: Option<String>,
    /// Every page of this kind is done.
    pub done: bool,
    pub tally: Tally,
    /// The job's own parameters (e.g. `since`), so a resumed run can check it is the same.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The stored revision; 0 = never stored. Each save is conditional on it.
    #[serde(skip)]
    pub rev: u64,
}

impl Checkpoint {
    /// A checkpoint not stored yet, at the start of `kind`.
    pub fn start(provider: Provider, job: &str, kind: &str, run_id: &str, now: i64) -> Self {
        Self {
            provider,
            job: job.to_owned(),
            kind: kind.to_owned(),
            run_id: run_id.to_owned(),
            started_at: now,
            updated_at: now,
            cursor: None,
            done: false,
            tally: Tally::default(),
            params: BTreeMap::new(),
            rev: 0,
        }
    }
}
