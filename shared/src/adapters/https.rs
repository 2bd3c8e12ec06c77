//! What the providers' HTTPS clients share (Stripe's API and list clients, PayPal's API and
//! certificate fetcher): the check of a configured base URL and the rustls configuration.

use crate::ports::ApiError;
use reqwest::Url;
use std::sync::Arc;

/// Checks a provider API's base URL (`STRIPE_API_BASE`, `PAYPAL_API_BASE`): an absolute https
/// URL with no query, or http on the loopback host (a test's fake API). The error says why, in
/// words.
pub fn parse_base(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err("expected https:// (http only on 127.0.0.1 or localhost)".into()),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("expected no query, fragment or user".into());
    }
    let mut url = url;
    // `join` replaces a last segment without a slash: `{base}/v1/…` needs the base to end in one.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The rustls configuration: the aws-lc-rs provider passed explicitly (reqwest would otherwise
/// look for a process-wide default, or bring ring) and the system's roots, as the AWS SDK.
pub(crate) fn tls_config(https: bool) -> Result<rustls::ClientConfig, ApiError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    // A loopback http base (tests) makes no TLS connection: no roots to load.
    if https {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(ApiError(
                "no TLS root certificates found on this system".into(),
            ));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_https_or_loopback_http() {
        assert!(parse_base("https://api.stripe.com").is_ok());
        assert!(parse_base("http://127.0.0.1:4242").is_ok());
        assert!(parse_base("http://localhost:4242/").is_ok());
        for bad in [
            "http://api.stripe.com",
            "api.stripe.com",
            "ftp://127.0.0.1",
            "https://api.stripe.com/?x=1",
            "https://user@api.stripe.com",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }
}
