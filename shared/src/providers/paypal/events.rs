//! PayPal's list of webhook event notifications (`GET /v1/notifications/webhooks-events` with
//! `start_time`/`end_time`, paged by the answer's `next` link) as a backfill
//! [`EventSource`]: every event PayPal recorded for the app in a time range, fed through the
//! same trusted entry as a verified delivery. It needs the REST credentials
//! (`PAYPAL_CLIENT_ID` and its secret, as for `PAYPAL_VERIFICATION=api`).
//!
//! A `next` link is followed only on the API's own origin and list path, so the bearer token
//! is never sent elsewhere; 429 and 5xx are retried with a growing pause.

use super::api::PaypalApi;
use super::transmission::parse_rfc3339;
use crate::backfill::{rfc3339, EventPage, EventSource, Listed};
use crate::domain::ids::Provider;
use crate::error::Error;
use crate::ports::ApiError;
use crate::routing::Endpoint;
use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// The list's path under the API base.
const PATH: &str = "v1/notifications/webhooks-events";
/// Events per page (PayPal's documented maximum is 300).
const PAGE_SIZE: u32 = 300;
/// A page of 300 events of a few KB each.
const MAX_PAGE_BYTES: usize = 8 << 20;
const ATTEMPTS: u32 = 6;

/// PayPal's event list, read with `api`'s token.
pub struct PaypalEvents {
    api: PaypalApi,
    /// The first pause after a 429 or 5xx, doubled each time (tests: a few ms).
    pause: Duration,
}

impl PaypalEvents {
    pub fn new(api: PaypalApi) -> Self {
        Self {
            api,
            pause: Duration::from_millis(500),
        }
    }

    #[must_use]
    pub fn with_pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// The first page's URL. `end_time` is one second past `lte`: PayPal's times may carry
    /// fractions, which `created` drops, and the walk keeps only `[gte, lte]` of the answer.
    fn first(&self, gte: i64, lte: i64) -> Result<Url, ApiError> {
        let mut url = self
            .api
            .base()
            .join(PATH)
            .map_err(|e| ApiError(format!("PAYPAL_API_BASE: {e}")))?;
        url.query_pairs_mut()
            .append_pair("page_size", &PAGE_SIZE.to_string())
            .append_pair("start_time", &rfc3339(gte))
            .append_pair("end_time", &rfc3339(lte + 1));
        Ok(url)
    }

    /// A `next` link, refused unless it is on the API's origin and the list's path.
    fn next(&self, href: &str) -> Result<Url, ApiError> {
        let url = Url::parse(href).map_err(|_| ApiError("PayPal: unreadable next link".into()))?;
        let base = self.api.base();
        let list = base
            .join(PATH)
            .map_err(|e| ApiError(format!("PAYPAL_API_BASE: {e}")))?;
        if url.origin() != base.origin() || url.path() != list.path() {
            return Err(ApiError(
                "PayPal: a next link outside the event list was not followed".into(),
            ));
        }
        Ok(url)
    }

    async fn get(&self, url: Url) -> Result<serde_json::Value, ApiError> {
        let mut pause = self.pause;
        for attempt in 1..=ATTEMPTS {
            let answer = self.api.get_json(url.clone(), MAX_PAGE_BYTES).await;
            let retry = match answer {
                Ok((StatusCode::OK, json)) => return Ok(json),
                Ok((status, _))
                    if status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error()
                        || status == StatusCode::UNAUTHORIZED =>
                {
                    format!("status {}", status.as_u16())
                }
                Ok((status, _)) => {
                    return Err(ApiError(format!(
                        "PayPal event list answered {}",
                        status.as_u16()
                    )))
                }
                Err(Error::Api(e)) => e.0,
                Err(e) => return Err(ApiError(e.to_string())),
            };
            if attempt == ATTEMPTS {
                return Err(ApiError(format!(
                    "PayPal event list: {retry} ({ATTEMPTS} attempts)"
                )));
            }
            tracing::info!(attempt, why = %retry, "PayPal event list: retrying");
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2).min(Duration::from_secs(30));
        }
        Err(ApiError("PayPal event list: no attempt made".into()))
    }
}

/// One listed event: its id, `create_time` and type, and its JSON as the body.
fn listed(event: &serde_json::Value) -> Result<Listed, ApiError> {
    let bad = |what: &str| ApiError(format!("PayPal event list: an event without {what}"));
    let id = event["id"].as_str().ok_or_else(|| bad("an id"))?;
    let created = event["create_time"]
        .as_str()
        .and_then(parse_rfc3339)
        .ok_or_else(|| bad("a create_time"))?;
    let event_type = event["event_type"].as_str().ok_or_else(|| bad("a type"))?;
    Ok(Listed {
        id: id.to_owned(),
        created,
        event_type: event_type.to_owned(),
        body: serde_json::to_vec(event).map_err(|e| ApiError(e.to_string()))?,
    })
}

#[async_trait]
impl EventSource for PaypalEvents {
    fn provider(&self) -> Provider {
        Provider::PAYPAL
    }

    fn endpoint(&self, _event_type: &str) -> Endpoint {
        super::ENDPOINT
    }

    async fn page(&self, gte: i64, lte: i64, next: Option<&str>) -> Result<EventPage, ApiError> {
        let url = match next {
            Some(href) => self.next(href)?,
            None => self.first(gte, lte)?,
        };
        let json = self.get(url).await?;
        let events = json["events"]
            .as_array()
            .map(|a| a.iter().map(listed).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        let next = json["links"].as_array().and_then(|links| {
            links
                .iter()
                .find(|l| l["rel"] == "next")
                .and_then(|l| l["href"].as_str())
                .map(str::to_owned)
        });
        // An empty page with a next link would page forever.
        let next = next.filter(|_| !events.is_empty());
        Ok(EventPage { events, next })
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
