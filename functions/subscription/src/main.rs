//! The subscription endpoint's Lambda: wiring only; all logic lives in the `billing` crate.

// The runtime, init and the event loop are `billing::app::main`'s (one current thread), compiled
// there once rather than in each function's binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::app::main::stripe(billing::providers::stripe::Family::Subscription)
}
