//! `billing import`'s engine against localstripe (behind `localstripe.rs`'s proxy) and moto:
//! an account made before the system existed is imported and every user's access equals
//! Stripe's truth; a second import applies nothing; an interrupted one resumes without
//! repeating work; 429s slow it and never fail it; a dry run writes nothing.

use crate::helpers::*;
use crate::localstripe::{proxy, seed, Faults, Has, LocalStripe, Seeded, KEY};
use billing::adapters::checkpoints::DynamoCheckpoints;
use billing::adapters::stripe_list::StripeList;
use billing::catchup::dry_run::DryRunStore;
use billing::catchup::import::{ImportOptions, ImportReport, Importer, JOB, KINDS};
use billing::catchup::progress::Progress;
use billing::catchup::Tally;
use billing::domain::ids::{Provider, UserId};
use billing::pipeline::Pipeline;
use billing::ports::{Clock, SystemClock};
use billing::telemetry::Counter;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The account of the first test: every state a user can be in, twice, plus one.
const ACCOUNT: [Has; 9] = [
    Has::Active,
    Has::Trialing,
    Has::Canceled,
    Has::Nothing,
    Has::Active,
    Has::Trialing,
    Has::Canceled,
    Has::Nothing,
    Has::Active,
];

fn options() -> ImportOptions {
    ImportOptions {
        since: SystemClock.now() - 90 * 86_400,
        kinds: KINDS.to_vec(),
        restart: false,
        dry_run: false,
        concurrency: 4,
        livemode: false,
        account: None,
    }
}

fn list(base: &str) -> Arc<StripeList> {
    // Pages of 4: the account spans several pages of every kind.
    quick_list(base, KEY, 4, 4)
}

fn importer(app: &TestApp, pipeline: Arc<Pipeline>, base: &str) -> Importer {
    let dynamo = app.dynamo.as_ref().expect("a moto app");
    Importer {
        pipeline,
        list: list(base),
        checkpoints: Arc::new(DynamoCheckpoints::new(
            aws_sdk_dynamodb::Client::new(&sdk_config()),
            dynamo.table(),
        )),
        progress: Arc::new(Progress::quiet(JOB)),
    }
}

/// A moto app whose clock is the wall clock (localstripe's objects are made now).
async fn app_now() -> TestApp {
    let app = spawn_moto(false).await;
    app.clock.set(SystemClock.now());
    app
}

fn total(report: &ImportReport) -> Tally {
    let mut t = Tally::default();
    for (_, k, _) in &report.kinds {
        t.add(k);
    }
    t
}

/// Every seeded user's access against Stripe's truth (the proxy's view: trials faked).
async fn assert_access_is_the_truth(app: &TestApp, seeded: &Seeded) {
    for (user, _customer, sub) in &seeded.users {
        let (status, access) = app.get(&format!("/users/{user}/access")).await;
        assert_eq!(status, http::StatusCode::OK, "{user}: {access}");
        match sub {
            Some((id, stripe_status))
                if stripe_status == "active" || stripe_status == "trialing" =>
            {
                assert_eq!(access["tier"], "pro", "{user}: {access}");
                assert_eq!(access["status"], stripe_status.as_str(), "{user}: {access}");
                assert_eq!(access["subscription"], id.as_str(), "{user}: {access}");
            }
            _ => {
                assert!(
                    access["tier"].is_null(),
                    "{user} has no paid access: {access}"
                );
                assert_eq!(
                    access["known"], true,
                    "{user}'s customer is linked: {access}"
                );
            }
        }
    }
}

#[tokio::test]
async fn moto_import_an_existing_account_matches_stripes_truth_and_a_second_run_applies_nothing() {
    let ls = LocalStripe::start().await;
    let faults = Arc::new(Faults::default());
    let seeded = seed(&ls, &faults, &ACCOUNT).await;
    let base = proxy(&ls.url, faults.clone()).await;
    let app = app_now().await;
    let job = importer(&app, app.service.clone(), &base);

    let first = job.run(&options()).await.expect("import");
    assert!(!first.resumed);
    let applied = total(&first).applied;
    // 1 product, 1 plan, 9 customers, 7 subscriptions, their paid invoices (at least 5).
    assert!(applied >= 23, "{first:?}");
    assert_eq!(total(&first).parked, 0, "{first:?}");
    let note = |kind: &str| {
        first
            .kinds
            .iter()
            .find(|(k, _, _)| k == kind)
            .and_then(|(_, _, n)| n.clone())
    };
    assert!(
        note("prices").is_some_and(|n| n.contains("404")),
        "{first:?}"
    );
    assert!(
        note("entitlements").is_some_and(|n| n.contains("404")),
        "{first:?}"
    );
    assert_eq!(note("customers"), None);
    assert_access_is_the_truth(&app, &seeded).await;
    assert_eq!(app.metrics.count(Counter::Applied), applied);
    // The refunded charge and its refund, from the charges and refunds lists.
    let (user, charge) = seeded.refunded.clone().expect("a refund");
    let (_, billing) = app.get(&format!("/users/{user}/billing")).await;
    let charges = billing["charges"].as_array().expect("charges");
    let refunded = charges
        .iter()
        .find(|c| c["charge"] == charge.as_str())
        .unwrap_or_else(|| panic!("{charge} not in {billing}"));
    assert_eq!(refunded["amount_refunded"], 500, "{refunded}");
    assert_eq!(
        refunded["refunds"].as_object().map(|r| r.len()),
        Some(1),
        "{refunded}"
    );

    // A second import (a new run) reads the same objects: the same events, duplicates.
    let second = job
        .run(&ImportOptions {
            restart: true,
            ..options()
        })
        .await
        .expect("second import");
    assert_ne!(second.run_id, first.run_id);
    assert_eq!(total(&second).applied, 0, "{second:?}");
    assert_eq!(
        total(&second).unchanged,
        total(&first).total(),
        "{second:?}"
    );
    assert_eq!(app.metrics.count(Counter::Applied), applied);
    assert_access_is_the_truth(&app, &seeded).await;

    // A third start finds the run finished and starts none of its kinds again.
    let checkpoints = job
        .checkpoints
        .checkpoints(Provider::STRIPE, JOB)
        .await
        .expect("checkpoints");
    assert_eq!(checkpoints.len(), KINDS.len());
    assert!(checkpoints
        .iter()
        .all(|c| c.done && c.run_id == second.run_id));
}

#[tokio::test]
async fn moto_import_interrupted_half_way_resumes_and_repeats_no_work() {
    let ls = LocalStripe::start().await;
    let faults = Arc::new(Faults::default());
    let seeded = seed(&ls, &faults, &ACCOUNT).await;
    let base = proxy(&ls.url, faults.clone()).await;

    // The same account imported without interruption, into a table of its own.
    let clean_app = app_now().await;
    let clean = importer(&clean_app, clean_app.service.clone(), &base)
        .run(&options())
        .await
        .expect("clean import");
    let clean_applied = clean_app.metrics.count(Counter::Applied);
    let requests = faults.requests.load(Ordering::SeqCst);

    // Cut off half-way: every request after half of them is refused for good.
    let app = app_now().await;
    let job = importer(&app, app.service.clone(), &base);
    faults.requests.store(0, Ordering::SeqCst);
    faults.fail_after.store(requests / 2, Ordering::SeqCst);
    let e = job.run(&options()).await.expect_err("interrupted");
    assert!(e.contains("status 400"), "{e}");
    let cut = job
        .checkpoints
        .checkpoints(Provider::STRIPE, JOB)
        .await
        .expect("checkpoints");
    assert!(cut.iter().any(|c| !c.done), "{cut:?}");
    let applied_before = app.metrics.count(Counter::Applied);
    assert!(applied_before > 0 && applied_before < clean_applied);

    // Started again: the same run goes on from its checkpoints.
    faults.fail_after.store(0, Ordering::SeqCst);
    let resumed = job.run(&options()).await.expect("resumed");
    assert!(resumed.resumed);
    assert_eq!(resumed.run_id, cut[0].run_id);
    assert_eq!(
        app.metrics.count(Counter::Applied),
        clean_applied,
        "no work repeated"
    );
    assert_eq!(total(&resumed).applied, total(&clean).applied);
    assert_access_is_the_truth(&app, &seeded).await;
    for (user, _, _) in &seeded.users {
        let (_, got) = app.get(&format!("/users/{user}/access")).await;
        let (_, want) = clean_app.get(&format!("/users/{user}/access")).await;
        for field in [
            "tier",
            "status",
            "subscription",
            "current_period_end",
            "standing",
        ] {
            assert_eq!(got[field], want[field], "{user} {field}");
        }
    }
}

#[tokio::test]
async fn moto_import_finishes_under_injected_429s() {
    let ls = LocalStripe::start().await;
    let faults = Arc::new(Faults::default());
    let seeded = seed(&ls, &faults, &ACCOUNT[..5]).await;
    let base = proxy(&ls.url, faults.clone()).await;
    faults.rate_limit_every.store(2, Ordering::SeqCst);
    let app = app_now().await;
    let job = importer(&app, app.service.clone(), &base);
    let report = job.run(&options()).await.expect("finishes");
    assert!(faults.rate_limited.load(Ordering::SeqCst) >= 10);
    assert_eq!(
        job.list.stats.rate_limited.load(Ordering::Relaxed),
        faults.rate_limited.load(Ordering::SeqCst)
    );
    assert!(total(&report).applied > 0);
    assert_access_is_the_truth(&app, &seeded).await;
}

#[tokio::test]
async fn moto_import_dry_run_reports_and_writes_nothing() {
    let ls = LocalStripe::start().await;
    let faults = Arc::new(Faults::default());
    let seeded = seed(&ls, &faults, &ACCOUNT[..4]).await;
    let base = proxy(&ls.url, faults.clone()).await;
    let app = app_now().await;
    let dry = Arc::new(DryRunStore::new(app.store.clone()));
    let pipeline = Arc::new(billing::providers::stripe::pipeline(
        dry.clone(),
        app.secrets.clone(),
        app.clock.clone(),
        app.metrics.clone(),
        settings(false),
    ));
    let job = importer(&app, pipeline, &base);
    let report = job
        .run(&ImportOptions {
            dry_run: true,
            ..options()
        })
        .await
        .expect("dry run");
    assert!(total(&report).applied > 0, "{report:?}");
    assert!(dry.would.users.load(Ordering::Relaxed) > 0);
    for (user, _, _) in &seeded.users {
        let stored = app.store.load_user(&UserId::new(user)).await.expect("read");
        assert_eq!(stored, None, "{user} written by a dry run");
    }
    let checkpoints = job
        .checkpoints
        .checkpoints(Provider::STRIPE, JOB)
        .await
        .expect("checkpoints");
    assert!(checkpoints.is_empty(), "{checkpoints:?}");
}
