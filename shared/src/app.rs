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
    pub metrics: Arc<Metrics>,
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
            config.retention(),
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
        let metrics = Arc::new(metrics);
        let service = Arc::new(crate::providers::stripe::pipeline(
            store.clone(),
            secrets,
            Arc::new(SystemClock),
            metrics.clone(),
            config.settings(),
        ));
        Ok(Self {
            service,
            store,
            queue,
            metrics,
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

/// The relay Lambda on the table's DynamoDB Stream: delivers outbox inserts to the feed queue
/// and answers which records to retry (the event source mapping reports batch item failures
/// and filters with `relay::STREAM_FILTER_PATTERN`).
pub async fn run_relay_lambda() -> Result<(), lambda_http::Error> {
    use aws_lambda_events::event::dynamodb::Event;
    use lambda_http::lambda_runtime::{run, service_fn, LambdaEvent};
    let config = Config::from_env(&[], None)?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let app = App::build(config, metrics).await?;
    let queue = app
        .queue
        .clone()
        .ok_or("BILLING_FEED_QUEUE_URL is not set")?;
    let (store, metrics) = (app.store.clone(), app.metrics.clone());
    run(service_fn(move |event: LambdaEvent<Event>| {
        let (store, queue, metrics) = (store.clone(), queue.clone(), metrics.clone());
        async move {
            let response = crate::relay::handle_stream_batch(
                store.as_ref(),
                queue.as_ref(),
                metrics.as_ref(),
                &event.payload,
            )
            .await;
            Ok::<_, lambda_http::Error>(response)
        }
    }))
    .await
}
