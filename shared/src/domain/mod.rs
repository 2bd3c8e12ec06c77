//! The pure billing model: identifiers, canonical events, the customer aggregate, invoices, the
//! access rule, the catalogue (products and prices). Nothing here does I/O or knows a provider's
//! wire format or an AWS type.

pub mod access;
pub mod catalogue;
pub mod charge;
pub mod customer;
pub mod events;
pub mod facts;
pub mod ids;
pub mod invoice;
pub mod periods;
pub mod same_second;
pub mod status;
pub mod version;
