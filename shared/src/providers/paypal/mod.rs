//! PayPal webhooks: verification of a delivery, offline (PayPal's certificate, checked here) or
//! through PayPal's verify-webhook-signature API (`PAYPAL_VERIFICATION=api`).
//!
//! Offline, a delivery is accepted only when, in this order (the first failure is the answer):
//! the five `PAYPAL-*` transmission headers are present and well formed; `PAYPAL-AUTH-ALGO`
//! names SHA-256 or stronger with RSA; `PAYPAL-TRANSMISSION-TIME` is within the tolerance of the
//! clock; `PAYPAL-CERT-URL` is https under an allowed prefix; the certificate it serves (fetched
//! once per URL, then cached for the life of the process) chains to a trusted root, is valid
//! now and names a `paypal.com` host as its subject CN; and the RSA signature over
//! `transmission_id|transmission_time|webhook_id|crc32(body)` verifies with its key. The
//! `webhook_id` is ours (`PAYPAL_WEBHOOK_ID`), never taken from the delivery.
//!
//! A verified delivery is read and mapped onto the model by [`PaypalProvider`] (`translate`,
//! the ignored types in `ignored`).

pub mod api;
pub mod cert_url;
pub mod certs;
pub mod fetch;
pub mod ignored;
mod provider;
pub mod translate;
pub mod transmission;
mod verifier;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod offline_tests;

pub use provider::PaypalProvider;
pub use verifier::PaypalVerifier;

/// Why a PayPal delivery was refused (answered 400). Messages name the failed check only:
/// never a header value, the body, a URL from the delivery or a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaypalRejection {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("signature algorithm weaker than SHA-256 refused")]
    WeakAlgorithm,
    #[error("unknown signature algorithm")]
    UnknownAlgorithm,
    /// `age_secs` is `now - transmission time`: negative when it claims to be from the future.
    #[error("transmission time {age_secs}s away from now exceeds tolerance")]
    OutsideTolerance { age_secs: i64 },
    #[error("certificate URL is not https")]
    CertUrlNotHttps,
    #[error("certificate URL is not under an allowed prefix")]
    CertUrlNotAllowed,
    #[error("certificate could not be read")]
    CertUnreadable,
    #[error("certificate does not chain to a trusted root")]
    CertUntrusted,
    #[error("certificate is not valid at this time")]
    CertNotValidNow,
    /// Another path-validation failure (a CA certificate as the leaf, a wrong key usage…);
    /// the text is webpki's error kind, which quotes nothing from the delivery.
    #[error("certificate refused: {0}")]
    CertInvalid(String),
    #[error("certificate subject has no single common name")]
    CertNoCommonName,
    #[error("certificate subject is not a paypal.com host")]
    CertNotPaypal,
    #[error("signature does not match")]
    SignatureMismatch,
    /// API mode: the body must be a JSON object to be passed on as `webhook_event`.
    #[error("body is not a JSON object")]
    BodyNotJsonObject,
    /// API mode: PayPal answered, and did not confirm the signature.
    #[error("PayPal's verification API did not confirm the signature")]
    ApiNotVerified,
    /// API mode: PayPal refused the verification request as invalid (its 400 or 422).
    #[error("PayPal's verification API refused the request ({0})")]
    ApiRequestRefused(u16),
}
