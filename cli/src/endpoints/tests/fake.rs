//! A fake of Stripe's webhook endpoint API on 127.0.0.1 (no network): list (pages of
//! `PAGE_CAP`, newest first), create, update and delete with form-encoded bodies as async-stripe
//! sends them, Stripe's error JSON, and a record of every call.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Pages are smaller than a real run's endpoint count, so listing must follow `has_more`.
const PAGE_CAP: usize = 2;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
    pub stripe_version: Option<String>,
}

impl Call {
    pub fn writes(&self) -> bool {
        self.method != Method::GET
    }
}

/// A scripted failure: the next `times` requests with this method whose path starts with
/// `path` get `status` and Stripe's error body.
#[derive(Debug, Clone)]
pub struct Failure {
    pub method: Method,
    pub path: &'static str,
    pub times: usize,
    pub status: u16,
    pub error: Value,
}

#[derive(Default)]
struct Inner {
    /// Oldest first.
    endpoints: Vec<Value>,
    calls: Vec<Call>,
    failures: Vec<Failure>,
    created: u64,
    /// Every secret handed out at creation, by endpoint id.
    secrets: BTreeMap<String, String>,
    /// The endpoints created with `connect=true` (Stripe keeps it but does not show it).
    connect: Vec<String>,
}

#[derive(Default)]
pub struct FakeStripe {
    key: String,
    inner: Mutex<Inner>,
}

impl FakeStripe {
    pub fn new(key: &str) -> Arc<Self> {
        Arc::new(Self {
            key: key.into(),
            ..Self::default()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake lock")
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::writes).collect()
    }

    pub fn endpoints(&self) -> Vec<Value> {
        self.lock().endpoints.clone()
    }

    pub fn at(&self, url: &str) -> Vec<Value> {
        self.endpoints()
            .into_iter()
            .filter(|e| e["url"] == url)
            .collect()
    }

    /// Whether `id` was created as a Connect endpoint.
    pub fn is_connect(&self, id: &str) -> bool {
        self.lock().connect.iter().any(|c| c == id)
    }

    pub fn secret_of(&self, id: &str) -> String {
        self.lock()
            .secrets
            .get(id)
            .cloned()
            .expect("secret handed out")
    }

    pub fn fail(&self, failure: Failure) {
        self.lock().failures.push(failure);
    }

    /// Adds an endpoint as if made elsewhere (the dashboard, an earlier run); returns its id.
    pub fn seed(&self, url: &str, api_version: &str, events: &[&str], metadata: Value) -> String {
        let mut inner = self.lock();
        let id = next_id(&mut inner);
        let endpoint = object(&id, url, api_version, events, metadata);
        inner.endpoints.push(endpoint);
        id
    }

    /// Changes a stored endpoint as if edited in the dashboard.
    pub fn edit(&self, id: &str, change: impl FnOnce(&mut Value)) {
        let mut inner = self.lock();
        let endpoint = inner
            .endpoints
            .iter_mut()
            .find(|e| e["id"] == id)
            .expect("endpoint to edit");
        change(endpoint);
    }

    /// Serves the fake on a random loopback port; returns its base URL (ending in `/`).
    pub async fn serve(self: &Arc<Self>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }
}

fn next_id(inner: &mut Inner) -> String {
    inner.created += 1;
    format!("we_fake{:04}", inner.created)
}

fn object(id: &str, url: &str, api_version: &str, events: &[&str], metadata: Value) -> Value {
    json!({
        "id": id, "object": "webhook_endpoint", "api_version": api_version,
        "application": null, "created": 1_750_000_000, "description": null,
        "enabled_events": events, "livemode": false, "metadata": metadata,
        "secret": null, "status": "enabled", "url": url,
    })
}

fn stripe_error(status: u16, kind: &str, code: &str, param: &str, message: &str) -> Response {
    let error = json!({"error": {"type": kind, "code": code, "param": param, "message": message}});
    let status = StatusCode::from_u16(status).expect("status");
    (status, Json(error)).into_response()
}

fn missing(id: &str) -> Response {
    let message = format!("No such webhook endpoint: '{id}'");
    let kind = "invalid_request_error";
    stripe_error(404, kind, "resource_missing", "webhook_endpoint", &message)
}

/// Decodes `a=1&b%5B0%5D=x` into ordered pairs, as Stripe reads form bodies and queries.
fn pairs(encoded: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{encoded}")).expect("form");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `enabled_events[0]=…` → the list; `metadata[k]=v` → the map (an empty v removes k).
fn form(body: &str) -> (BTreeMap<String, String>, Vec<String>, Map<String, Value>) {
    let (mut plain, mut events, mut metadata) = (BTreeMap::new(), Vec::new(), Map::new());
    for (k, v) in pairs(body) {
        if k.starts_with("enabled_events[") {
            events.push(v);
        } else if let Some(key) = k.strip_prefix("metadata[") {
            metadata.insert(key.trim_end_matches(']').to_owned(), Value::String(v));
        } else {
            plain.insert(k, v);
        }
    }
    (plain, events, metadata)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    State(fake): State<Arc<FakeStripe>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = uri.path().to_owned();
    let authorization = header(&headers, "authorization");
    let mut inner = fake.lock();
    inner.calls.push(Call {
        method: method.clone(),
        path: path.clone(),
        authorization: authorization.clone(),
        stripe_version: header(&headers, "stripe-version"),
    });
    if authorization.as_deref() != Some(format!("Bearer {}", fake.key).as_str()) {
        let kind = "invalid_request_error";
        return stripe_error(401, kind, "", "", "Invalid API Key provided: sk_test_****");
    }
    if let Some(f) = inner
        .failures
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && path.starts_with(f.path))
    {
        f.times -= 1;
        let status = StatusCode::from_u16(f.status).expect("status");
        return (status, Json(f.error.clone())).into_response();
    }
    let rest = path
        .strip_prefix("/v1/webhook_endpoints")
        .map(str::to_owned);
    match (method, rest.as_deref()) {
        (Method::GET, Some("")) => list(&inner, uri.query().unwrap_or_default()),
        (Method::POST, Some("")) => create(&mut inner, &body),
        (Method::POST, Some(id)) => update(&mut inner, id.trim_start_matches('/'), &body),
        (Method::DELETE, Some(id)) => delete(&mut inner, id.trim_start_matches('/')),
        _ => (StatusCode::NOT_FOUND, "not a webhook endpoint route").into_response(),
    }
}

fn list(inner: &Inner, query: &str) -> Response {
    let query: BTreeMap<String, String> = pairs(query).into_iter().collect();
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let newest_first: Vec<&Value> = inner.endpoints.iter().rev().collect();
    let start = match query.get("starting_after") {
        Some(after) => match newest_first.iter().position(|e| e["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => return missing(after),
        },
        None => 0,
    };
    let page: Vec<&Value> = newest_first
        .iter()
        .skip(start)
        .take(limit.min(PAGE_CAP))
        .copied()
        .collect();
    let has_more = start + page.len() < newest_first.len();
    Json(json!({"object": "list", "url": "/v1/webhook_endpoints", "has_more": has_more, "data": page}))
        .into_response()
}

fn create(inner: &mut Inner, body: &str) -> Response {
    let (plain, events, metadata) = form(body);
    let Some(url) = plain.get("url") else {
        return stripe_error(
            400,
            "invalid_request_error",
            "parameter_missing",
            "url",
            "Missing required param: url.",
        );
    };
    if events.is_empty() {
        let message = "Missing required param: enabled_events.";
        return stripe_error(
            400,
            "invalid_request_error",
            "parameter_missing",
            "enabled_events",
            message,
        );
    }
    let id = next_id(inner);
    let secret = format!("whsec_fake_{id}_{:016x}", rand::random::<u64>());
    let version = plain
        .get("api_version")
        .cloned()
        .unwrap_or_else(|| "2019-05-16".into());
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut endpoint = object(&id, url, &version, &events, Value::Object(metadata));
    endpoint["description"] = plain.get("description").map_or(Value::Null, |d| json!(d));
    inner.endpoints.push(endpoint.clone());
    if plain.get("connect").map(String::as_str) == Some("true") {
        inner.connect.push(id.clone());
    }
    inner.secrets.insert(id, secret.clone());
    // Only the create answer carries the secret.
    endpoint["secret"] = json!(secret);
    Json(endpoint).into_response()
}

fn update(inner: &mut Inner, id: &str, body: &str) -> Response {
    let (plain, events, metadata) = form(body);
    let Some(endpoint) = inner.endpoints.iter_mut().find(|e| e["id"] == id) else {
        return missing(id);
    };
    if !events.is_empty() {
        endpoint["enabled_events"] = json!(events);
    }
    if let Some(d) = plain.get("description") {
        endpoint["description"] = json!(d);
    }
    if let Some(disabled) = plain.get("disabled") {
        endpoint["status"] = json!(if disabled == "true" {
            "disabled"
        } else {
            "enabled"
        });
    }
    if let Some(url) = plain.get("url") {
        endpoint["url"] = json!(url);
    }
    let stored = endpoint["metadata"]
        .as_object_mut()
        .expect("metadata object");
    for (k, v) in metadata {
        if v == "" {
            stored.remove(&k);
        } else {
            stored.insert(k, v);
        }
    }
    Json(endpoint.clone()).into_response()
}

fn delete(inner: &mut Inner, id: &str) -> Response {
    let before = inner.endpoints.len();
    inner.endpoints.retain(|e| e["id"] != id);
    if inner.endpoints.len() == before {
        return missing(id);
    }
    Json(json!({"id": id, "object": "webhook_endpoint", "deleted": true})).into_response()
}
