//! The PayPal event list against a small fake of PayPal on 127.0.0.1 (a fake, not PayPal: the
//! token endpoint and `GET /v1/notifications/webhooks-events` with `start_time`/`end_time` and
//! a `next` link; its first list answer is a 429).

use super::*;
use crate::backfill::{walk_all, Range, TrustedSink, TypeFilter, Walker};
use crate::bounds::CallBounds;
use crate::pipeline::Outcome;
use crate::ports::{FixedClock, LedgerState};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode as Status;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Fake {
    base: Mutex<String>,
    events: Vec<serde_json::Value>,
    list_calls: AtomicUsize,
    /// Where the second page's link points (tests a foreign one).
    next_host: Mutex<Option<String>>,
}

fn paypal_event(i: usize, at: &str) -> serde_json::Value {
    json!({"id": format!("WH-{i:04}"), "create_time": at, "event_type": "BILLING.SUBSCRIPTION.UPDATED",
           "resource_type": "subscription", "resource": {"id": format!("I-{i}")}})
}

async fn token() -> Response {
    Json(json!({"access_token": "A21-test", "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

async fn list(State(fake): State<Arc<Fake>>, RawQuery(raw): RawQuery) -> Response {
    let q: HashMap<String, String> = Url::parse(&format!("http://x/?{}", raw.unwrap_or_default()))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    if fake.list_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return Status::TOO_MANY_REQUESTS.into_response();
    }
    let (Some(from), Some(to)) = (
        q.get("start_time").and_then(|t| parse_rfc3339(t)),
        q.get("end_time").and_then(|t| parse_rfc3339(t)),
    ) else {
        return Status::BAD_REQUEST.into_response();
    };
    let inside: Vec<&serde_json::Value> = fake
        .events
        .iter()
        .filter(|e| {
            let t = parse_rfc3339(e["create_time"].as_str().unwrap_or("")).unwrap_or(0);
            (from..=to).contains(&t)
        })
        .collect();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let chunk: Vec<_> = inside.iter().skip(page * 2).take(2).collect();
    let mut links = vec![];
    if (page + 1) * 2 < inside.len() {
        let base = fake
            .next_host
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_else(|| fake.base.lock().expect("lock").clone());
        let mut href = Url::parse(&base).expect("base").join(PATH).expect("url");
        for (k, v) in &q {
            if k != "page" {
                href.query_pairs_mut().append_pair(k, v);
            }
        }
        href.query_pairs_mut()
            .append_pair("page", &(page + 1).to_string());
        links.push(json!({"href": href.as_str(), "rel": "next", "method": "GET"}));
    }
    Json(json!({"events": chunk, "count": chunk.len(), "links": links})).into_response()
}

async fn serve(fake: Arc<Fake>) -> String {
    let app = axum::Router::new()
        .route("/v1/oauth2/token", axum::routing::post(token))
        .route(
            "/v1/notifications/webhooks-events",
            axum::routing::get(list),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    *fake.base.lock().expect("lock") = base.clone();
    base
}

fn events(base: &str) -> PaypalEvents {
    let api = PaypalApi::new(
        base,
        "client".into(),
        super::super::api::ClientSecret::new("secret"),
        CallBounds::default(),
        Arc::new(FixedClock::at(1_700_000_000)),
    )
    .expect("client");
    PaypalEvents::new(api).with_pause(Duration::from_millis(5))
}

#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

#[async_trait]
impl TrustedSink for Sink {
    async fn apply(&self, endpoint: crate::routing::Endpoint, body: &[u8]) -> Outcome {
        assert_eq!(endpoint, super::super::ENDPOINT);
        let v: serde_json::Value = serde_json::from_slice(body).expect("json");
        let id = v["id"].as_str().expect("id").to_owned();
        self.0.lock().expect("lock").push(id.clone());
        Outcome::Recorded {
            event_id: id,
            state: LedgerState::Applied,
        }
    }
}

fn fake(events: Vec<serde_json::Value>) -> Arc<Fake> {
    Arc::new(Fake {
        base: Mutex::new(String::new()),
        events,
        list_calls: AtomicUsize::new(0),
        next_host: Mutex::new(None),
    })
}

#[tokio::test]
async fn every_page_of_the_range_is_listed_after_a_429_and_applied_oldest_first() {
    let fake = fake(vec![
        paypal_event(3, "2023-11-14T22:13:50Z"),
        paypal_event(1, "2023-11-14T22:13:20.250Z"),
        paypal_event(2, "2023-11-14T22:13:30Z"),
        paypal_event(4, "2023-11-14T22:13:55+00:00"),
        paypal_event(9, "2023-11-15T22:13:55Z"),
    ]);
    let base = serve(fake.clone()).await;
    let source = events(&base);
    let sink = Sink::default();
    let mut walker = Walker::new(Range {
        since: 1_700_000_000,
        until: 1_700_000_055,
    });
    let summary = walk_all(
        &mut walker,
        &source,
        &sink,
        &TypeFilter::any(),
        &mut |_, _| {},
    )
    .await
    .expect("walk");
    assert_eq!(summary.total().applied, 4);
    assert_eq!(
        *sink.0.lock().expect("lock"),
        ["WH-0001", "WH-0002", "WH-0003", "WH-0004"]
    );
    assert!(
        fake.list_calls.load(Ordering::SeqCst) >= 3,
        "429, then two pages"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let fake = fake(vec![
        paypal_event(1, "2023-11-14T22:13:20Z"),
        paypal_event(2, "2023-11-14T22:13:21Z"),
        paypal_event(3, "2023-11-14T22:13:22Z"),
    ]);
    *fake.next_host.lock().expect("lock") = Some("http://localhost:9".into());
    let base = serve(fake.clone()).await;
    let source = events(&base);
    let err = source
        .page(
            1_700_000_000,
            1_700_000_100,
            Some("http://localhost:9/v1/notifications/webhooks-events?page=1"),
        )
        .await
        .expect_err("refused");
    assert!(err.0.contains("not followed"), "{err}");
}
