//! What every settings module shares: the error that names a variable, the parsing helpers, and
//! the local run's defaults. Each concern reads its own variables in its own module (the core
//! in `config`, Stripe in `providers::stripe::settings`, PayPal in `providers::paypal::settings`,
//! the customer emails in `emails::settings`, the call bounds in `bounds`, the reconcile run in
//! `reconcile::settings`); `config::Config` composes them. This module imports none of them, so
//! they can all import it without a circle.

use crate::routing::Family;
use std::collections::HashMap;
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

/// Values used by the local run where a variable is unset (never on Lambda).
#[derive(Debug, Clone)]
pub struct DevDefaults {
    pub table: String,
    /// One generated secret per family.
    pub secrets: HashMap<Family, String>,
}

pub(crate) fn malformed(name: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        name: name.to_owned(),
        why: why.into(),
    }
}

/// A whole number in `range` from variable `name`, or `default` when unset.
pub(crate) fn number(
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
pub(crate) fn within(
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

/// A lookup over fixed pairs, as the settings modules' tests pass it.
#[cfg(test)]
pub(crate) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |k| map.get(k).cloned()
}
