//! Endpoint secrets from AWS Secrets Manager: read at cold start, re-read after a signature
//! miss (at most once per `min_refresh`, whatever the re-read's outcome), so rotating a Stripe
//! secret needs no redeploy, and a Secrets Manager outage costs one read per interval while
//! deliveries are decided on the cached secrets.
//!
//! The secret string is either a JSON array of `whsec_…` strings or a comma/newline-separated
//! list; during a rotation it holds both the old and the new secret. It is validated like the
//! inline variables ([`validate_secret_list`]): an invalid value stops the cold start, and an
//! invalid value or a failed read met on a re-read is logged (never the value) while the
//! previous secrets stay in use.

use super::sdk_error::Describe;
use crate::ports::{RefreshOutcome, SecretSource, SecretsError};
use crate::routing::Endpoint;
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

/// Where an ARN's secret string is read: Secrets Manager in AWS and against moto, a twin in
/// tests that make it fail.
#[async_trait]
pub trait SecretReader: Send + Sync {
    async fn read(&self, arn: &str) -> Result<String, SecretsError>;
}

#[async_trait]
impl SecretReader for Client {
    async fn read(&self, arn: &str) -> Result<String, SecretsError> {
        read_secret_string(self, arn).await
    }
}

/// Inline secrets are served as configured; ARN secrets are fetched and cached.
pub struct ConfiguredSecrets {
    reader: Option<Arc<dyn SecretReader>>,
    specs: HashMap<Endpoint, SecretSpec>,
    cache: Mutex<HashMap<Endpoint, Cached>>,
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

/// The variable that names an endpoint's secret in Secrets Manager (for error messages).
fn arn_variable(endpoint: Endpoint) -> String {
    format!(
        "{}_WEBHOOK_SECRETS_{}_ARN",
        endpoint.provider.name().to_ascii_uppercase(),
        endpoint.name.to_ascii_uppercase()
    )
}

/// Parses and validates a secret string read from Secrets Manager; the error names the
/// variable, the secret id and the entry, never a value.
fn checked(endpoint: Endpoint, arn: &str, raw: &str) -> Result<Vec<WebhookSecret>, SecretsError> {
    let list = parse_secret_list(raw);
    validate_secret_list(&list)
        .map_err(|e| SecretsError(format!("{} (secret {arn}): {e}", arn_variable(endpoint))))?;
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
        specs: HashMap<Endpoint, SecretSpec>,
        min_refresh: Duration,
    ) -> Self {
        let reader = client.map(|c| Arc::new(c) as Arc<dyn SecretReader>);
        Self::with_reader(reader, specs, min_refresh)
    }

    /// As [`ConfiguredSecrets::new`], reading ARNs through `reader` (`None`: no ARN can be read).
    pub fn with_reader(
        reader: Option<Arc<dyn SecretReader>>,
        specs: HashMap<Endpoint, SecretSpec>,
        min_refresh: Duration,
    ) -> Self {
        // Inline secrets never change: cached once, so a request only clones an `Arc`.
        let cache = specs
            .iter()
            .filter_map(|(endpoint, spec)| match spec {
                SecretSpec::Inline(list) => Some((
                    *endpoint,
                    Cached {
                        secrets: Arc::new(list.clone()),
                        fetched: None,
                    },
                )),
                SecretSpec::Arn(_) => None,
            })
            .collect();
        Self {
            reader,
            specs,
            cache: Mutex::new(cache),
            min_refresh,
        }
    }

    /// The secret's string as stored; `Err` when Secrets Manager cannot be read.
    async fn read(&self, arn: &str) -> Result<String, SecretsError> {
        let reader = self
            .reader
            .as_ref()
            .ok_or_else(|| SecretsError("no Secrets Manager client".into()))?;
        reader.read(arn).await
    }

    /// Loads every ARN-backed endpoint now (cold start), so a bad ARN fails at start-up.
    pub async fn preload(&self) -> Result<(), SecretsError> {
        for endpoint in self.specs.keys() {
            self.secrets(*endpoint).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SecretSource for ConfiguredSecrets {
    async fn secrets(&self, endpoint: Endpoint) -> Result<Arc<Vec<WebhookSecret>>, SecretsError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&endpoint) {
            return Ok(c.secrets.clone());
        }
        let Some(SecretSpec::Arn(arn)) = self.specs.get(&endpoint) else {
            // No secret for this endpoint: every signature check fails (NoSecrets → 400).
            return Ok(Arc::new(Vec::new()));
        };
        let secrets = Arc::new(checked(endpoint, arn, &self.read(arn).await?)?);
        cache.insert(
            endpoint,
            Cached {
                secrets: secrets.clone(),
                fetched: Some(Instant::now()),
            },
        );
        Ok(secrets)
    }

    async fn refresh(&self, endpoint: Endpoint) -> Result<RefreshOutcome, SecretsError> {
        let Some(SecretSpec::Arn(arn)) = self.specs.get(&endpoint) else {
            return Ok(RefreshOutcome::NotDue);
        };
        {
            let mut cache = self.cache.lock().await;
            if let Some(c) = cache.get_mut(&endpoint) {
                if c.fetched.is_some_and(|t| t.elapsed() < self.min_refresh) {
                    // Bad signatures must not turn into a stream of Secrets Manager calls.
                    return Ok(RefreshOutcome::NotDue);
                }
                // Claimed before the read, whatever its outcome: concurrent misses and those
                // that follow a failed read wait for the next interval too.
                c.fetched = Some(Instant::now());
            }
        }
        // No lock across the read (up to the operation bound): other deliveries keep using the
        // cached secrets meanwhile.
        let read = match self.read(arn).await {
            Ok(raw) => checked(endpoint, arn, &raw),
            Err(e) => Err(e),
        };
        let mut cache = self.cache.lock().await;
        match (read, cache.get_mut(&endpoint)) {
            (Ok(fresh), Some(previous)) => {
                let changed = *previous.secrets != fresh;
                previous.secrets = Arc::new(fresh);
                Ok(if changed {
                    RefreshOutcome::Changed
                } else {
                    RefreshOutcome::Unchanged
                })
            }
            (Ok(fresh), None) => {
                let fetched = Some(Instant::now());
                let secrets = Arc::new(fresh);
                cache.insert(endpoint, Cached { secrets, fetched });
                Ok(RefreshOutcome::Changed)
            }
            (Err(e), Some(_)) => {
                // Unreadable (Secrets Manager failing) or invalid (a mistyped rotation): the
                // previous secrets, which were valid, decide the delivery; the error names the
                // variable and the secret id, never a value.
                tracing::error!(%endpoint, error = %e.0, "secrets re-read failed; keeping the previous secrets");
                Ok(RefreshOutcome::Unchanged)
            }
            (Err(e), None) => Err(e),
        }
    }
}
