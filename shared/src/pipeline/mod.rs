//! The use case, once, knowing no provider: verify → record once → apply → project to users →
//! outbox. A provider plugs in through [`WebhookProvider`].
//!
//! Guarantees and where each is enforced:
//! - authenticity: `receive` has the provider verify the raw bytes before anything reads them;
//! - exactly once: the ledger item's conditional write inside the one commit (`record`);
//! - any order: `CustomerBilling::apply`, `Invoice::apply` and `CatalogueEntry::apply` (joins of
//!   the events seen);
//! - nothing lost: state, ledger, audit and outbox are one atomic commit; transient failures
//!   answer 5xx so the provider retries; unreadable events and permanent failures are parked
//!   with their bytes (`park`), and replayed through the same second half.

mod catalogue;
mod charges;
mod emails;
mod invoices;
mod park;
mod project;
mod purchases;
mod record;
mod resolve;
mod service;
mod verified;

pub use crate::providers::seam::{ReadError, ReadEvent, Verified, WebhookProvider};
pub use park::MAX_PARKED_GZIP_BYTES;
pub use service::{DuplicateBy, Outcome, Pipeline};
