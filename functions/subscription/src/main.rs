//! The subscription endpoint's Lambda: wiring only; all logic lives in the `billing` crate.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_stripe_lambda(billing::routing::Family::Subscription).await
}
