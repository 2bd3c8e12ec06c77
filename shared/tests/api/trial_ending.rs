//! The trial-ending email (`trial_ending`, off by default): Stripe's
//! `customer.subscription.trial_will_end` (three days before the trial's end) queues it; the
//! consumer sends it only while the subscription is still in its trial, once per subscription.

use crate::email_send::{email_app, memory_consumer, pending_jobs};
use crate::helpers::{event, subscription, TestApp, NOW};
use billing::adapters::email_testing::InMemoryMailer;
use billing::adapters::memory::InMemoryBillingStore;
use billing::emails::kinds::EmailKind;
use billing::emails::send::JobOutcome;
use billing::providers::stripe::Family;
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const TRIAL_END: i64 = NOW + 3 * 86_400;

/// A customer record with an address, then its trialing subscription.
async fn trialing(app: &TestApp, tag: &str) {
    trialing_as(app, tag, json!(null), json!([])).await;
}

/// [`trialing`] for a customer with this `name` and these `preferred_locales`.
async fn trialing_as(app: &TestApp, tag: &str, name: Value, locales: Value) {
    let customer = json!({
        "id": format!("cus_{tag}"),
        "object": "customer",
        "email": format!("{tag}@example.com"),
        "name": name,
        "preferred_locales": locales,
        "metadata": {"user_id": format!("user_{tag}")},
    });
    let body = event(
        &format!("evt_{tag}_c"),
        "customer.created",
        NOW - 900,
        customer,
    );
    assert_eq!(app.post(Family::Charge, &body).await.0, StatusCode::OK);
    let body = event(
        &format!("evt_{tag}_s"),
        "customer.subscription.created",
        NOW - 800,
        trial_object(tag, "trialing"),
    );
    assert_eq!(
        app.post(Family::Subscription, &body).await.0,
        StatusCode::OK
    );
}

fn trial_object(tag: &str, status: &str) -> Value {
    let mut sub = subscription(
        &format!("sub_{tag}"),
        &format!("cus_{tag}"),
        status,
        Some(&format!("user_{tag}")),
    );
    sub["trial_start"] = json!(NOW - 11 * 86_400);
    sub["trial_end"] = json!(TRIAL_END);
    sub
}

async fn will_end(app: &TestApp, tag: &str, id: &str) {
    let body = event(
        id,
        "customer.subscription.trial_will_end",
        NOW - 10,
        trial_object(tag, "trialing"),
    );
    assert_eq!(
        app.post(Family::Subscription, &body).await.0,
        StatusCode::OK
    );
}

fn trial_ending_on() -> BTreeSet<EmailKind> {
    [EmailKind::TrialEnding].into()
}

#[tokio::test]
async fn a_trial_that_ends_in_three_days_gets_one_email_naming_the_day() {
    let app = email_app(Arc::new(InMemoryBillingStore::new()), trial_ending_on());
    let mailbox = Arc::new(InMemoryMailer::default());
    let sender = memory_consumer(&app, mailbox.clone());
    trialing(&app, "te1").await;
    // Stripe may send the notice twice (a redelivery, another endpoint): one job, one email.
    will_end(&app, "te1", "evt_te1_w").await;
    will_end(&app, "te1", "evt_te1_w").await;
    let jobs = pending_jobs(app.store.as_ref()).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0].kind(), jobs[0].object()),
        (EmailKind::TrialEnding, "sub_te1")
    );
    let outcome = sender.handle(&jobs[0]).await;
    assert!(matches!(outcome, JobOutcome::Sent { .. }), "{outcome:?}");
    assert!(matches!(
        sender.handle(&jobs[0]).await,
        JobOutcome::AlreadyDone(_)
    ));
    let mails = mailbox.sent();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (to, subject) = &mails[0];
    assert_eq!(to, "te1@example.com");
    assert!(subject.contains("4 January 2025"), "{subject}");
}

#[tokio::test]
async fn a_trial_that_already_converted_or_was_cancelled_gets_no_trial_email() {
    for (tag, then) in [("te2", "active"), ("te3", "canceled")] {
        let app = email_app(Arc::new(InMemoryBillingStore::new()), trial_ending_on());
        let mailbox = Arc::new(InMemoryMailer::default());
        let sender = memory_consumer(&app, mailbox.clone());
        trialing(&app, tag).await;
        will_end(&app, tag, &format!("evt_{tag}_w")).await;
        // Before the job runs, the trial ended early: paid now, or cancelled.
        let kind = if then == "canceled" {
            "customer.subscription.deleted"
        } else {
            "customer.subscription.updated"
        };
        let mut object = trial_object(tag, then);
        object["trial_end"] = json!(NOW - 5);
        let body = event(&format!("evt_{tag}_u"), kind, NOW - 5, object);
        assert_eq!(
            app.post(Family::Subscription, &body).await.0,
            StatusCode::OK
        );
        let jobs = pending_jobs(app.store.as_ref()).await;
        let job = jobs
            .iter()
            .find(|j| j.kind() == EmailKind::TrialEnding)
            .expect("the trial job");
        let outcome = sender.handle(job).await;
        assert!(
            matches!(&outcome, JobOutcome::Skipped { reason } if reason == "trial_over"),
            "{then}: {outcome:?}"
        );
        assert!(mailbox.sent().is_empty(), "{then}");
    }
}

#[tokio::test]
async fn the_trial_email_is_off_unless_switched_on() {
    let app = email_app(
        Arc::new(InMemoryBillingStore::new()),
        [EmailKind::PaymentActionRequired, EmailKind::Welcome].into(),
    );
    trialing(&app, "te4").await;
    will_end(&app, "te4", "evt_te4_w").await;
    assert!(pending_jobs(app.store.as_ref())
        .await
        .iter()
        .all(|j| j.kind() != EmailKind::TrialEnding));
}

#[tokio::test]
async fn the_email_is_in_the_customers_language_and_greets_them_by_name() {
    for (tag, name, locales, greeting, subject) in [
        (
            "te5",
            json!("Ada Lovelace"),
            json!(["fr-FR", "en"]),
            "Bonjour Ada Lovelace,",
            "votre essai se termine le 4 janvier 2025",
        ),
        (
            "te6",
            json!(null),
            json!(["de", "it"]),
            "Hello,",
            "your trial ends on 4 January 2025",
        ),
    ] {
        let app = email_app(Arc::new(InMemoryBillingStore::new()), trial_ending_on());
        let mailbox = Arc::new(InMemoryMailer::default());
        let sender = memory_consumer(&app, mailbox.clone());
        trialing_as(&app, tag, name, locales).await;
        will_end(&app, tag, &format!("evt_{tag}_w")).await;
        let jobs = pending_jobs(app.store.as_ref()).await;
        let outcome = sender.handle(&jobs[0]).await;
        assert!(matches!(outcome, JobOutcome::Sent { .. }), "{outcome:?}");
        let (_, sent_subject) = &mailbox.sent()[0];
        assert!(sent_subject.ends_with(subject), "{tag}: {sent_subject}");
        let body = mailbox.bodies().pop().expect("a body");
        assert!(body.text.starts_with(greeting), "{tag}: {}", body.text);
    }
}
