//! A PayPal subscription's lifecycle in every order, checked against the true order: created,
//! activated and its first sale completed in one second; suspended and re-activated in the
//! next; a failed payment and the cancellation in the one after. PayPal stamps `create_time` to
//! the millisecond, so the events of one second are ordered by their milliseconds; the ids are
//! chosen to disagree with the true order, so an order that fell back on them would be wrong.
//! Each delivery is signed once (PayPal's offline check, under the suite's CA) and delivered
//! to a fresh service in each order; the user's access must be the oracle's (`truth`), the
//! aggregate the in-order one, a redelivery a duplicate, and no tie counted unresolved.

use super::paypal_support as pp;
use super::*;

const SUB: &str = "I-0WNFXPERM0001";
const PP_USER: &str = "user_paypal_p";

struct PpEv {
    id: &'static str,
    ty: &'static str,
    /// `(second offset from BASE, milliseconds)`.
    at: (i64, u16),
    /// The subscription's PayPal status, for the subscription events.
    status: &'static str,
}

fn time(at: (i64, u16)) -> String {
    let text = pp::rfc3339(BASE + at.0);
    format!("{}.{:03}Z", text.trim_end_matches('Z'), at.1)
}

fn body(e: &PpEv) -> Vec<u8> {
    let resource = match e.ty {
        "PAYMENT.SALE.COMPLETED" => json!({
            "id": "0WNFXSALE00001", "state": "completed", "billing_agreement_id": SUB,
            "amount": {"total": "9.99", "currency": "USD"}, "create_time": time((0, 0)),
        }),
        _ => json!({
            "id": SUB, "plan_id": "P-0WNFXPERMPLAN", "status": e.status, "custom_id": PP_USER,
            "billing_info": {
                "next_billing_time": pp::rfc3339(BASE + MONTH),
                "failed_payments_count": i32::from(e.ty.ends_with("PAYMENT.FAILED")),
                "last_failed_payment": {"time": time((2, 0))},
            },
        }),
    };
    serde_json::to_vec(&json!({
        "id": e.id, "event_version": "1.0", "create_time": time(e.at),
        "resource_type": if e.ty.starts_with("PAYMENT.SALE") { "sale" } else { "subscription" },
        "event_type": e.ty, "resource": resource,
    }))
    .expect("JSON")
}

/// The true sequence; ids run backwards so they never agree with it.
fn lifecycle(cancelled: bool) -> Vec<PpEv> {
    let ev = |id, ty, at, status| PpEv { id, ty, at, status };
    let mut events = vec![
        ev(
            "WH-0WNFX-P9",
            "BILLING.SUBSCRIPTION.CREATED",
            (0, 100),
            "APPROVAL_PENDING",
        ),
        ev(
            "WH-0WNFX-P8",
            "BILLING.SUBSCRIPTION.ACTIVATED",
            (0, 350),
            "ACTIVE",
        ),
        ev("WH-0WNFX-P7", "PAYMENT.SALE.COMPLETED", (0, 900), ""),
        ev(
            "WH-0WNFX-P6",
            "BILLING.SUBSCRIPTION.SUSPENDED",
            (1, 200),
            "SUSPENDED",
        ),
        ev(
            "WH-0WNFX-P5",
            "BILLING.SUBSCRIPTION.RE-ACTIVATED",
            (1, 700),
            "ACTIVE",
        ),
        ev(
            "WH-0WNFX-P4",
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            (2, 50),
            "ACTIVE",
        ),
    ];
    if cancelled {
        events.push(ev(
            "WH-0WNFX-P3",
            "BILLING.SUBSCRIPTION.CANCELLED",
            (2, 999),
            "CANCELLED",
        ));
    }
    events
}

type Seen = (bool, Standing, BillingStatus, String);

/// The access the true sequence implies: the last snapshot's status, ended for good by a
/// cancellation, overdue while the newest payment failed.
fn truth(events: &[PpEv]) -> Seen {
    let (mut status, mut ended, mut failed) = ("", false, false);
    for e in events {
        match e.ty {
            "PAYMENT.SALE.COMPLETED" => failed = false,
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => failed = true,
            "BILLING.SUBSCRIPTION.CANCELLED" => {
                ended = true;
                status = e.status;
            }
            _ => status = e.status,
        }
    }
    let ours = billing::providers::paypal::translate::status(status);
    let (grants, standing, billing) = match (ended, ours.as_str(), failed) {
        (true, _, _) => (false, Standing::Ended, BillingStatus::Cancelled),
        (false, "active", true) => (false, Standing::Overdue, BillingStatus::PastDue),
        (false, "active", false) => (true, Standing::Good, BillingStatus::Done),
        (false, "paused", _) => (false, Standing::Inactive, BillingStatus::Inactive),
        other => panic!("the oracle does not cover {other:?}"),
    };
    (grants, standing, billing, ours.to_string())
}

struct PpSigned {
    id: &'static str,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

async fn run_paypal(
    signed: &[PpSigned],
    order: &[usize],
) -> Result<(Vec<CustomerBilling>, Seen), String> {
    let store = Arc::new(InMemoryBillingStore::new());
    let clock = Arc::new(FixedClock::at(SIGNED_AT));
    let verifier = pp::suite_verifier(clock.clone()).await;
    let metrics = Arc::new(Metrics::memory());
    let service = pp::pipeline_with_paypal(
        store.clone(),
        clock,
        metrics.clone(),
        settings(),
        SECRET,
        verifier,
    );
    for &i in order {
        let s = &signed[i];
        let outcome = service
            .receive(billing::providers::paypal::ENDPOINT, &s.headers, &s.body)
            .await;
        if !matches!(outcome, Outcome::Recorded { .. }) {
            return Err(format!("{}: {outcome:?}", s.id));
        }
    }
    // Once per event id: the first event again changes nothing.
    let first = &signed[order[0]];
    let again = service
        .receive(
            billing::providers::paypal::ENDPOINT,
            &first.headers,
            &first.body,
        )
        .await;
    if !matches!(again, Outcome::Duplicate { .. }) {
        return Err(format!("redelivery of {}: {again:?}", first.id));
    }
    // The milliseconds order one second's snapshots: no tie is left for an API to settle.
    let ties = ties_unresolved(&metrics);
    if ties > 0 {
        return Err(format!("{ties} same-second ties counted unresolved"));
    }
    let doc = store
        .user(&UserId::new(PP_USER))
        .ok_or("the user has no access document")?;
    let sources: Vec<SubscriptionAccess> = doc.sources.into_values().flatten().collect();
    let [one] = sources.as_slice() else {
        return Err(format!("{} sources", sources.len()));
    };
    let seen = (
        one.grants,
        one.standing,
        one.billing_status,
        one.status.to_string(),
    );
    Ok((store.customers(), seen))
}

fn check_every_order(cancelled: bool) {
    let rt = runtime();
    let events = lifecycle(cancelled);
    let expected = truth(&events);
    let signed: Vec<PpSigned> = events
        .iter()
        .map(|e| {
            let body = body(e);
            PpSigned {
                id: e.id,
                headers: pp::headers(&body, SIGNED_AT),
                body,
            }
        })
        .collect();
    let in_order: Vec<usize> = (0..signed.len()).collect();
    let (reference, seen) = rt
        .block_on(run_paypal(&signed, &in_order))
        .expect("in order");
    assert_eq!(seen, expected, "in order");
    let orders = permutations(signed.len());
    let mut failures = Vec::new();
    for order in &orders {
        let result = rt
            .block_on(run_paypal(&signed, order))
            .and_then(|(model, seen)| {
                if seen != expected {
                    return Err(format!("access {seen:?}, true {expected:?}"));
                }
                if model != reference {
                    return Err("the aggregate differs from the in-order one".into());
                }
                Ok(())
            });
        if let Err(e) = result {
            let ids: Vec<&str> = order.iter().map(|&i| signed[i].id).collect();
            failures.push(format!("{ids:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} orders wrong; first: {}",
        failures.len(),
        orders.len(),
        failures[0]
    );
}

/// Seven events, 5040 orders: the cancellation ends it whatever came after it.
#[test]
fn paypal_lifecycle_cancelled_matches_the_true_order_in_every_order() {
    check_every_order(true);
}

/// Six events, 720 orders: re-activated after a suspension in the same second, then a failed
/// payment newer than the sale: active but overdue.
#[test]
fn paypal_lifecycle_overdue_matches_the_true_order_in_every_order() {
    assert_eq!(
        truth(&lifecycle(false)),
        (
            false,
            Standing::Overdue,
            BillingStatus::PastDue,
            "active".to_owned()
        )
    );
    check_every_order(false);
}
