//! Endpoint secrets from AWS Secrets Manager: read at cold start, re-read after a signature
//! miss (at most once per `min_refresh`), so rotating a Stripe secret needs no redeploy.
//!
//! The secret string is either a JSON array of `whsec_…` strings or a comma/newline-separated
//! list; during a rotation it holds both the old and the new secret.

use super::sdk_error::Describe;
use crate::ports::{SecretSource, SecretsError};
use crate::providers::stripe::signature::WebhookSecret;
use crate::routing::Family;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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

    async fn fetch(&self, arn: &str) -> Result<Vec<WebhookSecret>, SecretsError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SecretsError("no Secrets Manager client".into()))?;
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretsError(e.describe()))?;
        let raw = out
            .secret_string()
            .ok_or_else(|| SecretsError(format!("secret {arn} has no string value")))?;
        let list = parse_secret_list(raw);
        if list.is_empty() {
            return Err(SecretsError(format!("secret {arn} holds no secrets")));
        }
        Ok(list)
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
        let secrets = Arc::new(self.fetch(arn).await?);
        cache.insert(
            family,
            Cached {
                secrets: secrets.clone(),
                fetched: Some(Instant::now()),
            },
        );
        Ok(secrets)
    }

    async fn refresh(&self, family: Family) -> Result<bool, SecretsError> {
        let Some(SecretSpec::Arn(arn)) = self.specs.get(&family) else {
            return Ok(false);
        };
        let mut cache = self.cache.lock().await;
        let recent = cache
            .get(&family)
            .and_then(|c| c.fetched)
            .is_some_and(|t| t.elapsed() < self.min_refresh);
        if recent {
            // Bad signatures must not turn into a stream of Secrets Manager calls.
            return Ok(false);
        }
        let fresh = Arc::new(self.fetch(arn).await?);
        let changed = cache.get(&family).is_none_or(|c| c.secrets != fresh);
        cache.insert(
            family,
            Cached {
                secrets: fresh,
                fetched: Some(Instant::now()),
            },
        );
        Ok(changed)
    }
}
