//! What `billing import` costs: objects per second and DynamoDB units per imported object
//! against localstripe and moto, and the process's peak memory (VmHWM) for an account of N
//! customers. Prints one Markdown row for BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p billing --example import_cost -- --customers 1000 --subscribed 1000
//! cargo run --release -p billing --example import_cost -- --customers 10000 --discard
//! ```
//!
//! It starts its own localstripe (`.venv/bin/localstripe`, scripts/ensure-venv installs it) on
//! a free port and seeds it: N customers linked to users, the first M with an active monthly
//! subscription (localstripe then also makes its paid invoice and charge). With moto at
//! `AWS_ENDPOINT_URL` it imports into a fresh table there; `--discard` imports into a store that
//! reads an empty table and keeps nothing (`DryRunStore` over the in-memory twin): moto copies
//! its table on every transaction, so 10,000 customers through it would measure moto, and a
//! store that grows would hide whether the import itself stays flat. Peak memory is read from
//! /proc/self/status before the import (after seeding) and after it.

use billing::adapters::checkpoints::{DynamoCheckpoints, InMemoryCheckpoints};
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::adapters::stripe_api::StripeApiKey;
use billing::adapters::stripe_list::{ListBounds, StripeList};
use billing::catchup::dry_run::DryRunStore;
use billing::catchup::import::{ImportOptions, Importer, JOB, KINDS};
use billing::catchup::progress::Progress;
use billing::catchup::Tally;
use billing::domain::access::TierPolicy;
use billing::ports::{BillingStore, CheckpointStore, Clock, SystemClock};
use billing::providers::stripe::{pipeline, Settings};
use billing::telemetry::Metrics;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk_test_import_cost";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak resident memory of this process so far, in KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct LocalStripe {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalStripe {
    async fn start() -> Self {
        let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("import-cost-{port}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let child = Command::new(&bin)
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../scripts/localstripe_server.py"),
            )
            .args(["--port", &port.to_string()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/ensure-venv)", bin.display()));
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ls = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..150 {
            let probe = ls.http.get(format!("{}/v1/customers", ls.url)).send().await;
            if probe.is_ok() {
                return ls;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("localstripe did not start");
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
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
        serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json")
    }
}

async fn seed(ls: &LocalStripe, customers: usize, subscribed: usize) {
    ls.post("/v1/products", &[("id", "prod_pro"), ("name", "Pro")])
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
    for i in 0..customers {
        let user = format!("user_{i:06}");
        let mut form = vec![
            ("metadata[user_id]", user.as_str()),
            ("email", "someone@example.com"),
        ];
        let pm;
        if i < subscribed {
            let card = ls
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
            pm = card["id"].as_str().expect("pm").to_owned();
            form.push(("payment_method", &pm));
            form.push(("invoice_settings[default_payment_method]", &pm));
        }
        let customer = ls.post("/v1/customers", &form).await;
        if i < subscribed {
            let id = customer["id"].as_str().expect("customer");
            ls.post(
                "/v1/subscriptions",
                &[("customer", id), ("items[0][plan]", "price_pro_monthly")],
            )
            .await;
        }
    }
}

#[tokio::main]
async fn main() {
    let customers: usize = arg("--customers")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let subscribed: usize = arg("--subscribed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let discard = std::env::args().any(|a| a == "--discard");
    let ls = LocalStripe::start().await;
    let seeding = Instant::now();
    seed(&ls, customers, subscribed).await;
    eprintln!(
        "seeded {customers} customers ({subscribed} subscribed) in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );

    let settings = Settings {
        tiers: TierPolicy {
            price_tiers: [("price_pro_monthly".to_owned(), "pro".to_owned())].into(),
            order: vec!["pro".into()],
        },
        ..Settings::default()
    };
    let (store, dynamo, checkpoints): (Arc<dyn BillingStore>, _, Arc<dyn CheckpointStore>) =
        if discard {
            let empty: Arc<dyn BillingStore> = Arc::new(InMemoryBillingStore::new());
            (
                Arc::new(DryRunStore::new(empty)),
                None,
                Arc::new(InMemoryCheckpoints::default()),
            )
        } else {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let table = format!("import-cost-{}", SystemClock.now());
            let dynamo = Arc::new(DynamoBillingStore::new(
                client.clone(),
                table.clone(),
                Retention::default(),
            ));
            dynamo
                .create_table_if_missing()
                .await
                .expect("table in moto (AWS_ENDPOINT_URL)");
            (
                dynamo.clone() as Arc<dyn BillingStore>,
                Some(dynamo),
                Arc::new(DynamoCheckpoints::new(client, table)),
            )
        };
    let pipeline = Arc::new(pipeline(
        store,
        Arc::new(StaticSecrets::everywhere(Vec::new())),
        Arc::new(SystemClock),
        Arc::new(Metrics::Off),
        settings,
    ));
    let key = StripeApiKey::parse(KEY).expect("key");
    let importer = Importer {
        pipeline,
        list: Arc::new(
            StripeList::new(&ls.url, &key, ListBounds::default(), 4, 1000).expect("list"),
        ),
        checkpoints,
        progress: Arc::new(Progress::quiet(JOB)),
    };
    if let Some(d) = &dynamo {
        d.meter.take();
    }
    let before = vm_hwm_kib();
    let started = Instant::now();
    let report = importer
        .run(&ImportOptions {
            // Every invoice and payment: localstripe refuses a `created` filter on invoices.
            since: 0,
            kinds: KINDS.to_vec(),
            restart: true,
            dry_run: false,
            concurrency: 4,
            livemode: false,
            account: None,
        })
        .await
        .expect("import");
    let secs = started.elapsed().as_secs_f64();
    let after = vm_hwm_kib();
    let mut total = Tally::default();
    for (_, t, _) in &report.kinds {
        total.add(t);
    }
    let objects = total.total();
    let units = dynamo.as_ref().map(|d| d.meter.take());
    let per = |u: f64| if objects > 0 { u / objects as f64 } else { 0.0 };
    println!(
        "| {customers} customers, {subscribed} subscribed | {} | {objects} | {} | {secs:.1} | {:.0} | {} | {} | {:.1} MiB → {:.1} MiB |",
        if discard { "discarding store" } else { "moto" },
        total.applied,
        objects as f64 / secs,
        units.map_or("—".into(), |u| format!("{:.2}", per(u.read_units))),
        units.map_or("—".into(), |u| format!("{:.2}", per(u.write_units))),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    );
}
