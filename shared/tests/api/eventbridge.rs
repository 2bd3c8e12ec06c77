//! The EventBridge ingress against DynamoDB (moto): a refused record changes nothing, and the
//! same event through EventBridge and then as a signed webhook delivery is applied once, with
//! one audit entry (issue 19).

use crate::helpers::*;
use billing::domain::ids::{CustomerId, EventId, Provider};
use billing::emails::send::SqsEvent;
use billing::eventbridge::{sqs_event, Ingress, Settings, SAMPLE_ACCOUNT, SAMPLE_SOURCE};
use billing::ports::LedgerState;
use billing::providers::stripe::Family;
use billing::telemetry::Counter;
use http::StatusCode;
use serde_json::Value;

fn batch(detail: &[u8], source: &str, account: &str) -> SqsEvent {
    let detail: Value = serde_json::from_slice(detail).expect("json");
    serde_json::from_value(sqs_event(&detail, source, account, NOW)).expect("an SQS event")
}

fn failed(response: &billing::emails::send::SqsBatchResponse) -> usize {
    response.batch_item_failures.len()
}

#[tokio::test]
async fn moto_an_event_through_eventbridge_then_by_webhook_is_applied_once_with_one_audit_entry() {
    let app = spawn_moto(false).await;
    let ingress = Ingress {
        pipeline: app.service.clone(),
        settings: Settings::sample(),
        metrics: app.metrics.clone(),
    };
    let id = EventId::new("evt_eventbridge_then_webhook");
    let body = event(
        id.as_str(),
        "customer.subscription.created",
        NOW,
        subscription("sub_eb", "cus_eb", "active", Some("u_eb")),
    );

    // Refused: another account, another source. Nothing is recorded or applied.
    let foreign = [
        batch(&body, SAMPLE_SOURCE, "210987654321"),
        batch(
            &body,
            "aws.partner/stripe.com/ed_test_someone_else",
            SAMPLE_ACCOUNT,
        ),
    ];
    for refused in &foreign {
        assert_eq!(failed(&ingress.handle_batch(refused).await), 1);
    }
    assert_eq!(app.metrics.count(Counter::EventBridgeRefused), 2);
    let ledger = app.store.ledger(Provider::STRIPE, &id).await.expect("read");
    assert!(ledger.is_none(), "a refused record wrote {ledger:?}");
    let (_, access) = app.get("/users/u_eb/access").await;
    assert_eq!(access["known"], false, "{access}");

    // Through EventBridge: applied; the same record again is a duplicate, and done.
    let ours = batch(&body, SAMPLE_SOURCE, SAMPLE_ACCOUNT);
    assert_eq!(failed(&ingress.handle_batch(&ours).await), 0);
    let ledger = app.store.ledger(Provider::STRIPE, &id).await.expect("read");
    assert_eq!(ledger.map(|r| r.state), Some(LedgerState::Applied));
    assert_eq!(failed(&ingress.handle_batch(&ours).await), 0);
    assert_eq!(app.metrics.count(Counter::Applied), 1);
    assert_eq!(app.metrics.count(Counter::Redelivered), 1);

    // The webhook delivery of the same event, signed: a duplicate of the EventBridge copy.
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "duplicate", "{json}");
    assert_eq!(json["detected_by"], "ledger_read", "{json}");
    assert_eq!(app.metrics.count(Counter::Applied), 1);

    let audit = app
        .store
        .audit(Provider::STRIPE, &CustomerId::new("cus_eb"), 100)
        .await
        .expect("audit");
    assert_eq!(audit.iter().filter(|a| a.event_id == id).count(), 1);
    let (_, access) = app.get("/users/u_eb/access").await;
    assert_eq!(access["known"], true, "{access}");
}

#[tokio::test]
async fn moto_a_webhook_delivery_first_makes_the_eventbridge_copy_a_duplicate() {
    let app = spawn_moto(false).await;
    let ingress = Ingress {
        pipeline: app.service.clone(),
        settings: Settings::sample(),
        metrics: app.metrics.clone(),
    };
    let id = EventId::new("evt_webhook_then_eventbridge");
    let body = event(
        id.as_str(),
        "customer.subscription.created",
        NOW,
        subscription("sub_we", "cus_we", "active", Some("u_we")),
    );
    let (status, json) = app.post(Family::Subscription, &body).await;
    assert_eq!(
        (status, &json["state"]),
        (StatusCode::OK, &"applied".into())
    );
    let ours = batch(&body, SAMPLE_SOURCE, SAMPLE_ACCOUNT);
    assert_eq!(failed(&ingress.handle_batch(&ours).await), 0);
    assert_eq!(app.metrics.count(Counter::Applied), 1);
    assert_eq!(app.metrics.count(Counter::Redelivered), 1);
    let audit = app
        .store
        .audit(Provider::STRIPE, &CustomerId::new("cus_we"), 100)
        .await
        .expect("audit");
    assert_eq!(audit.iter().filter(|a| a.event_id == id).count(), 1);
}
