//! Stripe's list endpoints, page by page, for long-running catch-up jobs (`billing import`,
//! `billing backfill`, the `reconcile` function): `GET {base}/v1/{path}?limit=100&…` with the
//! same key type, base and pinned `Stripe-Version` as [`super::stripe_api`].
//!
//! Contract:
//! - one page per call ([`StripeList::page`]); the caller keeps only the cursor (the last id),
//!   so memory does not grow with the account;
//! - Stripe's rate limiting never fails a run: a 429 is retried with jittered exponential
//!   backoff for as long as `ListBounds::budget` allows (default 30 minutes per page), so a
//!   429 storm slows the job down; 5xx, 409 and `Stripe-Should-Retry: true` are retried up to
//!   `ListBounds::max_attempts`; `Stripe-Should-Retry: false` and other 4xx are final;
//! - at most `concurrency` requests in flight and at most `max_per_second` started per second
//!   over every caller sharing the client (Stripe allows 25 reads per second in test mode and
//!   100 in live mode, "Rate limits" in Stripe's docs);
//! - no error or log line carries the key or an answer's content;
//! - a Connect platform reads a connected account's lists through the same client
//!   ([`StripeList::page_in`]: the `Stripe-Account` header), under the same bounds.
//!
//! These bounds are far longer than the webhook path's (`CallBounds`, 4 s for a tie's
//! re-read): that path keeps its own client, [`super::stripe_api::StripeApi`].

use super::stripe_api::{
    checked_path, describe, read_json_within, stripe_client, Failure, StripeApiKey, STRIPE_VERSION,
};
use crate::domain::ids::Account;
use crate::ports::ApiError;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// A page holds at most 100 objects; an invoice with its lines is tens of KB.
const MAX_PAGE_BYTES: usize = 32 << 20;

/// Stripe's largest page.
pub const PAGE_LIMIT: u32 = 100;

/// How long and how often a list request is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListBounds {
    /// Setting up a connection (TCP and TLS).
    pub connect: Duration,
    /// One attempt: send and read the whole page.
    pub attempt: Duration,
    /// Every attempt and backoff of one page; 429s are retried until it is spent.
    pub budget: Duration,
    /// Attempts for any other retryable failure (5xx, no answer), the first included.
    pub max_attempts: u32,
    /// The first backoff, doubled per attempt up to `max_backoff`, fully jittered.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ListBounds {
    /// Stripe's own libraries start at 0.5 s; a list page may take seconds on a big account.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(60),
            budget: Duration::from_secs(30 * 60),
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// One page of a list: its objects, oldest or newest first as the endpoint orders them, and
/// whether another page follows (`starting_after` = the last object's id).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub data: Vec<Value>,
    pub has_more: bool,
}

impl ListPage {
    /// The cursor for the next page: the last object's id.
    pub fn last_id(&self) -> Option<&str> {
        self.data.last()?.get("id")?.as_str()
    }
}

/// How many requests, retries and 429s a client has seen (the summary prints them).
#[derive(Debug, Default)]
pub struct ListStats {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retried: AtomicU64,
}

/// Reads Stripe's lists. Shared by every task of a job (`Arc<StripeList>`): the concurrency
/// and rate bounds hold across them.
pub struct StripeList {
    client: reqwest::Client,
    base: Url,
    bearer: HeaderValue,
    bounds: ListBounds,
    permits: Semaphore,
    /// When the next request may start (the rate bound).
    next_start: Mutex<Instant>,
    spacing: Duration,
    page_limit: u32,
    pub stats: ListStats,
}

impl std::fmt::Debug for StripeList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeList")
            .field("base", &self.base.as_str())
            .field("key", &"<redacted>")
            .field("bounds", &self.bounds)
            .finish()
    }
}

impl StripeList {
    /// A client for `base` (see [`stripe_client`]) with `key`; at most `concurrency` requests in
    /// flight (at least 1) and `max_per_second` started per second (at least 1).
    pub fn new(
        base: &str,
        key: &StripeApiKey,
        bounds: ListBounds,
        concurrency: usize,
        max_per_second: u32,
    ) -> Result<Self, ApiError> {
        let (client, base) = stripe_client(base, bounds.connect, bounds.attempt)?;
        Ok(Self {
            client,
            base,
            bearer: key.bearer().map_err(|e| ApiError(e.to_string()))?,
            bounds,
            permits: Semaphore::new(concurrency.max(1)),
            next_start: Mutex::new(Instant::now()),
            spacing: Duration::from_secs(1) / max_per_second.max(1),
            page_limit: PAGE_LIMIT,
            stats: ListStats::default(),
        })
    }

    /// Pages of `limit` objects (1 to 100) instead of Stripe's largest: tests use small pages
    /// to cross page boundaries with few objects.
    pub fn with_page_limit(mut self, limit: u32) -> Self {
        self.page_limit = limit.clamp(1, PAGE_LIMIT);
        self
    }

    /// One page of `path` (e.g. `subscriptions`) with `params` (e.g. `status=all`,
    /// `created[gte]=…`) and `limit=100`, after `starting_after` when given. A 404 is an error
    /// here; [`Self::page_if_exists`] tells it apart.
    pub async fn page(
        &self,
        path: &str,
        params: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        self.page_in(None, path, params, starting_after).await
    }

    /// [`Self::page`] of a connected account's list (`Some`: sent as `Stripe-Account`), or of
    /// the platform's own (`None`).
    pub async fn page_in(
        &self,
        account: Option<Account>,
        path: &str,
        params: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        match self
            .page_if_exists_in(account, path, params, starting_after)
            .await?
        {
            Some(page) => Ok(page),
            None => Err(ApiError(format!("not found (GET {path})"))),
        }
    }

    /// [`Self::page`], with `None` when the endpoint answers 404 (an API this account or a
    /// stand-in does not have).
    pub async fn page_if_exists(
        &self,
        path: &str,
        params: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<Option<ListPage>, ApiError> {
        self.page_if_exists_in(None, path, params, starting_after)
            .await
    }

    /// [`Self::page_if_exists`] in `account` (see [`Self::page_in`]).
    pub async fn page_if_exists_in(
        &self,
        account: Option<Account>,
        path: &str,
        params: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<Option<ListPage>, ApiError> {
        let url = self.url(path, params, starting_after)?;
        let Some(body) = self.get(account, &url, path).await? else {
            return Ok(None);
        };
        let data = match body.get("data") {
            Some(Value::Array(items)) => items.clone(),
            _ => return Err(ApiError(format!("not a list (GET {path})"))),
        };
        let has_more = body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Some(ListPage { data, has_more }))
    }

    fn url(
        &self,
        path: &str,
        params: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<Url, ApiError> {
        let path = checked_path(path)?;
        let mut url = self
            .base
            .join(&format!("v1/{path}"))
            .map_err(|e| ApiError(format!("invalid path: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &self.page_limit.to_string());
            for (k, v) in params {
                query.append_pair(k, v);
            }
            if let Some(after) = starting_after {
                query.append_pair("starting_after", after);
            }
        }
        Ok(url)
    }

    /// Waits for a permit and the next start slot, then tries until an answer, a final failure,
    /// `max_attempts` (429 excepted) or the budget.
    async fn get(
        &self,
        account: Option<Account>,
        url: &Url,
        path: &str,
    ) -> Result<Option<Value>, ApiError> {
        let started = Instant::now();
        let mut attempt: u32 = 1;
        loop {
            let result = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| ApiError("client closed".into()))?;
                self.pace().await;
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.attempt(account, url).await
            };
            let (why, rate_limited) = match result {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Final(why)) => return Err(ApiError(format!("{why} (GET {path})"))),
                Err(Attempt::RateLimited) => ("status 429".to_owned(), true),
                Err(Attempt::Retry(why)) => (why, false),
            };
            let wait = backoff(&self.bounds, attempt);
            let out_of_budget = started.elapsed() + wait > self.bounds.budget;
            if out_of_budget || (!rate_limited && attempt >= self.bounds.max_attempts) {
                return Err(ApiError(format!(
                    "{why} (GET {path}, {attempt} attempts in {} s)",
                    started.elapsed().as_secs()
                )));
            }
            if rate_limited {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(path, attempt, why, "Stripe list request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// Spaces request starts `spacing` apart across every caller.
    async fn pace(&self) {
        let wait = {
            let mut next = self.next_start.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + self.spacing;
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, account: Option<Account>, url: &Url) -> Result<Option<Value>, Attempt> {
        let mut request = self
            .client
            .get(url.clone())
            .header(AUTHORIZATION, self.bearer.clone())
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Attempt::Retry(describe(e)))?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("stripe-should-retry")
            .map(|v| v.as_bytes() == b"true");
        match (status, should_retry) {
            (StatusCode::OK, _) => read_json_within(response, MAX_PAGE_BYTES)
                .await
                .map(Some)
                .map_err(Attempt::from),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Err(Attempt::Final(format!(
                "refused ({}): Stripe did not accept the API key; it needs read access to \
                 this list",
                status.as_u16()
            ))),
            // Stripe's libraries obey the header first: `false` means a retry cannot succeed.
            (_, Some(false)) => Err(Attempt::Final(format!("status {}", status.as_u16()))),
            (StatusCode::TOO_MANY_REQUESTS, _) => Err(Attempt::RateLimited),
            (s, Some(true)) => Err(Attempt::Retry(format!("status {}", s.as_u16()))),
            (s, None) if s.is_server_error() || s == StatusCode::CONFLICT => {
                Err(Attempt::Retry(format!("status {}", s.as_u16())))
            }
            (s, None) => Err(Attempt::Final(format!("status {}", s.as_u16()))),
        }
    }
}

/// One attempt that produced no page.
enum Attempt {
    /// 429: retried for the whole budget.
    RateLimited,
    /// 5xx, 409, no answer: retried up to `max_attempts`.
    Retry(String),
    Final(String),
}

impl From<Failure> for Attempt {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Retry(why) => Attempt::Retry(why),
            Failure::Final(why) => Attempt::Final(why),
        }
    }
}

/// Full jitter over `first × 2^(attempt-1)`, capped: concurrent tasks do not retry in step.
fn backoff(bounds: &ListBounds, attempt: u32) -> Duration {
    use rand::Rng;
    let cap = bounds
        .first_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(bounds.max_backoff);
    let ms = rand::rng().random_range(cap.as_millis() as u64 / 2..=cap.as_millis() as u64);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(concurrency: usize, rps: u32) -> StripeList {
        let key = StripeApiKey::parse("sk_test_abc").expect("key");
        StripeList::new(
            "http://127.0.0.1:9",
            &key,
            ListBounds::default(),
            concurrency,
            rps,
        )
        .expect("client")
    }

    #[test]
    fn the_url_carries_the_limit_params_and_cursor_encoded() {
        let api = client(1, 20);
        let url = api
            .url(
                "subscriptions",
                &[("status", "all"), ("created[gte]", "100")],
                Some("sub_1"),
            )
            .expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/v1/subscriptions?limit=100&status=all&created%5Bgte%5D=100&starting_after=sub_1"
        );
        assert!(api.url("subscriptions/../x", &[], None).is_err());
        assert!(!format!("{api:?}").contains("sk_test_abc"));
    }

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        let bounds = ListBounds::default();
        for attempt in 1..=40 {
            let wait = backoff(&bounds, attempt);
            assert!(wait <= bounds.max_backoff, "{attempt}: {wait:?}");
        }
        assert!(backoff(&bounds, 1) <= bounds.first_backoff);
        assert!(backoff(&bounds, 20) >= bounds.max_backoff / 2);
    }

    #[tokio::test]
    async fn starts_are_spaced_by_the_rate_bound() {
        let api = client(4, 50);
        let started = Instant::now();
        for _ in 0..6 {
            api.pace().await;
        }
        // Six starts at 50 per second: the sixth waits five spacings of 20 ms.
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn the_last_id_is_the_cursor() {
        let page = ListPage {
            data: vec![
                serde_json::json!({"id": "a"}),
                serde_json::json!({"id": "b"}),
            ],
            has_more: true,
        };
        assert_eq!(page.last_id(), Some("b"));
        let empty = ListPage {
            data: vec![],
            has_more: false,
        };
        assert_eq!(empty.last_id(), None);
    }
}
