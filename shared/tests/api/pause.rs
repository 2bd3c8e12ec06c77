//! Bounded waits (issue 12): the real app, its clients built with short bounds, against a
//! PRIVATE moto launcher that the test freezes (SIGSTOP) and resumes (SIGCONT). Freezing the
//! suite's shared launcher would stall every other test, so this one starts its own.

use crate::helpers::{call_router, fixture, receive_all, unique, SECRET};
use axum::body::Body;
use billing::app::{sdk_loader, with_deadline, App};
use billing::config::Config;
use billing::domain::ids::{CustomerId, EventId, Provider};
use billing::ports::{BillingStore, LedgerState, OutboxMessage};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::relay;
use billing::telemetry::Metrics;
use http::{Request, StatusCode};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto launcher of this test's own, on a free port; resumed and killed when dropped, even
/// when the test panics.
struct Launcher {
    child: Child,
    url: String,
}

impl Launcher {
    fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("repository root")
            .to_path_buf();
        let python = root.join(".venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root.join("scripts/moto_server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/ensure-venv)", python.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the `moto ready on URL` line, then keeps draining so the launcher never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("moto ready on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut launcher = Self {
            child,
            url: String::new(),
        };
        launcher.url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the private moto launcher did not become ready within 60 s");
        launcher
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The product's wiring (`App::with_sdk`, `sdk_loader`, `with_deadline`) against `url`,
/// configured through the same variables as on Lambda, with short bounds so the test is quick:
/// a call that gets no answer fails after 2.5 s (two attempts of at most 1.5 s).
async fn wire(url: &str) -> (App, axum::Router, aws_sdk_sqs::Client, String) {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let mut vars: HashMap<String, String> = [
        ("BILLING_TABLE", unique("paused").as_str()),
        ("STRIPE_LIVEMODE", "false"),
        ("BILLING_AWS_CONNECT_TIMEOUT_MS", "500"),
        ("BILLING_AWS_ATTEMPT_TIMEOUT_MS", "1500"),
        ("BILLING_AWS_TIMEOUT_MS", "2500"),
        ("BILLING_AWS_MAX_ATTEMPTS", "2"),
        ("BILLING_DELIVERY_TIMEOUT_MS", "8000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for family in Family::ALL {
        let name = format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix());
        vars.insert(name, SECRET.to_owned());
    }
    let probe = Config::from_lookup(|k| vars.get(k).cloned(), &Family::ALL, None).expect("config");
    let sdk = sdk_loader(&probe.bounds)
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("paused-feed"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    vars.insert("BILLING_FEED_QUEUE_URL".into(), queue_url.clone());
    let config = Config::from_lookup(|k| vars.get(k).cloned(), &Family::ALL, None).expect("config");
    let deadline = config.delivery_timeout;
    let app = App::with_sdk(&sdk, config, Metrics::memory())
        .await
        .expect("app");
    app.store.create_table_if_missing().await.expect("table");
    let router = with_deadline(billing::http::local_router(app.service.clone()), deadline);
    (app, router, sqs, queue_url)
}

/// POSTs a fixture, signed now with the suite's secret; the answer and how long it took.
async fn deliver(router: &axum::Router, rel: &str) -> (StatusCode, Value, Duration) {
    let body = fixture(rel);
    let env = billing::providers::stripe::event::Envelope::parse(&body).expect("envelope");
    let family = billing::providers::stripe::translate::family_of(&env.event_type);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let header = sign(&body, &[WebhookSecret::new(SECRET)], now);
    let request = Request::post(format!("/webhooks/stripe/{family}"))
        .header("stripe-signature", header)
        .body(Body::from(body))
        .expect("request");
    let started = Instant::now();
    let (status, json) = call_router(router, request).await;
    (status, json, started.elapsed())
}

/// Applied before the pause; the subscription leaves an access change in the outbox.
const BEFORE: [&str; 2] = [
    "stripe/lifecycle/01_checkout.session.completed.json",
    "stripe/lifecycle/02_customer.subscription.created.json",
];
const PAUSED: &str = "stripe/lifecycle/03_invoice.paid.json";
const PAUSED_ID: &str = "evt_life_03_invoice_paid";

#[tokio::test]
async fn moto_paused_stand_in_answers_503_within_the_bound_then_applies_once() {
    let launcher = Launcher::start();
    let (app, router, sqs, queue_url) = wire(&launcher.url).await;
    for rel in BEFORE {
        let (status, body, _) = deliver(&router, rel).await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{rel}"
        );
    }
    let before_pause: Vec<OutboxMessage> = app
        .store
        .pending_outbox(100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|m| m.expect("readable outbox message"))
        .collect();
    assert!(!before_pause.is_empty(), "a message waits for the relay");

    launcher.signal("STOP");
    let (status, _, elapsed) = deliver(&router, PAUSED).await;
    eprintln!(
        "paused stand-in: delivery answered {status} after {} ms",
        elapsed.as_millis()
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Not a speed assertion: only that the answer comes from our bounds (2.5 s here), not
    // from a hang until the Lambda or API Gateway timeout.
    assert!(elapsed < Duration::from_secs(25), "{elapsed:?}");
    let report = relay::deliver(
        app.store.as_ref(),
        app_queue(&app),
        &app.metrics,
        &before_pause[..1],
    )
    .await;
    assert_eq!(
        (report.sent, report.failed),
        (0, 1),
        "a send that times out is a failure"
    );
    assert!(
        relay::drain(app.store.as_ref(), app_queue(&app), &app.metrics, 100)
            .await
            .is_err()
    );
    // A Lambda starting now: the warm-up fails within the bound and start-up goes on.
    app.warm_up().await;
    launcher.signal("CONT");

    resumed(&app, &router).await;
    let pending: BTreeSet<String> = app
        .store
        .pending_outbox(100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|m| m.expect("readable outbox message").id)
        .collect();
    assert!(
        before_pause.iter().all(|m| pending.contains(&m.id)),
        "nothing lost in the pause"
    );
    let report = relay::drain(app.store.as_ref(), app_queue(&app), &app.metrics, 100)
        .await
        .expect("drain");
    assert_eq!((report.sent, report.failed), (pending.len(), 0));
    // At least once: a send that timed out in the pause may have arrived too; count by id.
    let received: BTreeSet<String> = receive_all(&sqs, &queue_url)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert!(pending.is_subset(&received), "{pending:?} ⊄ {received:?}");
    assert!(app
        .store
        .pending_outbox(100)
        .await
        .expect("outbox")
        .is_empty());
}

fn app_queue(app: &App) -> &dyn billing::ports::Queue {
    app.queue.as_deref().expect("feed queue configured")
}

/// After SIGCONT: the paused event was not recorded; its redelivery applies it exactly once.
async fn resumed(app: &App, router: &axum::Router) {
    let id = EventId::new(PAUSED_ID);
    let ledger = app
        .store
        .ledger(Provider::STRIPE, &id)
        .await
        .expect("ledger");
    assert!(ledger.is_none(), "a 503 recorded nothing: {ledger:?}");
    let (status, body, _) = deliver(router, PAUSED).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    let (status, body, _) = deliver(router, PAUSED).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    let record = app
        .store
        .ledger(Provider::STRIPE, &id)
        .await
        .expect("ledger");
    assert_eq!(record.map(|r| r.state), Some(LedgerState::Applied));
    let audit = app
        .store
        .audit(Provider::STRIPE, &CustomerId::new("cus_life1"), 100)
        .await
        .expect("audit");
    assert_eq!(audit.iter().filter(|a| a.event_id == id).count(), 1);
}
