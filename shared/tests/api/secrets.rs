//! Endpoint secrets from Secrets Manager (moto): read at start, re-read after a miss.

use crate::helpers::*;
use billing::adapters::memory::InMemoryBillingStore;
use billing::adapters::secrets_manager::{ConfiguredSecrets, SecretSpec};
use billing::pipeline::{Outcome, Pipeline};
use billing::ports::{FixedClock, RefreshOutcome, SecretSource};
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::Family;
use billing::providers::stripe::{pipeline, StripeDelivery};
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
    service_with(secrets, Arc::new(Metrics::memory()))
}

fn service_with(secrets: Arc<ConfiguredSecrets>, metrics: Arc<Metrics>) -> Pipeline {
    pipeline(
        Arc::new(InMemoryBillingStore::new()),
        secrets,
        Arc::new(FixedClock::at(NOW)),
        metrics,
        settings(false),
    )
}

/// One family's secrets from `arn`, re-read at most every `min_refresh`.
fn from_arn(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    min_refresh: Duration,
) -> Arc<ConfiguredSecrets> {
    let specs = HashMap::from([(Family::Charge.endpoint(), SecretSpec::Arn(arn.to_owned()))]);
    Arc::new(ConfiguredSecrets::new(
        Some(client.clone()),
        specs,
        min_refresh,
    ))
}

async fn put(client: &aws_sdk_secretsmanager::Client, arn: &str, value: &str) {
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .send()
        .await
        .expect("put secret value");
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
    let specs = HashMap::from([(Family::Charge.endpoint(), SecretSpec::Arn(arn.clone()))]);
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
            .secrets(Family::Charge.endpoint())
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
    let specs = HashMap::from([(Family::Charge.endpoint(), SecretSpec::Arn(arn.clone()))]);
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
        Family::Charge.endpoint(),
        SecretSpec::Arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into()),
    )]);
    let bad = ConfiguredSecrets::new(Some(client), missing, Duration::ZERO);
    assert!(bad.preload().await.is_err());
}

#[tokio::test]
async fn moto_an_invalid_secret_value_stops_the_cold_start_naming_the_entry_not_the_value() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    for (value, why) in [
        (
            r#"["whsec_fine", "sk_live_NOT_A_WEBHOOK_SECRET"]"#,
            "entry 2 does not start with whsec_",
        ),
        (
            "whsec_fine,\nrk_live_NOT_A_WEBHOOK_SECRET",
            "entry 2 does not start with whsec_",
        ),
        // A key/value secret as the console creates it by default.
        (
            r#"{"stripe":"whsec_NOT_A_WEBHOOK_SECRET"}"#,
            "entry 1 does not start with whsec_",
        ),
        ("[]", "no secret in the list"),
        (" , ", "no secret in the list"),
    ] {
        let arn = secret(&client, value).await;
        let secrets = from_arn(&client, &arn, Duration::ZERO);
        let error = secrets
            .preload()
            .await
            .expect_err("an invalid value must stop the cold start")
            .to_string();
        assert!(error.contains(why), "{value:?}: {error}");
        assert!(error.contains(&arn), "names the secret id: {error}");
        assert!(
            error.contains("STRIPE_WEBHOOK_SECRETS_CHARGE_ARN"),
            "names the variable: {error}"
        );
        assert!(
            !error.contains("NOT_A_WEBHOOK_SECRET"),
            "leaks a value: {error}"
        );
        assert!(!error.contains("whsec_fine"), "leaks a value: {error}");
    }
}

#[tokio::test]
async fn moto_an_invalid_value_on_refresh_keeps_the_previous_secrets() {
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    let arn = secret(&client, "whsec_valid_one").await;
    let secrets = from_arn(&client, &arn, Duration::ZERO);
    secrets.preload().await.expect("cold start read");
    let svc = service(secrets.clone());
    // A botched rotation: the new value holds something that is not an endpoint secret.
    put(&client, &arn, "whsec_valid_two, sk_live_pasted_by_mistake").await;
    let (body, header) = delivery("evt_sm_bad_1", "whsec_valid_two");
    let outcome = svc
        .receive_stripe(Family::Charge, Some(&header), &body)
        .await;
    assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    assert_eq!(
        secrets.refresh(Family::Charge.endpoint()).await,
        Ok(RefreshOutcome::Unchanged)
    );
    assert_eq!(
        *secrets
            .secrets(Family::Charge.endpoint())
            .await
            .expect("secrets"),
        vec![WebhookSecret::new("whsec_valid_one")]
    );
    // Deliveries signed with the previous secret still verify.
    let (body, header) = delivery("evt_sm_bad_2", "whsec_valid_one");
    let outcome = svc
        .receive_stripe(Family::Charge, Some(&header), &body)
        .await;
    assert!(matches!(outcome, Outcome::Recorded { .. }), "{outcome:?}");
    // Once the value is fixed, the next re-read takes it.
    put(&client, &arn, "whsec_valid_one, whsec_valid_two").await;
    assert_eq!(
        secrets.refresh(Family::Charge.endpoint()).await,
        Ok(RefreshOutcome::Changed)
    );
    assert_eq!(
        secrets.refresh(Family::Charge.endpoint()).await,
        Ok(RefreshOutcome::Unchanged)
    );
}

/// `SecretRefreshes` counts re-reads of Secrets Manager, not signature misses.
#[tokio::test]
async fn moto_several_misses_within_the_interval_count_one_refresh() {
    use billing::telemetry::Counter;
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config());
    let arn = secret(&client, "whsec_only_one").await;
    let secrets = from_arn(&client, &arn, Duration::from_secs(30));
    secrets.preload().await.expect("cold start read");
    let metrics = Arc::new(Metrics::memory());
    let svc = service_with(secrets.clone(), metrics.clone());
    let miss = |n: u32| {
        let svc = &svc;
        async move {
            let (body, header) = delivery(&format!("evt_sm_miss_{n}"), "whsec_wrong_one");
            let outcome = svc
                .receive_stripe(Family::Charge, Some(&header), &body)
                .await;
            assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
        }
    };
    // Right after the cold-start read: misses, and no re-read.
    miss(1).await;
    miss(2).await;
    assert_eq!(metrics.count(Counter::SecretRefresh), 0);
    // 31 s later (tokio's clock stepped, no I/O while it is paused): the first miss re-reads,
    // the next ones fall inside the new interval.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(31)).await;
    tokio::time::resume();
    for n in 3..6 {
        miss(n).await;
    }
    assert_eq!(metrics.count(Counter::SecretRefresh), 1);
    assert_eq!(
        secrets.refresh(Family::Charge.endpoint()).await,
        Ok(RefreshOutcome::NotDue)
    );
}

/// Secrets Manager as a twin: serves `whsec_only_one` until told to fail, counting every read.
#[derive(Default)]
struct FailingReader {
    reads: std::sync::atomic::AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl billing::adapters::secrets_manager::SecretReader for FailingReader {
    async fn read(&self, _arn: &str) -> Result<String, billing::ports::SecretsError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.reads.fetch_add(1, SeqCst);
        if self.failing.load(SeqCst) {
            return Err(billing::ports::SecretsError("service unavailable".into()));
        }
        Ok("whsec_only_one".into())
    }
}

/// While Secrets Manager fails, forged deliveries are decided on the cached secrets (400), and
/// the failed re-read counts like any other: at most one read per interval, whatever the outcome.
#[tokio::test]
async fn a_failing_secret_store_is_read_once_per_interval_and_forgeries_get_400() {
    use std::sync::atomic::Ordering::SeqCst;
    let reader = Arc::new(FailingReader::default());
    let specs = HashMap::from([(
        Family::Charge.endpoint(),
        SecretSpec::Arn("arn:twin".into()),
    )]);
    let secrets = Arc::new(ConfiguredSecrets::with_reader(
        Some(reader.clone()),
        specs,
        Duration::from_secs(30),
    ));
    secrets.preload().await.expect("cold start read");
    let svc = service(secrets.clone());
    reader.failing.store(true, SeqCst);
    let forged = |n: u32| {
        let svc = &svc;
        async move {
            let (body, header) = delivery(&format!("evt_forged_{n}"), "whsec_forged");
            svc.receive_stripe(Family::Charge, Some(&header), &body)
                .await
        }
    };
    for interval in 1..=2 {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(31)).await;
        tokio::time::resume();
        for n in 0..20 {
            let outcome = forged(interval * 100 + n).await;
            assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
        }
        // The cold-start read, then one re-read per interval.
        assert_eq!(reader.reads.load(SeqCst), 1 + interval as usize);
    }
    // The cached secrets still serve genuine deliveries.
    let (body, header) = delivery("evt_genuine_during_outage", "whsec_only_one");
    let outcome = svc
        .receive_stripe(Family::Charge, Some(&header), &body)
        .await;
    assert!(matches!(outcome, Outcome::Recorded { .. }), "{outcome:?}");
}
