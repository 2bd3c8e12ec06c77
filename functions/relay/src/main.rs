//! The outbox relay's Lambda, on the table's DynamoDB Stream: wiring only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_relay_lambda().await
}
