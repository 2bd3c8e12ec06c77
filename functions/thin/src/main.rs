//! The thin endpoint's Lambda (`POST /webhooks/stripe/thin`): wiring only; resolving Stripe's
//! thin notifications and everything after lives in the `billing` crate.

// The runtime, init and the event loop are `billing::app::main`'s (one current thread), compiled
// there once rather than in each function's binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::app::main::thin()
}
