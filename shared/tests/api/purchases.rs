//! One-time purchases and refunds, one test per event type: what each fixture of that type does
//! to the customer's aggregate (in memory); then, against moto, a purchase and its full refund
//! read back from the access and billing routes.

use crate::helpers::*;
use billing::domain::customer::CustomerBilling;
use billing::domain::ids::{CustomerId, UserId};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::{json, Value};

/// Delivers one fixture to a fresh app in its own mode; returns its state and the customers.
async fn deliver(file: &str) -> (String, Vec<CustomerBilling>) {
    let env = Envelope::parse(&fixture(file)).expect("an event");
    let app = spawn_memory(env.livemode.unwrap_or(false));
    let (status, json) = app.post_fixture(file).await;
    assert_eq!(status, StatusCode::OK, "{file}: {json}");
    let memory = app.memory.as_ref().expect("memory store");
    (
        json["state"].as_str().unwrap_or_default().to_owned(),
        memory.customers_with_purchases(),
    )
}

#[tokio::test]
async fn checkout_session_completed_in_payment_mode_records_a_purchase() {
    let (state, customers) =
        deliver("stripe/2020-03-02/checkout.session.completed__stripe-sync-engine.json").await;
    assert_eq!(state, "applied");
    let [customer] = customers.as_slice() else {
        panic!("one customer, got {}", customers.len());
    };
    assert_eq!(customer.customer, CustomerId::new("cus_IhGfebO16cMIGN"));
    let purchase = customer
        .purchases
        .get("cs_live_9RBjcHiy2i5p99Tf1MYM90c3SHK1grU0E6Ae6pKWR2KPA4ZiuKiB2X1Y3X")
        .expect("the session's purchase");
    assert!(purchase.paid);
    assert_eq!(
        purchase.payment_intent.as_deref(),
        Some("pi_1IqxJOJDPojXS6LN9uOebAea")
    );
    assert_eq!(
        (purchase.amount_total, purchase.currency.as_deref()),
        (Some(999), Some("eur"))
    );
    // Subscription-mode sessions only link: no purchase.
    for file in [
        "stripe/2025-03-31.basil/checkout.session.completed__own.json",
        "stripe/lifecycle/01_checkout.session.completed.json",
        "stripe/lifecycle-2020/01_checkout.session.completed.json",
    ] {
        let (_, customers) = deliver(file).await;
        assert!(
            customers.iter().all(|c| c.purchases.is_empty()),
            "{file}: a subscription checkout is not a purchase"
        );
    }
}

#[tokio::test]
async fn charge_refunded_records_the_refund_of_its_charge() {
    let (state, customers) =
        deliver("stripe/2020-03-02/charge.refunded__stripe-sync-engine.json").await;
    assert_eq!(state, "applied");
    let [customer] = customers.as_slice() else {
        panic!("one customer, got {}", customers.len());
    };
    // Kept as the customer's copy of its charge (no purchase of it is known: unclaimed).
    let refund = customer
        .charges
        .get("ch_3Kl36gJDPojXS6LN0DCM4A8l")
        .expect("the charge's refund");
    assert_eq!(
        refund.payment_intent.as_deref(),
        Some("pi_3Kl36gJDPojXS6LN02fQVtKR")
    );
    assert_eq!((refund.amount, refund.amount_refunded), (Some(2500), 2500));
    assert!(refund.fully_refunded());
    // A guest charge (no customer) belongs to no aggregate: recorded, ignored.
    let (state, customers) =
        deliver("stripe/2018-01-23/charge.refunded__stripe_model_callbacks.json").await;
    assert_eq!((state.as_str(), customers.len()), ("ignored", 0));
}

/// A paid invoice of no subscription is a purchase (its lines name the product); a refund of
/// the charge that names the invoice ends what it grants, in either order.
#[tokio::test]
async fn a_paid_one_off_invoice_is_a_purchase_that_its_full_refund_ends() {
    let link = event(
        "evt_i0",
        "customer.updated",
        NOW - 90,
        json!({"id": "cus_inv", "object": "customer", "metadata": {"user_id": "user_inv"}}),
    );
    let paid = event(
        "evt_i1",
        "invoice.paid",
        NOW - 60,
        json!({"id": "in_once", "object": "invoice", "customer": "cus_inv", "status": "paid",
            "currency": "eur", "amount_paid": 700, "total": 700, "created": NOW - 70,
            "lines": {"object": "list", "data": [{"id": "il_once", "amount": 700,
                "price": {"id": "price_once", "product": "prod_once"}}]}}),
    );
    let refund = event(
        "evt_i2",
        "charge.refunded",
        NOW - 30,
        json!({"id": "ch_inv", "object": "charge", "customer": "cus_inv", "invoice": "in_once",
            "payment_intent": "pi_inv", "amount": 700, "amount_refunded": 700,
            "refunded": true, "status": "succeeded"}),
    );
    for order in [[&paid, &refund], [&refund, &paid]] {
        let app = spawn_memory(false);
        let (status, _) = app.post(Family::Charge, &link).await;
        assert_eq!(status, StatusCode::OK);
        let (_, first) = app.post(family(order[0]), order[0]).await;
        assert_eq!(first["state"], "applied");
        if order[0] == &paid {
            let (_, body) = app.get("/users/user_inv/billing").await;
            let bought = purchase(&body, "in_once");
            assert_eq!(
                (&bought["grants"], &bought["kind"]),
                (&json!(true), &json!("invoice"))
            );
            assert_eq!(bought["product"], "prod_once");
        }
        let (_, second) = app.post(family(order[1]), order[1]).await;
        assert_eq!(second["state"], "applied");
        let (_, body) = app.get("/users/user_inv/billing").await;
        let bought = purchase(&body, "in_once");
        assert_eq!(
            (
                &bought["grants"],
                &bought["reason"],
                &bought["amount_total"]
            ),
            (&json!(false), &json!("refunded"), &json!(700))
        );
    }
}

fn family(body: &[u8]) -> Family {
    let env = Envelope::parse(body).expect("an event");
    billing::providers::stripe::translate::family_of(&env.event_type)
}

fn payment_session(id: &str, customer: &str, user: &str, intent: &str) -> Value {
    json!({
        "id": id, "object": "checkout.session", "mode": "payment", "customer": customer,
        "client_reference_id": user, "payment_intent": intent, "amount_total": 1500,
        "currency": "eur", "metadata": {"product_id": "prod_ebook"},
        "payment_status": "paid", "status": "complete",
    })
}

fn refunded_charge(customer: &str, intent: &str, refunded: i64) -> Value {
    json!({
        "id": "ch_moto", "object": "charge", "customer": customer, "payment_intent": intent,
        "amount": 1500, "amount_refunded": refunded, "refunded": refunded == 1500,
        "currency": "eur", "status": "succeeded",
    })
}

/// The purchase (by session id) as a route lists it.
fn purchase<'a>(body: &'a Value, session: &str) -> &'a Value {
    body["purchases"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["purchase"] == session))
        .unwrap_or_else(|| panic!("no purchase {session} in {body}"))
}

#[tokio::test]
async fn moto_a_purchase_then_its_full_refund_read_back_from_access_and_billing() {
    let app = spawn_moto(false).await;
    let customer = unique("cus_buy");
    let user = unique("user_buy");
    let (checkout, partial, full) = (unique("evt_co"), unique("evt_rp"), unique("evt_rf"));
    let session = payment_session("cs_moto", &customer, &user, "pi_moto");
    let body = event(&checkout, "checkout.session.completed", NOW - 60, session);
    let (status, json) = app.post(Family::Checkout, &body).await;
    assert_eq!(
        (status, json["state"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    let (_, access) = app.get(&format!("/users/{user}/access")).await;
    let bought = purchase(&access, "cs_moto");
    assert_eq!(
        (&bought["grants"], &bought["reason"]),
        (&json!(true), &json!("paid"))
    );
    assert_eq!(bought["product"], "prod_ebook");
    for (id, refunded, at) in [(&partial, 500, NOW - 30), (&full, 1500, NOW - 20)] {
        let charge = refunded_charge(&customer, "pi_moto", refunded);
        let body = event(id, "charge.refunded", at, charge);
        let (status, json) = app.post(Family::Charge, &body).await;
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied"))
        );
    }
    for route in ["access", "billing"] {
        let (status, body) = app.get(&format!("/users/{user}/{route}")).await;
        assert_eq!(status, StatusCode::OK);
        let refunded = purchase(&body, "cs_moto");
        assert_eq!(
            (
                &refunded["grants"],
                &refunded["reason"],
                &refunded["amount_refunded"]
            ),
            (&json!(false), &json!("refunded"), &json!(1500)),
            "{route}"
        );
    }
    // The audit trail names the purchase each event changed, before and after.
    let (_, trail) = app.get(&format!("/users/{user}/events")).await;
    let newest = &trail["events"][0];
    assert_eq!(newest["event_id"], json!(full));
    assert_eq!(newest["before"]["purchases"][0]["reason"], "paid");
    assert_eq!(newest["after"]["purchases"][0]["reason"], "refunded");
    let doc = app.store.load_user(&UserId::new(user)).await.expect("read");
    assert_eq!(
        doc.expect("a document").value.feed_seq,
        3,
        "bought, partly refunded, fully refunded: three messages"
    );
}
