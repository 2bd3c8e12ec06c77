//! Development defaults for the local run: generated endpoint secrets (kept in a file outside
//! version control so `send` can sign with them), a local feed queue, and sample events.

use base64::Engine;
use billing::adapters::dynamo::{item_size, outbox_item, stream_image};
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::config::{Config, DevDefaults};
use billing::pipeline::Outcome;
use billing::ports::{BillingStore, FixedClock, OutboxMessage, PendingOutbox, Queue};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::telemetry::Metrics;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Development secrets, each family's and each family's Connect endpoint's: generated once per
/// checkout and reused by `local` and `send`.
pub fn defaults() -> Result<DevDefaults, String> {
    let dir = crate::settings::state_dir();
    Ok(DevDefaults {
        table: "billing-local".into(),
        secrets: generated(&dir.join("dev-secrets.json"), "whsec_dev_")?,
        connect_secrets: generated(&dir.join("dev-connect-secrets.json"), "whsec_dev_connect_")?,
    })
}

/// The secrets stored at `path`, or new ones (`prefix` and 48 random hex digits) stored there.
fn generated(path: &std::path::Path, prefix: &str) -> Result<HashMap<Family, String>, String> {
    if let Ok(bytes) = std::fs::read(path) {
        return serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()));
    }
    let mut rng = rand::rng();
    let secrets: HashMap<Family, String> = Family::ALL
        .into_iter()
        .map(|f| {
            let bytes: [u8; 24] = rng.random();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (f, format!("{prefix}{hex}"))
        })
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(&secrets).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secrets)
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
        let from_env = crate::settings::inline_webhook_secrets(family).is_some();
        let shown = if from_env {
            "(from environment)".to_owned()
        } else {
            defaults.secrets.get(&family).cloned().unwrap_or_default()
        };
        println!("  POST http://{addr}/webhooks/stripe/{family:<12}  secret {shown}");
    }
    for family in Family::ALL {
        let shown = if crate::settings::inline_connect_secrets(family).is_some() {
            "(from environment)".to_owned()
        } else {
            defaults
                .connect_secrets
                .get(&family)
                .cloned()
                .unwrap_or_default()
        };
        let route = format!("{family}/connect");
        println!("  POST http://{addr}/webhooks/stripe/{route:<20}  secret {shown}");
    }
    println!("  POST http://{addr}/webhooks/paypal              (PAYPAL_WEBHOOK_ID to verify)");
    println!("  GET  http://{addr}/events/{{stripe|paypal|system}}/{{event_id}}");
    println!("  GET  http://{addr}/users/{{user_id}}/access");
    println!("  GET  http://{addr}/users/{{user_id}}/billing");
    println!("  GET  http://{addr}/users/{{user_id}}/events");
    println!("table {} (livemode={})", config.table, config.livemode);
    println!("send a sample:  cargo run -q -p billing-cli -- send shared/tests/fixtures/stripe/lifecycle/01_checkout.session.completed.json");
    Ok(())
}

/// An API Gateway HTTP API (payload 2.0) request event carrying `body`.
pub fn api_gateway_event(
    path: &str,
    body: &[u8],
    signature: &str,
    at: i64,
    base64: bool,
) -> serde_json::Value {
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

/// An API Gateway (HTTP API, payload 2.0) GET of a read route as API Gateway passes it once IAM
/// authorised the caller (the template's `AWS_IAM` authoriser): the caller's identity is in
/// `requestContext.authorizer.iam`, which the function does not read (the route is guarded
/// before it).
pub fn read_route_event(path_and_query: &str, at: i64) -> serde_json::Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "host": "example.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "authorizer": {"iam": {
                "accessKey": "AKIAEXAMPLE", "accountId": "123456789012",
                "callerId": "AIDAEXAMPLE", "principalOrgId": null,
                "userArn": "arn:aws:iam::123456789012:user/billing-reader", "userId": "AIDAEXAMPLE"
            }},
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "example",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "billing-read-sample"
            },
            "requestId": format!("local-read-{at}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": at * 1000
        },
        "isBase64Encoded": false
    })
}

/// The SQS event the emails function receives for the email jobs the last of `deliveries`
/// queues (applied in order at `at` to an empty model), one record per job, as the relay sends
/// them to the email queue.
pub async fn email_queue_event(
    deliveries: &[Delivery],
    at: i64,
) -> Result<serde_json::Value, String> {
    let jobs: Vec<OutboxMessage> = outbox_of(deliveries, at)
        .await?
        .into_iter()
        .filter(|m| m.kind == billing::emails::job::EMAIL_JOB_KIND)
        .collect();
    if jobs.is_empty() {
        return Err(
            "the last event queues no email job (by default only payment_action_required is on)"
                .into(),
        );
    }
    let records: Vec<serde_json::Value> = jobs
        .iter()
        .enumerate()
        .map(|(n, job)| {
            billing::adapters::sqs::lambda_record(
                &format!("local-email-{at}-{}", n + 1),
                &job.body.to_string(),
                at,
                "arn:aws:sqs:us-east-1:123456789012:billing-emails",
            )
        })
        .collect();
    Ok(serde_json::json!({ "Records": records }))
}

/// The PayPal webhook id of the local samples (`PAYPAL_WEBHOOK_ID` in lambda-invoke-check).
pub const PAYPAL_LOCAL_WEBHOOK_ID: &str = "LOCALINVOKE0000000";

/// A PayPal delivery of `body` (a fixture's exact bytes) to `POST /webhooks/paypal`, signed at
/// `at` the way PayPal signs (SHA256withRSA over `id|time|webhook_id|crc32(body)`) with a
/// local RSA key: `paypal-local.pk8` in `key_dir`, made there (with `paypal-local.pub.der`, the
/// public key `scripts/fake_paypal.py` verifies with in place of PayPal's
/// verify-webhook-signature API) when it does not exist. No PayPal certificate signs it, so
/// only that stand-in (or `PAYPAL_VERIFICATION=api` against it) accepts it.
pub fn paypal_gateway_event(
    body: &[u8],
    key_dir: &std::path::Path,
    at: i64,
) -> Result<serde_json::Value, String> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    let private = key_dir.join("paypal-local.pk8");
    if !private.exists() {
        std::fs::create_dir_all(key_dir).map_err(|e| format!("{}: {e}", key_dir.display()))?;
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
        let pkcs8 = pair.as_der().map_err(|_| "RSA key encoding failed")?;
        let public = pair
            .public_key()
            .as_der()
            .map_err(|_| "public key encoding failed")?;
        std::fs::write(&private, pkcs8.as_ref()).map_err(|e| e.to_string())?;
        std::fs::write(key_dir.join("paypal-local.pub.der"), public.as_ref())
            .map_err(|e| e.to_string())?;
    }
    let pkcs8 = std::fs::read(&private).map_err(|e| format!("{}: {e}", private.display()))?;
    let pair = KeyPair::from_pkcs8(&pkcs8).map_err(|e| format!("{}: {e}", private.display()))?;
    let id = format!("{:08x}-0000-4000-8000-{at:012}", crc32fast::hash(body));
    let time = rfc3339(at);
    let signed = format!(
        "{id}|{time}|{PAYPAL_LOCAL_WEBHOOK_ID}|{}",
        crc32fast::hash(body)
    );
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "RSA signing failed")?;
    let path = "/webhooks/paypal";
    Ok(serde_json::json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "paypal-auth-algo": "SHA256withRSA",
            "paypal-cert-url": "https://api.paypal.com/v1/notifications/certs/CERT-local-invoke-only",
            "paypal-transmission-id": id,
            "paypal-transmission-sig": base64::engine::general_purpose::STANDARD.encode(&sig),
            "paypal-transmission-time": time,
            "user-agent": "PayPal/AUHR-214.0-52392296",
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
                "userAgent": "PayPal/AUHR-214.0-52392296"
            },
            "requestId": format!("local-{at}"),
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": at * 1000
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    }))
}

/// `at` as RFC 3339 in UTC, whole seconds (PayPal's `transmission_time`).
fn rfc3339(at: i64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A Stripe event file's exact bytes and the family it is delivered to.
pub type Delivery = (Vec<u8>, Family);

/// The outbox messages the last of `deliveries` writes when they are applied in order at `at`
/// to an empty in-memory model with the default settings (a function without tier
/// configuration writes the same). The model signs and verifies with a secret of its own:
/// only the outcome matters here.
async fn outbox_of(deliveries: &[Delivery], at: i64) -> Result<Vec<OutboxMessage>, String> {
    let store = Arc::new(InMemoryBillingStore::new());
    let secret = WebhookSecret::new("whsec_stream_sample");
    let model = pipeline(
        store.clone(),
        Arc::new(StaticSecrets::everywhere(vec![secret.clone()])),
        Arc::new(FixedClock::at(at)),
        Arc::new(Metrics::Off),
        Settings::default(),
    )
    // The kinds a deployment queues unless BILLING_EMAILS says otherwise.
    .with_email_kinds(billing::emails::kinds::DEFAULT_KINDS.into_iter().collect());
    let mut pending: Vec<PendingOutbox> = Vec::new();
    for (body, family) in deliveries {
        // What the earlier deliveries wrote was relayed already.
        for item in pending.drain(..) {
            let id = match &item {
                Ok(OutboxMessage { id, .. }) => id,
                Err(bad) => &bad.id,
            };
            store.delete_outbox(id).await.map_err(|e| e.to_string())?;
        }
        let header = sign(body, std::slice::from_ref(&secret), at);
        match model.receive_stripe(*family, Some(&header), body).await {
            Outcome::Recorded { .. } => {}
            Outcome::Duplicate { .. } => return Err("an event was delivered twice".into()),
            Outcome::Rejected(why) => return Err(format!("an event was rejected: {why}")),
            Outcome::Unavailable(e) => return Err(format!("the model failed: {e}")),
        }
        pending = store
            .pending_outbox(1000)
            .await
            .map_err(|e| e.to_string())?;
    }
    pending
        .into_iter()
        .map(|item| {
            item.map_err(|bad| format!("outbox item {} unreadable: {}", bad.id, bad.reason))
        })
        .collect()
}

/// The DynamoDB Streams event (stream view NEW_IMAGE) the relay receives after the last of
/// `deliveries` is applied: one INSERT record per outbox item it writes, each image exactly as
/// the commit writes it.
pub async fn relay_stream_event(
    deliveries: &[Delivery],
    at: i64,
) -> Result<serde_json::Value, String> {
    let messages = outbox_of(deliveries, at).await?;
    if messages.is_empty() {
        return Err("the last event writes no outbox item: nothing would reach the relay".into());
    }
    let mut records = Vec::new();
    for (n, message) in messages.iter().enumerate() {
        let item = outbox_item(message).map_err(|e| e.to_string())?;
        let image = serde_json::to_value(stream_image(&item).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        // Stream sequence numbers are decimal strings that grow within a shard.
        let sequence = format!("{at}{:06}", n + 1);
        records.push(serde_json::json!({
            "eventID": format!("local-{sequence}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": at,
                "Keys": {"PK": image["PK"], "SK": image["SK"]},
                "NewImage": image,
                "SequenceNumber": sequence,
                "SizeBytes": item_size(&item),
                "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/billing/stream/2025-01-01T00:00:00.000"
        }));
    }
    Ok(serde_json::json!({ "Records": records }))
}
