//! Identifier newtypes: an id of one kind can never be passed where another is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A provider's event id (`evt_…` for Stripe, `WH-…` for PayPal).
    EventId
);
id_type!(
    /// The application's own user id (Checkout's `client_reference_id`, or a metadata value).
    UserId
);
id_type!(
    /// A provider customer (`cus_…`).
    CustomerId
);
id_type!(
    /// A provider subscription (`sub_…`).
    SubscriptionId
);
id_type!(
    /// A provider invoice (`in_…`).
    InvoiceId
);
id_type!(
    /// A catalogue product (`prod_…`, or an id the merchant chose when creating it).
    ProductId
);
id_type!(
    /// A catalogue price (`price_…`). A legacy plan shares its id with the price it is.
    PriceId
);

/// Which provider an event or a billing source comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Stripe,
    Paypal,
    /// The operator: periods granted by `billing grant`, recorded like provider events.
    System,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Stripe, Provider::Paypal, Provider::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Paypal => "paypal",
            Provider::System => "system",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
