//! Every environment variable the CLI reads for itself, read here and nowhere else in the CLI.
//! The variables the functions read too are read by the shared crate's settings modules
//! (`Config::from_env`, `providers::{stripe,paypal}::settings`, `emails::settings`); a test in
//! `shared/src/settings.rs` fails on a read anywhere else.

use billing::emails::kinds::EmailSettings;
use billing::providers::stripe::Family;
use std::path::PathBuf;

/// Where generated development state lives (`BILLING_STATE_DIR`, default `.local/`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("BILLING_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".local"))
}

/// `STRIPE_WEBHOOK_SECRETS_<FAMILY>` as set (inline secrets, comma-separated): the local run
/// shows whether it is set, `send` signs with its first secret.
pub fn inline_webhook_secrets(family: Family) -> Option<String> {
    std::env::var(format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix())).ok()
}

/// `STRIPE_WEBHOOK_SECRETS_<FAMILY>_CONNECT` as set: `send --connect` and `lambda-event
/// --connect` sign with its first secret.
pub fn inline_connect_secrets(family: Family) -> Option<String> {
    std::env::var(format!(
        "STRIPE_WEBHOOK_SECRETS_{}_CONNECT",
        family.env_suffix()
    ))
    .ok()
}

/// The thin endpoint's inline secrets (`STRIPE_WEBHOOK_SECRETS_THIN`), which `send --thin` and
/// `lambda-event --thin` sign with by default.
pub fn inline_thin_secrets() -> Option<String> {
    std::env::var("STRIPE_WEBHOOK_SECRETS_THIN").ok()
}

/// Where `send` posts without `--url`: `BILLING_LOCAL_ADDR`, default `127.0.0.1:3000`.
pub fn local_addr() -> String {
    std::env::var("BILLING_LOCAL_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into())
}

/// Who grants without `--by`: `BILLING_OPERATOR`, else the login (`USER`).
pub fn operator() -> Option<String> {
    std::env::var("BILLING_OPERATOR")
        .ok()
        .or_else(|| std::env::var("USER").ok())
}

/// `billing emails redrive`'s queues: the dead-letter queue (`BILLING_EMAIL_DLQ_URL`) and the
/// email queue (`BILLING_EMAIL_QUEUE_URL`), both required.
pub fn email_redrive_queues() -> Result<(String, String), String> {
    Ok((
        required("BILLING_EMAIL_DLQ_URL")?,
        required("BILLING_EMAIL_QUEUE_URL")?,
    ))
}

/// `billing eventbridge`'s queues: the dead-letter queue and the queue it moves back to
/// (`BILLING_EVENTBRIDGE_DLQ_URL`, `BILLING_EVENTBRIDGE_QUEUE_URL`: the stack's outputs).
pub fn eventbridge_queues() -> Result<(String, String), String> {
    Ok((
        required("BILLING_EVENTBRIDGE_DLQ_URL")?,
        required("BILLING_EVENTBRIDGE_QUEUE_URL")?,
    ))
}

fn required(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{name} is not set"))
}

/// `billing stripe-endpoints`' key that may write webhook endpoints (`STRIPE_ADMIN_KEY`).
pub fn stripe_admin_key(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// `billing stripe-endpoints`' Stripe API base (`STRIPE_API_BASE`), as set.
pub fn stripe_api_base() -> Option<String> {
    std::env::var("STRIPE_API_BASE").ok()
}

/// `billing stripe-endpoints`' lookup of each family's `STRIPE_WEBHOOK_SECRETS_<FAMILY>_ARN`;
/// it answers no other variable.
pub fn webhook_secret_arn(name: &str) -> Option<String> {
    let ours = name.starts_with("STRIPE_WEBHOOK_SECRETS_") && name.ends_with("_ARN");
    ours.then(|| std::env::var(name).ok()).flatten()
}

/// Whether `AWS_ENDPOINT_URL` is set: the moto tests run only against an emulator.
#[cfg(test)]
pub fn aws_endpoint_set() -> bool {
    std::env::var("AWS_ENDPOINT_URL").is_ok()
}

/// The sender of the local run and the operator's commands when `BILLING_EMAIL_FROM` is unset
/// (a development default, like the table's): `scripts/dev` verifies it in moto's SES.
pub const DEV_EMAIL_FROM: &str = "billing@example.com";

/// The brand of the local run and the preview when `BILLING_BRAND_NAME` is unset (a development
/// default, like the sender's).
pub const DEV_BRAND_NAME: &str = "Billing (development)";

/// The brand and the templates from the environment, with the development brand where none is
/// named (the local run; the Lambda has no default: its deploy names one).
pub fn email_looks(
    emails_on: bool,
) -> Result<
    (
        billing::emails::templates::Templates,
        Option<billing::emails::brand::Brand>,
    ),
    String,
> {
    billing::emails::templates::from_env(
        |k| {
            std::env::var(k)
                .ok()
                .or_else(|| (k == "BILLING_BRAND_NAME").then(|| DEV_BRAND_NAME.to_owned()))
        },
        emails_on,
    )
    .map_err(|e| e.to_string())
}

/// The email settings from the environment, with the development sender where none is set:
/// the commands that apply events (`local`, `replay`) queue the jobs of the kinds switched on.
pub fn email_settings() -> Result<EmailSettings, String> {
    email_settings_from(|k| std::env::var(k).ok())
}

/// [`email_settings`] through `get` (tests pass a map).
pub fn email_settings_from(get: impl Fn(&str) -> Option<String>) -> Result<EmailSettings, String> {
    billing::emails::settings::read_email_settings(|k| {
        get(k).or_else(|| (k == "BILLING_EMAIL_FROM").then(|| DEV_EMAIL_FROM.to_owned()))
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing::emails::kinds::EmailKind;

    #[test]
    fn the_commands_that_apply_events_have_a_development_sender() {
        // Only the sender has a default: BILLING_EMAILS' own default (the action-required
        // email) stays on, so `local` and `replay` queue its jobs.
        let settings = email_settings_from(|_| None).expect("settings");
        let from = settings.from.map(|f| f.as_str().to_owned());
        assert_eq!(from.as_deref(), Some(DEV_EMAIL_FROM));
        assert_eq!(settings.kinds, [EmailKind::PaymentActionRequired].into());
        // A sender that is set wins; a bad one stops the command by name.
        let set =
            |v: &'static str| move |k: &str| (k == "BILLING_EMAIL_FROM").then(|| v.to_owned());
        let from = email_settings_from(set("ops@example.org"))
            .expect("settings")
            .from;
        assert_eq!(
            from.map(|f| f.as_str().to_owned()).as_deref(),
            Some("ops@example.org")
        );
        let err = email_settings_from(set("not an address")).expect_err("refused");
        assert!(err.contains("BILLING_EMAIL_FROM"), "{err}");
    }

    #[test]
    fn the_endpoints_lookup_answers_only_the_secret_arns() {
        assert_eq!(webhook_secret_arn("PATH"), None);
        assert_eq!(webhook_secret_arn("STRIPE_WEBHOOK_SECRETS_CHECKOUT"), None);
    }
}
