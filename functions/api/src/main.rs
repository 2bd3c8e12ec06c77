//! The read API's Lambda (access, billing, audit trail, ledger records, parked events): wiring
//! only.

// The runtime, init and the event loop are `billing::app::main`'s (one current thread), compiled
// there once rather than in each function's binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::app::main::read()
}
