//! The reconcile run's settings (`BILLING_RECONCILE_*`), read at cold start by the reconcile
//! Lambda ([`Settings::from_env`]).

use crate::domain::ids::Account;
use std::time::Duration;

/// At most this many connected accounts in `BILLING_RECONCILE_STRIPE_ACCOUNTS`: each is a
/// backfill window and a sample per run, inside one function timeout.
pub const MAX_ACCOUNTS: usize = 50;

/// `BILLING_RECONCILE_*`, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How far before the stored mark each run starts again (`…_OVERLAP_SECS`, 600).
    pub overlap_secs: i64,
    /// How far back the first run looks (`…_FIRST_LOOKBACK_SECS`, a day; import covers the rest).
    pub first_lookback_secs: i64,
    /// Subscriptions checked per run (`…_SAMPLE`, 100).
    pub sample: usize,
    /// No new work starts with less than this left (`…_MARGIN_MS`, 30 s).
    pub margin: Duration,
    /// Connected accounts reconciled beside the platform's own (`…_STRIPE_ACCOUNTS`:
    /// comma-separated `acct_…`, at most [`MAX_ACCOUNTS`]; none by default).
    pub accounts: Vec<Account>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            overlap_secs: 600,
            first_lookback_secs: 86_400,
            sample: 100,
            margin: Duration::from_secs(30),
            accounts: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads `BILLING_RECONCILE_OVERLAP_SECS`, `…_FIRST_LOOKBACK_SECS`, `…_SAMPLE`,
    /// `…_MARGIN_MS` and `…_STRIPE_ACCOUNTS` through `get`; an unreadable or out-of-range value
    /// is refused by name.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let d = Self::default();
        let num = |name: &str, min: i64, max: i64, default: i64| -> Result<i64, String> {
            match get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| format!("{name}: expected a number from {min} to {max}")),
            }
        };
        let retention = crate::backfill::RETENTION_DAYS * 86_400;
        let accounts = read_accounts(get("BILLING_RECONCILE_STRIPE_ACCOUNTS").as_deref())?;
        Ok(Self {
            overlap_secs: num("BILLING_RECONCILE_OVERLAP_SECS", 0, 86_400, d.overlap_secs)?,
            first_lookback_secs: num(
                "BILLING_RECONCILE_FIRST_LOOKBACK_SECS",
                60,
                retention - 3_600,
                d.first_lookback_secs,
            )?,
            sample: num("BILLING_RECONCILE_SAMPLE", 0, 10_000, d.sample as i64)? as usize,
            margin: Duration::from_millis(num(
                "BILLING_RECONCILE_MARGIN_MS",
                1_000,
                600_000,
                d.margin.as_millis() as i64,
            )? as u64),
            accounts,
        })
    }
}

/// `acct_…, acct_…` (blank: none): each a Stripe account id, none twice, at most
/// [`MAX_ACCOUNTS`].
fn read_accounts(value: Option<&str>) -> Result<Vec<Account>, String> {
    const NAME: &str = "BILLING_RECONCILE_STRIPE_ACCOUNTS";
    let mut accounts: Vec<Account> = Vec::new();
    for part in value.unwrap_or("").split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let account = Account::parse(part)
            .ok_or_else(|| format!("{NAME}: {part:?} is not a Stripe account id (acct_…)"))?;
        if accounts.contains(&account) {
            return Err(format!("{NAME}: {account} is listed twice"));
        }
        accounts.push(account);
    }
    if accounts.len() > MAX_ACCOUNTS {
        return Err(format!(
            "{NAME}: {} accounts; at most {MAX_ACCOUNTS} are reconciled by one function",
            accounts.len()
        ));
    }
    Ok(accounts)
}

impl Settings {
    /// The list client's bounds inside a Lambda run: one page (its attempts, their backoffs,
    /// and the attempt in flight when the budget ends) takes at most two thirds of `margin`, so
    /// a 429 storm never carries a run past its timeout; the next run resumes from the
    /// checkpoint. (`billing import` and `backfill` on a terminal keep the 30-minute budget.)
    pub fn list_bounds(&self) -> crate::adapters::stripe_list::ListBounds {
        let third = self.margin / 3;
        let bounds = crate::adapters::stripe_list::ListBounds::default();
        crate::adapters::stripe_list::ListBounds {
            connect: bounds.connect.min(third),
            attempt: third,
            budget: third,
            max_backoff: bounds.max_backoff.min(third),
            ..bounds
        }
    }
}

impl Settings {
    /// [`Settings::read`] from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::read(|k| std::env::var(k).ok())
    }
}
