//! Which customer emails exist, which are switched on (`BILLING_EMAILS`), and who sends them
//! (`BILLING_EMAIL_FROM`, `BILLING_EMAIL_REPLY_TO`, `BILLING_SES_CONFIGURATION_SET`).
//! `config.rs` reads the variables; the rules for their values live here.

use crate::domain::events::EmailAddress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A kind of customer email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// `invoice.payment_action_required`: the customer must confirm a payment (3-D Secure).
    PaymentActionRequired,
    /// `invoice.payment_failed`: update the payment method.
    PaymentFailed,
    /// The subscription ended, with wording for why.
    SubscriptionCancelled,
    /// After checkout.
    Welcome,
    /// `customer.subscription.trial_will_end` (three days before): the trial ends on this day.
    TrialEnding,
}

impl EmailKind {
    pub const ALL: [EmailKind; 5] = [
        EmailKind::PaymentActionRequired,
        EmailKind::PaymentFailed,
        EmailKind::SubscriptionCancelled,
        EmailKind::Welcome,
        EmailKind::TrialEnding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::PaymentActionRequired => "payment_action_required",
            EmailKind::PaymentFailed => "payment_failed",
            EmailKind::SubscriptionCancelled => "subscription_cancelled",
            EmailKind::Welcome => "welcome",
            EmailKind::TrialEnding => "trial_ending",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EmailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Only the action-required email is on by default: Stripe can send the others itself, and
/// the product must not duplicate Stripe's emails (issue 10).
pub const DEFAULT_KINDS: [EmailKind; 1] = [EmailKind::PaymentActionRequired];

/// `BILLING_EMAILS`: a comma list of kind names; blanks around names and empty entries are
/// ignored, so an empty (or all-blank) list turns every kind off. `Err` carries the first
/// unknown name (a kind name, not a secret: safe to print).
pub fn parse_kinds(list: &str) -> Result<BTreeSet<EmailKind>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| EmailKind::parse(n).ok_or_else(|| n.to_owned()))
        .collect()
}

/// Why an address is refused (never echoes the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("expected an address like name@example.com (or Name <name@example.com>)")]
    Shape,
}

/// The longest address SMTP carries (RFC 5321: a 256-octet path less its angle brackets).
const MAX_ADDRESS: usize = 254;
/// The longest local part (RFC 5321).
const MAX_LOCAL: usize = 64;

/// Whether `addr` has the shape of a deliverable address: one `@`, a non-empty local part of
/// at most 64 octets, a domain of dot-separated labels (at least two, none empty, letters,
/// digits and hyphens, no hyphen at either end), no spaces, controls or angle brackets. A
/// shape check only: SES, the recipient's server and bounces say the rest.
pub fn address_shape_ok(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'
                )
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    addr.len() <= MAX_ADDRESS && local_ok && domain_ok
}

/// A sender or reply-to: a bare address or `Display Name <address>`. The display name may
/// hold no angle brackets, quotes or controls (it goes into a header as is).
pub fn parse_mailbox(raw: &str) -> Result<EmailAddress, AddressError> {
    let raw = raw.trim();
    let address = match raw.strip_suffix('>').and_then(|r| r.rsplit_once('<')) {
        Some((name, addr)) => {
            let name_ok = !name
                .chars()
                .any(|c| c.is_control() || matches!(c, '<' | '>' | '"'));
            if !name_ok {
                return Err(AddressError::Shape);
            }
            addr
        }
        None => raw,
    };
    if address_shape_ok(address) {
        Ok(EmailAddress::new(raw))
    } else {
        Err(AddressError::Shape)
    }
}

/// What the customer emails need from the configuration. `Debug` shows no address
/// ([`EmailAddress`] is redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// The kinds switched on.
    pub kinds: BTreeSet<EmailKind>,
    /// The sender (`From`): present whenever a kind is on.
    pub from: Option<EmailAddress>,
    pub reply_to: Option<EmailAddress>,
    /// The SES configuration set that records deliveries, bounces and complaints.
    pub configuration_set: Option<String>,
    /// Connected accounts' customers get the emails too (`BILLING_EMAILS_CONNECTED_ACCOUNTS`).
    pub connected_accounts: bool,
}

impl EmailSettings {
    pub fn enabled(&self, kind: EmailKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// What the pipeline queues by these settings.
    pub fn queueing(&self) -> EmailQueueing {
        EmailQueueing {
            kinds: self.kinds.clone(),
            connected_accounts: self.connected_accounts,
        }
    }
}

/// Which email jobs an applied change queues: those of the kinds switched on, for the
/// platform's own customers, and for a Connect platform's connected accounts' customers only
/// when `connected_accounts` (off by default: those customers are the connected account's, and
/// the emails would go out under the stack's one brand). The default queues nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailQueueing {
    pub kinds: BTreeSet<EmailKind>,
    pub connected_accounts: bool,
}

/// SES configuration-set names: letters, digits, `-` and `_`, at most 64 characters
/// (<https://docs.aws.amazon.com/ses/latest/APIReference/API_ConfigurationSet.html>).
pub fn configuration_set_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_a_comma_list_and_name_the_unknown_one() {
        use EmailKind::*;
        assert_eq!(parse_kinds(""), Ok(BTreeSet::new()));
        assert_eq!(parse_kinds(" , "), Ok(BTreeSet::new()));
        assert_eq!(
            parse_kinds("welcome, payment_failed,welcome"),
            Ok([Welcome, PaymentFailed].into())
        );
        assert_eq!(
            parse_kinds(&EmailKind::ALL.map(|k| k.as_str()).join(",")).map(|k| k.len()),
            Ok(EmailKind::ALL.len())
        );
        assert_eq!(
            parse_kinds("payment_action_required,payment_failled"),
            Err("payment_failled".to_owned())
        );
        // Names are exact: no case folding, no dashes for underscores.
        assert_eq!(parse_kinds("Welcome"), Err("Welcome".to_owned()));
        assert_eq!(
            parse_kinds("payment-failed"),
            Err("payment-failed".to_owned())
        );
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).ok(),
                Some(format!("\"{kind}\""))
            );
        }
    }

    #[test]
    fn address_shapes_are_checked() {
        for good in [
            "billing@example.com",
            "first.last+tag@mail.example.co.uk",
            "a@b.io",
            "o'brien@example.com",
        ] {
            assert!(address_shape_ok(good), "{good}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b.".repeat(130));
        for bad in [
            "",
            "billing",
            "billing@",
            "@example.com",
            "billing@example",
            "billing@@example.com",
            "bill ing@example.com",
            "billing@exa mple.com",
            "billing@example..com",
            "billing@-example.com",
            ".billing@example.com",
            "bil..ling@example.com",
            "billing@example.com\r\nBcc: x@y.z",
            "<billing@example.com>",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(!address_shape_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_mailbox_is_an_address_or_a_named_address() {
        let ok = |raw: &str| parse_mailbox(raw).map(|a| a.as_str().to_owned());
        assert_eq!(
            ok(" billing@example.com "),
            Ok("billing@example.com".into())
        );
        assert_eq!(
            ok("Example Billing <billing@example.com>"),
            Ok("Example Billing <billing@example.com>".into())
        );
        for bad in [
            "Example <billing>",
            "Ex\"ample <billing@example.com>",
            "Ex<ample <billing@example.com>",
            "Example\r\n <billing@example.com>",
            "Example <billing@example.com",
            "not an address",
        ] {
            assert_eq!(
                parse_mailbox(bad).map(|_| ()),
                Err(AddressError::Shape),
                "{bad:?}"
            );
        }
        // The error never carries the value.
        assert!(!AddressError::Shape.to_string().contains("billing@"));
    }

    #[test]
    fn configuration_set_names_are_checked() {
        assert!(configuration_set_ok("billing-emails_1"));
        for bad in ["", "has space", "dots.not.allowed", &"x".repeat(65)] {
            assert!(!configuration_set_ok(bad), "{bad}");
        }
    }
}
