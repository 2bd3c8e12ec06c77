//! Stripe Entitlements: `entitlements.active_entitlement_summary.updated` lists every feature a
//! customer is entitled to now (each with the lookup key the application chose for it).

use super::event::{id_field, Envelope};
use super::mapping::TranslateError;
use crate::domain::events::{BillingEvent, EntitlementSet};
use crate::domain::ids::CustomerId;
use crate::providers::evidence::order_evidence;

pub const SUMMARY_UPDATED: &str = "entitlements.active_entitlement_summary.updated";

/// The most lookup keys kept from one event. Stripe's list objects hold at most 100 entries
/// (its largest page), so a longer list is not Stripe's: it is cut here and kept as partial,
/// and a forged or corrupt event cannot grow the customer's item.
pub const MAX_KEYS: usize = 100;

/// The summary as a canonical event: the customer, the lookup keys, and whether the list is
/// whole (Stripe embeds a list object; `has_more` means it was cut short).
pub fn summary(env: &Envelope) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    let missing = |field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    };
    let customer = id_field(obj, "customer").ok_or_else(|| missing("customer"))?;
    let list = obj
        .get("entitlements")
        .filter(|l| l.is_object())
        .ok_or_else(|| missing("entitlements"))?;
    let data = list
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| missing("entitlements.data"))?;
    let lookup_keys = data
        .iter()
        .take(MAX_KEYS)
        .map(|e| {
            e.get("lookup_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| missing("entitlements.data[].lookup_key"))?;
    let has_more = list.get("has_more").and_then(|h| h.as_bool()) == Some(true);
    Ok(BillingEvent::Entitlements {
        customer: CustomerId::new(customer),
        entitlements: EntitlementSet {
            lookup_keys,
            complete: !has_more && data.len() <= MAX_KEYS,
        },
        evidence: order_evidence(obj, env.previous.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fixture() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/stripe/SYNTH-entitlements/",
            "entitlements.active_entitlement_summary.updated.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json")
    }

    fn read(v: &Value) -> Result<BillingEvent, TranslateError> {
        let env = Envelope::parse(&serde_json::to_vec(v).expect("bytes")).expect("envelope");
        summary(&env)
    }

    #[test]
    fn the_summary_lists_every_lookup_key_and_its_order_evidence() {
        let BillingEvent::Entitlements {
            customer,
            entitlements,
            evidence,
        } = read(&fixture()).expect("translates")
        else {
            panic!("not an entitlements event");
        };
        assert_eq!(customer.as_str(), "cus_life1");
        let keys: Vec<&str> = entitlements
            .lookup_keys
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["csv-export", "extra-seats"]);
        assert!(entitlements.complete);
        assert!(!evidence.previous.is_empty(), "previous_attributes kept");
    }

    #[test]
    fn a_list_cut_short_is_marked_incomplete() {
        let mut v = fixture();
        v["data"]["object"]["entitlements"]["has_more"] = json!(true);
        let Ok(BillingEvent::Entitlements { entitlements, .. }) = read(&v) else {
            panic!("translates");
        };
        assert!(!entitlements.complete);
    }

    #[test]
    fn a_summary_without_its_keys_is_an_error_naming_the_field() {
        let mut v = fixture();
        v["data"]["object"]["entitlements"]["data"][1]
            .as_object_mut()
            .expect("entitlement")
            .remove("lookup_key");
        let err = read(&v).expect_err("a key is missing");
        assert_eq!(err.field, "entitlements.data[].lookup_key");
        let mut v = fixture();
        v["data"]["object"]
            .as_object_mut()
            .expect("object")
            .remove("customer");
        assert_eq!(read(&v).expect_err("no customer").field, "customer");
    }
}
