//! Issue 7, point 5: every 5xx says why in the log — the error's kind and the event id — and
//! never the body, a secret or an email address.

use crate::helpers::*;
use billing::adapters::faults::Step;
use http::StatusCode;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_503_logs_its_kind_and_event_id_and_no_payload() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .finish();
    // The test's runtime is single-threaded: the guard covers every await below.
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_memory(false);
    app.faults.fail_next(Step::Load);
    // An invoice event: its body carries the customer's email address.
    let rel = "stripe/lifecycle/04_invoice.payment_failed.json";
    let (status, json) = app.post_fixture(rel).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(
        json["error"], "temporarily unavailable; retry",
        "no detail to the caller"
    );
    let text = String::from_utf8(logs.0.lock().expect("log lock").clone()).expect("utf8");
    let line = text
        .lines()
        .find(|l| l.contains("answering 503"))
        .unwrap_or_else(|| panic!("no 503 line in the log:\n{text}"));
    assert!(line.contains(r#""kind":"transient""#), "{line}");
    assert!(
        line.contains("evt_life_04_invoice_payment_failed"),
        "{line}"
    );
    assert!(
        line.contains("injected fault"),
        "the cause is named: {line}"
    );
    // Nothing of the payload, the signing secret or the customer's email reaches the log.
    let body = String::from_utf8(fixture(rel)).expect("utf8");
    assert!(body.contains('@'), "the fixture carries an email address");
    for needle in [SECRET, "@", "\"items\""] {
        assert!(!text.contains(needle), "`{needle}` in the log:\n{text}");
    }
    assert!(
        !text.contains(&body[..200]),
        "a piece of the body in the log"
    );
}
