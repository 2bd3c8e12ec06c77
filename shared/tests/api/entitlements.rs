//! Stripe Entitlements through the whole pipeline against moto: the access answer lists the
//! customer's active features beside the tier, whichever of the link and the summary comes first.

use crate::helpers::*;
use http::StatusCode;
use serde_json::json;

const CHECKOUT: &str = "stripe/lifecycle/01_checkout.session.completed.json";
const SUMMARY: &str =
    "stripe/SYNTH-entitlements/entitlements.active_entitlement_summary.updated.json";

#[tokio::test]
async fn moto_the_access_answer_lists_the_features_in_either_order() {
    for order in [[CHECKOUT, SUMMARY], [SUMMARY, CHECKOUT]] {
        let app = spawn_moto(false).await;
        for file in order {
            let (status, json) = app.post_fixture(file).await;
            assert_eq!(
                (status, json["state"].as_str()),
                (StatusCode::OK, Some("applied")),
                "{file}: {json}"
            );
        }
        let (status, access) = app.get("/users/user_42/access").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            access["features"],
            json!(["csv-export", "extra-seats"]),
            "{order:?}: {access}"
        );
        let (status, again) = app.post_fixture(SUMMARY).await;
        assert_eq!(
            (status, again["state"].as_str()),
            (StatusCode::OK, Some("duplicate"))
        );
        let (_, after) = app.get("/users/user_42/access").await;
        assert_eq!(after, access, "a redelivery changes nothing");
    }
}
