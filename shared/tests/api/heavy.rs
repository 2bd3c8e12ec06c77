//! A customer with a long history (issue 17, point 1): five thousand one-time purchases must
//! not grow any item (the customer's, the user's, a purchase's) or the feed's message past the
//! documented bound (the customer's item once kept every purchase: 1.5 MB here, which DynamoDB
//! refuses), and a late `customer.subscription.deleted` is still applied and still revokes
//! access. In memory, with DynamoDB's item size rule; and against moto. Then the whole heavy
//! account of the issue: the same purchases with 2,000 invoices, 500 subscriptions and 300
//! refunded (150 disputed) charges.

use crate::helpers::*;
use billing::adapters::memory::InMemoryBillingStore;
use billing::domain::access::customer_access;
use billing::domain::customer::CustomerBilling;
use billing::domain::events::EventMeta;
use billing::domain::ids::{EventId, Provider, UserId};
use billing::feed::{update_user, SourceAccess};
use billing::ports::{
    source_key, BillingStore, Commit, LedgerGuard, LedgerRecord, LedgerState, PurchaseWrite,
    UserAccessDoc,
};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::translate::{family_of, translate};
use billing::providers::stripe::Settings;
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// Past both old cliffs: each purchase was ~300 bytes in every feed message (past SQS's 256 KiB
/// at about 870 of them) and in the customer's item (past DynamoDB's 400 KB at about 1,300).
const PURCHASES: usize = 5_000;
/// The bound docs/ARCHITECTURE.md documents for a feed message and the user item.
const BOUND: usize = 64 * 1024;

/// A paid payment-mode session of `cus_heavy` for `user_heavy`, with Stripe-length ids.
pub fn purchase(i: usize, created: i64) -> Value {
    json!({
        "id": format!("cs_live_a1{i:0>56}"),
        "object": "checkout.session",
        "mode": "payment",
        "customer": "cus_heavy",
        "client_reference_id": "user_heavy",
        "payment_intent": format!("pi_3Kl36gJDPojXS6LN{i:0>8}"),
        "amount_total": 1900,
        "currency": "eur",
        "payment_status": "paid",
        "status": "complete",
        "created": created,
        "metadata": {"product_id": format!("prod_book_{}", i % 7)}
    })
}

async fn deliver(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) -> Value {
    let body = event(id, kind, created, object);
    let (status, json) = app.post(family_of(kind), &body).await;
    assert_eq!(status, StatusCode::OK, "{id}: {json}");
    json
}

#[tokio::test]
async fn a_user_with_five_thousand_purchases_keeps_small_items_and_loses_access_when_the_subscription_ends(
) {
    let memory = Arc::new(InMemoryBillingStore::with_item_limit());
    let app = spawn_on_memory(memory.clone());
    let sub = subscription("sub_heavy", "cus_heavy", "active", Some("user_heavy"));
    let created = deliver(
        &app,
        "evt_h0",
        "customer.subscription.created",
        NOW - 9_000,
        sub.clone(),
    )
    .await;
    assert_eq!(created["state"], "applied");
    for i in 0..PURCHASES {
        let at = NOW - 8_000 + i as i64;
        let answer = deliver(
            &app,
            &format!("evt_hp{i}"),
            "checkout.session.completed",
            at,
            purchase(i, at),
        )
        .await;
        assert_eq!(answer["state"], "applied", "purchase {i}: {answer}");
    }
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    // The newest purchases whole, every purchase counted.
    let shown = access["purchases"].as_array().expect("purchases");
    assert_eq!(shown.len(), 10);
    assert_eq!(shown[0]["purchase"], purchase(PURCHASES - 1, 0)["id"]);
    assert_eq!(shown[9]["purchase"], purchase(PURCHASES - 10, 0)["id"]);
    let totals = &access["purchase_totals"];
    assert_eq!(
        (totals["count"].as_u64(), totals["granting"].as_u64()),
        (Some(5_000), Some(5_000))
    );
    assert_eq!(totals["products"]["prod_book_0"], 715, "{totals}");
    assert_eq!(totals["products"]["prod_book_6"], 714, "{totals}");
    page_through_every_purchase(&app).await;
    let mut ended = sub;
    ended["status"] = json!("canceled");
    let deleted = deliver(
        &app,
        "evt_hd",
        "customer.subscription.deleted",
        NOW - 10,
        ended,
    )
    .await;
    assert_eq!(deleted["state"], "applied", "{deleted}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    assert_eq!(access["standing"], "ended", "{access}");

    // Every item stays under the documented bound: the customer's, each purchase's, the user's.
    let [customer] = memory.customers().try_into().expect("one customer");
    let size = serde_json::to_string(&customer).expect("json").len();
    assert!(size <= BOUND, "customer item {size} bytes");
    assert!(
        customer.purchases.is_empty(),
        "no purchase kept in the customer's item"
    );
    for bought in memory
        .customers_with_purchases()
        .remove(0)
        .purchases
        .values()
    {
        let size = serde_json::to_string(bought).expect("json").len();
        assert!(size <= BOUND, "purchase {} is {size} bytes", bought.session);
    }
    let user = memory
        .user(&UserId::new("user_heavy"))
        .expect("the user's item");
    let user_size = serde_json::to_string(&user).expect("json").len();
    assert!(user_size <= BOUND, "user item {user_size} bytes");
    let pending = app.store.pending_outbox(usize::MAX).await.expect("outbox");
    assert!(pending.len() > PURCHASES, "one message per change");
    for message in pending {
        let message = message.expect("readable");
        let size = serde_json::to_string(&message.body).expect("json").len();
        assert!(size <= BOUND, "{} is {size} bytes", message.id);
    }
}

/// `GET /users/{id}/billing` lists every purchase, newest first, a page at a time: each page
/// at most `limit`, no purchase twice, the last page without `next_cursor`.
async fn page_through_every_purchase(app: &TestApp) {
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/users/user_heavy/billing?limit=200".to_owned();
    for _ in 0..PURCHASES / 200 + 1 {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["purchases"].as_array().expect("purchases");
        assert!(page.len() <= 200);
        seen.extend(
            page.iter()
                .map(|p| p["purchase"].as_str().unwrap_or_default().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/users/user_heavy/billing?limit=200&cursor={cursor}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..PURCHASES)
        .rev()
        .map(|i| purchase(i, 0)["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(seen, want, "every purchase once, newest first");
    for bad in ["cursor=not-ours", "limit=0", "limit=201", "limit=many"] {
        let (status, body) = app.get(&format!("/users/user_heavy/billing?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// The customer `cus_heavy` with its subscription and `n` purchases, and the user item it
/// gives `user_heavy`: applied to the aggregate directly (what the pipeline does one event at a
/// time), so a large history can be written to moto in one commit.
async fn seeded_history(n: usize) -> (CustomerBilling, UserAccessDoc) {
    let memory = Arc::new(InMemoryBillingStore::new());
    let app = spawn_on_memory(memory.clone());
    let sub = subscription("sub_heavy", "cus_heavy", "active", Some("user_heavy"));
    deliver(
        &app,
        "evt_h0",
        "customer.subscription.created",
        NOW - 9_000,
        sub,
    )
    .await;
    let mut customer = memory.customers().pop().expect("the customer");
    for i in 0..n {
        let at = NOW - 8_000 + i as i64;
        let body = event(
            &format!("evt_hp{i}"),
            "checkout.session.completed",
            at,
            purchase(i, at),
        );
        let envelope = Envelope::parse(&body).expect("an event");
        let event = translate(&envelope, &Settings::default().mapping).expect("a purchase");
        let meta = EventMeta {
            provider: Provider::STRIPE,
            id: EventId::new(envelope.id.clone()),
            event_type: envelope.event_type.clone(),
            created: envelope.created,
            millis: 0,
            livemode: false,
            api_version: envelope.api_version.clone(),
        };
        customer.apply(&meta, &event);
    }
    let tiers = settings(false).tiers;
    let given = SourceAccess {
        subscriptions: customer_access(&customer, &tiers),
        features: customer.features(),
        purchases: customer.bought.summary(),
    };
    let user = memory.user(&UserId::new("user_heavy")).expect("the user");
    let source = source_key(Provider::STRIPE, &customer.customer);
    let (user, _) = update_user(user, &source, Some(given), &tiers, NOW);
    (customer, user)
}

/// Writes the customer (its book only), its user and its purchase items (each with its intent
/// pointer) to DynamoDB: the customer and user in one commit, the purchases by BatchWriteItem
/// (through commits, moto would copy the whole table once per transaction).
async fn seed(
    dynamo: &billing::adapters::dynamo::DynamoBillingStore,
    mut customer: CustomerBilling,
    user: UserAccessDoc,
) {
    let purchases: Vec<PurchaseWrite> = std::mem::take(&mut customer.purchases)
        .into_values()
        .map(|p| PurchaseWrite {
            intent: p.payment_intent.clone(),
            purchase: p,
            rev: None,
        })
        .collect();
    let mut first = Commit::ledger_only(seed_ledger(0), LedgerGuard::New);
    first.customer = Some((customer.clone(), None));
    first.users = vec![(user, None)];
    dynamo
        .commit(&first)
        .await
        .expect("the customer and user fit");
    dynamo
        .seed_purchases(Provider::STRIPE, &customer.customer, &purchases)
        .await
        .expect("the purchases are written");
}

fn seed_ledger(k: usize) -> LedgerRecord {
    LedgerRecord {
        provider: Provider::STRIPE,
        event_id: EventId::new(format!("evt_seed{k}")),
        event_type: "seed".into(),
        created: NOW,
        livemode: false,
        state: LedgerState::Applied,
        family: "checkout".into(),
        received_at: NOW,
        customer: Some(billing::domain::ids::CustomerId::new("cus_heavy")),
        detail: None,
        parked: None,
    }
}

/// Against moto: a customer seeded with 5,000 purchase items; its subscription's deletion is
/// applied through DynamoDB, revokes access, and writes a user item and a feed message under
/// the bound; the billing route pages the items; a refund finds its purchase by its intent.
#[tokio::test]
async fn moto_a_late_subscription_deletion_after_five_thousand_purchases_revokes_access() {
    let dynamo = moto_store().await;
    let app = spawn_on(dynamo.clone(), false);
    let (customer, user) = seeded_history(PURCHASES).await;
    seed(&dynamo, customer, user).await;
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    assert_eq!(access["purchase_totals"]["count"], 5_000, "{access}");
    let (_, billing) = app.get("/users/user_heavy/billing?limit=3").await;
    let page: Vec<&Value> = billing["purchases"]
        .as_array()
        .expect("purchases")
        .iter()
        .collect();
    assert_eq!(page.len(), 3, "{billing}");
    assert_eq!(page[0]["purchase"], purchase(PURCHASES - 1, 0)["id"]);
    assert!(billing["next_cursor"].is_string(), "{billing}");

    let mut ended = subscription("sub_heavy", "cus_heavy", "canceled", Some("user_heavy"));
    ended["status"] = json!("canceled");
    let deleted = deliver(
        &app,
        "evt_hd",
        "customer.subscription.deleted",
        NOW - 10,
        ended,
    )
    .await;
    assert_eq!(deleted["state"], "applied", "{deleted}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    let user = dynamo
        .load_user(&UserId::new("user_heavy"))
        .await
        .expect("read")
        .expect("the user's item");
    let size = serde_json::to_string(&user.value).expect("json").len();
    assert!(size <= BOUND, "user item {size} bytes");
    let stored = dynamo
        .customer(
            Provider::STRIPE,
            &billing::domain::ids::CustomerId::new("cus_heavy"),
        )
        .await
        .expect("read")
        .expect("the customer's item");
    let size = serde_json::to_string(&stored.value).expect("json").len();
    assert!(size <= BOUND, "customer item {size} bytes");
    let pending = dynamo.pending_outbox(10).await.expect("outbox");
    let [message] = pending.as_slice() else {
        panic!("one message, got {}", pending.len());
    };
    let message = message.as_ref().expect("readable");
    let size = serde_json::to_string(&message.body).expect("json").len();
    assert!(size <= BOUND, "feed message {size} bytes");
    assert_eq!(
        message.body["access"]["purchases"].as_array().map(Vec::len),
        Some(10)
    );

    // An old purchase's full refund names only its payment intent: the pointer finds it.
    let refund = json!({"id": "ch_heavy17", "object": "charge", "customer": "cus_heavy",
        "payment_intent": purchase(17, 0)["payment_intent"], "amount": 1900,
        "amount_refunded": 1900, "refunded": true, "status": "succeeded"});
    let refunded = deliver(&app, "evt_hr", "charge.refunded", NOW - 5, refund).await;
    assert_eq!(refunded["state"], "applied", "{refunded}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["purchase_totals"]["granting"], 4_999, "{access}");
}

/// Against moto: a customer item of the layout before purchase items (every purchase kept in
/// it) stays readable: a refund of one of its purchases applies, moves that purchase into its
/// own item, and leaves the others in the customer's item, still counted and listed.
#[tokio::test]
async fn moto_a_customer_item_that_still_holds_its_purchases_keeps_working() {
    let dynamo = moto_store().await;
    let app = spawn_on(dynamo.clone(), false);
    let (mut customer, user) = seeded_history(3).await;
    // Written as the code before purchase items wrote it: the list, no book.
    customer.bought = Default::default();
    let mut old = Commit::ledger_only(seed_ledger(0), LedgerGuard::New);
    old.customer = Some((customer, None));
    old.users = vec![(user, None)];
    dynamo.commit(&old).await.expect("the old layout");
    let refund = json!({"id": "ch_old1", "object": "charge", "customer": "cus_heavy",
        "payment_intent": purchase(1, 0)["payment_intent"], "amount": 1900,
        "amount_refunded": 1900, "refunded": true, "status": "succeeded"});
    let refunded = deliver(&app, "evt_or", "charge.refunded", NOW - 5, refund).await;
    assert_eq!(refunded["state"], "applied", "{refunded}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    let totals = &access["purchase_totals"];
    assert_eq!(
        (totals["count"].as_u64(), totals["granting"].as_u64()),
        (Some(3), Some(2)),
        "{access}"
    );
    let customer_id = billing::domain::ids::CustomerId::new("cus_heavy");
    let stored = dynamo
        .customer(Provider::STRIPE, &customer_id)
        .await
        .expect("read")
        .expect("the customer");
    // The refund's charge copy joins the purchase it paid, which so moves to its own item
    // (with the copy); the other old copies stay readable where they are.
    assert_eq!(
        stored.value.purchases.len(),
        2,
        "the old copies stay readable"
    );
    assert!(stored.value.refunds.is_empty() && stored.value.charges.is_empty());
    let at = NOW - 4;
    let bought = deliver(
        &app,
        "evt_on",
        "checkout.session.completed",
        at,
        purchase(3, at),
    )
    .await;
    assert_eq!(bought["state"], "applied", "{bought}");
    let items = dynamo
        .all_purchases(Provider::STRIPE, &customer_id)
        .await
        .expect("read");
    assert_eq!(
        items.len(),
        2,
        "the refunded and the new purchase are items of their own"
    );
    let refunded = &items[0];
    assert_eq!(refunded.session, purchase(1, 0)["id"]);
    assert!(refunded.paid_by["ch_old1"].fully_refunded());
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["purchase_totals"]["count"], 4, "{access}");
    assert_eq!(access["purchase_totals"]["granting"], 3, "{access}");
    let (_, billing) = app.get("/users/user_heavy/billing").await;
    let listed = billing["purchases"].as_array().expect("purchases");
    assert_eq!(listed.len(), 4, "{billing}");
    assert_eq!(listed[0]["purchase"], purchase(3, 0)["id"]);
}

const DAY: i64 = 86_400;
/// Renewals of the one subscription that lives throughout (daily, to keep the dates in range).
const RENEWALS: usize = 1_501;
/// Subscriptions in all: the live one and the ended ones, each of those paid once.
const SUBSCRIPTIONS: usize = 500;
/// Refunded purchases' charges; every other one is also disputed.
const CHARGES: usize = 300;
/// When the account began.
const T0: i64 = NOW - 2_100 * DAY;

/// A paid subscription invoice of `cus_heavy` for `sub`, billing `[start, start + DAY)`.
fn subscription_invoice(id: &str, sub: &str, start: i64) -> Value {
    let event: Value =
        serde_json::from_slice(&fixture("stripe/lifecycle/03_invoice.paid.json")).expect("json");
    let mut object = event["data"]["object"].clone();
    object["id"] = json!(id);
    object["customer"] = json!("cus_heavy");
    object["created"] = json!(start);
    object["billing_reason"] = json!("subscription_cycle");
    object["parent"]["subscription_details"]["subscription"] = json!(sub);
    let line = &mut object["lines"]["data"][0];
    line["invoice"] = json!(id);
    line["parent"]["subscription_item_details"]["subscription"] = json!(sub);
    line["period"] = json!({"start": start, "end": start + DAY});
    object
}

/// Applies one event through the app and insists that it was applied (not parked, not stale).
async fn applied(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) {
    let answer = deliver(app, id, kind, created, object).await;
    assert_eq!(answer["state"], "applied", "{id}: {answer}");
}

/// The issue's heavy account: one customer with 5,000 purchases, 2,000 subscription invoices
/// (1,501 renewals of the live subscription, one each for the 499 others), 500 subscriptions
/// (all but one ended), 300 refunded purchase charges of which 150 disputed. Every event is
/// applied, every item and feed message stays under the bound, and the late deletion of the
/// live subscription still revokes access.
#[tokio::test]
async fn the_heavy_account_of_issue_17_keeps_every_item_and_message_under_the_bound() {
    let memory = Arc::new(InMemoryBillingStore::with_item_limit());
    let app = spawn_on_memory(memory.clone());
    let live = subscription("sub_heavy", "cus_heavy", "active", Some("user_heavy"));
    applied(
        &app,
        "evt_h0",
        "customer.subscription.created",
        T0,
        live.clone(),
    )
    .await;
    for i in 0..RENEWALS {
        let start = T0 + i as i64 * DAY;
        let invoice = subscription_invoice(&format!("in_heavy{i}"), "sub_heavy", start);
        applied(
            &app,
            &format!("evt_hi{i}"),
            "invoice.paid",
            start + 7,
            invoice,
        )
        .await;
    }
    for s in 1..SUBSCRIPTIONS {
        let id = format!("sub_heavy_ended{s:03}");
        let at = T0 + s as i64 * 4 * DAY;
        let sub = subscription(&id, "cus_heavy", "active", Some("user_heavy"));
        applied(
            &app,
            &format!("evt_hs{s}"),
            "customer.subscription.created",
            at,
            sub.clone(),
        )
        .await;
        let invoice = subscription_invoice(&format!("in_heavy_ended{s}"), &id, at);
        applied(
            &app,
            &format!("evt_hsi{s}"),
            "invoice.paid",
            at + 7,
            invoice,
        )
        .await;
        let mut ended = sub;
        ended["status"] = json!("canceled");
        let gone = at + 3 * DAY;
        applied(
            &app,
            &format!("evt_hsd{s}"),
            "customer.subscription.deleted",
            gone,
            ended,
        )
        .await;
    }
    for i in 0..PURCHASES {
        let at = T0 + 1_000 + i as i64 * 36;
        applied(
            &app,
            &format!("evt_hp{i}"),
            "checkout.session.completed",
            at,
            purchase(i, at),
        )
        .await;
    }
    for k in 0..CHARGES {
        let at = T0 + 2_000 + k as i64 * 36;
        let refunded = if k % 2 == 0 { 1_900 } else { 500 };
        let charge = json!({"id": format!("ch_3Kl36gJDPojXS6LN{k:0>8}"), "object": "charge",
            "customer": "cus_heavy", "payment_intent": purchase(k, 0)["payment_intent"],
            "amount": 1900, "amount_refunded": refunded, "refunded": refunded == 1_900,
            "status": "succeeded"});
        applied(&app, &format!("evt_hr{k}"), "charge.refunded", at, charge).await;
        if k % 2 == 1 {
            let dispute = json!({"id": format!("dp_1Kl36gJDPojXS6LN{k:0>8}"), "object": "dispute",
                "charge": format!("ch_3Kl36gJDPojXS6LN{k:0>8}"),
                "payment_intent": purchase(k, 0)["payment_intent"], "amount": 1400,
                "currency": "eur", "reason": "fraudulent", "status": "needs_response"});
            applied(
                &app,
                &format!("evt_hdp{k}"),
                "charge.dispute.created",
                at + 1,
                dispute,
            )
            .await;
        }
    }
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    let totals = &access["purchase_totals"];
    // 150 fully refunded; the 150 disputed (open) still grant.
    assert_eq!(
        (totals["count"].as_u64(), totals["granting"].as_u64()),
        (Some(5_000), Some(4_850)),
        "{totals}"
    );
    let mut ended = live;
    ended["status"] = json!("canceled");
    applied(
        &app,
        "evt_hd",
        "customer.subscription.deleted",
        NOW - 10,
        ended,
    )
    .await;
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    assert_eq!(access["standing"], "ended", "{access}");
    // A late event of a long-ended subscription changes nothing.
    let late = subscription(
        "sub_heavy_ended001",
        "cus_heavy",
        "active",
        Some("user_heavy"),
    );
    let answer = deliver(
        &app,
        "evt_hlate",
        "customer.subscription.updated",
        T0 + 5 * DAY,
        late,
    )
    .await;
    assert_eq!(answer["state"], "stale", "{answer}");
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    assert_every_item_under_the_bound(&app, &memory).await;
}

/// The customer's item, each purchase and charge item, the user's item, and every message in
/// the outbox, each measured as the JSON the stores keep.
async fn assert_every_item_under_the_bound(app: &TestApp, memory: &InMemoryBillingStore) {
    let [customer] = memory.customers().try_into().expect("one customer");
    let size = serde_json::to_string(&customer).expect("json").len();
    println!("customer item: {size} bytes");
    assert!(size <= BOUND, "customer item {size} bytes");
    let [whole] = memory
        .customers_with_purchases()
        .try_into()
        .expect("one customer");
    let largest = whole
        .purchases
        .values()
        .map(|p| serde_json::to_string(p).expect("json").len())
        .max()
        .unwrap_or_default();
    println!("largest purchase item: {largest} bytes");
    assert!(largest <= BOUND, "largest purchase item {largest} bytes");
    for charge in memory.all_charges() {
        let size = serde_json::to_string(&charge).expect("json").len();
        assert!(size <= BOUND, "charge {} is {size} bytes", charge.id);
    }
    let user = memory
        .user(&UserId::new("user_heavy"))
        .expect("the user's item");
    let size = serde_json::to_string(&user).expect("json").len();
    println!("user item: {size} bytes");
    assert!(size <= BOUND, "user item {size} bytes");
    let pending = app.store.pending_outbox(usize::MAX).await.expect("outbox");
    let largest = pending
        .iter()
        .flatten()
        .map(|m| serde_json::to_string(&m.body).expect("json").len())
        .max()
        .unwrap_or_default();
    println!("largest feed message: {largest} bytes");
    assert!(largest <= BOUND, "largest feed message {largest} bytes");
}

/// Applies one Stripe event body to the aggregate directly (what the pipeline does, without
/// the store), for seeding a long history.
fn apply_directly(customer: &mut CustomerBilling, id: &str, kind: &str, at: i64, object: Value) {
    let body = event(id, kind, at, object);
    let envelope = Envelope::parse(&body).expect("an event");
    let event = translate(&envelope, &Settings::default().mapping).expect("translated");
    let meta = EventMeta {
        provider: Provider::STRIPE,
        id: EventId::new(envelope.id.clone()),
        event_type: envelope.event_type.clone(),
        created: envelope.created,
        millis: 0,
        livemode: false,
        api_version: envelope.api_version.clone(),
    };
    customer.apply(&meta, &event);
}

/// The heavy account with `purchases` purchases, built by applying its events directly: the
/// live subscription renewed 1,501 times, 499 subscriptions paid once and ended, and the
/// refunds of the first 300 purchases' charges (every other one in full). Returns the
/// aggregate (its purchases still in it) and the user item it gives `user_heavy`.
async fn seeded_heavy_account(purchases: usize) -> (CustomerBilling, UserAccessDoc) {
    let memory = Arc::new(InMemoryBillingStore::new());
    let app = spawn_on_memory(memory.clone());
    let live = subscription("sub_heavy", "cus_heavy", "active", Some("user_heavy"));
    applied(&app, "evt_h0", "customer.subscription.created", T0, live).await;
    let mut customer = memory.customers().pop().expect("the customer");
    let c = &mut customer;
    for i in 0..RENEWALS {
        let start = T0 + i as i64 * DAY;
        let invoice = subscription_invoice(&format!("in_heavy{i}"), "sub_heavy", start);
        apply_directly(c, &format!("evt_hi{i}"), "invoice.paid", start + 7, invoice);
    }
    for s in 1..SUBSCRIPTIONS {
        let id = format!("sub_heavy_ended{s:03}");
        let at = T0 + s as i64 * 4 * DAY;
        let sub = subscription(&id, "cus_heavy", "active", Some("user_heavy"));
        let kind = "customer.subscription.created";
        apply_directly(c, &format!("evt_hs{s}"), kind, at, sub.clone());
        let invoice = subscription_invoice(&format!("in_heavy_ended{s}"), &id, at);
        apply_directly(c, &format!("evt_hsi{s}"), "invoice.paid", at + 7, invoice);
        let mut ended = sub;
        ended["status"] = json!("canceled");
        let kind = "customer.subscription.deleted";
        apply_directly(c, &format!("evt_hsd{s}"), kind, at + 3 * DAY, ended);
    }
    for i in 0..purchases {
        let at = T0 + 1_000 + i as i64 * 36;
        let kind = "checkout.session.completed";
        apply_directly(c, &format!("evt_hp{i}"), kind, at, purchase(i, at));
    }
    for k in 0..CHARGES.min(purchases) {
        let refunded = if k % 2 == 0 { 1_900 } else { 500 };
        let charge = json!({"id": format!("ch_3Kl36gJDPojXS6LN{k:0>8}"), "object": "charge",
            "customer": "cus_heavy", "payment_intent": purchase(k, 0)["payment_intent"],
            "amount": 1900, "amount_refunded": refunded, "refunded": refunded == 1_900,
            "status": "succeeded"});
        let at = T0 + 2_000 + k as i64 * 36;
        apply_directly(c, &format!("evt_hr{k}"), "charge.refunded", at, charge);
    }
    let tiers = settings(false).tiers;
    let given = SourceAccess {
        subscriptions: customer_access(&customer, &tiers),
        features: customer.features(),
        purchases: customer.bought.summary(),
    };
    let user = memory.user(&UserId::new("user_heavy")).expect("the user");
    let source = source_key(Provider::STRIPE, &customer.customer);
    let (user, _) = update_user(user, &source, Some(given), &tiers, NOW);
    (customer, user)
}

/// Against moto: the heavy account seeded (the purchases by BatchWriteItem: moto copies the
/// whole table on each transaction), then a renewal, a refund of a purchase not refunded before, a late
/// event of a long-ended subscription (stale) and the late deletion of the live subscription,
/// each through DynamoDB: every item and message under the bound, access revoked at the end.
#[tokio::test]
async fn moto_the_heavy_account_keeps_its_items_small_and_its_late_deletion_revokes_access() {
    let dynamo = moto_store().await;
    let app = spawn_on(dynamo.clone(), false);
    let (customer, user) = seeded_heavy_account(PURCHASES).await;
    seed(&dynamo, customer, user).await;
    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], true, "{access}");
    assert_eq!(access["purchase_totals"]["granting"], 4_850, "{access}");

    let start = T0 + RENEWALS as i64 * DAY;
    let renewal = subscription_invoice("in_heavy_next", "sub_heavy", start);
    applied(&app, "evt_hnext", "invoice.paid", start + 7, renewal).await;
    let refund = json!({"id": "ch_heavy_late", "object": "charge", "customer": "cus_heavy",
        "payment_intent": purchase(3_700, 0)["payment_intent"], "amount": 1900,
        "amount_refunded": 1900, "refunded": true, "status": "succeeded"});
    applied(&app, "evt_hrl", "charge.refunded", NOW - 20, refund).await;
    let late = subscription(
        "sub_heavy_ended002",
        "cus_heavy",
        "active",
        Some("user_heavy"),
    );
    let kind = "customer.subscription.updated";
    let answer = deliver(&app, "evt_hlate", kind, T0 + 9 * DAY, late).await;
    assert_eq!(answer["state"], "stale", "{answer}");
    let mut ended = subscription("sub_heavy", "cus_heavy", "canceled", Some("user_heavy"));
    ended["status"] = json!("canceled");
    applied(
        &app,
        "evt_hd",
        "customer.subscription.deleted",
        NOW - 10,
        ended,
    )
    .await;

    let (_, access) = app.get("/users/user_heavy/access").await;
    assert_eq!(access["grants_paid_tier"], false, "{access}");
    assert_eq!(access["purchase_totals"]["granting"], 4_849, "{access}");
    let customer_id = billing::domain::ids::CustomerId::new("cus_heavy");
    let stored = dynamo
        .customer(Provider::STRIPE, &customer_id)
        .await
        .expect("read")
        .expect("the customer's item");
    let size = serde_json::to_string(&stored.value).expect("json").len();
    assert!(size <= BOUND, "customer item {size} bytes");
    assert!(
        stored.value.charges.is_empty(),
        "every copy with its purchase"
    );
    let refunded = dynamo
        .purchases(
            Provider::STRIPE,
            &customer_id,
            &[billing::ports::PurchaseKey::Intent(
                purchase(3_700, 0)["payment_intent"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )],
        )
        .await
        .expect("read");
    assert!(refunded[0].value.paid_by["ch_heavy_late"].fully_refunded());
    let user = dynamo
        .load_user(&UserId::new("user_heavy"))
        .await
        .expect("read")
        .expect("the user's item");
    let size = serde_json::to_string(&user.value).expect("json").len();
    assert!(size <= BOUND, "user item {size} bytes");
    for message in dynamo.pending_outbox(10).await.expect("outbox") {
        let message = message.expect("readable");
        let size = serde_json::to_string(&message.body).expect("json").len();
        assert!(size <= BOUND, "feed message {size} bytes");
    }
}
