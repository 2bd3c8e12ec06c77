//! `billing import`: the initial sync from Stripe's list endpoints (`billing::catchup::import`
//! is the engine; this file reads the flags and the environment, builds its pieces and prints).
//!
//! The key is `STRIPE_API_KEY` (or `STRIPE_API_KEY_ARN`), checked against `STRIPE_LIVEMODE`
//! like the functions' (a live key is refused when it is `false`, a test key when `true`);
//! it needs read access to every listed kind. The table and credentials are the operator's.

use billing::adapters::checkpoints::DynamoCheckpoints;
use billing::adapters::memory::StaticSecrets;
use billing::adapters::stripe_api::{StripeApi, StripeApiKey};
use billing::adapters::stripe_list::{ListBounds, StripeList};
use billing::app::App;
use billing::catchup::dry_run::DryRunStore;
use billing::catchup::import::{kind_named, ImportOptions, ImportReport, Importer, JOB, KINDS};
use billing::catchup::progress::Progress;
use billing::config::Config;
use billing::domain::ids::{Account, Provider};
use billing::pipeline::Pipeline;
use billing::ports::{CheckpointStore, Clock, SystemClock};
use billing::providers::stripe::settings::ApiKeySpec;
use billing::providers::stripe::StripeProvider;
use clap::Args;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Invoices, charges, refunds and disputes created since: `90d` (days ago), a date
    /// (`2025-01-31`), a UTC time (`2025-01-31T12:00:00Z`) or Unix seconds (`0`: all history).
    /// Ignored when an
    /// unfinished run is resumed (it keeps its own).
    #[arg(long, value_name = "TIME", default_value = "90d")]
    since: String,
    /// Objects fed to the pipeline at once, and requests to Stripe in flight.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Requests to Stripe started per second (default 20 in test mode, whose limit is 25 reads
    /// per second; 80 in live mode, whose limit is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    max_per_second: Option<u32>,
    /// Only these kinds, comma-separated (default: all, in order): products, prices, plans,
    /// customers, subscriptions, invoices, charges, refunds, disputes, entitlements.
    #[arg(long, value_name = "KIND,…", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Start a new run instead of resuming the unfinished one.
    #[arg(long)]
    restart: bool,
    /// Report what would change and write nothing (no checkpoint either).
    #[arg(long)]
    dry_run: bool,
    /// Print the stored checkpoints (what the import did last) and exit.
    #[arg(long, conflicts_with_all = ["restart", "dry_run"])]
    status: bool,
    /// Import a Connect platform's connected account instead of the platform's own: its lists
    /// are read with `Stripe-Account`, its objects recorded in its namespace (as its Connect
    /// webhooks' events are), its run resumed on its own.
    #[arg(long, value_name = "acct_…", value_parser = crate::connected_account)]
    account: Option<Account>,
}

/// A date or time as Unix seconds: `Nd` (N days before `now`), `YYYY-MM-DD`,
/// `YYYY-MM-DDTHH:MM:SSZ` or plain seconds.
pub fn parse_time(raw: &str, now: i64) -> Result<i64, String> {
    let raw = raw.trim();
    let bad = || {
        format!(
            "--since `{raw}`: expected `90d`, `2025-01-31`, `2025-01-31T12:00:00Z` or Unix seconds"
        )
    };
    if let Some(days) = raw.strip_suffix('d') {
        let days: i64 = days.parse().map_err(|_| bad())?;
        if !(0..=36_500).contains(&days) {
            return Err(bad());
        }
        return Ok(now - days * 86_400);
    }
    if raw.bytes().all(|b| b.is_ascii_digit()) && !raw.is_empty() {
        return raw.parse().map_err(|_| bad());
    }
    let (date, time) = match raw.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (raw, None),
    };
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let t: Vec<&str> = t.split(':').collect();
        let [h, mi, s] = t[..] else { return Err(bad()) };
        let (h, mi, s) = (num(h)?, num(mi)?, num(s)?);
        if h > 23 || mi > 59 || s > 60 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + s;
    }
    Ok(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The kinds named, in import order; all when none.
fn chosen_kinds(names: &[String]) -> Result<Vec<billing::catchup::import::Kind>, String> {
    if names.is_empty() {
        return Ok(KINDS.to_vec());
    }
    for n in names {
        kind_named(n.trim()).ok_or_else(|| {
            let all: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            format!("unknown kind `{n}` (one of: {})", all.join(", "))
        })?;
    }
    Ok(KINDS
        .into_iter()
        .filter(|k| names.iter().any(|n| n.trim() == k.name))
        .collect())
}

/// The key the import reads with, checked against `STRIPE_LIVEMODE`.
pub fn checked_key(raw: &str, livemode: bool, source: &str) -> Result<StripeApiKey, String> {
    StripeApiKey::parse(raw)
        .and_then(|key| key.check_mode(livemode).map(|()| key))
        .map_err(|e| format!("{source}: {e}"))
}

async fn read_key(config: &Config) -> Result<(StripeApiKey, String), String> {
    let settings = config.stripe_api.as_ref().ok_or(
        "STRIPE_API_KEY (or STRIPE_API_KEY_ARN) is not set: the import reads Stripe with it",
    )?;
    let key = match &settings.key {
        // Checked by `Config` when read (kind and mode, `checked_key`'s rule).
        ApiKeySpec::Inline(key) => key.clone(),
        ApiKeySpec::Arn(arn) => {
            let sdk = billing::app::sdk_loader(&config.bounds).load().await;
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let raw = billing::adapters::secrets_manager::read_secret_string(&client, arn)
                .await
                .map_err(|e| format!("STRIPE_API_KEY_ARN: {e}"))?;
            checked_key(
                &raw,
                config.livemode,
                &format!("STRIPE_API_KEY_ARN (secret {arn})"),
            )?
        }
    };
    Ok((key, settings.base.clone()))
}

pub async fn command(app: &App, args: &ImportArgs) -> Result<(), String> {
    let checkpoints: Arc<dyn CheckpointStore> = Arc::new(DynamoCheckpoints::new(
        aws_sdk_dynamodb::Client::new(&billing::app::sdk_loader(&app.config.bounds).load().await),
        app.config.table.clone(),
    ));
    if args.status {
        return status(checkpoints.as_ref(), args.account).await;
    }
    let now = SystemClock.now();
    let since = parse_time(&args.since, now)?;
    let kinds = chosen_kinds(&args.kinds)?;
    let (key, base) = read_key(&app.config).await?;
    let livemode = app.config.livemode;
    let rate = args
        .max_per_second
        .unwrap_or(if livemode { 80 } else { 20 });
    let concurrency = usize::from(args.concurrency);
    let list = StripeList::new(&base, &key, ListBounds::default(), concurrency, rate)
        .map_err(|e| e.to_string())?;
    let dry = args
        .dry_run
        .then(|| Arc::new(DryRunStore::new(app.store.clone())));
    let pipeline = match &dry {
        None => app.service.clone(),
        Some(store) => dry_pipeline(app, store.clone(), key, &base)?,
    };
    let progress = Arc::new(Progress::new(JOB));
    let importer = Importer {
        pipeline,
        list: Arc::new(list),
        checkpoints,
        progress: progress.clone(),
    };
    let opts = ImportOptions {
        since,
        kinds,
        restart: args.restart,
        dry_run: args.dry_run,
        concurrency,
        livemode,
        account: args.account,
    };
    let result = importer.run(&opts).await;
    print!("{}", progress.summary());
    let report = result?;
    print_report(&report, &importer.list, dry.as_deref());
    Ok(())
}

/// The Stripe pipeline on a store that writes nothing.
fn dry_pipeline(
    app: &App,
    store: Arc<DryRunStore>,
    key: StripeApiKey,
    base: &str,
) -> Result<Arc<Pipeline>, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let api = StripeApi::new(base, key, app.config.bounds).map_err(|e| e.to_string())?;
    // Nothing is verified on this path: the bodies come from Stripe's API.
    let secrets = Arc::new(StaticSecrets::everywhere(Vec::new()));
    let provider = StripeProvider::new(
        secrets,
        clock.clone(),
        app.metrics.clone(),
        app.config.settings(),
    )
    .with_api(Arc::new(api));
    Ok(Arc::new(
        Pipeline::new(store, clock, app.metrics.clone(), app.config.tiers.clone())
            .with_provider(Arc::new(provider)),
    ))
}

fn print_report(report: &ImportReport, list: &StripeList, dry: Option<&DryRunStore>) {
    use std::sync::atomic::Ordering;
    let stats = &list.stats;
    println!(
        "run {}{}: since {}; {} requests to Stripe, {} rate-limited (429) and retried",
        report.run_id,
        if report.resumed { " (resumed)" } else { "" },
        report.since,
        stats.requests.load(Ordering::Relaxed),
        stats.rate_limited.load(Ordering::Relaxed),
    );
    if let Some(dry) = dry {
        println!("dry run: nothing written; {}", dry.would.describe());
    }
}

/// One JSON line per kind's checkpoint: what the import did last.
async fn status(checkpoints: &dyn CheckpointStore, account: Option<Account>) -> Result<(), String> {
    let all = checkpoints
        .checkpoints(Provider::STRIPE.within(account), JOB)
        .await
        .map_err(|e| e.to_string())?;
    if all.is_empty() {
        println!("no import has run on this table");
    }
    for c in all {
        println!(
            "{}",
            serde_json::json!({
                "kind": c.kind, "run": c.run_id, "done": c.done, "cursor": c.cursor,
                "started_at": c.started_at, "updated_at": c.updated_at, "applied": c.tally.applied,
                "unchanged": c.tally.unchanged, "parked": c.tally.parked,
                "rejected": c.tally.rejected, "params": c.params,
            })
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_days_dates_times_and_seconds() {
        let now = 1_735_689_600; // 2025-01-01T00:00:00Z
        assert_eq!(parse_time("90d", now), Ok(now - 90 * 86_400));
        assert_eq!(parse_time("2025-01-01", now), Ok(now));
        assert_eq!(parse_time("2024-02-29T12:30:15Z", now), Ok(1_709_209_815));
        assert_eq!(parse_time("1700000000", now), Ok(1_700_000_000));
        for bad in [
            "",
            "soon",
            "-3d",
            "2025-13-01",
            "2025-01-01T25:00:00Z",
            "2025-01-01T10:00:00",
            "2025/01/01",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_of_the_other_mode_is_refused() {
        let e =
            checked_key("sk_live_abc", false, "STRIPE_API_KEY").expect_err("live key in test mode");
        assert_eq!(
            e,
            "STRIPE_API_KEY: a live-mode key does not match STRIPE_LIVEMODE=false"
        );
        let e =
            checked_key("rk_test_abc", true, "STRIPE_API_KEY").expect_err("test key in live mode");
        assert!(e.contains("test-mode key"), "{e}");
        assert!(!e.contains("abc"));
        assert!(checked_key("rk_test_abc", false, "STRIPE_API_KEY").is_ok());
    }

    #[test]
    fn kinds_are_checked_and_kept_in_import_order() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kinds = chosen_kinds(&names(&["subscriptions", "customers"])).expect("kinds");
        let got: Vec<&str> = kinds.iter().map(|k| k.name).collect();
        assert_eq!(got, ["customers", "subscriptions"]);
        assert_eq!(chosen_kinds(&[]).expect("all").len(), KINDS.len());
        assert!(chosen_kinds(&names(&["coupons"])).is_err());
    }
}
