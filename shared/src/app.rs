//! Wiring: builds the AWS clients and the pipeline once, from a `Config`. Used by every Lambda
//! `main.rs` and by the local run, so both serve the same handler code. Every client gets the
//! same bounded waits here (docs/ARCHITECTURE.md, "Bounded waits"), and the DynamoDB connection is opened
//! during init so the first delivery does not pay the TLS handshake.

use crate::adapters::dynamo::DynamoBillingStore;
use crate::adapters::paypal_transmissions::DynamoTransmissionGuard;
use crate::adapters::secrets_manager::{read_secret_string, ConfiguredSecrets};
use crate::adapters::sqs::SqsQueue;
use crate::adapters::stripe_api::{StripeApi, StripeApiKey};
use crate::adapters::stripe_v2::StripeV2Api;
use crate::bounds::CallBounds;
use crate::config::Config;
use crate::emails::kinds::EmailQueueing;
use crate::pipeline::{Outcome, Pipeline};
use crate::ports::{Clock, Queue, SystemClock};
use crate::providers::paypal::settings::{PaypalMode, PaypalSecretSpec, PaypalSettings};
use crate::providers::paypal::{PaypalProvider, PaypalVerifier};
use crate::providers::stripe::settings::ApiKeySpec;
use crate::providers::stripe::thin;
use crate::providers::stripe::Family;
use crate::providers::stripe::StripeProvider;
use crate::relay::RoutedQueue;
use crate::telemetry::Metrics;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
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

/// The SDK's timeouts for `bounds`: connect, each attempt, the whole operation.
pub fn timeout_config(bounds: &CallBounds) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(bounds.connect)
        .operation_attempt_timeout(bounds.attempt)
        .operation_timeout(bounds.operation)
        .build()
}

/// Standard retries (throttling, 5xx, timeouts, connection errors) up to `max_attempts`. The
/// backoff starts at 50 ms and stays under 0.5 s: the SDK's default (1 s, up to 20 s) would
/// spend a delivery's whole budget waiting; Stripe retries a 503 later anyway.
pub fn retry_config(bounds: &CallBounds) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(bounds.max_attempts)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(500))
}

/// The one builder of AWS configuration, from the standard variables (`AWS_ENDPOINT_URL` for
/// moto) with `bounds` on every call: every client (DynamoDB, SQS, Secrets Manager, SES) is
/// made from what it loads. Tests add an endpoint and credentials before `load()`.
pub fn sdk_loader(bounds: &CallBounds) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeout_config(bounds))
        .retry_config(retry_config(bounds))
}

/// Shared AWS configuration with the default bounds (tools and examples).
pub async fn aws_config() -> aws_config::SdkConfig {
    sdk_loader(&CallBounds::default()).load().await
}

/// Bounds each request's whole handling by `deadline`: past it the answer is 503 (the status
/// policy's transient failure), so the code, not the Lambda timeout, decides. Dropping the
/// handler mid-way is safe: every write is one atomic request (a conditional put or one
/// transaction), so the event is either not recorded or completely recorded, and the
/// provider's retry then applies it or answers `duplicate`.
pub fn with_deadline(router: axum::Router, deadline: Duration) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(deadline, next.run(request)).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::error!(
                        kind = "deadline",
                        deadline_ms = deadline.as_millis() as u64,
                        "delivery exceeded its deadline"
                    );
                    crate::http::respond(&Outcome::Unavailable(crate::error::Error::Deadline(
                        deadline,
                    )))
                }
            }
        },
    ))
}

/// The configured Stripe API key (`config.stripe_api`): the inline one, or the one a Secrets
/// Manager secret holds, read now and checked like the inline one (kind and mode). A bad one
/// stops the cold start naming the variable and secret, never the value.
pub async fn stripe_api_key(
    config: &Config,
    secrets_manager: Option<&aws_sdk_secretsmanager::Client>,
) -> Result<Option<StripeApiKey>, String> {
    let Some(settings) = &config.stripe_api else {
        return Ok(None);
    };
    Ok(Some(match &settings.key {
        ApiKeySpec::Inline(key) => key.clone(),
        ApiKeySpec::Arn(arn) => {
            let client = secrets_manager.ok_or("STRIPE_API_KEY_ARN: no Secrets Manager client")?;
            let raw = read_secret_string(client, arn)
                .await
                .map_err(|e| format!("STRIPE_API_KEY_ARN: {e}"))?;
            StripeApiKey::parse(&raw)
                .and_then(|key| key.check_mode(config.livemode).map(|()| key))
                .map_err(|e| format!("STRIPE_API_KEY_ARN (secret {arn}): {e}"))?
        }
    }))
}

/// Stripe as the pipeline's provider. With a key, its API readers: the tie reader, and the thin
/// notifications' reader (the thin function, and `billing replay` of a parked notification;
/// its HTTP client is built at its first call). The thin function without a key answers thin
/// notifications 503.
fn stripe_provider(
    config: &Config,
    secrets: Arc<dyn crate::ports::SecretSource>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    key: Option<&StripeApiKey>,
) -> Result<StripeProvider, String> {
    let provider = StripeProvider::new(secrets, clock, metrics, config.settings());
    let (Some(settings), Some(key)) = (&config.stripe_api, key) else {
        if config.thin_secrets.is_some() {
            tracing::error!(
                "no STRIPE_API_KEY (or STRIPE_API_KEY_ARN): every thin notification will be \
                 answered 503 until one is configured"
            );
        }
        return Ok(provider);
    };
    let ties =
        StripeApi::new(&settings.base, key.clone(), config.bounds).map_err(|e| e.to_string())?;
    let thin = StripeV2Api::new(&settings.base, key, config.bounds).map_err(|e| e.to_string())?;
    Ok(provider.with_api(Arc::new(ties)).with_thin(Arc::new(thin)))
}

impl App {
    /// Builds the clients from the environment's AWS configuration with `config.bounds`.
    pub async fn build(config: Config, metrics: Metrics) -> Result<Self, String> {
        let sdk = sdk_loader(&config.bounds).load().await;
        Self::with_sdk(&sdk, config, metrics).await
    }

    /// Builds the clients from `sdk` (made by `sdk_loader`); no email jobs are queued.
    pub async fn with_sdk(
        sdk: &aws_config::SdkConfig,
        config: Config,
        metrics: Metrics,
    ) -> Result<Self, String> {
        Self::with_sdk_and_emails(sdk, config, metrics, EmailQueueing::default()).await
    }

    /// [`App::build`], queueing an email job with every applied change that calls for one
    /// `emails` switches on (the families' Lambdas and the local run).
    pub async fn build_with_emails(
        config: Config,
        metrics: Metrics,
        emails: EmailQueueing,
    ) -> Result<Self, String> {
        let sdk = sdk_loader(&config.bounds).load().await;
        Self::with_sdk_and_emails(&sdk, config, metrics, emails).await
    }

    /// [`App::with_sdk`] with the email jobs the pipeline queues.
    pub async fn with_sdk_and_emails(
        sdk: &aws_config::SdkConfig,
        config: Config,
        metrics: Metrics,
        emails: EmailQueueing,
    ) -> Result<Self, String> {
        let store = Arc::new(DynamoBillingStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table.clone(),
            config.retention(),
        ));
        let sm_client = config
            .uses_secrets_manager()
            .then(|| aws_sdk_secretsmanager::Client::new(sdk));
        // Stripe's endpoints' secrets, looked up by (provider, endpoint).
        let own = config.secrets.iter().map(|(f, spec)| (f.endpoint(), spec));
        let connect = (config.connect_secrets.iter()).map(|(f, spec)| (f.connect_endpoint(), spec));
        let thin = config
            .thin_secrets
            .iter()
            .map(|spec| (thin::ENDPOINT, spec));
        let specs = own
            .chain(connect)
            .chain(thin)
            .map(|(endpoint, spec)| (endpoint, spec.clone()))
            .collect();
        let secrets = Arc::new(ConfiguredSecrets::new(
            sm_client.clone(),
            specs,
            Duration::from_secs(30),
        ));
        secrets.preload().await.map_err(|e| e.to_string())?;
        let key = stripe_api_key(&config, sm_client.as_ref()).await?;
        let queue: Option<Arc<dyn Queue>> = config.feed_queue_url.as_ref().map(|url| {
            let feed = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url.clone()));
            // Email jobs leave the outbox for the email queue; the feed keeps everything else.
            let emails = email_queue_url().map(|url| {
                Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)) as Arc<dyn Queue>
            });
            Arc::new(RoutedQueue { feed, emails }) as Arc<dyn Queue>
        });
        let metrics = Arc::new(metrics);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let provider = stripe_provider(
            &config,
            secrets,
            clock.clone(),
            metrics.clone(),
            key.as_ref(),
        )?;
        let service = Arc::new(
            Pipeline::new(store.clone(), clock, metrics.clone(), config.tiers.clone())
                .with_provider(Arc::new(provider))
                .with_email_queueing(emails),
        );
        Ok(Self {
            service,
            store,
            queue,
            metrics,
            config,
        })
    }

    /// Builds the clients, and PayPal (`settings`) beside Stripe in the pipeline: the PayPal
    /// Lambda and the local run. A client secret in Secrets Manager is read now.
    pub async fn build_with_paypal(
        config: Config,
        settings: &PaypalSettings,
        metrics: Metrics,
    ) -> Result<Self, String> {
        Self::build(config, metrics)
            .await?
            .with_paypal(settings)
            .await
    }

    /// Adds PayPal (`settings`) beside Stripe to a just-built app's pipeline.
    pub async fn with_paypal(self, settings: &PaypalSettings) -> Result<Self, String> {
        let bounds = self.config.bounds;
        let sdk = sdk_loader(&bounds).load().await;
        let app = self;
        let sm_client = matches!(
            &settings.mode,
            PaypalMode::Api(api) if matches!(api.secret, PaypalSecretSpec::Arn(_))
        )
        .then(|| aws_sdk_secretsmanager::Client::new(&sdk));
        let verifier = PaypalVerifier::from_settings(
            settings,
            bounds,
            sm_client.as_ref(),
            Arc::new(SystemClock),
        )
        .await
        .map_err(|e| format!("PayPal verification: {e}"))?
        // Transmission ids are claimed on the billing table, so a replay is refused by every
        // instance, not only the one that saw the first delivery.
        .with_transmissions(Arc::new(DynamoTransmissionGuard::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            app.config.table.clone(),
        )));
        app.with_provider(Arc::new(PaypalProvider::new(verifier)))
    }

    /// Adds a provider to a just-built app's pipeline (before anything shares it).
    pub fn with_provider(
        mut self,
        provider: Arc<dyn crate::pipeline::WebhookProvider>,
    ) -> Result<Self, String> {
        let pipeline = Arc::try_unwrap(self.service)
            .map_err(|_| "the pipeline is already shared".to_owned())?;
        self.service = Arc::new(pipeline.with_provider(provider));
        Ok(self)
    }

    /// Opens the DynamoDB connection now (a Lambda's init), never failing: see
    /// `DynamoBillingStore::warm_up`.
    pub async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}

/// The body of every Stripe Lambda's `main`: config → clients → router → lambda_http.
pub async fn run_stripe_lambda(family: Family) -> Result<(), lambda_http::Error> {
    run_http_lambda(&[family], |service| {
        let endpoints = [family.endpoint(), family.connect_endpoint()];
        crate::http::webhook_router(service, &endpoints)
    })
    .await
}

/// The body of the thin endpoint's Lambda (`POST /webhooks/stripe/thin`): its configuration
/// (`Config::thin_from_env`: its own secrets, the mode, the API key), the clients, the router.
/// Thin notifications may be of any type, so it queues the customer emails like the families.
pub async fn run_thin_lambda() -> Result<(), lambda_http::Error> {
    let config = Config::thin_from_env()?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let deadline = config.delivery_timeout;
    let emails = Config::emails_from_env()?.queueing();
    let app = App::build_with_emails(config, metrics, emails).await?;
    app.warm_up().await;
    let router = crate::http::webhook_router(app.service.clone(), &[thin::ENDPOINT]);
    lambda_http::run(with_deadline(router, deadline)).await
}

/// The body of the PayPal Lambda's `main` (`POST /webhooks/paypal`): the shared configuration
/// without Stripe secrets, PayPal's (`PAYPAL_*`), the clients, the router.
pub async fn run_paypal_lambda() -> Result<(), lambda_http::Error> {
    let config = Config::from_env(&[], None)?;
    let paypal = PaypalSettings::from_env()?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let deadline = config.delivery_timeout;
    let app = App::build_with_paypal(config, &paypal, metrics).await?;
    app.warm_up().await;
    let router =
        crate::http::webhook_router(app.service.clone(), &[crate::providers::paypal::ENDPOINT]);
    lambda_http::run(with_deadline(router, deadline)).await
}

/// The read API's Lambda (`GET /users/…`, `/events/…`, `/products/…`, `/outbox/unreadable`),
/// behind IAM authorisation in the template: it holds no webhook secret and never writes.
pub async fn run_read_lambda() -> Result<(), lambda_http::Error> {
    run_http_lambda(&[], crate::http::read_router).await
}

/// An HTTP Lambda: the configuration of `families` (none: no secrets), the clients and the
/// DynamoDB warm-up at init, then `router` under the delivery deadline.
async fn run_http_lambda(
    families: &[Family],
    router: impl FnOnce(Arc<Pipeline>) -> axum::Router,
) -> Result<(), lambda_http::Error> {
    let config = Config::from_env(families, None)?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let deadline = config.delivery_timeout;
    // The families whose events queue emails (invoice: the invoice emails; checkout: the
    // welcome; subscription: the cancellation) need (and check) the email settings.
    let queues_emails = [Family::Invoice, Family::Checkout, Family::Subscription];
    let emails = if families.iter().any(|f| queues_emails.contains(f)) {
        Config::emails_from_env()?.queueing()
    } else {
        EmailQueueing::default()
    };
    let app = App::build_with_emails(config, metrics, emails).await?;
    app.warm_up().await;
    lambda_http::run(with_deadline(router(app.service.clone()), deadline)).await
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
    app.warm_up().await;
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

/// `BILLING_EMAIL_QUEUE_URL`: where the relay sends email jobs
/// (`emails::settings::email_queue_url_from_env`).
pub fn email_queue_url() -> Option<String> {
    crate::emails::settings::email_queue_url_from_env()
}

/// The email consumer on `app`'s table with `settings` (the Lambda's from the environment, a
/// missing sender failing there by name) and the lease from the environment; SES v2 from `sdk`.
pub fn email_sender(
    sdk: &aws_config::SdkConfig,
    app: &App,
    settings: crate::emails::kinds::EmailSettings,
    looks: (
        crate::emails::templates::Templates,
        Option<crate::emails::brand::Brand>,
    ),
) -> Result<crate::emails::send::EmailSender, String> {
    use crate::adapters::email_store::DynamoEmailLedger;
    use crate::adapters::ses::SesMailer;
    use crate::emails::send::{EmailSender, SendPolicy};
    let lease_secs = crate::emails::settings::email_lease_from_env().map_err(|e| e.to_string())?;
    let (templates, brand) = looks;
    let mut settings = settings;
    if let Some(brand) = &brand {
        settings.from = settings.from.map(|from| brand.sender(&from));
    }
    Ok(EmailSender {
        store: app.store.clone(),
        ledger: Arc::new(DynamoEmailLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            app.config.table.clone(),
        )),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk))),
        settings,
        clock: Arc::new(SystemClock),
        metrics: app.metrics.clone(),
        policy: SendPolicy {
            lease_secs,
            ..SendPolicy::default()
        },
        // Waiting jobs come back when they should (sending paused, a decision not settled).
        visibility: Some(Arc::new(crate::adapters::email_queue::SqsVisibility::new(
            aws_sdk_sqs::Client::new(sdk),
        ))),
        templates: Arc::new(templates),
    })
}

/// The emails Lambda on the email queue and the bounce queue (SQS event source mappings with
/// `ReportBatchItemFailures`): jobs are sent once, SES notifications recorded.
pub async fn run_emails_lambda() -> Result<(), lambda_http::Error> {
    use crate::emails::send::SqsEvent;
    use lambda_http::lambda_runtime::{run, service_fn, LambdaEvent};
    let config = Config::from_env(&[], None)?;
    crate::telemetry::init(config.log_json);
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let sdk = sdk_loader(&config.bounds).load().await;
    let app = App::with_sdk(&sdk, config, metrics).await?;
    app.warm_up().await;
    let settings = Config::emails_from_env()?;
    let looks = crate::emails::settings::looks_from_env(!settings.kinds.is_empty())
        .map_err(|e| e.to_string())?;
    let sender = Arc::new(email_sender(&sdk, &app, settings, looks)?);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let sender = sender.clone();
        async move { Ok::<_, lambda_http::Error>(sender.handle_batch(&event.payload).await) }
    }))
    .await
}

/// Each function's whole `main`: its Lambda on one current-thread runtime (a Lambda instance
/// serves one request at a time, so more threads only add start-up work; init runs before the
/// first event). These are not `async` and never inlined on purpose: an `async fn` called from a
/// binary is compiled in that binary, so each of the ten would compile the whole pipeline, the
/// AWS SDK calls and the HTTP stack again (minutes each in a release build). Called through
/// these, all of it is compiled once, here, and a function's binary only links
/// (BENCHMARKS.md, "`sam build`: one compile for every function").
pub mod main {
    use crate::providers::stripe::Family;
    use lambda_http::Error;
    use std::future::Future;

    /// `lambda` on one current-thread runtime; `reconcile::main` uses it too.
    pub(crate) fn block_on(lambda: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(lambda)
    }

    /// A Stripe family's webhook function.
    #[inline(never)]
    pub fn stripe(family: Family) -> Result<(), Error> {
        block_on(super::run_stripe_lambda(family))
    }

    /// The thin endpoint's function.
    #[inline(never)]
    pub fn thin() -> Result<(), Error> {
        block_on(super::run_thin_lambda())
    }

    #[inline(never)]
    pub fn paypal() -> Result<(), Error> {
        block_on(super::run_paypal_lambda())
    }

    /// The read API's function.
    #[inline(never)]
    pub fn read() -> Result<(), Error> {
        block_on(super::run_read_lambda())
    }

    #[inline(never)]
    pub fn relay() -> Result<(), Error> {
        block_on(super::run_relay_lambda())
    }

    #[inline(never)]
    pub fn emails() -> Result<(), Error> {
        block_on(super::run_emails_lambda())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_request_past_its_deadline_is_answered_503() {
        // A handler that never finishes (a call that hangs): without the deadline the request
        // would wait forever and this test would not end.
        let router = axum::Router::new().route(
            "/hang",
            axum::routing::post(std::future::pending::<&'static str>),
        );
        let router = with_deadline(router, Duration::from_millis(50));
        let request = Request::post("/hang").body(Body::empty()).expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn every_client_gets_the_configured_bounds() {
        let bounds = CallBounds {
            connect: Duration::from_millis(200),
            attempt: Duration::from_millis(400),
            operation: Duration::from_millis(900),
            max_attempts: 2,
        };
        let t = timeout_config(&bounds);
        assert_eq!(t.connect_timeout(), Some(bounds.connect));
        assert_eq!(t.operation_attempt_timeout(), Some(bounds.attempt));
        assert_eq!(t.operation_timeout(), Some(bounds.operation));
        assert_eq!(retry_config(&bounds).max_attempts(), 2);
    }
}
