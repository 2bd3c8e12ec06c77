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

impl UserId {
    /// The user `self` of a connected account: `{account}/{user}`. Its item, document and feed
    /// messages are its own, apart from the platform's user of the same id and from another
    /// account's (the read routes ask with `?account=`).
    pub fn in_account(&self, account: Account) -> UserId {
        UserId(format!("{account}/{}", self.0))
    }
}

/// A connected account of a platform (Stripe Connect's `acct_…`): a scope inside a provider.
/// Held inline (at most [`Account::MAX`] ASCII bytes), so a [`Provider`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Account {
    len: u8,
    bytes: [u8; Account::MAX],
}

impl Account {
    /// The longest account id accepted (Stripe's are `acct_` and 16 characters).
    pub const MAX: usize = 64;

    /// `acct_` followed by 1 to 59 ASCII letters and digits; anything else is not an account.
    pub fn parse(s: &str) -> Option<Account> {
        let rest = s.strip_prefix("acct_")?;
        if rest.is_empty()
            || s.len() > Self::MAX
            || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Account {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl PartialOrd for Account {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Account {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({})", self.as_str())
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which provider an event or a billing source comes from, and in which of the platform's
/// connected accounts (none: the platform's own). Shown and stored as the provider's lowercase
/// name (`stripe`), or `{name}@{account}` for a connected account (`stripe@acct_1Ab…`): in keys
/// (`CUS#stripe@acct_1Ab…#cus_…`), so the same customer, subscription, invoice, charge or event
/// id in two accounts never names the same item. Open, so a provider is added by registering it
/// (`providers::seam`), not by editing a list here.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provider {
    name: &'static str,
    account: Option<Account>,
}

/// Providers registered at run time (beside the built-in ones), so a stored name reads back.
static REGISTERED: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());

impl Provider {
    pub const STRIPE: Provider = Provider::named("stripe");
    pub const PAYPAL: Provider = Provider::named("paypal");
    /// The operator: periods granted by `billing grant`, recorded like provider events.
    pub const SYSTEM: Provider = Provider::named("system");
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
        Provider {
            name,
            account: None,
        }
    }

    /// The provider's name, whatever the account (`stripe`).
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The connected account, if this is one.
    pub fn account(self) -> Option<Account> {
        self.account
    }

    /// The same provider in the platform's own account: the one that verifies, reads and is
    /// registered.
    pub fn base(self) -> Provider {
        Provider {
            name: self.name,
            account: None,
        }
    }

    /// The same provider in `account` (a connected account of the platform).
    pub fn in_account(self, account: Account) -> Provider {
        Provider {
            name: self.name,
            account: Some(account),
        }
    }

    /// The same provider in `account` if there is one, else in the platform's own.
    pub fn within(self, account: Option<Account>) -> Provider {
        Provider {
            name: self.name,
            account,
        }
    }

    /// Makes this provider's name readable by [`Self::parse`] (and so by stored items and the
    /// routes). Registering twice is harmless.
    pub fn register(self) {
        if Provider::parse(self.name).is_some() {
            return;
        }
        if let Ok(mut registered) = REGISTERED.write() {
            if !registered.contains(&self.name) {
                registered.push(self.name);
            }
        }
    }

    /// The inverse of `Display`: a built-in or registered name, with `@{account}` for a
    /// connected account.
    pub fn parse(s: &str) -> Option<Provider> {
        let (name, account) = match s.split_once('@') {
            Some((name, account)) => (name, Some(Account::parse(account)?)),
            None => (s, None),
        };
        let base = match Provider::BUILT_IN.into_iter().find(|p| p.name == name) {
            Some(p) => p,
            None => {
                let registered = REGISTERED.read().ok()?;
                Provider::named(registered.iter().copied().find(|n| *n == name)?)
            }
        };
        Some(match account {
            Some(account) => base.in_account(account),
            None => base,
        })
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provider({self})")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.account {
            Some(account) => write!(f, "{}@{account}", self.name),
            None => f.write_str(self.name),
        }
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
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

    #[test]
    fn a_connected_account_is_a_scope_of_its_provider_that_reads_back() {
        let a = Account::parse("acct_1032D82eZvKYlo2C").unwrap();
        let scoped = Provider::STRIPE.in_account(a);
        assert_eq!(scoped.to_string(), "stripe@acct_1032D82eZvKYlo2C");
        assert_eq!(
            Provider::parse("stripe@acct_1032D82eZvKYlo2C"),
            Some(scoped)
        );
        assert_eq!(scoped.base(), Provider::STRIPE);
        assert_ne!(scoped, Provider::STRIPE);
        let other = Provider::STRIPE.in_account(Account::parse("acct_B").unwrap());
        assert_ne!(scoped, other);
        let json = serde_json::to_string(&scoped).unwrap();
        assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), scoped);
        for bad in [
            "acct_",
            "acct_a/b",
            "acct_a#b",
            "cus_1",
            "acct_a@b",
            &format!("acct_{}", "a".repeat(60)),
        ] {
            assert_eq!(Account::parse(bad), None, "{bad}");
            assert_eq!(Provider::parse(&format!("stripe@{bad}")), None, "{bad}");
        }
        assert_eq!(Provider::parse("nobody@acct_1"), None);
        assert!(Account::parse(&format!("acct_{}", "a".repeat(59))).is_some());
    }
}
