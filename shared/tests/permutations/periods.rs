//! Periods in every order, checked against the true order: a gift bought for another user and
//! partly refunded, a subscription schedule that starts and moves to its second phase (two
//! updates in one second, ordered only by their `previous_attributes`), and two paid invoices
//! of a subscription (its periods). The oracle (`truth`) walks the true sequence: the gift
//! grants while its charge is not fully refunded, the schedule is its last snapshot, and the
//! periods are those the paid invoices billed. All 5040 orders of the seven events, each to a
//! fresh service, must end in the oracle's answer and in the in-order aggregate.

use super::*;

const FRIEND: &str = "user_friend";
const SCHEDULE: &str = "sub_sched_p";

/// One event of the lifecycle, in its true position.
struct PEv {
    id: &'static str,
    ty: &'static str,
    created: i64,
    object: Value,
    previous: Option<Value>,
}

fn gift_session() -> Value {
    json!({
        "id": "cs_gift_p", "object": "checkout.session", "mode": "payment",
        "customer": CUSTOMER, "client_reference_id": USER, "created": BASE - 30,
        "payment_intent": "pi_gift_p", "amount_total": AMOUNT, "currency": "eur",
        "metadata": {"gift_recipient_user_id": FRIEND, "gift_days": "30", "tier": "pro"},
        "payment_status": "paid", "status": "complete",
    })
}

fn gift_charge(refunded: i64) -> Value {
    json!({
        "id": "ch_gift_p", "object": "charge", "customer": CUSTOMER,
        "payment_intent": "pi_gift_p", "amount": AMOUNT, "amount_refunded": refunded,
        "refunded": refunded == AMOUNT, "currency": "eur", "status": "succeeded",
    })
}

fn phase(start: i64, price: &str) -> Value {
    json!({"start_date": start, "end_date": start + MONTH, "items": [{"price": price, "quantity": 1}]})
}

fn schedule(status: &str, current: Option<usize>) -> Value {
    let starts = [BASE + MONTH, BASE + 2 * MONTH, BASE + 3 * MONTH];
    json!({
        "id": SCHEDULE, "object": "subscription_schedule", "customer": CUSTOMER,
        "status": status,
        "subscription": current.map(|_| SUBS[0]),
        "current_phase": current.map(|i| json!({"start_date": starts[i], "end_date": starts[i] + MONTH})),
        "phases": [phase(starts[0], PRICES[0]), phase(starts[1], PRICES[1]), phase(starts[2], PRICES[1])],
    })
}

fn paid_invoice(n: i64) -> Value {
    let start = BASE + (n - 1) * MONTH;
    json!({
        "id": format!("in_period_p{n}"), "object": "invoice", "customer": CUSTOMER,
        "subscription": SUBS[0], "status": "paid", "created": start, "amount_paid": AMOUNT,
        "amount_due": AMOUNT, "currency": "eur", "billing_reason": "subscription_cycle",
        "lines": {"object": "list", "has_more": false, "data": [{
            "id": format!("il_p{n}"), "object": "line_item", "amount": AMOUNT,
            "period": {"start": start, "end": start + MONTH}, "proration": false,
            "subscription": SUBS[0], "price": {"id": PRICES[0], "product": PRODUCTS[0]},
        }]},
    })
}

/// The true sequence; ids disagree with the order where they can.
fn lifecycle() -> Vec<PEv> {
    let ev = |id, ty, created, object, previous| PEv {
        id,
        ty,
        created,
        object,
        previous,
    };
    vec![
        ev("evt_q_g", CHECKOUT, BASE, gift_session(), None),
        ev(
            "evt_q_f",
            "subscription_schedule.created",
            BASE + 1,
            schedule("not_started", None),
            None,
        ),
        ev(
            "evt_q_e",
            "subscription_schedule.updated",
            BASE + 2,
            schedule("active", Some(0)),
            Some(json!({"status": "not_started", "subscription": null, "current_phase": null})),
        ),
        // The same second: only its previous_attributes say it came after the one above.
        ev(
            "evt_q_a",
            "subscription_schedule.updated",
            BASE + 2,
            schedule("active", Some(1)),
            Some(
                json!({"current_phase": {"start_date": BASE + MONTH, "end_date": BASE + 2 * MONTH}}),
            ),
        ),
        ev("evt_q_d", PAID, BASE + 3, paid_invoice(2), None),
        ev("evt_q_c", PAID, BASE + 3, paid_invoice(1), None),
        ev(
            "evt_q_b",
            "charge.refunded",
            BASE + 4,
            gift_charge(400),
            None,
        ),
    ]
}

/// (gift grants, gift end, the schedule's phases still to come, the subscription's periods).
type Seen = (bool, i64, Vec<(i64, i64)>, Vec<(i64, i64, String)>);

fn truth(events: &[PEv]) -> Seen {
    let mut full_refund = false;
    let mut gift_end = 0;
    let mut last_schedule: Option<&Value> = None;
    let mut periods = Vec::new();
    for e in events {
        let o = &e.object;
        match e.ty {
            CHECKOUT => gift_end = o["created"].as_i64().unwrap_or_default() + 30 * 86_400,
            "charge.refunded" => full_refund = o["refunded"] == true,
            PAID => {
                let p = &o["lines"]["data"][0]["period"];
                periods.push((
                    p["start"].as_i64().unwrap_or_default(),
                    p["end"].as_i64().unwrap_or_default(),
                    "paid".to_owned(),
                ));
            }
            _ => last_schedule = Some(o),
        }
    }
    let to_come = last_schedule.map_or_else(Vec::new, |s| {
        let current_end = s["current_phase"]["end_date"].as_i64();
        s["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["start_date"].as_i64().unwrap_or(0),
                    p["end_date"].as_i64().unwrap_or(0),
                )
            })
            .filter(|(start, _)| current_end.is_none_or(|end| *start >= end))
            .collect()
    });
    periods.sort();
    (!full_refund, gift_end, to_come, periods)
}

fn sign_periods(events: &[PEv]) -> Vec<Signed> {
    events
        .iter()
        .map(|e| {
            let previous = e.previous.as_ref();
            sign_one(e.id, e.ty, e.created, "2020-08-27", &e.object, previous)
        })
        .collect()
}

/// The customer aggregate and what the recipient and the buyer's model say after `deliveries`.
async fn run_periods(
    signed: &[Signed],
    deliveries: &[Delivery],
) -> Result<(Vec<CustomerBilling>, Seen), String> {
    let (store, service) = memory_service();
    let receipts = deliver(&service, signed, deliveries).await?;
    check_ledger(&store, signed, &receipts).await?;
    let friend = store
        .user(&UserId::new(FRIEND))
        .ok_or("the recipient has no access document")?;
    let gift = friend
        .sources
        .values()
        .flatten()
        .find(|s| s.status.as_str() == "gift")
        .ok_or("the recipient has no gift")?;
    let customers = store.customers();
    let customer = customers.first().ok_or("no aggregate")?;
    let to_come = customer
        .scheduled()
        .into_values()
        .flat_map(|(_, phases)| phases.into_iter().map(|p| (p.start, p.end)))
        .collect();
    let periods = customer
        .periods_of(&SubscriptionId::new(SUBS[0]))
        .into_iter()
        .map(|p| {
            (
                p.start,
                p.end,
                json!(p.kind).as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let seen = (
        gift.grants,
        gift.ends_at.unwrap_or_default(),
        to_come,
        periods,
    );
    Ok((customers, seen))
}

#[test]
fn gifts_schedules_and_periods_match_the_true_order_in_every_order() {
    let rt = runtime();
    let events = lifecycle();
    let expected = truth(&events);
    assert!(
        expected.0,
        "the gift is only partly refunded: it still grants"
    );
    assert_eq!(expected.2.len(), 1, "one phase still to come");
    assert_eq!(expected.3.len(), 2, "two periods");
    let signed = sign_periods(&events);
    check_every_order(&signed, &expected, |deliveries| {
        rt.block_on(run_periods(&signed, deliveries))
    });
}
