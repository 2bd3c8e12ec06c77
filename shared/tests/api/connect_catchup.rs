//! Catching up a Connect platform's connected accounts, against moto and a fake of Stripe's
//! list endpoints that answers per `Stripe-Account` (localstripe has no connected accounts):
//! `billing backfill --account`, `billing import --account` and the reconcile function's
//! `BILLING_RECONCILE_STRIPE_ACCOUNTS`. What each fetches is recorded in its account's own
//! namespace, exactly as the account's Connect webhook deliveries are, so a delivery of the same
//! event is a duplicate, and no account's catch-up touches another's (or the platform's) model.
//! The fixtures are the Connect lifecycle's (`fixtures/stripe/connect/`) and the platform's own
//! lifecycle with the same ids (`fixtures/stripe/lifecycle/`).

use crate::helpers::*;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use billing::adapters::checkpoints::DynamoCheckpoints;
use billing::adapters::stripe_list::StripeList;
use billing::backfill::{Range, StripeEvents, Summary, TypeFilter};
use billing::catchup::import::{ImportOptions, Importer, KINDS};
use billing::catchup::progress::Progress;
use billing::domain::ids::{Account, Provider};
use billing::ports::CheckpointStore;
use billing::reconcile::{run_all, Reconciler, Settings};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const A: &str = "acct_1LifeConnectA0001";
const B: &str = "acct_1LifeConnectB0002";
/// An account whose list holds an event naming account A.
const CROSSED: &str = "acct_1CrossedLists0003";
/// An account Stripe refuses the key for (403).
const REFUSED: &str = "acct_1NotConnected0004";
/// Just after the lifecycle's first three events (2025-09-01).
const T: i64 = 1_756_720_900;

fn account(a: &str) -> Account {
    Account::parse(a).expect("account id")
}

/// Stripe's lists per account (`""`: the platform's own), as `GET /v1/{path}` answers them.
#[derive(Default)]
struct FakeLists {
    lists: Mutex<HashMap<(String, String), Vec<Value>>>,
    /// Each request's account and path, in order.
    seen: Mutex<Vec<(String, String)>>,
}

impl FakeLists {
    fn set(&self, account: &str, path: &str, mut objects: Vec<Value>) {
        // Stripe lists newest first.
        objects.sort_by_key(|o| std::cmp::Reverse(o["created"].as_i64().unwrap_or(0)));
        self.lists
            .lock()
            .expect("lock")
            .insert((account.to_owned(), path.to_owned()), objects);
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn answer(
    State(fake): State<Arc<FakeLists>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    fake.seen
        .lock()
        .expect("lock")
        .push((account.clone(), path.clone()));
    if account == REFUSED {
        let error = json!({"error": {"type": "invalid_request_error",
            "message": "The provided key does not have access to account"}});
        return (StatusCode::FORBIDDEN, axum::Json(error)).into_response();
    }
    if path == "entitlements/active_entitlements" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let query: HashMap<String, String> =
        reqwest::Url::parse(&format!("http://fake/?{}", raw.unwrap_or_default()))
            .expect("query")
            .query_pairs()
            .into_owned()
            .collect();
    let num = |k: &str| query.get(k).and_then(|v| v.parse::<i64>().ok());
    let all = fake
        .lists
        .lock()
        .expect("lock")
        .get(&(account, path))
        .cloned()
        .unwrap_or_default();
    let created = |o: &Value| o["created"].as_i64().unwrap_or(0);
    let mut matching: Vec<Value> = all
        .into_iter()
        .filter(|o| num("created[gte]").is_none_or(|t| created(o) >= t))
        .filter(|o| num("created[lte]").is_none_or(|t| created(o) <= t))
        .filter(|o| num("created[gt]").is_none_or(|t| created(o) > t))
        .collect();
    if let Some(after) = query.get("starting_after") {
        let at = matching.iter().position(|o| o["id"] == after.as_str());
        matching = matching.split_off(at.map_or(0, |i| i + 1));
    }
    let limit = num("limit").unwrap_or(10) as usize;
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    axum::Json(json!({"object": "list", "data": matching, "has_more": has_more})).into_response()
}

async fn serve(fake: Arc<FakeLists>) -> String {
    let router = axum::Router::new()
        .route("/v1/{*path}", axum::routing::get(answer))
        .with_state(fake);
    serve_on_loopback(router).await
}

/// Small pages, so every list crosses a page boundary.
fn list_client(base: &str) -> Arc<StripeList> {
    quick_list(base, "sk_test_connect_catchup", 2, 2)
}

fn event(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).expect("fixture json")
}

/// The platform's own lifecycle events 01 to 03 (no `account`).
fn platform_events() -> Vec<Value> {
    [
        "01_checkout.session.completed",
        "02_customer.subscription.created",
        "03_invoice.paid",
    ]
    .iter()
    .map(|f| event(&format!("stripe/lifecycle/{f}.json")))
    .collect()
}

/// Account A's events as its list answers them: the Connect fixtures without the `account`
/// line (the walk must say it), so the ids and contents equal the platform's.
fn a_events_unmarked() -> Vec<Value> {
    platform_events()
}

fn b_events() -> Vec<Value> {
    [
        "B_01_checkout.session.completed",
        "B_02_customer.subscription.created",
        "B_03_invoice.paid",
    ]
    .iter()
    .map(|f| event(&format!("stripe/connect/{f}.json")))
    .collect()
}

async fn walk(
    app: &TestApp,
    list: Arc<StripeList>,
    account: Option<&str>,
) -> Result<Summary, String> {
    let source = StripeEvents::new(list, &TypeFilter::stripe_subscribed())
        .in_account(account.map(self::account));
    let range = Range::checked(T - 3_600, Some(T), T).expect("range");
    walk_events(app, &source, range).await
}

async fn access(app: &TestApp, account: Option<&str>) -> Value {
    let query = account.map_or(String::new(), |a| format!("?account={a}"));
    let (status, body) = app.get(&format!("/users/user_42/access{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn moto_a_connected_accounts_backfill_is_its_own_and_its_connect_delivery_a_duplicate() {
    let app = spawn_moto(false).await;
    app.clock.set(T);
    let fake = Arc::new(FakeLists::default());
    fake.set(A, "events", a_events_unmarked());
    fake.set(B, "events", b_events());
    fake.set(
        CROSSED,
        "events",
        vec![event("stripe/connect/A_01_checkout.session.completed.json")],
    );
    let base = serve(fake.clone()).await;
    let list = list_client(&base);

    let first = walk(&app, list.clone(), Some(A))
        .await
        .expect("A's backfill");
    assert_eq!(first.total().applied, 3, "{first:?}");
    // Every request of A's walk asked for A's list.
    let seen = fake.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|(a, p)| a == A && p == "events"),
        "{seen:?}"
    );
    let a = access(&app, Some(A)).await;
    assert_eq!(
        (a["known"].as_bool(), a["tier"].as_str()),
        (Some(true), Some("pro")),
        "{a}"
    );
    assert_eq!(a["user_id"], format!("{A}/user_42"), "{a}");
    // The platform's user 42 and account B's are untouched, though the ids are the same.
    assert_eq!(access(&app, None).await["known"], false);
    assert_eq!(access(&app, Some(B)).await["known"], false);

    // A's Connect webhook delivery of the same event, after the backfill: a duplicate.
    let body = fixture("stripe/connect/A_01_checkout.session.completed.json");
    let header = signed(&body, T);
    let req = http::Request::post("/webhooks/stripe/checkout/connect")
        .header("stripe-signature", header)
        .body(axum::body::Body::from(body))
        .expect("request");
    let (status, delivered) = call_router(&app.router, req).await;
    assert_eq!(
        (status, delivered["state"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{delivered}"
    );

    // Again: nothing new.
    let again = walk(&app, list.clone(), Some(A)).await.expect("again");
    assert_eq!(
        (again.total().applied, again.total().duplicate),
        (0, 3),
        "{again:?}"
    );

    // B's list (whose events say B) applies in B only.
    let b = walk(&app, list.clone(), Some(B))
        .await
        .expect("B's backfill");
    assert_eq!(b.total().applied, 3, "{b:?}");
    assert_eq!(access(&app, Some(B)).await["tier"], "pro");
    assert_eq!(access(&app, None).await["known"], false);

    // A list that hands out another account's event is refused whole: nothing applied anywhere.
    let err = walk(&app, list.clone(), Some(CROSSED))
        .await
        .expect_err("refused");
    assert!(err.contains("another account"), "{err}");
    assert_eq!(access(&app, Some(CROSSED)).await["known"], false);
    let (status, _) = app
        .get(&format!(
            "/events/stripe/evt_life_01_checkout_completed?account={CROSSED}"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn subscription(status: &str) -> Value {
    let mut sub =
        event("stripe/lifecycle/02_customer.subscription.created.json")["data"]["object"].clone();
    sub["status"] = json!(status);
    sub
}

fn reconciler(app: &TestApp, list: &Arc<StripeList>, account: Option<&str>) -> Reconciler {
    let settings = Settings {
        first_lookback_secs: 3_600,
        sample: 10,
        margin: Duration::from_secs(1),
        ..Settings::default()
    };
    moto_reconciler(app, list, account.map(self::account), settings)
}

#[tokio::test]
async fn moto_reconcile_runs_every_account_in_its_own_namespace_and_one_refused_stops_none() {
    let app = spawn_moto(false).await;
    app.clock.set(T);
    let fake = Arc::new(FakeLists::default());
    fake.set("", "events", platform_events());
    fake.set("", "subscriptions", vec![subscription("active")]);
    fake.set(A, "events", a_events_unmarked());
    // A's subscription has since gone past due, and no event says so: drift, in A only.
    fake.set(A, "subscriptions", vec![subscription("past_due")]);
    let base = serve(fake.clone()).await;
    let list = list_client(&base);
    let reconcilers = [
        reconciler(&app, &list, None),
        reconciler(&app, &list, Some(A)),
        reconciler(&app, &list, Some(REFUSED)),
    ];
    let remaining = || Duration::from_secs(600);

    let (answer, failed) = run_all(&reconcilers, &remaining).await;
    let failed = failed.expect("the refused account's run fails");
    assert!(failed.contains(REFUSED) && !failed.contains(A), "{failed}");
    assert_eq!(answer["events"]["applied"], 3, "{answer}");
    assert_eq!(answer["subscriptions"]["repaired"], 0, "{answer}");
    let a = &answer["accounts"][A];
    assert_eq!(
        (
            a["events"]["applied"].as_u64(),
            a["events"]["missed"].as_u64()
        ),
        (Some(3), Some(3)),
        "{answer}"
    );
    assert_eq!(a["subscriptions"]["repaired"], 1, "{answer}");
    assert!(
        answer["accounts"][REFUSED]["error"]
            .as_str()
            .is_some_and(|e| e.contains("403")),
        "{answer}"
    );

    // The platform's user is active, A's past due: each repaired in its own namespace.
    let own = access(&app, None).await;
    assert_eq!(own["status"], "active", "{own}");
    let a_user = access(&app, Some(A)).await;
    assert_eq!(a_user["status"], "past_due", "{a_user}");

    // Each account keeps its own checkpoints; the refused one has none.
    let checkpoints = &reconcilers[0].checkpoints;
    let mark = |scope: Provider| {
        let checkpoints = checkpoints.clone();
        async move {
            checkpoints
                .load_checkpoint(scope, billing::reconcile::JOB, billing::reconcile::EVENTS)
                .await
                .expect("read")
        }
    };
    assert!(mark(Provider::STRIPE).await.is_some());
    assert!(mark(Provider::STRIPE.in_account(account(A)))
        .await
        .is_some());
    assert!(mark(Provider::STRIPE.in_account(account(REFUSED)))
        .await
        .is_none());

    // The next run starts with the account never reconciled: the refused one.
    let before = fake.seen().len();
    app.clock.set(T + 60);
    let (_, failed) = run_all(&reconcilers, &remaining).await;
    assert!(failed.is_some());
    let first = fake.seen()[before].clone();
    assert_eq!(first.0, REFUSED, "{first:?}");
}

#[tokio::test]
async fn moto_a_connected_accounts_import_lands_in_its_namespace_and_resumes_on_its_own() {
    let app = spawn_moto(false).await;
    app.clock.set(T);
    let fake = Arc::new(FakeLists::default());
    let customer = json!({"id": "cus_life1", "object": "customer", "created": 1_756_720_700,
                          "livemode": false, "metadata": {"user_id": "user_42"}});
    fake.set(A, "customers", vec![customer]);
    fake.set(A, "subscriptions", vec![subscription("active")]);
    let base = serve(fake.clone()).await;
    let table = app.dynamo.as_ref().expect("moto").table().to_owned();
    let checkpoints: Arc<dyn CheckpointStore> = Arc::new(DynamoCheckpoints::new(
        aws_sdk_dynamodb::Client::new(&sdk_config()),
        table,
    ));
    let importer = Importer {
        pipeline: app.service.clone(),
        list: list_client(&base),
        checkpoints: checkpoints.clone(),
        progress: Arc::new(Progress::new("import")),
    };
    let report = importer
        .run(&ImportOptions {
            since: 0,
            kinds: KINDS.to_vec(),
            restart: false,
            dry_run: false,
            concurrency: 2,
            livemode: false,
            account: Some(account(A)),
        })
        .await
        .expect("import");
    let applied: u64 = report.kinds.iter().map(|(_, t, _)| t.applied).sum();
    assert_eq!(applied, 2, "{report:?}");
    let seen = fake.seen();
    assert!(seen.iter().all(|(a, _)| a == A), "{seen:?}");
    let a = access(&app, Some(A)).await;
    assert_eq!(
        (a["known"].as_bool(), a["tier"].as_str()),
        (Some(true), Some("pro")),
        "{a}"
    );
    assert_eq!(access(&app, None).await["known"], false);
    // Its checkpoints are the account's; the platform's import has none.
    let own = checkpoints
        .checkpoints(Provider::STRIPE, "import")
        .await
        .expect("read");
    assert!(own.is_empty(), "{own:?}");
    let its = checkpoints
        .checkpoints(Provider::STRIPE.in_account(account(A)), "import")
        .await
        .expect("read");
    assert_eq!(its.len(), KINDS.len());
    assert!(its.iter().all(|c| c.done), "{its:?}");
    // A subscription snapshot of A, imported again: a duplicate (the same event in A's ledger).
    let subscription_kind = KINDS.iter().find(|k| k.name == "subscriptions").copied();
    let again = importer
        .run(&ImportOptions {
            since: 0,
            kinds: subscription_kind.into_iter().collect(),
            restart: true,
            dry_run: false,
            concurrency: 2,
            livemode: false,
            account: Some(account(A)),
        })
        .await
        .expect("again");
    let applied: u64 = again.kinds.iter().map(|(_, t, _)| t.applied).sum();
    assert_eq!(applied, 0, "{again:?}");
}
