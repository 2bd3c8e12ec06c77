//! The customer emails' settings (`BILLING_EMAILS`, `BILLING_EMAIL_*`,
//! `BILLING_SES_CONFIGURATION_SET`), read by the processes that queue or send emails only.

use super::brand::Brand;
use super::kinds::{
    configuration_set_ok, parse_kinds, parse_mailbox, EmailKind, EmailSettings, DEFAULT_KINDS,
};
use super::templates::{EmailLookError, Templates};
use crate::settings::{malformed, number, ConfigError};

/// The customer emails' settings (issue 10): `BILLING_EMAILS` (unset: the default kinds; set
/// but empty: none), `BILLING_EMAIL_FROM` (required while any kind is on),
/// `BILLING_EMAIL_REPLY_TO`, `BILLING_SES_CONFIGURATION_SET`, `BILLING_EMAILS_CONNECTED_ACCOUNTS`
/// (`on` or `off`, the default). Errors name the variable and,
/// for an unknown kind, the kind; never an address. Read by the processes that queue or send
/// emails only, so that a function that sends none needs no sender.
pub fn read_email_settings(
    get: impl Fn(&str) -> Option<String>,
) -> Result<EmailSettings, ConfigError> {
    const KINDS: &str = "BILLING_EMAILS";
    const FROM: &str = "BILLING_EMAIL_FROM";
    const REPLY_TO: &str = "BILLING_EMAIL_REPLY_TO";
    const SET: &str = "BILLING_SES_CONFIGURATION_SET";
    const CONNECTED: &str = "BILLING_EMAILS_CONNECTED_ACCOUNTS";
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
    let connected_accounts = match get(CONNECTED).as_deref().map(str::trim) {
        None | Some("off") => false,
        Some("on") => true,
        Some(_) => return Err(malformed(CONNECTED, "expected on or off")),
    };
    Ok(EmailSettings {
        kinds,
        from,
        reply_to: mailbox(REPLY_TO)?,
        configuration_set,
        connected_accounts,
    })
}

/// `BILLING_EMAIL_LEASE_SECS`: how long a consumer's claim on an email holds (default: the
/// email queue's visibility timeout in template.yaml). At least 30 s (a send's budget), at
/// most 12 h (SQS's longest visibility timeout).
pub fn read_email_lease(get: impl Fn(&str) -> Option<String>) -> Result<i64, ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let default = super::send::DEFAULT_LEASE_SECS as u64;
    number(
        &get,
        "BILLING_EMAIL_LEASE_SECS",
        30..=43_200,
        "seconds",
        default,
    )
    .map(|n| n as i64)
}

/// [`read_email_settings`] from the process environment.
pub fn email_settings_from_env() -> Result<EmailSettings, ConfigError> {
    read_email_settings(|k| std::env::var(k).ok())
}

/// [`read_email_lease`] from the process environment.
pub fn email_lease_from_env() -> Result<i64, ConfigError> {
    read_email_lease(|k| std::env::var(k).ok())
}

/// `BILLING_EMAIL_QUEUE_URL`: where the relay sends email jobs; `None` when unset or blank.
pub fn email_queue_url_from_env() -> Option<String> {
    std::env::var("BILLING_EMAIL_QUEUE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The brand (`BILLING_BRAND_*`) and the templates (`BILLING_EMAIL_TEMPLATES`) from the
/// environment, checked: what the emails function renders with.
pub fn looks_from_env(emails_on: bool) -> Result<(Templates, Option<Brand>), EmailLookError> {
    super::templates::from_env(|k| std::env::var(k).ok(), emails_on)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::lookup;

    fn emails(pairs: &[(&str, &str)]) -> Result<EmailSettings, ConfigError> {
        read_email_settings(lookup(pairs))
    }

    #[test]
    fn connected_accounts_emails_are_off_unless_switched_on() {
        let read = |value: Option<&str>| {
            read_email_settings(|k| match k {
                "BILLING_EMAIL_FROM" => Some("billing@example.com".into()),
                "BILLING_EMAILS_CONNECTED_ACCOUNTS" => value.map(str::to_owned),
                _ => None,
            })
        };
        assert!(!read(None).expect("default").connected_accounts);
        assert!(!read(Some("off")).expect("off").connected_accounts);
        assert!(read(Some("on")).expect("on").queueing().connected_accounts);
        let err = read(Some("yes")).expect_err("refused").to_string();
        assert!(err.contains("BILLING_EMAILS_CONNECTED_ACCOUNTS"), "{err}");
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
}
