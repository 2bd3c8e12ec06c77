//! PayPal webhooks: verification of a delivery, offline (PayPal's certificate, checked here) or
//! through PayPal's verify-webhook-signature API (`PAYPAL_VERIFICATION=api`).
//!
//! Offline, a delivery is accepted only when, in this order (the first failure is the answer;
//! everything before the certificate needs no call): the five `PAYPAL-*` transmission headers
//! are present and well formed (a signature as long as an RSA key); `PAYPAL-AUTH-ALGO` names
//! SHA-256 or stronger with RSA; `PAYPAL-TRANSMISSION-TIME` is within the tolerance of the
//! clock; a webhook id is configured; `PAYPAL-CERT-URL` is PayPal's certificate path under an
//! allowed prefix (`cert_url`); the certificate it serves (`fetch`: once per URL, kept for the
//! life of the process, a failure for 30 s) chains to a trusted root, is valid now and names a
//! `paypal.com` host as its subject CN; the RSA signature over
//! `transmission_id|transmission_time|webhook_id|crc32(body)` verifies with its key; and the
//! transmission id is new or was accepted with this same body (the signature covers only the
//! body's CRC-32). The `webhook_id` is ours (`PAYPAL_WEBHOOK_ID`), never taken from the delivery.
//!
//! A verified delivery is read and mapped onto the model by [`PaypalProvider`] (`translate`,
//! the ignored types in `ignored`).

pub mod api;
pub mod cert_url;
pub mod certs;
pub mod events;
pub mod fetch;
pub mod ignored;
mod provider;
pub mod settings;
pub mod translate;
pub mod transmission;
mod verifier;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod offline_tests;

pub use provider::{PaypalProvider, ENDPOINT, ROUTE};
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
    #[error("certificate URL is not PayPal's certificate path under an allowed prefix")]
    CertUrlNotAllowed,
    /// PayPal answered that no certificate is at the URL (404, 410): the sender named one that
    /// does not exist.
    #[error("PayPal has no certificate at the certificate URL")]
    CertNotFound,
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
    /// No `PAYPAL_WEBHOOK_ID`: no delivery can be for us, and nothing is fetched to find out.
    #[error("no webhook id configured")]
    NoWebhookId,
    /// The transmission id was accepted before with another body. The signature covers the
    /// body's CRC-32 only, so a captured signature could otherwise carry a body made to match it.
    #[error("transmission id already used with another body")]
    TransmissionReused,
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
