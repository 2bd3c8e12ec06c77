//! The configuration contract: every variable read once, at cold start, by the module that owns
//! it, and composed here into [`Config`]. This file reads the core's own variables (the table,
//! retention, tiers, the listen address, logs and metrics); Stripe's are read by
//! `providers::stripe::settings`, PayPal's by `providers::paypal::settings`, the emails' by
//! `emails::settings`, the call bounds by `bounds`. None of those imports this module. A missing
//! or malformed variable fails start-up with its name. Secrets are never printed.

use crate::adapters::dynamo::Retention;
use crate::adapters::secrets_manager::SecretSpec;
use crate::bounds::{read_bounds, CallBounds};
use crate::domain::access::TierPolicy;
use crate::emails::kinds::EmailSettings;
use crate::providers::stripe::settings::{
    read_stripe, read_thin, uses_secrets_manager, StripeApiSettings, StripeSettings,
};
use crate::providers::stripe::translate::StripeMapping;
use crate::providers::stripe::Family;
use crate::providers::stripe::Settings;
use crate::settings::{malformed, number};
pub use crate::settings::{ConfigError, DevDefaults};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub livemode: bool,
    pub tolerance_secs: u64,
    pub secrets: HashMap<Family, SecretSpec>,
    /// The families' Connect endpoints' secrets (those configured).
    pub connect_secrets: HashMap<Family, SecretSpec>,
    pub local_addr: SocketAddr,
    pub mapping: StripeMapping,
    pub tiers: TierPolicy,
    pub retention_days: u32,
    pub parked_retention_days: u32,
    pub feed_queue_url: Option<String>,
    pub metrics_namespace: String,
    pub log_json: bool,
    /// How long each call to AWS may wait (see `CallBounds`).
    pub bounds: CallBounds,
    /// The whole of one webhook delivery, from request to answer (`app::with_deadline`).
    pub delivery_timeout: Duration,
    /// Stripe's API, read to settle same-second ties; `None` without a key (and in processes
    /// that verify nothing, like the relay).
    pub stripe_api: Option<StripeApiSettings>,
    /// The thin endpoint's signing secrets, in the process that serves it (`thin_from_env`).
    pub thin_secrets: Option<SecretSpec>,
}

/// `BILLING_PRICE_TIERS` (`price_id=tier,…`) and `BILLING_TIER_ORDER` (lowest first).
fn read_tiers(get: &impl Fn(&str) -> Option<String>) -> Result<TierPolicy, ConfigError> {
    let mut tiers = TierPolicy::default();
    if let Some(map) = get("BILLING_PRICE_TIERS") {
        for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (price, tier) = pair
                .split_once('=')
                .filter(|(p, t)| !p.trim().is_empty() && !t.trim().is_empty())
                .ok_or_else(|| {
                    malformed(
                        "BILLING_PRICE_TIERS",
                        format!("`{pair}` is not price_id=tier"),
                    )
                })?;
            tiers
                .price_tiers
                .insert(price.trim().to_owned(), tier.trim().to_owned());
        }
    }
    if let Some(order) = get("BILLING_TIER_ORDER") {
        tiers.order = order
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
    }
    Ok(tiers)
}

impl Config {
    /// Reads the process environment for the given endpoint families.
    pub fn from_env(families: &[Family], dev: Option<&DevDefaults>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok(), families, dev)
    }

    /// Reads configuration through `get` (tests pass a map): the core's variables here, each
    /// other concern's through its module's reader.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        families: &[Family],
        dev: Option<&DevDefaults>,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let table = match (get("BILLING_TABLE"), dev) {
            (Some(t), _) => t,
            (None, Some(d)) => d.table.clone(),
            (None, None) => return Err(ConfigError::Missing("BILLING_TABLE".into())),
        };
        let StripeSettings {
            livemode,
            tolerance_secs,
            secrets,
            connect_secrets,
            mapping,
            api: stripe_api,
        } = read_stripe(get, families, dev)?;
        let local_addr = get("BILLING_LOCAL_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".into())
            .parse()
            .map_err(|_| malformed("BILLING_LOCAL_ADDR", "expected host:port"))?;
        // Stripe can resend events up to 30 days old: keep their records at least that long.
        let retention_days = number(&get, "BILLING_LEDGER_RETENTION_DAYS", 30..=3650, "days", 90)?;
        // Parked bodies hold customer data: kept long enough to fix and replay, not forever.
        let parked_retention_days =
            number(&get, "BILLING_PARKED_RETENTION_DAYS", 7..=3650, "days", 90)?;
        let log_json = match get("BILLING_LOG_FORMAT").as_deref() {
            None => dev.is_none(),
            Some("json") => true,
            Some("text") => false,
            Some(_) => return Err(malformed("BILLING_LOG_FORMAT", "expected json or text")),
        };
        let (bounds, delivery_timeout) = read_bounds(&get)?;
        Ok(Self {
            table,
            livemode,
            tolerance_secs,
            secrets,
            connect_secrets,
            local_addr,
            mapping,
            tiers: read_tiers(&get)?,
            retention_days: retention_days as u32,
            parked_retention_days: parked_retention_days as u32,
            feed_queue_url: get("BILLING_FEED_QUEUE_URL"),
            metrics_namespace: get("BILLING_METRICS_NAMESPACE")
                .unwrap_or_else(|| crate::telemetry::DEFAULT_NAMESPACE.into()),
            log_json,
            bounds,
            delivery_timeout,
            stripe_api,
            thin_secrets: None,
        })
    }

    /// The thin endpoint's process (`functions/thin`): the core's variables, and Stripe's mode,
    /// API key and the endpoint's own secrets (`providers::stripe::settings::read_thin`).
    pub fn thin_from_env() -> Result<Self, ConfigError> {
        Self::thin_from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Config::thin_from_env`] through `get`.
    pub fn thin_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let thin = read_thin(&get)?;
        let mut config = Self::from_lookup(get, &[], None)?;
        config.livemode = thin.livemode;
        config.stripe_api = thin.api;
        config.thin_secrets = Some(thin.secrets);
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            tolerance_secs: self.tolerance_secs,
            livemode: self.livemode,
            mapping: self.mapping.clone(),
            tiers: self.tiers.clone(),
        }
    }

    pub fn retention(&self) -> Retention {
        Retention {
            ledger_secs: i64::from(self.retention_days) * 86_400,
            parked_secs: i64::from(self.parked_retention_days) * 86_400,
        }
    }

    /// The customer emails' settings from the process environment
    /// (`emails::settings::read_email_settings`).
    pub fn emails_from_env() -> Result<EmailSettings, ConfigError> {
        crate::emails::settings::email_settings_from_env()
    }

    pub fn uses_secrets_manager(&self) -> bool {
        uses_secrets_manager(&self.secrets, self.stripe_api.as_ref())
            || uses_secrets_manager(&self.connect_secrets, None)
            || matches!(self.thin_secrets, Some(SecretSpec::Arn(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::stripe_api::StripeApiKey;
    use crate::bounds::DEFAULT_DELIVERY_TIMEOUT;
    use crate::providers::stripe::settings::ApiKeySpec;
    use crate::secret::WebhookSecret;
    use crate::settings::lookup;

    const BASE: [(&str, &str); 3] = [
        ("BILLING_TABLE", "t"),
        ("STRIPE_LIVEMODE", "false"),
        ("STRIPE_WEBHOOK_SECRETS_CHECKOUT", "whsec_a, whsec_b"),
    ];

    #[test]
    fn reads_a_complete_lambda_configuration() {
        let c = Config::from_lookup(lookup(&BASE), &[Family::Checkout], None).expect("valid");
        assert_eq!(c.tolerance_secs, 300);
        assert_eq!(c.retention().parked_secs, 90 * 86_400);
        assert_eq!(
            c.secrets[&Family::Checkout],
            SecretSpec::Inline(vec![
                WebhookSecret::new("whsec_a"),
                WebhookSecret::new("whsec_b")
            ])
        );
        assert!(c.log_json);
        assert_eq!(c.bounds, CallBounds::default());
        assert_eq!(c.delivery_timeout, DEFAULT_DELIVERY_TIMEOUT);
        assert_eq!(c.stripe_api, None);
        assert!(!c.uses_secrets_manager());
    }

    /// Each module's reader is composed: its values reach `Config`, its errors fail it (the
    /// readers' own tests are beside them: `bounds`, `providers::stripe::settings`).
    #[test]
    fn the_modules_settings_reach_the_config() {
        let mut set = BASE.to_vec();
        set.extend([
            ("BILLING_AWS_MAX_ATTEMPTS", "2"),
            ("BILLING_DELIVERY_TIMEOUT_MS", "5000"),
            (
                "STRIPE_API_KEY_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:k",
            ),
            ("BILLING_USER_METADATA_KEY", "account"),
        ]);
        let c = Config::from_lookup(lookup(&set), &[Family::Checkout], None).expect("valid");
        assert_eq!(c.bounds.max_attempts, 2);
        assert_eq!(c.delivery_timeout, Duration::from_millis(5000));
        assert_eq!(c.mapping.user_metadata_key, "account");
        assert_eq!(
            c.stripe_api.as_ref().map(|a| &a.key),
            Some(&ApiKeySpec::Arn(
                "arn:aws:secretsmanager:us-east-1:1:secret:k".into()
            ))
        );
        assert!(c.uses_secrets_manager());
        let mut key = BASE.to_vec();
        key.push(("STRIPE_API_KEY", "rk_test_restricted"));
        let c = Config::from_lookup(lookup(&key), &[Family::Checkout], None).expect("valid");
        assert_eq!(
            c.stripe_api.map(|a| a.key),
            Some(ApiKeySpec::Inline(
                StripeApiKey::parse("rk_test_restricted").expect("key")
            ))
        );
        for (name, bad) in [
            ("BILLING_AWS_TIMEOUT_MS", "30000"),
            ("STRIPE_API_KEY", "pk_test_publishable"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, bad));
            let msg = Config::from_lookup(lookup(&pairs), &[Family::Checkout], None)
                .expect_err(name)
                .to_string();
            assert!(msg.starts_with(name), "{msg}");
        }
    }

    #[test]
    fn names_the_missing_or_malformed_variable() {
        let err = |pairs: &[(&str, &str)]| {
            Config::from_lookup(lookup(pairs), &[Family::Checkout], None)
                .expect_err("must fail")
                .to_string()
        };
        assert!(err(&BASE[1..]).contains("BILLING_TABLE"));
        assert!(err(&[BASE[0], BASE[2]]).contains("STRIPE_LIVEMODE"));
        assert!(err(&BASE[..2]).contains("STRIPE_WEBHOOK_SECRETS_CHECKOUT"));
        let mut bad = BASE.to_vec();
        bad.push(("STRIPE_SIGNATURE_TOLERANCE_SECS", "5m"));
        assert!(err(&bad).contains("STRIPE_SIGNATURE_TOLERANCE_SECS"));
        let mut bad = BASE.to_vec();
        bad[1] = ("STRIPE_LIVEMODE", "yes");
        assert!(err(&bad).contains("STRIPE_LIVEMODE"));
        let mut bad = BASE.to_vec();
        bad[2] = ("STRIPE_WEBHOOK_SECRETS_CHECKOUT", "sk_live_oops");
        let msg = err(&bad);
        assert!(msg.contains("STRIPE_WEBHOOK_SECRETS_CHECKOUT") && !msg.contains("sk_live_oops"));
        let mut both = BASE.to_vec();
        both.push((
            "STRIPE_WEBHOOK_SECRETS_CHECKOUT_ARN",
            "arn:aws:secretsmanager:x",
        ));
        assert!(err(&both).contains("only one"));
        let mut short = BASE.to_vec();
        short.push(("BILLING_LEDGER_RETENTION_DAYS", "7"));
        assert!(err(&short).contains("BILLING_LEDGER_RETENTION_DAYS"));
        for days in ["6", "3651", "a week"] {
            let mut parked = BASE.to_vec();
            parked.push(("BILLING_PARKED_RETENTION_DAYS", days));
            assert!(
                err(&parked).contains("BILLING_PARKED_RETENTION_DAYS"),
                "{days}"
            );
        }
    }

    #[test]
    fn the_thin_process_reads_its_secret_the_mode_and_the_key() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:thin";
        let pairs = [
            ("BILLING_TABLE", "t"),
            ("STRIPE_LIVEMODE", "true"),
            ("STRIPE_WEBHOOK_SECRETS_THIN_ARN", arn),
            ("STRIPE_API_KEY", "rk_live_restricted"),
        ];
        let c = Config::thin_from_lookup(lookup(&pairs)).expect("valid");
        assert!(c.livemode);
        assert_eq!(c.thin_secrets, Some(SecretSpec::Arn(arn.into())));
        assert!(c.secrets.is_empty());
        assert!(c.stripe_api.is_some());
        assert!(c.uses_secrets_manager());
        let msg = Config::thin_from_lookup(lookup(&pairs[..2]))
            .expect_err("no secret")
            .to_string();
        assert!(msg.contains("STRIPE_WEBHOOK_SECRETS_THIN"), "{msg}");
        // The families' processes never read it.
        let mut family = pairs.to_vec();
        family.push(("STRIPE_WEBHOOK_SECRETS_CHECKOUT", "whsec_a"));
        let c = Config::from_lookup(lookup(&family), &[Family::Checkout], None).expect("valid");
        assert_eq!(c.thin_secrets, None);
    }

    #[test]
    fn the_relay_reads_no_stripe_api_key() {
        let pairs = [
            ("BILLING_TABLE", "t"),
            ("STRIPE_API_KEY", "rk_live_restricted"),
        ];
        let c = Config::from_lookup(lookup(&pairs), &[], None).expect("valid");
        assert_eq!(c.stripe_api, None);
    }

    #[test]
    fn dev_defaults_fill_only_unset_variables() {
        let dev = DevDefaults {
            table: "billing-local".into(),
            secrets: Family::ALL
                .into_iter()
                .map(|f| (f, format!("whsec_dev_{f}")))
                .collect(),
            connect_secrets: Family::ALL
                .into_iter()
                .map(|f| (f, format!("whsec_dev_connect_{f}")))
                .collect(),
        };
        let c = Config::from_lookup(
            lookup(&[
                ("STRIPE_LIVEMODE", "true"),
                ("STRIPE_WEBHOOK_SECRETS_CHARGE_CONNECT", "whsec_from_env"),
            ]),
            &Family::ALL,
            Some(&dev),
        )
        .expect("valid");
        assert_eq!(c.table, "billing-local");
        assert!(c.livemode);
        assert_eq!(
            c.secrets[&Family::Invoice],
            SecretSpec::Inline(vec![WebhookSecret::new("whsec_dev_invoice")])
        );
        // The local run's Connect routes verify with its generated Connect secrets, unless
        // the environment names one.
        assert_eq!(
            c.connect_secrets[&Family::Invoice],
            SecretSpec::Inline(vec![WebhookSecret::new("whsec_dev_connect_invoice")])
        );
        assert_eq!(
            c.connect_secrets[&Family::Charge],
            SecretSpec::Inline(vec![WebhookSecret::new("whsec_from_env")])
        );
    }
}
