//! Where a certificate may be fetched from: `PAYPAL-CERT-URL` must be PayPal's certificate
//! path, `https://{host}/v1/notifications/certs/CERT-…` (as in PayPal's signed deliveries, e.g.
//! `https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77`), on
//! port 443, with no user, query or fragment, under one of the allowed prefixes
//! (`PAYPAL_CERT_URL_PREFIXES`). Both sides are parsed as URLs and compared by scheme, host,
//! port and path, never as strings, so neither `https://api.paypal.com.evil.example/` nor
//! `https://api.paypal.com@evil.example/` passes for `https://api.paypal.com/`. The parsed URL is
//! the normalised form the certificate cache is keyed by: one key per certificate.

use super::PaypalRejection;
use reqwest::Url;

/// PayPal's live and sandbox API hosts, old and `api-m` names (PayPal's REST docs use
/// `api-m.paypal.com` and `api-m.sandbox.paypal.com`; certificate URLs in signed deliveries
/// name `api.paypal.com` and `api.sandbox.paypal.com`).
pub const DEFAULT_PREFIXES: [&str; 4] = [
    "https://api.paypal.com/",
    "https://api-m.paypal.com/",
    "https://api.sandbox.paypal.com/",
    "https://api-m.sandbox.paypal.com/",
];

/// The allowed prefixes, each an https URL whose path ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUrlPolicy {
    prefixes: Vec<Url>,
}

impl Default for CertUrlPolicy {
    fn default() -> Self {
        Self::parse(&DEFAULT_PREFIXES.join(",")).expect("the default prefixes are valid")
    }
}

impl CertUrlPolicy {
    /// A comma-separated list of prefixes; each must be https with a host and no user,
    /// query or fragment. A path without a trailing `/` gets one, so `…/certs` does not
    /// also allow `…/certs-evil`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut prefixes = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
            if url.scheme() != "https" || url.host_str().is_none() {
                return Err(format!("`{raw}` is not an https URL with a host"));
            }
            if !url.username().is_empty()
                || url.password().is_some()
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(format!("`{raw}` has a user, query or fragment"));
            }
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            prefixes.push(url);
        }
        if prefixes.is_empty() {
            return Err("no prefix in the list".into());
        }
        Ok(Self { prefixes })
    }

    /// The certificate URL, parsed (and normalised: `..` segments resolved, host lower-cased,
    /// `:443` dropped), when it may be fetched.
    pub fn check(&self, raw: &str) -> Result<Url, PaypalRejection> {
        let url = Url::parse(raw)
            .map_err(|_| PaypalRejection::MalformedHeader(super::transmission::CERT_URL))?;
        if url.scheme() != "https" {
            return Err(PaypalRejection::CertUrlNotHttps);
        }
        let plain = url.username().is_empty() && url.password().is_none();
        // A query or fragment names the same document under another key: refused, so variants
        // neither cost a fetch each nor crowd the real certificate out of the cache.
        if !plain
            || url.query().is_some()
            || url.fragment().is_some()
            || url.port_or_known_default() != Some(443)
            || !is_certificate_path(url.path())
        {
            return Err(PaypalRejection::CertUrlNotAllowed);
        }
        let under = |prefix: &Url| {
            url.host() == prefix.host()
                && url.port_or_known_default() == prefix.port_or_known_default()
                && url.path().starts_with(prefix.path())
        };
        if self.prefixes.iter().any(under) {
            Ok(url)
        } else {
            Err(PaypalRejection::CertUrlNotAllowed)
        }
    }
}

/// PayPal's certificate path: `/v1/notifications/certs/CERT-` and one segment of ASCII letters,
/// digits and hyphens (no `%`-escapes, so one certificate has one spelling).
const CERT_PATH: &str = "/v1/notifications/certs/CERT-";

/// Longest certificate name accepted after `CERT-` (PayPal's are about 30 characters).
const MAX_CERT_NAME: usize = 128;

fn is_certificate_path(path: &str) -> bool {
    path.strip_prefix(CERT_PATH).is_some_and(|name| {
        !name.is_empty()
            && name.len() <= MAX_CERT_NAME
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str =
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77";

    #[test]
    fn paypal_hosts_are_allowed_by_default() {
        let policy = CertUrlPolicy::default();
        for ok in [
            REAL,
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://API.PAYPAL.COM/v1/notifications/certs/CERT-1",
            "https://api-m.sandbox.paypal.com:443/v1/notifications/certs/CERT-1",
        ] {
            assert!(policy.check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn look_alike_hosts_userinfo_and_other_ports_are_refused() {
        let policy = CertUrlPolicy::default();
        for bad in [
            "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
            "https://evil.example@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://evil.example/https://api.paypal.com/",
            "https://api.paypal.com./v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://xapi.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1#x",
        ] {
            assert_eq!(
                policy.check(bad),
                Err(PaypalRejection::CertUrlNotAllowed),
                "{bad}"
            );
        }
        for not_https in [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "ftp://api.paypal.com/x",
        ] {
            assert_eq!(
                policy.check(not_https),
                Err(PaypalRejection::CertUrlNotHttps),
                "{not_https}"
            );
        }
        assert_eq!(
            policy.check("api.paypal.com/v1/x"),
            Err(PaypalRejection::MalformedHeader("PAYPAL-CERT-URL"))
        );
    }

    #[test]
    fn a_path_prefix_is_matched_by_whole_segments_after_normalisation() {
        let policy =
            CertUrlPolicy::parse("https://api.paypal.com/v1/notifications/certs").expect("valid");
        assert!(policy
            .check("https://api.paypal.com/v1/notifications/certs/CERT-1")
            .is_ok());
        for bad in [
            "https://api.paypal.com/v1/notifications/certs-evil/CERT-1",
            "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/%2e%2e/%2e%2e/x",
        ] {
            assert_eq!(
                policy.check(bad),
                Err(PaypalRejection::CertUrlNotAllowed),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_paypals_certificate_path_is_allowed() {
        let policy = CertUrlPolicy::default();
        let url = policy
            .check("https://API.PayPal.com:443/v1/notifications/certs/CERT-1")
            .expect("allowed");
        assert_eq!(
            url.as_str(),
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
            "the normalised key"
        );
        for bad in [
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/CERT-",
            "https://api.paypal.com/v1/notifications/certs/CERT-1/",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?a=b",
            "https://api.paypal.com/v1/notifications/certs/%43ERT-1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1%2F..",
            "https://api.paypal.com/v1/notifications/webhooks/CERT-1",
        ] {
            assert_eq!(
                policy.check(bad),
                Err(PaypalRejection::CertUrlNotAllowed),
                "{bad}"
            );
        }
        let long = format!(
            "https://api.paypal.com/v1/notifications/certs/CERT-{}",
            "a".repeat(MAX_CERT_NAME + 1)
        );
        assert_eq!(policy.check(&long), Err(PaypalRejection::CertUrlNotAllowed));
    }

    #[test]
    fn prefix_lists_are_checked() {
        assert!(CertUrlPolicy::parse(" https://a.example/ , https://b.example/x ").is_ok());
        for bad in [
            "",
            " , ",
            "http://api.paypal.com/",
            "https://user@api.paypal.com/",
            "https://api.paypal.com/?q=1",
            "api.paypal.com",
        ] {
            assert!(CertUrlPolicy::parse(bad).is_err(), "{bad:?}");
        }
    }
}
