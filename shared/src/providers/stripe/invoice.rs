//! Stripe invoice objects → [`InvoiceEvent`], for every API version from 2018 to basil; and
//! basil's `invoice_payment` object → [`InvoicePaymentPaid`].
//!
//! Drift handled here: the subscription moved from `subscription` to
//! `parent.subscription_details.subscription` (2025-03-31), the creation time was `date` before
//! 2019-03-14, a line's price moved from `price` (or `plan` before 2018-02) to
//! `pricing.price_details` and its subscription item and proration flag from the line to
//! `parent.subscription_item_details` / `parent.invoice_item_details` (2025-03-31), and ids may
//! arrive expanded as objects.

use super::event::{as_bool, i64_field, id_field, metadata, str_field, Envelope};
use super::mapping::{StripeMapping, TranslateError};
use crate::domain::events::{
    BillingEvent, EmailAddress, InvoiceEvent, InvoiceEventKind, InvoiceLine, InvoicePaymentPaid,
    InvoiceSnapshot,
};
use crate::domain::ids::{CustomerId, InvoiceId, SubscriptionId, UserId};
use crate::providers::evidence::order_evidence;
use serde_json::Value;

/// Line items kept per snapshot; an invoice with more says so (`more_lines`). Keeps an invoice's
/// item far below DynamoDB's 400 KB whatever the payload.
pub const MAX_LINES: usize = 50;
/// Longest line description kept, in characters.
const MAX_DESCRIPTION: usize = 500;

/// The invoice fields the model keeps: only these count as order evidence, so two same-second
/// updates that differ elsewhere (metadata, tax details) leave the same record either way.
const KEPT_FIELDS: [&str; 20] = [
    "status",
    "number",
    "currency",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "total",
    "hosted_invoice_url",
    "invoice_pdf",
    "due_date",
    "next_payment_attempt",
    "attempt_count",
    "customer_email",
    "billing_reason",
    "period_start",
    "period_end",
    "lines",
    "subscription",
    "subscription_details",
    "parent",
];

/// The kind of a modelled `invoice.*` type; `None` for the others (`invoice.upcoming` has no
/// id; `invoice.sent`, `.overdue`, `.will_be_due`, `.overpaid` change nothing the model keeps).
pub fn invoice_kind(event_type: &str) -> Option<InvoiceEventKind> {
    Some(match event_type.strip_prefix("invoice.")? {
        "created" => InvoiceEventKind::Created,
        "finalized" => InvoiceEventKind::Finalized,
        "finalization_failed" => InvoiceEventKind::FinalizationFailed,
        "updated" => InvoiceEventKind::Updated,
        "deleted" => InvoiceEventKind::Deleted,
        "paid" | "payment_succeeded" => InvoiceEventKind::Paid,
        "payment_failed" => InvoiceEventKind::Failed,
        "payment_action_required" => InvoiceEventKind::ActionRequired,
        "voided" => InvoiceEventKind::Voided,
        "marked_uncollectible" => InvoiceEventKind::MarkedUncollectible,
        _ => return None,
    })
}

/// An `invoice.*` event of a modelled kind.
pub fn invoice_event(
    env: &Envelope,
    map: &StripeMapping,
    kind: InvoiceEventKind,
) -> Result<BillingEvent, TranslateError> {
    let snapshot = invoice_snapshot(&env.object, map).map_err(|field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    })?;
    let evidence = order_evidence(&kept(&env.object), env.previous.as_ref().map(kept).as_ref());
    Ok(BillingEvent::Invoice(Box::new(InvoiceEvent {
        kind,
        snapshot,
        evidence,
    })))
}

/// `invoice_payment.paid`: the invoice it pays, the payment intent and the amount.
pub fn invoice_payment_paid(env: &Envelope) -> Result<BillingEvent, TranslateError> {
    let obj = &env.object;
    let missing = |field| TranslateError {
        event_type: env.event_type.clone(),
        field,
    };
    let payment = obj.get("payment");
    Ok(BillingEvent::InvoicePaymentPaid(InvoicePaymentPaid {
        invoice: InvoiceId::new(id_field(obj, "invoice").ok_or_else(|| missing("invoice"))?),
        payment: id_field(obj, "id").ok_or_else(|| missing("id"))?,
        payment_intent: payment.and_then(|p| id_field(p, "payment_intent")),
        amount_paid: i64_field(obj, "amount_paid"),
        currency: str_field(obj, "currency").map(str::to_owned),
        paid_at: obj
            .get("status_transitions")
            .and_then(|t| i64_field(t, "paid_at")),
    }))
}

/// Only the kept fields of an invoice object (or of its `previous_attributes`).
fn kept(object: &Value) -> Value {
    match object.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| KEPT_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => Value::Null,
    }
}

fn text(obj: &Value, key: &str) -> Option<String> {
    str_field(obj, key)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An invoice object as a snapshot; `Err(field)` names what a modelled event cannot lack.
fn invoice_snapshot(obj: &Value, map: &StripeMapping) -> Result<InvoiceSnapshot, &'static str> {
    // Invoices copy the subscription's metadata: `parent.subscription_details` since basil,
    // `subscription_details` before it.
    let details = obj
        .get("parent")
        .and_then(|p| p.get("subscription_details"))
        .or_else(|| obj.get("subscription_details"));
    let subscription =
        id_field(obj, "subscription").or_else(|| details.and_then(|d| id_field(d, "subscription")));
    let user_hint = details
        .and_then(|d| metadata(d, &map.user_metadata_key))
        .or_else(|| metadata(obj, &map.user_metadata_key))
        .map(UserId::new);
    let (lines, more_lines) = invoice_lines(obj);
    Ok(InvoiceSnapshot {
        id: InvoiceId::new(id_field(obj, "id").ok_or("id")?),
        customer: CustomerId::new(id_field(obj, "customer").ok_or("customer")?),
        subscription: subscription.map(SubscriptionId::new),
        status: text(obj, "status"),
        number: text(obj, "number"),
        currency: text(obj, "currency"),
        amount_due: i64_field(obj, "amount_due"),
        amount_paid: i64_field(obj, "amount_paid"),
        amount_remaining: i64_field(obj, "amount_remaining"),
        total: i64_field(obj, "total"),
        hosted_invoice_url: text(obj, "hosted_invoice_url"),
        invoice_pdf: text(obj, "invoice_pdf"),
        due_date: i64_field(obj, "due_date"),
        next_payment_attempt: i64_field(obj, "next_payment_attempt"),
        attempt_count: i64_field(obj, "attempt_count").and_then(|n| u32::try_from(n).ok()),
        customer_email: text(obj, "customer_email").map(EmailAddress::new),
        billing_reason: text(obj, "billing_reason"),
        created: i64_field(obj, "created").or_else(|| i64_field(obj, "date")),
        period_start: i64_field(obj, "period_start"),
        period_end: i64_field(obj, "period_end"),
        lines,
        more_lines,
        user_hint,
    })
}

/// The first [`MAX_LINES`] lines, and whether the invoice has more (Stripe's `has_more`, or
/// more than we keep).
fn invoice_lines(obj: &Value) -> (Vec<InvoiceLine>, bool) {
    let list = obj.get("lines");
    let data = list
        .and_then(|l| l.get("data"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let lines: Vec<InvoiceLine> = data
        .iter()
        .filter_map(invoice_line)
        .take(MAX_LINES)
        .collect();
    let has_more = list
        .and_then(|l| l.get("has_more"))
        .and_then(as_bool)
        .unwrap_or(false);
    (lines, has_more || data.len() > MAX_LINES)
}

/// One line: classic fields first, basil's `pricing` and `parent` otherwise.
fn invoice_line(line: &Value) -> Option<InvoiceLine> {
    let parent = line.get("parent");
    let item_details = parent.and_then(|p| {
        p.get("subscription_item_details")
            .filter(|d| d.is_object())
            .or_else(|| p.get("invoice_item_details").filter(|d| d.is_object()))
    });
    let price = line
        .get("price")
        .or_else(|| line.get("plan"))
        .filter(|p| p.is_object());
    let price_details = line.get("pricing").and_then(|p| p.get("price_details"));
    let period = line.get("period");
    let proration = line
        .get("proration")
        .or_else(|| item_details?.get("proration"))
        .and_then(as_bool)
        .unwrap_or(false);
    let subscription = id_field(line, "subscription")
        .or_else(|| item_details.and_then(|d| id_field(d, "subscription")));
    Some(InvoiceLine {
        id: id_field(line, "id")?,
        price_id: price
            .and_then(|p| id_field(p, "id"))
            .or_else(|| price_details.and_then(|d| id_field(d, "price"))),
        product_id: price
            .and_then(|p| id_field(p, "product"))
            .or_else(|| price_details.and_then(|d| id_field(d, "product"))),
        quantity: i64_field(line, "quantity"),
        amount: i64_field(line, "amount"),
        description: text(line, "description").map(|d| d.chars().take(MAX_DESCRIPTION).collect()),
        period_start: period.and_then(|p| i64_field(p, "start")),
        period_end: period.and_then(|p| i64_field(p, "end")),
        proration,
        subscription: subscription.map(SubscriptionId::new),
        subscription_item: id_field(line, "subscription_item")
            .or_else(|| item_details.and_then(|d| id_field(d, "subscription_item"))),
    })
}
