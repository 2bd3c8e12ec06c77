//! Adapters: one file per external system, plus in-memory twins. Test-only machinery (fault
//! injection, capacity metering) is compiled with the `testing` feature only: never in a
//! production build.

#[cfg(feature = "testing")]
pub mod capacity;
pub mod checkpoints;
pub mod dynamo;
pub mod email_queue;
pub mod email_store;
#[cfg(feature = "testing")]
pub mod email_testing;
#[cfg(feature = "testing")]
pub mod faults;
pub mod https;
pub mod listing;
pub mod memory;
pub mod paypal_transmissions;
pub mod sdk_error;
pub mod secrets_manager;
pub mod ses;
pub mod sqs;
pub mod stripe_api;
pub mod stripe_list;
pub mod stripe_v2;
