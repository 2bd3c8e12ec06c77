//! Providers: verify and translate each provider's wire format into `domain::events`.

pub mod evidence;
pub mod operator;
pub mod paypal;
pub mod seam;
pub mod stripe;

use crate::routing::Endpoint;

/// Every endpoint of the built-in providers, in one place: the metrics' dimension values and
/// the dashboard check list them. (A provider's routes come from the provider itself.)
pub fn built_in_endpoints() -> Vec<Endpoint> {
    stripe::Family::ALL
        .into_iter()
        .map(stripe::Family::endpoint)
        .chain([stripe::thin::ENDPOINT, paypal::ENDPOINT, operator::ENDPOINT])
        .collect()
}
