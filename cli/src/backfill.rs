//! `billing backfill --since TIME [--until TIME] [--types T,…] [--provider stripe|paypal]`: the
//! provider's events of the range, listed from its API and fed oldest first through the
//! pipeline's trusted entry, like deliveries (`billing::backfill`): what the webhooks delivered
//! comes back `duplicate`, what they missed is recorded once. Running it again applies nothing
//! new. The range is checked before anything is built: `--since` beyond Stripe's 30-day
//! retention of events is refused.

use billing::adapters::checkpoints::DynamoCheckpoints;
use billing::adapters::stripe_list::{ListBounds, StripeList};
use billing::backfill::{self, Range, StripeEvents, Summary, TypeFilter, Walker};
use billing::catchup::progress::Progress;
use billing::catchup::{Checkpoint, Tally};
use billing::domain::ids::{Account, Provider};
use billing::ports::CheckpointStore;
use billing::providers::paypal::api::PaypalApi;
use billing::providers::paypal::events::PaypalEvents;
use billing::providers::paypal::settings::read_paypal_api_from_env;
use billing::telemetry::Metrics;
use clap::{Args, ValueEnum};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    Stripe,
    Paypal,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Oldest event time, Unix seconds or RFC 3339 (at most 30 days ago: Stripe's retention).
    #[arg(long, value_name = "TIME", value_parser = backfill::parse_time)]
    since: i64,
    /// Newest event time (default: now).
    #[arg(long, value_name = "TIME", value_parser = backfill::parse_time)]
    until: Option<i64>,
    /// Only these event types (comma-separated or repeated; Stripe only; default: every type
    /// a Stripe endpoint subscribes to).
    #[arg(long, value_name = "TYPE,…", num_args = 1..)]
    types: Vec<String>,
    /// Whose events: Stripe's Events API, or PayPal's event notifications (needs
    /// PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET or PAYPAL_CLIENT_SECRET_ARN).
    #[arg(long, value_enum, default_value = "stripe")]
    provider: Source,
    /// A Connect platform's connected account (Stripe only): its events are listed with
    /// `Stripe-Account` and recorded in its namespace at the Connect endpoints, so what its
    /// Connect webhooks delivered is a duplicate.
    #[arg(long, value_name = "acct_…", value_parser = crate::connected_account)]
    account: Option<Account>,
}

/// The range and the type filter, or why not (checked before any client is built).
pub fn plan(args: &BackfillArgs, now: i64) -> Result<(Range, TypeFilter), String> {
    let range = Range::checked(args.since, args.until, now)?;
    if args.provider == Source::Paypal && args.account.is_some() {
        return Err("--account is a Stripe connected account: not for --provider paypal".into());
    }
    let filter = match (args.provider, args.types.is_empty()) {
        (Source::Stripe, true) => TypeFilter::stripe_subscribed(),
        (Source::Stripe, false) => TypeFilter::stripe_only(&args.types)?,
        (Source::Paypal, true) => TypeFilter::any(),
        (Source::Paypal, false) => {
            return Err("--types is for Stripe's events only".into());
        }
    };
    Ok((range, filter))
}

/// What the walk did so far, as the catch-up progress counts it.
fn tally(summary: &Summary) -> Tally {
    let t = summary.total();
    Tally {
        applied: t.applied,
        unchanged: t.duplicate + t.stale + t.ignored,
        parked: t.parked,
        rejected: t.rejected,
    }
}

/// Walks the range through `source` into `sink` with the catch-up progress (kind `events`),
/// then prints the summary by event type.
pub async fn walk(
    source: &dyn backfill::EventSource,
    sink: &dyn backfill::TrustedSink,
    range: Range,
    filter: &TypeFilter,
    progress: &Progress,
) -> Result<Summary, String> {
    let mut walker = Walker::new(range);
    progress.start_kind(KIND, Tally::default(), None);
    let mut on_window = |summary: &Summary, _reached: i64| progress.update(KIND, &tally(summary));
    let result = backfill::walk_all(&mut walker, source, sink, filter, &mut on_window).await;
    match result {
        Ok(summary) => {
            progress.finish_kind(KIND, &tally(&summary), None);
            for line in summary.lines() {
                println!("{line}");
            }
            Ok(summary)
        }
        Err(e) => Err(format!(
            "{e}; every event up to {} is in: run again with --since {} to go on",
            backfill::rfc3339(walker.reached()),
            walker.reached() + 1
        )),
    }
}

const KIND: &str = "events";

/// Requests in flight and started per second against Stripe: inside test mode's 25 reads a
/// second, so a backfill never competes with the webhook functions' own reads for long.
const STRIPE_CONCURRENCY: usize = 4;
const STRIPE_PER_SECOND: u32 = 20;

/// `billing backfill`: the range is checked first (nothing is built for a refused one).
pub async fn command(args: BackfillArgs) -> Result<(), String> {
    let (range, filter) = plan(&args, crate::now())?;
    let app = crate::build_app(Metrics::Off).await?;
    let sdk = billing::app::sdk_loader(&app.config.bounds).load().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let progress = Progress::new("backfill");
    let summary = match args.provider {
        Source::Stripe => {
            let key = billing::app::stripe_api_key(&app.config, Some(&sm))
                .await?
                .ok_or("billing backfill needs STRIPE_API_KEY or STRIPE_API_KEY_ARN (a restricted key with Events: Read)")?;
            let base = app
                .config
                .stripe_api
                .as_ref()
                .map_or(billing::adapters::stripe_api::DEFAULT_BASE, |s| {
                    s.base.as_str()
                });
            let list = StripeList::new(
                base,
                &key,
                ListBounds::default(),
                STRIPE_CONCURRENCY,
                STRIPE_PER_SECOND,
            )
            .map_err(|e| e.to_string())?;
            let source = StripeEvents::new(Arc::new(list), &filter).in_account(args.account);
            walk(&source, app.service.as_ref(), range, &filter, &progress).await?
        }
        Source::Paypal => {
            let settings = read_paypal_api_from_env().map_err(|e| {
                format!("billing backfill --provider paypal needs PayPal's REST credentials: {e}")
            })?;
            let api = PaypalApi::from_settings(
                &settings,
                app.config.bounds,
                Some(&sm),
                Arc::new(billing::ports::SystemClock),
            )
            .await
            .map_err(|e| e.to_string())?;
            let source = PaypalEvents::new(api);
            walk(&source, app.service.as_ref(), range, &filter, &progress).await?
        }
    };
    if summary.total().missed() > 0 {
        eprintln!(
            "backfill: {} event(s) had not been delivered by the webhooks; they are applied now",
            summary.total().missed()
        );
    }
    Ok(())
}

/// `billing catchup status`: every catch-up checkpoint (import, backfill, reconcile) as one
/// JSON line each: what the import did last, how far reconcile's backfill has come, and when
/// it last found missed events or drift.
pub async fn status(accounts: Vec<Account>) -> Result<(), String> {
    let accounts = if accounts.is_empty() {
        billing::reconcile::Settings::from_env()?.accounts
    } else {
        accounts
    };
    let app = crate::build_app(Metrics::Off).await?;
    let sdk = billing::app::sdk_loader(&app.config.bounds).load().await;
    let store = DynamoCheckpoints::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        app.config.table.clone(),
    );
    let connected = accounts.into_iter().map(|a| Provider::STRIPE.in_account(a));
    for provider in [Provider::STRIPE, Provider::PAYPAL]
        .into_iter()
        .chain(connected)
    {
        for job in ["import", "backfill", billing::reconcile::JOB] {
            let checkpoints = store
                .checkpoints(provider, job)
                .await
                .map_err(|e| e.to_string())?;
            for c in checkpoints {
                println!("{}", status_line(&c));
            }
        }
    }
    Ok(())
}

/// One checkpoint as the status line: times as RFC 3339, the events' mark as a time too.
fn status_line(c: &Checkpoint) -> serde_json::Value {
    let time = |t: i64| backfill::rfc3339(t);
    let param_time = |k: &str| {
        c.params
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .map(time)
    };
    let cursor = match (c.job.as_str(), c.kind.as_str()) {
        (billing::reconcile::JOB, billing::reconcile::EVENTS) => c
            .cursor
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .map(|t| format!("events up to {}", time(t))),
        _ => c.cursor.clone(),
    };
    serde_json::json!({
        "provider": c.provider.to_string(), "job": c.job, "kind": c.kind, "run": c.run_id,
        "started_at": time(c.started_at), "updated_at": time(c.updated_at),
        "done": c.done, "cursor": cursor,
        "applied": c.tally.applied, "unchanged": c.tally.unchanged,
        "parked": c.tally.parked, "rejected": c.tally.rejected,
        "last_missed_at": param_time(billing::reconcile::LAST_MISSED_AT),
        "last_drift_at": param_time(billing::reconcile::LAST_DRIFT_AT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: i64, types: &[&str], provider: Source) -> BackfillArgs {
        BackfillArgs {
            since,
            until: None,
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            provider,
            account: None,
        }
    }

    #[test]
    fn since_31_days_back_is_refused_before_anything_is_built() {
        let now = 1_800_000_000;
        let err = plan(&args(now - 31 * 86_400, &[], Source::Stripe), now).expect_err("refused");
        assert!(
            err.contains("30 days") && err.contains("Events API"),
            "{err}"
        );
        let (range, filter) = plan(&args(now - 86_400, &[], Source::Stripe), now).expect("ok");
        assert_eq!((range.since, range.until), (now - 86_400, now));
        assert!(filter.allows("invoice.paid") && !filter.allows("payout.paid"));
        assert!(plan(&args(now - 60, &["invoice.paid"], Source::Paypal), now).is_err());
        assert!(plan(&args(now - 60, &["payout.paid"], Source::Stripe), now).is_err());
        let account = crate::connected_account("acct_1Conn").expect("account");
        let connect = |provider| BackfillArgs {
            account: Some(account),
            ..args(now - 60, &[], provider)
        };
        assert!(plan(&connect(Source::Stripe), now).is_ok());
        let err = plan(&connect(Source::Paypal), now).expect_err("not PayPal's");
        assert!(err.contains("--account"), "{err}");
        assert!(crate::connected_account("cus_1").is_err());
    }

    #[test]
    fn a_reconcile_checkpoint_reads_as_times() {
        let mut c = Checkpoint::start(Provider::STRIPE, "reconcile", "events", "reconcile", 0);
        c.cursor = Some("1700000000".into());
        c.params.insert(
            billing::reconcile::LAST_DRIFT_AT.into(),
            "1700000000".into(),
        );
        let line = status_line(&c);
        assert_eq!(line["cursor"], "events up to 2023-11-14T22:13:20Z");
        assert_eq!(line["last_drift_at"], "2023-11-14T22:13:20Z");
        assert_eq!(line["last_missed_at"], serde_json::Value::Null);
    }
}
