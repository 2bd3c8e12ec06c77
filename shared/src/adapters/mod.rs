//! Adapters: one file per external system, plus in-memory twins and a fault injector.

pub mod dynamo;
pub mod faults;
pub mod memory;
pub mod sdk_error;
pub mod secrets_manager;
pub mod sqs;
pub mod stripe_api;
