//! Wiring: builds the AWS clients and the service once, from a `Config`. Used by every Lambda
//! `main.rs` and by the local run, so both serve the same handler code.

use crate::adapters::dynamo::DynamoBillingStore;
use crate::adapters::secrets_manager::ConfiguredSecrets;
use crate::adapters::sqs::SqsQueue;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::ports::{Queue, SystemClock};
use crate::routing::Family;
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// What a process needs, built once at cold start.
pub struct App {
    pub service: Arc<Pipeline>,
    pub store: Arc<DynamoBillingStore>,
    pub queue: Option<Arc<dyn Queue>>,
    pub config: Config,
}

/// Shared AWS configuration from the standard variables (`AWS_ENDPOINT_URL` for moto).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

impl App {
    pub async fn build(config: Config, metrics: Metrics) -> Result<Self, String> {
        let sdk = aws_config().await;
        let store = Arc::new(DynamoBillingStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table.clone(),
            config.retention_secs(),
        ));
        let sm_client = config
            .uses_secrets_manager()
            .then(|| aws_sdk_secretsmanager::Client::new(&sdk));
        let secrets = Arc::new(ConfiguredSecrets::new(
            sm_client,
            config.secrets.clone(),
            Duration::from_secs(30),
        ));
        secrets.preload().await.map_err(|e| e.to_string())?;
        let queue: Option<Arc<dyn Queue>> = config.feed_queue_url.as_ref().map(|url| {
            Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url.clone())) as Arc<dyn Queue>
        });
        let service = Arc::new(crate::providers::stripe::pipeline(
            store.clone(),
            secrets,
            Arc::new(SystemClock),
            Arc::new(metrics),
            config.settings(),
        ));
        Ok(Self {
            service,
            store,
            queue,
            config,
        })
    }
}

/// The body of every Stripe Lambda's `main`: config → clients → router → lambda_http.
pub async fn run_stripe_lambda(family: Family) -> Result<(), lambda_http::Error> {
    let config = Config::from_env(&[family], None)?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let app = App::build(config, metrics).await?;
    let router = crate::http::webhook_router(app.service.clone(), &[family]);
    lambda_http::run(router).await
}

/// The relay Lambda on the table's DynamoDB Stream: delivers outbox inserts to the feed queue.
pub async fn run_relay_lambda() -> Result<(), lambda_http::Error> {
    let config = Config::from_env(&[], None)?;
    crate::telemetry::init(config.log_json);
    let app = App::build(
        config,
        Metrics::Emf {
            namespace: "BillingWebhooks".into(),
        },
    )
    .await?;
    let queue = app
        .queue
        .clone()
        .ok_or("BILLING_FEED_QUEUE_URL is not set")?;
    let store = app.store.clone();
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
            let (store, queue) = (store.clone(), queue.clone());
            async move {
                Ok::<_, lambda_http::Error>(
                    crate::relay::handle_stream_batch(
                        store.as_ref(),
                        queue.as_ref(),
                        &event.payload,
                    )
                    .await,
                )
            }
        },
    ))
    .await
}
