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

/// Which provider an event or a billing source comes from: its lowercase name, as stored in
/// keys (`CUS#stripe#…`) and routes (`/events/stripe/…`). Open, so a provider is added by
/// registering it (`providers::seam`), not by editing a list here.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provider(&'static str);

/// Providers registered at run time (beside the built-in ones), so a stored name reads back.
static REGISTERED: std::sync::RwLock<Vec<Provider>> = std::sync::RwLock::new(Vec::new());

impl Provider {
    pub const STRIPE: Provider = Provider("stripe");
    pub const PAYPAL: Provider = Provider("paypal");
    /// The operator: periods granted by `billing grant`, recorded like provider events.
    pub const SYSTEM: Provider = Provider("system");
    /// The providers every build knows.
    pub const BUILT_IN: [Provider; 3] = [Provider::STRIPE, Provider::PAYPAL, Provider::SYSTEM];

    /// A provider named `name`: lowercase ASCII letters, digits and `_`, 1 to 32 of them (a key
    /// part and a path segment). Panics otherwise: names are constants in the code.
    pub const fn named(name: &'static str) -> Provider {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() <= 32,
            "provider name length"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
                "provider name: lowercase letters, digits and _"
            );
            i += 1;
        }
        Provider(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Makes this provider's name readable by [`Self::parse`] (and so by stored items and the
    /// routes). Registering twice is harmless.
    pub fn register(self) {
        if Provider::parse(self.0).is_some() {
            return;
        }
        if let Ok(mut registered) = REGISTERED.write() {
            if !registered.contains(&self) {
                registered.push(self);
            }
        }
    }

    /// The inverse of [`Self::as_str`], for the built-in providers and the registered ones.
    pub fn parse(s: &str) -> Option<Provider> {
        if let Some(p) = Provider::BUILT_IN.into_iter().find(|p| p.0 == s) {
            return Some(p);
        }
        REGISTERED.read().ok()?.iter().copied().find(|p| p.0 == s)
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provider({})", self.0)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Provider::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown provider `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_reads_back_as_itself_once_registered() {
        const ACME: Provider = Provider::named("acme_ids_test");
        assert_eq!(Provider::parse("acme_ids_test"), None);
        let json = "\"acme_ids_test\"";
        assert!(serde_json::from_str::<Provider>(json).is_err());
        ACME.register();
        assert_eq!(Provider::parse("acme_ids_test"), Some(ACME));
        assert_eq!(serde_json::from_str::<Provider>(json).unwrap(), ACME);
        assert_eq!(
            serde_json::to_string(&Provider::STRIPE).unwrap(),
            "\"stripe\""
        );
        assert_eq!(
            serde_json::from_str::<Provider>("\"paypal\"").unwrap(),
            Provider::PAYPAL
        );
    }
}
