//! The charge endpoint's Lambda: wiring only; all logic lives in the `billing` crate.

// One thread: a Lambda instance serves one request at a time, so a multi-threaded runtime only
// adds start-up work. Init (config, clients, the DynamoDB warm-up) runs before the first event.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_stripe_lambda(billing::providers::stripe::Family::Charge).await
}
