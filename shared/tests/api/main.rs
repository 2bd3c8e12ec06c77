//! The integration suite: one binary, shared helpers, fixtures as files.
//! Tests named `moto_*` run against the emulator at `AWS_ENDPOINT_URL` (scripts/test starts it).

mod backfill;
mod catalogue;
mod catchup;
mod concurrency;
mod connect;
mod connect_catchup;
mod crashes;
mod customers;
mod disputes;
mod dynamo;
mod email_edges;
mod email_send;
mod emails;
mod entitlements;
mod eventbridge;
mod fixtures;
mod heavy;
mod helpers;
mod import;
mod invoices;
mod lambda;
mod localstripe;
mod logs;
mod model;
mod outbox;
mod pause;
mod paypal;
#[path = "../support/paypal.rs"]
mod paypal_support;
mod paypal_verify;
mod periods;
mod permissions;
mod purchases;
mod replay;
mod seam;
mod secrets;
mod signatures;
mod stripe_api;
mod thin;
mod trial_ending;
