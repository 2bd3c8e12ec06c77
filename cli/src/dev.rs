//! Development defaults for the local run: generated endpoint secrets (kept in a file outside
//! version control so `send` can sign with them), a local feed queue, and sample events.

use base64::Engine;
use billing::config::{Config, DevDefaults};
use billing::ports::Queue;
use billing::routing::Family;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where generated development state lives (`BILLING_STATE_DIR`, default `.local/`).
fn state_dir() -> PathBuf {
    std::env::var_os("BILLING_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".local"))
}

/// Development secrets: generated once per checkout and reused by `local` and `send`.
pub fn defaults() -> Result<DevDefaults, String> {
    let dir = state_dir();
    let path = dir.join("dev-secrets.json");
    let secrets: HashMap<Family, String> = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        Err(_) => {
            let mut rng = rand::rng();
            let secrets: HashMap<Family, String> = Family::ALL
                .into_iter()
                .map(|f| {
                    let bytes: [u8; 24] = rng.random();
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    (f, format!("whsec_dev_{hex}"))
                })
                .collect();
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let json = serde_json::to_vec_pretty(&secrets).map_err(|e| e.to_string())?;
            std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
            secrets
        }
    };
    Ok(DevDefaults {
        table: "billing-local".into(),
        secrets,
    })
}

/// Creates (or finds) the local feed queue in the emulator.
pub async fn local_queue() -> Result<(Arc<dyn Queue>, String), String> {
    let sdk = billing::app::aws_config().await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let url = client
        .create_queue()
        .queue_name("billing-feed-local")
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot create the local feed queue: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let queue = billing::adapters::sqs::SqsQueue::new(client, url.clone());
    Ok((Arc::new(queue), url))
}

/// What the local run prints at start: where it listens, its secrets, how to send a sample.
pub fn print_banner(config: &Config, addr: SocketAddr) -> Result<(), String> {
    let defaults = defaults()?;
    println!("billing webhooks listening on http://{addr}");
    for family in Family::ALL {
        let from_env =
            std::env::var(format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix())).is_ok();
        let shown = if from_env {
            "(from environment)".to_owned()
        } else {
            defaults.secrets.get(&family).cloned().unwrap_or_default()
        };
        println!("  POST http://{addr}/webhooks/stripe/{family:<12}  secret {shown}");
    }
    println!("  GET  http://{addr}/events/stripe/{{event_id}}");
    println!("  GET  http://{addr}/users/{{user_id}}/access");
    println!("  GET  http://{addr}/users/{{user_id}}/billing");
    println!("  GET  http://{addr}/users/{{user_id}}/events");
    println!("table {} (livemode={})", config.table, config.livemode);
    println!("send a sample:  cargo run -q -p billing-cli -- send shared/tests/fixtures/stripe/lifecycle/01_checkout.session.completed.json");
    Ok(())
}

/// An API Gateway HTTP API (payload 2.0) request event carrying `body`.
pub fn api_gateway_event(
    family: Family,
    body: &[u8],
    signature: &str,
    at: i64,
    base64: bool,
) -> serde_json::Value {
    let path = format!("/webhooks/stripe/{family}");
    let (body, encoded) = if base64 {
        (base64::engine::general_purpose::STANDARD.encode(body), true)
    } else {
        (String::from_utf8_lossy(body).into_owned(), false)
    };
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": signature,
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "host": "example.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "example",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Stripe/1.0"
            },
            "requestId": format!("local-{at}"),
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": at * 1000
        },
        "body": body,
        "isBase64Encoded": encoded
    })
}
