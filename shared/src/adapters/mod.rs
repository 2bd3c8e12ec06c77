//! Adapters: one file per external system, plus in-memory twins. Test-only machinery (fault
//! injection, capacity metering) is compiled with the `testing` feature only: never in a
//! production build.

#[cfg(feature = "testing")]
pub mod capacity;
pub mod dynamo;
#[cfg(feature = "testing")]
pub mod faults;
pub mod memory;
pub mod sdk_error;
pub mod secrets_manager;
pub mod sqs;
pub mod stripe_api;
