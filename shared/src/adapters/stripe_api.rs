//! Stripe's REST API, read-only, as a [`ProviderApi`]: `GET {base}/v1/{path}` with a restricted
//! (or secret) key and a pinned `Stripe-Version`, bounded like every AWS call (`CallBounds`).
//! The pipeline uses it to read a subscription's current state when two same-second events
//! cannot be ordered; any failure is an [`ApiError`] and the delivery goes on without it.
//!
//! We call the API with reqwest instead of async-stripe on purpose: async-stripe's generated
//! types are strict, so an older API version's payload or a minimal one (a field missing, an
//! enum value it does not know) fails to deserialize as a whole (BRIEF.md; async-stripe #347,
//! #499). The JSON goes through our own lenient translator (`translate::subscription_snapshot`),
//! the one that reads webhook payloads of every API version, so an object from the API and one
//! from an event are read alike. One GET does not need the crate's thousands of types.
//!
//! TLS is rustls with the aws-lc-rs provider and the system's root certificates, the same
//! stack the AWS SDK clients use (`default-https-client`): no second crypto provider, no
//! OpenSSL (`adapters::https`, shared with PayPal's clients).

use super::https::{parse_base, tls_config};
use crate::bounds::CallBounds;
use crate::domain::ids::Account;
use crate::ports::{ApiError, ProviderApi};
use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// The API version every request asks for: the newest our fixtures cover
/// (`tests/fixtures/stripe/2025-06-30.basil/`), so answers have shapes the translator knows,
/// whatever version the Stripe account defaults to. `billing stripe-endpoints` creates the
/// webhook endpoints with it too, so events arrive in the same version.
pub const STRIPE_VERSION: &str = "2025-06-30.basil";

/// Where Stripe's API lives (`STRIPE_API_BASE` overrides it for tests).
pub const DEFAULT_BASE: &str = "https://api.stripe.com";

/// The largest answer read: a subscription is a few KB; anything near this is not one.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The first backoff after a 429/5xx or a failed attempt, doubled each time, at most
/// `MAX_BACKOFF`, jittered: as short as the AWS calls' (`app::retry_config`), because the
/// whole call must fit in a delivery's budget. Stripe's own libraries start at 0.5 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A Stripe API key (`rk_…` restricted or `sk_…` secret). `Debug` never shows it, and no
/// error or log line built here contains it.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeApiKey(String);

impl std::fmt::Debug for StripeApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApiKey(<redacted>)")
    }
}

/// Why a key is refused. Never carries the key or a part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a publishable key (pk_…) cannot read subscriptions: use a restricted key (rk_…)")]
    Publishable,
    #[error("expected a restricted key (rk_live_… or rk_test_…) or a secret key (sk_…)")]
    NotAKey,
    #[error("a key may not contain spaces or control characters")]
    Characters,
    #[error(
        "a {} key does not match STRIPE_LIVEMODE={configured}",
        if *key_live { "live-mode" } else { "test-mode" }
    )]
    Mode { key_live: bool, configured: bool },
}

impl StripeApiKey {
    /// Checks a key as given (surrounding whitespace ignored): `rk_` or `sk_`, then `live_` or
    /// `test_`, then the rest in visible ASCII.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let key = raw.trim();
        if key.starts_with("pk_") {
            return Err(KeyError::Publishable);
        }
        let known = ["rk_live_", "rk_test_", "sk_live_", "sk_test_"];
        if !known
            .iter()
            .any(|p| key.len() > p.len() && key.starts_with(p))
        {
            return Err(KeyError::NotAKey);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::Characters);
        }
        Ok(Self(key.to_owned()))
    }

    /// Whether it is a live-mode key.
    pub fn livemode(&self) -> bool {
        self.0[3..].starts_with("live_")
    }

    /// A key of the other mode would read other objects than the events name (a test key
    /// finds no live subscription): refused at start-up instead of failing every tie.
    pub fn check_mode(&self, livemode: bool) -> Result<(), KeyError> {
        if self.livemode() == livemode {
            Ok(())
        } else {
            Err(KeyError::Mode {
                key_live: self.livemode(),
                configured: livemode,
            })
        }
    }

    /// The `Authorization` value, marked sensitive so the HTTP stack never prints it.
    pub(crate) fn bearer(&self) -> Result<HeaderValue, KeyError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| KeyError::Characters)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// `path` must be segments of letters, digits, `_` and `-` (`subscriptions/sub_123`): an
/// id from an event can then never reach another endpoint or add a query.
pub(crate) fn checked_path(path: &str) -> Result<&str, ApiError> {
    let fine = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if path.split('/').all(fine) {
        Ok(path)
    } else {
        Err(ApiError(
            "invalid path: not segments of [A-Za-z0-9_-]".into(),
        ))
    }
}

/// The outcome of one attempt that did not produce an answer.
pub(crate) enum Failure {
    /// Worth another attempt: 429, 5xx, no answer (connect error, timeout).
    Retry(String),
    /// Another attempt would get the same: a refused key, another 4xx, an unreadable body.
    Final(String),
}

/// The kind of a failed request and its causes, without the URL (it names the object only,
/// but the kind is what the log needs first).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads objects from Stripe's API. Built once at cold start; the connection is reused.
pub struct StripeApi {
    client: reqwest::Client,
    base: Url,
    bearer: HeaderValue,
    bounds: CallBounds,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi")
            .field("base", &self.base.as_str())
            .field("key", &"<redacted>")
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// The HTTP client every Stripe API call goes through (a single read and the list walks):
/// `base` checked ([`parse_base`]), TLS with the system's roots, https only unless the base is a
/// local stand-in, no redirect (a redirect would send the key elsewhere).
pub(crate) fn stripe_client(
    base: &str,
    connect: Duration,
    attempt: Duration,
) -> Result<(reqwest::Client, Url), ApiError> {
    let base = parse_base(base).map_err(|why| ApiError(format!("STRIPE_API_BASE: {why}")))?;
    let https = base.scheme() == "https";
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(https)?)
        .https_only(https)
        .connect_timeout(connect)
        .timeout(attempt)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("billing-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError(format!("building the HTTP client: {}", describe(e))))?;
    Ok((client, base))
}

impl StripeApi {
    /// A client for `base` (see [`parse_base`]) with `key`, each call within `bounds`:
    /// `connect` to set up a connection, `attempt` per request (sending it and reading the
    /// whole answer), `operation` for every attempt and backoff, `max_attempts` tries.
    pub fn new(base: &str, key: StripeApiKey, bounds: CallBounds) -> Result<Self, ApiError> {
        let (client, base) = stripe_client(base, bounds.connect, bounds.attempt)?;
        Ok(Self {
            client,
            base,
            bearer: key.bearer().map_err(|e| ApiError(e.to_string()))?,
            bounds,
        })
    }
}

/// One bounded GET of a Stripe object (`StripeApi`'s reads, thin events' `StripeV2Api`): the
/// key and the pinned version, an optional header naming the account the object lives in,
/// attempts of `bounds.attempt` (429 and 5xx retried unless Stripe says not to, after a jittered
/// backoff), at most `bounds.max_attempts`, all within `bounds.operation`.
pub(crate) struct ObjectGet<'a> {
    pub client: &'a reqwest::Client,
    pub bearer: &'a HeaderValue,
    pub bounds: CallBounds,
    /// `Stripe-Account` (a connected account's object) or `Stripe-Context` (v2).
    pub scope: Option<(&'static str, HeaderValue)>,
    /// What the key needs, named when Stripe refuses it (`Subscriptions: Read`).
    pub needs: &'static str,
}

impl ObjectGet<'_> {
    /// The object, `None` for a 404, or why not (never the key, a body or the URL's host).
    pub(crate) async fn send(
        &self,
        url: &Url,
        path: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        match tokio::time::timeout(self.bounds.operation, self.attempts(url, path)).await {
            Ok(answer) => answer,
            Err(_) => Err(ApiError(format!(
                "timeout: no answer within {} ms (GET {path})",
                self.bounds.operation.as_millis()
            ))),
        }
    }

    /// One request: the object, `None` for a 404, or why not.
    async fn attempt(&self, url: &Url) -> Result<Option<serde_json::Value>, Failure> {
        let mut request = self
            .client
            .get(url.clone())
            .header(AUTHORIZATION, self.bearer.clone())
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some((name, value)) = &self.scope {
            // A connected account's object, read with the platform's key.
            request = request.header(*name, value.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Retry(describe(e)))?;
        let status = response.status();
        // Stripe's libraries obey this header: `false` means a retry cannot succeed.
        let no_retry = response
            .headers()
            .get("stripe-should-retry")
            .is_some_and(|v| v.as_bytes() == b"false");
        match status {
            StatusCode::OK => read_json(response).await.map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failure::Final(format!(
                "refused ({}): Stripe did not accept the API key (STRIPE_API_KEY or \
                 STRIPE_API_KEY_ARN); it needs {}",
                status.as_u16(),
                self.needs
            ))),
            s if (s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()) && !no_retry => {
                Err(Failure::Retry(format!("status {}", s.as_u16())))
            }
            s => Err(Failure::Final(format!("status {}", s.as_u16()))),
        }
    }

    /// Attempts until an answer, a final failure or `max_attempts`, with a short jittered
    /// backoff between them; `send` bounds the whole by `operation`.
    async fn attempts(&self, url: &Url, path: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let mut attempt = 1;
        loop {
            match self.attempt(url).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Retry(why)) if attempt < self.bounds.max_attempts => {
                    tracing::debug!(path, attempt, why, "Stripe API attempt failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(Failure::Retry(why)) => {
                    return Err(ApiError(format!("{why} (GET {path}, {attempt} attempts)")))
                }
                Err(Failure::Final(why)) => return Err(ApiError(format!("{why} (GET {path})"))),
            }
        }
    }
}

/// Backoff before attempt `attempt + 1`: up to 50 ms, 100 ms, 200 ms … at most 0.5 s, full
/// jitter so concurrent Lambdas do not retry in step.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let ms = rand::rng().random_range(0..=cap.as_millis() as u64);
    Duration::from_millis(ms)
}

/// The body as JSON, refusing one over `MAX_BODY_BYTES`.
async fn read_json(response: reqwest::Response) -> Result<serde_json::Value, Failure> {
    read_json_within(response, MAX_BODY_BYTES).await
}

/// The body as JSON, refusing one over `max` bytes (a list page is larger than one object).
pub(crate) async fn read_json_within(
    mut response: reqwest::Response,
    max: usize,
) -> Result<serde_json::Value, Failure> {
    let too_large = || Failure::Final(format!("answer larger than {max} bytes"));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Retry(describe(e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| Failure::Final(format!("unreadable answer: {}", json_problem(&e))))
}

/// A JSON error's category in words: its message could quote the content.
fn json_problem(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "io",
        Category::Syntax => "not JSON",
        Category::Data => "unexpected data",
        Category::Eof => "truncated",
    }
}

#[async_trait]
impl ProviderApi for StripeApi {
    async fn retrieve(
        &self,
        account: Option<Account>,
        path: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let path = checked_path(path)?;
        let url = self
            .base
            .join(&format!("v1/{path}"))
            .map_err(|e| ApiError(format!("invalid path: {e}")))?;
        let scope = account
            .map(|a| HeaderValue::from_str(a.as_str()).map(|v| ("Stripe-Account", v)))
            .transpose()
            .map_err(|_| ApiError("invalid account".into()))?;
        let get = ObjectGet {
            client: &self.client,
            bearer: &self.bearer,
            bounds: self.bounds,
            scope,
            needs: "Subscriptions: Read",
        };
        get.send(&url, path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_by_kind_and_never_shown() {
        for good in [
            "rk_live_abc",
            "rk_test_abc",
            "sk_live_abc",
            " sk_test_abc\n",
        ] {
            let key = StripeApiKey::parse(good).expect(good);
            assert_eq!(format!("{key:?}"), "StripeApiKey(<redacted>)");
        }
        assert_eq!(
            StripeApiKey::parse("pk_live_abc"),
            Err(KeyError::Publishable)
        );
        for bad in ["whsec_abc", "sk_abc", "rk_test_", "", "abc"] {
            assert_eq!(StripeApiKey::parse(bad), Err(KeyError::NotAKey), "{bad}");
        }
        assert_eq!(
            StripeApiKey::parse("rk_test_a b"),
            Err(KeyError::Characters)
        );
    }

    #[test]
    fn a_key_of_the_other_mode_is_refused() {
        let live = StripeApiKey::parse("rk_live_abc").expect("key");
        let test = StripeApiKey::parse("sk_test_abc").expect("key");
        assert!(live.check_mode(true).is_ok() && test.check_mode(false).is_ok());
        let e = live.check_mode(false).expect_err("live key, test mode");
        assert_eq!(
            e.to_string(),
            "a live-mode key does not match STRIPE_LIVEMODE=false"
        );
        assert!(test.check_mode(true).is_err());
    }

    #[test]
    fn paths_are_plain_segments() {
        assert!(checked_path("subscriptions/sub_1Abc-2").is_ok());
        for bad in [
            "subscriptions/../customers",
            "subscriptions/sub?expand=x",
            "subscriptions//x",
            "/subscriptions/x",
            "subscriptions/sub 1",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_stays_short() {
        for attempt in 1..=10 {
            assert!(backoff(attempt) <= MAX_BACKOFF);
        }
    }

    /// The https client builds with the aws-lc-rs provider passed in and the system's roots:
    /// without them reqwest would panic at `build` ("No provider set"). No request is made.
    #[test]
    fn an_https_client_builds_with_aws_lc_rs_and_the_system_roots() {
        let key = StripeApiKey::parse("rk_test_abc").expect("key");
        let started = std::time::Instant::now();
        let api = StripeApi::new(DEFAULT_BASE, key, CallBounds::default()).expect("client");
        println!("https client built in {} ms", started.elapsed().as_millis());
        assert_eq!(api.base.as_str(), "https://api.stripe.com/");
        assert_eq!(
            api.base
                .join("v1/subscriptions/sub_1")
                .expect("url")
                .as_str(),
            "https://api.stripe.com/v1/subscriptions/sub_1"
        );
        let proxied = parse_base("https://proxy.example/stripe").expect("base");
        assert_eq!(
            proxied
                .join("v1/subscriptions/sub_1")
                .expect("url")
                .as_str(),
            "https://proxy.example/stripe/v1/subscriptions/sub_1"
        );
    }

    #[test]
    fn the_client_debug_hides_the_key() {
        let key = StripeApiKey::parse("rk_test_visible_if_leaked").expect("key");
        let api = StripeApi::new("http://127.0.0.1:9", key, CallBounds::default()).expect("api");
        assert!(!format!("{api:?}").contains("visible_if_leaked"));
    }
}
