//! `billing import`: what Stripe already knows, read from its list endpoints page by page and
//! fed through the pipeline as snapshots observed at fetch time (`snapshot.rs`).
//!
//! Contract:
//! - kinds in the order the model needs them: the catalogue first (tiers), then customers (user
//!   links), subscriptions (`status=all`), invoices, refunded charges, refunds and disputes
//!   created since `since`, and each customer's active entitlements;
//! - memory is one page (100 objects) at a time, whatever the account's size;
//! - after each page the kind's checkpoint (`CATCHUP#stripe#import`, `KIND#{kind}`) stores the
//!   cursor and counts, conditionally on its revision; a run cut off anywhere is resumed by the
//!   next one (same run id, same `since`) from the page after the last stored one, and the
//!   objects of a page it re-reads are ledger duplicates (the snapshot's id is its content);
//! - a list the API does not offer (404: Stripe Entitlements or disputes on a stand-in) is
//!   skipped with a note, not a failure;
//! - `dry_run`: the pipeline runs on a [`super::dry_run::DryRunStore`] and no checkpoint is read
//!   or written: the counts say what would change.

use super::snapshot::{entitlement_summary, snapshot_event};
use super::{feed, progress::Progress, Checkpoint, Tally};
use crate::adapters::stripe_list::{ListPage, StripeList};
use crate::domain::ids::{Account, Provider};
use crate::pipeline::Pipeline;
use crate::ports::{CheckpointStore, StoreError};
use crate::providers::stripe::Family;
use serde_json::Value;
use std::sync::Arc;

/// The job's name in its checkpoints.
pub const JOB: &str = "import";

/// One kind of object and where Stripe lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    path: &'static str,
    /// Only those created since `since` (invoices and payments; the rest is current state).
    since_filter: bool,
    status_all: bool,
    family: Family,
}

const fn kind(name: &'static str, path: &'static str, since_filter: bool, family: Family) -> Kind {
    Kind {
        name,
        path,
        since_filter,
        status_all: false,
        family,
    }
}

/// Every kind, in the order they are imported.
pub const KINDS: [Kind; 10] = [
    kind("products", "products", false, Family::Charge),
    kind("prices", "prices", false, Family::Charge),
    kind("plans", "plans", false, Family::Charge),
    kind("customers", "customers", false, Family::Charge),
    Kind {
        status_all: true,
        ..kind(
            "subscriptions",
            "subscriptions",
            false,
            Family::Subscription,
        )
    },
    kind("invoices", "invoices", true, Family::Invoice),
    kind("charges", "charges", true, Family::Charge),
    kind("refunds", "refunds", true, Family::Charge),
    kind("disputes", "disputes", true, Family::Charge),
    // Read per customer: the checkpoint's cursor is the last customer done.
    kind("entitlements", "customers", false, Family::Charge),
];

/// The kind named `name`.
pub fn kind_named(name: &str) -> Option<Kind> {
    KINDS.into_iter().find(|k| k.name == name)
}

/// What the caller chose.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Unix seconds: invoices, charges, refunds and disputes created at or after it (0: all).
    pub since: i64,
    /// The kinds to import (default: all, in [`KINDS`] order).
    pub kinds: Vec<Kind>,
    /// Start a new run even if the last one did not finish.
    pub restart: bool,
    pub dry_run: bool,
    /// Objects fed to the pipeline at once.
    pub concurrency: usize,
    /// The mode the key and `STRIPE_LIVEMODE` agree on (objects that do not say take it).
    pub livemode: bool,
    /// A connected account to import (its lists read with `Stripe-Account`, its objects
    /// recorded in its namespace, its checkpoints `CATCHUP#stripe@acct_…#import`), or `None`
    /// for the platform's own.
    pub account: Option<Account>,
}

impl ImportOptions {
    /// The account imported, as its keys name it.
    fn scope(&self) -> Provider {
        Provider::STRIPE.within(self.account)
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub run_id: String,
    /// It went on with an unfinished run.
    pub resumed: bool,
    pub since: i64,
    /// Per kind: the counts (those of earlier runs of a resumed run included) and a note.
    pub kinds: Vec<(String, Tally, Option<String>)>,
}

/// The pieces a run uses.
pub struct Importer {
    pub pipeline: Arc<Pipeline>,
    pub list: Arc<StripeList>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub progress: Arc<Progress>,
}

/// The run to go on with: the unfinished one of the chosen kinds, unless `restart`.
struct Run {
    id: String,
    since: i64,
    resumed: bool,
}

impl Importer {
    pub async fn run(&self, opts: &ImportOptions) -> Result<ImportReport, String> {
        let run = self.choose_run(opts).await?;
        let mut report = ImportReport {
            run_id: run.id.clone(),
            resumed: run.resumed,
            since: run.since,
            kinds: Vec::new(),
        };
        if !run.resumed && !opts.dry_run {
            // Every kind of a new run is marked unfinished before the first page, so a run cut
            // off between two kinds is resumed too.
            for kind in &opts.kinds {
                let mut cp = self.checkpoint(*kind, &run, opts, false).await?;
                self.save(&mut cp, false).await?;
            }
        }
        for kind in &opts.kinds {
            let (tally, note) = self.import_kind(*kind, &run, opts).await?;
            report.kinds.push((kind.name.to_owned(), tally, note));
        }
        Ok(report)
    }

    async fn choose_run(&self, opts: &ImportOptions) -> Result<Run, String> {
        let now = self.pipeline.now();
        // The start time, and a random part so two runs started in one second differ.
        let fresh = Run {
            id: format!("{now}-{:04x}", rand::random::<u16>()),
            since: opts.since,
            resumed: false,
        };
        if opts.restart || opts.dry_run {
            return Ok(fresh);
        }
        let stored = self
            .checkpoints
            .checkpoints(opts.scope(), JOB)
            .await
            .map_err(|e| format!("reading the import's checkpoints: {e}"))?;
        let unfinished = stored
            .iter()
            .find(|c| !c.done && opts.kinds.iter().any(|k| k.name == c.kind));
        Ok(match unfinished {
            Some(c) => Run {
                id: c.run_id.clone(),
                since: c
                    .params
                    .get("since")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(opts.since),
                resumed: true,
            },
            None => fresh,
        })
    }

    /// The kind's checkpoint for `run`: the stored one if it belongs to it, else a new one
    /// that will replace the stored one (its revision kept for the conditional write).
    async fn checkpoint(
        &self,
        kind: Kind,
        run: &Run,
        opts: &ImportOptions,
        dry_run: bool,
    ) -> Result<Checkpoint, String> {
        let now = self.pipeline.now();
        let mut fresh = Checkpoint::start(opts.scope(), JOB, kind.name, &run.id, now);
        fresh.params.insert("since".into(), run.since.to_string());
        if dry_run {
            return Ok(fresh);
        }
        let stored = self
            .checkpoints
            .load_checkpoint(opts.scope(), JOB, kind.name)
            .await
            .map_err(|e| format!("reading the {} checkpoint: {e}", kind.name))?;
        Ok(match stored {
            Some(c) if c.run_id == run.id => c,
            Some(c) => {
                fresh.rev = c.rev;
                fresh
            }
            None => fresh,
        })
    }

    async fn save(&self, checkpoint: &mut Checkpoint, dry_run: bool) -> Result<(), String> {
        if dry_run {
            return Ok(());
        }
        checkpoint.updated_at = self.pipeline.now();
        checkpoint.rev =
            self.checkpoints
                .save_checkpoint(checkpoint)
                .await
                .map_err(|e| match e {
                    StoreError::Contention(why) => why,
                    e => format!("saving the {} checkpoint: {e}", checkpoint.kind),
                })?;
        Ok(())
    }

    async fn import_kind(
        &self,
        kind: Kind,
        run: &Run,
        opts: &ImportOptions,
    ) -> Result<(Tally, Option<String>), String> {
        let mut cp = self.checkpoint(kind, run, opts, opts.dry_run).await?;
        if cp.done {
            let note = cp.params.get("note").cloned();
            self.progress
                .finish_kind(kind.name, &cp.tally, Some("done earlier in this run"));
            return Ok((cp.tally, note));
        }
        self.progress.start_kind(kind.name, cp.tally, None);
        let since = format!("{}", run.since.saturating_sub(1));
        let mut params: Vec<(&str, &str)> = Vec::new();
        if kind.status_all {
            params.push(("status", "all"));
        }
        // `since` 0: every invoice and payment, of any age (no filter sent).
        if kind.since_filter && run.since > 0 {
            // `gt` one second before: Stripe and stand-ins alike take `gt`.
            params.push(("created[gt]", &since));
        }
        loop {
            let page = self
                .list
                .page_if_exists_in(opts.account, kind.path, &params, cp.cursor.as_deref())
                .await
                .map_err(|e| format!("{}: {e}", kind.name))?;
            let Some(page) = page else {
                return self.skip(kind, &mut cp, opts.dry_run).await;
            };
            if kind.name == "entitlements" {
                let fed = self.feed_entitlements(&page, opts, &mut cp.tally).await;
                if fed.map_err(|e| format!("{}: {e}", kind.name))?.is_none() {
                    return self.skip(kind, &mut cp, opts.dry_run).await;
                }
            } else {
                self.feed_page(kind, &page.data, opts, &mut cp.tally)
                    .await
                    .map_err(|e| format!("{}: {e}", kind.name))?;
            }
            if let Some(last) = page.last_id() {
                cp.cursor = Some(last.to_owned());
            }
            cp.done = !page.has_more;
            self.save(&mut cp, opts.dry_run).await?;
            self.progress.update(kind.name, &cp.tally);
            if cp.done {
                self.progress.finish_kind(kind.name, &cp.tally, None);
                return Ok((cp.tally, None));
            }
        }
    }

    /// A list the API does not have: done, with a note saying so.
    async fn skip(
        &self,
        kind: Kind,
        cp: &mut Checkpoint,
        dry_run: bool,
    ) -> Result<(Tally, Option<String>), String> {
        let path = if kind.name == "entitlements" {
            "entitlements/active_entitlements"
        } else {
            kind.path
        };
        let note = format!("skipped: this API has no /v1/{path} (404)");
        cp.done = true;
        cp.params.insert("note".into(), note.clone());
        self.save(cp, dry_run).await?;
        self.progress.finish_kind(kind.name, &cp.tally, Some(&note));
        Ok((cp.tally, Some(note)))
    }

    /// Feeds a page's objects, `concurrency` at a time; stops at the first failure that
    /// retrying did not clear (the checkpoint then still names the page before).
    async fn feed_page(
        &self,
        kind: Kind,
        objects: &[Value],
        opts: &ImportOptions,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let fetched_at = self.pipeline.now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut first_error: Option<String> = None;
        for object in objects {
            let Some((_, body)) = snapshot_event(object, fetched_at, opts.livemode, opts.account)
            else {
                continue;
            };
            while tasks.len() >= opts.concurrency.max(1) {
                collect(tasks.join_next().await, tally, &mut first_error);
            }
            let pipeline = self.pipeline.clone();
            let endpoint = kind.family.endpoint_within(opts.account);
            tasks.spawn(async move {
                let mut one = Tally::default();
                feed(&pipeline, endpoint, &body, &mut one)
                    .await
                    .map(|_| one)
            });
        }
        while let Some(done) = tasks.join_next().await {
            collect(Some(done), tally, &mut first_error);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One page of customers: each one's active entitlements as a summary. `Ok(None)`: the
    /// API has no Entitlements (404 on the first customer; nothing fed).
    async fn feed_entitlements(
        &self,
        customers: &ListPage,
        opts: &ImportOptions,
        tally: &mut Tally,
    ) -> Result<Option<()>, String> {
        let mut summaries = Vec::with_capacity(customers.data.len());
        for customer in &customers.data {
            let Some(id) = customer.get("id").and_then(Value::as_str) else {
                continue;
            };
            let page = self
                .list
                .page_if_exists_in(
                    opts.account,
                    "entitlements/active_entitlements",
                    &[("customer", id)],
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            match page {
                Some(p) => summaries.push(entitlement_summary(id, &p.data, p.has_more)),
                None => return Ok(None),
            }
        }
        let kind = kind_named("entitlements").ok_or("entitlements")?;
        self.feed_page(kind, &summaries, opts, tally).await?;
        Ok(Some(()))
    }
}

fn collect(
    done: Option<Result<Result<Tally, String>, tokio::task::JoinError>>,
    tally: &mut Tally,
    first_error: &mut Option<String>,
) {
    match done {
        Some(Ok(Ok(one))) => tally.add(&one),
        Some(Ok(Err(e))) => {
            first_error.get_or_insert(e);
        }
        Some(Err(e)) => {
            first_error.get_or_insert(format!("a feeding task failed: {e}"));
        }
        None => {}
    }
}
