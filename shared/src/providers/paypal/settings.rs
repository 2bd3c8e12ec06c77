//! PayPal's settings (`PAYPAL_*`), read once at cold start by [`read_paypal`]: our webhook id,
//! the replay window, and how deliveries are checked (offline: the certificate URL policy and
//! the trust roots; or through PayPal's API: its base, client id and secret). Errors name the
//! variable, never a secret.

use super::cert_url::CertUrlPolicy;
use super::certs::TrustRoots;
use crate::adapters::https::parse_base;
use crate::settings::{malformed, number, ConfigError};

/// PayPal's live REST API (`PAYPAL_API_BASE` overrides it; sandbox:
/// `https://api-m.sandbox.paypal.com`).
pub const DEFAULT_API_BASE: &str = "https://api-m.paypal.com";

/// PayPal's client secret (`PAYPAL_CLIENT_SECRET` or from `PAYPAL_CLIENT_SECRET_ARN`).
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the token request's Basic credentials only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
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
    let base = get("PAYPAL_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into());
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

/// `PAYPAL_API_BASE`, `PAYPAL_CLIENT_ID` and the client secret from the process environment,
/// blank values read as unset (`billing backfill --provider paypal`).
pub fn read_paypal_api_from_env() -> Result<PaypalApiSettings, ConfigError> {
    read_paypal_api(&|k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::lookup;

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
