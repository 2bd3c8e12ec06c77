//! The Stripe and PayPal translators over arbitrary JSON: each provider's `read` (envelope,
//! translation to a canonical event), then the Stripe delivery validly signed and received by
//! an in-memory pipeline, so the model applies whatever the translation produced. Contract:
//! nothing panics; a body is read or refused with an error.
#![no_main]

use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::providers::seam::WebhookProvider;
use billing::ports::FixedClock;
use billing::providers::paypal::PaypalProvider;
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::{pipeline, Family, Settings, StripeProvider};
use billing::telemetry::Metrics;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const SECRET: &str = "whsec_fuzz";
/// 2025-01-01T00:00:00Z: the clock of the pipeline and the signatures.
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

fn secrets() -> Arc<StaticSecrets> {
    Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)]))
}

fuzz_target!(|data: &[u8]| {
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let stripe = StripeProvider::new(
        secrets(),
        clock.clone(),
        metrics.clone(),
        Settings::default(),
    );
    let read = stripe.read(data);
    let _ = PaypalProvider::read_only().read(data);

    // Only a readable event goes further, as in the pipeline (which parks the rest).
    let Ok(read) = read else { return };
    let service = pipeline(
        Arc::new(InMemoryBillingStore::new()),
        secrets(),
        clock,
        metrics,
        Settings::default(),
    );
    let mut headers = http::HeaderMap::new();
    let signature = sign(data, &[WebhookSecret::new(SECRET)], NOW);
    headers.insert(
        "stripe-signature",
        http::HeaderValue::from_str(&signature).expect("a signature is ASCII"),
    );
    let endpoint = Family::ALL
        .into_iter()
        .find(|f| f.as_str() == read.home)
        .expect("a Stripe event's home is a Stripe family")
        .endpoint();
    let _ = runtime().block_on(service.receive(endpoint, &headers, data));
});
