//! Endpoints: where a provider's deliveries arrive. An endpoint is named by its provider and
//! its own name (Stripe's `checkout`, PayPal's `paypal`), and has its route, its secrets and its
//! metrics dimension. The providers say which endpoints they have (`providers::seam`).

use crate::domain::ids::Provider;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub provider: Provider,
    /// Unique among all providers' endpoints: the metrics dimension and the ledger's `family`.
    pub name: &'static str,
}

impl Endpoint {
    pub const fn new(provider: Provider, name: &'static str) -> Self {
        Self { provider, name }
    }

    pub fn as_str(self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One webhook route: the path a provider's endpoint is served at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub path: String,
}
