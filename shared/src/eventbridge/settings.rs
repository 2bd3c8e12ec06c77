//! The EventBridge ingress' settings (`BILLING_EVENTBRIDGE_*`), read at cold start by the
//! eventbridge Lambda ([`Settings::from_env`]): which partner event source and which AWS account
//! a record must come from to be applied.

use crate::settings::{malformed, ConfigError};

/// The prefix of every Stripe partner event source's name.
pub const SOURCE_PREFIX: &str = "aws.partner/stripe.com/";

/// `BILLING_EVENTBRIDGE_SOURCE` and `BILLING_EVENTBRIDGE_ACCOUNT`, both required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The partner event source (`aws.partner/stripe.com/ed_…`): the only `source` applied.
    pub source: String,
    /// The function's own AWS account id (twelve digits): the only `account` applied.
    pub account: String,
}

impl Settings {
    /// The local samples' source and account (`events/eventbridge.json`, lambda-invoke-check,
    /// the tests).
    pub fn sample() -> Self {
        Self {
            source: super::SAMPLE_SOURCE.into(),
            account: super::SAMPLE_ACCOUNT.into(),
        }
    }

    /// Reads both variables through `get`; a missing or malformed one is refused by name.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        const SOURCE: &str = "BILLING_EVENTBRIDGE_SOURCE";
        const ACCOUNT: &str = "BILLING_EVENTBRIDGE_ACCOUNT";
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let source = get(SOURCE).ok_or_else(|| ConfigError::Missing(SOURCE.into()))?;
        let name = source.strip_prefix(SOURCE_PREFIX).unwrap_or("");
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(malformed(
                SOURCE,
                format!("expected a Stripe partner event source, {SOURCE_PREFIX}…"),
            ));
        }
        let account = get(ACCOUNT).ok_or_else(|| ConfigError::Missing(ACCOUNT.into()))?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(ACCOUNT, "expected a 12-digit AWS account id"));
        }
        Ok(Self { source, account })
    }

    /// [`Settings::read`] from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::lookup;

    const SOURCE: &str = "aws.partner/stripe.com/ed_test_61Sx";

    #[test]
    fn both_variables_are_read() {
        let s = Settings::read(lookup(&[
            ("BILLING_EVENTBRIDGE_SOURCE", SOURCE),
            ("BILLING_EVENTBRIDGE_ACCOUNT", " 123456789012 "),
        ]))
        .expect("valid");
        assert_eq!(s.source, SOURCE);
        assert_eq!(s.account, "123456789012");
    }

    #[test]
    fn a_missing_or_malformed_variable_is_refused_by_name() {
        let missing = Settings::read(lookup(&[("BILLING_EVENTBRIDGE_ACCOUNT", "123456789012")]));
        assert_eq!(
            missing,
            Err(ConfigError::Missing("BILLING_EVENTBRIDGE_SOURCE".into()))
        );
        for source in ["aws.partner/stripe.com/", "aws.events", "stripe.com/ed_1"] {
            let e = Settings::read(lookup(&[
                ("BILLING_EVENTBRIDGE_SOURCE", source),
                ("BILLING_EVENTBRIDGE_ACCOUNT", "123456789012"),
            ]))
            .expect_err(source);
            assert!(
                e.to_string().starts_with("BILLING_EVENTBRIDGE_SOURCE"),
                "{e}"
            );
        }
        for account in ["12345678901", "12345678901x", "1234567890123"] {
            let e = Settings::read(lookup(&[
                ("BILLING_EVENTBRIDGE_SOURCE", SOURCE),
                ("BILLING_EVENTBRIDGE_ACCOUNT", account),
            ]))
            .expect_err(account);
            assert!(
                e.to_string().starts_with("BILLING_EVENTBRIDGE_ACCOUNT"),
                "{e}"
            );
        }
        let e = Settings::read(lookup(&[("BILLING_EVENTBRIDGE_SOURCE", SOURCE)]));
        assert_eq!(
            e,
            Err(ConfigError::Missing("BILLING_EVENTBRIDGE_ACCOUNT".into()))
        );
    }
}
