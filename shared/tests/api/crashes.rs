//! Crashes: a failure after any write step leaves the event retryable, and the retry finishes
//! the work without doing anything twice.

use crate::helpers::*;
use billing::adapters::faults::Step;
use billing::adapters::memory::InMemoryQueue;
use billing::domain::ids::UserId;
use billing::providers::stripe::Family;
use billing::relay;
use http::StatusCode;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};

fn body() -> Vec<u8> {
    event(
        "evt_crash",
        "customer.subscription.created",
        NOW,
        subscription("sub_x", "cus_x", "active", Some("u_x")),
    )
}

#[tokio::test]
async fn a_failure_at_each_step_then_a_redelivery_ends_in_the_same_model() {
    let reference = spawn_memory(false);
    reference.post(Family::Subscription, &body()).await;
    let expected = reference
        .memory
        .as_ref()
        .expect("memory")
        .user(&UserId::new("u_x"))
        .expect("user");
    for step in [Step::Load, Step::CommitBefore, Step::CommitAfter] {
        let app = spawn_memory(false);
        app.faults.fail_next(step);
        let (status, _) = app.post(Family::Subscription, &body()).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{step:?}: the provider must retry"
        );
        let (status, json) = app.post(Family::Subscription, &body()).await;
        assert_eq!(status, StatusCode::OK, "{step:?}: {json}");
        let expect_state = if step == Step::CommitAfter {
            "duplicate"
        } else {
            "applied"
        };
        assert_eq!(json["state"], expect_state, "{step:?}");
        let user = app
            .memory
            .as_ref()
            .expect("memory")
            .user(&UserId::new("u_x"))
            .expect("user");
        assert_eq!(user.access, expected.access, "{step:?}");
        assert_eq!(user.feed_seq, 1, "{step:?}: exactly one change published");
        let queue = InMemoryQueue::default();
        relay::drain(app.store.as_ref(), &queue, &app.metrics, 100)
            .await
            .expect("drain");
        assert_eq!(
            queue.sent.lock().expect("lock").len(),
            1,
            "{step:?}: one feed message"
        );
    }
}

#[tokio::test]
async fn relay_failures_resend_with_the_same_id_and_never_lose_a_message() {
    for step in [Step::Send, Step::SendAfter, Step::DeleteOutbox] {
        let app = spawn_memory(false);
        app.post(Family::Subscription, &body()).await;
        let queue = billing::adapters::faults::FaultyQueue {
            inner: std::sync::Arc::new(InMemoryQueue::default()),
            plan: app.faults.clone(),
        };
        let inner = queue.inner.clone();
        app.faults.fail_next(step);
        let first = relay::drain(app.store.as_ref(), &queue, &app.metrics, 100)
            .await
            .expect("drain");
        assert_eq!(first.failed, 1, "{step:?}");
        let second = relay::drain(app.store.as_ref(), &queue, &app.metrics, 100)
            .await
            .expect("drain");
        assert_eq!(second.sent, 1, "{step:?}");
        let third = relay::drain(app.store.as_ref(), &queue, &app.metrics, 100)
            .await
            .expect("drain");
        assert_eq!(third.sent + third.failed, 0, "{step:?}: outbox empty");
        drop(inner);
    }
}

/// The crash server (an example of this crate) in its own process.
fn crash_server(args: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir
        .join("examples")
        .join(format!("crash_server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} missing: cargo test builds examples",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn crash server")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn wait_ready(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("crash server did not listen on {port}");
}

async fn post_to(port: u16, body: &[u8]) -> Result<(u16, String), String> {
    let header = billing::providers::stripe::signature::sign(
        body,
        &[billing::providers::stripe::signature::WebhookSecret::new(
            SECRET,
        )],
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    );
    let request = format!(
        "POST /webhooks/stripe/subscription HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nstripe-signature: {header}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {response:?}"))?;
    Ok((status, response))
}

#[tokio::test]
async fn moto_killing_the_process_between_steps_loses_nothing() {
    let store = moto_store().await;
    let table = store.table().to_owned();
    let (sqs, queue_url) = moto_queue("feed").await;
    let body = body();

    // 1. The process dies right after the commit, before it can answer.
    let port = free_port();
    let mut server = crash_server(&["serve", &table, &port.to_string(), "commit-after"]);
    wait_ready(port).await;
    let first = post_to(port, &body).await;
    assert!(
        first.is_err() || first.as_ref().is_ok_and(|(s, _)| *s >= 500),
        "no success answer: {first:?}"
    );
    let _ = server.wait();

    // 2. A new process gets the redelivery: already recorded, nothing applied twice.
    let port = free_port();
    let mut server = crash_server(&["serve", &table, &port.to_string()]);
    wait_ready(port).await;
    let (status, text) = post_to(port, &body).await.expect("redelivery");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("duplicate"), "{text}");
    let _ = server.kill();
    let _ = server.wait();

    // 3. The relay dies after sending, before deleting: the next pass sends the same id again.
    let mut relay = crash_server(&["relay", &table, &queue_url, "send-after"]);
    let _ = relay.wait();
    let mut relay = crash_server(&["relay", &table, &queue_url]);
    assert!(relay.wait().expect("relay").success());
    let ids: Vec<String> = receive_all(&sqs, &queue_url)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let distinct: BTreeSet<_> = ids.iter().collect();
    assert_eq!(
        ids.len(),
        2,
        "delivered at least once (twice here): {ids:?}"
    );
    assert_eq!(
        distinct.len(),
        1,
        "one stable id for the consumer to deduplicate by: {ids:?}"
    );
    use billing::ports::BillingStore;
    assert!(store.pending_outbox(10).await.expect("outbox").is_empty());
}
