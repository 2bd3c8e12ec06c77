//! The table's keys: each item kind's partition key (`PK`) and sort key (`SK`), the prefixes
//! that queries read by, and the index (the layout is in `mod.rs`'s table).

use super::super::listing;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId};

/// The table's one index (named for the `GSI1PK`/`GSI1SK` keys it kept from its predecessor).
pub const GSI1: &str = listing::LISTINGS_INDEX;

/// The key of the warm-up read: an item that never exists.
pub(super) const WARM_UP_KEY: &str = "WARMUP";

pub(super) fn ledger_pk(provider: Provider, event: &EventId) -> String {
    format!("EVT#{provider}#{event}")
}

pub(super) const LEDGER_SK: &str = "EVT";

pub(super) fn customer_pk(provider: Provider, customer: &CustomerId) -> String {
    format!("CUS#{provider}#{customer}")
}

/// The sort key of an aggregate's own item: a customer's, a product's.
pub(super) const STATE_SK: &str = "STATE";

pub(super) fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

pub(super) const USER_SK: &str = "ACCESS";

/// A catalogue product's partition: its own record (`STATE`), one item per price
/// (`PRICE#{price}`) and its audit entries.
pub(super) fn product_pk(provider: Provider, product: &ProductId) -> String {
    format!("PRODUCT#{provider}#{product}")
}

/// Sort-key prefix of a product's price items: `PRICE#{price}`, so a query lists them in id
/// order.
pub(super) const PRICE_PREFIX: &str = "PRICE#";

pub(super) fn price_sk(price: &PriceId) -> String {
    format!("{PRICE_PREFIX}{price}")
}

/// Sort-key prefix of a product's audit entries: `AUDIT#{created:011}#{event}`.
pub(super) const PRODUCT_AUDIT_PREFIX: &str = "AUDIT#";

pub(super) fn product_audit_sk(created: i64, event: &EventId) -> String {
    format!("{PRODUCT_AUDIT_PREFIX}{}", time_sk(created, event))
}

/// A customer's audit partition; its entries are ordered by [`time_sk`].
pub(super) fn audit_pk(provider: Provider, customer: &CustomerId) -> String {
    format!("AUDIT#{provider}#{customer}")
}

/// `{at:011}#{id}`: a sort key that orders by time, then by id (audit entries, listings).
pub(super) fn time_sk(at: i64, id: impl std::fmt::Display) -> String {
    format!("{at:011}#{id}")
}

/// An invoice is its own item, keyed by its id alone: `invoice_payment.paid` names only the
/// invoice, and every event of it must find the same item.
pub(super) fn invoice_pk(provider: Provider, invoice: &InvoiceId) -> String {
    format!("INVOICE#{provider}#{invoice}")
}

pub(super) const INVOICE_SK: &str = "INVOICE";

/// The index partition listing a customer's invoices (GSI1), newest last by `GSI1SK`.
pub(super) fn invoices_gsi_pk(provider: Provider, customer: &CustomerId) -> String {
    format!("INVOICES#{provider}#{customer}")
}

/// A charge is its own item, keyed by its id alone: disputes and refund objects name only the
/// charge, and every event of it must find the same item.
pub(super) fn charge_pk(provider: Provider, charge: &str) -> String {
    format!("CHARGE#{provider}#{charge}")
}

pub(super) const CHARGE_SK: &str = "CHARGE";

/// A purchase is an item of its own in its customer's partition, so the customer's item does
/// not grow with its history; an event addresses it by session (or one-off invoice) id.
pub(super) const PURCHASE_PREFIX: &str = "PURCHASE#";

pub(super) fn purchase_sk(session: &str) -> String {
    format!("{PURCHASE_PREFIX}{session}")
}

/// The pointer from a payment intent to the purchase it paid: what a charge's events know.
pub(super) const INTENT_PREFIX: &str = "PURCHASE_PI#";

pub(super) fn intent_sk(intent: &str) -> String {
    format!("{INTENT_PREFIX}{intent}")
}

/// Partition-key prefix of outbox messages: `OUTBOX#{id}`.
pub(super) const OUTBOX_PREFIX: &str = "OUTBOX#";

pub(super) fn outbox_pk(id: &str) -> String {
    format!("{OUTBOX_PREFIX}{id}")
}

pub(super) const OUTBOX_SK: &str = "OUTBOX";
