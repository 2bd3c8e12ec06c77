//! The store against DynamoDB (moto): records once, reads back, keeps the retention rules.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::domain::ids::{EventId, Provider};
use billing::ports::{BillingStore, Commit, LedgerGuard, LedgerRecord, LedgerState, ParkedBody};
use billing::routing::Family;
use http::StatusCode;

#[tokio::test]
async fn moto_redelivery_gets_200_and_changes_nothing() {
    let app = spawn_moto(false).await;
    let meter = app.dynamo.as_ref().expect("dynamo").meter.clone();
    let body = event(
        "evt_redeliver",
        "customer.subscription.created",
        NOW,
        subscription("sub_r", "cus_r", "active", Some("u_r")),
    );
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{json}"
    );
    let (_, before) = app.get("/users/u_r/access").await;
    meter.take();
    for family in [Family::Subscription, Family::Invoice] {
        let (status, json) = app.post(family, &body).await;
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("duplicate")),
            "{json}"
        );
    }
    let cost = meter.take();
    assert_eq!(
        cost.requests, 2,
        "a redelivery costs one round trip: {cost:?}"
    );
    assert_eq!(cost.write_units, 0.0);
    let (_, after) = app.get("/users/u_r/access").await;
    assert_eq!(before, after);
    let (status, record) = app.get("/events/stripe/evt_redeliver").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["state"], "applied");
    assert_eq!(record["type"], "customer.subscription.created");
    let (_, events) = app.get("/users/u_r/events").await;
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    let (status, _) = app.get("/events/stripe/evt_never_seen").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn moto_lifecycle_reads_back_access_and_a_newest_first_audit_trail() {
    let app = spawn_moto(false).await;
    for file in [
        "01_checkout.session.completed",
        "02_customer.subscription.created",
        "03_invoice.paid",
        "04_invoice.payment_failed",
    ] {
        let (status, json) = app
            .post_fixture(&format!("stripe/lifecycle/{file}.json"))
            .await;
        assert_eq!(status, StatusCode::OK, "{file}: {json}");
        assert_eq!(json["state"], "applied", "{file}: {json}");
    }
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(access["billing_status"], "PAST_DUE", "{access}");
    assert_eq!(access["standing"], "overdue");
    assert_eq!(access["grants_paid_tier"], false);
    let (_, trail) = app.get("/users/user_42/events").await;
    let created: Vec<i64> = trail["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["created"].as_i64().expect("created"))
        .collect();
    assert_eq!(created.len(), 4, "{trail}");
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
}

#[tokio::test]
async fn moto_ledger_items_expire_after_retention_parked_ones_after_theirs_and_audit_never() {
    let app = spawn_moto(false).await;
    let store = app.dynamo.as_ref().expect("dynamo");
    let body = event(
        "evt_ttl",
        "customer.subscription.created",
        NOW,
        subscription("sub_t", "cus_t", "active", Some("u_t")),
    );
    app.post(Family::Subscription, &body).await;
    let (status, json) = app
        .post(Family::Subscription, br#"{"id": "evt_parked_ttl""#)
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let items = client
        .scan()
        .table_name(store.table())
        .send()
        .await
        .expect("scan")
        .items;
    let items = items.unwrap_or_default();
    let kind = |i: &std::collections::HashMap<String, AttributeValue>| {
        i.get("kind")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let ttl = |i: &std::collections::HashMap<String, AttributeValue>| {
        i.get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let mut seen = (0, 0, 0);
    for item in &items {
        match (
            kind(item).as_str(),
            item.get("state")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
        ) {
            ("event", Some("parked")) => {
                assert_eq!(
                    ttl(item),
                    Some(NOW + Retention::default().parked_secs),
                    "a parked body (customer data) is not kept forever"
                );
                seen.0 += 1;
            }
            ("event", _) => {
                assert!(
                    ttl(item).expect("ttl") >= NOW + 30 * 86_400,
                    "kept at least 30 days"
                );
                seen.1 += 1;
            }
            ("audit", _) => {
                assert_eq!(ttl(item), None, "the audit trail never expires");
                seen.2 += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, (1, 1, 1), "{items:?}");
}

#[tokio::test]
async fn moto_a_parked_record_expires_after_the_parked_retention_not_the_ledgers() {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let retention = Retention {
        ledger_secs: 30 * 86_400,
        parked_secs: 7 * 86_400,
    };
    let store = DynamoBillingStore::new(client.clone(), unique("billing"), retention);
    store.create_table_if_missing().await.expect("table");
    let record = |id: &str, state: LedgerState| LedgerRecord {
        provider: Provider::Stripe,
        event_id: EventId::new(id),
        event_type: "invoice.paid".into(),
        created: NOW,
        livemode: false,
        state,
        family: Family::Invoice,
        received_at: NOW,
        customer: None,
        detail: None,
        parked: (state == LedgerState::Parked).then(|| ParkedBody {
            gzip: Some(vec![1, 2, 3]),
            sha256: "00".into(),
            len: 3,
            signed_at: NOW,
        }),
    };
    for (id, state) in [
        ("evt_kept_parked", LedgerState::Parked),
        ("evt_kept_ignored", LedgerState::Ignored),
    ] {
        store
            .commit(&Commit::ledger_only(record(id, state), LedgerGuard::New))
            .await
            .expect("commit");
    }
    let expires_at = |id: &str| {
        let client = client.clone();
        let table = store.table().to_owned();
        let pk = format!("EVT#stripe#{id}");
        async move {
            client
                .get_item()
                .table_name(table)
                .key("PK", AttributeValue::S(pk))
                .key("SK", AttributeValue::S("EVT".into()))
                .send()
                .await
                .expect("get")
                .item
                .and_then(|i| i.get("expires_at").and_then(|v| v.as_n().ok()).cloned())
                .and_then(|n| n.parse::<i64>().ok())
        }
    };
    assert_eq!(expires_at("evt_kept_parked").await, Some(NOW + 7 * 86_400));
    assert_eq!(
        expires_at("evt_kept_ignored").await,
        Some(NOW + 30 * 86_400)
    );
}
