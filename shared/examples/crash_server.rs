//! A server for the kill tests: the real router and DynamoDB store (moto), with a fault plan
//! that aborts the process at a chosen step. Not part of the product.
//!
//! `crash_server serve TABLE PORT [STEP]` serves the webhooks; `crash_server relay TABLE QUEUE_URL [STEP]`
//! runs one relay pass. Secrets: `whsec_test_secret_for_the_suite` on every family.

use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::faults::{FaultPlan, FaultyQueue, FaultyStore, Step};
use billing::adapters::memory::StaticSecrets;
use billing::adapters::sqs::SqsQueue;
use billing::ports::{BillingStore, Queue, SystemClock};
use billing::providers::stripe::signature::WebhookSecret;
use billing::providers::stripe::{pipeline, Settings};
use billing::telemetry::Metrics;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, table, target, rest @ ..] = args.as_slice() else {
        eprintln!("usage: crash_server (serve TABLE PORT | relay TABLE QUEUE_URL) [STEP]");
        std::process::exit(2);
    };
    let plan = Arc::new(FaultPlan::default());
    if let Some(step) = rest.first() {
        plan.crash_at(step.parse::<Step>().unwrap_or_else(|e| panic!("{e}")));
    }
    let sdk = billing::app::aws_config().await;
    let dynamo = DynamoBillingStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table.clone(),
        Retention::default(),
    );
    let store: Arc<dyn BillingStore> = Arc::new(FaultyStore {
        inner: Arc::new(dynamo),
        plan: plan.clone(),
    });
    match mode.as_str() {
        "serve" => {
            let service = Arc::new(pipeline(
                store,
                Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(
                    "whsec_test_secret_for_the_suite",
                )])),
                Arc::new(SystemClock),
                Arc::new(Metrics::Off),
                Settings::default(),
            ));
            let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{target}"))
                .await
                .expect("bind");
            println!("ready");
            axum::serve(listener, billing::http::local_router(service))
                .await
                .expect("serve");
        }
        "relay" => {
            let queue: Arc<dyn Queue> = Arc::new(FaultyQueue {
                inner: Arc::new(SqsQueue::new(
                    aws_sdk_sqs::Client::new(&sdk),
                    target.clone(),
                )),
                plan,
            });
            let report = billing::relay::drain(store.as_ref(), queue.as_ref(), &Metrics::Off, 100)
                .await
                .expect("drain");
            println!("sent {} failed {}", report.sent, report.failed);
        }
        other => panic!("unknown mode {other}"),
    }
}
