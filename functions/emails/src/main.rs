//! The customer emails' Lambda: email jobs from the email queue and SES bounce and complaint
//! notifications from the bounce queue, both as SQS batches with partial batch failures.

// One thread: a Lambda instance serves one batch at a time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    billing::app::run_emails_lambda().await
}
