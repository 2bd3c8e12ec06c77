//! `billing`: the local run and the operator's commands.
//!
//! ```text
//! billing local                       serve all endpoints on BILLING_LOCAL_ADDR (moto behind it)
//! billing send FILE [--family F] [--url URL] [--secret whsec_…] [--at UNIX]
//! billing replay (--all | EVENT_ID)   re-apply parked events through the same pipeline
//! billing parked                      list parked events
//! billing relay [--once]              deliver pending outbox messages to BILLING_FEED_QUEUE_URL
//! billing create-table                create BILLING_TABLE (local runs and tests)
//! billing lambda-event FILE --family F [--secret S] [--base64]   print an API Gateway event
//! ```

mod dev;

use billing::app::App;
use billing::config::Config;
use billing::domain::ids::{EventId, Provider};
use billing::http::{ledger_json, local_router};
use billing::ports::BillingStore;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::translate::family_of;
use billing::relay;
use billing::routing::Family;
use billing::service::Outcome;
use billing::telemetry::Metrics;
use std::process::ExitCode;
use std::time::Duration;

type CliResult = Result<(), String>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("local") => local().await,
        Some("send") => send(&args[1..]).await,
        Some("replay") => replay(&args[1..]).await,
        Some("parked") => parked().await,
        Some("relay") => relay_cmd(&args[1..]).await,
        Some("create-table") => create_table().await,
        Some("lambda-event") => lambda_event(&args[1..]),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("billing: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: billing (local | send FILE [--family F] [--url URL] [--secret S] [--at UNIX] | replay (--all | EVENT_ID) | parked | relay [--once] | create-table | lambda-event FILE --family F [--secret S] [--base64])";

/// `--name value` from an argument list.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn positional(args: &[String]) -> Option<&str> {
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = !matches!(a.as_str(), "--all" | "--once" | "--base64");
        } else {
            return Some(a);
        }
    }
    None
}

/// Builds the app from the environment, with development defaults where a variable is unset.
async fn build_app(metrics: Metrics) -> Result<App, String> {
    let defaults = dev::defaults()?;
    let config = Config::from_env(&Family::ALL, Some(&defaults)).map_err(|e| e.to_string())?;
    billing::telemetry::init(config.log_json);
    App::build(config, metrics).await
}

async fn local() -> CliResult {
    let mut app = build_app(Metrics::Emf {
        namespace: "BillingWebhooksLocal".into(),
    })
    .await?;
    if app
        .store
        .create_table_if_missing()
        .await
        .map_err(|e| e.to_string())?
    {
        println!("created table {}", app.config.table);
    }
    if app.queue.is_none() {
        let (queue, url) = dev::local_queue().await?;
        println!("feed queue: {url}");
        app.queue = Some(queue);
    }
    let addr = app.config.local_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    dev::print_banner(&app.config, addr)?;
    let (store, queue, metrics) = (app.store.clone(), app.queue.clone(), app.metrics.clone());
    tokio::spawn(async move {
        // The local stand-in for the DynamoDB Streams relay: the same `deliver` code, polled.
        let Some(queue) = queue else { return };
        loop {
            if let Err(e) = relay::drain(store.as_ref(), queue.as_ref(), &metrics, 100).await {
                tracing::warn!(error = %e, "relay pass failed");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    axum::serve(listener, local_router(app.service.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

fn read_fixture(path: &str) -> Result<(Vec<u8>, Family), String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let env = Envelope::parse(&body).map_err(|e| format!("{path}: {e}"))?;
    Ok((body, family_of(&env.event_type)))
}

fn secret_for(args: &[String], family: Family) -> Result<WebhookSecret, String> {
    if let Some(s) = flag(args, "--secret") {
        return Ok(WebhookSecret::new(s));
    }
    let var = format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix());
    if let Some(first) = std::env::var(&var)
        .ok()
        .as_deref()
        .and_then(|v| v.split(',').next())
    {
        return Ok(WebhookSecret::new(first.trim()));
    }
    let defaults = dev::defaults()?;
    defaults
        .secrets
        .get(&family)
        .map(|s| WebhookSecret::new(s.clone()))
        .ok_or_else(|| format!("no secret for {family}: pass --secret or set {var}"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fixture's exact bytes, the family they go to and their Stripe-Signature header.
struct Signed {
    body: Vec<u8>,
    family: Family,
    header: String,
    at: i64,
}

/// Reads `FILE [--family F] [--secret S] [--at UNIX]` and signs the file's bytes.
fn signed_fixture(args: &[String]) -> Result<Signed, String> {
    let path = positional(args).ok_or(USAGE)?;
    let (body, home) = read_fixture(path)?;
    let family = match flag(args, "--family") {
        Some(f) => f.parse()?,
        None => home,
    };
    let secret = secret_for(args, family)?;
    let at = match flag(args, "--at") {
        Some(t) => t.parse().map_err(|_| "--at takes Unix seconds")?,
        None => now(),
    };
    let header = sign(&body, &[secret], at);
    Ok(Signed {
        body,
        family,
        header,
        at,
    })
}

/// Signs a fixture file's exact bytes and posts it to a running endpoint.
async fn send(args: &[String]) -> CliResult {
    let Signed {
        body,
        family,
        header,
        ..
    } = signed_fixture(args)?;
    let url = match flag(args, "--url") {
        Some(u) => u.to_owned(),
        None => {
            let addr =
                std::env::var("BILLING_LOCAL_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
            format!("http://{addr}/webhooks/stripe/{family}")
        }
    };
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{} {text}", status.as_u16());
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("endpoint answered {status}"))
    }
}

async fn replay(args: &[String]) -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let ids: Vec<EventId> = if args.iter().any(|a| a == "--all") {
        let parked = app.store.parked(1000).await.map_err(|e| e.to_string())?;
        parked.into_iter().map(|r| r.event_id).collect()
    } else {
        vec![EventId::new(positional(args).ok_or(USAGE)?)]
    };
    let mut failures = 0;
    for id in ids {
        let outcome = app.service.replay(Provider::Stripe, &id).await;
        let line = match &outcome {
            Outcome::Recorded { state, .. } => state.as_str().to_owned(),
            Outcome::Duplicate { .. } => "not parked (nothing to do)".to_owned(),
            Outcome::Rejected(r) => format!("rejected: {r}"),
            Outcome::Unavailable(e) => {
                failures += 1;
                format!("failed: {e}")
            }
        };
        println!("{id}: {line}");
    }
    if failures > 0 {
        return Err(format!("{failures} replay(s) failed"));
    }
    Ok(())
}

async fn parked() -> CliResult {
    let app = build_app(Metrics::Off).await?;
    for r in app.store.parked(1000).await.map_err(|e| e.to_string())? {
        println!("{}", ledger_json(&r));
    }
    Ok(())
}

async fn relay_cmd(args: &[String]) -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let queue = app
        .queue
        .clone()
        .ok_or("BILLING_FEED_QUEUE_URL is not set")?;
    loop {
        let report = relay::drain(app.store.as_ref(), queue.as_ref(), &app.metrics, 100)
            .await
            .map_err(|e| e.to_string())?;
        if report.sent + report.failed > 0 {
            println!("sent {} failed {}", report.sent, report.failed);
        }
        if args.iter().any(|a| a == "--once") {
            return if report.failed == 0 {
                Ok(())
            } else {
                Err("some messages failed".into())
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn create_table() -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let created = app
        .store
        .create_table_if_missing()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{} {}",
        app.config.table,
        if created { "created" } else { "exists" }
    );
    Ok(())
}

/// Prints an API Gateway HTTP API (v2) event whose body is the fixture, signed now: the
/// format `sam local invoke` and `cargo lambda invoke --data-file` take.
fn lambda_event(args: &[String]) -> CliResult {
    let Signed {
        body,
        family,
        header,
        at,
    } = signed_fixture(args)?;
    let event = dev::api_gateway_event(
        family,
        &body,
        &header,
        at,
        args.iter().any(|a| a == "--base64"),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?
    );
    Ok(())
}
