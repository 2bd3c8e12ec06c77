//! PayPal's signing certificate: its chain to a trusted root and its validity at the clock's
//! time (webpki), its subject CN (a `paypal.com` host), and the transmission's RSA signature
//! under its key.

use super::transmission::AuthAlgo;
use super::PaypalRejection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::time::Duration;
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::der::Decode;

/// The built-in roots (see `roots/PROVENANCE.md`).
const BUILT_IN_ROOTS: [&[u8]; 4] = [
    include_bytes!("roots/DigiCert_High_Assurance_EV_Root_CA.pem"),
    include_bytes!("roots/DigiCert_SHA2_Extended_Validation_Server_CA.pem"),
    include_bytes!("roots/DigiCert_Global_Root_CA.pem"),
    include_bytes!("roots/DigiCert_Global_Root_G2.pem"),
];

/// Most certificates read from one PEM document: a leaf and its intermediates are a handful.
const MAX_CERTS: usize = 8;

/// The subject CN's object identifier (`2.5.4.3`, RFC 4519 `cn`).
const COMMON_NAME: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");

/// The certificates a PayPal certificate must chain to (`PAYPAL_TRUST_ROOTS`, or built in).
#[derive(Debug, Clone)]
pub struct TrustRoots {
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustRoots {
    /// Every certificate in a PEM document as a trust anchor; an error when it holds none or
    /// one that cannot be read.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let mut anchors = Vec::new();
        for (n, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let cert = cert.map_err(|e| format!("certificate {} is not PEM ({e})", n + 1))?;
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| format!("certificate {} cannot be a trust root ({e})", n + 1))?;
            anchors.push(anchor.to_owned());
        }
        if anchors.is_empty() {
            return Err("no certificate in the file".into());
        }
        Ok(Self { anchors })
    }

    /// DigiCert's roots PayPal's signing certificates chain to, compiled in.
    pub fn built_in() -> Self {
        let mut anchors = Vec::new();
        for pem in BUILT_IN_ROOTS {
            let roots = Self::from_pem(pem).expect("the built-in roots are valid");
            anchors.extend(roots.anchors);
        }
        Self { anchors }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// What a certificate URL served: the leaf first, then any intermediates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBundle {
    leaf: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
}

impl CertBundle {
    /// Reads a PEM document of one to `MAX_CERTS` certificates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, PaypalRejection> {
        let mut certs = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            if certs.len() == MAX_CERTS {
                return Err(PaypalRejection::CertUnreadable);
            }
            certs.push(cert.map_err(|_| PaypalRejection::CertUnreadable)?);
        }
        if certs.is_empty() {
            return Err(PaypalRejection::CertUnreadable);
        }
        let leaf = certs.remove(0);
        Ok(Self {
            leaf,
            intermediates: certs,
        })
    }

    /// Checks the certificate at `now` (Unix seconds) and the signature over `message` with
    /// its key. In order: the chain to `roots` with the validity of every certificate in it,
    /// the subject CN, then the signature.
    pub fn verify(
        &self,
        roots: &TrustRoots,
        now: i64,
        algo: AuthAlgo,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), PaypalRejection> {
        let leaf =
            EndEntityCert::try_from(&self.leaf).map_err(|_| PaypalRejection::CertUnreadable)?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0).unsigned_abs()));
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &roots.anchors,
            &self.intermediates,
            time,
            // Required only if the certificate lists key usages (PayPal's lists TLS server).
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(chain_rejection)?;
        check_common_name(&self.leaf)?;
        leaf.verify_signature(algo.webpki(), message, signature)
            .map_err(|_| PaypalRejection::SignatureMismatch)
    }
}

/// webpki's reason, as ours.
fn chain_rejection(e: webpki::Error) -> PaypalRejection {
    match e {
        // No issuer by name among the roots and intermediates, or one by name whose key did
        // not sign it (a rogue CA copying a trusted CA's name): either way no trusted chain.
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            PaypalRejection::CertUntrusted
        }
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            PaypalRejection::CertNotValidNow
        }
        other => PaypalRejection::CertInvalid(webpki_kind(&other)),
    }
}

/// The error's variant name only (its fields can hold certificate contents).
fn webpki_kind(e: &webpki::Error) -> String {
    let debug = format!("{e:?}");
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    debug[..end].to_owned()
}

/// The subject has exactly one CN, and it is `paypal.com` or a host under it.
fn check_common_name(der: &CertificateDer<'_>) -> Result<(), PaypalRejection> {
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .map_err(|_| PaypalRejection::CertUnreadable)?;
    let mut names = cert
        .tbs_certificate()
        .subject()
        .iter()
        .filter(|atv| atv.oid == COMMON_NAME);
    let (Some(cn), None) = (names.next(), names.next()) else {
        return Err(PaypalRejection::CertNoCommonName);
    };
    let cn = x509_cert::ext::pkix::name::DirectoryString::try_from(&cn.value)
        .map(String::from)
        .map_err(|_| PaypalRejection::CertNotPaypal)?;
    if is_paypal_host(&cn) {
        Ok(())
    } else {
        Err(PaypalRejection::CertNotPaypal)
    }
}

/// `paypal.com` or `<labels>.paypal.com`, ASCII letters, digits and hyphens only (a leading
/// `*.` wildcard label allowed). `paypal.com.evil.example`, `evilpaypal.com` and names with
/// other characters are not.
pub fn is_paypal_host(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let Some(sub) = name.strip_suffix("paypal.com") else {
        return false;
    };
    if sub.is_empty() {
        return true;
    }
    let Some(sub) = sub.strip_suffix('.') else {
        return false;
    };
    let sub = sub.strip_prefix("*.").unwrap_or(sub);
    sub == "*"
        || sub.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paypal_hosts_and_look_alikes() {
        for ok in [
            "paypal.com",
            "messageverificationcerts.paypal.com",
            "messageverificationcerts.sandbox.paypal.com",
            "MessageVerificationCerts.PayPal.com",
            "*.paypal.com",
            "*.sandbox.paypal.com",
        ] {
            assert!(is_paypal_host(ok), "{ok}");
        }
        for bad in [
            "paypal.com.evil.example",
            "evilpaypal.com",
            "paypal.co",
            "paypal.com.",
            ".paypal.com",
            "a..paypal.com",
            "evil.example/paypal.com",
            "evil example.paypal.com",
            "evil\0.paypal.com",
            "a.*.paypal.com",
            "",
        ] {
            assert!(!is_paypal_host(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_built_in_roots_load() {
        assert_eq!(TrustRoots::built_in().len(), 4);
        assert!(TrustRoots::from_pem(b"").is_err());
        assert!(TrustRoots::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        .is_err());
    }
}
