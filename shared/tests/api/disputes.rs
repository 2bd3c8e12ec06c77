//! Disputes, refund objects and the charge item that joins them with the customer: one test per
//! event type (what each fixture of that type does to the charge's item, in memory), the join
//! in either order with what the access and billing routes then show, a subscription invoice's
//! disputed charge, and the same against moto.

use crate::helpers::*;
use billing::domain::charge::Charge;
use billing::domain::customer::CustomerBilling;
use billing::domain::ids::{CustomerId, Provider};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::{json, Value};

/// Delivers one fixture to a fresh app in its own mode; returns its state, the charge items
/// and the customers.
async fn deliver(file: &str) -> (String, Vec<Charge>, Vec<CustomerBilling>) {
    let env = Envelope::parse(&fixture(file)).expect("an event");
    let app = spawn_memory(env.livemode.unwrap_or(false));
    let (status, json) = app.post_fixture(file).await;
    assert_eq!(status, StatusCode::OK, "{file}: {json}");
    let memory = app.memory.as_ref().expect("memory store");
    (
        json["state"].as_str().unwrap_or_default().to_owned(),
        memory.all_charges(),
        memory.customers(),
    )
}

/// The one charge item a delivery left, with its one dispute's status.
fn dispute_status<'a>(charges: &'a [Charge], charge: &str, dispute: &str) -> Option<&'a str> {
    let [item] = charges else {
        panic!("one charge item, got {}", charges.len());
    };
    assert_eq!(item.id, charge);
    assert_eq!(item.customer, None, "a dispute names no customer");
    item.disputes.get(dispute).and_then(|d| d.status())
}

#[tokio::test]
async fn charge_dispute_created_opens_a_dispute_on_its_charge_item() {
    for (file, charge, dispute, status, intent) in [
        (
            "stripe/2018-01-23/charge.dispute.created__stripe_model_callbacks.json",
            "ch_00000000000000",
            "dp_00000000000000",
            "needs_response",
            None,
        ),
        (
            "stripe/2020-03-02/charge.dispute.created__stripe-sync-engine.json",
            "ch_1IqtGAJDPojXS6LNstgEfUji",
            "dp_1MLuxQJDPojXS6LNrukJCBBG",
            "warning_needs_response",
            Some("pi_1IqtG9JDPojXS6LNOGnYrIqq"),
        ),
    ] {
        let (state, charges, customers) = deliver(file).await;
        // Applied and visible on the charge's item, although no customer is known (yet).
        assert_eq!(state, "applied", "{file}");
        assert_eq!(dispute_status(&charges, charge, dispute), Some(status));
        assert_eq!(charges[0].payment_intent.as_deref(), intent, "{file}");
        assert!(charges[0].disputes[dispute].state.closed.is_none());
        assert!(customers.is_empty(), "{file}: no customer aggregate");
    }
}

#[tokio::test]
async fn charge_dispute_closed_sets_the_final_status() {
    for (file, charge, dispute, status, closed) in [
        (
            "stripe/2018-01-23/charge.dispute.closed__stripe_model_callbacks.json",
            "ch_00000000000000",
            "dp_00000000000000",
            "won",
            true,
        ),
        // The copied payload's object still shows an open status: kept as it says.
        (
            "stripe/2020-03-02/charge.dispute.closed__stripe-sync-engine.json",
            "ch_1IqtGAJDPojXS6LNstgEfUji",
            "dp_1MLuxQJDPojXS6LNrukJCBBG",
            "warning_needs_response",
            false,
        ),
        (
            "stripe/2020-08-27/charge.dispute.closed__own.json",
            "ch_own2020DisputedCharge01",
            "dp_own2020Dispute01",
            "lost",
            true,
        ),
        (
            "stripe/2025-04-30.basil/charge.dispute.closed__own.json",
            "ch_ownbasilDisputed01",
            "dp_ownbasilDispute01",
            "warning_closed",
            true,
        ),
    ] {
        let (state, charges, _) = deliver(file).await;
        assert_eq!(state, "applied", "{file}");
        assert_eq!(dispute_status(&charges, charge, dispute), Some(status));
        assert_eq!(
            charges[0].disputes[dispute].state.closed.is_some(),
            closed,
            "{file}"
        );
    }
}

/// The types no public payload exists for, built from Stripe's Dispute object: each sets what
/// the test says on the charge's item.
#[tokio::test]
async fn dispute_updates_and_funds_movements_are_kept_per_dispute() {
    let app = spawn_memory(false);
    let dispute = |status: &str| {
        json!({"id": "dp_syn", "object": "dispute", "charge": "ch_syn", "amount": 900,
            "currency": "usd", "reason": "fraudulent", "status": status})
    };
    for (id, ty, at, status) in [
        ("evt_u", "charge.dispute.updated", NOW - 50, "under_review"),
        (
            "evt_w",
            "charge.dispute.funds_withdrawn",
            NOW - 60,
            "needs_response",
        ),
        ("evt_r", "charge.dispute.funds_reinstated", NOW - 10, "won"),
    ] {
        let (_, json) = app
            .post(Family::Charge, &event(id, ty, at, dispute(status)))
            .await;
        assert_eq!(json["state"], "applied", "{ty}");
    }
    let charges = app.memory.as_ref().expect("memory").all_charges();
    let record = &charges[0].disputes["dp_syn"];
    assert_eq!(record.status(), Some("won"), "closed is final");
    assert!(record.funds_withdrawn && record.funds_reinstated);
    assert_eq!(
        record.state.open, None,
        "the open statuses are dropped once closed"
    );
}

#[tokio::test]
async fn refund_objects_record_their_status_and_only_succeeded_ones_count() {
    for (file, charge, refund, amount) in [
        (
            "stripe/2020-03-02/refund.created__stripe-sync-engine.json",
            "ch_1NirD82eZvKYlo2CIvbtLWuY",
            "re_1Nispe2eZvKYlo2Cd31jOCgZ",
            1000,
        ),
        (
            "stripe/2025-04-30.basil/charge.refund.updated__own.json",
            "ch_ownbasilRefunded01",
            "re_ownbasilRefund01",
            750,
        ),
    ] {
        let (state, charges, customers) = deliver(file).await;
        assert_eq!(state, "applied", "{file}");
        let [item] = charges.as_slice() else {
            panic!("{file}: one charge item");
        };
        assert_eq!(item.id, charge);
        let current = item.refunds[refund].current().expect("a state");
        assert_eq!(current.status, "succeeded");
        assert_eq!(item.refunded_total(), amount, "{file}");
        assert!(customers.is_empty());
    }
    // refund.updated then refund.failed (no public payloads; Stripe's Refund object): the
    // failed refund gives nothing back.
    let app = spawn_memory(false);
    let refund = |status: &str| {
        json!({"id": "re_syn", "object": "refund", "charge": "ch_syn", "amount": 400,
            "currency": "usd", "status": status})
    };
    // The failure arrives first; the earlier success is then stale (a failed refund is final).
    for (id, ty, at, status, state) in [
        ("evt_f", "refund.failed", NOW - 10, "failed", "applied"),
        ("evt_u", "refund.updated", NOW - 20, "succeeded", "stale"),
    ] {
        let (_, json) = app
            .post(Family::Charge, &event(id, ty, at, refund(status)))
            .await;
        assert_eq!(json["state"], state, "{ty}");
    }
    let charges = app.memory.as_ref().expect("memory").all_charges();
    assert_eq!(charges[0].refunded_total(), 0, "failed after succeeding");
}

#[tokio::test]
async fn payment_intent_succeeded_binds_its_charge_to_its_customer() {
    for (file, charge, customer) in [
        (
            "stripe/2020-08-27/payment_intent.succeeded__own.json",
            "ch_own2020PiCharge01",
            "cus_own2020Buyer01",
        ),
        (
            "stripe/2024-09-30.acacia/payment_intent.succeeded__own.json",
            "ch_ownacaciaOkCharge01",
            "cus_ownacaciaOk01",
        ),
        (
            "stripe/2025-04-30.basil/payment_intent.succeeded__own.json",
            "ch_ownbasilOkCharge01",
            "cus_ownbasilOk01",
        ),
    ] {
        let (state, charges, customers) = deliver(file).await;
        assert_eq!(state, "applied", "{file}");
        let [item] = charges.as_slice() else {
            panic!("{file}: one charge item");
        };
        assert_eq!(
            (item.id.as_str(), item.customer.as_ref()),
            (charge, Some(&CustomerId::new(customer)))
        );
        assert!(
            customers.is_empty(),
            "{file}: nothing to carry to the customer yet"
        );
    }
    // Payloads of an intent that has not succeeded, with no customer: nothing to bind.
    for file in [
        "stripe/2020-03-02/payment_intent.succeeded__stripe-sync-engine.json",
        "stripe/2022-11-15/payment_intent.succeeded__stripe_model_callbacks.json",
    ] {
        let (state, charges, _) = deliver(file).await;
        assert_eq!((state.as_str(), charges.len()), ("ignored", 0), "{file}");
    }
}

/// `charge.refunded` names the charge and its customer: it writes the charge's item too, and
/// binds it.
#[tokio::test]
async fn charge_refunded_binds_and_fills_its_charge_item() {
    let (state, charges, customers) =
        deliver("stripe/2020-03-02/charge.refunded__stripe-sync-engine.json").await;
    assert_eq!(state, "applied");
    let [item] = charges.as_slice() else {
        panic!("one charge item");
    };
    assert_eq!(item.customer, Some(CustomerId::new("cus_J7Mkgr8mvbl1eK")));
    assert!(item.fully_refunded());
    assert_eq!(customers[0].charges.get(&item.id), Some(item));
}

fn session(customer: &str, user: &str, intent: &str) -> Value {
    json!({
        "id": "cs_disp", "object": "checkout.session", "mode": "payment", "customer": customer,
        "client_reference_id": user, "payment_intent": intent, "amount_total": 2000,
        "currency": "usd", "metadata": {"product_id": "prod_course"},
        "payment_status": "paid", "status": "complete",
    })
}

fn intent(customer: &str, intent: &str, charge: &str) -> Value {
    json!({
        "id": intent, "object": "payment_intent", "customer": customer, "amount": 2000,
        "amount_received": 2000, "currency": "usd", "status": "succeeded",
        "latest_charge": charge,
    })
}

fn dispute_of(charge: &str, intent: Option<&str>, status: &str) -> Value {
    json!({
        "id": "dp_join", "object": "dispute", "charge": charge, "payment_intent": intent,
        "amount": 2000, "currency": "usd", "reason": "fraudulent", "status": status,
    })
}

/// The purchase (by session id) as a route lists it.
fn purchase<'a>(body: &'a Value, session: &str) -> &'a Value {
    body["purchases"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["purchase"] == session))
        .unwrap_or_else(|| panic!("no purchase {session} in {body}"))
}

/// (grants, reason, dispute status) of the purchase in the billing route.
async fn shown(app: &TestApp, user: &str) -> (Value, Value, Value) {
    let (status, body) = app.get(&format!("/users/{user}/billing")).await;
    assert_eq!(status, StatusCode::OK);
    let p = purchase(&body, "cs_disp");
    (
        p["grants"].clone(),
        p["reason"].clone(),
        p["dispute"]["status"].clone(),
    )
}

/// A dispute before the charge is bound, and one after: in either order the second event
/// carries the joined state to the customer, and the routes show it. An open dispute still
/// grants; a lost one (delivered to a cold instance) does not.
#[tokio::test]
async fn a_dispute_and_its_binding_join_in_either_order() {
    let checkout = event(
        "evt_j1",
        "checkout.session.completed",
        NOW - 90,
        session("cus_j", "user_j", "pi_j"),
    );
    let binding = event(
        "evt_j2",
        "payment_intent.succeeded",
        NOW - 80,
        intent("cus_j", "pi_j", "ch_j"),
    );
    // A 2018-shaped dispute: the charge only, no payment intent.
    let opened = event(
        "evt_j3",
        "charge.dispute.created",
        NOW - 50,
        dispute_of("ch_j", None, "needs_response"),
    );
    for order in [[&binding, &opened], [&opened, &binding]] {
        let app = spawn_memory(false);
        let (_, json) = app.post(Family::Checkout, &checkout).await;
        assert_eq!(json["state"], "applied");
        for body in order {
            let (_, json) = app.post(Family::Charge, body).await;
            assert_eq!(json["state"], "applied");
        }
        assert_eq!(
            shown(&app, "user_j").await,
            (json!(true), json!("disputed"), json!("needs_response"))
        );
        let lost = event(
            "evt_j4",
            "charge.dispute.closed",
            NOW - 20,
            dispute_of("ch_j", None, "lost"),
        );
        // Through a cold instance, which has not seen the binding: it reads the charge, then
        // the customer the charge names.
        let (_, json) = spawn_beside(&app).post(Family::Charge, &lost).await;
        assert_eq!(json["state"], "applied");
        assert_eq!(
            shown(&app, "user_j").await,
            (json!(false), json!("dispute_lost"), json!("lost"))
        );
        let (_, access) = app.get("/users/user_j/access").await;
        assert_eq!(purchase(&access, "cs_disp")["reason"], "dispute_lost");
    }
}

/// A won dispute grants again; the feed announced each change of the purchase.
#[tokio::test]
async fn a_won_dispute_grants_again() {
    let app = spawn_memory(false);
    let steps = [
        (
            "evt_w1",
            "checkout.session.completed",
            NOW - 90,
            session("cus_w", "user_w", "pi_w"),
        ),
        (
            "evt_w2",
            "charge.dispute.created",
            NOW - 60,
            dispute_of("ch_w", Some("pi_w"), "needs_response"),
        ),
        (
            "evt_w3",
            "charge.dispute.closed",
            NOW - 30,
            dispute_of("ch_w", Some("pi_w"), "won"),
        ),
        (
            "evt_w4",
            "payment_intent.succeeded",
            NOW - 89,
            intent("cus_w", "pi_w", "ch_w"),
        ),
    ];
    for (id, ty, at, object) in steps {
        let (_, json) = app.post(family_of(ty), &event(id, ty, at, object)).await;
        assert_eq!(json["state"], "applied", "{ty}");
    }
    assert_eq!(
        shown(&app, "user_w").await,
        (json!(true), json!("paid"), json!("won"))
    );
}

fn family_of(ty: &str) -> Family {
    billing::providers::stripe::translate::family_of(ty)
}

/// A subscription invoice's charge disputed: recorded with the customer, the subscription's
/// access unchanged (Stripe does not cancel a subscription over a dispute).
#[tokio::test]
async fn a_disputed_subscription_charge_leaves_the_subscription_access_alone() {
    let app = spawn_memory(false);
    let sub = event(
        "evt_s1",
        "customer.subscription.created",
        NOW - 90,
        subscription("sub_d", "cus_s", "active", Some("user_s")),
    );
    let (_, json) = app.post(Family::Subscription, &sub).await;
    assert_eq!(json["state"], "applied");
    let (_, before) = app.get("/users/user_s/access").await;
    // charge.refunded of part of the invoice's charge binds it (it names the customer).
    let refunded = event(
        "evt_s2",
        "charge.refunded",
        NOW - 60,
        json!({"id": "ch_s", "object": "charge", "customer": "cus_s", "invoice": "in_s",
            "amount": 1000, "amount_refunded": 100, "refunded": false, "status": "succeeded"}),
    );
    let opened = event(
        "evt_s3",
        "charge.dispute.created",
        NOW - 30,
        dispute_of("ch_s", None, "needs_response"),
    );
    for body in [&opened, &refunded] {
        let (_, json) = app.post(Family::Charge, body).await;
        assert_eq!(json["state"], "applied");
    }
    let customers = app.memory.as_ref().expect("memory").customers();
    let kept = &customers[0].charges["ch_s"];
    assert_eq!(kept.disputes["dp_join"].status(), Some("needs_response"));
    assert_eq!(kept.refunded_total(), 100);
    let (_, after) = app.get("/users/user_s/access").await;
    assert_eq!(after["tier"], before["tier"]);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["subscriptions"], before["subscriptions"]);
    // Shown by the billing route beside the subscription.
    let (_, billing) = app.get("/users/user_s/billing").await;
    let [shown] = billing["charges"].as_array().expect("charges").as_slice() else {
        panic!("one charge in {billing}");
    };
    assert_eq!(
        (
            &shown["charge"],
            &shown["invoice"],
            &shown["amount_refunded"],
            &shown["disputes"]["dp_join"]
        ),
        (
            &json!("ch_s"),
            &json!("in_s"),
            &json!(100),
            &json!("needs_response")
        )
    );
}

/// Against moto: the dispute is applied on the charge item first (no customer known), the
/// binding carries it to the customer in its one commit, and the close — through a second,
/// cold instance that has not seen the binding — reaches both items.
#[tokio::test]
async fn moto_a_dispute_before_its_binding_joins_the_customer_through_the_charge_item() {
    let store = moto_store().await;
    let app = spawn_on(store.clone(), false);
    let cold = spawn_on(store, false);
    let customer = unique("cus_disp");
    let user = unique("user_disp");
    let ch = unique("ch_disp");
    let steps = [
        (
            unique("evt_co"),
            "checkout.session.completed",
            NOW - 90,
            session(&customer, &user, "pi_disp"),
        ),
        (
            unique("evt_dc"),
            "charge.dispute.created",
            NOW - 60,
            dispute_of(&ch, None, "needs_response"),
        ),
        (
            unique("evt_pi"),
            "payment_intent.succeeded",
            NOW - 85,
            intent(&customer, "pi_disp", &ch),
        ),
        (
            unique("evt_dx"),
            "charge.dispute.closed",
            NOW - 10,
            dispute_of(&ch, None, "lost"),
        ),
    ];
    for (i, (id, ty, at, object)) in steps.iter().enumerate() {
        let instance = if i == 3 { &cold } else { &app };
        let (status, json) = instance
            .post(family_of(ty), &event(id, ty, *at, object.clone()))
            .await;
        assert_eq!(
            (status, json["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{ty}"
        );
        if i == 1 {
            let item = app
                .store
                .charge(Provider::STRIPE, &ch)
                .await
                .expect("read")
                .expect("the charge item");
            assert_eq!(item.value.customer, None);
            assert_eq!(
                item.value.disputes["dp_join"].status(),
                Some("needs_response")
            );
            assert_eq!(
                shown(&app, &user).await,
                (json!(true), json!("paid"), Value::Null),
                "not joined yet: the charge's customer is unknown"
            );
        }
    }
    let item = app
        .store
        .charge(Provider::STRIPE, &ch)
        .await
        .expect("read")
        .expect("the charge item");
    assert_eq!(item.value.customer, Some(CustomerId::new(&customer)));
    assert_eq!(item.value.disputes["dp_join"].status(), Some("lost"));
    assert_eq!(item.rev, 3, "dispute, binding, close: three writes");
    assert_eq!(
        shown(&app, &user).await,
        (json!(false), json!("dispute_lost"), json!("lost"))
    );
    // The stored customer aggregate holds the same charge as its item.
    let (_, trail) = app.get(&format!("/users/{user}/events")).await;
    assert_eq!(
        trail["events"][0]["after"]["charge"]["disputes"]["dp_join"],
        "lost"
    );
}

/// The binding and the dispute delivered at once, both reading the charge before either
/// commits (the fault plan's meeting), many times: the charge item's revision makes one of them
/// retry, and the customer always ends holding the dispute.
#[tokio::test]
async fn a_binding_and_a_dispute_delivered_at_once_still_join() {
    for round in 0..10 {
        let app = spawn_memory(false);
        let checkout = event(
            "evt_k1",
            "checkout.session.completed",
            NOW - 90,
            session("cus_k", "user_k", "pi_k"),
        );
        let (_, json) = app.post(Family::Checkout, &checkout).await;
        assert_eq!(json["state"], "applied");
        let binding = event(
            "evt_k2",
            "payment_intent.succeeded",
            NOW - 80,
            intent("cus_k", "pi_k", "ch_k"),
        );
        let opened = event(
            "evt_k3",
            "charge.dispute.created",
            NOW - 50,
            dispute_of("ch_k", Some("pi_k"), "needs_response"),
        );
        app.faults.meet_after_load(2);
        let ((_, a), (_, b)) = tokio::join!(
            app.post(Family::Charge, &binding),
            app.post(Family::Charge, &opened)
        );
        assert_eq!(
            (&a["state"], &b["state"]),
            (&json!("applied"), &json!("applied"))
        );
        assert_eq!(
            shown(&app, "user_k").await,
            (json!(true), json!("disputed"), json!("needs_response")),
            "round {round}"
        );
    }
}
