//! What every settings module shares: the error that names a variable, the parsing helpers, and
//! the local run's defaults. Each concern reads its own variables in its own module (the core
//! in `config`, Stripe in `providers::stripe::settings`, PayPal in `providers::paypal::settings`,
//! the customer emails in `emails::settings`, the call bounds in `bounds`, the reconcile run in
//! `reconcile::settings`, the EventBridge ingress in `eventbridge::settings`); `config::Config` composes them. This module imports none of them, so
//! they can all import it without a circle. Nothing outside those settings files (and the CLI's
//! `cli/src/settings.rs`) reads the process environment: `READERS` in the test below lists
//! them, and the test fails on a read anywhere else.

use crate::providers::stripe::Family;
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
    /// One generated secret per family's Connect endpoint.
    pub connect_secrets: HashMap<Family, String>,
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The files allowed to read the process environment, relative to the workspace: the
    /// settings modules that read their variables from it (`providers/stripe/settings.rs` and
    /// `bounds.rs` read through the lookup `Config::from_env` hands them), and the CLI's one
    /// settings file.
    const READERS: [&str; 6] = [
        "shared/src/config.rs",
        "shared/src/eventbridge/settings.rs",
        "shared/src/providers/paypal/settings.rs",
        "shared/src/emails/settings.rs",
        "shared/src/reconcile/settings.rs",
        "cli/src/settings.rs",
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn only_the_settings_modules_read_the_environment() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace");
        // Spelled apart so that this file is not a hit for its own reason; it also finds
        // `var_os` and `vars`.
        let needle = concat!("env", "::", "var");
        let mut files = Vec::new();
        for dir in ["shared/src", "cli/src"] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} files", files.len());
        let mut readers = Vec::new();
        let mut outside = Vec::new();
        for file in &files {
            let name = file
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(file).expect("readable");
            if text.contains(needle) {
                if READERS.contains(&name.as_str()) {
                    readers.push(name);
                } else {
                    outside.push(name);
                }
            }
        }
        assert!(
            outside.is_empty(),
            "these files read the environment outside the settings modules: {outside:?}; \
             read the variable in its module's settings file (READERS in shared/src/settings.rs)"
        );
        // The list names real readers: a file that no longer reads leaves it.
        for reader in READERS {
            assert!(
                readers.iter().any(|r| r == reader),
                "{reader} is listed but reads no variable"
            );
        }
    }
}
