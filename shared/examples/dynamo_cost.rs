//! Measures DynamoDB round trips and capacity units per outcome against the emulator at
//! `AWS_ENDPOINT_URL`, from `ReturnConsumedCapacity`; prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo run -p billing --example dynamo_cost` (with moto running: scripts/start-moto).

use billing::adapters::capacity::CapacityReading;
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::memory::StaticSecrets;
use billing::pipeline::Outcome;
use billing::ports::FixedClock;
use billing::providers::operator;
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::routing::Endpoint;
use billing::telemetry::Metrics;
use serde_json::json;
use std::sync::Arc;

const NOW: i64 = 1_760_000_000;
const SECRET: &str = "whsec_cost";

fn event(id: &str, kind: &str, created: i64, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": id, "object": "event", "type": kind, "created": created,
        "livemode": false, "data": {"object": object}}),
    )
    .expect("json")
}

/// A full basil invoice object (the lifecycle fixture's renewal) as invoice `id` of `cus_cost`
/// in `status`, naming its user through the subscription's metadata: what real invoice events
/// carry, so the invoice item has a real size.
fn full_invoice(id: &str, status: &str) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe/lifecycle/04_invoice.payment_failed.json"
    );
    let raw = std::fs::read(path).expect("the lifecycle fixture");
    let event: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    let mut object = event["data"]["object"].clone();
    object["id"] = id.into();
    // The newest invoice of the subscription (its own `created` before its first event).
    object["created"] = (NOW + 31).into();
    object["customer"] = "cus_cost".into();
    object["status"] = status.into();
    object["parent"]["subscription_details"] =
        json!({"subscription": "sub_cost", "metadata": {"user_id": "user_cost"}});
    if status == "draft" {
        for field in ["number", "hosted_invoice_url", "invoice_pdf"] {
            object[field] = serde_json::Value::Null;
        }
    }
    object
}

fn subscription(status: &str) -> serde_json::Value {
    json!({"id": "sub_cost", "object": "subscription", "customer": "cus_cost", "status": status,
        "cancel_at_period_end": false, "metadata": {"user_id": "user_cost"},
        "items": {"data": [{"current_period_start": NOW, "current_period_end": NOW + 2_592_000,
            "price": {"id": "price_pro", "product": "prod_pro"}}]}})
}

#[tokio::main]
async fn main() {
    let sdk = billing::app::aws_config().await;
    let table = format!("billing-cost-{}", std::process::id());
    let store = Arc::new(DynamoBillingStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
        Retention::default(),
    ));
    store.create_table_if_missing().await.expect("table");
    let new_service = || {
        pipeline(
            store.clone(),
            Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)])),
            Arc::new(FixedClock::at(NOW)),
            Arc::new(Metrics::Off),
            Settings::default(),
        )
    };
    let warm = new_service();
    // A second instance with an empty link cache: a cold Lambda.
    let cold = new_service();
    let invoice = |id: &str, kind: &str, created: i64| {
        event(
            id,
            kind,
            created,
            json!({"id": "in_cost", "object": "invoice", "customer": "cus_cost",
            "parent": {"subscription_details": {"subscription": "sub_cost"}},
            "hosted_invoice_url": "https://invoice.stripe.com/i/x"}),
        )
    };
    let mut cases: Vec<(&str, bool, Endpoint, Vec<u8>)> = vec![
        (
            "applied: checkout.session.completed (new customer, links the user)",
            false,
            Family::Checkout.endpoint(),
            event(
                "evt_c0",
                "checkout.session.completed",
                NOW - 5,
                json!({"id": "cs_1", "object": "checkout.session", "customer": "cus_cost", "client_reference_id": "user_cost", "subscription": "sub_cost"}),
            ),
        ),
        (
            "applied: customer.subscription.created",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c1",
                "customer.subscription.created",
                NOW,
                subscription("active"),
            ),
        ),
        (
            "applied: customer.subscription.updated",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c2",
                "customer.subscription.updated",
                NOW + 10,
                subscription("past_due"),
            ),
        ),
        (
            "applied: invoice.paid, link cached (warm instance)",
            false,
            Family::Invoice.endpoint(),
            invoice("evt_c3", "invoice.paid", NOW + 20),
        ),
        (
            "applied: invoice.payment_failed, link not cached (cold instance)",
            true,
            Family::Invoice.endpoint(),
            invoice("evt_c7", "invoice.payment_failed", NOW + 30),
        ),
        (
            "applied: invoice.payment_failed naming its user (subscription metadata), cold instance",
            true,
            Family::Invoice.endpoint(),
            event(
                "evt_c7b",
                "invoice.payment_failed",
                NOW + 30,
                json!({"id": "in_cost2", "object": "invoice", "customer": "cus_cost",
                "parent": {"subscription_details": {"subscription": "sub_cost", "metadata": {"user_id": "user_cost"}}}}),
            ),
        ),
        (
            "applied: invoice.payment_action_required",
            false,
            Family::Invoice.endpoint(),
            invoice("evt_c8", "invoice.payment_action_required", NOW + 31),
        ),
        (
            "applied: invoice.created (a draft: its invoice item only)",
            false,
            Family::Invoice.endpoint(),
            event(
                "evt_i1",
                "invoice.created",
                NOW + 32,
                full_invoice("in_cost3", "draft"),
            ),
        ),
        (
            "applied: invoice.finalized",
            false,
            Family::Invoice.endpoint(),
            event(
                "evt_i2",
                "invoice.finalized",
                NOW + 33,
                full_invoice("in_cost3", "open"),
            ),
        ),
        (
            "applied: invoice.updated",
            false,
            Family::Invoice.endpoint(),
            event("evt_i3", "invoice.updated", NOW + 34, {
                let mut object = full_invoice("in_cost3", "open");
                object["amount_due"] = 1800.into();
                object
            }),
        ),
        (
            "applied: invoice.paid of the newest invoice (full basil object): invoice, aggregate, user, feed",
            false,
            Family::Invoice.endpoint(),
            event(
                "evt_i4",
                "invoice.paid",
                NOW + 35,
                full_invoice("in_cost3", "paid"),
            ),
        ),
        (
            "applied: invoice_payment.paid (names only its invoice)",
            false,
            Family::Invoice.endpoint(),
            event(
                "evt_i5",
                "invoice_payment.paid",
                NOW + 35,
                json!({"id": "inpay_cost3", "object": "invoice_payment", "invoice": "in_cost3",
                    "amount_paid": 1500, "currency": "usd", "status": "paid",
                    "payment": {"type": "payment_intent", "payment_intent": "pi_cost3"}}),
            ),
        ),
        (
            "stale: invoice.created after its invoice.paid",
            false,
            Family::Invoice.endpoint(),
            event(
                "evt_i6",
                "invoice.created",
                NOW + 32,
                full_invoice("in_cost3", "draft"),
            ),
        ),
        (
            "applied: customer.subscription.deleted",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c9",
                "customer.subscription.deleted",
                NOW + 40,
                subscription("canceled"),
            ),
        ),
        (
            "stale: older subscription update",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c4",
                "customer.subscription.updated",
                NOW - 10,
                subscription("active"),
            ),
        ),
        (
            "ignored: charge.succeeded (not modelled)",
            false,
            Family::Charge.endpoint(),
            event(
                "evt_c5",
                "charge.succeeded",
                NOW,
                json!({"id": "ch_1", "object": "charge"}),
            ),
        ),
        (
            "redelivered: subscription updated again",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c2",
                "customer.subscription.updated",
                NOW + 10,
                subscription("past_due"),
            ),
        ),
        (
            "redelivered: ignored type again",
            false,
            Family::Charge.endpoint(),
            event(
                "evt_c5",
                "charge.succeeded",
                NOW,
                json!({"id": "ch_1", "object": "charge"}),
            ),
        ),
        (
            "parked: known type, unknown shape",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_c6",
                "customer.subscription.updated",
                NOW,
                json!({"id": "sub_x"}),
            ),
        ),
    ];
    cases.extend(catalogue_cases());
    cases.extend(purchase_cases());
    cases.extend(period_cases());
    cases.extend(customer_cases());
    // Last, so the rows above are measured on the same aggregate as before disputes existed.
    cases.extend(dispute_cases());
    println!("| delivery | outcome | round trips | read units | write units |");
    println!("|---|---|---|---|---|");
    for (name, is_cold, endpoint, body) in cases {
        let service = if is_cold { &cold } else { &warm };
        store.meter.take();
        let outcome = if let Some(family) = Family::of(endpoint) {
            let header = sign(&body, &[WebhookSecret::new(SECRET)], NOW);
            service.receive_stripe(family, Some(&header), &body).await
        } else {
            service.record_operator(&body).await
        };
        let CapacityReading {
            requests,
            read_units,
            write_units,
        } = store.meter.take();
        let label = match outcome {
            Outcome::Recorded { state, .. } => state.as_str().to_owned(),
            Outcome::Duplicate { .. } => "duplicate".into(),
            other => format!("{other:?}"),
        };
        println!("| {name} | {label} | {requests} | {read_units} | {write_units} |");
    }
}

/// Catalogue events: a product aggregate of its own (no user item, no feed message), the
/// product's item and its audit entry in one transaction with the ledger record.
fn catalogue_cases() -> Vec<(&'static str, bool, Endpoint, Vec<u8>)> {
    let product = json!({"id": "prod_cost", "object": "product", "active": true,
        "name": "Pro", "description": "Everything in Basic, and more.",
        "metadata": {"tier": "pro"}});
    let price = |object: &str| {
        let mut p = json!({"id": "price_cost", "object": object, "active": true,
            "currency": "usd", "product": "prod_cost", "nickname": "Pro monthly",
            "metadata": {}});
        if object == "plan" {
            p["amount"] = json!(1500);
            p["interval"] = json!("month");
            p["interval_count"] = json!(1);
        } else {
            p["unit_amount"] = json!(1500);
            p["type"] = json!("recurring");
            p["lookup_key"] = json!("pro_monthly");
            p["recurring"] = json!({"interval": "month", "interval_count": 1});
        }
        p
    };
    let created = event("evt_k2", "price.created", NOW + 1, price("price"));
    vec![
        (
            "applied: product.created (new product)",
            false,
            Family::Charge.endpoint(),
            event("evt_k1", "product.created", NOW, product),
        ),
        (
            "applied: price.created (its product known)",
            false,
            Family::Charge.endpoint(),
            created.clone(),
        ),
        (
            "applied: plan.created (the same price's legacy twin)",
            false,
            Family::Charge.endpoint(),
            event("evt_k3", "plan.created", NOW + 1, price("plan")),
        ),
        (
            "redelivered: price.created again",
            false,
            Family::Charge.endpoint(),
            created,
        ),
    ]
}

/// The customer every lifecycle case above is about.
const CUSTOMER: &str = "cus_cost";

/// Customer-level events after the lifecycle above: a features change (the user's view
/// changes: user item and feed message) and the customer's deletion.
fn customer_cases() -> Vec<(&'static str, bool, Endpoint, Vec<u8>)> {
    let summary = json!({"object": "entitlements.active_entitlement_summary",
        "customer": CUSTOMER, "livemode": false,
        "entitlements": {"object": "list", "has_more": false, "data": [
            {"id": "ent_1", "object": "entitlements.active_entitlement", "feature": "feat_1",
             "livemode": false, "lookup_key": "csv-export"},
            {"id": "ent_2", "object": "entitlements.active_entitlement", "feature": "feat_2",
             "livemode": false, "lookup_key": "extra-seats"}]}});
    vec![
        (
            "applied: entitlements.active_entitlement_summary.updated (features change)",
            false,
            Family::Charge.endpoint(),
            event(
                "evt_e1",
                "entitlements.active_entitlement_summary.updated",
                NOW + 50,
                summary,
            ),
        ),
        (
            "applied: customer.deleted",
            false,
            Family::Charge.endpoint(),
            event(
                "evt_e2",
                "customer.deleted",
                NOW + 60,
                json!({"id": CUSTOMER, "object": "customer", "deleted": true}),
            ),
        ),
    ]
}

/// Periods other than a subscription's own: a gift bought by the linked customer for another
/// user (the buyer's aggregate, the buyer's and the recipient's items, a message to each), a
/// subscription schedule (the aggregate only changes what `/billing` lists: no user item, no
/// message), and an operator's grant (the user's operator account, the user item, a message).
fn period_cases() -> Vec<(&'static str, bool, Endpoint, Vec<u8>)> {
    let schedule = |status: &str, subscription: Option<&str>| {
        json!({"id": "sub_sched_cost", "object": "subscription_schedule", "customer": CUSTOMER,
            "status": status, "subscription": subscription,
            "current_phase": subscription.map(|_| json!({"start_date": NOW, "end_date": NOW + 2_592_000})),
            "phases": [
                {"start_date": NOW, "end_date": NOW + 2_592_000, "items": [{"price": "price_basic"}]},
                {"start_date": NOW + 2_592_000, "end_date": NOW + 5_184_000, "items": [{"price": "price_pro"}]}]})
    };
    let grant = billing::providers::operator::GrantCommand::new(
        "user_cost",
        30,
        "pro",
        "support credit",
        "ops",
        NOW,
    )
    .expect("a grant");
    vec![
        (
            "applied: checkout.session.completed, a gift for another user",
            false,
            Family::Checkout.endpoint(),
            event(
                "evt_g1",
                "checkout.session.completed",
                NOW + 6,
                json!({"id": "cs_cost_gift", "object": "checkout.session", "mode": "payment",
                    "customer": CUSTOMER, "client_reference_id": "user_cost", "created": NOW,
                    "payment_intent": "pi_cost_gift", "amount_total": 3000, "currency": "usd",
                    "metadata": {"gift_recipient_user_id": "user_friend", "gift_days": "30",
                        "tier": "pro"}, "payment_status": "paid"}),
            ),
        ),
        (
            "applied: subscription_schedule.created",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_s1",
                "subscription_schedule.created",
                NOW + 7,
                schedule("not_started", None),
            ),
        ),
        (
            "applied: subscription_schedule.updated (it started)",
            false,
            Family::Subscription.endpoint(),
            event(
                "evt_s2",
                "subscription_schedule.updated",
                NOW + 8,
                schedule("active", Some("sub_cost")),
            ),
        ),
        (
            "applied: billing grant (operator account, user item, feed)",
            false,
            operator::ENDPOINT,
            serde_json::to_vec(&grant).expect("json"),
        ),
    ]
}

/// One-time purchases of the linked customer (`cus_cost`): the purchase and its refunds live in
/// the customer aggregate, and each changes the user's purchases (a feed message).
fn purchase_cases() -> Vec<(&'static str, bool, Endpoint, Vec<u8>)> {
    let charge = |refunded: i64| {
        json!({"id": "ch_cost", "object": "charge", "customer": "cus_cost",
            "payment_intent": "pi_cost", "amount": 1500, "amount_refunded": refunded,
            "refunded": refunded == 1500, "currency": "usd", "status": "succeeded"})
    };
    vec![
        (
            "applied: checkout.session.completed in payment mode (a purchase)",
            false,
            Family::Checkout.endpoint(),
            event(
                "evt_p1",
                "checkout.session.completed",
                NOW + 2,
                json!({"id": "cs_cost_once", "object": "checkout.session", "mode": "payment",
                    "customer": "cus_cost", "client_reference_id": "user_cost",
                    "payment_intent": "pi_cost", "amount_total": 1500, "currency": "usd",
                    "metadata": {"product_id": "prod_cost"}, "payment_status": "paid"}),
            ),
        ),
        (
            "applied: charge.refunded, partial",
            false,
            Family::Charge.endpoint(),
            event("evt_p2", "charge.refunded", NOW + 3, charge(500)),
        ),
        (
            "applied: charge.refunded, full (the purchase stops granting)",
            false,
            Family::Charge.endpoint(),
            event("evt_p3", "charge.refunded", NOW + 4, charge(1500)),
        ),
    ]
}

/// Disputes and refund objects (they name only their charge) and the binding of a charge to
/// the linked customer: the charge's own item is read and written with each; once the charge
/// is bound, a change of it also reads and writes the customer and the user (a second read).
fn dispute_cases() -> Vec<(&'static str, bool, Endpoint, Vec<u8>)> {
    let dispute = |status: &str| {
        json!({"id": "dp_cost", "object": "dispute", "charge": "ch_cost2",
            "payment_intent": "pi_cost2", "amount": 1500, "currency": "usd",
            "reason": "fraudulent", "status": status})
    };
    let refund = |id: &str, charge: &str| {
        json!({"id": id, "object": "refund", "charge": charge, "amount": 200,
            "currency": "usd", "status": "succeeded"})
    };
    let intent = |pi: &str, charge: &str| {
        json!({"id": pi, "object": "payment_intent", "customer": "cus_cost", "amount": 1500,
            "amount_received": 1500, "currency": "usd", "status": "succeeded",
            "latest_charge": charge})
    };
    vec![
        (
            "applied: checkout.session.completed in payment mode (a second purchase)",
            false,
            Family::Checkout.endpoint(),
            event(
                "evt_d0",
                "checkout.session.completed",
                NOW + 6,
                json!({"id": "cs_cost_disp", "object": "checkout.session", "mode": "payment",
                    "customer": "cus_cost", "client_reference_id": "user_cost",
                    "payment_intent": "pi_cost2", "amount_total": 1500, "currency": "usd",
                    "metadata": {"product_id": "prod_cost"}, "payment_status": "paid"}),
            ),
        ),
        (
            "applied: charge.dispute.created, charge not bound yet (its charge item only)",
            false,
            Family::Charge.endpoint(),
            event("evt_d1", "charge.dispute.created", NOW + 8, dispute("needs_response")),
        ),
        (
            "applied: payment_intent.succeeded binding that charge (carries the dispute: aggregate, user, feed)",
            false,
            Family::Charge.endpoint(),
            event("evt_d2", "payment_intent.succeeded", NOW + 7, intent("pi_cost2", "ch_cost2")),
        ),
        (
            "applied: charge.dispute.funds_withdrawn, bound charge, binding not cached (cold instance: a second read with the customer)",
            true,
            Family::Charge.endpoint(),
            event("evt_d3", "charge.dispute.funds_withdrawn", NOW + 9, dispute("needs_response")),
        ),
        (
            "applied: refund.created, bound charge, binding cached (warm instance)",
            false,
            Family::Charge.endpoint(),
            event("evt_d4", "refund.created", NOW + 10, refund("re_cost2", "ch_cost2")),
        ),
        (
            "applied: charge.dispute.closed, lost (the purchase stops granting), warm instance",
            false,
            Family::Charge.endpoint(),
            event("evt_d5", "charge.dispute.closed", NOW + 11, dispute("lost")),
        ),
        (
            "stale: charge.dispute.updated older than the close",
            false,
            Family::Charge.endpoint(),
            event("evt_d6", "charge.dispute.updated", NOW + 9, dispute("under_review")),
        ),
        (
            "redelivered: charge.dispute.closed again",
            false,
            Family::Charge.endpoint(),
            event("evt_d5", "charge.dispute.closed", NOW + 11, dispute("lost")),
        ),
        (
            "applied: payment_intent.succeeded, nothing to carry (its charge item only)",
            false,
            Family::Charge.endpoint(),
            event("evt_d7", "payment_intent.succeeded", NOW + 12, intent("pi_cost3", "ch_cost3")),
        ),
        (
            "applied: refund.created of a charge never bound (its charge item only)",
            false,
            Family::Charge.endpoint(),
            event("evt_d8", "refund.created", NOW + 13, refund("re_cost4", "ch_cost4")),
        ),
    ]
}
