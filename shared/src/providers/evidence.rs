//! Order evidence from JSON objects: the leaf values of a snapshot and of the previous values
//! its event reports (Stripe's `data.previous_attributes`), as digests per path.
//!
//! Stripe reports, for each changed top-level attribute, its previous value; for a hash such as
//! `metadata` only the changed keys (an added key's previous value is null or ""); for a list
//! the whole previous list. So objects are flattened into paths through nested objects, lists
//! are leaves, and both sides flatten the same way.
//!
//! Catalogue snapshots (products, prices) take their evidence per field of the model's own
//! snapshot instead (`snapshot_evidence`): the object before the update is rebuilt from
//! `previous_attributes` (`before_update`) and translated like the object after it, so a price
//! and its legacy plan object give the same fields.

use crate::digest::json_digest;
use crate::domain::events::OrderEvidence;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Deepest object nesting flattened; below it a value is one leaf.
const MAX_DEPTH: usize = 3;
/// Leaves kept per side; an object with more is summarised by the first ones in key order.
const MAX_LEAVES: usize = 200;

/// The evidence of one snapshot: `object` is the state after the event, `previous` the values
/// before it (absent when the event reports none, e.g. `*.created`).
pub fn order_evidence(object: &Value, previous: Option<&Value>) -> OrderEvidence {
    let mut values = BTreeMap::new();
    flatten(object, "", 0, &mut values);
    let mut before = BTreeMap::new();
    if let Some(p) = previous.filter(|p| p.is_object()) {
        flatten(p, "", 0, &mut before);
    }
    OrderEvidence {
        values,
        previous: before,
    }
}

/// The evidence of a snapshot the model keeps (a catalogue product or price), per field of the
/// snapshot: its values `after` the event and, for an update, the fields whose value `before`
/// it differed. The fields are the model's own, the same for every shape of the object, so
/// `previous` lists exactly the fields the event changed (see `domain::newest`).
pub fn snapshot_evidence<T: Serialize>(after: &T, before: Option<&T>) -> OrderEvidence {
    let digests = |snapshot: &T| -> BTreeMap<String, String> {
        match serde_json::to_value(snapshot) {
            Ok(Value::Object(fields)) => fields
                .iter()
                .map(|(field, value)| (field.clone(), json_digest(value)))
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    let values = digests(after);
    let previous = before
        .map(|b| {
            digests(b)
                .into_iter()
                .filter(|(field, was)| values.get(field) != Some(was))
                .collect()
        })
        .unwrap_or_default();
    OrderEvidence { values, previous }
}

/// The object as it was before an update: its `data.previous_attributes` put back over it.
/// Stripe reports a changed hash (`metadata`) by its changed keys only, a key the hash did not
/// have as `null` or `""` (both put back as absent: translations read an empty string as no
/// value), and anything else whole.
pub fn before_update(object: &Value, previous: &Value) -> Value {
    let (Some(now), Some(was)) = (object.as_object(), previous.as_object()) else {
        return object.clone();
    };
    let mut out = now.clone();
    for (key, old) in was {
        match (now.get(key), old) {
            (Some(current @ Value::Object(_)), Value::Object(_)) if !is_list(current) => {
                out.insert(key.clone(), before_update(current, old));
            }
            (_, Value::Null) => {
                out.remove(key);
            }
            (_, Value::String(s)) if s.is_empty() => {
                out.remove(key);
            }
            _ => {
                out.insert(key.clone(), old.clone());
            }
        }
    }
    Value::Object(out)
}

/// A Stripe list object (`{"object": "list", "data": [...]}`): reported whole, like an array.
fn is_list(value: &Value) -> bool {
    value.get("object").and_then(Value::as_str) == Some("list")
}

fn flatten(value: &Value, path: &str, depth: usize, out: &mut BTreeMap<String, String>) {
    if out.len() >= MAX_LEAVES {
        return;
    }
    match value {
        Value::Object(map) if depth < MAX_DEPTH && !map.is_empty() => {
            for (key, v) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(v, &child, depth + 1, out);
            }
        }
        // Stripe reports a key added to a hash with a previous value of "" (or null).
        Value::String(s) if s.is_empty() && depth > 1 => {
            out.insert(path.to_owned(), OrderEvidence::ABSENT.to_owned());
        }
        other if !path.is_empty() => {
            out.insert(path.to_owned(), json_digest(other));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_later_snapshot_is_the_one_whose_previous_values_match() {
        let s0 = json!({"status": "incomplete", "metadata": {"note": "a"}, "items": {"data": [1]}});
        let s1 = json!({"status": "incomplete", "metadata": {"note": "b"}, "items": {"data": [1]}});
        let s2 = json!({"status": "active", "metadata": {"note": "b"}, "items": {"data": [1]}});
        let e1 = order_evidence(&s1, Some(&json!({"metadata": {"note": "a"}})));
        let e2 = order_evidence(&s2, Some(&json!({"status": "incomplete"})));
        let e0 = order_evidence(&s0, None);
        assert!(e2.follows(&e1) && !e1.follows(&e2));
        assert!(e1.follows(&e0));
        assert!(!e0.follows(&e1), "no previous values prove nothing");
    }

    /// Per-field evidence of whole snapshots: `previous` holds exactly the changed fields, and
    /// the object before an update is the current one with its previous values put back.
    #[test]
    fn snapshot_evidence_lists_exactly_the_changed_fields() {
        let after = json!({"id": "price_1", "active": false, "metadata": {"tier": "pro", "x": "1"},
            "recurring": {"interval": "month"}, "object": "price"});
        let previous = json!({"active": true, "metadata": {"tier": ""}});
        let before = before_update(&after, &previous);
        assert_eq!(
            before,
            json!({"id": "price_1", "active": true, "metadata": {"x": "1"},
                "recurring": {"interval": "month"}, "object": "price"})
        );
        let e = snapshot_evidence(&after, Some(&before));
        assert_eq!(e.values.len(), 5);
        let changed: Vec<&str> = e.previous.keys().map(String::as_str).collect();
        assert_eq!(changed, ["active", "metadata"]);
        assert_eq!(e.previous["active"], json_digest(&json!(true)));
        let created = snapshot_evidence(&after, None);
        assert!(created.previous.is_empty());
        assert_eq!(created.values, e.values);
    }

    #[test]
    fn an_added_metadata_key_matches_its_absence() {
        let before = json!({"metadata": {}});
        let after = order_evidence(
            &json!({"metadata": {"k": "v"}}),
            Some(&json!({"metadata": {"k": ""}})),
        );
        assert!(after.follows(&order_evidence(&before, None)));
        let null_style = order_evidence(
            &json!({"metadata": {"k": "v"}}),
            Some(&json!({"metadata": {"k": null}})),
        );
        assert!(null_style.follows(&order_evidence(&before, None)));
    }
}
