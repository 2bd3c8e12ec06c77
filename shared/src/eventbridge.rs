//! The EventBridge ingress (issue 19): Stripe's events from a partner event source, through an
//! EventBridge rule and an SQS queue, applied by the `eventbridge` function.
//!
//! Each SQS record's body is an EventBridge envelope (`version`, `id`, `detail-type`, `source`,
//! `account`, `time`, `region`, `resources`, `detail`) whose `detail` is the whole Stripe event.
//! No signature comes with it: trust comes from IAM (only the rule may send to the queue) and
//! from the configuration ([`Settings`]), so a record whose `source` is not the configured
//! partner event source, or whose `account` is not the function's own, is refused and never
//! applied. The event then goes through [`Pipeline::receive_trusted`] at its type's Stripe
//! endpoint, as `billing backfill` does: the same ledger key as the webhook delivery of the same
//! event (`EVT#stripe#{id}`), so running both paths during a migration applies each event once,
//! with the same ordering and parking.
//!
//! Answers (SQS partial batch response, `ReportBatchItemFailures`):
//! - applied, stale, ignored, parked, duplicate: done;
//! - a transient pipeline failure: returned to the queue (retried);
//! - a refused or unreadable record, or one the pipeline rejects: returned too, so after the
//!   queue's receive count it rests in the dead-letter queue (nothing is lost). Its kind is
//!   logged and counted (`EventBridgeRefused`), never its body.

use crate::emails::send::{SqsBatchResponse, SqsEvent, SqsItemFailure, SqsRecord};
use crate::pipeline::{Outcome, Pipeline};
use crate::providers::stripe::translate::family_of;
use crate::telemetry::{Counter, Metrics};
use serde_json::Value;
use std::sync::Arc;

mod settings;
pub use settings::{Settings, SOURCE_PREFIX};

/// The metrics' `Family` dimension value of the refusals.
pub const DIMENSION: &str = crate::telemetry::EVENTBRIDGE_DIMENSION;

/// Why a record was not handed to the pipeline: what the log and the metric say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The body is not a JSON object.
    Unreadable,
    /// `source` is not the configured partner event source (or is missing).
    WrongSource,
    /// `account` is not the function's own AWS account (or is missing).
    WrongAccount,
    /// No `detail`, or a null one.
    MissingDetail,
    /// `detail` is not a JSON object.
    DetailNotJson,
    /// `detail` has no string `id` and `type`: not a Stripe event.
    NotAStripeEvent,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Unreadable => "unreadable",
            Refused::WrongSource => "wrong_source",
            Refused::WrongAccount => "wrong_account",
            Refused::MissingDetail => "missing_detail",
            Refused::DetailNotJson => "detail_not_json",
            Refused::NotAStripeEvent => "not_a_stripe_event",
        }
    }
}

/// A Stripe event taken out of an accepted envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    /// The event's JSON, as the pipeline reads a webhook body.
    pub body: Vec<u8>,
}

/// The Stripe event an envelope (an SQS record's body) carries, once its `source` and `account`
/// are the configured ones.
pub fn stripe_event(body: &str, settings: &Settings) -> Result<StripeEvent, Refused> {
    let envelope: Value = serde_json::from_str(body).map_err(|_| Refused::Unreadable)?;
    let Value::Object(mut envelope) = envelope else {
        return Err(Refused::Unreadable);
    };
    if envelope.get("source").and_then(Value::as_str) != Some(settings.source.as_str()) {
        return Err(Refused::WrongSource);
    }
    if envelope.get("account").and_then(Value::as_str) != Some(settings.account.as_str()) {
        return Err(Refused::WrongAccount);
    }
    let detail = match envelope.remove("detail") {
        None | Some(Value::Null) => return Err(Refused::MissingDetail),
        Some(detail @ Value::Object(_)) => detail,
        Some(_) => return Err(Refused::DetailNotJson),
    };
    let field = |key: &str| {
        detail
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(id), Some(event_type)) = (field("id"), field("type")) else {
        return Err(Refused::NotAStripeEvent);
    };
    let body = serde_json::to_vec(&detail).map_err(|_| Refused::DetailNotJson)?;
    Ok(StripeEvent {
        id,
        event_type,
        body,
    })
}

/// What an operator may see of a record's body (`billing eventbridge dead-letters`): the
/// envelope's `source`, `account` and `detail-type`, and its verdict under `settings`: the
/// refusal's kind, or `accepted` with the Stripe event's id (then the pipeline rejected it, or
/// failed it five times: `GET /events/stripe/{id}` and the function's log say which). Never the
/// body or the event's data.
pub fn describe(body: &str, settings: &Settings) -> Value {
    let envelope: Option<Value> = serde_json::from_str(body).ok();
    let field = |key: &str| {
        envelope
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut out = serde_json::json!({
        "source": field("source"),
        "account": field("account"),
        "detail_type": field("detail-type"),
    });
    match stripe_event(body, settings) {
        Ok(event) => {
            out["verdict"] = "accepted".into();
            out["event_id"] = event.id.into();
        }
        Err(refused) => out["verdict"] = refused.as_str().into(),
    }
    out
}

/// The partner event source of the local samples (`events/eventbridge.json`,
/// `billing eventbridge-event`'s default; scripts/lambda-invoke-check configures it).
pub const SAMPLE_SOURCE: &str = "aws.partner/stripe.com/ed_test_local_invoke";
/// The AWS account of the local samples (moto's default account).
pub const SAMPLE_ACCOUNT: &str = "123456789012";

/// The SQS event the eventbridge function receives for one Stripe event: `detail` as the
/// envelope EventBridge puts on the queue for a rule on `source` in `account`, at `at` (Unix
/// seconds), in one record. For the samples and the tests.
pub fn sqs_event(detail: &Value, source: &str, account: &str, at: i64) -> Value {
    let event_id = detail.get("id").and_then(Value::as_str).unwrap_or("-");
    let envelope = serde_json::json!({
        "version": "0",
        "id": format!("local-{event_id}"),
        "detail-type": detail.get("type").cloned().unwrap_or(Value::Null),
        "source": source,
        "account": account,
        "time": crate::backfill::rfc3339(at),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    });
    let record = crate::adapters::sqs::lambda_record(
        &format!("local-eventbridge-{at}-1"),
        &envelope.to_string(),
        at,
        &format!("arn:aws:sqs:us-east-1:{account}:billing-eventbridge"),
    );
    serde_json::json!({ "Records": [record] })
}

/// The eventbridge function's consumer: the pipeline, the accepted source and account.
pub struct Ingress {
    pub pipeline: Arc<Pipeline>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
}

impl Ingress {
    /// One SQS batch: each record applied or answered as a batch item failure.
    pub async fn handle_batch(&self, event: &SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            if !self.handle(record).await {
                response.batch_item_failures.push(SqsItemFailure {
                    item_identifier: record.message_id.clone(),
                });
            }
        }
        response
    }

    /// One record; `true` when it is done with (the queue may delete it).
    pub async fn handle(&self, record: &SqsRecord) -> bool {
        let event = match stripe_event(&record.body, &self.settings) {
            Ok(event) => event,
            Err(refused) => {
                self.metrics.incr(Counter::EventBridgeRefused, DIMENSION);
                tracing::warn!(
                    message_id = %record.message_id,
                    kind = refused.as_str(),
                    receive_count = record.receive_count(),
                    "eventbridge record refused; returned to the queue (its dead-letter queue keeps it)"
                );
                return false;
            }
        };
        let endpoint = family_of(&event.event_type).endpoint();
        let outcome = self.pipeline.receive_trusted(endpoint, &event.body).await;
        let done = done(&outcome);
        let state = match &outcome {
            Outcome::Recorded { state, .. } => state.as_str(),
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Rejected(_) => "rejected",
            Outcome::Unavailable(_) => "unavailable",
        };
        if done {
            tracing::info!(message_id = %record.message_id, event_id = %event.id, event_type = %event.event_type, %endpoint, state, "eventbridge event");
        } else {
            tracing::warn!(message_id = %record.message_id, event_id = %event.id, event_type = %event.event_type, %endpoint, state, "eventbridge event not applied; returned to the queue");
        }
        done
    }
}

/// Whether an outcome is final: everything but a transient failure or a rejection (those
/// return the record, to be retried or to rest in the dead-letter queue).
pub fn done(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Recorded { .. } | Outcome::Duplicate { .. }
    )
}

/// The eventbridge function's whole `main`, not `async` for the reason `app::main` gives.
#[inline(never)]
pub fn main() -> Result<(), lambda_http::Error> {
    crate::app::main::block_on(run_lambda())
}

/// The eventbridge Lambda on its SQS queue (event source mapping with
/// `ReportBatchItemFailures`): the configuration without webhook secrets, [`Settings`], the
/// email kinds its applied events queue jobs for (any family's events arrive here), the
/// clients and the DynamoDB warm-up at init; each batch [`Ingress::handle_batch`].
pub async fn run_lambda() -> Result<(), lambda_http::Error> {
    use crate::app::App;
    use crate::config::Config;
    use lambda_http::lambda_runtime::{run, service_fn, LambdaEvent};
    let config = Config::from_env(&[], None)?;
    crate::telemetry::init(config.log_json);
    let settings = Settings::from_env()?;
    let metrics = Metrics::Emf {
        namespace: config.metrics_namespace.clone(),
    };
    let emails = Config::emails_from_env()?.queueing();
    let app = App::build_with_emails(config, metrics, emails).await?;
    app.warm_up().await;
    let ingress = Arc::new(Ingress {
        pipeline: app.service.clone(),
        settings,
        metrics: app.metrics.clone(),
    });
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let ingress = ingress.clone();
        async move { Ok::<_, lambda_http::Error>(ingress.handle_batch(&event.payload).await) }
    }))
    .await
}

#[cfg(test)]
#[path = "eventbridge_tests.rs"]
mod tests;
