//! The PayPal certificate fetcher against a local https server: it trusts exactly the roots
//! `SSL_CERT_FILE` names when that is set. Its own test binary, because it sets a process-wide
//! environment variable that no other test may read meanwhile.

use billing::bounds::CallBounds;
use billing::providers::paypal::fetch::{CertFetchError, CertFetcher, HttpsCertFetcher};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::Url;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::sync::Arc;

const DOCUMENT: &str = "-----BEGIN CERTIFICATE-----\nserved by the test server\n";

/// A CA (PEM) and an https server on 127.0.0.1 with a certificate it issued; the server
/// answers every connection with `DOCUMENT` until the process ends. Returns the CA and port.
fn serve() -> (String, u16) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "TLS test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .expect("server cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut request = [0u8; 4096];
            // A handshake the client aborts (an untrusted certificate) ends here.
            if tls.read(&mut request).is_err() {
                continue;
            }
            // `CERT-missing`: PayPal's 404; `CERT-broken`: a 503; anything else the document.
            let line = String::from_utf8_lossy(&request);
            let answer = if line.contains("/CERT-missing ") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            } else if line.contains("/CERT-broken ") {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{DOCUMENT}",
                    DOCUMENT.len()
                )
            };
            let _ = tls.write_all(answer.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (ca_pem, port)
}

#[tokio::test]
async fn the_fetcher_trusts_the_roots_named_by_ssl_cert_file() {
    let (ca_pem, port) = serve();
    let url = Url::parse(&format!(
        "https://127.0.0.1:{port}/v1/notifications/certs/C"
    ))
    .expect("url");
    let dir = std::env::temp_dir();
    let ours = dir.join(format!("paypal-tls-ca-{}.pem", std::process::id()));
    std::fs::write(&ours, &ca_pem).expect("write");
    let unrelated = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/providers/paypal/roots/DigiCert_Global_Root_G2.pem"
    );

    // Only an unrelated root in the file: the server's certificate is not trusted.
    std::env::set_var("SSL_CERT_FILE", unrelated);
    let fetcher = HttpsCertFetcher::new(CallBounds::default()).expect("client");
    let e = fetcher.fetch(&url).await.expect_err("untrusted server");
    assert!(e.to_string().contains("certificate fetch failed"), "{e}");

    // The test CA in the file: the same server is trusted and its document read.
    std::env::set_var("SSL_CERT_FILE", &ours);
    let fetcher = HttpsCertFetcher::new(CallBounds::default()).expect("client");
    let document = fetcher.fetch(&url).await.expect("trusted server");
    assert_eq!(document, DOCUMENT.as_bytes());

    // PayPal's 404 is told apart (the sender's fault: 400); a 503 is transient.
    let at = |name: &str| {
        Url::parse(&format!(
            "https://127.0.0.1:{port}/v1/notifications/certs/{name}"
        ))
        .expect("url")
    };
    assert_eq!(
        fetcher.fetch(&at("CERT-missing")).await,
        Err(CertFetchError::NotFound(404))
    );
    assert!(matches!(
        fetcher.fetch(&at("CERT-broken")).await,
        Err(CertFetchError::Unavailable(_))
    ));
    std::env::remove_var("SSL_CERT_FILE");
    std::fs::remove_file(ours).expect("clean up");
}
