//! The read API's Lambda (access, billing, audit trail, ledger records, parked events): wiring
//! only.

// One thread: a Lambda instance serves one request at a time, so a multi-threaded runtime only
// adds start-up work. Init (config, clients, the DynamoDB warm-up) runs before the first event.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_read_lambda().await
}
