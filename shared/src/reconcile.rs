//! The `reconcile` function's run, on a schedule: so the product is never behind Stripe for long.
//!
//! 1. **Backfill** Stripe's events from the stored high-water mark (checkpoint
//!    `reconcile`/`events`, cursor = the Unix second every event up to which is in), less an
//!    overlap (events become visible in the list a little after their `created`), through
//!    [`crate::backfill::Walker`]: what the webhooks delivered is a duplicate, what they missed is
//!    recorded now and counted (`MissedEvents`).
//! 2. **Check a sample** of subscriptions against Stripe's: the next `sample` of Stripe's list
//!    (`status=all`) after the stored cursor (checkpoint `reconcile`/`subscriptions`), wrapping
//!    at the end, so every subscription is checked in turn. One whose stored state differs from
//!    Stripe's (status, price, period end, cancellation, trial) or is missing is repaired by
//!    passing the fetched object through the pipeline as `billing import` does (a snapshot
//!    event observed at fetch time, `catchup::snapshot`), and counted (`DriftRepaired`).
//!
//! It stays inside its timeout: no new work starts once less than `margin` remains (each step
//! is bounded by the list client's and the store's own timeouts), and every window and batch
//! moves its checkpoint, so a run cut off resumes where it stopped. The sample walks Stripe's
//! list rather than the table because the table has no listing of subscriptions (a Scan cannot
//! be limited by key prefix in IAM), and it then also finds subscriptions the table lacks.

use crate::backfill::{EventSource, Range, Step, Summary, TrustedSink, TypeFilter, Walker};
use crate::catchup::{Checkpoint, Tally};
use crate::domain::customer::CustomerBilling;
use crate::domain::events::SubscriptionSnapshot;
use crate::domain::ids::{Account, Provider};
use crate::pipeline::{Outcome, Pipeline};
use crate::ports::{ApiError, CheckpointStore, Clock, LedgerState};
use crate::providers::stripe::translate::{subscription_snapshot, StripeMapping};
use crate::providers::stripe::Family;
use crate::routing::Endpoint;
use crate::telemetry::{Counter, Metrics};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

mod settings;
pub use settings::Settings;

pub const JOB: &str = "reconcile";
pub const EVENTS: &str = "events";
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// The metrics' `Family` dimension value.
pub const DIMENSION: &str = crate::telemetry::RECONCILE_DIMENSION;
/// Checkpoint parameters: when the newest missed event and repaired drift were found.
pub const LAST_MISSED_AT: &str = "last_missed_at";
pub const LAST_DRIFT_AT: &str = "last_drift_at";

/// Stripe's subscriptions, a page at a time, after a cursor (`status=all`, oldest last).
#[async_trait]
pub trait SubscriptionList: Send + Sync {
    /// The page after `after` (from the start when `None`) and whether another follows.
    async fn page(&self, after: Option<&str>) -> Result<(Vec<Value>, bool), ApiError>;
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub events: Summary,
    /// The events' high-water mark stored at the end.
    pub reached: Option<i64>,
    pub checked: u64,
    pub drift: u64,
    /// The run stopped early (the deadline); the next one goes on from the checkpoints.
    pub cut_off: bool,
}

impl Report {
    /// The Lambda's answer: counts only, no ids.
    pub fn json(&self) -> Value {
        let t = self.events.total();
        serde_json::json!({
            "events": {"applied": t.applied, "duplicate": t.duplicate, "stale": t.stale,
                       "ignored": t.ignored, "parked": t.parked, "rejected": t.rejected,
                       "missed": t.missed(), "skipped": self.events.skipped},
            "reached": self.reached,
            "subscriptions": {"checked": self.checked, "repaired": self.drift},
            "cut_off": self.cut_off,
        })
    }
}

/// One run's collaborators, for the platform's own Stripe account or one connected account
/// (`account`; its `events` and `subscriptions` list that account's): each account keeps its
/// own checkpoints (`CATCHUP#stripe@acct_…#reconcile`) and is repaired in its own namespace.
pub struct Reconciler {
    pub account: Option<Account>,
    pub events: Arc<dyn EventSource>,
    pub subscriptions: Arc<dyn SubscriptionList>,
    pub pipeline: Arc<Pipeline>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub mapping: StripeMapping,
    pub livemode: bool,
    pub settings: Settings,
}

#[async_trait]
impl TrustedSink for Pipeline {
    async fn apply(&self, endpoint: Endpoint, body: &[u8]) -> Outcome {
        self.receive_trusted(endpoint, body).await
    }
}

impl Reconciler {
    /// One run; `remaining` is the time left before the invocation's deadline.
    pub async fn run(
        &self,
        remaining: &(dyn Fn() -> Duration + Send + Sync),
    ) -> Result<Report, String> {
        let margin = self.settings.margin;
        let stop = || remaining() < margin;
        let mut report = Report::default();
        self.backfill(&stop, &mut report).await?;
        if !report.cut_off {
            self.sample(&stop, &mut report).await?;
        }
        Ok(report)
    }

    /// The same run for connected `account`: its lists read through `list` with its
    /// `Stripe-Account`, the rest shared.
    pub fn in_account(
        &self,
        list: &Arc<crate::adapters::stripe_list::StripeList>,
        account: Account,
    ) -> Reconciler {
        let filter = TypeFilter::stripe_subscribed();
        let events = crate::backfill::StripeEvents::new(list.clone(), &filter);
        Reconciler {
            account: Some(account),
            events: Arc::new(events.in_account(Some(account))),
            subscriptions: Arc::new(StripeSubscriptions(list.clone(), Some(account))),
            pipeline: self.pipeline.clone(),
            checkpoints: self.checkpoints.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            mapping: self.mapping.clone(),
            livemode: self.livemode,
            settings: self.settings.clone(),
        }
    }

    /// The Stripe account this run reconciles, as its keys name it.
    pub fn scope(&self) -> Provider {
        Provider::STRIPE.within(self.account)
    }

    /// When this account's events were last reconciled (`None`: never, or unreadable now:
    /// first in line either way).
    async fn last_reconciled(&self) -> Option<i64> {
        self.checkpoints
            .load_checkpoint(self.scope(), JOB, EVENTS)
            .await
            .ok()
            .flatten()
            .map(|c| c.updated_at)
    }

    async fn load(&self, kind: &str) -> Result<Checkpoint, String> {
        let now = self.clock.now();
        Ok(self
            .checkpoints
            .load_checkpoint(self.scope(), JOB, kind)
            .await
            .map_err(|e| format!("reading the {kind} checkpoint: {e}"))?
            .unwrap_or_else(|| Checkpoint::start(self.scope(), JOB, kind, JOB, now)))
    }

    async fn save(&self, checkpoint: &mut Checkpoint) -> Result<(), String> {
        checkpoint.updated_at = self.clock.now();
        checkpoint.rev = self
            .checkpoints
            .save_checkpoint(checkpoint)
            .await
            .map_err(|e| format!("saving the {} checkpoint: {e}", checkpoint.kind))?;
        Ok(())
    }

    /// The range of this run: from the stored mark less the overlap (the first run: the
    /// look-back), never beyond Stripe's retention, to now.
    fn range(&self, checkpoint: &Checkpoint) -> Range {
        let now = self.clock.now();
        let mark = checkpoint
            .cursor
            .as_deref()
            .and_then(|c| c.parse::<i64>().ok());
        let since = match mark {
            Some(mark) => mark + 1 - self.settings.overlap_secs,
            None => now - self.settings.first_lookback_secs,
        };
        // A minute inside the retention, so a slow run never asks for what Stripe dropped.
        let oldest = now - crate::backfill::RETENTION_DAYS * 86_400 + 60;
        Range {
            since: since.clamp(oldest, now),
            until: now,
        }
    }

    async fn backfill(
        &self,
        stop: &(dyn Fn() -> bool + Send + Sync),
        report: &mut Report,
    ) -> Result<(), String> {
        let mut checkpoint = self.load(EVENTS).await?;
        let mut walker = Walker::new(self.range(&checkpoint));
        let filter = TypeFilter::stripe_subscribed();
        loop {
            let before = report.events.total();
            let step = walker
                .next_window(
                    self.events.as_ref(),
                    self.pipeline.as_ref(),
                    &filter,
                    &mut report.events,
                    stop,
                )
                .await
                .map_err(|e| e.to_string())?;
            let after = report.events.total();
            let missed = after.missed() - before.missed();
            for _ in 0..missed {
                self.metrics.incr(Counter::MissedEvents, DIMENSION);
            }
            match step {
                Step::Window { reached } => {
                    checkpoint.cursor = Some(reached.to_string());
                    checkpoint.tally.add(&tally_of(before, after));
                    if missed > 0 {
                        checkpoint
                            .params
                            .insert(LAST_MISSED_AT.into(), self.clock.now().to_string());
                        tracing::warn!(
                            missed,
                            "reconcile: events the webhooks had not delivered were applied"
                        );
                    }
                    self.save(&mut checkpoint).await?;
                    report.reached = Some(reached);
                }
                Step::Done => return Ok(()),
                Step::Stopped => {
                    report.cut_off = true;
                    return Ok(());
                }
            }
        }
    }

    async fn sample(
        &self,
        stop: &(dyn Fn() -> bool + Send + Sync),
        report: &mut Report,
    ) -> Result<(), String> {
        let mut checkpoint = self.load(SUBSCRIPTIONS).await?;
        let mut checked = 0usize;
        while checked < self.settings.sample {
            if stop() {
                report.cut_off = true;
                return Ok(());
            }
            let (page, more) = self
                .subscriptions
                .page(checkpoint.cursor.as_deref())
                .await
                .map_err(|e| format!("listing subscriptions: {e}"))?;
            let fetched_at = self.clock.now();
            let mut tally = Tally::default();
            let mut consumed = 0;
            for object in &page {
                if checked >= self.settings.sample {
                    break;
                }
                if stop() {
                    report.cut_off = true;
                    break;
                }
                let repaired = self.check(object, fetched_at).await?;
                checked += 1;
                consumed += 1;
                report.checked += 1;
                if repaired {
                    tally.applied += 1;
                    report.drift += 1;
                    self.metrics.incr(Counter::DriftRepaired, DIMENSION);
                    checkpoint
                        .params
                        .insert(LAST_DRIFT_AT.into(), fetched_at.to_string());
                } else {
                    tally.unchanged += 1;
                }
                checkpoint.cursor = object.get("id").and_then(Value::as_str).map(str::to_owned);
            }
            let whole = consumed == page.len();
            if whole && !more {
                // The end of the list: the next run starts from the beginning again.
                checkpoint.cursor = None;
                checkpoint.done = true;
            }
            checkpoint.tally.add(&tally);
            self.save(&mut checkpoint).await?;
            if !whole || !more {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Checks one subscription from Stripe against the stored one; repairs it through the
    /// pipeline when they differ. `true` when the repair changed the model.
    async fn check(&self, object: &Value, fetched_at: i64) -> Result<bool, String> {
        let Some(theirs) = subscription_snapshot(object, &self.mapping) else {
            tracing::warn!("reconcile: a listed subscription without id, customer or status");
            return Ok(false);
        };
        let stored = self
            .pipeline
            .store()
            .customer(self.scope(), &theirs.customer)
            .await
            .map_err(|e| format!("reading a customer: {e}"))?;
        if stored.is_some_and(|s| agrees(&s.value, &theirs, fetched_at)) {
            return Ok(false);
        }
        let Some((event_id, body)) = crate::catchup::snapshot::snapshot_event(
            object,
            fetched_at,
            self.livemode,
            self.account,
        ) else {
            return Ok(false);
        };
        let outcome = self
            .pipeline
            .receive_trusted(Family::Subscription.endpoint_within(self.account), &body)
            .await;
        match outcome {
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            } => {
                tracing::warn!(subscription = %theirs.id, %event_id, "reconcile: drift repaired");
                Ok(true)
            }
            Outcome::Unavailable(e) => Err(format!("repairing a subscription: {e}")),
            _ => Ok(false),
        }
    }
}

/// What one window added, as a checkpoint's tally.
fn tally_of(before: crate::backfill::Counts, after: crate::backfill::Counts) -> Tally {
    Tally {
        applied: after.applied - before.applied,
        unchanged: (after.duplicate + after.stale + after.ignored)
            - (before.duplicate + before.stale + before.ignored),
        parked: after.parked - before.parked,
        rejected: after.rejected - before.rejected,
    }
}

/// Whether the stored customer already says what Stripe's subscription says (or knows a newer
/// state than the one fetched at `fetched_at`).
pub fn agrees(customer: &CustomerBilling, theirs: &SubscriptionSnapshot, fetched_at: i64) -> bool {
    use crate::domain::events::SubscriptionStatus as S;
    // Ended at the provider: nothing of ours may still run. An unknown status is not taken
    // for an end (the stored state is compared as for any other).
    let ended = match &theirs.status {
        S::Canceled | S::IncompleteExpired => true,
        S::Incomplete
        | S::Trialing
        | S::Active
        | S::PastDue
        | S::Unpaid
        | S::Paused
        | S::Unknown(_) => false,
    };
    if customer.ended.contains_key(&theirs.id) {
        return ended;
    }
    let Some(record) = customer.subscriptions.get(&theirs.id) else {
        return false;
    };
    if record.deletion.is_some() {
        return ended;
    }
    let Some(latest) = record.latest() else {
        return false;
    };
    let ours = &latest.candidate.snapshot;
    latest.candidate.version.created >= fetched_at
        || (ours.status == theirs.status
            && ours.price_id == theirs.price_id
            && ours.current_period_end == theirs.current_period_end
            && ours.cancel_at_period_end == theirs.cancel_at_period_end
            && ours.cancel_at == theirs.cancel_at
            && ours.trial_end == theirs.trial_end)
}

/// Stripe's subscriptions through the catch-up list client, `status=all`: the platform's own
/// (`None`) or a connected account's.
pub struct StripeSubscriptions(
    pub Arc<crate::adapters::stripe_list::StripeList>,
    pub Option<Account>,
);

#[async_trait]
impl SubscriptionList for StripeSubscriptions {
    async fn page(&self, after: Option<&str>) -> Result<(Vec<Value>, bool), ApiError> {
        let page = self
            .0
            .page_in(self.1, "subscriptions", &[("status", "all")], after)
            .await?;
        Ok((page.data, page.has_more))
    }
}

/// Unix milliseconds now (the Lambda context's deadline is in these).
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What answers a scheduled invocation when no Stripe key is configured: the template keeps
/// the schedule disabled then, so this is a manual or local invoke.
pub fn no_key_answer() -> Value {
    serde_json::json!({"skipped": "no Stripe API key: set STRIPE_API_KEY_ARN (StripeApiKeySecretArn) or STRIPE_API_KEY"})
}

/// The reconcile function's whole `main`, not `async` for the reason `app::main` gives.
#[inline(never)]
pub fn main() -> Result<(), lambda_http::Error> {
    crate::app::main::block_on(run_lambda())
}

/// The reconcile Lambda: config, clients, the Stripe key and the checkpoints at init; each
/// scheduled invocation one [`Reconciler::run`] within the invocation's deadline. The event's
/// content is not read (EventBridge Scheduler's input, `events/reconcile.scheduled.json`).
pub async fn run_lambda() -> Result<(), lambda_http::Error> {
    use crate::app::{sdk_loader, stripe_api_key, App};
    use crate::config::Config;
    use lambda_http::lambda_runtime::{run, service_fn, LambdaEvent};
    let config = Config::from_env(&[], None)?;
    crate::telemetry::init(config.log_json);
    let settings = Settings::from_env()?;
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let sdk = sdk_loader(&config.bounds).load().await;
    let sm = config
        .uses_secrets_manager()
        .then(|| aws_sdk_secretsmanager::Client::new(&sdk));
    let key = stripe_api_key(&config, sm.as_ref()).await?;
    let base = config.stripe_api.as_ref().map(|s| s.base.clone());
    let (mapping, livemode, table) = (
        config.mapping.clone(),
        config.livemode,
        config.table.clone(),
    );
    let app = App::with_sdk(&sdk, config, metrics).await?;
    app.warm_up().await;
    let reconcilers: Option<Arc<[Reconciler]>> = match (key, base) {
        (Some(key), Some(base)) => {
            // One client for every account: the rate and concurrency bounds hold across them.
            let list = Arc::new(crate::adapters::stripe_list::StripeList::new(
                &base,
                &key,
                settings.list_bounds(),
                4,
                20,
            )?);
            let platform = Reconciler {
                account: None,
                events: Arc::new(crate::backfill::StripeEvents::new(
                    list.clone(),
                    &TypeFilter::stripe_subscribed(),
                )),
                subscriptions: Arc::new(StripeSubscriptions(list.clone(), None)),
                pipeline: app.service.clone(),
                checkpoints: Arc::new(crate::adapters::checkpoints::DynamoCheckpoints::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    table,
                )),
                clock: Arc::new(crate::ports::SystemClock),
                metrics: app.metrics.clone(),
                mapping,
                livemode,
                settings: settings.clone(),
            };
            let connected: Vec<Reconciler> = (settings.accounts.iter())
                .map(|account| platform.in_account(&list, *account))
                .collect();
            Some(std::iter::once(platform).chain(connected).collect())
        }
        _ => None,
    };
    run(service_fn(move |event: LambdaEvent<Value>| {
        let reconcilers = reconcilers.clone();
        async move {
            let Some(reconcilers) = reconcilers else {
                return Ok::<_, lambda_http::Error>(no_key_answer());
            };
            let deadline = event.context.deadline;
            let remaining = move || Duration::from_millis(deadline.saturating_sub(now_millis()));
            let (answer, failed) = run_all(&reconcilers, &remaining).await;
            tracing::info!(report = %answer, "reconcile run");
            match failed {
                None => Ok(answer),
                Some(e) => {
                    tracing::error!(error = %e, "reconcile run failed; the next run resumes from the checkpoints");
                    Err(e.into())
                }
            }
        }
    }))
    .await
}

/// One scheduled run over every account: the platform's own and each connected account of
/// `BILLING_RECONCILE_STRIPE_ACCOUNTS`, in turn, the least recently reconciled first (by its
/// events checkpoint), so when a deadline cuts a run short the next one begins with the
/// accounts it did not reach. An account whose run fails (Stripe refuses the key for it, say)
/// does not stop the others. The answer: the platform's report, with `accounts` (each one's
/// report, or its `error`) when there are connected accounts; and the failures, if any, which
/// make the invocation an error (the function's Errors alarm).
pub async fn run_all(
    reconcilers: &[Reconciler],
    remaining: &(dyn Fn() -> Duration + Send + Sync),
) -> (Value, Option<String>) {
    let mut order = Vec::with_capacity(reconcilers.len());
    for (i, r) in reconcilers.iter().enumerate() {
        order.push((r.last_reconciled().await, i));
    }
    order.sort();
    let mut answers: Vec<Option<Value>> = vec![None; reconcilers.len()];
    let mut failures = Vec::new();
    for (_, i) in order {
        let r = &reconcilers[i];
        let scope = r.scope();
        answers[i] = Some(match r.run(remaining).await {
            Ok(report) => report.json(),
            Err(e) => {
                tracing::error!(account = %scope, error = %e, "reconcile: this account's run failed");
                failures.push(format!("{scope}: {e}"));
                serde_json::json!({ "error": e })
            }
        });
    }
    let mut answer = serde_json::json!({});
    let mut accounts = serde_json::Map::new();
    for (r, a) in reconcilers.iter().zip(answers) {
        let a = a.unwrap_or(Value::Null);
        match r.account {
            None => answer = a,
            Some(account) => {
                accounts.insert(account.to_string(), a);
            }
        }
    }
    if !accounts.is_empty() {
        if let Some(fields) = answer.as_object_mut() {
            fields.insert("accounts".into(), Value::Object(accounts));
        }
    }
    let failed = (!failures.is_empty()).then(|| failures.join("; "));
    (answer, failed)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
