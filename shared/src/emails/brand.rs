//! Who is writing: the team's brand in every customer email (its name in the subject and the
//! header, its colour on the button, its support contact and postal address in the footer).
//! Read once at cold start by the functions that send or queue emails; each error names the
//! variable. The sender's display name defaults to the brand's name.

use super::kinds::address_shape_ok;
use crate::domain::events::EmailAddress;
use serde::Serialize;

/// The button's and the header rule's colour when `BILLING_BRAND_COLOR` is unset.
pub const DEFAULT_COLOR: &str = "#1f2937";
const MAX_NAME: usize = 100;
const MAX_URL: usize = 2048;
const MAX_ADDRESS: usize = 300;

/// The brand, as every template sees it (`brand.name`, `brand.color`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brand {
    /// `BILLING_BRAND_NAME`: who is writing (required while any email kind is on).
    pub name: String,
    /// `BILLING_BRAND_URL`: the team's site.
    pub url: Option<String>,
    /// `BILLING_SUPPORT_EMAIL`: where customers write with questions.
    pub support_email: Option<String>,
    /// `BILLING_SUPPORT_URL`: a help page or contact form.
    pub support_url: Option<String>,
    /// `BILLING_BRAND_LOGO_URL`: an https image shown in the header instead of the name.
    pub logo_url: Option<String>,
    /// `BILLING_BRAND_COLOR`: `#rrggbb`.
    pub color: String,
    /// `BILLING_POSTAL_ADDRESS`: the sender's postal address, on one line.
    pub postal_address: Option<String>,
}

impl Brand {
    /// A brand with a name and nothing else (tests, the preview's fallback).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: None,
            support_email: None,
            support_url: None,
            logo_url: None,
            color: DEFAULT_COLOR.to_owned(),
            postal_address: None,
        }
    }
}

impl Brand {
    /// The sender with this brand as its display name, unless it names one itself
    /// (`Name <address>` in `BILLING_EMAIL_FROM` wins).
    pub fn sender(&self, from: &EmailAddress) -> EmailAddress {
        let raw = from.as_str().trim();
        if raw.ends_with('>') {
            return from.clone();
        }
        EmailAddress::new(format!("{} <{raw}>", display_name(&self.name)))
    }
}

/// A display name as a header carries it: as is when plain ASCII words, quoted when it holds
/// a character with a meaning in addresses, MIME encoded-word (RFC 2047) when not ASCII.
pub fn display_name(name: &str) -> String {
    use base64::Engine as _;
    if !name.is_ascii() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        return format!("=?UTF-8?B?{encoded}?=");
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        return name.to_owned();
    }
    let escaped: String = name
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// Why the brand settings are refused: the variable and what is wrong (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrandError {
    #[error("{0} is required while customer emails are on (BILLING_EMAILS)")]
    Missing(&'static str),
    #[error("{name}: {why}")]
    Malformed {
        name: &'static str,
        why: &'static str,
    },
}

fn malformed(name: &'static str, why: &'static str) -> BrandError {
    BrandError::Malformed { name, why }
}

/// Text shown on one line: no control characters, not empty, at most `max` bytes.
fn one_line(name: &'static str, value: String, max: usize) -> Result<String, BrandError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(malformed(name, "is empty"));
    }
    if value.len() > max {
        return Err(malformed(name, "is too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(malformed(
            name,
            "must be one line without control characters",
        ));
    }
    Ok(value)
}

/// An absolute http(s) URL without spaces, quotes or angle brackets (`https_only`: https).
fn url(name: &'static str, value: String, https_only: bool) -> Result<String, BrandError> {
    let value = one_line(name, value, MAX_URL)?;
    let scheme_ok = value.starts_with("https://") || (!https_only && value.starts_with("http://"));
    if !scheme_ok {
        return Err(malformed(
            name,
            if https_only {
                "must be an https:// URL"
            } else {
                "must be an http:// or https:// URL"
            },
        ));
    }
    let host = value.split("://").nth(1).unwrap_or_default();
    if host.is_empty() || host.starts_with('/') {
        return Err(malformed(name, "has no host"));
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`'))
    {
        return Err(malformed(
            name,
            "holds a space, a quote or an angle bracket",
        ));
    }
    Ok(value)
}

fn color(value: String) -> Result<String, BrandError> {
    let value = value.trim().to_ascii_lowercase();
    let hex = value.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(malformed("BILLING_BRAND_COLOR", "must be #rrggbb"))
    }
}

/// The brand from the environment (`get`), when `emails_on`; `None` when every kind is off and
/// no name is set (nothing is sent, nothing is required).
pub fn read_brand(
    get: impl Fn(&str) -> Option<String>,
    emails_on: bool,
) -> Result<Option<Brand>, BrandError> {
    let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let Some(name) = set("BILLING_BRAND_NAME") else {
        return if emails_on {
            Err(BrandError::Missing("BILLING_BRAND_NAME"))
        } else {
            Ok(None)
        };
    };
    let support_email = set("BILLING_SUPPORT_EMAIL")
        .map(|v| {
            let v = v.trim().to_owned();
            if address_shape_ok(&v) {
                Ok(v)
            } else {
                Err(malformed("BILLING_SUPPORT_EMAIL", "is not an address"))
            }
        })
        .transpose()?;
    Ok(Some(Brand {
        name: one_line("BILLING_BRAND_NAME", name, MAX_NAME)?,
        url: set("BILLING_BRAND_URL")
            .map(|v| url("BILLING_BRAND_URL", v, false))
            .transpose()?,
        support_email,
        support_url: set("BILLING_SUPPORT_URL")
            .map(|v| url("BILLING_SUPPORT_URL", v, false))
            .transpose()?,
        logo_url: set("BILLING_BRAND_LOGO_URL")
            .map(|v| url("BILLING_BRAND_LOGO_URL", v, true))
            .transpose()?,
        color: set("BILLING_BRAND_COLOR")
            .map(color)
            .transpose()?
            .unwrap_or_else(|| DEFAULT_COLOR.to_owned()),
        postal_address: set("BILLING_POSTAL_ADDRESS")
            .map(|v| one_line("BILLING_POSTAL_ADDRESS", v, MAX_ADDRESS))
            .transpose()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)], on: bool) -> Result<Option<Brand>, BrandError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        read_brand(|k| env.get(k).cloned(), on)
    }

    #[test]
    fn the_name_is_required_while_an_email_is_on() {
        assert_eq!(
            read(&[], true),
            Err(BrandError::Missing("BILLING_BRAND_NAME"))
        );
        assert_eq!(read(&[], false), Ok(None));
        let brand = read(&[("BILLING_BRAND_NAME", " Acme Cloud ")], true)
            .expect("valid")
            .expect("a brand");
        assert_eq!(brand, Brand::named("Acme Cloud"));
    }

    #[test]
    fn every_setting_is_read_and_checked_naming_its_variable() {
        let all = [
            ("BILLING_BRAND_NAME", "Acme"),
            ("BILLING_BRAND_URL", "https://acme.example"),
            ("BILLING_SUPPORT_EMAIL", "help@acme.example"),
            ("BILLING_SUPPORT_URL", "https://acme.example/help"),
            ("BILLING_BRAND_LOGO_URL", "https://acme.example/logo.png"),
            ("BILLING_BRAND_COLOR", "#0A7CFF"),
            ("BILLING_POSTAL_ADDRESS", "1 Main St, Springfield"),
        ];
        let brand = read(&all, true).expect("valid").expect("a brand");
        assert_eq!(brand.color, "#0a7cff");
        assert_eq!(brand.support_email.as_deref(), Some("help@acme.example"));
        for (name, bad) in [
            ("BILLING_BRAND_LOGO_URL", "http://acme.example/logo.png"),
            ("BILLING_BRAND_URL", "javascript:alert(1)"),
            ("BILLING_SUPPORT_URL", "https://acme.example/\" onclick=\"x"),
            ("BILLING_BRAND_COLOR", "blue"),
            ("BILLING_BRAND_COLOR", "#12345"),
            ("BILLING_SUPPORT_EMAIL", "nobody-at-example"),
            ("BILLING_POSTAL_ADDRESS", "line one\nline two"),
            ("BILLING_BRAND_NAME", "Acme\r\nBcc: someone"),
        ] {
            let mut pairs = all.to_vec();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, bad));
            let err = read(&pairs, true).expect_err(bad);
            assert!(err.to_string().starts_with(name), "{name}: {err}");
            assert!(
                !err.to_string().contains(bad),
                "the value is never echoed: {err}"
            );
        }
    }
}
