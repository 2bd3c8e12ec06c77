//! The reconcile Lambda, on an EventBridge Scheduler schedule: wiring only
//! (`reconcile::run_lambda`).

// The runtime, init and the event loop are `billing::reconcile::main`'s (one current thread),
// compiled there once rather than in this binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::reconcile::main()
}
