//! Disputes and refund objects of a purchase's charge in every order, checked against the true
//! order.
//!
//! The lifecycle: a user buys a product (payment-mode Checkout); `payment_intent.succeeded`
//! binds its charge to the customer; a refund object gives part of it back; the buyer disputes
//! the charge (`charge.dispute.created` and `charge.dispute.funds_withdrawn` in one second); the
//! dispute closes — lost, or in the second variant won. Disputes and refund objects name only
//! the charge, so in most orders they arrive before anything tells which customer the charge is
//! of. The oracle (`truth`) walks the true sequence as Stripe does: a dispute's status is its
//! last event's, a refund's its last event's, and only succeeded refunds count. All 720 orders
//! of the six events, each to a fresh service, must end in the oracle's purchase, and in the
//! in-order customer aggregate and charge item.

use super::*;
use billing::domain::access::PurchaseAccess;
use billing::domain::charge::Charge;

const SESSION: &str = "cs_d1";
const INTENT: &str = "pi_d1";
const CHARGE: &str = "ch_d1";
const DISPUTE: &str = "dp_d1";
const REFUNDED: i64 = 300;

/// One event of the lifecycle, in its true position.
struct DEv {
    id: &'static str,
    ty: &'static str,
    created: i64,
    object: Value,
}

fn dispute(status: &str) -> Value {
    json!({
        "id": DISPUTE, "object": "dispute", "charge": CHARGE, "payment_intent": INTENT,
        "amount": AMOUNT - REFUNDED, "currency": "eur", "reason": "fraudulent", "status": status,
    })
}

/// The true sequence; ids disagree with the order (the same-second pair has the later one first).
fn lifecycle(closed: &'static str) -> Vec<DEv> {
    vec![
        DEv {
            id: "evt_d_f",
            ty: CHECKOUT,
            created: BASE,
            object: json!({
                "id": SESSION, "object": "checkout.session", "mode": "payment",
                "customer": CUSTOMER, "client_reference_id": USER, "payment_intent": INTENT,
                "amount_total": AMOUNT, "currency": "eur", "payment_status": "paid",
                "status": "complete", "metadata": { "product_id": "prod_once" },
            }),
        },
        DEv {
            id: "evt_d_e",
            ty: "payment_intent.succeeded",
            created: BASE + 1,
            object: json!({
                "id": INTENT, "object": "payment_intent", "customer": CUSTOMER,
                "amount": AMOUNT, "amount_received": AMOUNT, "currency": "eur",
                "status": "succeeded", "latest_charge": CHARGE,
            }),
        },
        DEv {
            id: "evt_d_d",
            ty: "refund.created",
            created: BASE + 5,
            object: json!({
                "id": "re_d1", "object": "refund", "charge": CHARGE, "payment_intent": INTENT,
                "amount": REFUNDED, "currency": "eur", "status": "succeeded",
            }),
        },
        DEv {
            id: "evt_d_z",
            ty: "charge.dispute.created",
            created: BASE + 10,
            object: dispute("warning_needs_response"),
        },
        DEv {
            id: "evt_d_a",
            ty: "charge.dispute.funds_withdrawn",
            created: BASE + 10,
            object: dispute("needs_response"),
        },
        DEv {
            id: "evt_d_b",
            ty: "charge.dispute.closed",
            created: BASE + 40,
            object: dispute(closed),
        },
    ]
}

/// (grants, reason, amount refunded, dispute status, funds withdrawn) of the purchase.
type Seen = (bool, String, i64, Option<String>, bool);

fn truth(events: &[DEv]) -> Seen {
    let mut paid = false;
    let mut dispute: Option<String> = None;
    let mut withdrawn = false;
    let mut refunds: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for e in events {
        let o = &e.object;
        let status = o["status"].as_str().unwrap_or_default().to_owned();
        match e.ty {
            CHECKOUT => paid |= o["payment_status"] == "paid",
            t if t.starts_with("charge.dispute.") => {
                withdrawn |= t == "charge.dispute.funds_withdrawn";
                dispute = Some(status);
            }
            t if t.starts_with("refund.") => {
                let id = o["id"].as_str().unwrap_or_default().to_owned();
                refunds.insert(id, (status, o["amount"].as_i64().unwrap_or(0)));
            }
            _ => {}
        }
    }
    let refunded: i64 = refunds
        .values()
        .filter(|(s, _)| s == "succeeded")
        .map(|(_, a)| a)
        .sum();
    let reason = match dispute.as_deref() {
        _ if !paid => "unpaid",
        _ if refunded >= AMOUNT => "refunded",
        Some("lost") => "dispute_lost",
        Some("won" | "warning_closed") | None => "paid",
        Some(_) => "disputed",
    };
    (
        matches!(reason, "paid" | "disputed"),
        reason.into(),
        refunded,
        dispute,
        withdrawn,
    )
}

fn seen(p: &PurchaseAccess) -> Seen {
    (
        p.grants,
        p.reason.clone(),
        p.amount_refunded,
        p.dispute.as_ref().map(|d| d.status.clone()),
        p.dispute.as_ref().is_some_and(|d| d.funds_withdrawn),
    )
}

fn sign_disputes(events: &[DEv]) -> Vec<Signed> {
    events
        .iter()
        .map(|e| sign_one(e.id, e.ty, e.created, "2022-11-15", &e.object, None))
        .collect()
}

/// The customer aggregates, the charge items and the user's purchase after `deliveries`.
async fn run_disputes(
    signed: &[Signed],
    deliveries: &[Delivery],
) -> Result<((Vec<CustomerBilling>, Vec<Charge>), Seen), String> {
    let (store, service) = memory_service();
    let receipts = deliver(&service, signed, deliveries).await?;
    check_ledger(&store, signed, &receipts).await?;
    let doc = store
        .user(&UserId::new(USER))
        .ok_or("the buyer has no access document")?;
    let purchases: Vec<PurchaseAccess> =
        doc.purchases.into_values().flat_map(|s| s.newest).collect();
    let [purchase] = purchases.as_slice() else {
        return Err(format!("{} purchases, not one", purchases.len()));
    };
    Ok(((store.customers(), store.all_charges()), seen(purchase)))
}

fn every_order_matches_the_truth(closed: &'static str, expected_reason: &str) {
    let rt = runtime();
    let events = lifecycle(closed);
    let expected = truth(&events);
    assert_eq!(expected.1, expected_reason, "the oracle's reading");
    let signed = sign_disputes(&events);
    check_every_order(&signed, &expected, |deliveries| {
        rt.block_on(run_disputes(&signed, deliveries))
    });
}

#[test]
fn a_lost_dispute_and_a_refund_object_match_the_true_order_in_every_order() {
    every_order_matches_the_truth("lost", "dispute_lost");
}

#[test]
fn a_won_dispute_and_a_refund_object_match_the_true_order_in_every_order() {
    every_order_matches_the_truth("won", "paid");
}
