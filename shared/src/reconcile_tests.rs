//! The reconcile core in memory, with an injected clock and deadline: the lifecycle fixtures as
//! Stripe's event list (two of them delivered by "webhooks" first), a run cut off by its
//! deadline and the next one resuming, and the subscription sample repairing drift once.

use super::*;
use crate::adapters::checkpoints::InMemoryCheckpoints;
use crate::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use crate::backfill::{EventPage, Listed};
use crate::ports::FixedClock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const NOW: i64 = 1_800_000_000;

const LIFECYCLE: [&str; 8] = [
    "01_checkout.session.completed.json",
    "02_customer.subscription.created.json",
    "03_invoice.paid.json",
    "04_invoice.payment_failed.json",
    "05_invoice.payment_action_required.json",
    "06_customer.subscription.updated__past_due.json",
    "07_customer.subscription.updated__cancel_at_period_end.json",
    "08_customer.subscription.deleted.json",
];

/// The lifecycle fixtures, moved to the last hours before `NOW` (one an hour, in order).
fn lifecycle() -> Vec<Listed> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe/lifecycle");
    LIFECYCLE
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
            let mut v: Value = serde_json::from_str(&text).expect("json");
            let created = NOW - (8 - i as i64) * 3_600;
            v["created"] = created.into();
            Listed {
                id: v["id"].as_str().expect("id").to_owned(),
                created,
                event_type: v["type"].as_str().expect("type").to_owned(),
                body: serde_json::to_vec(&v).expect("body"),
            }
        })
        .collect()
}

/// Stripe's event list in memory: newest first, two a page.
struct Events(Vec<Listed>);

#[async_trait]
impl EventSource for Events {
    fn provider(&self) -> Provider {
        Provider::STRIPE
    }
    fn endpoint(&self, event_type: &str) -> crate::routing::Endpoint {
        crate::providers::stripe::translate::family_of(event_type).endpoint()
    }
    async fn page(&self, gte: i64, lte: i64, next: Option<&str>) -> Result<EventPage, ApiError> {
        let mut window: Vec<&Listed> = self
            .0
            .iter()
            .filter(|e| (gte..=lte).contains(&e.created))
            .collect();
        window.sort_by_key(|e| std::cmp::Reverse(e.created));
        let start = next
            .and_then(|id| window.iter().position(|e| e.id == id))
            .map_or(0, |i| i + 1);
        let page: Vec<Listed> = window
            .iter()
            .skip(start)
            .take(2)
            .map(|e| (*e).clone())
            .collect();
        let more = start + page.len() < window.len();
        Ok(EventPage {
            next: more.then(|| page.last().map(|e| e.id.clone())).flatten(),
            events: page,
        })
    }
}

/// Stripe's subscriptions in memory, one a page.
struct Subs(Mutex<Vec<Value>>);

#[async_trait]
impl SubscriptionList for Subs {
    async fn page(&self, after: Option<&str>) -> Result<(Vec<Value>, bool), ApiError> {
        let all = self.0.lock().expect("lock").clone();
        let start = after
            .and_then(|id| all.iter().position(|s| s["id"] == id))
            .map_or(0, |i| i + 1);
        let page: Vec<Value> = all.iter().skip(start).take(1).cloned().collect();
        Ok((page, start + 1 < all.len()))
    }
}

struct World {
    reconciler: Reconciler,
    metrics: Arc<Metrics>,
}

fn world(subs: Vec<Value>) -> World {
    let store = Arc::new(InMemoryBillingStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let metrics = Arc::new(Metrics::memory());
    let settings = crate::providers::stripe::Settings {
        tolerance_secs: 300,
        livemode: false,
        mapping: StripeMapping::default(),
        tiers: crate::domain::access::TierPolicy::default(),
    };
    let pipeline = Arc::new(crate::providers::stripe::pipeline(
        store,
        Arc::new(StaticSecrets::default()),
        clock.clone(),
        metrics.clone(),
        settings,
    ));
    World {
        reconciler: Reconciler {
            account: None,
            events: Arc::new(Events(lifecycle())),
            subscriptions: Arc::new(Subs(Mutex::new(subs))),
            pipeline,
            checkpoints: Arc::new(InMemoryCheckpoints::default()),
            clock,
            metrics: metrics.clone(),
            mapping: StripeMapping::default(),
            livemode: false,
            settings: Settings {
                first_lookback_secs: 86_400,
                ..Settings::default()
            },
        },
        metrics,
    }
}

fn plenty() -> Duration {
    Duration::from_secs(600)
}

#[tokio::test]
async fn a_run_cut_off_by_its_deadline_resumes_and_applies_each_missed_event_once() {
    let w = world(vec![]);
    // Two events reached us by webhook before.
    for e in lifecycle().iter().take(2) {
        let family = crate::providers::stripe::translate::family_of(&e.event_type);
        let outcome = w
            .reconciler
            .pipeline
            .receive_trusted(family.endpoint(), &e.body)
            .await;
        assert!(matches!(outcome, Outcome::Recorded { .. }), "{outcome:?}");
    }
    // The deadline comes close after a few checks.
    let calls = AtomicUsize::new(0);
    let closing = || {
        if calls.fetch_add(1, Ordering::SeqCst) < 6 {
            plenty()
        } else {
            Duration::from_secs(1)
        }
    };
    let first = w.reconciler.run(&closing).await.expect("run");
    assert!(first.cut_off, "{first:?}");
    let applied_first = first.events.total().missed();
    assert!(applied_first < 6, "cut off before the end: {first:?}");

    let second = w.reconciler.run(&plenty).await.expect("run");
    assert!(!second.cut_off);
    assert_eq!(
        applied_first + second.events.total().missed(),
        6,
        "{second:?}"
    );
    assert_eq!(w.metrics.count(Counter::MissedEvents), 6);
    assert_eq!(second.reached, Some(NOW));

    // A third run over the overlap finds only duplicates.
    let third = w.reconciler.run(&plenty).await.expect("run");
    assert_eq!(third.events.total().missed(), 0, "{third:?}");
    assert_eq!(w.metrics.count(Counter::MissedEvents), 6);
}

fn subscription(id: &str, customer: &str, status: &str) -> Value {
    serde_json::json!({
        "id": id, "object": "subscription", "customer": customer, "status": status,
        "created": NOW - 90_000, "current_period_start": NOW - 1_000,
        "current_period_end": NOW + 2_591_000, "cancel_at_period_end": false,
        "livemode": false, "metadata": {},
        "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": "price_pro", "product": "prod_1"},
                  "current_period_start": NOW - 1_000, "current_period_end": NOW + 2_591_000}]}
    })
}

#[tokio::test]
async fn drift_is_repaired_once_and_the_sample_rotates_through_every_subscription() {
    let w = world(vec![
        subscription("sub_missing", "cus_drift", "active"),
        subscription("sub_life1", "cus_life1", "canceled"),
    ]);
    let first = w.reconciler.run(&plenty).await.expect("run");
    // The events applied the lifecycle (sub_life1 canceled); sub_missing was never seen.
    assert_eq!(first.checked, 2, "{first:?}");
    assert_eq!(first.drift, 1, "{first:?}");
    assert_eq!(w.metrics.count(Counter::DriftRepaired), 1);
    let stored = w
        .reconciler
        .pipeline
        .store()
        .customer(
            Provider::STRIPE,
            &crate::domain::ids::CustomerId::new("cus_drift"),
        )
        .await
        .expect("read")
        .expect("repaired");
    assert!(stored
        .value
        .subscriptions
        .contains_key(&crate::domain::ids::SubscriptionId::new("sub_missing")));

    // The next run wraps around the list and finds nothing to repair.
    let second = w.reconciler.run(&plenty).await.expect("run");
    assert_eq!((second.checked, second.drift), (2, 0), "{second:?}");
    assert_eq!(w.metrics.count(Counter::DriftRepaired), 1);
}

#[test]
fn settings_are_read_and_bad_ones_refused_by_name() {
    let s = Settings::read(|_| None).expect("defaults");
    assert_eq!(s, Settings::default());
    let s = Settings::read(|k| (k == "BILLING_RECONCILE_SAMPLE").then(|| "5".into())).expect("ok");
    assert_eq!(s.sample, 5);
    let err = Settings::read(|k| (k == "BILLING_RECONCILE_OVERLAP_SECS").then(|| "-1".into()))
        .expect_err("refused");
    assert!(err.contains("BILLING_RECONCILE_OVERLAP_SECS"), "{err}");
}

#[test]
fn connected_accounts_are_read_checked_and_bounded() {
    let read = |v: &str| {
        let v = v.to_owned();
        Settings::read(move |k| (k == "BILLING_RECONCILE_STRIPE_ACCOUNTS").then(|| v.clone()))
    };
    assert!(read("").expect("none").accounts.is_empty());
    let s = read(" acct_1A , acct_2B,").expect("two");
    let got: Vec<&str> = s.accounts.iter().map(|a| a.as_str()).collect();
    assert_eq!(got, ["acct_1A", "acct_2B"]);
    let err = read("acct_1A,cus_1").expect_err("not an account");
    assert!(
        err.contains("BILLING_RECONCILE_STRIPE_ACCOUNTS") && err.contains("cus_1"),
        "{err}"
    );
    assert!(read("acct_1A,acct_1A")
        .expect_err("twice")
        .contains("twice"));
    let many: Vec<String> = (0..=super::settings::MAX_ACCOUNTS)
        .map(|i| format!("acct_{i}"))
        .collect();
    assert!(read(&many.join(","))
        .expect_err("too many")
        .contains("at most"));
}

/// `events/reconcile.scheduled.json` is the template's Scheduler input, and `expected.json`
/// states what the function answers it without a Stripe key (scripts/lambda-invoke-check).
#[test]
fn the_scheduled_sample_event_is_answered_as_expected() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(events.join("reconcile.scheduled.json")).expect("sample"),
    )
    .expect("json");
    let template = std::fs::read_to_string(events.join("../template.yaml")).expect("template");
    assert!(template.contains(&format!("Input: '{}'", sample.to_string().replace(' ', ""))));
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(events.join("expected.json")).expect("expected"),
    )
    .expect("json");
    let entry = expected["events"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["function"] == "reconcile"))
        .expect("the reconcile entry");
    assert_eq!(entry["response"], no_key_answer());
}

#[test]
fn a_list_page_in_the_lambda_ends_well_inside_the_margin() {
    // Fails with the import's bounds (30 minutes per page): a 429 storm would carry the run past
    // its timeout instead of leaving the page to the next run.
    for margin_ms in [1_000, 30_000, 600_000] {
        let settings = Settings {
            margin: std::time::Duration::from_millis(margin_ms),
            ..Settings::default()
        };
        let b = settings.list_bounds();
        // The budget ends the retries; the attempt in flight then may take `attempt` more.
        assert!(
            b.budget + b.attempt < settings.margin,
            "{margin_ms} ms: {b:?}"
        );
        assert!(b.max_backoff <= b.budget && b.connect <= b.attempt, "{b:?}");
    }
}
