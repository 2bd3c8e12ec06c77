//! The configuration contract: every variable read once, at cold start, here and nowhere else.
//! A missing or malformed variable fails start-up with its name. Secrets are never printed.

use crate::adapters::dynamo::Retention;
use crate::adapters::secrets_manager::{parse_secret_list, validate_secret_list, SecretSpec};
use crate::adapters::stripe_api::{parse_base, StripeApiKey, DEFAULT_BASE};
use crate::domain::access::TierPolicy;
use crate::emails::kinds::{
    configuration_set_ok, parse_kinds, parse_mailbox, EmailKind, EmailSettings, DEFAULT_KINDS,
};
use crate::providers::paypal::api::{ClientSecret, DEFAULT_API_BASE as PAYPAL_DEFAULT_BASE};
use crate::providers::paypal::cert_url::CertUrlPolicy;
use crate::providers::paypal::certs::TrustRoots;
use crate::providers::stripe::translate::StripeMapping;
use crate::providers::stripe::Family;
use crate::providers::stripe::Settings;
use crate::secret::WebhookSecret;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{name} is malformed: {why}")]
    Malformed { name: String, why: String },
    #[error("set only one of {0} and {0}_ARN")]
    Both(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub livemode: bool,
    pub tolerance_secs: u64,
    pub secrets: HashMap<Family, SecretSpec>,
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
}

/// Where the Stripe API key comes from: `STRIPE_API_KEY`, or a Secrets Manager secret holding
/// it (`STRIPE_API_KEY_ARN`, read once at cold start and checked like the inline key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySpec {
    Inline(StripeApiKey),
    Arn(String),
}

/// The Stripe API reader: its key and base URL (`STRIPE_API_BASE`, checked by `parse_base`).
/// Its calls take the same `CallBounds` as the AWS calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeApiSettings {
    pub key: ApiKeySpec,
    pub base: String,
}

/// How long one call to a remote service may wait. Read once and applied where clients are
/// built (`app::sdk_loader` for AWS); an HTTP client for a provider's API takes the same
/// values (connect timeout, per-request timeout, attempts within an overall deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBounds {
    /// Setting up a connection: TCP and TLS.
    pub connect: Duration,
    /// One attempt: connect (if needed), send, and read the whole response.
    pub attempt: Duration,
    /// One operation: every attempt and the backoff between them.
    pub operation: Duration,
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
}

impl Default for CallBounds {
    /// 2 s to connect (a TLS handshake costs about 0.75 s on a 128 MB Lambda), 2 s per
    /// attempt, 4 s per operation, 3 attempts: a call to a service that does not answer fails
    /// within 4 s (docs/ARCHITECTURE.md, "Bounded waits").
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(2_000),
            attempt: Duration::from_millis(2_000),
            operation: Duration::from_millis(4_000),
            max_attempts: 3,
        }
    }
}

/// The default of `BILLING_DELIVERY_TIMEOUT_MS`.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Values used by the local run where a variable is unset (never on Lambda).
#[derive(Debug, Clone)]
pub struct DevDefaults {
    pub table: String,
    /// One generated secret per family.
    pub secrets: HashMap<Family, String>,
}

fn malformed(name: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        name: name.to_owned(),
        why: why.into(),
    }
}

/// A whole number in `range` from variable `name`, or `default` when unset.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(malformed(
                name,
                format!(
                    "expected whole {unit} from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        },
    }
}

/// Fails unless the bound `inner` (named `inner_name`) fits inside `outer` (`outer_name`).
fn within(
    inner_name: &str,
    inner: Duration,
    outer_name: &str,
    outer: Duration,
) -> Result<(), ConfigError> {
    if inner > outer {
        return Err(malformed(
            inner_name,
            format!(
                "{} ms exceeds {outer_name} ({} ms)",
                inner.as_millis(),
                outer.as_millis()
            ),
        ));
    }
    Ok(())
}

/// The call bounds and the delivery deadline; each must fit inside the next
/// (connect ≤ attempt ≤ operation ≤ delivery), and the delivery inside API Gateway's 29 s.
fn read_bounds(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(CallBounds, Duration), ConfigError> {
    let d = CallBounds::default();
    let ms = |name: &str, range, default: Duration| {
        number(get, name, range, "milliseconds", default.as_millis() as u64)
            .map(Duration::from_millis)
    };
    let bounds = CallBounds {
        connect: ms("BILLING_AWS_CONNECT_TIMEOUT_MS", 100..=10_000, d.connect)?,
        attempt: ms("BILLING_AWS_ATTEMPT_TIMEOUT_MS", 100..=25_000, d.attempt)?,
        operation: ms("BILLING_AWS_TIMEOUT_MS", 100..=25_000, d.operation)?,
        max_attempts: number(
            get,
            "BILLING_AWS_MAX_ATTEMPTS",
            1..=10,
            "attempts",
            u64::from(d.max_attempts),
        )? as u32,
    };
    let delivery = ms(
        "BILLING_DELIVERY_TIMEOUT_MS",
        1_000..=28_000,
        DEFAULT_DELIVERY_TIMEOUT,
    )?;
    within(
        "BILLING_AWS_CONNECT_TIMEOUT_MS",
        bounds.connect,
        "BILLING_AWS_ATTEMPT_TIMEOUT_MS",
        bounds.attempt,
    )?;
    within(
        "BILLING_AWS_ATTEMPT_TIMEOUT_MS",
        bounds.attempt,
        "BILLING_AWS_TIMEOUT_MS",
        bounds.operation,
    )?;
    within(
        "BILLING_AWS_TIMEOUT_MS",
        bounds.operation,
        "BILLING_DELIVERY_TIMEOUT_MS",
        delivery,
    )?;
    Ok((bounds, delivery))
}

/// `STRIPE_API_KEY` or `STRIPE_API_KEY_ARN` (not both) and `STRIPE_API_BASE`; `None` when no
/// key is set. The key must be a restricted (`rk_…`) or secret (`sk_…`) key of the configured
/// mode; the error names the variable and why, never the value.
fn read_stripe_api(
    get: &impl Fn(&str) -> Option<String>,
    livemode: bool,
) -> Result<Option<StripeApiSettings>, ConfigError> {
    const KEY: &str = "STRIPE_API_KEY";
    const KEY_ARN: &str = "STRIPE_API_KEY_ARN";
    let base = match get("STRIPE_API_BASE") {
        None => DEFAULT_BASE.to_owned(),
        Some(raw) => {
            parse_base(&raw).map_err(|why| malformed("STRIPE_API_BASE", why))?;
            raw.trim().to_owned()
        }
    };
    let key = match (get(KEY), get(KEY_ARN)) {
        (Some(_), Some(_)) => return Err(ConfigError::Both(KEY.into())),
        (None, None) => return Ok(None),
        (Some(raw), None) => {
            let key = StripeApiKey::parse(&raw).map_err(|e| malformed(KEY, e.to_string()))?;
            key.check_mode(livemode)
                .map_err(|e| malformed(KEY, e.to_string()))?;
            ApiKeySpec::Inline(key)
        }
        (None, Some(arn)) if arn.trim().starts_with("arn:") => {
            ApiKeySpec::Arn(arn.trim().to_owned())
        }
        (None, Some(_)) => return Err(malformed(KEY_ARN, "expected a Secrets Manager ARN")),
    };
    Ok(Some(StripeApiSettings { key, base }))
}

/// `STRIPE_LIVEMODE`: required where events are verified; development defaults and processes
/// that verify nothing (the relay) need no mode.
fn read_livemode(
    get: &impl Fn(&str) -> Option<String>,
    families: &[Family],
    dev: Option<&DevDefaults>,
) -> Result<bool, ConfigError> {
    match (get("STRIPE_LIVEMODE"), dev) {
        (Some(v), _) => match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(malformed(
                "STRIPE_LIVEMODE",
                format!("`{other}` is not true or false"),
            )),
        },
        (None, Some(_)) => Ok(false),
        (None, None) if families.is_empty() => Ok(false),
        (None, None) => Err(ConfigError::Missing("STRIPE_LIVEMODE".into())),
    }
}

/// One endpoint's signing secrets: inline (`STRIPE_WEBHOOK_SECRETS_<FAMILY>`) or a Secrets
/// Manager ARN (`…_ARN`), never both; the local run's generated secret when neither is set.
fn read_webhook_secrets(
    get: &impl Fn(&str) -> Option<String>,
    family: Family,
    dev: Option<&DevDefaults>,
) -> Result<SecretSpec, ConfigError> {
    let name = format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix());
    let arn_name = format!("{name}_ARN");
    match (get(&name), get(&arn_name), dev) {
        (Some(_), Some(_), _) => Err(ConfigError::Both(name)),
        (Some(list), None, _) => {
            let list = parse_secret_list(&list);
            validate_secret_list(&list).map_err(|e| malformed(&name, e.to_string()))?;
            Ok(SecretSpec::Inline(list))
        }
        (None, Some(arn), _) if arn.starts_with("arn:") => Ok(SecretSpec::Arn(arn)),
        (None, Some(_), _) => Err(malformed(&arn_name, "expected a Secrets Manager ARN")),
        (None, None, Some(d)) => match d.secrets.get(&family) {
            Some(secret) => Ok(SecretSpec::Inline(vec![WebhookSecret::new(secret.clone())])),
            None => Err(ConfigError::Missing(name)),
        },
        (None, None, None) => Err(ConfigError::Missing(format!("{name} (or {arn_name})"))),
    }
}

/// The metadata keys holding the user id and the tier.
fn read_mapping(get: &impl Fn(&str) -> Option<String>) -> StripeMapping {
    let mut mapping = StripeMapping::default();
    if let Some(k) = get("BILLING_USER_METADATA_KEY") {
        mapping.user_metadata_key = k.trim().to_owned();
    }
    if let Some(k) = get("BILLING_TIER_METADATA_KEY") {
        mapping.tier_metadata_key = k.trim().to_owned();
    }
    mapping
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

/// The customer emails' settings (issue 10): `BILLING_EMAILS` (unset: the default kinds; set
/// but empty: none), `BILLING_EMAIL_FROM` (required while any kind is on),
/// `BILLING_EMAIL_REPLY_TO`, `BILLING_SES_CONFIGURATION_SET`. Errors name the variable and,
/// for an unknown kind, the kind; never an address. Read by the processes that queue or send
/// emails only, so that a function that sends none needs no sender.
pub fn read_email_settings(
    get: impl Fn(&str) -> Option<String>,
) -> Result<EmailSettings, ConfigError> {
    const KINDS: &str = "BILLING_EMAILS";
    const FROM: &str = "BILLING_EMAIL_FROM";
    const REPLY_TO: &str = "BILLING_EMAIL_REPLY_TO";
    const SET: &str = "BILLING_SES_CONFIGURATION_SET";
    // Unlike the other variables, an empty BILLING_EMAILS means something: no kind.
    let kinds = match get(KINDS) {
        None => DEFAULT_KINDS.into_iter().collect(),
        Some(list) => parse_kinds(&list).map_err(|unknown| {
            let known: Vec<&str> = EmailKind::ALL.iter().map(|k| k.as_str()).collect();
            malformed(
                KINDS,
                format!("unknown kind `{unknown}` (known: {})", known.join(", ")),
            )
        })?,
    };
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let mailbox = |name: &str| {
        get(name)
            .map(|raw| parse_mailbox(&raw).map_err(|e| malformed(name, e.to_string())))
            .transpose()
    };
    let from = mailbox(FROM)?;
    if from.is_none() && !kinds.is_empty() {
        return Err(ConfigError::Missing(format!(
            "{FROM} (required while {KINDS} turns on any kind)"
        )));
    }
    let configuration_set = match get(SET) {
        Some(name) if !configuration_set_ok(name.trim()) => {
            return Err(malformed(
                SET,
                "expected up to 64 letters, digits, `-` or `_`",
            ))
        }
        other => other.map(|n| n.trim().to_owned()),
    };
    Ok(EmailSettings {
        kinds,
        from,
        reply_to: mailbox(REPLY_TO)?,
        configuration_set,
    })
}

/// PayPal verification (`PAYPAL_*`, read by [`read_paypal`]): our webhook id, the replay
/// window on `PAYPAL-TRANSMISSION-TIME`, and how deliveries are checked.
#[derive(Debug, Clone)]
pub struct PaypalSettings {
    pub webhook_id: String,
    pub tolerance_secs: u64,
    pub mode: PaypalMode,
}

/// `PAYPAL_VERIFICATION`: `offline` (the default, no call to PayPal once its certificate is
/// cached) or `api`.
#[derive(Debug, Clone)]
pub enum PaypalMode {
    Offline {
        urls: CertUrlPolicy,
        roots: TrustRoots,
    },
    Api(PaypalApiSettings),
}

/// PayPal's REST API for `PAYPAL_VERIFICATION=api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaypalApiSettings {
    pub base: String,
    pub client_id: String,
    pub secret: PaypalSecretSpec,
}

/// `PAYPAL_CLIENT_SECRET`, or a Secrets Manager secret holding it (`PAYPAL_CLIENT_SECRET_ARN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaypalSecretSpec {
    Inline(ClientSecret),
    Arn(String),
}

/// Reads the PayPal variables. `PAYPAL_WEBHOOK_ID` is required (letters and digits, as PayPal
/// shows it); errors name the variable, never a secret.
pub fn read_paypal(get: impl Fn(&str) -> Option<String>) -> Result<PaypalSettings, ConfigError> {
    let get = |k: &str| {
        get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    const ID: &str = "PAYPAL_WEBHOOK_ID";
    let webhook_id = get(ID).ok_or_else(|| ConfigError::Missing(ID.into()))?;
    if webhook_id.len() > 64 || !webhook_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(malformed(
            ID,
            "expected the webhook id PayPal shows (letters and digits)",
        ));
    }
    let tolerance_secs = number(
        &get,
        "PAYPAL_TRANSMISSION_TOLERANCE_SECS",
        1..=86_400,
        "seconds",
        300,
    )?;
    let mode = match get("PAYPAL_VERIFICATION").as_deref() {
        None | Some("offline") => PaypalMode::Offline {
            urls: match get("PAYPAL_CERT_URL_PREFIXES") {
                None => CertUrlPolicy::default(),
                Some(list) => CertUrlPolicy::parse(&list)
                    .map_err(|why| malformed("PAYPAL_CERT_URL_PREFIXES", why))?,
            },
            roots: read_trust_roots(get("PAYPAL_TRUST_ROOTS"))?,
        },
        Some("api") => PaypalMode::Api(read_paypal_api(&get)?),
        Some(_) => return Err(malformed("PAYPAL_VERIFICATION", "expected offline or api")),
    };
    Ok(PaypalSettings {
        webhook_id,
        tolerance_secs,
        mode,
    })
}

/// `PAYPAL_TRUST_ROOTS`: a PEM file, read now; the built-in DigiCert roots when unset.
fn read_trust_roots(path: Option<String>) -> Result<TrustRoots, ConfigError> {
    const NAME: &str = "PAYPAL_TRUST_ROOTS";
    let Some(path) = path else {
        return Ok(TrustRoots::built_in());
    };
    let pem = std::fs::read(&path)
        .map_err(|e| malformed(NAME, format!("cannot read {path}: {}", e.kind())))?;
    TrustRoots::from_pem(&pem).map_err(|why| malformed(NAME, format!("{path}: {why}")))
}

/// `PAYPAL_API_BASE`, `PAYPAL_CLIENT_ID` and one of `PAYPAL_CLIENT_SECRET` and `…_ARN`.
pub fn read_paypal_api(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<PaypalApiSettings, ConfigError> {
    const SECRET: &str = "PAYPAL_CLIENT_SECRET";
    const SECRET_ARN: &str = "PAYPAL_CLIENT_SECRET_ARN";
    let base = get("PAYPAL_API_BASE").unwrap_or_else(|| PAYPAL_DEFAULT_BASE.into());
    parse_base(&base).map_err(|why| malformed("PAYPAL_API_BASE", why))?;
    let client_id =
        get("PAYPAL_CLIENT_ID").ok_or_else(|| ConfigError::Missing("PAYPAL_CLIENT_ID".into()))?;
    let secret = match (get(SECRET), get(SECRET_ARN)) {
        (Some(_), Some(_)) => return Err(ConfigError::Both(SECRET.into())),
        (None, None) => return Err(ConfigError::Missing(format!("{SECRET} (or {SECRET_ARN})"))),
        (Some(secret), None) => PaypalSecretSpec::Inline(ClientSecret::new(secret)),
        (None, Some(arn)) if arn.starts_with("arn:") => PaypalSecretSpec::Arn(arn),
        (None, Some(_)) => return Err(malformed(SECRET_ARN, "expected a Secrets Manager ARN")),
    };
    Ok(PaypalApiSettings {
        base,
        client_id,
        secret,
    })
}

impl PaypalSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        read_paypal(|k| std::env::var(k).ok())
    }

    /// `None` when `PAYPAL_WEBHOOK_ID` is unset (the CLI and the local run without PayPal).
    pub fn from_env_if_set() -> Result<Option<Self>, ConfigError> {
        match std::env::var("PAYPAL_WEBHOOK_ID") {
            Ok(_) => Self::from_env().map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// `BILLING_EMAIL_LEASE_SECS`: how long a consumer's claim on an email holds (default: the
/// email queue's visibility timeout in template.yaml). At least 30 s (a send's budget), at
/// most 12 h (SQS's longest visibility timeout).
pub fn read_email_lease(get: impl Fn(&str) -> Option<String>) -> Result<i64, ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let default = crate::emails::send::DEFAULT_LEASE_SECS as u64;
    number(
        &get,
        "BILLING_EMAIL_LEASE_SECS",
        30..=43_200,
        "seconds",
        default,
    )
    .map(|n| n as i64)
}

impl Config {
    /// Reads the process environment for the given endpoint families.
    pub fn from_env(families: &[Family], dev: Option<&DevDefaults>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok(), families, dev)
    }

    /// Reads configuration through `get` (tests pass a map).
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
        let livemode = read_livemode(&get, families, dev)?;
        let tolerance_secs = number(
            &get,
            "STRIPE_SIGNATURE_TOLERANCE_SECS",
            1..=86_400,
            "seconds",
            300,
        )?;
        let secrets = families
            .iter()
            .map(|f| Ok((*f, read_webhook_secrets(&get, *f, dev)?)))
            .collect::<Result<HashMap<_, _>, ConfigError>>()?;
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
        // The relay verifies nothing and applies nothing: it settles no ties.
        let stripe_api = if families.is_empty() {
            None
        } else {
            read_stripe_api(&get, livemode)?
        };
        Ok(Self {
            table,
            livemode,
            tolerance_secs,
            secrets,
            local_addr,
            mapping: read_mapping(&get),
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
        })
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

    /// The customer emails' settings from the process environment ([`read_email_settings`]).
    pub fn emails_from_env() -> Result<EmailSettings, ConfigError> {
        read_email_settings(|k| std::env::var(k).ok())
    }

    pub fn uses_secrets_manager(&self) -> bool {
        self.secrets
            .values()
            .any(|s| matches!(s, SecretSpec::Arn(_)))
            || matches!(
                self.stripe_api,
                Some(StripeApiSettings {
                    key: ApiKeySpec::Arn(_),
                    ..
                })
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

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
    fn call_bounds_default_and_read_in_milliseconds() {
        let c = Config::from_lookup(lookup(&BASE), &[Family::Checkout], None).expect("valid");
        assert_eq!(c.bounds, CallBounds::default());
        assert_eq!(c.delivery_timeout, DEFAULT_DELIVERY_TIMEOUT);
        let mut set = BASE.to_vec();
        set.extend([
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "200"),
            ("BILLING_AWS_ATTEMPT_TIMEOUT_MS", "400"),
            ("BILLING_AWS_TIMEOUT_MS", "900"),
            ("BILLING_AWS_MAX_ATTEMPTS", "2"),
            ("BILLING_DELIVERY_TIMEOUT_MS", "5000"),
        ]);
        let c = Config::from_lookup(lookup(&set), &[Family::Checkout], None).expect("valid");
        assert_eq!(
            c.bounds,
            CallBounds {
                connect: Duration::from_millis(200),
                attempt: Duration::from_millis(400),
                operation: Duration::from_millis(900),
                max_attempts: 2,
            }
        );
        assert_eq!(c.delivery_timeout, Duration::from_millis(5000));
    }

    #[test]
    fn call_bounds_out_of_range_or_out_of_order_name_the_variable() {
        let err = |extra: &[(&str, &str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_lookup(lookup(&pairs), &[Family::Checkout], None)
                .expect_err("must fail")
                .to_string()
        };
        for (name, bad) in [
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "0"),
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "1s"),
            ("BILLING_AWS_ATTEMPT_TIMEOUT_MS", "-5"),
            ("BILLING_AWS_TIMEOUT_MS", "30000"),
            ("BILLING_AWS_MAX_ATTEMPTS", "0"),
            ("BILLING_AWS_MAX_ATTEMPTS", "11"),
            ("BILLING_DELIVERY_TIMEOUT_MS", "29000"),
        ] {
            let msg = err(&[(name, bad)]);
            assert!(msg.starts_with(name), "{name}={bad}: {msg}");
            assert!(msg.contains("expected whole"), "{name}={bad}: {msg}");
        }
        // Each bound must fit inside the next: connect ≤ attempt ≤ operation ≤ delivery.
        let msg = err(&[("BILLING_AWS_CONNECT_TIMEOUT_MS", "3000")]);
        assert!(
            msg.starts_with("BILLING_AWS_CONNECT_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_AWS_ATTEMPT_TIMEOUT_MS"),
            "{msg}"
        );
        let msg = err(&[("BILLING_AWS_TIMEOUT_MS", "1000")]);
        assert!(
            msg.starts_with("BILLING_AWS_ATTEMPT_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_AWS_TIMEOUT_MS"),
            "{msg}"
        );
        let msg = err(&[("BILLING_DELIVERY_TIMEOUT_MS", "3000")]);
        assert!(
            msg.starts_with("BILLING_AWS_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_DELIVERY_TIMEOUT_MS"),
            "{msg}"
        );
    }

    fn with(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut pairs = BASE.to_vec();
        pairs.extend_from_slice(extra);
        Config::from_lookup(lookup(&pairs), &[Family::Checkout], None)
    }

    #[test]
    fn the_stripe_api_key_is_optional_and_checked_by_kind_never_printed() {
        let c = with(&[]).expect("valid");
        assert_eq!(c.stripe_api, None);
        assert!(!c.uses_secrets_manager());
        let c = with(&[("STRIPE_API_KEY", " rk_test_restricted ")]).expect("valid");
        assert_eq!(
            c.stripe_api,
            Some(StripeApiSettings {
                key: ApiKeySpec::Inline(StripeApiKey::parse("rk_test_restricted").expect("key")),
                base: "https://api.stripe.com".into(),
            })
        );
        assert!(!format!("{c:?}").contains("rk_test_restricted"));
        assert!(with(&[("STRIPE_API_KEY", "sk_test_secret")]).is_ok());
        for bad in [
            "pk_test_publishable",
            "whsec_webhook",
            "sk_nomode",
            "rk_test_a b",
        ] {
            let msg = with(&[("STRIPE_API_KEY", bad)]).expect_err(bad).to_string();
            assert!(
                msg.starts_with("STRIPE_API_KEY is malformed"),
                "{bad}: {msg}"
            );
            assert!(!msg.contains(bad), "{bad}: {msg}");
        }
        let msg = with(&[("STRIPE_API_KEY", "pk_live_publishable")])
            .expect_err("publishable")
            .to_string();
        assert!(msg.contains("publishable key (pk_…)"), "{msg}");
        let both = [
            ("STRIPE_API_KEY", "rk_test_restricted"),
            (
                "STRIPE_API_KEY_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:k",
            ),
        ];
        assert_eq!(
            with(&both).expect_err("both").to_string(),
            "set only one of STRIPE_API_KEY and STRIPE_API_KEY_ARN"
        );
        let msg = with(&[("STRIPE_API_KEY_ARN", "rk_test_pasted_here")])
            .expect_err("not an ARN")
            .to_string();
        assert!(
            msg.starts_with("STRIPE_API_KEY_ARN") && !msg.contains("rk_test_pasted_here"),
            "{msg}"
        );
        let c = with(&both[1..]).expect("valid");
        assert_eq!(
            c.stripe_api.as_ref().map(|a| &a.key),
            Some(&ApiKeySpec::Arn(
                "arn:aws:secretsmanager:us-east-1:1:secret:k".into()
            ))
        );
        assert!(c.uses_secrets_manager());
    }

    #[test]
    fn a_stripe_api_key_of_the_other_mode_is_refused_at_start() {
        for (key, mode) in [
            ("sk_live_x1", "false"),
            ("rk_live_x1", "false"),
            ("rk_test_x1", "true"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs[1] = ("STRIPE_LIVEMODE", mode);
            pairs.push(("STRIPE_API_KEY", key));
            let msg = Config::from_lookup(lookup(&pairs), &[Family::Checkout], None)
                .expect_err(key)
                .to_string();
            assert!(
                msg.starts_with("STRIPE_API_KEY")
                    && msg.contains(&format!("STRIPE_LIVEMODE={mode}")),
                "{key}: {msg}"
            );
            assert!(!msg.contains(key), "{msg}");
        }
        let mut live = BASE.to_vec();
        live[1] = ("STRIPE_LIVEMODE", "true");
        live.push(("STRIPE_API_KEY", "rk_live_x1"));
        assert!(Config::from_lookup(lookup(&live), &[Family::Checkout], None).is_ok());
    }

    #[test]
    fn the_stripe_api_base_is_https_unless_loopback() {
        let key = ("STRIPE_API_KEY", "rk_test_restricted");
        let base = |c: Config| c.stripe_api.map(|a| a.base);
        let local = with(&[key, ("STRIPE_API_BASE", "http://127.0.0.1:4242")]).expect("local");
        assert_eq!(base(local), Some("http://127.0.0.1:4242".into()));
        for bad in [
            "http://api.stripe.com",
            "api.stripe.com",
            "https://api.stripe.com?x=1",
        ] {
            let msg = with(&[key, ("STRIPE_API_BASE", bad)])
                .expect_err(bad)
                .to_string();
            assert!(
                msg.starts_with("STRIPE_API_BASE is malformed"),
                "{bad}: {msg}"
            );
        }
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
        };
        let c = Config::from_lookup(
            lookup(&[("STRIPE_LIVEMODE", "true")]),
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
    }
    fn emails(pairs: &[(&str, &str)]) -> Result<EmailSettings, ConfigError> {
        read_email_settings(lookup(pairs))
    }

    #[test]
    fn email_kinds_default_to_action_required_and_an_empty_list_turns_all_off() {
        use crate::emails::kinds::EmailKind::*;
        let from = ("BILLING_EMAIL_FROM", "Billing <billing@example.com>");
        let e = emails(&[from]).expect("default");
        assert_eq!(e.kinds, [PaymentActionRequired].into());
        assert_eq!(
            e.from.as_ref().map(|a| a.as_str()),
            Some("Billing <billing@example.com>")
        );
        assert_eq!((e.reply_to, e.configuration_set), (None, None));
        let e = emails(&[from, ("BILLING_EMAILS", "welcome, payment_failed")]).expect("two");
        assert_eq!(e.kinds, [Welcome, PaymentFailed].into());
        assert!(e.enabled(Welcome) && !e.enabled(PaymentActionRequired));
        // Empty: no kind, and then no sender is needed.
        let e = emails(&[("BILLING_EMAILS", "")]).expect("none");
        assert!(e.kinds.is_empty() && e.from.is_none());
        let e = emails(&[
            from,
            ("BILLING_EMAIL_REPLY_TO", "help@example.com"),
            ("BILLING_SES_CONFIGURATION_SET", "billing-emails"),
        ])
        .expect("all");
        assert_eq!(
            e.reply_to.as_ref().map(|a| a.as_str()),
            Some("help@example.com")
        );
        assert_eq!(e.configuration_set.as_deref(), Some("billing-emails"));
    }

    #[test]
    fn email_settings_name_the_variable_or_the_unknown_kind_never_an_address() {
        let err = |pairs: &[(&str, &str)]| emails(pairs).expect_err("must fail").to_string();
        let from = ("BILLING_EMAIL_FROM", "billing@example.com");
        let msg = err(&[
            from,
            ("BILLING_EMAILS", "payment_action_required,refund_issued"),
        ]);
        assert!(
            msg.starts_with("BILLING_EMAILS is malformed") && msg.contains("`refund_issued`"),
            "{msg}"
        );
        // Any kind on (the default too) needs a sender.
        for pairs in [
            &[][..],
            &[("BILLING_EMAILS", "welcome")][..],
            &[("BILLING_EMAIL_FROM", " ")][..],
        ] {
            let msg = err(pairs);
            assert!(
                msg.starts_with("BILLING_EMAIL_FROM") && msg.contains("is not set"),
                "{msg}"
            );
        }
        for (name, bad) in [
            ("BILLING_EMAIL_FROM", "billing-at-example.com"),
            ("BILLING_EMAIL_FROM", "Billing <billing@example>"),
            ("BILLING_EMAIL_REPLY_TO", "help@@example.com"),
        ] {
            let mut pairs = vec![from];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, bad));
            let msg = err(&pairs);
            assert!(msg.starts_with(&format!("{name} is malformed")), "{msg}");
            assert!(
                !msg.contains(bad) && !msg.contains("billing@example"),
                "{msg}"
            );
        }
        let msg = err(&[from, ("BILLING_SES_CONFIGURATION_SET", "not ok")]);
        assert!(
            msg.starts_with("BILLING_SES_CONFIGURATION_SET is malformed"),
            "{msg}"
        );
        // Debug output of the settings shows no address.
        let e = emails(&[from, ("BILLING_EMAIL_REPLY_TO", "help@example.com")]).expect("ok");
        let debug = format!("{e:?}");
        assert!(
            !debug.contains("billing@") && !debug.contains("help@"),
            "{debug}"
        );
    }

    fn paypal_err(pairs: &[(&str, &str)]) -> String {
        read_paypal(lookup(pairs))
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn paypal_defaults_to_offline_with_the_built_in_roots() {
        let p =
            read_paypal(lookup(&[("PAYPAL_WEBHOOK_ID", " 4JH86294D6297924G ")])).expect("valid");
        assert_eq!(p.webhook_id, "4JH86294D6297924G");
        assert_eq!(p.tolerance_secs, 300);
        let PaypalMode::Offline { urls, roots } = p.mode else {
            panic!("offline by default");
        };
        assert_eq!(urls, CertUrlPolicy::default());
        assert_eq!(roots.len(), TrustRoots::built_in().len());
    }

    #[test]
    fn paypal_reads_prefixes_roots_and_tolerance() {
        let roots = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/paypal/real-signed-2015/DigiCertHighAssuranceEVRootCA.crt.pem"
        );
        let p = read_paypal(lookup(&[
            ("PAYPAL_WEBHOOK_ID", "WH1"),
            ("PAYPAL_VERIFICATION", "offline"),
            (
                "PAYPAL_CERT_URL_PREFIXES",
                "https://api.paypal.com/v1/notifications/certs/",
            ),
            ("PAYPAL_TRUST_ROOTS", roots),
            ("PAYPAL_TRANSMISSION_TOLERANCE_SECS", "120"),
        ]))
        .expect("valid");
        assert_eq!(p.tolerance_secs, 120);
        let PaypalMode::Offline { urls, roots } = p.mode else {
            panic!("offline");
        };
        assert_eq!(roots.len(), 1);
        assert!(urls
            .check("https://api.paypal.com/v1/notifications/certs/CERT-C")
            .is_ok());
        assert!(urls
            .check("https://api.paypal.com/v1/oauth2/token")
            .is_err());
    }

    #[test]
    fn paypal_api_mode_takes_a_client_id_and_one_secret() {
        let base = [
            ("PAYPAL_WEBHOOK_ID", "WH1"),
            ("PAYPAL_VERIFICATION", "api"),
            ("PAYPAL_CLIENT_ID", "client-id"),
        ];
        let mut inline = base.to_vec();
        inline.push(("PAYPAL_CLIENT_SECRET", "s3cr3t-DO-NOT-PRINT"));
        let p = read_paypal(lookup(&inline)).expect("valid");
        let PaypalMode::Api(api) = &p.mode else {
            panic!("api");
        };
        assert_eq!(api.base, "https://api-m.paypal.com");
        assert_eq!(
            api.secret,
            PaypalSecretSpec::Inline(ClientSecret::new("s3cr3t-DO-NOT-PRINT"))
        );
        assert!(!format!("{p:?}").contains("DO-NOT-PRINT"));
        let mut arn = base.to_vec();
        arn.extend([
            (
                "PAYPAL_CLIENT_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:pp",
            ),
            ("PAYPAL_API_BASE", "https://api-m.sandbox.paypal.com"),
        ]);
        let p = read_paypal(lookup(&arn)).expect("valid");
        let PaypalMode::Api(api) = p.mode else {
            panic!("api");
        };
        assert_eq!(api.base, "https://api-m.sandbox.paypal.com");
        assert!(matches!(api.secret, PaypalSecretSpec::Arn(_)));
    }

    #[test]
    fn paypal_start_up_fails_naming_the_variable() {
        let id = ("PAYPAL_WEBHOOK_ID", "WH1");
        assert!(paypal_err(&[]).contains("PAYPAL_WEBHOOK_ID is not set"));
        assert!(paypal_err(&[("PAYPAL_WEBHOOK_ID", "WH-1 x")]).starts_with("PAYPAL_WEBHOOK_ID"));
        for (name, bad) in [
            ("PAYPAL_TRANSMISSION_TOLERANCE_SECS", "5m"),
            ("PAYPAL_TRANSMISSION_TOLERANCE_SECS", "0"),
            ("PAYPAL_VERIFICATION", "online"),
            ("PAYPAL_CERT_URL_PREFIXES", "http://api.paypal.com/"),
            ("PAYPAL_CERT_URL_PREFIXES", "https://user@api.paypal.com/"),
            ("PAYPAL_TRUST_ROOTS", "/nonexistent/roots.pem"),
            (
                "PAYPAL_TRUST_ROOTS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ),
        ] {
            let msg = paypal_err(&[id, (name, bad)]);
            assert!(msg.starts_with(name), "{name}={bad}: {msg}");
        }
        let api = [id, ("PAYPAL_VERIFICATION", "api")];
        assert!(paypal_err(&api).contains("PAYPAL_CLIENT_ID is not set"));
        let with_id = [api[0], api[1], ("PAYPAL_CLIENT_ID", "c")];
        assert!(paypal_err(&with_id)
            .contains("PAYPAL_CLIENT_SECRET (or PAYPAL_CLIENT_SECRET_ARN) is not set"));
        let mut both = with_id.to_vec();
        both.extend([
            ("PAYPAL_CLIENT_SECRET", "s3cr3t"),
            ("PAYPAL_CLIENT_SECRET_ARN", "arn:x"),
        ]);
        let msg = paypal_err(&both);
        assert!(
            msg.contains("only one of PAYPAL_CLIENT_SECRET") && !msg.contains("s3cr3t"),
            "{msg}"
        );
        let mut not_arn = with_id.to_vec();
        not_arn.push(("PAYPAL_CLIENT_SECRET_ARN", "s3cr3t"));
        let msg = paypal_err(&not_arn);
        assert!(
            msg.starts_with("PAYPAL_CLIENT_SECRET_ARN") && !msg.contains("s3cr3t"),
            "{msg}"
        );
        let mut http = with_id.to_vec();
        http.extend([
            ("PAYPAL_CLIENT_SECRET", "s"),
            ("PAYPAL_API_BASE", "http://api-m.paypal.com"),
        ]);
        assert!(paypal_err(&http).starts_with("PAYPAL_API_BASE"));
    }
}
