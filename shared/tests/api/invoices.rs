//! Invoices, one test per event type: what each fixture of that type (every API version we
//! hold) does to the invoice's record, through the whole pipeline (in memory); the billing read
//! route; and, against moto, a lifecycle in either order and a customer with years of invoices.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::adapters::dynamo::item_size;
use billing::domain::ids::{InvoiceId, SubscriptionId, UserId};
use billing::domain::invoice::{Invoice, InvoiceStatus};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::invoice::MAX_LINES;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::json;
use std::collections::HashMap;

const SYN: &str = "stripe/SYNTH-invoice-basil";

/// Delivers the fixtures in order to a fresh app (in the first one's mode) and returns it.
/// Each is recorded as applied, or as stale when an earlier delivery already holds everything
/// it says (a reverse order).
async fn deliver(files: &[&str]) -> TestApp {
    let first = Envelope::parse(&fixture(files[0])).expect("an event");
    let app = spawn_memory(first.livemode.unwrap_or(false));
    for file in files {
        let (status, json) = app.post_fixture(file).await;
        assert_eq!(status, StatusCode::OK, "{file}: {json}");
        assert!(
            matches!(json["state"].as_str(), Some("applied" | "stale")),
            "{file}: {json}"
        );
    }
    app
}

fn invoice(app: &TestApp, id: &str) -> Invoice {
    let memory = app.memory.as_ref().expect("memory store");
    memory
        .all_invoices()
        .into_iter()
        .find(|i| i.id == InvoiceId::new(id))
        .unwrap_or_else(|| panic!("no invoice {id}"))
}

fn syn(file: &str) -> String {
    format!("{SYN}/{file}.json")
}

#[tokio::test]
async fn invoice_created_keeps_a_pending_draft_with_its_lines() {
    // Basil: the line's price under `pricing.price_details`, its subscription item and
    // proration flag under `parent.subscription_item_details`, the user hint copied from the
    // subscription's metadata under `parent.subscription_details`.
    let app = deliver(&[&syn("01_invoice.created")]).await;
    let draft = invoice(&app, "in_syn1");
    assert_eq!(draft.status(), InvoiceStatus::Pending);
    let view = draft.view(None);
    assert_eq!(view.provider_status.as_deref(), Some("draft"));
    assert_eq!((view.number, view.hosted_invoice_url), (None, None));
    assert_eq!(view.subscription, Some(SubscriptionId::new("sub_syn1")));
    assert_eq!(
        view.user,
        Some(UserId::new("user_syn")),
        "the invoice's hint"
    );
    assert_eq!(view.billing_reason.as_deref(), Some("subscription_cycle"));
    assert_eq!(
        (view.currency.as_deref(), view.amount_due, view.total),
        (Some("eur"), Some(2900), Some(2900))
    );
    let line = &view.lines[0];
    assert_eq!(line.price_id.as_deref(), Some("price_team_monthly"));
    assert_eq!(line.product_id.as_deref(), Some("prod_team"));
    assert_eq!(line.subscription_item.as_deref(), Some("si_syn1"));
    assert_eq!(line.subscription, Some(SubscriptionId::new("sub_syn1")));
    assert_eq!(
        (line.quantity, line.amount, line.proration),
        (Some(1), Some(2900), false)
    );
    assert_eq!(
        draft.customer_email().map(|e| e.as_str()),
        Some("syn.customer@example.com")
    );
    // A snapshot says nothing about paying the subscription: its standing is untouched.
    let customers = app.memory.as_ref().expect("memory").customers();
    assert!(
        customers.iter().all(|c| c.subscriptions.is_empty()),
        "{customers:?}"
    );

    // 2018: `plan` instead of `price`, `date` and `created` both present.
    let app = deliver(&["stripe/2018-02-05/invoice.created__stripe_model_callbacks.json"]).await;
    let old = invoice(&app, "in_00000000000000");
    assert_eq!(old.status(), InvoiceStatus::Pending);
    assert_eq!(old.created, Some(1_637_488_924));
    let line = &old.view(None).lines[0];
    assert_eq!(line.price_id.as_deref(), Some("peak_flow_build"));
    assert_eq!(line.subscription_item.as_deref(), Some("si_CHS7VAL80FwJv7"));
    assert_eq!(
        (line.period_start, line.period_end),
        (Some(1_520_430_249), Some(1_523_108_649))
    );
}

#[tokio::test]
async fn invoice_finalized_sets_its_number_and_hosted_page() {
    let app = deliver(&[&syn("01_invoice.created"), &syn("02_invoice.finalized")]).await;
    let view = invoice(&app, "in_syn1").view(None);
    assert_eq!(view.status, InvoiceStatus::Pending);
    assert_eq!(view.provider_status.as_deref(), Some("open"));
    assert_eq!(view.number.as_deref(), Some("SYN-0001"));
    assert!(view.hosted_invoice_url.is_some() && view.invoice_pdf.is_some());

    let app = deliver(&["stripe/2020-03-02/invoice.finalized__stripe-sync-engine.json"]).await;
    let view = invoice(&app, "in_1KJdKkJDPojXS6LNSwSWkZSN").view(None);
    assert_eq!(view.status, InvoiceStatus::Pending);
    assert_eq!(view.number.as_deref(), Some("B1AB464C-0181"));
    assert_eq!(
        view.subscription,
        Some(SubscriptionId::new("sub_K4J0aB2bmSyb6b"))
    );
    assert_eq!(
        view.lines[0].price_id.as_deref(),
        Some("price_1IDQm5JDPojXS6LNM31hxKzp")
    );
}

#[tokio::test]
async fn invoice_finalization_failed_leaves_the_draft_pending() {
    // A one-off invoice (no subscription): before the invoice model such events were ignored.
    let app = deliver(&["stripe/2018-07-27/invoice.finalization_failed__own.json"]).await;
    let view = invoice(&app, "in_own2018dbInv01").view(None);
    assert_eq!(view.status, InvoiceStatus::Pending);
    assert_eq!(view.subscription, None);
    assert_eq!(view.billing_reason.as_deref(), Some("manual"));
    assert_eq!(view.lines[0].id, "ii_own2018dbLine00");
}

#[tokio::test]
async fn invoice_updated_takes_the_newest_snapshot() {
    // The attempt's `invoice.payment_failed` and the `invoice.updated` reporting it share a
    // second; either way the record holds attempt 1 and the next retry.
    for order in [
        ["03_invoice.payment_failed", "04_invoice.updated"],
        ["04_invoice.updated", "03_invoice.payment_failed"],
    ] {
        let mut files = vec![syn("01_invoice.created"), syn("02_invoice.finalized")];
        files.extend(order.iter().map(|f| syn(f)));
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let app = deliver(&files).await;
        let view = invoice(&app, "in_syn1").view(None);
        assert_eq!(view.status, InvoiceStatus::Failed, "{order:?}");
        assert_eq!(view.attempt_count, Some(1));
        assert_eq!(view.next_payment_attempt, Some(1_762_002_000 + 3 * 86_400));
    }
    // Alone, an update is a snapshot: pending, its fields kept.
    let app = deliver(&[&syn("04_invoice.updated")]).await;
    let view = invoice(&app, "in_syn1").view(None);
    assert_eq!(view.status, InvoiceStatus::Pending);
    assert_eq!(view.attempt_count, Some(1));
}

#[tokio::test]
async fn invoice_deleted_is_final_in_either_order() {
    let forward = deliver(&[&syn("09_invoice.created"), &syn("10_invoice.deleted")]).await;
    let backward = deliver(&[&syn("10_invoice.deleted"), &syn("09_invoice.created")]).await;
    let (a, b) = (invoice(&forward, "in_syn2"), invoice(&backward, "in_syn2"));
    assert_eq!(a.status(), InvoiceStatus::Deleted);
    assert_eq!(a, b, "the same record whatever the order");
    assert_eq!(a.view(None).currency.as_deref(), Some("usd"));
}

#[tokio::test]
async fn invoice_paid_and_payment_succeeded_are_paid() {
    let cases = [
        (
            "stripe/2020-03-02/invoice.paid__stripe-sync-engine.json",
            "in_1KJqKBJDPojXS6LNJbvLUgEy",
            Some(0),
        ),
        // 2018: the payload's own status still says `draft`; the event type decides.
        (
            "stripe/2018-01-23/invoice.payment_succeeded__stripe_model_callbacks.json",
            "in_1BrsEhAT5SYrvIfdlmd9sZns",
            Some(10_000),
        ),
        (
            "stripe/2025-03-31.basil/invoice.payment_succeeded__rust-indaggo-SIGNED.json",
            "in_1RMgafCMHTTliF5ilpBkRLZf",
            Some(4999),
        ),
        (
            "stripe/lifecycle/03_invoice.paid.json",
            "in_life1",
            Some(1500),
        ),
        (
            "stripe/lifecycle-2020/03_invoice.paid.json",
            "in_life1",
            Some(1500),
        ),
    ];
    for (file, id, paid) in cases {
        let app = deliver(&[file]).await;
        let view = invoice(&app, id).view(None);
        assert_eq!(view.status, InvoiceStatus::Paid, "{file}");
        assert_eq!(view.amount_paid, paid, "{file}");
        assert!(view.subscription.is_some(), "{file}");
    }
    // The basil signed delivery: its subscription under `parent`, its line under `pricing`.
    let app =
        deliver(&["stripe/2025-03-31.basil/invoice.payment_succeeded__rust-indaggo-SIGNED.json"])
            .await;
    let view = invoice(&app, "in_1RMgafCMHTTliF5ilpBkRLZf").view(None);
    assert_eq!(
        view.subscription,
        Some(SubscriptionId::new("sub_1RMgafCMHTTliF5imBKfvfyV"))
    );
    assert_eq!(
        view.lines[0].product_id.as_deref(),
        Some("prod_S6iXedXCQhbo7o")
    );
    assert_eq!(view.currency.as_deref(), Some("cad"));
}

#[tokio::test]
async fn invoice_payment_failed_is_failed() {
    let app = deliver(&["stripe/lifecycle/04_invoice.payment_failed.json"]).await;
    let view = invoice(&app, "in_life2").view(None);
    assert_eq!(view.status, InvoiceStatus::Failed);
    assert!(!view.action_required);
    assert_eq!(view.next_payment_attempt, Some(1_759_575_600));
    // A one-off invoice's failure (2018).
    let app = deliver(&["stripe/2018-07-27/invoice.payment_failed__own.json"]).await;
    assert_eq!(
        invoice(&app, "in_own2018dbInv03").status(),
        InvoiceStatus::Failed
    );
    // This 2018 payload reports its invoice already `uncollectible`: Stripe's word is kept.
    let app =
        deliver(&["stripe/2018-01-23/invoice.payment_failed__stripe_model_callbacks.json"]).await;
    assert_eq!(
        invoice(&app, "in_00000000000000").status(),
        InvoiceStatus::Uncollectible
    );
}

#[tokio::test]
async fn invoice_payment_action_required_needs_the_customer() {
    // Awaiting authentication only: still pending, with `action_required`.
    let app =
        deliver(&["stripe/SYNTH-envelope/invoice.payment_action_required__pay-rails-object.json"])
            .await;
    let view = invoice(&app, "in_1234").view(None);
    assert_eq!(view.status, InvoiceStatus::Pending);
    assert!(view.action_required);
    assert_eq!(
        view.hosted_invoice_url.as_deref(),
        Some("https://invoice.stripe.com/")
    );
    assert_eq!(view.lines[0].quantity, Some(24_104_515));
    // The same attempt also failed (an off-session payment): failed, and action required.
    let app = deliver(&[
        "stripe/lifecycle/04_invoice.payment_failed.json",
        "stripe/lifecycle/05_invoice.payment_action_required.json",
    ])
    .await;
    let view = invoice(&app, "in_life2").view(None);
    assert_eq!(
        (view.status, view.action_required),
        (InvoiceStatus::Failed, true)
    );
}

#[tokio::test]
async fn invoice_voided_is_voided() {
    for (file, id) in [
        (
            "stripe/2019-05-16/invoice.voided__stripe_model_callbacks.json",
            "in_00000000000000",
        ),
        (
            "stripe/2020-03-02/invoice.voided__stripe-sync-engine.json",
            "in_1KJqKBJDPojXS6LNJbvLUgEy",
        ),
    ] {
        let app = deliver(&[file]).await;
        assert_eq!(invoice(&app, id).status(), InvoiceStatus::Voided, "{file}");
    }
    let app = deliver(&[&syn("11_invoice.voided")]).await;
    let view = invoice(&app, "in_syn3").view(None);
    assert_eq!(view.status, InvoiceStatus::Voided);
    assert_eq!(
        (view.currency.as_deref(), view.total),
        (Some("jpy"), Some(1200))
    );
    assert_eq!(view.lines[0].price_id.as_deref(), Some("price_setup_fee"));
}

#[tokio::test]
async fn invoice_marked_uncollectible_can_still_be_paid() {
    let app = deliver(&["stripe/2018-07-27/invoice.marked_uncollectible__own.json"]).await;
    assert_eq!(
        invoice(&app, "in_own2018dbInv02").status(),
        InvoiceStatus::Uncollectible
    );
    let forward = deliver(&[
        &syn("06_invoice.marked_uncollectible"),
        &syn("07_invoice.paid"),
    ])
    .await;
    let backward = deliver(&[
        &syn("07_invoice.paid"),
        &syn("06_invoice.marked_uncollectible"),
    ])
    .await;
    let (a, b) = (invoice(&forward, "in_syn1"), invoice(&backward, "in_syn1"));
    assert_eq!(a.status(), InvoiceStatus::Paid);
    assert_eq!(a, b);
    assert_eq!(a.view(None).amount_paid, Some(2900));
}

#[tokio::test]
async fn invoice_payment_paid_marks_the_invoice_paid_and_keeps_the_payment() {
    // Before basil's other events: an invoice without a customer yet, already paid.
    let app = deliver(&["stripe/2023-10-16/invoice_payment.paid__stripe-sync-engine.json"]).await;
    let alone = invoice(&app, "in_103Q0w2eZvKYlo2C5PYwf6Wf");
    assert_eq!(
        (alone.status(), alone.customer.as_ref()),
        (InvoiceStatus::Paid, None)
    );
    let payment = &alone.payments["inpay_1M3USa2eZvKYlo2CBjuwbq0N"];
    assert_eq!(
        payment.payment_intent.as_deref(),
        Some("pi_103Q0w2eZvKYlo2C364X582Z")
    );
    assert_eq!(payment.amount_paid, Some(2000));
    // The twin of `invoice.paid`, in either order: one record, paid, with the payment.
    let all: Vec<String> = (1..=8)
        .map(|n| {
            let names = [
                "01_invoice.created",
                "02_invoice.finalized",
                "03_invoice.payment_failed",
                "04_invoice.updated",
                "05_invoice.payment_action_required",
                "06_invoice.marked_uncollectible",
                "07_invoice.paid",
                "08_invoice_payment.paid",
            ];
            syn(names[n - 1])
        })
        .collect();
    let forward: Vec<&str> = all.iter().map(String::as_str).collect();
    let backward: Vec<&str> = all.iter().rev().map(String::as_str).collect();
    let (a, b) = (deliver(&forward).await, deliver(&backward).await);
    let (a, b) = (invoice(&a, "in_syn1"), invoice(&b, "in_syn1"));
    assert_eq!(a, b);
    assert_eq!(a.status(), InvoiceStatus::Paid);
    assert_eq!(
        a.payments["inpay_syn1"].payment_intent.as_deref(),
        Some("pi_syn1")
    );
    assert_eq!(a.customer.as_ref().map(|c| c.as_str()), Some("cus_syn1"));
}

#[tokio::test]
async fn billing_lists_subscriptions_and_the_newest_invoices() {
    let app = deliver(&[
        "stripe/lifecycle/01_checkout.session.completed.json",
        "stripe/lifecycle/02_customer.subscription.created.json",
        "stripe/lifecycle/03_invoice.paid.json",
        "stripe/lifecycle/04_invoice.payment_failed.json",
        "stripe/lifecycle/05_invoice.payment_action_required.json",
    ])
    .await;
    let (status, body) = app.get("/users/user_42/billing").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["known"], true);
    assert_eq!(body["purchases"], json!([]));
    assert_eq!(body["subscriptions"][0]["subscription"], "sub_life1");
    assert_eq!(body["subscriptions"][0]["billing_status"], "REQUIRED");
    let invoices = body["invoices"].as_array().expect("invoices");
    let ids: Vec<&str> = invoices.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, ["in_life2", "in_life1"], "newest first");
    let renewal = &invoices[0];
    assert_eq!(renewal["status"], "failed");
    assert_eq!(renewal["action_required"], true);
    assert_eq!(renewal["number"], "LIFE-0002");
    assert_eq!(renewal["amount_due"], 1500);
    assert_eq!(renewal["currency"], "usd");
    assert_eq!(renewal["user"], "user_42");
    assert_eq!(renewal["billing_reason"], "subscription_cycle");
    assert!(renewal["hosted_invoice_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://")));
    assert_eq!(invoices[1]["status"], "paid");
    assert!(
        !body.to_string().contains("@example.com"),
        "the read route never shows an email address: {body}"
    );
    let (_, unknown) = app.get("/users/nobody/billing").await;
    assert_eq!(
        unknown,
        json!({"user_id": "nobody", "known": false, "subscriptions": [], "scheduled": [], "purchases": [], "invoices": [],
            "charges": [], "next_cursor": null})
    );
}

// ---------------------------------------------------------------------------------------------
// Against DynamoDB (moto)
// ---------------------------------------------------------------------------------------------

/// An item as stored, read back through the SDK.
async fn stored_item(table: &str, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(&sdk_config())
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(pk.into()))
        .key("SK", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// A checkout that links `customer` to `user` (the synthetic invoices name only a hint).
fn link(customer: &str, user: &str) -> Vec<u8> {
    event(
        "evt_syn_00_checkout",
        "checkout.session.completed",
        1_761_998_000,
        json!({"id": "cs_syn", "object": "checkout.session", "mode": "subscription",
            "customer": customer, "client_reference_id": user, "subscription": "sub_syn1"}),
    )
}

#[tokio::test]
async fn moto_an_invoice_lifecycle_in_either_order_leaves_the_same_items() {
    let files: Vec<String> = std::fs::read_dir(fixture_path(SYN))
        .expect("synthetic invoices")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            format!(
                "{SYN}/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(files.len(), 11);
    let mut answers = Vec::new();
    let mut items = Vec::new();
    for reverse in [false, true] {
        let app = spawn_moto(false).await;
        let table = app.dynamo.as_ref().expect("dynamo").table().to_owned();
        let (_, linked) = app
            .post(Family::Checkout, &link("cus_syn1", "user_syn"))
            .await;
        assert_eq!(linked["state"], "applied", "{linked}");
        let order: Vec<&String> = if reverse {
            files.iter().rev().collect()
        } else {
            files.iter().collect()
        };
        for file in &order {
            let (status, json) = app.post_fixture(file).await;
            assert_eq!(status, StatusCode::OK, "{file}: {json}");
            assert!(
                matches!(json["state"].as_str(), Some("applied" | "stale")),
                "{file}: {json}"
            );
        }
        // A redelivery is a duplicate, whichever endpoint it reaches.
        let (_, again) = app.post_fixture(order[0]).await;
        assert_eq!(again["state"], "duplicate", "{again}");
        let mut docs = Vec::new();
        for id in ["in_syn1", "in_syn2", "in_syn3"] {
            let item = stored_item(&table, &format!("INVOICE#stripe#{id}"), "INVOICE")
                .await
                .unwrap_or_else(|| panic!("no item for {id}"));
            assert_eq!(text(&item, "kind"), "invoice");
            assert_eq!(text(&item, "customer"), "cus_syn1");
            assert_eq!(text(&item, "GSI1PK"), "INVOICES#stripe#cus_syn1");
            assert!(text(&item, "GSI1SK").ends_with(&format!("#{id}")));
            assert!(item.contains_key("rev"));
            let doc: serde_json::Value = serde_json::from_str(&text(&item, "doc")).expect("doc");
            docs.push(doc);
        }
        items.push(docs);
        let (status, billing) = app.get("/users/user_syn/billing").await;
        assert_eq!(status, StatusCode::OK);
        answers.push(billing);
    }
    assert_eq!(
        items[0], items[1],
        "the stored invoices do not depend on the order"
    );
    assert_eq!(answers[0], answers[1]);
    let invoices = answers[0]["invoices"].as_array().expect("invoices");
    let listed: Vec<(&str, &str)> = invoices
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or(""),
                i["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("in_syn3", "voided"),
            ("in_syn2", "deleted"),
            ("in_syn1", "paid")
        ],
        "newest first"
    );
    let paid = &invoices[2];
    assert_eq!(paid["number"], "SYN-0001");
    assert_eq!(paid["payments"]["inpay_syn1"]["payment_intent"], "pi_syn1");
    assert_eq!(paid["user"], "user_syn");
    assert_eq!(invoices[0]["currency"], "jpy");
}

/// One monthly invoice of `cus_life1`, from the basil fixture, numbered `i`.
fn monthly_invoice(event_type: &str, i: i64, lines: usize) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/lifecycle/03_invoice.paid.json")).expect("json");
    let created = 1_600_000_000 + i * 2_592_000;
    let id = format!("in_1Q{i:04}LkdIwHu7ixeRlqHVzM");
    event["id"] = format!("evt_{event_type}_{i}").into();
    event["type"] = event_type.into();
    event["created"] = (created + 7).into();
    let object = &mut event["data"]["object"];
    object["id"] = id.clone().into();
    object["created"] = created.into();
    object["number"] = format!("LIFE-{i:04}").into();
    object["hosted_invoice_url"] =
        format!("https://invoice.stripe.com/i/acct_life/test_{id}").into();
    let line = object["lines"]["data"][0].clone();
    object["lines"]["data"] = serde_json::Value::Array(vec![line; lines]);
    serde_json::to_vec(&event).expect("json")
}

#[tokio::test]
async fn moto_a_customer_with_years_of_invoices_keeps_small_items() {
    let app = spawn_moto(false).await;
    let table = app.dynamo.as_ref().expect("dynamo").table().to_owned();
    for file in [
        "01_checkout.session.completed",
        "02_customer.subscription.created",
    ] {
        app.post_fixture(&format!("stripe/lifecycle/{file}.json"))
            .await;
    }
    let customer_size = |item: Option<HashMap<String, AttributeValue>>| {
        item_size(&item.expect("the customer item"))
    };
    let mut after_a_year = 0;
    // Thirty monthly invoices, each paid (moto copies the table on every transaction, so more
    // would only slow the suite: the sizes stop moving after the first).
    for i in 0..30 {
        let (status, json) = app
            .post(Family::Invoice, &monthly_invoice("invoice.paid", i, 1))
            .await;
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{json}"
        );
        if i == 11 {
            after_a_year =
                customer_size(stored_item(&table, "CUS#stripe#cus_life1", "STATE").await);
        }
    }
    let after_years = customer_size(stored_item(&table, "CUS#stripe#cus_life1", "STATE").await);
    // Invoices live in their own items: the aggregate does not grow with them.
    assert_eq!(
        after_years, after_a_year,
        "the customer item grew with its invoices"
    );
    assert!(after_years < 16 * 1024, "customer item {after_years} bytes");
    // An invoice with 400 lines keeps 50 and says there are more; its item stays small.
    let (_, json) = app
        .post(Family::Invoice, &monthly_invoice("invoice.paid", 30, 400))
        .await;
    assert_eq!(json["state"], "applied", "{json}");
    let big = stored_item(
        &table,
        "INVOICE#stripe#in_1Q0030LkdIwHu7ixeRlqHVzM",
        "INVOICE",
    )
    .await
    .expect("the big invoice");
    assert!(
        item_size(&big) < 64 * 1024,
        "invoice item {} bytes",
        item_size(&big)
    );
    let (_, billing) = app.get("/users/user_42/billing").await;
    let invoices = billing["invoices"].as_array().expect("invoices");
    assert_eq!(invoices.len(), billing::http::BILLING_INVOICES);
    assert_eq!(invoices[0]["number"], "LIFE-0030", "newest first");
    assert_eq!(
        invoices[0]["lines"].as_array().map(Vec::len),
        Some(MAX_LINES)
    );
    assert_eq!(invoices[0]["more_lines"], true);
    assert_eq!(invoices[23]["number"], "LIFE-0007");
    assert!(invoices.iter().all(|i| i["status"] == "paid"));
    // Paged through the index (GSI1SK after the cursor): every invoice once, newest first.
    let mut numbers: Vec<String> = Vec::new();
    let mut path = "/users/user_42/billing?limit=7".to_owned();
    for _ in 0..10 {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let listed = page["invoices"].as_array().expect("invoices");
        assert!(listed.len() <= 7);
        numbers.extend(
            listed
                .iter()
                .map(|i| i["number"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/users/user_42/billing?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..=30).rev().map(|n| format!("LIFE-{n:04}")).collect();
    assert_eq!(numbers, want);
}
