//! localstripe (PyPI, pinned in scripts/requirements-dev.txt) for the import tests: one process
//! per test on a free port, started from scratch (its state is global, so tests never share
//! one), and a small proxy in front of it that fakes only what it lacks and injects faults:
//!
//! - a trial: localstripe keeps a subscription with a trial `incomplete` (it creates no invoice);
//!   the proxy answers `trialing` for the ids the test marks;
//! - `created[gt]` on `/v1/invoices` and `/v1/refunds`: localstripe refuses the filter there (400);
//!   the proxy drops it (every invoice of a test is recent anyway);
//! - faults: a 429 on every k-th request, and a final 400 after N requests (an interrupted run).
//!
//! `/v1/prices`, `/v1/disputes` and `/v1/entitlements/active_entitlements` are not faked: they
//! answer 404, and the import skips them with a note.

use serde_json::Value;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY: &str = "sk_test_localstripe";

/// A localstripe process; killed when dropped.
pub struct LocalStripe {
    child: Child,
    pub url: String,
    _dir: TempDir,
    http: reqwest::Client,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> std::path::PathBuf {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/ensure-venv (scripts/test does), which installs localstripe",
        bin.display()
    );
    bin
}

/// One localstripe for the tests that share it (their objects are their own ids), started on
/// first use; it exits when this test binary does (`--exit-with-parent`), so nothing waits on it.
#[allow(clippy::zombie_processes)]
pub fn shared_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir().join(crate::helpers::unique("localstripe-shared"));
        std::fs::create_dir_all(&dir).expect("dir");
        Command::new(binary())
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../scripts/localstripe_server.py"),
            )
            .args(["--port", &port.to_string(), "--exit-with-parent"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return format!("http://127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("localstripe did not listen on port {port} within 15 s");
    })
}

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

impl LocalStripe {
    pub async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir().join(crate::helpers::unique("localstripe"));
        std::fs::create_dir_all(&dir).expect("dir");
        let child = Command::new(binary())
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../scripts/localstripe_server.py"),
            )
            .args(["--port", &port.to_string()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstripe");
        let ls = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: TempDir(dir),
            http: http_client(),
        };
        for _ in 0..150 {
            let answered = ls
                .http
                .get(format!("{}/v1/customers?limit=1", ls.url))
                .basic_auth(KEY, Some(""))
                .send()
                .await;
            if answered.is_ok() {
                return ls;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("localstripe did not answer on {} within 15 s", ls.url);
    }

    /// A form POST (Stripe's encoding) to localstripe; its JSON answer, which must be a 200.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let mut encoded = reqwest::Url::parse("http://x/").expect("url");
        encoded.query_pairs_mut().extend_pairs(form);
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .basic_auth(KEY, Some(""))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded.query().unwrap_or("").to_owned())
            .send()
            .await
            .expect("localstripe answers");
        let status = answer.status();
        let body: Value =
            serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json");
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    pub async fn get(&self, path: &str) -> Value {
        let answer = self
            .http
            .get(format!("{}{path}", self.url))
            .basic_auth(KEY, Some(""))
            .send()
            .await
            .expect("localstripe answers");
        serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json")
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.http
            .delete(format!("{}{path}", self.url))
            .basic_auth(KEY, Some(""))
            .send()
            .await
            .expect("localstripe answers")
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).expect("json"))
            .expect("body")
    }
}

/// What the proxy fakes and injects.
#[derive(Default)]
pub struct Faults {
    pub requests: AtomicU64,
    /// Every k-th request is a 429 (0: none).
    pub rate_limit_every: AtomicU64,
    /// Requests after this many are refused for good (0: none).
    pub fail_after: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Subscriptions answered `trialing` instead of localstripe's `incomplete`.
    pub trialing: Mutex<HashSet<String>>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Faults>,
}

/// Starts the proxy in front of `upstream`; its base URL.
pub async fn proxy(upstream: &str, faults: Arc<Faults>) -> String {
    let state = Arc::new(ProxyState {
        upstream: upstream.to_owned(),
        http: http_client(),
        faults,
    });
    let router = axum::Router::new().fallback(forward).with_state(state);
    crate::helpers::serve_on_loopback(router).await
}

async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let f = &state.faults;
    let n = f.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let fail_after = f.fail_after.load(Ordering::SeqCst);
    if fail_after > 0 && n > fail_after {
        return (
            StatusCode::BAD_REQUEST,
            [("stripe-should-retry", "false")],
            "{}",
        )
            .into_response();
    }
    let every = f.rate_limit_every.load(Ordering::SeqCst);
    if every > 0 && n % every == 0 {
        f.rate_limited.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::TOO_MANY_REQUESTS, "{}").into_response();
    }
    let path = request.uri().path().to_owned();
    let mut url = reqwest::Url::parse(&format!("{}{path}", state.upstream)).expect("url");
    let strip_created = path == "/v1/invoices" || path == "/v1/refunds";
    if let Some(q) = request.uri().query() {
        let parsed = reqwest::Url::parse(&format!("http://x/?{q}")).expect("query");
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| !(strip_created && k.starts_with("created")))
            .collect();
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    let mut upstream = state.http.get(url);
    if let Some(auth) = request.headers().get("authorization") {
        upstream = upstream.header("authorization", auth.as_bytes());
    }
    let answer = match upstream.send().await {
        Ok(a) => a,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut body: Value = match answer.bytes().await {
        Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    if path.starts_with("/v1/subscriptions") {
        let trialing = f.trialing.lock().expect("lock").clone();
        let fake = |sub: &mut Value| {
            let id = sub["id"].as_str().unwrap_or_default();
            if trialing.contains(id) && sub["status"] == "incomplete" {
                sub["status"] = "trialing".into();
            }
        };
        match body.get_mut("data").and_then(Value::as_array_mut) {
            Some(list) => list.iter_mut().for_each(fake),
            None => fake(&mut body),
        }
    }
    (status, axum::Json(body)).into_response()
}

/// A test account: a product and a monthly plan (`price_pro_monthly`, the suite's `pro` tier),
/// and per user a customer with a card in one of the states of `plan`.
pub struct Seeded {
    pub users: Vec<SeededUser>,
    /// The first active subscriber's first charge, refunded 500 of 1000 (with its refund).
    pub refunded: Option<(String, String)>,
}

/// (user, customer, the subscription's id and Stripe's status, if any)
pub type SeededUser = (String, String, Option<(String, String)>);

/// What a user's customer has.
#[derive(Debug, Clone, Copy)]
pub enum Has {
    Active,
    Trialing,
    Canceled,
    Nothing,
}

pub async fn seed(ls: &LocalStripe, faults: &Faults, plan: &[Has]) -> Seeded {
    ls.post(
        "/v1/products",
        &[
            ("id", "prod_pro"),
            ("name", "Pro"),
            ("metadata[tier]", "pro"),
        ],
    )
    .await;
    ls.post(
        "/v1/plans",
        &[
            ("id", "price_pro_monthly"),
            ("product", "prod_pro"),
            ("amount", "1000"),
            ("currency", "usd"),
            ("interval", "month"),
        ],
    )
    .await;
    let mut users = Vec::new();
    for (i, has) in plan.iter().enumerate() {
        let user = format!("user_{i:03}");
        let pm = ls
            .post(
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", "4242424242424242"),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2040"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        let pm = pm["id"].as_str().expect("pm id").to_owned();
        let customer = ls
            .post(
                "/v1/customers",
                &[
                    ("metadata[user_id]", &user),
                    ("payment_method", &pm),
                    ("invoice_settings[default_payment_method]", &pm),
                ],
            )
            .await;
        let customer = customer["id"].as_str().expect("customer id").to_owned();
        let mut form = vec![
            ("customer", customer.as_str()),
            ("items[0][plan]", "price_pro_monthly"),
        ];
        let sub = match has {
            Has::Nothing => None,
            Has::Trialing => {
                form.push(("trial_period_days", "14"));
                let sub = ls.post("/v1/subscriptions", &form).await;
                let id = sub["id"].as_str().expect("sub").to_owned();
                faults.trialing.lock().expect("lock").insert(id.clone());
                Some((id, "trialing".to_owned()))
            }
            Has::Active | Has::Canceled => {
                let sub = ls.post("/v1/subscriptions", &form).await;
                let id = sub["id"].as_str().expect("sub").to_owned();
                assert_eq!(sub["status"], "active", "{sub}");
                if matches!(has, Has::Canceled) {
                    let gone = ls.delete(&format!("/v1/subscriptions/{id}")).await;
                    assert_eq!(gone["status"], "canceled", "{gone}");
                    Some((id, "canceled".to_owned()))
                } else {
                    Some((id, "active".to_owned()))
                }
            }
        };
        users.push((user, customer, sub));
    }
    let mut refunded = None;
    if let Some((user, customer, _)) = users
        .iter()
        .find(|(_, _, s)| s.as_ref().is_some_and(|(_, st)| st == "active"))
    {
        let invoices = ls.get(&format!("/v1/invoices?customer={customer}")).await;
        let charge = match &invoices["data"][0]["charge"] {
            Value::String(id) => id.clone(),
            other => other["id"].as_str().expect("charge").to_owned(),
        };
        ls.post("/v1/refunds", &[("charge", &charge), ("amount", "500")])
            .await;
        refunded = Some((user.clone(), charge));
    }
    Seeded { users, refunded }
}
