//! The billing store on DynamoDB: one table, conditional writes, one transaction per event.
//!
//! | item      | PK                         | SK                      | notes                                  |
//! |-----------|----------------------------|-------------------------|----------------------------------------|
//! | ledger    | `EVT#{provider}#{event}`   | `EVT`                   | TTL `expires_at` (parked: own retention)|
//! | customer  | `CUS#{provider}#{customer}`| `STATE`                 | aggregate JSON `doc`, `rev`            |
//! | user      | `USER#{user}`              | `ACCESS`                | access JSON `doc`, `rev`               |
//! | invoice   | `INVOICE#{provider}#{inv}` | `INVOICE`               | invoice JSON `doc`, `rev`, `customer`  |
//! | charge    | `CHARGE#{provider}#{charge}`| `CHARGE`               | charge JSON `doc`, `rev`, `customer`   |
//! | purchase  | `CUS#{provider}#{customer}`| `PURCHASE#{session}`    | one purchase's JSON `doc`, `rev`       |
//! | intent    | `CUS#{provider}#{customer}`| `PURCHASE_PI#{intent}`  | `session` the payment intent paid      |
//! | audit     | `AUDIT#{provider}#{cust}`  | `{created:011}#{event}` | never expires                          |
//! | outbox    | `OUTBOX#{id}`              | `OUTBOX`                | deleted once delivered                 |
//! | product   | `PRODUCT#{provider}#{prod}`| `STATE`                 | product's own record `doc`, `rev`      |
//! | price     | `PRODUCT#{provider}#{prod}`| `PRICE#{price}`         | one price's record `doc`, `rev`        |
//! | product audit | `PRODUCT#{provider}#{prod}` | `AUDIT#{created:011}#{event}` | never expires             |
//!
//! The index `Listings` (keys `GSI1PK`, `GSI1SK`; only the attributes listings read, never a
//! parked body) is sparse: parked events (`PARKED#{shard}`), pending outbox messages
//! (`OUTBOX#{shard}`) and outbox items set aside (`OUTBOX_UNREADABLE#{shard}`), each ordered by
//! time and sharded so that no index partition takes every event's write (`listing.rs`), and
//! each customer's invoices (`INVOICES#{provider}#{customer}`, by the invoice's `created`).
//!
//! The files, each importing only those above it in this list:
//! - `keys.rs`: each item's `PK`/`SK` and the prefixes queries read by;
//! - `schema.rs`: the table's definition (`billing create-table`, checked against template.yaml);
//! - `errors.rs`: DynamoDB's errors as the store's (permanent, transient, contention, duplicate);
//! - `item.rs`: each record as its item and back, and an item's size;
//! - `store.rs`: [`DynamoBillingStore`] and the requests its parts share;
//! - `commit.rs`, `old_products.rs`, `create_table.rs`, `testing.rs`: the store's writes, the
//!   conversion of products of the old layout, table creation, what test builds add;
//! - `billing_store.rs`: the [`BillingStore`](crate::ports::BillingStore) port on all of them.

mod billing_store;
mod commit;
mod create_table;
mod errors;
/// Items and their size; `capacity.rs` measures items with it.
pub(super) mod item;
mod keys;
mod old_products;
pub mod schema;
mod store;
mod testing;

pub use item::{
    item_size, ledger_from_item, outbox_from_item, outbox_item, stream_image, Retention,
    MAX_ITEM_BYTES,
};
pub use keys::GSI1;
pub use store::DynamoBillingStore;
#[cfg(test)]
pub(crate) use {
    item::{price_item, product_item},
    old_products::product_state,
};
