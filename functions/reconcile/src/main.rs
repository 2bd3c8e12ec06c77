//! The reconcile Lambda, on an EventBridge Scheduler schedule: wiring only
//! (`reconcile::run_lambda`).

// One thread: one scheduled invocation at a time. Init (config, clients, the Stripe key, the
// DynamoDB warm-up) runs before the first one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    billing::reconcile::run_lambda().await
}
