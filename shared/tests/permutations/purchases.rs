//! One-time purchases and their refunds in every order, checked against the true order.
//!
//! The lifecycle: a user buys the same product twice (two payment-mode Checkout Sessions, the
//! second paid asynchronously: completed unpaid, then `async_payment_succeeded`); the first
//! purchase's charge is refunded in part, then in full in the same second; the second's only in
//! part. The oracle (`truth`) walks the true sequence as Stripe does: a session is paid once an
//! event says so, and a charge's refund state is its last `charge.refunded`. All 720 orders of
//! the six events, each to a fresh service, must end in the oracle's purchases and in one model.

use super::*;
use billing::domain::access::PurchaseAccess;

const PRODUCT: &str = "prod_once";

struct Buy {
    session: &'static str,
    intent: &'static str,
}

const BUYS: [Buy; 2] = [
    Buy {
        session: "cs_p1",
        intent: "pi_p1",
    },
    Buy {
        session: "cs_p2",
        intent: "pi_p2",
    },
];

/// One event of the lifecycle, in its true position.
struct PEv {
    id: String,
    ty: &'static str,
    created: i64,
    object: Value,
}

fn session(buy: &Buy, paid: bool) -> Value {
    json!({
        "id": buy.session, "object": "checkout.session", "mode": "payment",
        "customer": CUSTOMER, "client_reference_id": USER,
        "payment_intent": buy.intent, "amount_total": AMOUNT, "currency": "eur",
        "metadata": { "product_id": PRODUCT },
        "payment_status": if paid { "paid" } else { "unpaid" }, "status": "complete",
    })
}

fn charge(buy: &Buy, refunded: i64) -> Value {
    json!({
        "id": format!("ch_{}", &buy.intent[3..]), "object": "charge", "customer": CUSTOMER,
        "payment_intent": buy.intent, "amount": AMOUNT, "amount_refunded": refunded,
        "refunded": refunded == AMOUNT, "currency": "eur", "status": "succeeded",
    })
}

/// The true sequence; ids disagree with the order (the full refund has the smaller id).
fn lifecycle() -> Vec<PEv> {
    let ev = |id: &str, ty, created, object| PEv {
        id: id.to_owned(),
        ty,
        created,
        object,
    };
    vec![
        ev("evt_p_a", CHECKOUT, BASE, session(&BUYS[0], true)),
        ev("evt_p_b", CHECKOUT, BASE + 1, session(&BUYS[1], false)),
        ev(
            "evt_p_c",
            "checkout.session.async_payment_succeeded",
            BASE + 3,
            session(&BUYS[1], true),
        ),
        ev(
            "evt_p_z",
            "charge.refunded",
            BASE + 5,
            charge(&BUYS[0], 400),
        ),
        ev(
            "evt_p_d",
            "charge.refunded",
            BASE + 5,
            charge(&BUYS[0], AMOUNT),
        ),
        ev(
            "evt_p_e",
            "charge.refunded",
            BASE + 6,
            charge(&BUYS[1], 300),
        ),
    ]
}

/// (session, grants, reason, amount refunded) of each purchase, walking the true sequence.
type Seen = Vec<(String, bool, String, i64)>;

fn truth(events: &[PEv]) -> Seen {
    let mut paid: BTreeMap<String, bool> = BTreeMap::new();
    let mut refunds: BTreeMap<String, (i64, bool)> = BTreeMap::new();
    for e in events {
        let o = &e.object;
        if e.ty == "charge.refunded" {
            let pi = o["payment_intent"].as_str().unwrap_or_default().to_owned();
            let full = o["refunded"].as_bool().unwrap_or(false);
            let amount = o["amount_refunded"].as_i64().unwrap_or(0);
            refunds.insert(pi, (amount, full));
        } else {
            let id = o["id"].as_str().unwrap_or_default().to_owned();
            *paid.entry(id).or_default() |= o["payment_status"] == "paid";
        }
    }
    BUYS.iter()
        .map(|b| {
            let (amount, full) = refunds.get(b.intent).copied().unwrap_or((0, false));
            let is_paid = paid.get(b.session).copied().unwrap_or(false);
            let reason = match (is_paid, full) {
                (false, _) => "unpaid",
                (true, true) => "refunded",
                (true, false) => "paid",
            };
            (
                b.session.to_owned(),
                reason == "paid",
                reason.into(),
                amount,
            )
        })
        .collect()
}

/// In session-id order, as the oracle lists them (the user's item lists the newest first).
fn seen(purchases: &[PurchaseAccess]) -> Seen {
    let mut purchases = purchases.to_vec();
    purchases.sort_by(|a, b| a.purchase.cmp(&b.purchase));
    purchases
        .iter()
        .map(|p| {
            (
                p.purchase.clone(),
                p.grants,
                p.reason.clone(),
                p.amount_refunded,
            )
        })
        .collect()
}

fn sign_purchases(events: &[PEv]) -> Vec<Signed> {
    events
        .iter()
        .map(|e| sign_one(&e.id, e.ty, e.created, "2020-08-27", &e.object, None))
        .collect()
}

/// The customer aggregate and the user's purchases after `deliveries`.
async fn run_purchases(
    signed: &[Signed],
    deliveries: &[Delivery],
) -> Result<(Vec<CustomerBilling>, Seen), String> {
    let (store, service) = memory_service();
    let receipts = deliver(&service, signed, deliveries).await?;
    check_ledger(&store, signed, &receipts).await?;
    let doc = store
        .user(&UserId::new(USER))
        .ok_or("the buyer has no access document")?;
    let purchases: Vec<PurchaseAccess> =
        doc.purchases.into_values().flat_map(|s| s.newest).collect();
    Ok((store.customers(), seen(&purchases)))
}

#[test]
fn purchases_and_refunds_match_the_true_order_in_every_order() {
    let rt = runtime();
    let events = lifecycle();
    let expected = truth(&events);
    assert_eq!(
        expected
            .iter()
            .map(|(_, _, reason, _)| reason.as_str())
            .collect::<Vec<_>>(),
        ["refunded", "paid"],
        "the lifecycle covers a full and a partial refund"
    );
    let signed = sign_purchases(&events);
    check_every_order(&signed, &expected, |deliveries| {
        rt.block_on(run_purchases(&signed, deliveries))
    });
}
