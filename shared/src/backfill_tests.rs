use super::*;
use crate::error::Error;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A provider's event list in memory: newest first, `per_page` a page, the cursor being the
/// last id returned (as Stripe's `starting_after`). Counts the largest window it answered.
struct FakeList {
    events: Vec<Listed>,
    per_page: usize,
    calls: AtomicUsize,
}

fn event(id: usize, created: i64, event_type: &str) -> Listed {
    Listed {
        id: format!("evt_{id:04}"),
        created,
        event_type: event_type.into(),
        body: format!("{{\"id\":\"evt_{id:04}\"}}").into_bytes(),
    }
}

impl FakeList {
    fn new(events: Vec<Listed>) -> Self {
        Self {
            events,
            per_page: 3,
            calls: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl EventSource for FakeList {
    fn provider(&self) -> Provider {
        Provider::STRIPE
    }
    fn endpoint(&self, event_type: &str) -> crate::routing::Endpoint {
        crate::providers::stripe::translate::family_of(event_type).endpoint()
    }
    async fn page(&self, gte: i64, lte: i64, next: Option<&str>) -> Result<EventPage, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut window: Vec<&Listed> = self
            .events
            .iter()
            .filter(|e| (gte..=lte).contains(&e.created))
            .collect();
        window.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        let start = match next {
            Some(id) => window.iter().position(|e| e.id == id).map_or(0, |i| i + 1),
            None => 0,
        };
        let page: Vec<Listed> = window
            .iter()
            .skip(start)
            .take(self.per_page)
            .map(|e| (*e).clone())
            .collect();
        let more = start + page.len() < window.len();
        Ok(EventPage {
            next: more.then(|| page.last().map(|e| e.id.clone())).flatten(),
            events: page,
        })
    }
}

/// The ledger in memory: an id seen before is a duplicate. Remembers the order applied and can
/// fail the first attempts of one id.
#[derive(Default)]
struct FakeLedger {
    seen: Mutex<HashSet<Vec<u8>>>,
    order: Mutex<Vec<String>>,
    fail_first: Mutex<Option<(Vec<u8>, u32)>>,
}

#[async_trait]
impl TrustedSink for FakeLedger {
    async fn apply(&self, _: crate::routing::Endpoint, body: &[u8]) -> Outcome {
        if let Some((b, n)) = self.fail_first.lock().expect("lock").as_mut() {
            if b == body && *n > 0 {
                *n -= 1;
                return Outcome::Unavailable(Error::Deadline(Duration::from_millis(1)));
            }
        }
        let id = String::from_utf8_lossy(body).into_owned();
        if !self.seen.lock().expect("lock").insert(body.to_vec()) {
            return Outcome::Duplicate {
                event_id: id,
                by: crate::pipeline::DuplicateBy::Read,
            };
        }
        self.order.lock().expect("lock").push(id.clone());
        Outcome::Recorded {
            event_id: id,
            state: LedgerState::Applied,
        }
    }
}

fn spread(n: usize) -> Vec<Listed> {
    // Several per second in places, gaps elsewhere.
    (0..n)
        .map(|i| {
            event(
                i,
                1_000 + (i as i64 / 3) * 7,
                "customer.subscription.updated",
            )
        })
        .collect()
}

#[tokio::test]
async fn every_event_is_applied_once_oldest_first_in_windows_under_the_cap() {
    let list = FakeList::new(spread(40));
    let ledger = FakeLedger::default();
    let range = Range {
        since: 900,
        until: 2_000,
    };
    let mut walker = Walker::new(range).with_cap(5);
    let filter = TypeFilter::stripe_subscribed();
    let mut windows = 0;
    let summary = walk_all(&mut walker, &list, &ledger, &filter, &mut |_, _| {
        windows += 1
    })
    .await
    .expect("walk");
    assert_eq!(summary.total().applied, 40);
    assert!(
        windows > 8,
        "a cap of 5 splits 40 events into windows: {windows}"
    );
    let order = ledger.order.lock().expect("lock").clone();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "applied oldest first");
    assert_eq!(walker.reached(), 2_000);

    // A second run over the same range applies nothing new.
    let mut again = Walker::new(range).with_cap(5);
    let second = walk_all(&mut again, &list, &ledger, &filter, &mut |_, _| {})
        .await
        .expect("walk");
    assert_eq!(second.total().duplicate, 40);
    assert_eq!(second.total().missed(), 0);
}

#[tokio::test]
async fn a_second_with_more_events_than_the_cap_is_held_whole() {
    let events: Vec<Listed> = (0..12).map(|i| event(i, 5_000, "invoice.paid")).collect();
    let list = FakeList::new(events);
    let ledger = FakeLedger::default();
    let mut walker = Walker::new(Range {
        since: 4_000,
        until: 6_000,
    })
    .with_cap(4);
    let summary = walk_all(
        &mut walker,
        &list,
        &ledger,
        &TypeFilter::stripe_subscribed(),
        &mut |_, _| {},
    )
    .await
    .expect("walk");
    assert_eq!(summary.total().applied, 12);
}

#[tokio::test]
async fn a_walk_stopped_midway_resumes_from_its_mark_and_repeats_no_applied_work() {
    let list = FakeList::new(spread(30));
    let ledger = FakeLedger::default();
    let range = Range {
        since: 900,
        until: 2_000,
    };
    let filter = TypeFilter::stripe_subscribed();
    let mut walker = Walker::new(range).with_cap(4);
    let mut summary = Summary::default();
    // Stop after a few checks, as a deadline would.
    let checks = AtomicUsize::new(0);
    let stop = || checks.fetch_add(1, Ordering::SeqCst) >= 12;
    loop {
        match walker
            .next_window(&list, &ledger, &filter, &mut summary, &stop)
            .await
            .expect("step")
        {
            Step::Window { .. } => {}
            Step::Stopped => break,
            Step::Done => panic!("the stop comes first"),
        }
    }
    let applied_first = summary.total().applied;
    assert!(applied_first > 0 && applied_first < 30, "{applied_first}");
    let mark = walker.reached();
    assert!(mark < 2_000);

    // A new run from the stored mark: the rest is applied; what was applied after the mark in
    // the cut window comes back as duplicates, nothing twice.
    let mut resumed = Walker::new(Range {
        since: mark + 1,
        until: range.until,
    })
    .with_cap(4);
    let rest = walk_all(&mut resumed, &list, &ledger, &filter, &mut |_, _| {})
        .await
        .expect("walk");
    assert_eq!(applied_first + rest.total().applied, 30);
    assert_eq!(ledger.order.lock().expect("lock").len(), 30);
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_types_no_endpoint_has_are_skipped() {
    let mut events = spread(6);
    events.push(event(99, 1_001, "payout.paid"));
    let list = FakeList::new(events);
    let ledger = FakeLedger::default();
    *ledger.fail_first.lock().expect("lock") = Some((list.events[2].body.clone(), 2));
    let mut walker = Walker::new(Range {
        since: 900,
        until: 2_000,
    });
    let summary = walk_all(
        &mut walker,
        &list,
        &ledger,
        &TypeFilter::stripe_subscribed(),
        &mut |_, _| {},
    )
    .await
    .expect("walk");
    assert_eq!(summary.total().applied, 6);
    assert_eq!(summary.skipped, 1);
}

#[tokio::test]
async fn a_failure_that_persists_stops_the_walk_at_the_last_whole_window() {
    let list = FakeList::new(spread(6));
    let ledger = FakeLedger::default();
    *ledger.fail_first.lock().expect("lock") = Some((list.events[4].body.clone(), 99));
    let mut walker = Walker::new(Range {
        since: 900,
        until: 2_000,
    });
    let err = walk_all(
        &mut walker,
        &list,
        &ledger,
        &TypeFilter::stripe_subscribed(),
        &mut |_, _| {},
    )
    .await
    .expect_err("must stop");
    assert!(
        matches!(&err, WalkError::Apply { event_id, .. } if event_id == "evt_0004"),
        "{err}"
    );
    assert_eq!(walker.reached(), 899, "the window is not counted");
}

#[test]
fn since_beyond_the_retention_is_refused_naming_it() {
    let now = 1_800_000_000;
    let err = Range::checked(now - 31 * 86_400, None, now).expect_err("31 days");
    assert!(err.contains("30 days"), "{err}");
    assert!(err.contains("Events API"), "{err}");
    let ok = Range::checked(now - 29 * 86_400, None, now).expect("29 days");
    assert_eq!(ok.until, now);
    assert!(Range::checked(now - 10, Some(now - 20), now).is_err());
    assert_eq!(
        Range::checked(now - 10, Some(now + 50), now)
            .expect("clamped")
            .until,
        now
    );
}

#[test]
fn times_read_and_print() {
    assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
    assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
    assert!(parse_time("yesterday").is_err());
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
}

#[test]
fn types_are_those_an_endpoint_subscribes_to() {
    let t = TypeFilter::stripe_only(&["invoice.paid,customer.subscription.updated".into()])
        .expect("types");
    assert_eq!(t.len(), 2);
    assert!(t.allows("invoice.paid") && !t.allows("invoice.created"));
    let err = TypeFilter::stripe_only(&["payout.paid".into()]).expect_err("refused");
    assert!(err.contains("payout.paid"), "{err}");
    assert!(TypeFilter::any().allows("anything"));
}
