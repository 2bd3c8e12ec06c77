//! Stripe: signature verification, the lenient envelope, and translation to canonical events.
//! Stripe's wire shapes never leave this folder.

pub mod charges;
pub mod enabled_events;
pub mod entitlements;
pub mod event;
pub mod family;
pub mod ignored;
pub mod invoice;
pub mod mapping;
pub mod provider;
pub mod schedule;
pub mod settings;
pub mod signature;
pub mod thin;
pub mod translate;

pub use family::Family;
pub use provider::{pipeline, Settings, StripeDelivery, StripeProvider};
