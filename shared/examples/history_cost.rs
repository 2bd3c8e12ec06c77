//! What one event costs as a customer's history grows: for a user whose customer already has
//! N one-time purchases, one more purchase and then a `customer.subscription.deleted`, against
//! the emulator at `AWS_ENDPOINT_URL`. Then the whole history of issue 17: N renewals of the
//! live subscription, N more subscriptions paid once and ended, N purchases of which a third
//! refunded; one more renewal, a refund and the deletion. Prints Markdown tables for
//! BENCHMARKS.md: the size of the customer item, the user item and the feed message, and the
//! write units of each event.
//!
//! `cargo run --release -p billing --example history_cost` (with moto running:
//! scripts/start-moto). The history is applied to the aggregate in memory (moto copies the
//! table on every transaction, so 5,000 events through it would take hours) and written to
//! DynamoDB as the pipeline writes it, in one commit; the measured events then go through
//! DynamoDB. The client has no operation timeout (the product's is 4 s): moto copies the whole
//! table on every transaction, which at 10,000 items takes longer than DynamoDB ever would.

use billing::adapters::dynamo::{DynamoBillingStore, Retention, MAX_ITEM_BYTES};
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::domain::access::{customer_access, TierPolicy};
use billing::domain::customer::CustomerBilling;
use billing::domain::events::{BillingEvent, EventMeta, Purchase, PurchaseKind};
use billing::domain::ids::{CustomerId, EventId, ProductId, Provider, UserId};
use billing::feed::{update_user, SourceAccess};
use billing::pipeline::{Outcome, Pipeline};
use billing::ports::{
    source_key, BillingStore, Commit, FixedClock, LedgerGuard, LedgerRecord, LedgerState,
    PurchaseWrite, UserAccessDoc,
};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::translate::translate;
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::telemetry::Metrics;
use serde_json::json;
use std::sync::Arc;

const NOW: i64 = 1_760_000_000;
const DAY: i64 = 86_400;
const SECRET: &str = "whsec_history";

fn event(id: &str, kind: &str, created: i64, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": id, "object": "event", "type": kind, "created": created,
        "livemode": false, "data": {"object": object}}),
    )
    .expect("json")
}

/// Purchase `i`: a paid payment-mode session with Stripe-length ids.
fn purchase(i: usize) -> Vec<u8> {
    let at = NOW - 100_000 + i as i64;
    event(
        &format!("evt_p{i}"),
        "checkout.session.completed",
        at,
        json!({"id": format!("cs_live_a1{i:0>56}"), "object": "checkout.session",
            "mode": "payment", "customer": "cus_history", "client_reference_id": "user_history",
            "payment_intent": format!("pi_3Kl36gJDPojXS6LN{i:0>8}"), "amount_total": 1900,
            "currency": "eur", "payment_status": "paid", "created": at,
            "metadata": {"product_id": format!("prod_book_{}", i % 7)}}),
    )
}

fn subscription(status: &str) -> serde_json::Value {
    json!({"id": "sub_history", "object": "subscription", "customer": "cus_history",
        "status": status, "cancel_at_period_end": false, "metadata": {"user_id": "user_history"},
        "items": {"data": [{"current_period_start": NOW - 200_000,
            "current_period_end": NOW + 2_592_000,
            "price": {"id": "price_pro", "product": "prod_pro"}}]}})
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

async fn deliver(service: &Pipeline, family: Family, body: &[u8]) -> String {
    let header = sign(body, &[WebhookSecret::new(SECRET)], NOW);
    match service.receive_stripe(family, Some(&header), body).await {
        Outcome::Recorded { state, .. } => state.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

/// The subscription (through the pipeline, in memory) and `n` purchases (applied to the
/// aggregate directly, which is what the pipeline would do one event at a time, and fast),
/// with `m` renewals, ended subscriptions and a third of `m` refunds (see [`billed`]).
async fn history(n: usize, m: usize) -> (CustomerBilling, UserAccessDoc) {
    let memory = Arc::new(InMemoryBillingStore::new());
    let svc = service(memory.clone());
    let created = event(
        "evt_s0",
        "customer.subscription.created",
        NOW - 200_000,
        subscription("active"),
    );
    deliver(&svc, Family::Subscription, &created).await;
    let mut customer = memory.customers().pop().expect("the customer");
    let user = UserId::new("user_history");
    for i in 0..n {
        let at = NOW - 100_000 + i as i64;
        let meta = EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new(format!("evt_p{i}")),
            event_type: "checkout.session.completed".into(),
            created: at,
            millis: 0,
            livemode: false,
            api_version: None,
        };
        let bought = Purchase {
            session: format!("cs_live_a1{i:0>56}"),
            kind: PurchaseKind::Checkout,
            payment_intent: Some(format!("pi_3Kl36gJDPojXS6LN{i:0>8}")),
            product: Some(ProductId::new(format!("prod_book_{}", i % 7))),
            amount_total: Some(1900),
            currency: Some("eur".into()),
            paid: true,
            gift: None,
            created: Some(at),
            paid_by: Default::default(),
        };
        let event = BillingEvent::CheckoutCompleted {
            customer: customer.customer.clone(),
            subscription: None,
            user: Some(user.clone()),
            purchase: Some(bought),
            email: None,
        };
        customer.apply(&meta, &event);
    }
    billed(&mut customer, m);
    let tiers = TierPolicy::default();
    let given = SourceAccess {
        subscriptions: customer_access(&customer, &tiers),
        features: customer.features(),
        purchases: customer.bought.summary(),
    };
    let doc = memory.user(&user).expect("the user");
    let source = source_key(Provider::STRIPE, &customer.customer);
    let (doc, _) = update_user(doc, &source, Some(given), &tiers, NOW);
    (customer, doc)
}

/// Applies one event body to the aggregate directly (what the pipeline does with it).
fn apply_body(customer: &mut CustomerBilling, body: &[u8]) {
    let envelope = Envelope::parse(body).expect("an event");
    let event = translate(&envelope, &Settings::default().mapping).expect("translated");
    let meta = EventMeta {
        provider: Provider::STRIPE,
        id: EventId::new(envelope.id.clone()),
        event_type: envelope.event_type.clone(),
        created: envelope.created,
        millis: 0,
        livemode: false,
        api_version: None,
    };
    customer.apply(&meta, &event);
}

/// A paid invoice of `sub` billing one day from `start` (the lifecycle fixture's, renamed).
fn invoice(id: &str, sub: &str, start: i64) -> Vec<u8> {
    let fixture = include_str!("../tests/fixtures/stripe/lifecycle/03_invoice.paid.json");
    let event: serde_json::Value = serde_json::from_str(fixture).expect("json");
    let mut object = event["data"]["object"].clone();
    object["id"] = json!(id);
    object["customer"] = json!("cus_history");
    object["created"] = json!(start);
    object["billing_reason"] = json!("subscription_cycle");
    object["parent"]["subscription_details"]["subscription"] = json!(sub);
    let line = &mut object["lines"]["data"][0];
    line["invoice"] = json!(id);
    line["parent"]["subscription_item_details"]["subscription"] = json!(sub);
    line["period"] = json!({"start": start, "end": start + DAY});
    self::event(&format!("evt_{id}"), "invoice.paid", start + 7, object)
}

/// A `charge.refunded` of purchase `i`'s charge (in full).
fn refund(i: usize, at: i64) -> Vec<u8> {
    event(
        &format!("evt_r{i}"),
        "charge.refunded",
        at,
        json!({"id": format!("ch_3Kl36gJDPojXS6LN{i:0>8}"), "object": "charge",
            "customer": "cus_history", "payment_intent": format!("pi_3Kl36gJDPojXS6LN{i:0>8}"),
            "amount": 1900, "amount_refunded": 1900, "refunded": true, "status": "succeeded"}),
    )
}

/// The rest of a long billing history: `m` daily renewals of the live subscription, `m` other
/// subscriptions each paid once and ended, and refunds of the first third of `m` purchases.
fn billed(customer: &mut CustomerBilling, m: usize) {
    let start = NOW - 2_200 * DAY;
    for i in 0..m {
        let at = start + i as i64 * DAY;
        apply_body(customer, &invoice(&format!("in_r{i}"), "sub_history", at));
        let sub = format!("sub_history_ended{i}");
        let mut object = subscription("active");
        object["id"] = json!(sub);
        let created = event(
            &format!("evt_c{i}"),
            "customer.subscription.created",
            at,
            object.clone(),
        );
        apply_body(customer, &created);
        apply_body(customer, &invoice(&format!("in_e{i}"), &sub, at + 1));
        object["status"] = json!("canceled");
        let gone = event(
            &format!("evt_d{i}"),
            "customer.subscription.deleted",
            at + 2,
            object,
        );
        apply_body(customer, &gone);
    }
    for i in 0..m / 3 {
        apply_body(customer, &refund(i, NOW - 50_000 + i as i64));
    }
}

/// Writes the customer and user items to DynamoDB, as one commit would, and the purchases as
/// items of their own (by BatchWriteItem: as many commits would have written them).
async fn seed(
    mut customer: CustomerBilling,
    user: UserAccessDoc,
    store: &DynamoBillingStore,
) -> Result<(), String> {
    let ledger = LedgerRecord {
        provider: Provider::STRIPE,
        event_id: EventId::new("evt_seed"),
        event_type: "seed".into(),
        created: NOW,
        livemode: false,
        state: LedgerState::Applied,
        family: "checkout".into(),
        received_at: NOW,
        customer: Some(CustomerId::new("cus_history")),
        detail: None,
        parked: None,
    };
    let purchases: Vec<PurchaseWrite> = std::mem::take(&mut customer.purchases)
        .into_values()
        .map(|p| PurchaseWrite {
            intent: p.payment_intent.clone(),
            purchase: p,
            rev: None,
        })
        .collect();
    let id = customer.customer.clone();
    let mut commit = Commit::ledger_only(ledger, LedgerGuard::New);
    commit.customer = Some((customer, None));
    commit.users = vec![(user, None)];
    store.commit(&commit).await.map_err(|e| e.to_string())?;
    store
        .seed_purchases(Provider::STRIPE, &id, &purchases)
        .await
        .map_err(|e| e.to_string())
}

/// Sizes of the customer item, the user item and the newest feed message, in bytes (their
/// JSON documents, which are nearly all of each item).
async fn sizes(store: &DynamoBillingStore) -> (usize, usize, usize) {
    let len = |v: Result<String, serde_json::Error>| v.map_or(0, |s| s.len());
    let customer = store
        .customer(Provider::STRIPE, &CustomerId::new("cus_history"))
        .await
        .ok()
        .flatten()
        .map_or(0, |c| len(serde_json::to_string(&c.value)));
    let user = store
        .load_user(&UserId::new("user_history"))
        .await
        .ok()
        .flatten()
        .map_or(0, |u| len(serde_json::to_string(&u.value)));
    let feed = store
        .pending_outbox(1_000)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(Result::ok)
        .map(|m| len(serde_json::to_string(&m.body)))
        .max()
        .unwrap_or(0);
    (customer, user, feed)
}

/// A fresh table seeded with `history(n, m)`, or why the seed failed.
async fn seeded(
    sdk: &aws_config::SdkConfig,
    n: usize,
    m: usize,
) -> Result<Arc<DynamoBillingStore>, String> {
    let (customer, user) = history(n, m).await;
    let store = Arc::new(DynamoBillingStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        format!("billing-history-{}-{n}-{m}", std::process::id()),
        Retention::default(),
    ));
    store
        .create_table_if_missing()
        .await
        .map_err(|e| e.to_string())?;
    seed(customer, user, &store).await?;
    Ok(store)
}

/// Delivers each event through DynamoDB and prints its row (`label` first).
async fn measure(
    store: Arc<DynamoBillingStore>,
    label: &str,
    events: Vec<(&str, Family, Vec<u8>)>,
) {
    let svc = service(store.clone());
    for (name, family, body) in events {
        store.meter.take();
        let outcome = deliver(&svc, family, &body).await;
        let units = store.meter.take().write_units;
        let (customer, user, feed) = sizes(&store).await;
        println!("| {label} | {name} | {outcome} | {customer} | {user} | {feed} | {units} |");
    }
}

fn deletion() -> (&'static str, Family, Vec<u8>) {
    let body = event(
        "evt_s9",
        "customer.subscription.deleted",
        NOW - 10,
        subscription("canceled"),
    );
    ("customer.subscription.deleted", Family::Subscription, body)
}

#[tokio::main]
async fn main() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    println!("| purchases before | event | outcome | customer item | user item | feed message | write units |");
    println!("|---|---|---|---|---|---|---|");
    for n in [1usize, 100, 1_000, 5_000] {
        match seeded(&sdk, n - 1, 0).await {
            Ok(store) => {
                let bought = (
                    "checkout.session.completed",
                    Family::Checkout,
                    purchase(n - 1),
                );
                measure(store, &(n - 1).to_string(), vec![bought, deletion()]).await;
            }
            Err(e) => println!("| {} | (seed) | {e} | | | | |", n - 1),
        }
    }
    println!();
    println!("| renewals, ended subscriptions, purchases (a third refunded) | event | outcome | customer item | user item | feed message | write units |");
    println!("|---|---|---|---|---|---|---|");
    for m in [1usize, 100, 1_000] {
        match seeded(&sdk, m, m).await {
            Ok(store) => {
                let at = NOW - 2_200 * DAY + m as i64 * DAY;
                let renewal = (
                    "invoice.paid",
                    Family::Invoice,
                    invoice("in_next", "sub_history", at),
                );
                let refunded = ("charge.refunded", Family::Charge, refund(m - 1, NOW - 20));
                measure(store, &m.to_string(), vec![renewal, refunded, deletion()]).await;
            }
            Err(e) => println!("| {m} | (seed) | {e} | | | | |"),
        }
    }
    println!("\nDynamoDB's item limit: {MAX_ITEM_BYTES} bytes.");
}
