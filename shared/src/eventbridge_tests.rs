//! The envelope's checks, and the consumer over an in-memory pipeline: what is applied, what is
//! a duplicate, what is returned to the queue (refused, transient) and that a refused record
//! changes nothing.

use super::*;
use crate::adapters::faults::{FaultPlan, FaultyStore, Step};
use crate::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use crate::pipeline::DuplicateBy;
use crate::ports::{FixedClock, LedgerState};

const SOURCE: &str = "aws.partner/stripe.com/ed_test_61SxEventBridge";
const ACCOUNT: &str = "123456789012";
const EVENT_ID: &str = "evt_life_01_checkout_completed";

fn settings() -> Settings {
    Settings {
        source: SOURCE.into(),
        account: ACCOUNT.into(),
    }
}

fn stripe_fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stripe/lifecycle/01_checkout.session.completed.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// An EventBridge envelope as Stripe's partner event source sends it, around `detail`.
fn envelope(source: &str, account: &str, detail: Value) -> Value {
    serde_json::json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "checkout.session.completed",
        "source": source,
        "account": account,
        "time": "2025-10-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

fn record(id: &str, body: &Value) -> SqsRecord {
    SqsRecord {
        message_id: id.into(),
        body: body.to_string(),
        ..SqsRecord::default()
    }
}

fn refused(body: &Value) -> Refused {
    stripe_event(&body.to_string(), &settings()).expect_err("refused")
}

#[test]
fn the_detail_of_an_envelope_from_the_configured_source_and_account_is_the_stripe_event() {
    let detail = stripe_fixture();
    let event = stripe_event(
        &envelope(SOURCE, ACCOUNT, detail.clone()).to_string(),
        &settings(),
    )
    .expect("accepted");
    assert_eq!(event.id, EVENT_ID);
    assert_eq!(event.event_type, "checkout.session.completed");
    let body: Value = serde_json::from_slice(&event.body).expect("json");
    assert_eq!(body, detail);
}

#[test]
fn another_source_is_refused() {
    for source in [
        "aws.partner/stripe.com/ed_test_someone_else",
        "aws.events",
        "",
    ] {
        let body = envelope(source, ACCOUNT, stripe_fixture());
        assert_eq!(refused(&body), Refused::WrongSource, "{source}");
    }
    let mut body = envelope(SOURCE, ACCOUNT, stripe_fixture());
    body.as_object_mut().expect("object").remove("source");
    assert_eq!(refused(&body), Refused::WrongSource);
}

#[test]
fn another_account_is_refused() {
    let body = envelope(SOURCE, "210987654321", stripe_fixture());
    assert_eq!(refused(&body), Refused::WrongAccount);
    let mut body = envelope(SOURCE, ACCOUNT, stripe_fixture());
    body["account"] = serde_json::json!(123_456_789_012_u64);
    assert_eq!(refused(&body), Refused::WrongAccount);
}

#[test]
fn a_missing_or_null_detail_is_refused() {
    let mut body = envelope(SOURCE, ACCOUNT, stripe_fixture());
    body.as_object_mut().expect("object").remove("detail");
    assert_eq!(refused(&body), Refused::MissingDetail);
    assert_eq!(
        refused(&envelope(SOURCE, ACCOUNT, Value::Null)),
        Refused::MissingDetail
    );
}

#[test]
fn a_detail_that_is_not_a_json_object_is_refused() {
    // The event as a string of JSON text, a number, a list: never parsed a second time.
    let text = Value::String(stripe_fixture().to_string());
    for detail in [
        text,
        serde_json::json!(7),
        serde_json::json!([stripe_fixture()]),
    ] {
        assert_eq!(
            refused(&envelope(SOURCE, ACCOUNT, detail)),
            Refused::DetailNotJson
        );
    }
}

#[test]
fn a_detail_without_an_event_id_or_type_is_refused() {
    for key in ["id", "type"] {
        let mut detail = stripe_fixture();
        detail.as_object_mut().expect("object").remove(key);
        assert_eq!(
            refused(&envelope(SOURCE, ACCOUNT, detail)),
            Refused::NotAStripeEvent,
            "{key}"
        );
    }
}

#[test]
fn a_body_that_is_not_a_json_object_is_unreadable() {
    for body in ["", "not json", "[1,2]", "\"text\""] {
        assert_eq!(
            stripe_event(body, &settings()),
            Err(Refused::Unreadable),
            "{body}"
        );
    }
}

struct World {
    ingress: Ingress,
    plan: Arc<FaultPlan>,
}

fn world() -> World {
    let plan = Arc::new(FaultPlan::default());
    let store = Arc::new(FaultyStore {
        inner: Arc::new(InMemoryBillingStore::new()),
        plan: plan.clone(),
    });
    let metrics = Arc::new(Metrics::memory());
    let pipeline = Arc::new(crate::providers::stripe::pipeline(
        store,
        Arc::new(StaticSecrets::default()),
        Arc::new(FixedClock::at(1_800_000_000)),
        metrics.clone(),
        crate::providers::stripe::Settings::default(),
    ));
    World {
        ingress: Ingress {
            pipeline,
            settings: settings(),
            metrics,
        },
        plan,
    }
}

fn batch(records: Vec<SqsRecord>) -> SqsEvent {
    SqsEvent { records }
}

fn failures(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn a_refused_record_is_a_batch_item_failure_and_changes_nothing() {
    let w = world();
    let ours = envelope(SOURCE, ACCOUNT, stripe_fixture());
    let foreign = envelope(SOURCE, "210987654321", stripe_fixture());
    let response = w
        .ingress
        .handle_batch(&batch(vec![
            record("m-foreign", &foreign),
            record("m-unreadable", &Value::String("{".into())),
        ]))
        .await;
    assert_eq!(failures(&response), ["m-foreign", "m-unreadable"]);
    assert_eq!(w.ingress.metrics.count(Counter::EventBridgeRefused), 2);
    assert_eq!(w.ingress.metrics.count(Counter::Applied), 0);
    // The same event from the configured account afterwards is new: the refused copy wrote no
    // ledger record.
    let response = w
        .ingress
        .handle_batch(&batch(vec![record("m-ours", &ours)]))
        .await;
    assert!(failures(&response).is_empty());
    assert_eq!(w.ingress.metrics.count(Counter::Applied), 1);
}

#[tokio::test]
async fn an_event_is_applied_once_and_its_second_copy_is_a_duplicate_and_done() {
    let w = world();
    let body = envelope(SOURCE, ACCOUNT, stripe_fixture());
    let response = w
        .ingress
        .handle_batch(&batch(vec![record("m-1", &body), record("m-2", &body)]))
        .await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(w.ingress.metrics.count(Counter::Applied), 1);
    assert_eq!(w.ingress.metrics.count(Counter::Redelivered), 1);
    // The ledger key is a webhook delivery's: the trusted path at the event's family answers
    // the same event as a duplicate.
    let event = stripe_event(&body.to_string(), &settings()).expect("accepted");
    let again = w
        .ingress
        .pipeline
        .receive_trusted(
            crate::providers::stripe::Family::Checkout.endpoint(),
            &event.body,
        )
        .await;
    assert_eq!(
        again,
        Outcome::Duplicate {
            event_id: EVENT_ID.into(),
            by: DuplicateBy::Read
        }
    );
}

#[tokio::test]
async fn a_transient_failure_returns_the_record_and_its_retry_applies_it() {
    let w = world();
    let body = envelope(SOURCE, ACCOUNT, stripe_fixture());
    w.plan.fail_next(Step::Load);
    let response = w
        .ingress
        .handle_batch(&batch(vec![record("m-1", &body)]))
        .await;
    assert_eq!(failures(&response), ["m-1"]);
    assert_eq!(w.ingress.metrics.count(Counter::EventBridgeRefused), 0);
    let response = w
        .ingress
        .handle_batch(&batch(vec![record("m-1", &body)]))
        .await;
    assert!(failures(&response).is_empty());
    assert_eq!(w.ingress.metrics.count(Counter::Applied), 1);
}

#[test]
fn only_recorded_and_duplicate_outcomes_are_done() {
    let recorded = |state| Outcome::Recorded {
        event_id: EVENT_ID.into(),
        state,
    };
    for state in [
        LedgerState::Applied,
        LedgerState::Stale,
        LedgerState::Ignored,
        LedgerState::Parked,
    ] {
        assert!(done(&recorded(state)), "{state:?}");
    }
    assert!(done(&Outcome::Duplicate {
        event_id: EVENT_ID.into(),
        by: DuplicateBy::Condition
    }));
    assert!(!done(&Outcome::Unavailable(crate::error::Error::Deadline(
        std::time::Duration::from_secs(1)
    ))));
    assert!(!done(&Outcome::Rejected(
        crate::error::Rejection::UnknownProvider("x".into())
    )));
}

#[tokio::test]
async fn the_sample_sqs_event_is_applied_by_a_consumer_configured_as_the_samples_are() {
    let w = Ingress {
        settings: Settings::sample(),
        ..world().ingress
    };
    let event = sqs_event(
        &stripe_fixture(),
        SAMPLE_SOURCE,
        SAMPLE_ACCOUNT,
        1_759_316_403,
    );
    let event: SqsEvent = serde_json::from_value(event).expect("an SQS event");
    assert_eq!(event.records.len(), 1);
    let envelope: Value = serde_json::from_str(&event.records[0].body).expect("json");
    assert_eq!(envelope["detail-type"], "checkout.session.completed");
    assert_eq!(envelope["time"], "2025-10-01T11:00:03Z");
    assert!(failures(&w.handle_batch(&event).await).is_empty());
    assert_eq!(w.metrics.count(Counter::Applied), 1);
    // The sample from another account is refused.
    let foreign = sqs_event(
        &stripe_fixture(),
        SAMPLE_SOURCE,
        "210987654321",
        1_759_316_403,
    );
    let foreign: SqsEvent = serde_json::from_value(foreign).expect("an SQS event");
    assert_eq!(failures(&w.handle_batch(&foreign).await).len(), 1);
}

#[test]
fn an_operator_sees_the_verdict_and_the_event_id_never_the_data() {
    let ours = envelope(SOURCE, ACCOUNT, stripe_fixture()).to_string();
    let seen = describe(&ours, &settings());
    assert_eq!(
        seen,
        serde_json::json!({"source": SOURCE, "account": ACCOUNT,
            "detail_type": "checkout.session.completed", "verdict": "accepted",
            "event_id": EVENT_ID})
    );
    let foreign = envelope(SOURCE, "210987654321", stripe_fixture()).to_string();
    assert_eq!(describe(&foreign, &settings())["verdict"], "wrong_account");
    assert_eq!(describe("{", &settings())["verdict"], "unreadable");
    assert_eq!(describe("{", &settings())["source"], Value::Null);
}
