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

fn convert(
    request: lambda_http::request::LambdaRequest,
) -> Option<http::Request<lambda_http::Body>> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let converted = std::panic::catch_unwind(|| http::Request::from(request)).ok();
    std::panic::set_hook(hook);
    converted
}

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(InMemoryBillingStore::new());
    let metrics = Arc::new(Metrics::memory());

    if let Ok(request) = serde_json::from_slice::<lambda_http::request::LambdaRequest>(data) {
        // lambda_http's conversion panics (its `expect`s) on events API Gateway does not send:
        // a body marked base64 that does not decode, a host that makes no URI. In a Lambda,
        // lambda_runtime's panic layer answers that invocation with an error and the process
        // lives on; so here, silently, and the target keeps exploring. `hostile_input_tests`
        // pins both. Our code runs after the conversion, under libFuzzer's hook again.
        let Some(request) = convert(request) else {
            return;
        };
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
