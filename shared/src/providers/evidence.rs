//! Order evidence from JSON objects: the leaf values of a snapshot and of the previous values
//! its event reports (Stripe's `data.previous_attributes`), as digests per path.
//!
//! Stripe reports, for each changed top-level attribute, its previous value; for a hash such as
//! `metadata` only the changed keys (an added key's previous value is null or ""); for a list
//! the whole previous list. So objects are flattened into paths through nested objects, lists
//! are leaves, and both sides flatten the same way.

use crate::digest::json_digest;
use crate::domain::events::OrderEvidence;
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
