//! Stripe's settings, read once at cold start by [`read_stripe`]: the mode
//! (`STRIPE_LIVEMODE`), the signature tolerance, each endpoint family's signing secrets
//! (`STRIPE_WEBHOOK_SECRETS_<FAMILY>` or `…_ARN`), the metadata keys that carry the user and
//! the tier, and the optional API key and base the pipeline reads same-second ties with.
//! Errors name the variable and why, never a secret.

use super::family::Family;
use super::translate::StripeMapping;
use crate::adapters::https::parse_base;
use crate::adapters::secrets_manager::{parse_secret_list, validate_secret_list, SecretSpec};
use crate::adapters::stripe_api::{StripeApiKey, DEFAULT_BASE};
use crate::secret::WebhookSecret;
use crate::settings::{malformed, number, ConfigError, DevDefaults};
use std::collections::HashMap;

/// Stripe's part of the configuration, for the endpoint families a process serves.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub livemode: bool,
    pub tolerance_secs: u64,
    pub secrets: HashMap<Family, SecretSpec>,
    /// The Connect endpoints' secrets, of the families that have one
    /// (`STRIPE_WEBHOOK_SECRETS_<FAMILY>_CONNECT` or `…_CONNECT_ARN`; optional).
    pub connect_secrets: HashMap<Family, SecretSpec>,
    pub mapping: StripeMapping,
    /// `None` without a key, and in processes that verify nothing (no family, like the relay).
    pub api: Option<StripeApiSettings>,
}

impl StripeSettings {
    /// Whether a secret or the API key is read from Secrets Manager at cold start.
    pub fn uses_secrets_manager(&self) -> bool {
        uses_secrets_manager(&self.secrets, self.api.as_ref())
            || uses_secrets_manager(&self.connect_secrets, None)
    }
}

/// Whether any of `secrets`, or `api`'s key, is given by ARN.
pub fn uses_secrets_manager(
    secrets: &HashMap<Family, SecretSpec>,
    api: Option<&StripeApiSettings>,
) -> bool {
    secrets.values().any(|s| matches!(s, SecretSpec::Arn(_)))
        || matches!(
            api,
            Some(StripeApiSettings {
                key: ApiKeySpec::Arn(_),
                ..
            })
        )
}

/// Reads every Stripe variable for `families` (blank values read as unset): the mode, the
/// tolerance, each family's secrets, the metadata mapping and, when a family is served, the
/// API settings (the relay verifies nothing and applies nothing: it settles no ties).
pub fn read_stripe(
    get: impl Fn(&str) -> Option<String>,
    families: &[Family],
    dev: Option<&DevDefaults>,
) -> Result<StripeSettings, ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
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
    let mut connect_secrets = HashMap::new();
    for family in families {
        if let Some(spec) = read_connect_secrets(&get, *family, dev)? {
            connect_secrets.insert(*family, spec);
        }
    }
    let api = if families.is_empty() {
        None
    } else {
        read_stripe_api(&get, livemode)?
    };
    Ok(StripeSettings {
        livemode,
        tolerance_secs,
        secrets,
        connect_secrets,
        mapping: read_mapping(&get),
        api,
    })
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
pub fn read_webhook_secrets(
    get: &impl Fn(&str) -> Option<String>,
    family: Family,
    dev: Option<&DevDefaults>,
) -> Result<SecretSpec, ConfigError> {
    let name = format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix());
    if let Some(spec) = read_secret_spec(get, &name)? {
        return Ok(spec);
    }
    match dev {
        Some(d) => match d.secrets.get(&family) {
            Some(secret) => Ok(SecretSpec::Inline(vec![WebhookSecret::new(secret.clone())])),
            None => Err(ConfigError::Missing(name)),
        },
        None => Err(ConfigError::Missing(format!("{name} (or {name}_ARN)"))),
    }
}

/// A family's Connect endpoint secrets (`STRIPE_WEBHOOK_SECRETS_<FAMILY>_CONNECT` inline, or
/// `…_CONNECT_ARN`), else the local run's generated one; `None` when there is none: the family
/// has no Connect endpoint and its `/connect` route verifies nothing (400).
fn read_connect_secrets(
    get: &impl Fn(&str) -> Option<String>,
    family: Family,
    dev: Option<&DevDefaults>,
) -> Result<Option<SecretSpec>, ConfigError> {
    let name = format!("STRIPE_WEBHOOK_SECRETS_{}_CONNECT", family.env_suffix());
    if let Some(spec) = read_secret_spec(get, &name)? {
        return Ok(Some(spec));
    }
    Ok(dev
        .and_then(|d| d.connect_secrets.get(&family))
        .map(|secret| SecretSpec::Inline(vec![WebhookSecret::new(secret.clone())])))
}

/// An endpoint's secrets: inline in `name` (checked like every list) or by ARN in `{name}_ARN`,
/// never both; `None` when neither is set.
fn read_secret_spec(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<SecretSpec>, ConfigError> {
    let arn_name = format!("{name}_ARN");
    match (get(name), get(&arn_name)) {
        (Some(_), Some(_)) => Err(ConfigError::Both(name.to_owned())),
        (Some(list), None) => {
            let list = parse_secret_list(&list);
            validate_secret_list(&list).map_err(|e| malformed(name, e.to_string()))?;
            Ok(Some(SecretSpec::Inline(list)))
        }
        (None, Some(arn)) if arn.starts_with("arn:") => Ok(Some(SecretSpec::Arn(arn))),
        (None, Some(_)) => Err(malformed(&arn_name, "expected a Secrets Manager ARN")),
        (None, None) => Ok(None),
    }
}

/// The thin endpoint's settings (`thin.rs`), read by the process that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinSettings {
    /// `STRIPE_LIVEMODE`, required (`read_stripe` requires it only where a family is served).
    pub livemode: bool,
    /// Inline (`STRIPE_WEBHOOK_SECRETS_THIN`) or by ARN (`…_THIN_ARN`), never both.
    pub secrets: SecretSpec,
    /// The key every notified event is fetched with (`STRIPE_API_KEY` or `…_ARN`); without it
    /// each genuine notification answers 503 (the function logs why at start).
    pub api: Option<StripeApiSettings>,
}

/// Reads [`ThinSettings`]; errors name the variable, never a value.
pub fn read_thin(get: impl Fn(&str) -> Option<String>) -> Result<ThinSettings, ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if get("STRIPE_LIVEMODE").is_none() {
        return Err(ConfigError::Missing("STRIPE_LIVEMODE".into()));
    }
    let livemode = read_livemode(&get, &[], None)?;
    let name = format!("STRIPE_WEBHOOK_SECRETS_{}", super::thin::ENV_SUFFIX);
    let Some(spec) = read_secret_spec(&get, &name)? else {
        return Err(ConfigError::Missing(format!("{name} (or {name}_ARN)")));
    };
    Ok(ThinSettings {
        livemode,
        secrets: spec,
        api: read_stripe_api(&get, livemode)?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::lookup;

    const BASE: [(&str, &str); 2] = [
        ("STRIPE_LIVEMODE", "false"),
        ("STRIPE_WEBHOOK_SECRETS_CHECKOUT", "whsec_a, whsec_b"),
    ];

    fn with(extra: &[(&str, &str)]) -> Result<StripeSettings, ConfigError> {
        let mut pairs = BASE.to_vec();
        pairs.extend_from_slice(extra);
        read_stripe(lookup(&pairs), &[Family::Checkout], None)
    }

    #[test]
    fn a_connect_endpoints_secrets_are_optional_and_checked_like_the_familys() {
        assert!(with(&[]).expect("valid").connect_secrets.is_empty());
        let c = with(&[("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT", "whsec_c")]).expect("valid");
        assert_eq!(
            c.connect_secrets.get(&Family::Checkout),
            Some(&SecretSpec::Inline(vec![WebhookSecret::new("whsec_c")]))
        );
        assert!(!c.uses_secrets_manager());
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:c";
        let c = with(&[("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT_ARN", arn)]).expect("valid");
        assert_eq!(
            c.connect_secrets.get(&Family::Checkout),
            Some(&SecretSpec::Arn(arn.into()))
        );
        assert!(c.uses_secrets_manager());
        let msg = with(&[("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT", "sk_test_oops")])
            .expect_err("not a whsec")
            .to_string();
        assert!(
            msg.contains("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT")
                && !msg.contains("sk_test_oops"),
            "{msg}"
        );
        let both = [
            ("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT", "whsec_c"),
            ("STRIPE_WEBHOOK_SECRETS_CHECKOUT_CONNECT_ARN", arn),
        ];
        assert!(with(&both).is_err());
        // Only the families this process serves are read.
        let other = with(&[("STRIPE_WEBHOOK_SECRETS_INVOICE_CONNECT", "whsec_i")]).expect("valid");
        assert!(other.connect_secrets.is_empty());
    }

    #[test]
    fn the_stripe_api_key_is_optional_and_checked_by_kind_never_printed() {
        let c = with(&[]).expect("valid");
        assert_eq!(c.api, None);
        assert!(!c.uses_secrets_manager());
        let c = with(&[("STRIPE_API_KEY", " rk_test_restricted ")]).expect("valid");
        assert_eq!(
            c.api,
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
            c.api.as_ref().map(|a| &a.key),
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
            pairs[0] = ("STRIPE_LIVEMODE", mode);
            pairs.push(("STRIPE_API_KEY", key));
            let msg = read_stripe(lookup(&pairs), &[Family::Checkout], None)
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
        live[0] = ("STRIPE_LIVEMODE", "true");
        live.push(("STRIPE_API_KEY", "rk_live_x1"));
        assert!(read_stripe(lookup(&live), &[Family::Checkout], None).is_ok());
    }

    #[test]
    fn the_thin_endpoint_needs_the_mode_and_its_own_secret() {
        let read = |pairs: &[(&str, &str)]| read_thin(lookup(pairs)).map_err(|e| e.to_string());
        let mode = ("STRIPE_LIVEMODE", "true");
        let inline = read(&[mode, ("STRIPE_WEBHOOK_SECRETS_THIN", "whsec_a,whsec_b")]);
        assert_eq!(
            inline.map(|t| (t.livemode, t.secrets, t.api)),
            Ok((
                true,
                SecretSpec::Inline(vec![
                    WebhookSecret::new("whsec_a"),
                    WebhookSecret::new("whsec_b")
                ]),
                None
            ))
        );
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:thin";
        let key = ("STRIPE_API_KEY", "rk_live_restricted");
        let by_arn = read(&[mode, key, ("STRIPE_WEBHOOK_SECRETS_THIN_ARN", arn)]).expect("valid");
        assert_eq!(by_arn.secrets, SecretSpec::Arn(arn.into()));
        assert_eq!(
            by_arn.api.map(|a| a.key),
            Some(ApiKeySpec::Inline(
                StripeApiKey::parse("rk_live_restricted").expect("key")
            ))
        );
        let other_mode = [
            ("STRIPE_LIVEMODE", "false"),
            key,
            ("STRIPE_WEBHOOK_SECRETS_THIN", "whsec_a"),
        ];
        assert!(read(&other_mode)
            .expect_err("mode")
            .starts_with("STRIPE_API_KEY"));
        let err = read(&[("STRIPE_WEBHOOK_SECRETS_THIN", "whsec_a")]).expect_err("mode");
        assert_eq!(err, "STRIPE_LIVEMODE is not set");
        let err = read(&[mode]).expect_err("secret");
        assert!(err.contains("STRIPE_WEBHOOK_SECRETS_THIN"), "{err}");
        let err =
            read(&[mode, ("STRIPE_WEBHOOK_SECRETS_THIN", "sk_live_pasted")]).expect_err("bad");
        assert!(
            err.starts_with("STRIPE_WEBHOOK_SECRETS_THIN is malformed"),
            "{err}"
        );
        assert!(!err.contains("sk_live_pasted"), "{err}");
        let both = [
            mode,
            ("STRIPE_WEBHOOK_SECRETS_THIN", "whsec_a"),
            ("STRIPE_WEBHOOK_SECRETS_THIN_ARN", arn),
        ];
        assert!(read(&both).expect_err("both").contains("only one"));
    }

    #[test]
    fn the_stripe_api_base_is_https_unless_loopback() {
        let key = ("STRIPE_API_KEY", "rk_test_restricted");
        let base = |c: StripeSettings| c.api.map(|a| a.base);
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
}
