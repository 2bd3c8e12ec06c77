//! Stripe's thin events: an event destination that sends a small signed notification
//! (`"object": "v2.core.event"`, `id`, `type`, `created`, `livemode`, `related_object`, `context`)
//! instead of the event. Its endpoint (`/webhooks/stripe/thin`) has its own secrets and the same
//! signature scheme; the notification is then resolved here into the snapshot event the rest of
//! the provider reads (`{"object": "event", …, "data": {"object": …}, "account": context}`):
//!
//! 1. `GET /v2/core/events/{id}` (with `Stripe-Context` when the notification has a `context`);
//! 2. for a `v1.*` type, the object itself: `data.object` if the fetched event carries one, else
//!    `GET {related_object.url}` (a `/v1/…` path only), in the same context;
//! 3. the snapshot keeps the notification's id (so a redelivery is a duplicate), its time and
//!    mode, and names the type without its `v1.` prefix (`v1.customer.subscription.updated` →
//!    `customer.subscription.updated`). Other types (`v2.*`) are not modelled: recorded as ignored
//!    without a fetch.
//!
//! A fetch that fails (no answer, 429, 5xx, a refused key) is transient: 503 and nothing written.
//! A 404 (the event or the object is gone, or the API key belongs to another account) or a
//! notification that cannot be read is parked with its bytes (200), and `billing replay` resolves
//! it again.

use super::event::{as_bool, as_i64, str_field};
use crate::adapters::stripe_api::STRIPE_VERSION;
use crate::domain::events::EventMeta;
use crate::domain::ids::{Account, EventId, Provider};
use crate::error::{Error, Rejection};
use crate::ports::NotificationApi;
use crate::providers::seam::Resolved;
use crate::routing::{Endpoint, Route};
use serde_json::{json, Value};

/// The thin endpoint: its secrets are looked up by it, its deliveries counted under it.
pub const ENDPOINT: Endpoint = Endpoint::new(Provider::STRIPE, "thin");

/// Where Stripe sends the thin notifications (public: in the event destination's settings).
pub const PATH: &str = "/webhooks/stripe/thin";

/// Suffix of the endpoint's secret variables (`STRIPE_WEBHOOK_SECRETS_THIN`, `…_THIN_ARN`).
pub const ENV_SUFFIX: &str = "THIN";

/// The thin endpoint's route.
pub fn route() -> Route {
    Route {
        endpoint: ENDPOINT,
        path: PATH.to_owned(),
    }
}

/// The parts of a thin notification the resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub event_type: String,
    /// Unix seconds (`created` is RFC 3339 in v2; a number is taken too).
    pub created: i64,
    pub livemode: Option<bool>,
    /// The connected account (`acct_…`) the event belongs to, if any.
    pub context: Option<String>,
}

impl Notification {
    /// Reads a thin notification; the error names what is missing, never a value.
    pub fn parse(root: &Value) -> Result<Self, String> {
        if str_field(root, "object") != Some("v2.core.event") {
            return Err("not a thin event notification (object is not v2.core.event)".into());
        }
        let id = str_field(root, "id")
            .filter(|id| plain(id))
            .ok_or("the notification has no usable id")?;
        let event_type = str_field(root, "type")
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or("the notification has no type")?;
        let created = match root.get("created") {
            Some(Value::String(s)) => crate::backfill::parse_time(s).ok(),
            Some(other) => as_i64(other),
            None => None,
        }
        .ok_or("the notification has no usable created")?;
        let context = match root.get("context") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) if context_chars(c) => Some(c.clone()),
            Some(_) => return Err("the notification's context is not an account id".into()),
        };
        Ok(Self {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            created,
            livemode: root.get("livemode").and_then(as_bool),
            context,
        })
    }

    /// The ledger's view of it (a parked notification is recorded under its own id, in its
    /// connected account when it names one: where its snapshot will be recorded on replay).
    pub fn meta(&self, configured: bool) -> EventMeta {
        let account = self.context.as_deref().and_then(Account::parse);
        EventMeta {
            provider: Provider::STRIPE.within(account),
            id: EventId::new(self.id.clone()),
            event_type: self.event_type.clone(),
            created: self.created,
            millis: 0,
            livemode: self.livemode.unwrap_or(configured),
            api_version: None,
        }
    }

    /// The snapshot event type of a `v1.*` thin type; `None` for any other (not modelled).
    pub fn snapshot_type(&self) -> Option<&str> {
        self.event_type
            .strip_prefix("v1.")
            .filter(|t| !t.is_empty())
    }

    /// The v1 snapshot event the provider reads: this notification's id, type (without `v1.`),
    /// time and mode, the object, and the account as `account`.
    pub fn snapshot(&self, object: Value, api_version: Option<&str>) -> Value {
        let mut event = json!({
            "id": self.id,
            "object": "event",
            "type": self.snapshot_type().unwrap_or(&self.event_type),
            "created": self.created,
            "data": {"object": object},
        });
        if let Some(livemode) = self.livemode {
            event["livemode"] = json!(livemode);
        }
        if let Some(version) = api_version {
            event["api_version"] = json!(version);
        }
        if let Some(account) = &self.context {
            event["account"] = json!(account);
        }
        event
    }
}

/// An id segment: letters, digits, `_` and `-` (it goes into a URL path).
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A context: account ids, possibly nested (`acct_1/acct_2`); it goes into a header.
fn context_chars(s: &str) -> bool {
    s.len() <= 255 && s.split('/').all(plain)
}

/// What `body` (verified at the thin endpoint) stands for, fetched through `api`. A snapshot
/// event (`"object": "event"`, e.g. a fetched event parked earlier and replayed) is itself.
pub async fn resolve(
    api: Option<&dyn NotificationApi>,
    body: &[u8],
    configured: bool,
) -> Result<Resolved, Error> {
    let unreadable = |reason: &str| Resolved::Unresolvable {
        meta: None,
        reason: reason.to_owned(),
    };
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return Ok(unreadable("the thin notification is not JSON"));
    };
    if str_field(&root, "object") == Some("event") {
        return Ok(Resolved::Body);
    }
    let notification = match Notification::parse(&root) {
        Ok(n) => n,
        Err(why) => return Ok(unreadable(&why)),
    };
    if let Some(event) = notification.livemode.filter(|m| *m != configured) {
        return Err(Error::Rejected(Rejection::Livemode { event, configured }));
    }
    if notification.snapshot_type().is_none() {
        // Not a v1 object's event: nothing the model reads; recorded as ignored, unfetched.
        return Ok(event_bytes(&notification.snapshot(Value::Null, None)));
    }
    let api = api.ok_or_else(|| {
        Error::Api(crate::ports::ApiError(
            "thin events need STRIPE_API_KEY (or STRIPE_API_KEY_ARN)".into(),
        ))
    })?;
    fetch_snapshot(api, &notification, configured).await
}

/// The event, then (unless it carries it) the related v1 object, as a snapshot event.
async fn fetch_snapshot(
    api: &dyn NotificationApi,
    notification: &Notification,
    configured: bool,
) -> Result<Resolved, Error> {
    let context = notification.context.as_deref();
    let gone = |reason: String| Resolved::Unresolvable {
        meta: Some(notification.meta(configured)),
        reason,
    };
    let path = format!("v2/core/events/{}", notification.id);
    let Some(event) = api.get(&path, context).await? else {
        return Ok(gone(format!(
            "Stripe has no event {} (404; another account's key, or a missing context?)",
            notification.id
        )));
    };
    if str_field(&event, "id") != Some(notification.id.as_str()) {
        return Ok(gone("the fetched event is not the one notified".into()));
    }
    let carried = event
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| str_field(o, "object").is_some());
    if let Some(object) = carried {
        let version = str_field(&event, "api_version");
        return Ok(event_bytes(&notification.snapshot(object.clone(), version)));
    }
    let Some(path) = related_path(&event) else {
        return Ok(gone("the fetched event names no /v1 related object".into()));
    };
    match api.get(&path, context).await? {
        Some(object) if str_field(&object, "object").is_some() => Ok(event_bytes(
            &notification.snapshot(object, Some(STRIPE_VERSION)),
        )),
        Some(_) => Ok(gone("the related object is not a Stripe object".into())),
        None => Ok(gone(format!("Stripe has no {path} (404)"))),
    }
}

/// `related_object.url` as a path relative to the API's root (`v1/subscriptions/sub_1`), only
/// when it is a plain `/v1/…` path (no query, no other host).
fn related_path(event: &Value) -> Option<String> {
    let url = event.get("related_object")?.get("url")?.as_str()?;
    let path = url.strip_prefix("/v1/")?;
    path.split('/').all(plain).then(|| format!("v1/{path}"))
}

fn event_bytes(event: &Value) -> Resolved {
    Resolved::Event(serde_json::to_vec(event).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(extra: Value) -> Value {
        let mut n = json!({
            "id": "evt_test_65R9Ijk8Z4xe4PXsSVe16R9ILTS1Sa4a2ABTTrKgtAt",
            "object": "v2.core.event",
            "type": "v1.customer.subscription.updated",
            "created": "2025-01-01T00:00:00.000Z",
            "livemode": false,
            "related_object": {"id": "sub_1", "type": "subscription", "url": "/v1/subscriptions/sub_1"},
        });
        if let (Some(n), Some(extra)) = (n.as_object_mut(), extra.as_object()) {
            n.extend(extra.clone());
        }
        n
    }

    #[test]
    fn a_notification_reads_its_id_time_mode_and_context() {
        let n = Notification::parse(&notification(json!({"context": "acct_1Nv0FGQ9RKHgCVdK"})))
            .expect("readable");
        assert_eq!(n.created, 1_735_689_600);
        assert_eq!(n.context.as_deref(), Some("acct_1Nv0FGQ9RKHgCVdK"));
        assert_eq!(n.snapshot_type(), Some("customer.subscription.updated"));
        let snapshot = n.snapshot(json!({"id": "sub_1", "object": "subscription"}), None);
        assert_eq!(snapshot["account"], "acct_1Nv0FGQ9RKHgCVdK");
        assert_eq!(snapshot["id"], n.id.as_str());
        assert_eq!(snapshot["type"], "customer.subscription.updated");
        assert_eq!(snapshot["created"], 1_735_689_600);
        let plain = Notification::parse(&notification(json!({"context": null}))).expect("ok");
        assert_eq!(plain.context, None);
        assert!(plain.snapshot(Value::Null, None).get("account").is_none());
    }

    #[test]
    fn what_is_not_a_usable_notification_says_why_without_values() {
        for (extra, why) in [
            (json!({"object": "event"}), "not a thin event"),
            (json!({"id": "evt_1/../x"}), "no usable id"),
            (json!({"created": "yesterday"}), "no usable created"),
            (json!({"context": "acct_1\r\nX-Evil: 1"}), "context"),
            (json!({"type": ""}), "no type"),
        ] {
            let err = Notification::parse(&notification(extra)).expect_err(why);
            assert!(err.contains(why), "{err}");
            assert!(!err.contains("Evil"), "{err}");
        }
    }

    #[test]
    fn only_plain_v1_paths_are_followed() {
        let with = |url: &str| related_path(&json!({"related_object": {"url": url}}));
        assert_eq!(
            with("/v1/subscriptions/sub_1").as_deref(),
            Some("v1/subscriptions/sub_1")
        );
        for bad in [
            "https://evil.example/v1/subscriptions/sub_1",
            "/v2/core/accounts/acct_1",
            "/v1/subscriptions/sub_1?expand[]=x",
            "/v1/../v1/customers",
        ] {
            assert_eq!(with(bad), None, "{bad}");
        }
    }
}
