//! The EventBridge ingress' Lambda: Stripe events from the partner event source's rule, as SQS
//! batches with partial batch failures (`billing::eventbridge`); wiring only.

// The runtime, init and the event loop are `billing::eventbridge::main`'s (one current thread),
// compiled there once rather than in this binary.
fn main() -> Result<(), lambda_http::Error> {
    billing::eventbridge::main()
}
