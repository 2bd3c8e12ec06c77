//! Measures what one catalogue event costs in DynamoDB as its product grows: a product with 1,
//! 100 and 1,000 recurring prices (each announced as `price.*` and `plan.*`), then a price
//! update, its plan twin, a new price and a product update through the pipeline. Round trips
//! and capacity units against the emulator at `AWS_ENDPOINT_URL`, as a Markdown table.
//!
//! `cargo run -p billing --example catalogue_cost` (with moto running: scripts/start-moto).

use billing::adapters::capacity::CapacityReading;
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::pipeline::{Outcome, Pipeline};
use billing::ports::{BillingStore, FixedClock};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::telemetry::Metrics;
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: i64 = 1_760_000_000;
const SECRET: &str = "whsec_cost";

fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": id, "object": "event", "type": kind, "created": created,
        "livemode": false, "data": {"object": object}}),
    )
    .expect("json")
}

/// Price `i` of `product` as a `price` or a `plan` object.
fn price(product: &str, i: usize, object: &str, active: bool) -> Value {
    let mut p = json!({"id": format!("price_1QxYzAbCdEfGhIjK{i:04}"), "object": object,
        "active": active, "currency": "usd", "product": product, "nickname": "Pro monthly",
        "metadata": {"tier": "pro"}});
    if object == "plan" {
        p["amount"] = json!(1500);
        p["interval"] = json!("month");
        p["interval_count"] = json!(1);
    } else {
        p["unit_amount"] = json!(1500);
        p["type"] = json!("recurring");
        p["recurring"] = json!({"interval": "month", "interval_count": 1});
        p["lookup_key"] = json!(format!("pro_monthly_{i:04}"));
    }
    p
}

fn service(store: Arc<dyn BillingStore>) -> Pipeline {
    pipeline(
        store,
        Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)])),
        Arc::new(FixedClock::at(NOW)),
        Arc::new(Metrics::Off),
        Settings::default(),
    )
}

async fn post(service: &Pipeline, body: &[u8]) -> String {
    let header = sign(body, &[WebhookSecret::new(SECRET)], NOW);
    match service
        .receive_stripe(Family::Charge, Some(&header), body)
        .await
    {
        Outcome::Recorded { state, .. } => state.as_str().to_owned(),
        Outcome::Duplicate { .. } => "duplicate".into(),
        other => format!("{other:?}"),
    }
}

/// A product of `prices` prices, made in memory (fast) and seeded into `store`'s table.
async fn seed(store: &DynamoBillingStore, product: &str, prices: usize) {
    let memory = Arc::new(InMemoryBillingStore::new());
    let making = service(memory.clone());
    for i in 0..prices {
        for object in ["price", "plan"] {
            let id = format!("evt_seed_{object}_{i:04}");
            let body = event(
                &id,
                &format!("{object}.created"),
                NOW,
                price(product, i, object, true),
            );
            assert_eq!(post(&making, &body).await, "applied", "{id}");
        }
    }
    let [entry] = <[_; 1]>::try_from(memory.products()).expect("one product");
    store.seed_product(&entry).await.expect("seeded");
}

#[tokio::main]
async fn main() {
    let sdk = billing::app::aws_config().await;
    let store = Arc::new(DynamoBillingStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        format!("billing-catalogue-cost-{}", std::process::id()),
        Retention::default(),
    ));
    store.create_table_if_missing().await.expect("table");
    let measured = service(store.clone());
    println!(
        "| prices on the product | delivery | outcome | round trips | read units | write units |"
    );
    println!("|---|---|---|---|---|---|");
    for prices in [1, 100, 1000] {
        let product = format!("prod_cost_{prices}");
        seed(&store, &product, prices).await;
        let deliveries = [
            (
                "price.updated (price only)",
                "price.updated",
                price(&product, 0, "price", false),
            ),
            (
                "plan.updated, its twin (price only)",
                "plan.updated",
                price(&product, 0, "plan", false),
            ),
            (
                "price.created, a new price (price and product record)",
                "price.created",
                price(&product, prices, "price", true),
            ),
            (
                "product.updated (product record only)",
                "product.updated",
                json!({"id": product, "object": "product", "active": true, "name": "Pro",
                       "metadata": {"tier": "pro"}}),
            ),
        ];
        for (n, (name, kind, object)) in deliveries.into_iter().enumerate() {
            store.meter.take();
            let body = event(&format!("evt_{product}_{n}"), kind, NOW + 1, object);
            let outcome = post(&measured, &body).await;
            let CapacityReading {
                requests,
                read_units,
                write_units,
            } = store.meter.take();
            println!(
                "| {prices} | {name} | {outcome} | {requests} | {read_units} | {write_units} |"
            );
        }
    }
}
