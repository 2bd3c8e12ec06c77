//! Stripe's endpoint families: one Lambda and one webhook endpoint (`/webhooks/stripe/{family}`)
//! per family, each with its own signing secrets and enabled events.

use crate::domain::ids::Provider;
use crate::routing::Endpoint;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Checkout,
    Subscription,
    Invoice,
    Charge,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Checkout,
        Family::Subscription,
        Family::Invoice,
        Family::Charge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Checkout => "checkout",
            Family::Subscription => "subscription",
            Family::Invoice => "invoice",
            Family::Charge => "charge",
        }
    }

    /// This family's endpoint: its secrets are looked up by it, its deliveries counted under it.
    pub const fn endpoint(self) -> Endpoint {
        Endpoint::new(
            Provider::STRIPE,
            match self {
                Family::Checkout => "checkout",
                Family::Subscription => "subscription",
                Family::Invoice => "invoice",
                Family::Charge => "charge",
            },
        )
    }

    /// This family's Connect endpoint (`/webhooks/stripe/{family}/connect`): a Stripe endpoint
    /// made with `connect: true`, which receives the family's events of every connected account
    /// (each carries `account`), signed with its own secrets.
    pub const fn connect_endpoint(self) -> Endpoint {
        Endpoint::new(
            Provider::STRIPE,
            match self {
                Family::Checkout => "checkout_connect",
                Family::Subscription => "subscription_connect",
                Family::Invoice => "invoice_connect",
                Family::Charge => "charge_connect",
            },
        )
    }

    /// Where an event of this family from `account` arrives: the Connect endpoint for a
    /// connected account's, the family's own for the platform's. The catch-up jobs record what
    /// they fetch under the endpoint its webhook would have reached.
    pub const fn endpoint_within(self, account: Option<crate::domain::ids::Account>) -> Endpoint {
        match account {
            Some(_) => self.connect_endpoint(),
            None => self.endpoint(),
        }
    }

    /// The family whose endpoint (its own or its Connect one) this is.
    pub fn of(endpoint: Endpoint) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.endpoint() == endpoint || f.connect_endpoint() == endpoint)
    }

    /// Suffix of this family's configuration variables (`…_CHECKOUT`).
    pub fn env_suffix(self) -> &'static str {
        match self {
            Family::Checkout => "CHECKOUT",
            Family::Subscription => "SUBSCRIPTION",
            Family::Invoice => "INVOICE",
            Family::Charge => "CHARGE",
        }
    }
}

impl From<Family> for Endpoint {
    fn from(family: Family) -> Endpoint {
        family.endpoint()
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown family `{s}`"))
    }
}
