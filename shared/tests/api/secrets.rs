//! Endpoint secrets from Secrets Manager (moto): read at start, re-read after a miss.

use crate::helpers::*;
use billing::adapters::memory::InMemoryBillingStore;
use billing::adapters::secrets_manager::{ConfiguredSecrets, SecretSpec};
use billing::pipeline::{Outcome, Pipeline};
use billing::ports::{FixedClock, SecretSource};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::{pipeline, StripeDelivery};
use billing::routing::Family;
use billing::telemetry::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

async fn secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    client
        .create_secret()
        .name(unique("stripe-secrets"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

fn service(secrets: Arc<ConfiguredSecrets>) -> Pipeline {
    pipeline(
        Arc::new(InMemoryBillingStore::new()),
        secrets,
        Arc::new(FixedClock::at(NOW)),
        Arc::new(Metrics::memory()),
        settings(false),
    )
}

fn delivery(id: &str, secret: &str) -> (Vec<u8>, String) {
    let body = event(
        id,
        "customer.updated",
        NOW,
        serde_json::json!({"id": "cus_sm", "object": "customer", "metadata": {}}),
    );
    let header = sign(&body, &[WebhookSecret::new(secret)], NOW);
    (body, header)
}

#[tokio::test]
async fn moto_a_rotation_in_secrets_manager_needs_no_redeploy() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    let arn = secret(&client, "whsec_old_one").await;
    let specs = HashMap::from([(Family::Charge, SecretSpec::Arn(arn.clone()))]);
    let secrets = Arc::new(ConfiguredSecrets::new(
        Some(client.clone()),
        specs,
        Duration::ZERO,
    ));
    secrets.preload().await.expect("cold start read");
    let svc = service(secrets.clone());
    let (body, header) = delivery("evt_sm_1", "whsec_old_one");
    assert!(matches!(
        svc.receive_stripe(Family::Charge, Some(&header), &body)
            .await,
        Outcome::Recorded { .. }
    ));
    // Rotation: Stripe now signs with both; the stored secret lists both.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"["whsec_old_one", "whsec_new_one"]"#)
        .send()
        .await
        .expect("rotate");
    let (body, header) = delivery("evt_sm_2", "whsec_new_one");
    let outcome = svc
        .receive_stripe(Family::Charge, Some(&header), &body)
        .await;
    assert!(matches!(outcome, Outcome::Recorded { .. }), "{outcome:?}");
    assert_eq!(
        secrets
            .secrets(Family::Charge)
            .await
            .expect("secrets")
            .len(),
        2
    );
}

#[tokio::test]
async fn moto_refreshes_are_rate_limited_and_a_bad_arn_fails_at_start() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    let arn = secret(&client, "whsec_a").await;
    let specs = HashMap::from([(Family::Charge, SecretSpec::Arn(arn.clone()))]);
    let secrets = Arc::new(ConfiguredSecrets::new(
        Some(client.clone()),
        specs,
        Duration::from_secs(3600),
    ));
    secrets.preload().await.expect("read");
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("whsec_b")
        .send()
        .await
        .expect("rotate");
    // Within the refresh interval a miss does not call Secrets Manager again: still rejected.
    let svc = service(secrets);
    let (body, header) = delivery("evt_sm_3", "whsec_b");
    assert!(matches!(
        svc.receive_stripe(Family::Charge, Some(&header), &body)
            .await,
        Outcome::Rejected(_)
    ));
    let missing = HashMap::from([(
        Family::Charge,
        SecretSpec::Arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into()),
    )]);
    let bad = ConfiguredSecrets::new(Some(client), missing, Duration::ZERO);
    assert!(bad.preload().await.is_err());
}
