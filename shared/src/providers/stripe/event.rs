//! Stripe's event envelope, read leniently so that API drift never fails a delivery.
//!
//! Only `id`, `type` and `created` are required. Everything else is optional, unknown fields
//! are ignored, and scalars are accepted in the loose forms real payloads use (the 2018 fixtures
//! carry `"created": "1518896523"` and `"livemode": "true"` as strings).

use serde_json::Value;

/// Why a (validly signed) body could not be read as a Stripe event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("event has no usable `{0}`")]
    Missing(&'static str),
}

/// The parts of an event envelope every code path needs.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
    pub created: i64,
    /// `None` when the payload does not say (then the configured mode is assumed).
    pub livemode: Option<bool>,
    pub api_version: Option<String>,
    /// `data.object`, or `Value::Null` when absent.
    pub object: Value,
    /// `data.previous_attributes` of `*.updated` events: the values the change replaced.
    pub previous: Option<Value>,
    /// The connected account the event happened in (Connect endpoints, and an EventBridge or
    /// thin event of one); `None` for the platform's own.
    pub account: Option<String>,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let mut root: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let id = str_field(&root, "id")
            .filter(|s| !s.is_empty())
            .ok_or(EnvelopeError::Missing("id"))?
            .to_owned();
        let event_type = str_field(&root, "type")
            .filter(|s| !s.is_empty())
            .ok_or(EnvelopeError::Missing("type"))?
            .to_owned();
        let created = root
            .get("created")
            .and_then(as_i64)
            .ok_or(EnvelopeError::Missing("created"))?;
        let livemode = root.get("livemode").and_then(as_bool);
        let api_version = str_field(&root, "api_version").map(str::to_owned);
        // Before API version 2017-05-25 Stripe named it `user_id`; taken only when it is an
        // account id, so nothing else of that name is mistaken for one.
        let account = str_field(&root, "account")
            .filter(|s| !s.is_empty())
            .or_else(|| {
                str_field(&root, "user_id")
                    .filter(|s| crate::domain::ids::Account::parse(s).is_some())
            })
            .map(str::to_owned);
        let data = root.get_mut("data");
        let (object, previous) = match data {
            Some(d) => (
                d.get_mut("object").map(Value::take).unwrap_or(Value::Null),
                d.get_mut("previous_attributes")
                    .map(Value::take)
                    .filter(Value::is_object),
            ),
            None => (Value::Null, None),
        };
        Ok(Self {
            id,
            event_type,
            created,
            livemode,
            api_version,
            object,
            previous,
            account,
        })
    }
}

/// A string field, if present and a string.
pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An id that Stripe sends either as a string or as an expanded object with an `id`.
pub fn id_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// An integer sent as a number or a numeric string.
pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean sent as a bool or as `"true"`/`"false"`.
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An optional integer field (absent, null or malformed all read as `None`).
pub fn i64_field(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(as_i64)
}

/// A metadata value under `key`, if it is a non-empty string.
pub fn metadata(v: &Value, key: &str) -> Option<String> {
    v.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_scalars_are_read() {
        let e = Envelope::parse(br#"{"id":"evt_1","type":"x.y","created":"15","livemode":"true"}"#)
            .expect("parses");
        assert_eq!(e.created, 15);
        assert_eq!(e.livemode, Some(true));
        assert!(e.object.is_null());
    }

    /// API versions before 2017-05-25 named a Connect event's account `user_id` (Stripe's
    /// changelog: "Renames the `user_id` property on Connect-related event objects to
    /// `account`"); such an event is its account's, not the platform's.
    #[test]
    fn a_connect_event_of_an_old_version_names_its_account_user_id() {
        let old = br#"{"id":"evt_1","type":"invoice.paid","created":1,"api_version":"2017-02-14","user_id":"acct_1Old"}"#;
        assert_eq!(
            Envelope::parse(old).expect("parses").account.as_deref(),
            Some("acct_1Old")
        );
        let new =
            br#"{"id":"evt_1","type":"x","created":1,"account":"acct_1New","user_id":"acct_1Old"}"#;
        assert_eq!(
            Envelope::parse(new).expect("parses").account.as_deref(),
            Some("acct_1New")
        );
        // A `user_id` that is not an account id is not taken for one.
        let other = br#"{"id":"evt_1","type":"x","created":1,"user_id":"42"}"#;
        assert_eq!(Envelope::parse(other).expect("parses").account, None);
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_eq!(
            Envelope::parse(br#"{"type":"x","created":1}"#).err(),
            Some(EnvelopeError::Missing("id"))
        );
        assert_eq!(
            Envelope::parse(br#"{"id":"evt","created":1}"#).err(),
            Some(EnvelopeError::Missing("type"))
        );
        assert_eq!(
            Envelope::parse(br#"{"id":"evt","type":"x","created":"soon"}"#).err(),
            Some(EnvelopeError::Missing("created"))
        );
        assert!(matches!(
            Envelope::parse(b"not json"),
            Err(EnvelopeError::NotJson(_))
        ));
    }
}
