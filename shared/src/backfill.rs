//! Backfill: a provider's events of a time range, listed from its API and fed oldest first
//! through the pipeline's trusted entry ([`TrustedSink`]), exactly like deliveries: an event a
//! webhook already delivered is a duplicate, one it missed is recorded once. `billing backfill`
//! and the reconcile function (`reconcile`) both walk with [`Walker`].
//!
//! Memory stays flat whatever the account: Stripe lists newest first, so the range is walked
//! in time windows, oldest window first. A window is listed whole (all its pages) and applied
//! in `created` order; one that holds more than [`WINDOW_CAP`] events is halved and listed
//! again, so at most `WINDOW_CAP` events are held at once (a single second holding more is
//! held whole: `created` has one-second resolution, and Stripe creates far fewer per second
//! than an account has in a day). A window that applied everything moves the high-water mark
//! ([`Walker::reached`]); a walk cut off mid-window resumes at that window's start, and what
//! it applies again is a duplicate.

use crate::domain::ids::{Account, Provider};
use crate::pipeline::Outcome;
use crate::ports::{ApiError, LedgerState};
use crate::providers::stripe::Family;
use crate::routing::Endpoint;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Stripe keeps its events on the Events API for 30 days; an older `--since` would silently
/// miss what it no longer lists, so it is refused.
pub const RETENTION_DAYS: i64 = 30;

/// The most events held at once (bodies of a few KB: a few MB).
pub const WINDOW_CAP: usize = 1_000;

/// A window narrower than this is widened (doubled) after a quiet one, up to the whole range.
const QUIET: usize = WINDOW_CAP / 4;

/// Attempts per event when the pipeline answers a transient failure (a throttled table, a
/// connection reset), with a short backoff between them.
const APPLY_ATTEMPTS: u32 = 4;

/// One event as listed: what ordering and routing need, and the body fed to the pipeline.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub created: i64,
    pub event_type: String,
    pub body: Vec<u8>,
}

/// One page of a window's events, in any order; `next` continues the same listing.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub events: Vec<Listed>,
    pub next: Option<String>,
}

/// A provider's list of events, as pages of the events created in `[gte, lte]` (Unix seconds).
#[async_trait]
pub trait EventSource: Send + Sync {
    fn provider(&self) -> Provider;
    /// The endpoint an event of `event_type` is delivered to.
    fn endpoint(&self, event_type: &str) -> Endpoint;
    async fn page(&self, gte: i64, lte: i64, next: Option<&str>) -> Result<EventPage, ApiError>;
}

/// Where listed events go: the pipeline after its verification step
/// (`Pipeline::receive_trusted`), the body having come from the provider's API over TLS.
#[async_trait]
pub trait TrustedSink: Send + Sync {
    async fn apply(&self, endpoint: Endpoint, body: &[u8]) -> Outcome;
}

/// A time range, inclusive, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since: i64,
    pub until: i64,
}

impl Range {
    /// `since` to `until` (default: now), refused when `since` is beyond Stripe's retention,
    /// after `until`, or in the future. The errors say why in words.
    pub fn checked(since: i64, until: Option<i64>, now: i64) -> Result<Self, String> {
        let oldest = now - RETENTION_DAYS * 86_400;
        if since < oldest {
            return Err(format!(
                "--since is more than {RETENTION_DAYS} days ago: Stripe keeps events on its \
                 Events API for {RETENTION_DAYS} days only, so older ones cannot be listed \
                 (use `billing import` for the current state of older objects)"
            ));
        }
        let until = until.unwrap_or(now).min(now);
        if since > until {
            return Err("--since is after --until (or in the future)".into());
        }
        Ok(Self { since, until })
    }
}

/// A time given as Unix seconds or RFC 3339 (`2026-12-01T00:00:00Z`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    crate::providers::paypal::transmission::parse_rfc3339(text).ok_or_else(|| {
        "expected Unix seconds or an RFC 3339 time (2026-12-01T00:00:00Z)".to_owned()
    })
}

/// Unix seconds as RFC 3339 in UTC, `2026-12-01T00:00:00Z` (PayPal's list takes this form).
pub fn rfc3339(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        crate::emails::render::iso_date(unix),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What happened to the listed events, per event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub applied: u64,
    pub stale: u64,
    pub ignored: u64,
    pub parked: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl Counts {
    /// Recorded now, so no webhook had delivered them: what the `MissedEvents` metric counts.
    pub fn missed(&self) -> u64 {
        self.applied + self.stale + self.ignored + self.parked
    }

    fn add(&mut self, other: &Counts) {
        self.applied += other.applied;
        self.stale += other.stale;
        self.ignored += other.ignored;
        self.parked += other.parked;
        self.duplicate += other.duplicate;
        self.rejected += other.rejected;
    }
}

/// A walk's summary: outcomes by event type, and the events skipped (a type no endpoint
/// subscribes to, so a delivery would never have brought it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub by_type: BTreeMap<String, Counts>,
    pub skipped: u64,
}

impl Summary {
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for counts in self.by_type.values() {
            total.add(counts);
        }
        total
    }

    /// Events listed so far (applied in any way, or skipped).
    pub fn seen(&self) -> u64 {
        let t = self.total();
        t.missed() + t.duplicate + t.rejected + self.skipped
    }

    fn record(&mut self, event_type: &str, outcome: &Outcome) {
        let counts = self.by_type.entry(event_type.to_owned()).or_default();
        match outcome {
            Outcome::Recorded { state, .. } => match state {
                LedgerState::Applied => counts.applied += 1,
                LedgerState::Stale => counts.stale += 1,
                LedgerState::Ignored => counts.ignored += 1,
                LedgerState::Parked => counts.parked += 1,
            },
            Outcome::Duplicate { .. } => counts.duplicate += 1,
            Outcome::Rejected(_) => counts.rejected += 1,
            // Never recorded: the walk stops on it (`Walker::next_window`).
            Outcome::Unavailable(_) => {}
        }
    }

    /// The summary as lines: one per event type, then the totals.
    pub fn lines(&self) -> Vec<String> {
        let line = |name: &str, c: &Counts| {
            format!(
                "{name}: applied {} duplicate {} stale {} ignored {} parked {} rejected {}",
                c.applied, c.duplicate, c.stale, c.ignored, c.parked, c.rejected
            )
        };
        let mut out: Vec<String> = self.by_type.iter().map(|(t, c)| line(t, c)).collect();
        out.push(line("total", &self.total()));
        out.push(format!(
            "missed by the webhooks (recorded now): {}; skipped (no endpoint subscribes): {}",
            self.total().missed(),
            self.skipped
        ));
        out
    }
}

/// The event types walked: a listed event of another type is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFilter {
    types: BTreeSet<String>,
    /// Chosen by the operator (`--types`), not the default set.
    explicit: bool,
}

impl TypeFilter {
    /// Every type a Stripe endpoint subscribes to (`enabled_events`), so a backfill brings only
    /// what a delivery could have brought.
    pub fn stripe_subscribed() -> Self {
        use crate::providers::stripe::enabled_events::enabled_events;
        Self {
            types: Family::ALL
                .iter()
                .flat_map(|f| enabled_events(*f).iter().map(|t| (*t).to_owned()))
                .collect(),
            explicit: false,
        }
    }

    /// `types` (`--types`), each one a Stripe endpoint subscribes to; refused otherwise, naming
    /// the first that is not.
    pub fn stripe_only(types: &[String]) -> Result<Self, String> {
        let all = Self::stripe_subscribed();
        let mut chosen = BTreeSet::new();
        for t in types.iter().flat_map(|t| t.split(',')).map(str::trim) {
            if t.is_empty() {
                continue;
            }
            if !all.types.contains(t) {
                return Err(format!(
                    "--types: `{t}` is not a type any Stripe endpoint subscribes to \
                     (enabled_events)"
                ));
            }
            chosen.insert(t.to_owned());
        }
        if chosen.is_empty() {
            return Err("--types: no type given".into());
        }
        Ok(Self {
            types: chosen,
            explicit: true,
        })
    }

    /// Every type (PayPal: its provider reads or ignores each one itself).
    pub fn any() -> Self {
        Self {
            types: BTreeSet::new(),
            explicit: false,
        }
    }

    pub fn allows(&self, event_type: &str) -> bool {
        self.types.is_empty() || self.types.contains(event_type)
    }

    /// The types, for a list call that filters server-side (Stripe's `types[]`, at most 20).
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// Why a walk stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error("listing events failed: {0}")]
    List(ApiError),
    #[error("event {event_id} was not applied ({why}); everything before it was")]
    Apply { event_id: String, why: String },
}

/// What one step of the walk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A window was applied whole: every event created up to `reached` is in.
    Window { reached: i64 },
    /// The range is done.
    Done,
    /// `stop` said so (the deadline is near): nothing of the current window counts yet.
    Stopped,
}

/// The walk over a range, window by window (module docs).
#[derive(Debug, Clone)]
pub struct Walker {
    next: i64,
    until: i64,
    span: i64,
    cap: usize,
}

impl Walker {
    pub fn new(range: Range) -> Self {
        Self {
            next: range.since,
            until: range.until,
            span: range.until - range.since + 1,
            cap: WINDOW_CAP,
        }
    }

    /// A smaller cap (tests: windows split with few events).
    #[must_use]
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap.max(1);
        self
    }

    /// Every event created up to here has been applied (the high-water mark to store).
    pub fn reached(&self) -> i64 {
        self.next - 1
    }

    /// Lists the next window (halving it while it holds more than the cap) and applies its
    /// events oldest first (same second: by id, so a rerun applies in the same order).
    pub async fn next_window(
        &mut self,
        source: &dyn EventSource,
        sink: &dyn TrustedSink,
        filter: &TypeFilter,
        summary: &mut Summary,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Step, WalkError> {
        if self.next > self.until {
            return Ok(Step::Done);
        }
        let mut events = loop {
            if stop() {
                return Ok(Step::Stopped);
            }
            let end = self.window_end();
            let single = end == self.next;
            match list_window(source, self.next, end, (!single).then_some(self.cap)).await? {
                Some(events) => break events,
                None => self.span = ((end - self.next + 1) / 2).max(1),
            }
        };
        let end = self.window_end();
        events.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let held = events.len();
        for event in events {
            if stop() {
                return Ok(Step::Stopped);
            }
            if !filter.allows(&event.event_type) {
                summary.skipped += 1;
                continue;
            }
            let endpoint = source.endpoint(&event.event_type);
            let outcome = apply_with_retries(sink, endpoint, &event).await?;
            summary.record(&event.event_type, &outcome);
        }
        self.next = end + 1;
        if held < QUIET {
            self.span = self.span.saturating_mul(2);
        }
        Ok(Step::Window { reached: end })
    }

    fn window_end(&self) -> i64 {
        self.next
            .saturating_add(self.span - 1)
            .min(self.until)
            .max(self.next)
    }
}

/// Every event of `[gte, lte]`, or `None` as soon as there are more than `cap`.
async fn list_window(
    source: &dyn EventSource,
    gte: i64,
    lte: i64,
    cap: Option<usize>,
) -> Result<Option<Vec<Listed>>, WalkError> {
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = source
            .page(gte, lte, next.as_deref())
            .await
            .map_err(WalkError::List)?;
        // A listing that answers events outside the window is not trusted to be complete
        // either; those are left to their own window.
        events.extend(
            page.events
                .into_iter()
                .filter(|e| (gte..=lte).contains(&e.created)),
        );
        if cap.is_some_and(|cap| events.len() > cap) {
            return Ok(None);
        }
        match page.next {
            Some(n) if next.as_deref() != Some(n.as_str()) => next = Some(n),
            _ => return Ok(Some(events)),
        }
    }
}

/// Applies one event, retrying a transient failure a few times.
async fn apply_with_retries(
    sink: &dyn TrustedSink,
    endpoint: Endpoint,
    event: &Listed,
) -> Result<Outcome, WalkError> {
    let mut attempt = 1;
    loop {
        match sink.apply(endpoint, &event.body).await {
            Outcome::Unavailable(e) if attempt >= APPLY_ATTEMPTS => {
                return Err(WalkError::Apply {
                    event_id: event.id.clone(),
                    why: e.to_string(),
                })
            }
            Outcome::Unavailable(e) => {
                tracing::warn!(event_id = %event.id, attempt, error = %e, "backfill: event not applied; retrying");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                attempt += 1;
            }
            outcome => return Ok(outcome),
        }
    }
}

/// Walks the whole range (the CLI), calling `progress` after each window.
pub async fn walk_all(
    walker: &mut Walker,
    source: &dyn EventSource,
    sink: &dyn TrustedSink,
    filter: &TypeFilter,
    progress: &mut (dyn FnMut(&Summary, i64) + Send),
) -> Result<Summary, WalkError> {
    let mut summary = Summary::default();
    let never = || false;
    loop {
        match walker
            .next_window(source, sink, filter, &mut summary, &never)
            .await?
        {
            Step::Window { reached } => progress(&summary, reached),
            Step::Done | Step::Stopped => return Ok(summary),
        }
    }
}

/// Stripe's `/v1/events` through the catch-up list client (429s and `Stripe-Should-Retry`
/// handled there), filtered by `created[gte]`/`created[lte]`. `types[]` is sent only for an
/// explicit `--types` of at most 20 (Stripe's limit); otherwise the walk filters here.
///
/// In a connected account ([`StripeEvents::in_account`]) the list is the account's
/// (`Stripe-Account`), each event is recorded in the account's namespace at its family's
/// Connect endpoint, as its Connect webhook delivery would be (so either one is the other's
/// duplicate): an event that does not say its account is given it, and one that names
/// another account is refused (the walk stops; nothing of the page is applied).
pub struct StripeEvents {
    list: std::sync::Arc<crate::adapters::stripe_list::StripeList>,
    types: Vec<String>,
    account: Option<Account>,
}

impl StripeEvents {
    pub fn new(
        list: std::sync::Arc<crate::adapters::stripe_list::StripeList>,
        filter: &TypeFilter,
    ) -> Self {
        let types = if filter.explicit && filter.len() <= 20 {
            filter.types().map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        Self {
            list,
            types,
            account: None,
        }
    }

    /// The same listing in `account` (`None`: the platform's own).
    pub fn in_account(mut self, account: Option<Account>) -> Self {
        self.account = account;
        self
    }
}

/// A connected account's listed event with its `account` said: stamped when missing, refused
/// when it names another account.
fn stamp_account(
    mut event: serde_json::Value,
    account: Account,
) -> Result<serde_json::Value, ApiError> {
    match event.get("account") {
        None | Some(serde_json::Value::Null) => {
            if let Some(fields) = event.as_object_mut() {
                fields.insert("account".into(), account.as_str().into());
            }
            Ok(event)
        }
        Some(said) if said.as_str() == Some(account.as_str()) => Ok(event),
        Some(_) => Err(ApiError(format!(
            "Stripe event list of {account}: an event of another account (id {})",
            event["id"].as_str().unwrap_or("-")
        ))),
    }
}

/// One listed Stripe event: id, `created`, type, and its JSON as the body.
fn stripe_listed(event: &serde_json::Value) -> Result<Listed, ApiError> {
    let bad = |what: &str| ApiError(format!("Stripe event list: an event without {what}"));
    Ok(Listed {
        id: event["id"].as_str().ok_or_else(|| bad("an id"))?.to_owned(),
        created: event["created"].as_i64().ok_or_else(|| bad("created"))?,
        event_type: event["type"]
            .as_str()
            .ok_or_else(|| bad("a type"))?
            .to_owned(),
        body: serde_json::to_vec(event).map_err(|e| ApiError(e.to_string()))?,
    })
}

#[async_trait]
impl EventSource for StripeEvents {
    fn provider(&self) -> Provider {
        Provider::STRIPE.within(self.account)
    }

    fn endpoint(&self, event_type: &str) -> Endpoint {
        crate::providers::stripe::translate::family_of(event_type).endpoint_within(self.account)
    }

    async fn page(&self, gte: i64, lte: i64, next: Option<&str>) -> Result<EventPage, ApiError> {
        let (gte, lte) = (gte.to_string(), lte.to_string());
        let mut params = vec![
            ("created[gte]", gte.as_str()),
            ("created[lte]", lte.as_str()),
        ];
        params.extend(self.types.iter().map(|t| ("types[]", t.as_str())));
        let page = self
            .list
            .page_in(self.account, "events", &params, next)
            .await?;
        let next = if page.has_more {
            page.last_id().map(str::to_owned)
        } else {
            None
        };
        let events = page
            .data
            .into_iter()
            .map(|event| match self.account {
                Some(account) => stamp_account(event, account),
                None => Ok(event),
            })
            .map(|event| stripe_listed(&event?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage { events, next })
    }
}

#[cfg(test)]
#[path = "backfill_tests.rs"]
mod tests;
