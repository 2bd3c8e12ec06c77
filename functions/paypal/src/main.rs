//! The PayPal endpoint's Lambda (`POST /webhooks/paypal`): wiring only; all logic lives in the
//! `billing` crate.

// One thread: a Lambda instance serves one request at a time. Init (config, clients, the
// DynamoDB warm-up) runs before the first event.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_paypal_lambda().await
}
