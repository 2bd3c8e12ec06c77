//! The catalogue through the whole pipeline: each product, price and plan fixture changes the
//! product as stated (in memory), and against moto: applied and read back through the route, a
//! redelivery is a duplicate, concurrent events of one product all land.

use crate::helpers::*;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const DIR: &str = "stripe/SYNTH-catalogue";

fn synth(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// Posts a fixture and insists it was applied.
async fn applied(app: &TestApp, name: &str) {
    let (status, json) = app.post_fixture(&synth(name)).await;
    assert_eq!(status, StatusCode::OK, "{name}: {json}");
    assert_eq!(json["state"], "applied", "{name}: {json}");
}

async fn product(app: &TestApp, id: &str) -> Value {
    let (status, json) = app.get(&format!("/products/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{id}: {json}");
    json
}

/// A catalogue change belongs to no user: it leaves no feed message behind.
async fn no_feed_message(app: &TestApp) {
    let pending = app.store.pending_outbox(10).await.expect("outbox");
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test]
async fn product_created_makes_a_product_with_its_tier_and_no_price_yet() {
    let app = spawn_memory(false);
    applied(&app, "product.created__basil.json").await;
    let p = product(&app, "prod_SYNTHpro").await;
    assert_eq!(p["name"], "Pro");
    assert_eq!(p["description"], "Everything in Basic, and more.");
    assert_eq!(
        (&p["active"], &p["archived"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(p["tier"], "pro");
    assert_eq!(p["kind"], Value::Null, "no price known yet: {p}");
    assert_eq!(p["prices"], json!({}));
    let change = &p["changes"][0];
    assert_eq!(change["event_id"], "evt_SYNTH_product_created");
    assert_eq!(
        (&change["before"]["name"], &change["after"]["name"]),
        (&Value::Null, &json!("Pro"))
    );
    no_feed_message(&app).await;
    let (status, _) = app.get("/products/prod_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn product_updated_renames_it_and_the_older_creation_after_it_is_stale() {
    let app = spawn_memory(false);
    applied(&app, "product.updated__basil.json").await;
    let (status, json) = app
        .post_fixture(&synth("product.created__basil.json"))
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("stale")),
        "{json}"
    );
    assert_eq!(product(&app, "prod_SYNTHpro").await["name"], "Pro 2026");
}

#[tokio::test]
async fn product_deleted_archives_it() {
    let app = spawn_memory(false);
    applied(&app, "product.deleted__basil.json").await;
    let p = product(&app, "prod_SYNTHlegacy").await;
    assert_eq!(
        (&p["archived"], &p["active"]),
        (&json!(true), &json!(false)),
        "{p}"
    );
    assert_eq!(p["name"], "Legacy add-on");
}

#[tokio::test]
async fn price_created_makes_a_subscription_product_before_its_product_event() {
    let app = spawn_memory(false);
    applied(&app, "price.created__basil.json").await;
    let p = product(&app, "prod_SYNTHpro").await;
    assert_eq!(
        (&p["name"], &p["active"]),
        (&Value::Null, &Value::Null),
        "{p}"
    );
    assert_eq!(p["kind"], "subscription");
    assert_eq!(
        p["prices"]["price_SYNTHpro_monthly"],
        json!({"id": "price_SYNTHpro_monthly", "active": true, "archived": false,
               "currency": "usd", "unit_amount": 1500, "type": "recurring",
               "interval": "month", "interval_count": 1, "tier": null,
               "nickname": "Pro monthly", "lookup_key": "pro_monthly"})
    );
    // The product's own event arrives later and fills in its fields.
    applied(&app, "product.created__basil.json").await;
    let p = product(&app, "prod_SYNTHpro").await;
    assert_eq!(
        (&p["name"], &p["kind"]),
        (&json!("Pro"), &json!("subscription"))
    );
    assert_eq!(p["changes"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_one_time_price_makes_a_one_time_product_in_minor_units() {
    let app = spawn_memory(false);
    applied(&app, "price.created__one_time_jpy__basil.json").await;
    let p = product(&app, "prod_SYNTHguide").await;
    assert_eq!(p["kind"], "one_time");
    let price = &p["prices"]["price_SYNTHguide_jpy"];
    assert_eq!(
        (&price["currency"], &price["unit_amount"]),
        (&json!("jpy"), &json!(5000))
    );
    assert_eq!(price["type"], "one_time");
    assert!(price.get("interval").is_none(), "{price}");
}

/// `price.updated` and its `plan.updated` twin describe one change: in either order the price
/// ends archived in the Dashboard's sense (`active: false`), the second one stale or applied.
#[tokio::test]
async fn price_and_plan_updated_twins_deactivate_the_price_in_either_order() {
    for twins in [
        ["price.updated__basil.json", "plan.updated__basil.json"],
        ["plan.updated__basil.json", "price.updated__basil.json"],
    ] {
        let app = spawn_memory(false);
        applied(&app, "price.created__basil.json").await;
        for name in twins {
            applied(&app, name).await;
        }
        let p = product(&app, "prod_SYNTHpro").await;
        let price = &p["prices"]["price_SYNTHpro_monthly"];
        assert_eq!(
            (&price["active"], &price["archived"]),
            (&json!(false), &json!(false)),
            "{twins:?}: {price}"
        );
        assert_eq!(
            price["lookup_key"], "pro_monthly",
            "kept from the price: {twins:?}"
        );
        no_feed_message(&app).await;
    }
}

#[tokio::test]
async fn price_and_plan_deleted_twins_archive_the_price_for_good() {
    for twins in [
        ["price.deleted__basil.json", "plan.deleted__basil.json"],
        ["plan.deleted__basil.json", "price.deleted__basil.json"],
    ] {
        let app = spawn_memory(false);
        applied(&app, "price.created__basil.json").await;
        for name in twins {
            applied(&app, name).await;
        }
        let p = product(&app, "prod_SYNTHpro").await;
        let price = &p["prices"]["price_SYNTHpro_yearly"];
        assert_eq!(price["archived"], true, "{twins:?}: {p}");
        assert_eq!(
            (&price["interval"], &price["tier"]),
            (&json!("year"), &json!("pro_annual"))
        );
        // The monthly price is live, so the product stays a subscription product.
        assert_eq!(p["kind"], "subscription");
    }
}

#[tokio::test]
async fn a_2018_plan_created_makes_a_recurring_price() {
    let app = spawn_memory(false);
    applied(&app, "plan.created__2018-02-05.json").await;
    let p = product(&app, "prod_SYNTHgold").await;
    assert_eq!(p["kind"], "subscription");
    assert_eq!(
        p["prices"]["gold_monthly_SYNTH"],
        json!({"id": "gold_monthly_SYNTH", "active": true, "archived": false,
               "currency": "usd", "unit_amount": 2000, "type": "recurring",
               "interval": "month", "interval_count": 1, "tier": "gold",
               "nickname": "Gold monthly", "lookup_key": null})
    );
}

/// A price that names no product cannot be placed: parked with the reason, nothing changed.
#[tokio::test]
async fn a_price_without_its_product_is_parked() {
    let app = spawn_memory(false);
    let body = event(
        "evt_price_no_product",
        "price.created",
        NOW,
        json!({"id": "price_x", "object": "price", "currency": "usd", "type": "one_time"}),
    );
    let (status, json) = app.post(Family::Charge, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("parked")),
        "{json}"
    );
    let (_, record) = app.get("/events/stripe/evt_price_no_product").await;
    assert_eq!(
        record["detail"],
        "price.created: data.object has no usable `product`"
    );
    assert!(app.memory.as_ref().expect("memory").products().is_empty());
}

#[tokio::test]
async fn moto_product_and_price_apply_and_read_back_through_the_route() {
    let app = spawn_moto(false).await;
    applied(&app, "product.created__basil.json").await;
    applied(&app, "price.created__basil.json").await;
    let p = product(&app, "prod_SYNTHpro").await;
    assert_eq!(
        (&p["name"], &p["tier"], &p["kind"]),
        (&json!("Pro"), &json!("pro"), &json!("subscription")),
        "{p}"
    );
    let price = &p["prices"]["price_SYNTHpro_monthly"];
    assert_eq!(
        (&price["unit_amount"], &price["archived"]),
        (&json!(1500), &json!(false)),
        "{p}"
    );
    let changes: Vec<&str> = p["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["event_id"].as_str())
        .collect();
    assert_eq!(
        changes,
        ["evt_SYNTH_price_created", "evt_SYNTH_product_created"]
    );
    let (_, record) = app.get("/events/stripe/evt_SYNTH_price_created").await;
    assert_eq!(
        (&record["state"], &record["family"]),
        (&json!("applied"), &json!("charge"))
    );
    no_feed_message(&app).await;
}

#[tokio::test]
async fn moto_a_catalogue_redelivery_is_a_duplicate() {
    let app = spawn_moto(false).await;
    applied(&app, "price.created__basil.json").await;
    let before = app.dynamo.as_ref().expect("dynamo").meter.take();
    assert!(before.requests > 0);
    let (status, json) = app.post_fixture(&synth("price.created__basil.json")).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{json}"
    );
    assert_eq!(json["detected_by"], "ledger_read");
    // One read, no write; the product keeps one audit entry.
    let redelivery = app.dynamo.as_ref().expect("dynamo").meter.take();
    assert_eq!(redelivery.requests, 1, "{redelivery:?}");
    assert_eq!(redelivery.write_units, 0.0, "{redelivery:?}");
    let p = product(&app, "prod_SYNTHpro").await;
    assert_eq!(p["changes"].as_array().map(Vec::len), Some(1), "{p}");
}

/// Two events of one product read the same (absent) aggregate before either commits: one
/// commit wins, the other's revision check fails, it reads again and applies on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_concurrent_price_events_of_one_product_both_apply() {
    let app = Arc::new(spawn_moto(false).await);
    app.dynamo.as_ref().expect("dynamo").meter.take();
    app.faults.meet_after_load(2);
    let price = |id: &str, amount: i64| {
        json!({"id": id, "object": "price", "active": true, "currency": "eur",
               "product": "prod_race", "type": "one_time", "unit_amount": amount})
    };
    let bodies = [
        event(
            "evt_race_a",
            "price.created",
            NOW,
            price("price_race_a", 100),
        ),
        event(
            "evt_race_b",
            "price.created",
            NOW,
            price("price_race_b", 200),
        ),
    ];
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let app = app.clone();
            tokio::spawn(async move { app.post(Family::Charge, &body).await })
        })
        .collect();
    for task in tasks {
        let (status, json) = task.await.expect("task");
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{json}"
        );
    }
    // Two reads and two commits, then the loser's second read and commit: its first commit
    // was refused by the revision check (nothing was injected to fail).
    let spent = app.dynamo.as_ref().expect("dynamo").meter.take();
    assert_eq!(spent.requests, 6, "{spent:?}");
    let p = product(&app, "prod_race").await;
    let prices: Vec<&String> = p["prices"].as_object().expect("prices").keys().collect();
    assert_eq!(prices, ["price_race_a", "price_race_b"], "{p}");
    assert_eq!(p["changes"].as_array().map(Vec::len), Some(2), "{p}");
}

const MANY: &str = "prod_many";

/// Price `i` of `prod_many`: a recurring price as `price.*` events carry it.
fn many_price(i: usize, active: bool) -> Value {
    json!({"id": format!("price_1QxYzAbCdEfGhIjK{i:04}"), "object": "price", "active": active,
           "billing_scheme": "per_unit", "currency": "usd",
           "lookup_key": format!("pro_monthly_{i:04}"), "metadata": {"tier": "pro"},
           "nickname": "Pro monthly", "product": MANY,
           "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
           "type": "recurring", "unit_amount": 1500, "unit_amount_decimal": "1500"})
}

async fn post_applied(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) {
    let (status, json) = app
        .post(Family::Charge, &event(id, kind, created, object))
        .await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{id}: {json}"
    );
}

/// Every price id of a product, read page by page through the route's cursor.
async fn every_price(app: &TestApp, id: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/products/{id}?limit={limit}&cursor={c}"),
            None => format!("/products/{id}?limit={limit}"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let prices = page["prices"].as_object().expect("prices");
        assert!(prices.len() <= limit, "{path}: {} prices", prices.len());
        ids.extend(prices.keys().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
    }
}

/// Issue 17: the product item held every price, so past about 650 prices (320 announced with
/// their plan twins) each price event made an item over DynamoDB's 400 KB and was parked, and
/// so was every later event of the product. Each price is now an item of its own.
#[tokio::test]
async fn a_product_with_a_thousand_prices_keeps_every_event_applied() {
    let app = spawn_memory(false);
    for i in 0..1000 {
        let id = format!("evt_many_{i:04}");
        post_applied(&app, &id, "price.created", NOW, many_price(i, true)).await;
    }
    // Later events of the product and of its first price still apply.
    post_applied(
        &app,
        "evt_many_off",
        "price.updated",
        NOW + 1,
        many_price(0, false),
    )
    .await;
    let product = json!({"id": MANY, "object": "product", "active": true, "name": "Many",
                         "metadata": {}});
    post_applied(
        &app,
        "evt_many_product",
        "product.created",
        NOW + 1,
        product,
    )
    .await;
    let (ids, pages) = every_price(&app, MANY, 100).await;
    assert_eq!(ids.len(), 1000);
    assert_eq!(pages, 10);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "each price once, in id order");
    let (_, first) = app.get(&format!("/products/{MANY}?limit=1")).await;
    assert_eq!(
        (&first["name"], &first["kind"]),
        (&json!("Many"), &json!("subscription")),
        "{first}"
    );
    assert_eq!(
        first["prices"]["price_1QxYzAbCdEfGhIjK0000"]["active"], false,
        "{first}"
    );
}

/// The same product against DynamoDB. Its 1,000 prices are made in memory and seeded straight
/// into the table (one by one through moto would take minutes); then a new price, an update of
/// an old one and the product's own event apply, and the route pages through every price.
#[tokio::test]
async fn moto_a_product_with_a_thousand_prices_keeps_every_event_applied() {
    let memory = spawn_memory(false);
    for i in 0..1000 {
        let id = format!("evt_many_{i:04}");
        post_applied(&memory, &id, "price.created", NOW, many_price(i, true)).await;
    }
    let [entry] = memory
        .memory
        .as_ref()
        .expect("memory")
        .products()
        .try_into()
        .expect("one");
    let app = spawn_moto(false).await;
    let dynamo = app.dynamo.as_ref().expect("dynamo");
    dynamo.seed_product(&entry).await.expect("seeded");
    dynamo.meter.take();
    post_applied(
        &app,
        "evt_many_new",
        "price.created",
        NOW + 1,
        many_price(1000, true),
    )
    .await;
    post_applied(
        &app,
        "evt_many_off",
        "price.updated",
        NOW + 1,
        many_price(0, false),
    )
    .await;
    let product = json!({"id": MANY, "object": "product", "active": true, "name": "Many",
                         "metadata": {}});
    post_applied(
        &app,
        "evt_many_product",
        "product.created",
        NOW + 1,
        product,
    )
    .await;
    // Three reads and three commits: no event read or wrote more than its own pieces.
    let spent = dynamo.meter.take();
    assert_eq!(spent.requests, 6, "{spent:?}");
    assert!(spent.write_units <= 3.0 * 8.0, "{spent:?}");
    let (ids, pages) = every_price(&app, MANY, 100).await;
    assert_eq!((ids.len(), pages), (1001, 11));
    let (_, first) = app.get(&format!("/products/{MANY}?limit=2")).await;
    assert_eq!(
        (&first["name"], &first["kind"]),
        (&json!("Many"), &json!("subscription")),
        "{first}"
    );
    assert_eq!(
        first["prices"]["price_1QxYzAbCdEfGhIjK0000"]["active"],
        false
    );
    let (status, json) = app.get(&format!("/products/{MANY}?cursor=zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (status, _) = app.get(&format!("/products/{MANY}?limit=101")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Events of two known prices of one product touch only their own price items: concurrent,
/// both commit at the first attempt (two reads, two commits), where one item per product made
/// one of them read and commit again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_concurrent_updates_of_two_known_prices_do_not_contend() {
    let app = Arc::new(spawn_moto(false).await);
    for i in 0..2 {
        let id = format!("evt_known_{i}");
        post_applied(&app, &id, "price.created", NOW, many_price(i, true)).await;
    }
    app.dynamo.as_ref().expect("dynamo").meter.take();
    app.faults.meet_after_load(2);
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let app = app.clone();
            let body = event(
                &format!("evt_known_off_{i}"),
                "price.updated",
                NOW + 1,
                many_price(i, false),
            );
            tokio::spawn(async move { app.post(Family::Charge, &body).await })
        })
        .collect();
    for task in tasks {
        let (status, json) = task.await.expect("task");
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{json}"
        );
    }
    let spent = app.dynamo.as_ref().expect("dynamo").meter.take();
    assert_eq!(spent.requests, 4, "{spent:?}");
    let p = product(&app, MANY).await;
    for i in 0..2 {
        let id = format!("price_1QxYzAbCdEfGhIjK{i:04}");
        assert_eq!(p["prices"][&id]["active"], false, "{p}");
    }
}

/// The `STATE` doc the code before per-price items wrote for a product: its own fields and
/// every price under `prices`, no counts (that layout's JSON, made from the same events).
fn old_layout_doc(entry: &Value) -> Value {
    let mut doc = entry["product"].clone();
    let fields = doc.as_object_mut().expect("record");
    fields.remove("price_counts");
    fields.insert("prices".into(), entry["prices"].clone());
    doc
}

/// Issue 17 upgrade: a product written by the code before per-price items (every price in its
/// `STATE` doc) was refused as corrupt, so every later event of it was parked. It reads as
/// before, and its next events apply (converting it): an update of an old price, a new price,
/// the product's own update. With 3 prices (one transaction) and 120 (price by price).
#[tokio::test]
async fn moto_a_product_of_the_old_layout_keeps_working() {
    for count in [3, 120] {
        let memory = spawn_memory(false);
        for i in 0..count {
            let id = format!("evt_old_{i:04}");
            post_applied(&memory, &id, "price.created", NOW, many_price(i, true)).await;
        }
        let own = json!({"id": MANY, "object": "product", "active": true, "name": "Old",
                         "metadata": {}});
        post_applied(&memory, "evt_old_product", "product.created", NOW, own).await;
        let [entry] = memory
            .memory
            .as_ref()
            .expect("memory")
            .products()
            .try_into()
            .expect("one");
        let entry = serde_json::to_value(&entry).expect("json");
        let app = spawn_moto(false).await;
        let dynamo = app.dynamo.as_ref().expect("dynamo");
        dynamo
            .seed_old_product(
                billing::domain::ids::Provider::STRIPE,
                &billing::domain::ids::ProductId::new(MANY),
                &old_layout_doc(&entry),
                7,
            )
            .await
            .expect("seeded");

        // Read-only route before any event: every old price, paged, and the kind its counts give.
        let (ids, pages) = every_price(&app, MANY, 50).await;
        assert_eq!((ids.len(), pages), (count, count.div_ceil(50)), "{count}");
        let p = product(&app, MANY).await;
        assert_eq!(
            (&p["name"], &p["kind"]),
            (&json!("Old"), &json!("subscription"))
        );

        post_applied(
            &app,
            "evt_old_off",
            "price.updated",
            NOW + 1,
            many_price(0, false),
        )
        .await;
        post_applied(
            &app,
            "evt_old_new",
            "price.created",
            NOW + 1,
            many_price(count, true),
        )
        .await;
        let renamed = json!({"id": MANY, "object": "product", "active": true, "name": "Renamed",
                             "metadata": {}});
        post_applied(&app, "evt_old_renamed", "product.updated", NOW + 1, renamed).await;

        let (ids, _) = every_price(&app, MANY, 50).await;
        assert_eq!(
            ids.len(),
            count + 1,
            "{count}: every old price and the new one"
        );
        let first = "price_1QxYzAbCdEfGhIjK0000";
        let (_, page) = app.get(&format!("/products/{MANY}?limit=2")).await;
        assert_eq!(
            (
                &page["name"],
                &page["kind"],
                &page["prices"][first]["active"]
            ),
            (&json!("Renamed"), &json!("subscription"), &json!(false)),
            "{page}"
        );
        let last = format!("price_1QxYzAbCdEfGhIjK{:04}", count - 1);
        let (_, all) = app.get(&format!("/products/{MANY}?limit=100")).await;
        if count < 100 {
            assert_eq!(all["prices"][&last]["active"], true, "{all}");
        }
        // A redelivery of an event of the old layout's time is a duplicate, not a new price.
        let (status, json) = app
            .post(
                Family::Charge,
                &event(
                    "evt_old_off",
                    "price.updated",
                    NOW + 1,
                    many_price(0, false),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_ne!(json["state"], "parked", "{json}");
    }
}

/// A conversion cut short (some of the old prices already written as items, the old doc still
/// in place) is finished by the next events, and two events converting the same product at
/// once both apply: each price item is put only if absent, the record only at its revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_an_interrupted_and_concurrent_conversion_loses_nothing() {
    const COUNT: usize = 120;
    let memory = spawn_memory(false);
    for i in 0..COUNT {
        let id = format!("evt_old_{i:04}");
        post_applied(&memory, &id, "price.created", NOW, many_price(i, true)).await;
    }
    let [entry] = memory
        .memory
        .as_ref()
        .expect("memory")
        .products()
        .try_into()
        .expect("one");
    let whole = serde_json::to_value(&entry).expect("json");
    let mut cut = entry.clone();
    cut.prices = entry.prices.into_iter().take(40).collect();
    let app = Arc::new(spawn_moto(false).await);
    let dynamo = app.dynamo.as_ref().expect("dynamo");
    dynamo.seed_product(&cut).await.expect("first 40 prices");
    dynamo
        .seed_old_product(
            billing::domain::ids::Provider::STRIPE,
            &billing::domain::ids::ProductId::new(MANY),
            &old_layout_doc(&whole),
            3,
        )
        .await
        .expect("old record");
    let (ids, _) = every_price(&app, MANY, 100).await;
    assert_eq!(ids.len(), COUNT, "the old doc's prices, not the 40 items");

    app.faults.meet_after_load(2);
    let tasks: Vec<_> = [5, 110]
        .into_iter()
        .map(|i| {
            let app = app.clone();
            let body = event(
                &format!("evt_old_off_{i}"),
                "price.updated",
                NOW + 1,
                many_price(i, false),
            );
            tokio::spawn(async move { app.post(Family::Charge, &body).await })
        })
        .collect();
    for task in tasks {
        let (status, json) = task.await.expect("task");
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{json}"
        );
    }
    let (ids, _) = every_price(&app, MANY, 100).await;
    assert_eq!(ids.len(), COUNT);
    let (_, page) = app.get(&format!("/products/{MANY}?limit=100")).await;
    for (i, active) in [(4, true), (5, false), (6, true)] {
        let id = format!("price_1QxYzAbCdEfGhIjK{i:04}");
        assert_eq!(page["prices"][&id]["active"], active, "{id}: {page}");
    }
    let (_, rest) = app
        .get(&format!(
            "/products/{MANY}?limit=100&cursor={}",
            page["next_cursor"].as_str().expect("more")
        ))
        .await;
    assert_eq!(
        rest["prices"]["price_1QxYzAbCdEfGhIjK0110"]["active"], false,
        "{rest}"
    );
    assert_eq!(page["kind"], "subscription");
}
