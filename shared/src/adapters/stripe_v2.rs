//! Stripe's API read for thin events, as a [`NotificationApi`]: `GET {base}/v2/core/events/{id}`
//! and the related `/v1/…` object, with the configured key (`STRIPE_API_KEY` or `…_ARN`), the
//! pinned `Stripe-Version`, and `Stripe-Context: {context}` for a connected account's event.
//! The HTTP client is `stripe_api::stripe_client` (TLS, no redirect, the base checked), built at
//! the first call (a family's function holds this reader for `billing replay` of a parked
//! notification but never calls it, so its cold start loads no root store for it); each call
//! is bounded by the same [`CallBounds`] as every AWS call: attempts of `attempt`, at most
//! `max_attempts`, all within `operation`. 429, 5xx and no answer are retried, then an error
//! (the delivery answers 503); a 404 is `None`. No error or log line holds the key, a body or
//! the context's value.

use super::stripe_api::{stripe_client, StripeApiKey, STRIPE_VERSION};
use crate::bounds::CallBounds;
use crate::ports::{ApiError, NotificationApi};
use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// The largest answer read: an event or one object is a few KB.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Reads events and objects for thin notifications. Built once at cold start.
pub struct StripeV2Api {
    /// `stripe_client(base, …)`, built once, at the first call.
    client: tokio::sync::OnceCell<(reqwest::Client, Url)>,
    base: String,
    bearer: HeaderValue,
    bounds: CallBounds,
}

impl std::fmt::Debug for StripeV2Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeV2Api")
            .field("base", &self.base)
            .field("key", &"<redacted>")
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// One attempt that produced no answer: worth another (`true`) or not, and why.
struct Failed(bool, String);

impl StripeV2Api {
    /// A reader of `base` (`STRIPE_API_BASE`, checked now) with `key`.
    pub fn new(base: &str, key: &StripeApiKey, bounds: CallBounds) -> Result<Self, ApiError> {
        super::https::parse_base(base)
            .map_err(|why| ApiError(format!("STRIPE_API_BASE: {why}")))?;
        Ok(Self {
            client: tokio::sync::OnceCell::new(),
            base: base.to_owned(),
            bearer: key.bearer().map_err(|e| ApiError(e.to_string()))?,
            bounds,
        })
    }

    /// The HTTP client and the checked base, built at the first call.
    async fn client(&self) -> Result<&(reqwest::Client, Url), ApiError> {
        self.client
            .get_or_try_init(|| async {
                stripe_client(&self.base, self.bounds.connect, self.bounds.attempt)
            })
            .await
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        url: &Url,
        context: Option<&HeaderValue>,
    ) -> Result<Option<serde_json::Value>, Failed> {
        let mut request = client
            .get(url.clone())
            .header(AUTHORIZATION, self.bearer.clone())
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some(context) = context {
            request = request.header("Stripe-Context", context.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failed(true, kind(&e).into()))?;
        let status = response.status();
        let no_retry = response
            .headers()
            .get("stripe-should-retry")
            .is_some_and(|v| v.as_bytes() == b"false");
        match status {
            StatusCode::OK => read_json(response).await.map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failed(
                false,
                format!(
                    "refused ({}): Stripe did not accept the API key (STRIPE_API_KEY or \
                     STRIPE_API_KEY_ARN); thin events need Events: Read and the objects' Read",
                    status.as_u16()
                ),
            )),
            s if (s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()) && !no_retry => {
                Err(Failed(true, format!("status {}", s.as_u16())))
            }
            s => Err(Failed(false, format!("status {}", s.as_u16()))),
        }
    }

    /// Attempts until an answer, a final failure or `max_attempts`, with a short jittered backoff.
    async fn attempts(
        &self,
        url: &Url,
        path: &str,
        context: Option<&HeaderValue>,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let (client, _) = self.client().await?;
        let mut attempt = 1;
        loop {
            match self.attempt(client, url, context).await {
                Ok(answer) => return Ok(answer),
                Err(Failed(true, why)) if attempt < self.bounds.max_attempts => {
                    tracing::debug!(path, attempt, why, "Stripe v2 attempt failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(Failed(_, why)) => {
                    return Err(ApiError(format!("{why} (GET {path}, {attempt} attempts)")))
                }
            }
        }
    }
}

/// Up to 50 ms, 100 ms, 200 ms … at most 0.5 s, full jitter.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap_ms = (50u64 << attempt.saturating_sub(1).min(10)).min(500);
    Duration::from_millis(rand::rng().random_range(0..=cap_ms))
}

/// What kind of failure, in words (the error's text could name the URL).
fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

/// The body as JSON, refusing one over `MAX_BODY_BYTES`.
async fn read_json(mut response: reqwest::Response) -> Result<serde_json::Value, Failed> {
    let too_large = || Failed(false, format!("answer larger than {MAX_BODY_BYTES} bytes"));
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failed(true, kind(&e).into()))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| Failed(false, "the answer is not JSON".into()))
}

#[async_trait]
impl NotificationApi for StripeV2Api {
    async fn get(
        &self,
        path: &str,
        context: Option<&str>,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !path.split('/').all(plain) {
            return Err(ApiError(
                "invalid path: not segments of [A-Za-z0-9_-]".into(),
            ));
        }
        let context = context
            .map(|c| HeaderValue::from_str(c).map_err(|_| ApiError("invalid context".into())))
            .transpose()?;
        let (_, base) = self.client().await?;
        let url = base
            .join(path)
            .map_err(|e| ApiError(format!("invalid path: {e}")))?;
        let attempts = self.attempts(&url, path, context.as_ref());
        match tokio::time::timeout(self.bounds.operation, attempts).await {
            Ok(answer) => answer,
            Err(_) => Err(ApiError(format!(
                "timeout: no answer within {} ms (GET {path})",
                self.bounds.operation.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hides_the_key_and_refuses_odd_paths() {
        let key = StripeApiKey::parse("rk_test_visible_if_leaked").expect("key");
        assert!(StripeV2Api::new("http://api.stripe.com", &key, CallBounds::default()).is_err());
        let api = StripeV2Api::new("http://127.0.0.1:9", &key, CallBounds::default()).expect("api");
        assert!(!format!("{api:?}").contains("visible_if_leaked"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for bad in ["v2/core/events/../x", "v1/subscriptions/sub?x=1", "/v1/x"] {
            let err = runtime.block_on(api.get(bad, None)).expect_err(bad);
            assert!(err.0.starts_with("invalid path"), "{bad}: {}", err.0);
        }
        let err = runtime
            .block_on(api.get("v2/core/events/evt_1", Some("acct_1\nX")))
            .expect_err("context");
        assert_eq!(err.0, "invalid context");
    }

    #[test]
    fn backoff_stays_short() {
        for attempt in 1..=12 {
            assert!(backoff(attempt) <= Duration::from_millis(500));
        }
    }
}
