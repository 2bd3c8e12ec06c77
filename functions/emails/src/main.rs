//! The customer emails' Lambda: email jobs from the email queue and SES bounce and complaint
//! notifications from the bounce queue, both as SQS batches with partial batch failures.

// The runtime, init and the event loop are `billing::app::main`'s (one current thread), compiled
// there once rather than in each function's binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::app::main::emails()
}
