//! PayPal payloads into `domain::events`: the envelope (`id` WH-…, `event_type`,
//! `create_time` to the millisecond, `resource`) and the mapping of docs/MODEL.md, "PayPal: the mapping".
//!
//! The aggregate key: PayPal has no customer object that every event names. A subscription's
//! events (v1 `Agreement` and v2 `subscription` resources) carry its id (`I-…`), and its sales
//! name it as `billing_agreement_id`; nothing else is common to them (the payer id appears on
//! some shapes only). So the subscription id is the `CustomerId`: each PayPal subscription is
//! its own billing account, linked to our user by `custom_id` (v2) or `custom` (v1).
//!
//! Statuses are mapped onto the access rule's words (Stripe's), so the rule stays one table:
//! see [`status`].

use crate::domain::events::{
    BillingEvent, DisputeChange, DisputeEvent, InvoiceChange, InvoicePayment, RefundChange,
    RefundEvent, SubscriptionChange, SubscriptionSnapshot, SubscriptionStatus,
};
use crate::domain::ids::{CustomerId, InvoiceId, SubscriptionId, UserId};
use crate::emails::money::Currency;
use serde_json::Value;

use super::transmission::parse_rfc3339;

/// A PayPal event's envelope; the resource is read leniently, field by field.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
    /// `create_time`, Unix seconds.
    pub created: i64,
    /// The milliseconds of `create_time` (0 when it has no fraction).
    pub millis: u16,
    /// PayPal sends no mode flag: a delivery whose links point at the sandbox is a test one.
    pub livemode: bool,
    pub resource: Value,
}

/// Why a payload is not a PayPal event (the text names no value from it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a PayPal event: {0}")]
pub struct EnvelopeError(pub &'static str);

/// Why a PayPal event of a modelled type could not be translated (then it is parked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type}: {why}")]
pub struct TranslateError {
    pub event_type: String,
    pub why: &'static str,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let doc: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError("not JSON"))?;
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::trim);
        let id = text("id")
            .filter(|s| !s.is_empty())
            .ok_or(EnvelopeError("no id"))?;
        let event_type = text("event_type")
            .filter(|s| !s.is_empty())
            .ok_or(EnvelopeError("no event_type"))?;
        let time = text("create_time").ok_or(EnvelopeError("no create_time"))?;
        let created = parse_rfc3339(time).ok_or(EnvelopeError("create_time is not RFC 3339"))?;
        let resource = doc
            .get("resource")
            .filter(|r| r.is_object())
            .ok_or(EnvelopeError("no resource object"))?;
        let sandbox = doc
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| l.get("href").and_then(Value::as_str))
            .any(|href| href.contains(".sandbox.paypal.com"));
        Ok(Self {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            created,
            millis: millis_of(time),
            livemode: !sandbox,
            resource: resource.clone(),
        })
    }
}

/// The milliseconds of an RFC 3339 time (`…:49.135Z` → 135; `…:49.1Z` → 100; none → 0). The
/// time was checked by [`parse_rfc3339`] first.
pub fn millis_of(time: &str) -> u16 {
    let Some((_, after)) = time.split_once('.') else {
        return 0;
    };
    let digits: String = after
        .chars()
        .take_while(char::is_ascii_digit)
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    digits.parse().unwrap_or(0)
}

/// PayPal's subscription status (v2 upper case, v1 agreement state capitalised) in the access
/// rule's words. `EXPIRED` and `CANCELLED` are both the end (`canceled`); the event types of
/// those two also end the subscription for good. Any other word is read in lower case like a
/// Stripe word, as before the status was typed: one the model does not know stays
/// [`SubscriptionStatus::Unknown`] with that word, which grants nothing (docs/MODEL.md).
pub fn status(paypal: &str) -> SubscriptionStatus {
    use SubscriptionStatus as S;
    match paypal.to_ascii_uppercase().as_str() {
        "ACTIVE" => S::Active,
        // Revivable (RE-ACTIVATED): Stripe's paused is the same promise.
        "SUSPENDED" => S::Paused,
        "CANCELLED" | "EXPIRED" => S::Canceled,
        // Created but not yet approved by the buyer: the first payment is still owed.
        "APPROVAL_PENDING" | "APPROVED" | "PENDING" => S::Incomplete,
        // Stored as the plain word, so a known word read back is that status: parsed, never
        // wrapped as unknown by hand.
        other => S::parse(&other.to_ascii_lowercase()),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn time_at(v: &Value, path: &[&str]) -> Option<i64> {
    str_at(v, path).and_then(parse_rfc3339)
}

/// A decimal amount (`"4.99"`, `"-0.49"`, `"100"`) in the currency's minor units, sign dropped:
/// PayPal shows reversals as negative totals; the model keeps refunded amounts positive. `None`
/// when it has more decimals than the currency (not an amount we can keep exactly).
pub fn minor_units(value: &str, currency: &str) -> Option<i64> {
    let decimals = Currency::parse(currency).ok()?.decimals() as usize;
    let digits = value.trim().trim_start_matches(['-', '+']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let (kept, rest) = fraction.split_at(fraction.len().min(decimals));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let padded = format!("{whole}{kept:0<decimals$}");
    padded.parse().ok()
}

/// `(amount in minor units, currency in lower case)` of a v1 `{total, currency}` or v2
/// `{value, currency_code}` amount.
fn amount(v: Option<&Value>) -> (Option<i64>, Option<String>) {
    let Some(v) = v else {
        return (None, None);
    };
    let currency = str_at(v, &["currency"]).or_else(|| str_at(v, &["currency_code"]));
    let value = str_at(v, &["total"]).or_else(|| str_at(v, &["value"]));
    match (value, currency) {
        (Some(value), Some(currency)) => (
            minor_units(value, currency),
            Some(currency.to_ascii_lowercase()),
        ),
        (_, currency) => (None, currency.map(str::to_ascii_lowercase)),
    }
}

/// The user a resource names: `custom_id` (v2 subscriptions) or `custom` (v1).
fn user_claim(resource: &Value) -> Option<UserId> {
    str_at(resource, &["custom_id"])
        .or_else(|| str_at(resource, &["custom"]))
        .map(UserId::new)
}

/// A v1 `Agreement` or v2 `subscription` resource as a snapshot.
pub fn subscription_snapshot(resource: &Value) -> Option<SubscriptionSnapshot> {
    let id = str_at(resource, &["id"])?;
    let raw_status = str_at(resource, &["status"]).or_else(|| str_at(resource, &["state"]))?;
    let period_end = time_at(resource, &["billing_info", "next_billing_time"])
        .or_else(|| time_at(resource, &["agreement_details", "next_billing_date"]));
    let period_start = time_at(resource, &["billing_info", "last_payment", "time"])
        .or_else(|| time_at(resource, &["agreement_details", "last_payment_date"]));
    Some(SubscriptionSnapshot {
        id: SubscriptionId::new(id),
        customer: CustomerId::new(id),
        status: status(raw_status),
        // The v2 plan id: `PRICE_TIERS` can name its tier.
        price_id: str_at(resource, &["plan_id"]).map(str::to_owned),
        product_id: None,
        tier_hint: None,
        current_period_start: period_start,
        current_period_end: period_end,
        cancel_at_period_end: false,
        cancel_at: None,
        trial_end: None,
        trial_start: None,
        cancellation_reason: str_at(resource, &["status_change_note"]).map(str::to_owned),
        user_claim: user_claim(resource),
    })
}

fn change_of(event_type: &str) -> Option<SubscriptionChange> {
    Some(match event_type {
        "BILLING.SUBSCRIPTION.CREATED" => SubscriptionChange::Created,
        "BILLING.SUBSCRIPTION.UPDATED" | "BILLING.SUBSCRIPTION.ACTIVATED" => {
            SubscriptionChange::Updated
        }
        "BILLING.SUBSCRIPTION.SUSPENDED" => SubscriptionChange::Paused,
        "BILLING.SUBSCRIPTION.RE-ACTIVATED" => SubscriptionChange::Resumed,
        "BILLING.SUBSCRIPTION.CANCELLED" | "BILLING.SUBSCRIPTION.EXPIRED" => {
            SubscriptionChange::Deleted
        }
        _ => return None,
    })
}

/// The event `envelope` carries; `Unsupported` for the types docs/MODEL.md lists as ignored and for
/// types not known at all (recorded, answered `ignored`).
pub fn translate(envelope: &Envelope) -> Result<BillingEvent, TranslateError> {
    let t = envelope.event_type.as_str();
    let r = &envelope.resource;
    let fail = |why| TranslateError {
        event_type: t.to_owned(),
        why,
    };
    if let Some(change) = change_of(t) {
        let snapshot = subscription_snapshot(r).ok_or(fail("no subscription id or status"))?;
        return Ok(BillingEvent::Subscription {
            change,
            snapshot,
            evidence: Default::default(),
        });
    }
    match t {
        "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => payment_failed(envelope).ok_or(fail("no id")),
        "PAYMENT.SALE.COMPLETED" | "PAYMENT.SALE.DENIED" | "PAYMENT.CAPTURE.DENIED" => {
            Ok(sale(envelope).unwrap_or(BillingEvent::Unsupported))
        }
        "PAYMENT.SALE.REFUNDED"
        | "PAYMENT.SALE.REVERSED"
        | "PAYMENT.CAPTURE.REFUNDED"
        | "PAYMENT.CAPTURE.REVERSED" => Ok(refund(r).unwrap_or(BillingEvent::Unsupported)),
        "CUSTOMER.DISPUTE.CREATED" | "CUSTOMER.DISPUTE.UPDATED" | "CUSTOMER.DISPUTE.RESOLVED" => {
            dispute(t, r).ok_or(fail("no dispute_id or seller_transaction_id"))
        }
        _ => Ok(BillingEvent::Unsupported),
    }
}

/// `BILLING.SUBSCRIPTION.PAYMENT.FAILED`: an unpaid "invoice" of the subscription, dated by the
/// failed payment, so the subscription is overdue until a later sale completes.
fn payment_failed(envelope: &Envelope) -> Option<BillingEvent> {
    let r = &envelope.resource;
    let id = str_at(r, &["id"])?;
    let failed_at =
        time_at(r, &["billing_info", "last_failed_payment", "time"]).unwrap_or(envelope.created);
    Some(BillingEvent::InvoicePayment(InvoicePayment {
        // One record per failed payment: each retry that fails again is dated anew.
        invoice: InvoiceId::new(format!("{id}:failed:{failed_at}")),
        customer: CustomerId::new(id),
        subscription: Some(SubscriptionId::new(id)),
        change: InvoiceChange::Failed,
        invoice_created: Some(failed_at),
        attempt: r
            .pointer("/billing_info/failed_payments_count")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        hosted_invoice_url: None,
        user_hint: user_claim(r),
        period: None,
        amount_paid: None,
        billing_reason: None,
    }))
}

/// A sale or capture of a subscription (`billing_agreement_id`): its payment, paid or failed.
/// `None` for a one-time payment (no subscription names it): recorded as ignored.
fn sale(envelope: &Envelope) -> Option<BillingEvent> {
    let r = &envelope.resource;
    let agreement = str_at(r, &["billing_agreement_id"])?;
    let id = str_at(r, &["id"])?;
    let change = if envelope.event_type.ends_with(".COMPLETED") {
        InvoiceChange::Paid
    } else {
        InvoiceChange::Failed
    };
    let (paid, _) = amount(r.get("amount"));
    Some(BillingEvent::InvoicePayment(InvoicePayment {
        invoice: InvoiceId::new(id),
        customer: CustomerId::new(agreement),
        subscription: Some(SubscriptionId::new(agreement)),
        change,
        // The sale's own time orders it against failed payments of the same subscription.
        invoice_created: time_at(r, &["create_time"]).or(Some(envelope.created)),
        attempt: None,
        hosted_invoice_url: None,
        user_hint: user_claim(r),
        period: None,
        amount_paid: (change == InvoiceChange::Paid).then_some(paid).flatten(),
        billing_reason: None,
    }))
}

/// A refund or reversal of a sale or capture: kept on that payment's own item. `None` when the
/// payload names no sale or capture (PayPal's reversal samples carry only the refund's own
/// link): it cannot be joined to anything, so it is recorded as ignored.
fn refund(r: &Value) -> Option<BillingEvent> {
    let id = str_at(r, &["id"])?;
    let linked = |rel: &str| {
        r.get("links")?
            .as_array()?
            .iter()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some(rel))?
            .get("href")?
            .as_str()?
            .rsplit('/')
            .next()
            .map(str::to_owned)
    };
    let charge = str_at(r, &["sale_id"])
        .or_else(|| str_at(r, &["capture_id"]))
        .map(str::to_owned)
        .or_else(|| linked("sale"))
        .or_else(|| linked("capture"))
        .or_else(|| linked("up"))
        .filter(|c| !c.is_empty())?;
    let (amount, currency) = amount(r.get("amount"));
    let status = match str_at(r, &["state"])
        .or_else(|| str_at(r, &["status"]))
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("completed") => "succeeded".to_owned(),
        Some("cancelled") => "canceled".to_owned(),
        Some(other) => other.to_owned(),
        None => "succeeded".to_owned(),
    };
    Some(BillingEvent::Refund(RefundEvent {
        change: RefundChange::Created,
        refund: id.to_owned(),
        charge,
        payment_intent: None,
        status,
        amount,
        currency,
    }))
}

/// PayPal's dispute status (and, once resolved, its outcome) in Stripe's dispute words, which
/// the purchase rule reads (`lost` withdraws, `won` and closed states do not).
fn dispute_status(r: &Value) -> String {
    let status = str_at(r, &["status"]).unwrap_or("").to_ascii_uppercase();
    let outcome = str_at(r, &["dispute_outcome", "outcome_code"]).unwrap_or("");
    match (status.as_str(), outcome) {
        (_, "RESOLVED_BUYER_FAVOUR" | "ACCEPTED") => "lost".into(),
        (_, "RESOLVED_SELLER_FAVOUR" | "CANCELED_BY_BUYER" | "DENIED") => "won".into(),
        ("RESOLVED", _) => "warning_closed".into(),
        ("OPEN" | "WAITING_FOR_SELLER_RESPONSE", _) => "needs_response".into(),
        ("WAITING_FOR_BUYER_RESPONSE" | "UNDER_REVIEW", _) => "under_review".into(),
        (other, _) => other.to_ascii_lowercase(),
    }
}

fn dispute(event_type: &str, r: &Value) -> Option<BillingEvent> {
    let change = match event_type {
        "CUSTOMER.DISPUTE.CREATED" => DisputeChange::Created,
        "CUSTOMER.DISPUTE.RESOLVED" => DisputeChange::Closed,
        _ => DisputeChange::Updated,
    };
    let dispute = str_at(r, &["dispute_id"])?;
    let charge = r
        .get("disputed_transactions")?
        .as_array()?
        .iter()
        .find_map(|t| str_at(t, &["seller_transaction_id"]))?;
    let (amount, currency) = amount(r.get("dispute_amount"));
    Some(BillingEvent::Dispute(DisputeEvent {
        change,
        dispute: dispute.to_owned(),
        charge: charge.to_owned(),
        payment_intent: None,
        status: dispute_status(r),
        amount,
        currency,
        reason: str_at(r, &["reason"]).map(str::to_ascii_lowercase),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_read_from_the_fraction() {
        assert_eq!(millis_of("2017-08-25T17:55:42.135Z"), 135);
        assert_eq!(millis_of("2017-08-25T17:55:42.1Z"), 100);
        assert_eq!(millis_of("2017-08-25T17:55:42.000Z"), 0);
        assert_eq!(millis_of("2017-08-25T17:55:42.98765+02:00"), 987);
        assert_eq!(millis_of("2017-08-25T17:55:42Z"), 0);
    }

    #[test]
    fn amounts_become_minor_units_by_currency_and_lose_their_sign() {
        assert_eq!(minor_units("4.99", "USD"), Some(499));
        assert_eq!(minor_units("-0.49", "USD"), Some(49));
        assert_eq!(minor_units("21", "USD"), Some(2100));
        assert_eq!(minor_units("0.0", "USD"), Some(0));
        assert_eq!(minor_units("1200", "JPY"), Some(1200));
        assert_eq!(minor_units("1200.00", "JPY"), Some(1200));
        assert_eq!(minor_units("1.234", "BHD"), Some(1234));
        assert_eq!(minor_units("1.5", "BHD"), Some(1500));
        assert_eq!(minor_units("0.001", "USD"), None);
        assert_eq!(minor_units("1.2", "JPY"), None);
        assert_eq!(minor_units("abc", "USD"), None);
        assert_eq!(minor_units("", "USD"), None);
        assert_eq!(minor_units("1", "US"), None);
    }

    #[test]
    fn statuses_use_the_access_rule_words() {
        for (paypal, ours) in [
            ("ACTIVE", "active"),
            ("Active", "active"),
            ("SUSPENDED", "paused"),
            ("Suspended", "paused"),
            ("CANCELLED", "canceled"),
            ("Expired", "canceled"),
            ("APPROVAL_PENDING", "incomplete"),
            ("Pending", "incomplete"),
            ("SOMETHING_NEW", "something_new"),
        ] {
            assert_eq!(status(paypal).as_str(), ours, "{paypal}");
        }
        assert_eq!(
            status("SOMETHING_NEW"),
            SubscriptionStatus::Unknown("something_new".into())
        );
    }

    fn translated(event_type: &str, resource: serde_json::Value) -> BillingEvent {
        let body = serde_json::json!({
            "id": "WH-1", "event_type": event_type,
            "create_time": "2024-01-01T00:00:00.5Z", "resource": resource,
        });
        let envelope = Envelope::parse(body.to_string().as_bytes()).expect("envelope");
        translate(&envelope).expect("translated")
    }

    #[test]
    fn a_denied_sale_of_a_subscription_is_a_failed_payment_and_of_none_is_ignored() {
        let denied = |agreement: Option<&str>| {
            translated(
                "PAYMENT.SALE.DENIED",
                serde_json::json!({"id": "S-1", "state": "denied", "billing_agreement_id": agreement,
                    "amount": {"total": "5.00", "currency": "EUR"}, "create_time": "2024-01-01T00:00:00Z"}),
            )
        };
        let BillingEvent::InvoicePayment(p) = denied(Some("I-1")) else {
            panic!("a payment");
        };
        assert_eq!(p.change, InvoiceChange::Failed);
        assert_eq!(p.subscription, Some(SubscriptionId::new("I-1")));
        assert_eq!(p.invoice_created, Some(1_704_067_200));
        assert_eq!(p.amount_paid, None);
        assert_eq!(denied(None), BillingEvent::Unsupported);
    }

    #[test]
    fn a_v2_refund_names_its_capture_by_its_up_link() {
        let event = translated(
            "PAYMENT.CAPTURE.REFUNDED",
            serde_json::json!({"id": "R-1", "status": "COMPLETED",
                "amount": {"value": "1234", "currency_code": "JPY"},
                "links": [{"rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/R-1"},
                          {"rel": "up", "href": "https://api.paypal.com/v2/payments/captures/C-9"}]}),
        );
        let BillingEvent::Refund(r) = event else {
            panic!("a refund");
        };
        assert_eq!((r.charge.as_str(), r.status.as_str()), ("C-9", "succeeded"));
        assert_eq!((r.amount, r.currency.as_deref()), (Some(1234), Some("jpy")));
    }

    #[test]
    fn a_resolved_dispute_takes_its_outcome() {
        for (outcome, want) in [
            ("RESOLVED_BUYER_FAVOUR", "lost"),
            ("RESOLVED_SELLER_FAVOUR", "won"),
            ("CANCELED_BY_BUYER", "won"),
            ("SOMETHING_ELSE", "warning_closed"),
        ] {
            let event = translated(
                "CUSTOMER.DISPUTE.RESOLVED",
                serde_json::json!({"dispute_id": "PP-1", "status": "RESOLVED",
                    "dispute_outcome": {"outcome_code": outcome},
                    "disputed_transactions": [{"seller_transaction_id": "S-1"}]}),
            );
            let BillingEvent::Dispute(d) = event else {
                panic!("a dispute");
            };
            assert_eq!(
                (d.status.as_str(), d.change),
                (want, DisputeChange::Closed),
                "{outcome}"
            );
        }
    }

    #[test]
    fn a_subscription_event_without_its_id_cannot_be_translated() {
        let body = br#"{"id":"WH-1","event_type":"BILLING.SUBSCRIPTION.ACTIVATED","create_time":"2024-01-01T00:00:00Z","resource":{"status":"ACTIVE"}}"#;
        let envelope = Envelope::parse(body).expect("envelope");
        assert!(translate(&envelope).is_err(), "parked, not applied");
    }

    #[test]
    fn an_envelope_without_its_facts_is_not_an_event() {
        let ok = br#"{"id":"WH-1","event_type":"X","create_time":"2020-01-01T00:00:00.250Z","resource":{}}"#;
        let e = Envelope::parse(ok).expect("event");
        assert_eq!(
            (e.created, e.millis, e.livemode),
            (1_577_836_800, 250, true)
        );
        for bad in [
            &b"not json"[..],
            br#"{"event_type":"X","create_time":"2020-01-01T00:00:00Z","resource":{}}"#,
            br#"{"id":"WH-1","create_time":"2020-01-01T00:00:00Z","resource":{}}"#,
            br#"{"id":"WH-1","event_type":"X","create_time":"yesterday","resource":{}}"#,
            br#"{"id":"WH-1","event_type":"X","create_time":"2020-01-01T00:00:00Z"}"#,
            br#"{"id":"","event_type":"X","create_time":"2020-01-01T00:00:00Z","resource":{}}"#,
        ] {
            assert!(Envelope::parse(bad).is_err());
        }
    }
}
