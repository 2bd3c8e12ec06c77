//! `billing backfill --since TIME [--until TIME] [--types T,…] [--provider stripe|paypal]`: the
//! provider's events of the range, listed from its API and fed oldest first through the
//! pipeline's trusted entry, like deliveries (`billing::backfill`): what the webhooks delivered
//! comes back `duplicate`, what they missed is recorded once. Running it again applies nothing
//! new. The range is checked before anything is built: `--since` beyond Stripe's 30-day
//! retention of events is refused.

use billing::backfill::{self, Range, Summary, TypeFilter, Walker};
use billing::domain::ids::Provider;
use clap::{Args, ValueEnum};

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
}

/// The range and the type filter, or why not (checked before any client is built).
pub fn plan(args: &BackfillArgs, now: i64) -> Result<(Range, TypeFilter), String> {
    let range = Range::checked(args.since, args.until, now)?;
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

impl Source {
    pub fn provider(self) -> Provider {
        match self {
            Source::Stripe => Provider::Stripe,
            Source::Paypal => Provider::Paypal,
        }
    }
}

/// One progress line: counts so far and how far the walk is.
fn progress_line(summary: &Summary, range: Range, reached: i64) -> String {
    let t = summary.total();
    let span = (range.until - range.since + 1).max(1);
    let done = ((reached - range.since + 1).clamp(0, span) * 100) / span;
    format!(
        "backfill {done:>3}%  up to {}  seen {}  applied {}  duplicate {}  stale {}  parked {}",
        backfill::rfc3339(reached),
        summary.seen(),
        t.applied,
        t.duplicate,
        t.stale,
        t.parked
    )
}

/// Walks the range through `source` into `sink`, printing a line per window and the summary.
pub async fn walk(
    source: &dyn backfill::EventSource,
    sink: &dyn backfill::TrustedSink,
    range: Range,
    filter: &TypeFilter,
) -> Result<Summary, String> {
    let mut walker = Walker::new(range);
    let mut progress = |summary: &Summary, reached: i64| {
        eprintln!("{}", progress_line(summary, range, reached));
    };
    let result = backfill::walk_all(&mut walker, source, sink, filter, &mut progress).await;
    match result {
        Ok(summary) => {
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
