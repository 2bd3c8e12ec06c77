//! Endpoint secrets from AWS Secrets Manager: read at cold start, re-read after a signature
//! miss (at most once per `min_refresh`), so rotating a Stripe secret needs no redeploy.
//!
//! The secret string is either a JSON array of `whsec_…` strings or a comma/newline-separated
//! list; during a rotation it holds both the old and the new secret. It is validated like the
//! inline variables ([`validate_secret_list`]): an invalid value stops the cold start, and an
//! invalid value met on a re-read is logged (never the value) while the previous secrets stay
//! in use.

use super::sdk_error::Describe;
use crate::ports::{RefreshOutcome, SecretSource, SecretsError};
use crate::routing::Family;
use crate::secret::WebhookSecret;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
// tokio's `Instant` is the standard one unless a test pauses tokio's clock, which is how the
// suite steps past the refresh interval without waiting for it.
use tokio::time::Instant;

/// Where one family's secrets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSpec {
    Inline(Vec<WebhookSecret>),
    Arn(String),
}

struct Cached {
    secrets: Arc<Vec<WebhookSecret>>,
    fetched: Option<Instant>,
}

/// Inline secrets are served as configured; ARN secrets are fetched and cached.
pub struct ConfiguredSecrets {
    client: Option<Client>,
    specs: HashMap<Family, SecretSpec>,
    cache: Mutex<HashMap<Family, Cached>>,
    min_refresh: Duration,
}

/// Parses a secret string: a JSON array of strings, or a comma/newline-separated list.
pub fn parse_secret_list(raw: &str) -> Vec<WebhookSecret> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::new)
            .collect();
    }
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(WebhookSecret::new)
        .collect()
}

/// Why a list of endpoint secrets is refused. Names the entry (1-based), never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretListError {
    #[error("no secret in the list")]
    Empty,
    #[error("entry {0} does not start with whsec_")]
    NotWhsec(usize),
}

/// The one check of a secret list, inline or from Secrets Manager: at least one secret, and
/// every one a Stripe endpoint secret (`whsec_…`). A key/value secret pasted as JSON, an API
/// key or a stray fragment would otherwise be used as an HMAC key and fail every delivery.
pub fn validate_secret_list(list: &[WebhookSecret]) -> Result<(), SecretListError> {
    if list.is_empty() {
        return Err(SecretListError::Empty);
    }
    match list.iter().position(|s| !s.expose().starts_with("whsec_")) {
        Some(bad) => Err(SecretListError::NotWhsec(bad + 1)),
        None => Ok(()),
    }
}

/// The variable that names a family's secret in Secrets Manager (for error messages).
fn arn_variable(family: Family) -> String {
    format!("STRIPE_WEBHOOK_SECRETS_{}_ARN", family.env_suffix())
}

/// Parses and validates a secret string read from Secrets Manager; the error names the
/// variable, the secret id and the entry, never a value.
fn checked(family: Family, arn: &str, raw: &str) -> Result<Vec<WebhookSecret>, SecretsError> {
    let list = parse_secret_list(raw);
    validate_secret_list(&list)
        .map_err(|e| SecretsError(format!("{} (secret {arn}): {e}", arn_variable(family))))?;
    Ok(list)
}

/// A secret's string as stored (the caller validates it); `Err` when Secrets Manager cannot be
/// read or the secret holds binary only. Also reads `STRIPE_API_KEY_ARN` at cold start.
pub async fn read_secret_string(client: &Client, arn: &str) -> Result<String, SecretsError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretsError(e.describe()))?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SecretsError(format!("secret {arn} has no string value")))
}

impl ConfiguredSecrets {
    pub fn new(
        client: Option<Client>,
        specs: HashMap<Family, SecretSpec>,
        min_refresh: Duration,
    ) -> Self {
        // Inline secrets never change: cached once, so a request only clones an `Arc`.
        let cache = specs
            .iter()
            .filter_map(|(family, spec)| match spec {
                SecretSpec::Inline(list) => Some((
                    *family,
                    Cached {
                        secrets: Arc::new(list.clone()),
                        fetched: None,
                    },
                )),
                SecretSpec::Arn(_) => None,
            })
            .collect();
        Self {
            client,
            specs,
            cache: Mutex::new(cache),
            min_refresh,
        }
    }

    /// The secret's string as stored; `Err` when Secrets Manager cannot be read.
    async fn read(&self, arn: &str) -> Result<String, SecretsError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SecretsError("no Secrets Manager client".into()))?;
        read_secret_string(client, arn).await
    }

    /// Loads every ARN-backed family now (cold start), so a bad ARN fails at start-up.
    pub async fn preload(&self) -> Result<(), SecretsError> {
        for family in self.specs.keys() {
            self.secrets(*family).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SecretSource for ConfiguredSecrets {
    async fn secrets(&self, family: Family) -> Result<Arc<Vec<WebhookSecret>>, SecretsError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&family) {
            return Ok(c.secrets.clone());
        }
        let Some(SecretSpec::Arn(arn)) = self.specs.get(&family) else {
            // No secret for this family: every signature check fails (NoSecrets → 400).
            return Ok(Arc::new(Vec::new()));
        };
        let secrets = Arc::new(checked(family, arn, &self.read(arn).await?)?);
        cache.insert(
            family,
            Cached {
                secrets: secrets.clone(),
                fetched: Some(Instant::now()),
            },
        );
        Ok(secrets)
    }

    async fn refresh(&self, family: Family) -> Result<RefreshOutcome, SecretsError> {
        let Some(SecretSpec::Arn(arn)) = self.specs.get(&family) else {
            return Ok(RefreshOutcome::NotDue);
        };
        let mut cache = self.cache.lock().await;
        let recent = cache
            .get(&family)
            .and_then(|c| c.fetched)
            .is_some_and(|t| t.elapsed() < self.min_refresh);
        if recent {
            // Bad signatures must not turn into a stream of Secrets Manager calls.
            return Ok(RefreshOutcome::NotDue);
        }
        let raw = self.read(arn).await?;
        let fetched = Some(Instant::now());
        let fresh = match (checked(family, arn, &raw), cache.get_mut(&family)) {
            (Ok(fresh), _) => Arc::new(fresh),
            (Err(e), Some(previous)) => {
                // A mistyped rotation must not stop the endpoint: the previous secrets, which
                // were valid, stay; the re-read still counts, so the next one waits as usual.
                tracing::error!(%family, error = %e.0, "invalid secret value; keeping the previous secrets");
                previous.fetched = fetched;
                return Ok(RefreshOutcome::Unchanged);
            }
            (Err(e), None) => return Err(e),
        };
        let changed = cache.get(&family).is_none_or(|c| c.secrets != fresh);
        cache.insert(
            family,
            Cached {
                secrets: fresh,
                fetched,
            },
        );
        Ok(if changed {
            RefreshOutcome::Changed
        } else {
            RefreshOutcome::Unchanged
        })
    }
}
