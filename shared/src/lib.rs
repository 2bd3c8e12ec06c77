//! Billing webhooks: verify Stripe deliveries, record each event once, apply it in any order to
//! an authoritative billing model in DynamoDB, and announce what changed through an outbox.

#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod adapters;
pub mod app;
pub mod backfill;
pub mod bounds;
pub mod catchup;
pub mod config;
pub mod digest;
pub mod domain;
pub mod emails;
pub mod error;
pub mod eventbridge;
pub mod feed;
pub mod http;
pub mod pipeline;
pub mod ports;
pub mod providers;
pub mod reconcile;
pub mod relay;
pub mod routing;
pub mod secret;
pub mod settings;
pub mod telemetry;

#[cfg(test)]
mod hostile_input_tests;
