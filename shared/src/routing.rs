//! Endpoint families: one Lambda (and one webhook endpoint) per family.

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
    /// PayPal's one endpoint (`POST /webhooks/paypal`): every PayPal type. Not in [`Family::ALL`],
    /// which lists Stripe's endpoints (their secrets and enabled events).
    Paypal,
    /// Not a webhook endpoint: what an operator records (`billing grant`).
    Operator,
}

impl Family {
    /// The webhook endpoint families (every family but [`Family::Operator`]).
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
            Family::Paypal => "paypal",
            Family::Operator => "operator",
        }
    }

    /// Suffix of this family's configuration variables (`…_CHECKOUT`).
    pub fn env_suffix(self) -> &'static str {
        match self {
            Family::Checkout => "CHECKOUT",
            Family::Subscription => "SUBSCRIPTION",
            Family::Invoice => "INVOICE",
            Family::Charge => "CHARGE",
            Family::Paypal => "PAYPAL",
            Family::Operator => "OPERATOR",
        }
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
            .chain([Family::Paypal, Family::Operator])
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown family `{s}`"))
    }
}
