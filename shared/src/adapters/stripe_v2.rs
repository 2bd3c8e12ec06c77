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

use super::stripe_api::{stripe_client, ObjectGet, StripeApiKey};
use crate::bounds::CallBounds;
use crate::ports::{ApiError, NotificationApi};
use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::Url;

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
        let (client, base) = self.client().await?;
        let url = base
            .join(path)
            .map_err(|e| ApiError(format!("invalid path: {e}")))?;
        let get = ObjectGet {
            client,
            bearer: &self.bearer,
            bounds: self.bounds,
            scope: context.map(|c| ("Stripe-Context", c)),
            needs: "Events: Read and Read on the objects the events name",
        };
        get.send(&url, path).await
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
}
