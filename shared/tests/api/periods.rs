//! Subscription periods: every settled subscription invoice of every API version names the
//! period it billed; the billing answer lists a subscription's periods, each with its invoice;
//! a subscription whose periods leave a gap while Stripe says it runs is Invalid (counted,
//! visible) until the missing invoice arrives.

use crate::helpers::*;
use billing::domain::events::BillingEvent;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::translate::translate;
use billing::telemetry::Counter;
use http::StatusCode;
use serde_json::Value;

const MONTH: i64 = 2_592_000;
const START: i64 = 1_756_720_800;

/// The lifecycle's first paid invoice, renumbered as the `i`-th monthly invoice (period
/// `[START + i·MONTH, START + (i+1)·MONTH)`).
fn paid_invoice(i: i64) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&fixture("stripe/lifecycle/03_invoice.paid.json")).expect("json");
    let created = START + i * MONTH;
    event["id"] = format!("evt_period_{i}").into();
    event["created"] = (created + 7).into();
    let object = &mut event["data"]["object"];
    object["id"] = format!("in_period_{i}").into();
    object["created"] = created.into();
    object["billing_reason"] = if i == 0 {
        "subscription_create"
    } else {
        "subscription_cycle"
    }
    .into();
    let line = &mut object["lines"]["data"][0];
    line["period"]["start"] = created.into();
    line["period"]["end"] = (created + MONTH).into();
    serde_json::to_vec(&event).expect("json")
}

async fn post_ok(app: &TestApp, family: billing::providers::stripe::Family, body: &[u8]) {
    let (status, json) = app.post(family, body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "applied", "{json}");
}

fn spans(billing: &Value) -> Vec<(i64, i64, String, String)> {
    billing["subscriptions"][0]["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| {
            (
                p["start"].as_i64().unwrap_or_default(),
                p["end"].as_i64().unwrap_or_default(),
                p["kind"].as_str().unwrap_or_default().to_owned(),
                p["invoice"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_gap_makes_the_subscription_invalid_until_the_missing_invoice_arrives() {
    use billing::providers::stripe::Family::{Checkout, Invoice, Subscription};
    let app = spawn_memory(false);
    let checkout = fixture("stripe/lifecycle/01_checkout.session.completed.json");
    let created = fixture("stripe/lifecycle/02_customer.subscription.created.json");
    post_ok(&app, Checkout, &checkout).await;
    post_ok(&app, Subscription, &created).await;
    post_ok(&app, Invoice, &paid_invoice(0)).await;
    post_ok(&app, Invoice, &paid_invoice(2)).await;

    let (_, billing) = app.get("/users/user_42/billing").await;
    let sub = &billing["subscriptions"][0];
    assert_eq!(sub["invalid"]["reason"], "gap", "{billing}");
    assert_eq!(sub["invalid"]["previous_end"], START + MONTH);
    assert_eq!(sub["invalid"]["next_start"], START + 2 * MONTH);
    assert_eq!(app.metrics.count(Counter::SubscriptionsInvalid), 1);
    // The access answer shows it too, and access still follows Stripe's status.
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(access["sources"][0]["invalid"]["reason"], "gap");
    assert_eq!(access["grants_paid_tier"], true);

    post_ok(&app, Invoice, &paid_invoice(1)).await;
    let (_, billing) = app.get("/users/user_42/billing").await;
    assert_eq!(
        billing["subscriptions"][0].get("invalid"),
        None,
        "{billing}"
    );
    let expected: Vec<(i64, i64, String, String)> = (0..3)
        .map(|i| {
            (
                START + i * MONTH,
                START + (i + 1) * MONTH,
                "paid".to_owned(),
                format!("in_period_{i}"),
            )
        })
        .collect();
    assert_eq!(spans(&billing), expected);
    assert_eq!(app.metrics.count(Counter::SubscriptionsInvalid), 1);
}

#[tokio::test]
async fn the_same_periods_in_every_order_of_their_invoices() {
    use billing::providers::stripe::Family::{Checkout, Invoice, Subscription};
    let mut answers = Vec::new();
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
        let app = spawn_memory(false);
        post_ok(
            &app,
            Checkout,
            &fixture("stripe/lifecycle/01_checkout.session.completed.json"),
        )
        .await;
        post_ok(
            &app,
            Subscription,
            &fixture("stripe/lifecycle/02_customer.subscription.created.json"),
        )
        .await;
        for i in order {
            post_ok(&app, Invoice, &paid_invoice(i)).await;
        }
        let (_, billing) = app.get("/users/user_42/billing").await;
        assert_eq!(billing["subscriptions"][0].get("invalid"), None);
        answers.push(spans(&billing));
    }
    assert_eq!(answers[0].len(), 4);
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
}

/// Every settled subscription invoice we hold, 2018 to basil, names the period it billed:
/// its subscription lines' period (the invoice's own `period_*` is the previous period).
#[test]
fn every_paid_subscription_invoice_fixture_names_its_period() {
    let mut seen = 0;
    for (rel, bytes) in crate::fixtures::stripe_fixtures() {
        let env = Envelope::parse(&bytes).expect("an event");
        if !matches!(
            env.event_type.as_str(),
            "invoice.paid" | "invoice.payment_succeeded"
        ) {
            continue;
        }
        let map = billing::providers::stripe::translate::StripeMapping::default();
        let Ok(BillingEvent::Invoice(invoice)) = translate(&env, &map) else {
            panic!("{rel}: not an invoice event");
        };
        let Some(payment) = invoice.payment() else {
            panic!("{rel}: no payment");
        };
        if payment.subscription.is_none() {
            continue;
        }
        let period = payment.period.unwrap_or_else(|| panic!("{rel}: no period"));
        let line = invoice
            .snapshot
            .lines
            .iter()
            .find(|l| !l.proration)
            .unwrap_or_else(|| panic!("{rel}: no line"));
        assert_eq!(Some(period.start), line.period_start, "{rel}");
        assert_eq!(Some(period.end), line.period_end, "{rel}");
        assert!(period.end > period.start, "{rel}");
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} paid subscription invoices");
}

// ---------------------------------------------------------------------------------------------
// System periods: `billing grant`
// ---------------------------------------------------------------------------------------------

use billing::pipeline::Outcome;
use billing::ports::LedgerState;
use billing::providers::operator::GrantCommand;

const DAY: i64 = 86_400;

async fn grant(app: &TestApp, user: &str, days: u32, tier: &str) -> GrantCommand {
    let command = GrantCommand::new(user, days, tier, "outage credit", "ana", NOW).expect("valid");
    let body = serde_json::to_vec(&command).expect("json");
    let outcome = app.service.record_operator(&body).await;
    assert!(
        matches!(
            &outcome,
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            }
        ),
        "{outcome:?}"
    );
    // The same command again (a retried CLI call) is recorded once.
    let again = app.service.record_operator(&body).await;
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    command
}

async fn a_grant_gives_its_tier_until_it_lapses(app: TestApp) {
    let command = grant(&app, "user_grant", 30, "pro").await;
    let (_, access) = app.get("/users/user_grant/access").await;
    assert_eq!(access["known"], true, "{access}");
    assert_eq!(access["tier"], "pro", "{access}");
    assert_eq!(access["status"], "granted");
    assert_eq!(access["current_period_end"], NOW + 30 * DAY);

    let (_, billing) = app.get("/users/user_grant/billing").await;
    let periods = &billing["subscriptions"][0]["periods"];
    assert_eq!(periods[0]["kind"], "system", "{billing}");
    assert_eq!(periods[0]["start"], NOW);
    assert_eq!(periods[0]["end"], NOW + 30 * DAY);
    assert_eq!(periods[0]["note"], "outage credit (granted by ana)");

    // Recorded like a provider event: the ledger, and an audit entry that says who and why.
    let (status, record) = app.get(&format!("/events/system/{}", command.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["type"], "billing.grant");
    assert_eq!(record["state"], "applied");
    let (_, events) = app.get("/users/user_grant/events").await;
    assert_eq!(
        events["events"][0]["after"]["grant"]["by"], "ana",
        "{events}"
    );
    assert_eq!(
        events["events"][0]["after"]["grant"]["reason"],
        "outage credit"
    );

    // No event marks its end: the answer lapses by itself.
    app.clock.set(NOW + 30 * DAY);
    let (_, access) = app.get("/users/user_grant/access").await;
    assert_eq!(access["tier"], Value::Null, "{access}");
    assert_eq!(access["standing"], "ended");
    assert_eq!(access["grants_paid_tier"], false);
    let (_, billing) = app.get("/users/user_grant/billing").await;
    assert_eq!(billing["subscriptions"][0]["grants"], false);
}

#[tokio::test]
async fn a_grant_gives_its_tier_until_it_lapses_in_memory() {
    a_grant_gives_its_tier_until_it_lapses(spawn_memory(false)).await;
}

#[tokio::test]
async fn moto_a_grant_gives_its_tier_until_it_lapses() {
    a_grant_gives_its_tier_until_it_lapses(spawn_moto(false).await).await;
}

/// A grant beside a Stripe subscription: the best entitlement wins while both run, and the
/// subscription explains the answer again once the grant lapsed.
#[tokio::test]
async fn a_grant_above_the_subscription_wins_and_then_gives_way() {
    use billing::providers::stripe::Family::{Checkout, Subscription};
    let app = spawn_memory(false);
    post_ok(
        &app,
        Checkout,
        &fixture("stripe/lifecycle/01_checkout.session.completed.json"),
    )
    .await;
    post_ok(
        &app,
        Subscription,
        &fixture("stripe/lifecycle/02_customer.subscription.created.json"),
    )
    .await;
    let (_, before) = app.get("/users/user_42/access").await;
    let paid_tier = before["tier"].clone();
    assert_eq!(before["status"], "active");
    // The same tier as the subscription, running longer: the later end wins the tie.
    grant(&app, "user_42", 400, "pro").await;
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(access["status"], "granted", "{access}");
    app.clock.set(NOW + 401 * DAY);
    let (_, access) = app.get("/users/user_42/access").await;
    assert_eq!(access["tier"], paid_tier, "{access}");
    assert_eq!(access["standing"], "good");
    assert_eq!(access["status"], "active");
}

// ---------------------------------------------------------------------------------------------
// Gift periods: bought through Checkout for another user
// ---------------------------------------------------------------------------------------------

fn gift_session(metadata: Value) -> Value {
    serde_json::json!({
        "id": "cs_gift1", "object": "checkout.session", "mode": "payment",
        "customer": "cus_giver", "client_reference_id": "user_giver",
        "payment_intent": "pi_gift1", "amount_total": 3000, "currency": "eur",
        "created": NOW - 100, "metadata": metadata,
        "payment_status": "paid", "status": "complete",
    })
}

fn gift_metadata() -> Value {
    serde_json::json!({"gift_recipient_user_id": "user_friend", "gift_days": "30", "tier": "pro"})
}

fn gift_refund(amount_refunded: i64) -> Value {
    serde_json::json!({
        "id": "ch_gift1", "object": "charge", "customer": "cus_giver",
        "payment_intent": "pi_gift1", "amount": 3000, "amount_refunded": amount_refunded,
        "refunded": amount_refunded == 3000, "currency": "eur", "status": "succeeded",
    })
}

#[tokio::test]
async fn a_gift_grants_its_recipient_not_its_buyer_until_refunded_in_either_order() {
    use billing::providers::stripe::Family::{Charge, Checkout};
    let checkout = event(
        "evt_gift_co",
        "checkout.session.completed",
        NOW - 90,
        gift_session(gift_metadata()),
    );
    let refund = event(
        "evt_gift_rf",
        "charge.refunded",
        NOW - 50,
        gift_refund(3000),
    );
    let mut finals = Vec::new();
    for refund_first in [false, true] {
        let app = spawn_memory(false);
        if refund_first {
            post_ok(&app, Charge, &refund).await;
        }
        post_ok(&app, Checkout, &checkout).await;
        if !refund_first {
            let (_, friend) = app.get("/users/user_friend/access").await;
            assert_eq!(friend["tier"], "pro", "{friend}");
            assert_eq!(friend["status"], "gift");
            assert_eq!(friend["current_period_end"], NOW - 100 + 30 * DAY);
            let (_, billing) = app.get("/users/user_friend/billing").await;
            let period = &billing["subscriptions"][0]["periods"][0];
            assert_eq!(period["kind"], "gift", "{billing}");
            assert_eq!(period["end"], NOW - 100 + 30 * DAY);
            // The recipient sees the gift, never the buyer's trail or invoices.
            let (_, events) = app.get("/users/user_friend/events").await;
            assert_eq!(events["events"], serde_json::json!([]), "{events}");
            assert_eq!(billing["invoices"], serde_json::json!([]));
            // The buyer bought it for someone else: no tier for the buyer.
            let (_, buyer) = app.get("/users/user_giver/access").await;
            assert_eq!(buyer["tier"], Value::Null, "{buyer}");
            assert_eq!(buyer["purchases"][0]["reason"], "gift");
            post_ok(&app, Charge, &refund).await;
        }
        let (_, friend) = app.get("/users/user_friend/access").await;
        assert_eq!(friend["tier"], Value::Null, "{friend}");
        assert_eq!(friend["grants_paid_tier"], false);
        let (_, buyer) = app.get("/users/user_giver/access").await;
        assert_eq!(buyer["purchases"][0]["reason"], "refunded");
        let mut doc = app
            .store
            .load_user(&billing::domain::ids::UserId::new("user_friend"))
            .await
            .expect("read")
            .map(|d| d.value);
        if let Some(d) = doc.as_mut() {
            // When each was written differs with the order; what they hold must not.
            (d.updated_at, d.feed_seq) = (0, 0);
        }
        finals.push(doc);
    }
    assert_eq!(finals[0], finals[1]);
}

#[tokio::test]
async fn a_gift_lapses_at_its_end() {
    use billing::providers::stripe::Family::Checkout;
    let app = spawn_memory(false);
    let body = event(
        "evt_gift_co",
        "checkout.session.completed",
        NOW - 90,
        gift_session(gift_metadata()),
    );
    post_ok(&app, Checkout, &body).await;
    app.clock.set(NOW - 100 + 30 * DAY);
    let (_, friend) = app.get("/users/user_friend/access").await;
    assert_eq!(friend["tier"], Value::Null, "{friend}");
    assert_eq!(friend["standing"], "ended");
}

#[tokio::test]
async fn a_gift_without_its_length_tier_or_buyer_is_parked_by_name() {
    use billing::providers::stripe::Family::Checkout;
    let no_days = serde_json::json!({"gift_recipient_user_id": "user_friend", "tier": "pro"});
    let no_tier = serde_json::json!({"gift_recipient_user_id": "user_friend", "gift_days": "30"});
    let bad_days =
        serde_json::json!({"gift_recipient_user_id": "u", "gift_days": "0", "tier": "pro"});
    let mut guest = gift_session(gift_metadata());
    guest["customer"] = Value::Null;
    let cases = [
        (gift_session(no_days), "metadata.gift_days"),
        (gift_session(no_tier), "metadata.tier"),
        (gift_session(bad_days), "metadata.gift_days"),
        (guest, "customer"),
    ];
    for (i, (session, field)) in cases.into_iter().enumerate() {
        let app = spawn_memory(false);
        let id = format!("evt_gift_bad{i}");
        let body = event(&id, "checkout.session.completed", NOW - 90, session);
        let (status, json) = app.post(Checkout, &body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["state"], "parked", "{field}: {json}");
        let (_, record) = app.get(&format!("/events/stripe/{id}")).await;
        assert!(
            record["detail"].as_str().is_some_and(|d| d.contains(field)),
            "{field}: {record}"
        );
        let (_, friend) = app.get("/users/user_friend/access").await;
        assert_eq!(friend["known"], false);
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduled periods: `subscription_schedule.*`
// ---------------------------------------------------------------------------------------------

const SCHED: &str = "stripe/SYNTH-subscription-schedule";

/// The user of `cus_sched1`, linked by a customer event.
fn link_scheduled_customer() -> Vec<u8> {
    event(
        "evt_sched_link",
        "customer.updated",
        1_700_000_000,
        serde_json::json!({"id": "cus_sched1", "object": "customer", "metadata": {"user_id": "user_sched"}}),
    )
}

async fn scheduled_after(files: &[&str]) -> Value {
    use billing::providers::stripe::Family::{Checkout, Subscription};
    let app = spawn_memory(false);
    let (status, json) = app.post(Checkout, &link_scheduled_customer()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    for file in files {
        let (status, json) = app
            .post(Subscription, &fixture(&format!("{SCHED}/{file}.json")))
            .await;
        assert_eq!(status, StatusCode::OK, "{file}: {json}");
        assert!(
            matches!(json["state"].as_str(), Some("applied" | "stale")),
            "{file}: {json}"
        );
    }
    let (_, billing) = app.get("/users/user_sched/billing").await;
    billing["scheduled"].clone()
}

fn phase_starts(scheduled: &Value) -> Vec<i64> {
    scheduled
        .as_array()
        .expect("a list")
        .iter()
        .flat_map(|s| s["periods"].as_array().cloned().unwrap_or_default())
        .map(|p| p["start"].as_i64().unwrap_or_default())
        .collect()
}

const T0: i64 = 1_767_225_600;

#[tokio::test]
async fn subscription_schedule_created_schedules_every_phase() {
    let scheduled = scheduled_after(&["01_subscription_schedule.created"]).await;
    assert_eq!(scheduled[0]["schedule"], "sub_sched_SYN1", "{scheduled}");
    assert_eq!(scheduled[0]["status"], "not_started");
    assert_eq!(phase_starts(&scheduled), [T0, T0 + MONTH]);
    assert_eq!(scheduled[0]["periods"][0]["kind"], "scheduled");
    assert_eq!(
        scheduled[0]["periods"][1]["note"],
        "price price_pro_monthly"
    );
}

#[tokio::test]
async fn subscription_schedule_updated_leaves_the_phases_after_the_current_one() {
    let started = [
        "01_subscription_schedule.created",
        "02_subscription_schedule.updated",
    ];
    let scheduled = scheduled_after(&started).await;
    assert_eq!(
        scheduled[0]["subscription"], "sub_sched_sub1",
        "{scheduled}"
    );
    assert_eq!(phase_starts(&scheduled), [T0 + MONTH]);
    let last = [
        "01_subscription_schedule.created",
        "02_subscription_schedule.updated",
        "03_subscription_schedule.updated",
    ];
    assert_eq!(scheduled_after(&last).await, serde_json::json!([]));
}

#[tokio::test]
async fn subscription_schedule_released_and_canceled_schedule_nothing_in_any_order() {
    let released = [
        "04_subscription_schedule.released",
        "02_subscription_schedule.updated",
        "01_subscription_schedule.created",
    ];
    assert_eq!(scheduled_after(&released).await, serde_json::json!([]));
    let canceled = [
        "05_subscription_schedule.canceled",
        "01_subscription_schedule.created",
        "02_subscription_schedule.updated",
    ];
    assert_eq!(scheduled_after(&canceled).await, serde_json::json!([]));
}

/// Against DynamoDB: a gift writes the buyer's aggregate and both users' items in one
/// transaction, and a schedule's phases read back from the stored aggregate.
#[tokio::test]
async fn moto_a_gift_and_a_schedule_read_back_through_the_routes() {
    use billing::providers::stripe::Family::{Checkout, Subscription};
    let app = spawn_moto(false).await;
    let mut session = gift_session(gift_metadata());
    let (customer, buyer, friend) = (
        unique("cus_gift"),
        unique("user_giver"),
        unique("user_friend"),
    );
    session["customer"] = customer.clone().into();
    session["client_reference_id"] = buyer.clone().into();
    session["metadata"]["gift_recipient_user_id"] = friend.clone().into();
    let body = event(
        &unique("evt_gift"),
        "checkout.session.completed",
        NOW - 90,
        session,
    );
    post_ok(&app, Checkout, &body).await;
    let (_, access) = app.get(&format!("/users/{friend}/access")).await;
    assert_eq!(
        (access["tier"].as_str(), access["status"].as_str()),
        (Some("pro"), Some("gift")),
        "{access}"
    );
    let (_, bought) = app.get(&format!("/users/{buyer}/access")).await;
    assert_eq!(bought["purchases"][0]["reason"], "gift", "{bought}");
    assert_eq!(bought["tier"], Value::Null);

    let mut schedule: Value = serde_json::from_slice(&fixture(&format!(
        "{SCHED}/01_subscription_schedule.created.json"
    )))
    .expect("json");
    schedule["id"] = unique("evt_sched").into();
    schedule["data"]["object"]["customer"] = customer.clone().into();
    post_ok(
        &app,
        Subscription,
        &serde_json::to_vec(&schedule).expect("json"),
    )
    .await;
    let (_, billing) = app.get(&format!("/users/{buyer}/billing")).await;
    assert_eq!(
        phase_starts(&billing["scheduled"]),
        [T0, T0 + MONTH],
        "{billing}"
    );
}
