//! How the functions decode their Lambda events, over any bytes: as API Gateway's request
//! (REST or HTTP API, lambda_http's conversion) served by every route on an in-memory store,
//! and as a DynamoDB Stream batch handed to the relay. Contract: nothing panics, no request
//! is answered 500, and the relay answers every batch.
#![no_main]

use aws_lambda_events::event::dynamodb::Event;
use billing::adapters::memory::{InMemoryBillingStore, InMemoryQueue, StaticSecrets};
use billing::http::local_router;
use billing::ports::FixedClock;
use billing::providers::stripe::signature::WebhookSecret;
use billing::providers::stripe::{pipeline, Settings};
use billing::telemetry::Metrics;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

const NOW: i64 = 1_735_689_600;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fn marked_base64_but_not(data: &[u8]) -> bool {
    use base64::Engine;
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    let marked = event.get("isBase64Encoded") == Some(&serde_json::Value::Bool(true));
    let body = event.get("body").and_then(serde_json::Value::as_str);
    marked && body.is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err())
}

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(InMemoryBillingStore::new());
    let metrics = Arc::new(Metrics::memory());

    // lambda_http's conversion panics (its documented `expect`) on a body marked base64 that
    // does not decode. API Gateway encodes bodies itself, so no delivery can carry one, and
    // lambda_runtime's panic layer would answer that invocation with an error. Skipped here so
    // the target keeps exploring; `hostile_input_tests` pins the upstream behaviour.
    if marked_base64_but_not(data) {
        return;
    }
    if let Ok(request) = serde_json::from_slice::<lambda_http::request::LambdaRequest>(data) {
        let request: http::Request<lambda_http::Body> = request.into();
        let service = Arc::new(pipeline(
            store.clone(),
            Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(
                "whsec_fuzz",
            )])),
            Arc::new(FixedClock::at(NOW)),
            metrics.clone(),
            Settings::default(),
        ));
        // As the Lambdas serve it: the routes under the delivery deadline.
        let router = billing::app::with_deadline(local_router(service), Duration::from_secs(15));
        let response = runtime()
            .block_on(router.oneshot(request))
            .expect("the router is infallible");
        assert_ne!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }

    if let Ok(event) = serde_json::from_slice::<Event>(data) {
        for record in &event.records {
            let _ = billing::relay::outbox_insert(record);
        }
        let queue = InMemoryQueue::default();
        let response = runtime().block_on(billing::relay::handle_stream_batch(
            store.as_ref(),
            &queue,
            &metrics,
            &event,
        ));
        assert!(response.batch_item_failures.len() <= event.records.len());
    }
});
