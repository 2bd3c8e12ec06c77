//! CPU cost of one delivery outside AWS: signature check, envelope parse, translation and the
//! model update, with the in-memory store. Prints figures for BENCHMARKS.md.
//!
//! `cargo run --release -p billing --example pipeline_bench`

use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::ports::FixedClock;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::signature::{sign, verify, WebhookSecret};
use billing::providers::stripe::translate::{family_of, translate, StripeMapping};
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::telemetry::Metrics;
use std::sync::Arc;
use std::time::Instant;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/stripe/lifecycle/02_customer.subscription.created.json"
);

fn per_op(label: &str, n: u32, start: Instant) {
    let ns = start.elapsed().as_nanos() / u128::from(n);
    println!("| {label} | {n} | {:.1} µs |", ns as f64 / 1000.0);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let body = std::fs::read(FIXTURE).expect("fixture");
    let secret = [WebhookSecret::new("whsec_bench")];
    let header = sign(&body, &secret, 1_000);
    println!(
        "body: {} bytes (basil customer.subscription.created)\n",
        body.len()
    );
    println!("| step | iterations | time per delivery |");
    println!("|---|---|---|");
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        verify(Some(&header), &body, &secret, 1_000, 300).expect("valid");
    }
    per_op("signature check (HMAC-SHA256 over the body)", n, t);
    let t = Instant::now();
    for _ in 0..n {
        Envelope::parse(&body).expect("parse");
    }
    per_op("envelope parse (serde_json::Value)", n, t);
    let env = Envelope::parse(&body).expect("parse");
    let mapping = StripeMapping::default();
    let t = Instant::now();
    for _ in 0..n {
        translate(&env, &mapping).expect("translate");
    }
    per_op("translation to the canonical event", n, t);
    // The whole pipeline, each delivery a new event id (so each one is applied).
    let service = pipeline(
        Arc::new(InMemoryBillingStore::new()),
        Arc::new(StaticSecrets::everywhere(secret.to_vec())),
        Arc::new(FixedClock::at(1_000)),
        Arc::new(Metrics::Off),
        Settings {
            mapping,
            ..Settings::default()
        },
    );
    let text = String::from_utf8(body.clone()).expect("utf8");
    let bodies: Vec<(Vec<u8>, String)> = (0..5_000)
        .map(|i| {
            let b = text
                .replacen("evt_life_02_sub_created", &format!("evt_bench_{i:06}"), 1)
                .replacen("1756720806", &format!("{}", 1_756_720_806 + i), 1)
                .into_bytes();
            let h = sign(&b, &secret, 1_000);
            (b, h)
        })
        .collect();
    let family = family_of(&env.event_type);
    let t = Instant::now();
    for (b, h) in &bodies {
        service.receive_stripe(family, Some(h), b).await;
    }
    per_op(
        "whole delivery, in-memory store (verify → apply → outbox)",
        bodies.len() as u32,
        t,
    );
}
