//! The store against DynamoDB (moto): records once, reads back, keeps the retention rules.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::adapters::dynamo::{ledger_from_item, DynamoBillingStore, Retention};
use billing::domain::customer::CustomerBilling;
use billing::domain::ids::{CustomerId, EventId, Provider};
use billing::pipeline::WebhookProvider;
use billing::ports::{BillingStore, Commit, LedgerGuard, LedgerRecord, LedgerState, ParkedBody};
use billing::providers::stripe::Family;
use billing::providers::stripe::StripeProvider;
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
        provider: Provider::STRIPE,
        event_id: EventId::new(id),
        event_type: "invoice.paid".into(),
        created: NOW,
        livemode: false,
        state,
        family: "invoice".into(),
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

/// A lifecycle fixture (customer `cus_life1`) re-stamped as another event: new id, type and
/// `created`, and the object edited by `edit`.
fn restamped(
    file: &str,
    id: &str,
    created: i64,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture(&format!("stripe/lifecycle/{file}.json")))
            .expect("fixture json");
    event["id"] = id.into();
    event["created"] = created.into();
    edit(&mut event["data"]["object"]);
    serde_json::to_vec(&event).expect("json")
}

/// One subscription's event from the lifecycle fixture `file`, about subscription `sub`.
fn subscription_event(file: &str, id: &str, created: i64, sub: &str) -> Vec<u8> {
    restamped(file, id, created, |object| {
        object["id"] = sub.into();
        object["items"]["data"][0]["subscription"] = sub.into();
    })
}

/// Ids shaped like Stripe's (prefix, then 24 characters), numbered.
fn stripe_id(prefix: &str, kind: char, i: i64) -> String {
    format!("{prefix}_1Q{kind}{i:04}LkdIwHu7ixeRlqHVz")
}

/// `CUS#stripe#{customer}` read back through the SDK, as stored.
async fn customer_item(
    table: &str,
    customer: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(&sdk_config())
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(format!("CUS#stripe#{customer}")))
        .key("SK", AttributeValue::S("STATE".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get customer item")
        .item
}

/// Before the fixture's events (checkout on 2025-09-01), one subscription every two days for
/// ~2.7 years, each created, paid and deleted a day later.
const OLD_SUBSCRIPTIONS_START: i64 = 1_756_720_806 - 500 * 2 * 86_400 - 86_400;

/// The aggregate of `cus_life1` after its checkout and 500 such subscriptions, built through
/// the pure domain from the events the provider reads: 1,500 deliveries through moto would take
/// minutes (it copies the table on every transaction). Ids as long as Stripe's, so sizes are real.
fn customer_with_500_ended_subscriptions(app: &TestApp) -> CustomerBilling {
    let provider = StripeProvider::new(
        app.secrets.clone(),
        app.clock.clone(),
        app.metrics.clone(),
        settings(false),
    );
    let mut model = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus_life1"));
    let mut apply = |body: &[u8]| {
        let read = provider.read(body).expect("an event");
        model.apply(&read.meta, &read.event.expect("translated"));
    };
    apply(&fixture(
        "stripe/lifecycle/01_checkout.session.completed.json",
    ));
    for i in 0..500 {
        let sub = stripe_id("sub", 'S', i);
        let created = OLD_SUBSCRIPTIONS_START + i * 2 * 86_400;
        let invoice = stripe_id("in", 'I', i);
        apply(&subscription_event(
            "02_customer.subscription.created",
            &stripe_id("evt", 'C', i),
            created,
            &sub,
        ));
        apply(&restamped(
            "03_invoice.paid",
            &stripe_id("evt", 'P', i),
            created + 1,
            |object| {
                object["id"] = invoice.as_str().into();
                object["created"] = created.into();
                object["parent"]["subscription_details"]["subscription"] = sub.as_str().into();
            },
        ));
        apply(&subscription_event(
            "08_customer.subscription.deleted",
            &stripe_id("evt", 'D', i),
            created + 86_400,
            &sub,
        ));
    }
    model
}

#[tokio::test]
async fn moto_a_customer_with_500_subscriptions_over_the_years_still_fits() {
    let app = spawn_moto(false).await;
    let store = app.dynamo.clone().expect("dynamo");
    let seed = LedgerRecord {
        provider: Provider::STRIPE,
        event_id: EventId::new("evt_seed_500_subscriptions"),
        event_type: "customer.subscription.deleted".into(),
        created: OLD_SUBSCRIPTIONS_START + 999 * 86_400,
        livemode: false,
        state: LedgerState::Applied,
        family: "subscription".into(),
        received_at: NOW,
        customer: Some(CustomerId::new("cus_life1")),
        detail: None,
        parked: None,
    };
    let seeded = Commit {
        customer: Some((customer_with_500_ended_subscriptions(&app), None)),
        ..Commit::ledger_only(seed, LedgerGuard::New)
    };
    store.commit(&seeded).await.expect("seed the aggregate");

    // The 501st subscription, a real signed delivery through the pipeline.
    let (status, json) = app
        .post_fixture("stripe/lifecycle/02_customer.subscription.created.json")
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{json}"
    );
    let item = customer_item(store.table(), "cus_life1")
        .await
        .expect("customer item");
    let size = billing::adapters::dynamo::item_size(&item);
    println!("customer item with 501 subscriptions: {size} bytes");
    assert!(size < 400 * 1024, "{size} bytes");
    let stored: CustomerBilling =
        serde_json::from_str(item["doc"].as_s().expect("doc")).expect("aggregate");
    // Every subscription is still known: whole, as a tombstone, or deleted before the
    // horizon (30 days before the newest deletion: no event of those can still arrive).
    let horizon = stored.horizon.expect("a horizon");
    let before_horizon = (0..500)
        .filter(|i| OLD_SUBSCRIPTIONS_START + i * 2 * 86_400 + 86_400 < horizon)
        .count();
    assert!(stored.tombstones.len() <= 16, "{}", stored.tombstones.len());
    assert_eq!(
        stored.subscriptions.len() + stored.tombstones.len() + before_horizon,
        501,
        "every subscription is still known (whole, as a tombstone, or before the horizon)"
    );
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(
        (
            access["tier"].as_str(),
            access["grants_paid_tier"].as_bool(),
            access["billing_status"].as_str()
        ),
        (Some("pro"), Some(true), Some("DONE")),
        "{access}"
    );
    // A late event about the first, long-ended subscription changes nothing.
    let late = restamped(
        "07_customer.subscription.updated__cancel_at_period_end",
        "evt_late_update_of_the_first",
        OLD_SUBSCRIPTIONS_START + 100,
        |object| object["id"] = stripe_id("sub", 'S', 0).into(),
    );
    let (status, json) = app.post(Family::Subscription, &late).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("stale")),
        "{json}"
    );
}

/// A subscription event whose price names a tier of about 450 KB of text: every item the
/// event would write (aggregate, user, audit, outbox) is over DynamoDB's 400 KB item limit,
/// while the body's gzip stays small enough to park whole.
fn oversized_tier_event(id: &str, customer: &str, user: &str) -> Vec<u8> {
    let mut sub = subscription(&format!("sub_{id}"), customer, "active", Some(user));
    sub["items"]["data"][0]["price"] = serde_json::json!({
        "id": "price_huge",
        "product": "prod_huge",
        "metadata": {"tier": HUGE_TIER_WORD.repeat(450 * 1024 / HUGE_TIER_WORD.len())}
    });
    event(id, "customer.subscription.created", NOW, sub)
}

const HUGE_TIER_WORD: &str = "platinum-";

/// The delivery of an oversized aggregate is parked with a reason that quotes none of it, and
/// nothing but its ledger record is written. Returns the reason.
async fn assert_parked_alone(app: &TestApp, id: &str, user: &str) -> String {
    let body = oversized_tier_event(id, &format!("cus_{id}"), user);
    assert!(body.len() > 450 * 1024);
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    let (_, record) = app.get(&format!("/events/stripe/{id}")).await;
    let detail = record["detail"].as_str().expect("a reason").to_owned();
    println!("parked: {detail}");
    assert!(detail.contains("permanent store error"), "{detail}");
    assert!(!detail.contains("platinum"), "the reason quotes no value");
    let store = app.dynamo.as_ref().expect("dynamo");
    let items = aws_sdk_dynamodb::Client::new(&sdk_config())
        .scan()
        .table_name(store.table())
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    let keys: Vec<&str> = items
        .iter()
        .filter_map(|i| i.get("PK").and_then(|v| v.as_s().ok()))
        .map(String::as_str)
        .collect();
    assert_eq!(keys, [format!("EVT#stripe#{id}")], "only the ledger record");
    let stored = ledger_from_item(&items[0]).expect("ledger record");
    let parked = stored.parked.expect("parked body");
    assert!(parked.gzip.is_some(), "the body is kept for a replay");
    assert_eq!(parked.len, body.len());
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    assert_eq!(access["known"], false, "{access}");
    detail
}

#[tokio::test]
async fn moto_an_aggregate_dynamodb_refuses_parks_the_event() {
    let app = spawn_moto(false).await;
    let reason = assert_parked_alone(&app, "evt_huge", "u_huge").await;
    // Our own check, before anything is sent: the first item of the commit over the limit.
    assert!(reason.contains("customer item is "), "{reason}");
}

#[tokio::test]
async fn moto_dynamodb_s_own_refusal_of_an_oversized_item_parks_the_event() {
    // Without our check the transaction reaches moto, which refuses items over ~400 KB as
    // DynamoDB does (a ValidationException).
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let store = DynamoBillingStore::new(client, unique("billing"), Retention::default())
        .without_size_check();
    store.create_table_if_missing().await.expect("table");
    let app = spawn_on(std::sync::Arc::new(store), false);
    let reason = assert_parked_alone(&app, "evt_huge_sent", "u_huge_sent").await;
    assert!(reason.contains("service ValidationException"), "{reason}");
}
