//! `stripe-endpoints` end to end: the real async-stripe client against a fake Stripe on
//! 127.0.0.1, secrets in Secrets Manager (moto; `scripts/test` starts it). Tests named
//! `moto_…` need `AWS_ENDPOINT_URL`.

mod fake;

use super::*;
use billing::adapters::secrets_manager::{ConfiguredSecrets, SecretSpec};
use billing::ports::SecretSource;
use billing::providers::stripe::signature::{sign, verify, SignatureError};
use billing::secret::WebhookSecret;
use fake::{Failure, FakeStripe};
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stripe_misc::webhook_endpoint::CreateWebhookEndpointEnabledEvents;

const KEY: &str = "sk_test_fake_admin_key_0123456789";
const BASE_URL: &str = "https://billing.example/prod";

struct Harness {
    fake: Arc<FakeStripe>,
    client: ::stripe::Client,
    sm: aws_sdk_secretsmanager::Client,
    secret_ids: HashMap<Family, String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A secret name no other test (or earlier suite run against the same moto) uses.
fn unique(family: Family) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "stripe-endpoints-test/{}-{t}-{n}/{family}",
        std::process::id()
    )
}

async fn harness() -> Harness {
    assert!(
        crate::settings::aws_endpoint_set(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts moto), \
         or start moto with scripts/start-moto and export what it prints"
    );
    let fake = FakeStripe::new(KEY);
    let base = fake.serve().await;
    let client = super::stripe::client(KEY, &base).expect("client");
    let sm = aws_sdk_secretsmanager::Client::new(&billing::app::aws_config().await);
    let secret_ids = Family::ALL.into_iter().map(|f| (f, unique(f))).collect();
    Harness {
        fake,
        client,
        sm,
        secret_ids,
    }
}

impl Harness {
    fn settings(&self, mode: Mode, dry_run: bool) -> Settings {
        let args = Args {
            base_url: BASE_URL.into(),
            rotate: mode == Mode::Rotate,
            finish_rotation: mode == Mode::FinishRotation,
            dry_run,
            connect: false,
        };
        let ids = self.secret_ids.clone();
        let var = move |name: &str| {
            Family::ALL
                .into_iter()
                .find(|f| name == format!("STRIPE_WEBHOOK_SECRETS_{}_ARN", f.env_suffix()))
                .map(|f| ids[&f].clone())
        };
        Settings::new(&args, var).expect("settings")
    }

    /// With `--connect`: the Connect endpoints' secrets are their families' ids + `-connect`.
    fn connect_settings(&self) -> Settings {
        let args = Args {
            base_url: BASE_URL.into(),
            rotate: false,
            finish_rotation: false,
            dry_run: false,
            connect: true,
        };
        let ids = self.secret_ids.clone();
        let var = move |name: &str| {
            Family::ALL.into_iter().find_map(|f| {
                let own = format!("STRIPE_WEBHOOK_SECRETS_{}_ARN", f.env_suffix());
                let connect = format!("STRIPE_WEBHOOK_SECRETS_{}_CONNECT_ARN", f.env_suffix());
                (name == own)
                    .then(|| ids[&f].clone())
                    .or_else(|| (name == connect).then(|| format!("{}-connect", ids[&f])))
            })
        };
        Settings::new(&args, var).expect("settings")
    }

    async fn run(&self, mode: Mode) -> Result<Vec<Row>, String> {
        self.run_with(&self.settings(mode, false)).await
    }

    async fn run_with(&self, settings: &Settings) -> Result<Vec<Row>, String> {
        let mut rows = Vec::new();
        run(settings, &self.client, &self.sm, &mut rows).await?;
        Ok(rows)
    }

    fn url(&self, family: Family) -> String {
        endpoint_url(&parse_base(BASE_URL).expect("base"), family)
    }

    /// The one endpoint at `family`'s URL.
    fn endpoint(&self, family: Family) -> Value {
        let here = self.fake.at(&self.url(family));
        assert_eq!(here.len(), 1, "{family}: {here:?}");
        here[0].clone()
    }

    /// The secret's stored string parsed as JSON, or `None` if the secret does not exist.
    async fn stored(&self, family: Family) -> Option<Value> {
        let id = &self.secret_ids[&family];
        let out = self.sm.get_secret_value().secret_id(id).send().await.ok()?;
        Some(serde_json::from_str(out.secret_string()?).expect("a JSON array"))
    }

    async fn versions(&self, family: Family) -> usize {
        let id = &self.secret_ids[&family];
        let out = self.sm.list_secret_version_ids().secret_id(id).send().await;
        out.expect("versions").versions().len()
    }

    /// What the family's function would load: the secrets read through `ConfiguredSecrets`.
    async fn function_secrets(&self, family: Family) -> Vec<WebhookSecret> {
        let spec = SecretSpec::Arn(self.secret_ids[&family].clone());
        let source = ConfiguredSecrets::new(
            Some(self.sm.clone()),
            HashMap::from([(family.endpoint(), spec)]),
            Duration::from_secs(30),
        );
        source
            .secrets(family.endpoint())
            .await
            .expect("function reads its secret")
            .to_vec()
    }
}

fn actions(rows: &[Row]) -> Vec<(Family, String)> {
    rows.iter().map(|r| (r.family, r.action.clone())).collect()
}

fn all(action: &str) -> Vec<(Family, String)> {
    Family::ALL
        .into_iter()
        .map(|f| (f, action.to_owned()))
        .collect()
}

/// Whether a delivery signed with `secret` verifies against `secrets`, as the functions check.
fn verifies(secret: &str, secrets: &[WebhookSecret]) -> Result<i64, SignatureError> {
    let body = br#"{"id":"evt_rotation","object":"event"}"#;
    let now = 1_750_000_000;
    let header = sign(body, &[WebhookSecret::new(secret)], now);
    verify(Some(&header), body, secrets, now, 300)
}

#[test]
fn every_enabled_event_is_a_type_async_stripe_knows() {
    for family in Family::ALL {
        for t in enabled_events(family) {
            let parsed = CreateWebhookEndpointEnabledEvents::from_str(t).expect("infallible");
            assert!(
                !matches!(parsed, CreateWebhookEndpointEnabledEvents::Unknown(_)),
                "{t} ({family}) is not a Stripe event type"
            );
        }
    }
}

#[test]
fn the_pinned_api_version_is_one_async_stripe_knows() {
    let version = super::stripe::api_version(STRIPE_VERSION);
    assert!(
        !matches!(version, stripe_shared::ApiVersion::Unknown(_)),
        "{STRIPE_VERSION}"
    );
    assert_eq!(version.as_str(), STRIPE_VERSION);
}

#[test]
fn settings_name_every_missing_variable_and_check_the_base_url() {
    let args = |base: &str| Args {
        base_url: base.into(),
        rotate: false,
        finish_rotation: false,
        dry_run: false,
        connect: false,
    };
    let only_checkout = |name: &str| {
        (name == "STRIPE_WEBHOOK_SECRETS_CHECKOUT_ARN").then(|| "billing/checkout".to_owned())
    };
    let err = Settings::new(&args(BASE_URL), only_checkout).expect_err("three missing");
    for family in ["SUBSCRIPTION", "INVOICE", "CHARGE"] {
        assert!(
            err.contains(&format!("STRIPE_WEBHOOK_SECRETS_{family}_ARN")),
            "{err}"
        );
    }
    assert!(!err.contains("CHECKOUT"), "{err}");
    let every = |_: &str| Some("billing/x".to_owned());
    let err = Settings::new(&args("http://billing.example"), every).expect_err("not https");
    assert!(err.starts_with("--base-url: expected https://"), "{err}");
    let s = Settings::new(&args("https://b.example/prod/"), every).expect("valid");
    assert_eq!(
        endpoint_url(&s.base, Family::Invoice),
        "https://b.example/prod/webhooks/stripe/invoice"
    );
}

#[test]
fn after_a_rotation_the_old_endpoints_and_the_finish_command_are_printed() {
    let args = Args {
        base_url: BASE_URL.into(),
        rotate: true,
        finish_rotation: false,
        dry_run: false,
        connect: false,
    };
    let row = |family, replaces: Option<&str>| Row {
        family,
        action: "rotated".into(),
        endpoint: "we_new".into(),
        secret: "stored [new + 1 old]".into(),
        url: "u".into(),
        replaces: replaces.map(str::to_owned),
    };
    assert!(next_steps(&args, &[row(Family::Charge, None)]).is_empty());
    let rows = [
        row(Family::Checkout, Some("we_a")),
        row(Family::Invoice, Some("we_b")),
    ];
    let text = next_steps(&args, &rows).join("\n");
    assert!(text.contains("we_a (checkout), we_b (invoice)"), "{text}");
    let finish = format!("billing stripe-endpoints --base-url {BASE_URL} --finish-rotation");
    assert!(text.contains(&finish), "{text}");
}

#[tokio::test]
async fn moto_the_first_run_creates_four_endpoints_and_stores_four_secrets() {
    let h = harness().await;
    // Endpoints of other URLs (another app on the account) span the list's pages.
    let others: Vec<String> = (0..3)
        .map(|i| {
            let url = format!("https://other.example/hook/{i}");
            h.fake.seed(&url, "2020-08-27", &["*"], json!({}))
        })
        .collect();
    // The charge secret exists already (a stack output, given by ARN); the others are names.
    let arn =
        h.sm.create_secret()
            .name(&h.secret_ids[&Family::Charge])
            .secret_string("placeholder")
            .send()
            .await
            .expect("create")
            .arn
            .expect("arn");
    let mut h = h;
    h.secret_ids.insert(Family::Charge, arn);

    let rows = h.run(Mode::Sync).await.expect("first run");

    assert_eq!(actions(&rows), all("created"));
    for family in Family::ALL {
        let e = h.endpoint(family);
        assert_eq!(e["api_version"], STRIPE_VERSION, "{family}");
        assert_eq!(
            e["enabled_events"],
            json!(enabled_events(family)),
            "{family}"
        );
        assert_eq!(e["status"], "enabled");
        assert_eq!(
            e["metadata"],
            json!({"billing_family": family.as_str(), "billing_secret": "stored"})
        );
        let id = e["id"].as_str().expect("id");
        let secret = h.fake.secret_of(id);
        assert_eq!(h.stored(family).await, Some(json!([secret])), "{family}");
        let row = rows.iter().find(|r| r.family == family).expect("row");
        assert_eq!(
            (row.endpoint.as_str(), row.url.as_str()),
            (id, h.url(family).as_str())
        );
    }
    for id in &others {
        assert!(
            h.fake.endpoints().iter().any(|e| e["id"] == id.as_str()),
            "{id} kept"
        );
    }
    let calls = h.fake.calls();
    assert!(calls
        .iter()
        .all(|c| c.authorization.as_deref() == Some(&format!("Bearer {KEY}"))));
    // The management calls speak async-stripe's own version (not settable in rc.10); the
    // endpoints render events in ours (`api_version` above).
    let header = stripe_shared::version::VERSION.as_str().to_owned();
    assert!(
        calls
            .iter()
            .all(|c| c.stripe_version.as_ref() == Some(&header)),
        "{calls:?}"
    );
    let lists = calls.iter().filter(|c| !c.writes()).count();
    assert_eq!(lists, 2, "3 endpoints in pages of 2: {calls:?}");
    assert!(!table(&rows).contains("whsec_"), "{}", table(&rows));
}

#[tokio::test]
async fn moto_a_second_run_changes_nothing() {
    let h = harness().await;
    h.run(Mode::Sync).await.expect("first run");
    let writes = h.fake.writes().len();
    let mut versions = Vec::new();
    for family in Family::ALL {
        versions.push(h.versions(family).await);
    }

    let rows = h.run(Mode::Sync).await.expect("second run");

    assert_eq!(actions(&rows), all("unchanged"));
    assert_eq!(h.fake.writes().len(), writes, "{:?}", h.fake.writes());
    for (family, before) in Family::ALL.into_iter().zip(versions) {
        assert_eq!(
            h.versions(family).await,
            before,
            "{family}: no new secret version"
        );
    }
}

#[tokio::test]
async fn moto_an_endpoint_whose_settings_drifted_is_updated_in_place() {
    let h = harness().await;
    h.run(Mode::Sync).await.expect("first run");
    let invoice = h.endpoint(Family::Invoice);
    let id = invoice["id"].as_str().expect("id").to_owned();
    let secret = h.stored(Family::Invoice).await;
    let versions = h.versions(Family::Invoice).await;
    h.fake.edit(&id, |e| {
        e["enabled_events"] = json!(["invoice.paid", "charge.refunded"]);
        e["status"] = json!("disabled");
    });
    let writes = h.fake.writes().len();

    let rows = h.run(Mode::Sync).await.expect("run");

    let mut want = all("unchanged");
    want[2].1 = "updated".into();
    assert_eq!(actions(&rows), want);
    let new_writes = h.fake.writes()[writes..].to_vec();
    assert_eq!(new_writes.len(), 1, "{new_writes:?}");
    assert_eq!(new_writes[0].path, format!("/v1/webhook_endpoints/{id}"));
    let after = h.endpoint(Family::Invoice);
    assert_eq!(after["id"], id.as_str(), "updated, not replaced");
    assert_eq!(
        after["enabled_events"],
        json!(enabled_events(Family::Invoice))
    );
    assert_eq!(after["status"], "enabled");
    assert_eq!(h.stored(Family::Invoice).await, secret);
    assert_eq!(h.versions(Family::Invoice).await, versions);
}

#[tokio::test]
async fn moto_rotate_keeps_both_secrets_valid_until_the_rotation_is_finished() {
    let h = harness().await;
    h.run(Mode::Sync).await.expect("first run");
    let old: HashMap<Family, (String, String)> = Family::ALL
        .into_iter()
        .map(|f| {
            let id = h.endpoint(f)["id"].as_str().expect("id").to_owned();
            (f, (id.clone(), h.fake.secret_of(&id)))
        })
        .collect();

    let rows = h.run(Mode::Rotate).await.expect("rotate");

    assert_eq!(actions(&rows), all("rotated"));
    for family in Family::ALL {
        let (old_id, old_secret) = &old[&family];
        let row = rows.iter().find(|r| r.family == family).expect("row");
        assert_eq!(row.replaces.as_ref(), Some(old_id));
        let here = h.fake.at(&h.url(family));
        assert_eq!(here.len(), 2, "{family}: old and new");
        let new = here
            .iter()
            .find(|e| e["id"] != old_id.as_str())
            .expect("new");
        assert_eq!(new["metadata"]["billing_replaces"], old_id.as_str());
        let new_secret = h.fake.secret_of(new["id"].as_str().expect("id"));
        assert_eq!(
            h.stored(family).await,
            Some(json!([new_secret, old_secret]))
        );
        let loaded = h.function_secrets(family).await;
        assert!(
            verifies(old_secret, &loaded).is_ok(),
            "{family}: old secret"
        );
        assert!(
            verifies(&new_secret, &loaded).is_ok(),
            "{family}: new secret"
        );
    }
    // Re-running either command while the rotation is under way writes nothing.
    let writes = h.fake.writes().len();
    let again = h.run(Mode::Rotate).await.expect("rotate again");
    assert_eq!(actions(&again), all("rotating"));
    assert_eq!(
        actions(&h.run(Mode::Sync).await.expect("sync")),
        all("rotating")
    );
    assert_eq!(h.fake.writes().len(), writes);

    let rows = h.run(Mode::FinishRotation).await.expect("finish");

    assert_eq!(actions(&rows), all("finished"));
    for family in Family::ALL {
        let (old_id, old_secret) = &old[&family];
        let e = h.endpoint(family);
        assert_ne!(e["id"], old_id.as_str(), "{family}: the old one is deleted");
        assert_eq!(e["metadata"].get("billing_replaces"), None);
        let new_secret = h.fake.secret_of(e["id"].as_str().expect("id"));
        assert_eq!(h.stored(family).await, Some(json!([new_secret])));
        let loaded = h.function_secrets(family).await;
        assert_eq!(verifies(old_secret, &loaded), Err(SignatureError::NoMatch));
        assert!(verifies(&new_secret, &loaded).is_ok());
    }
    let writes = h.fake.writes().len();
    let again = h.run(Mode::FinishRotation).await.expect("finish again");
    assert_eq!(actions(&again), all("unchanged"));
    assert_eq!(
        actions(&h.run(Mode::Sync).await.expect("sync")),
        all("unchanged")
    );
    assert_eq!(h.fake.writes().len(), writes);
}

/// Stripe's error JSON for a refused parameter.
fn invalid(param: &str, code: &str, message: &str) -> Value {
    json!({"error": {"type": "invalid_request_error", "code": code, "param": param, "message": message}})
}

#[tokio::test]
async fn moto_a_refused_key_is_a_clear_error_and_writes_no_secret() {
    let h = harness().await;
    let client =
        super::stripe::client("sk_test_not_the_right_key", &h.fake.serve().await).expect("client");
    let mut rows = Vec::new();
    let settings = h.settings(Mode::Sync, false);

    let err = run(&settings, &client, &h.sm, &mut rows)
        .await
        .expect_err("refused");

    assert_eq!(
        err,
        "listing webhook endpoints: Stripe answered 401 (invalid_request_error): \
         STRIPE_ADMIN_KEY was refused"
    );
    assert!(!err.contains("sk_test"), "{err}");
    assert!(rows.is_empty());
    for family in Family::ALL {
        assert_eq!(h.stored(family).await, None, "{family}");
    }
}

#[tokio::test]
async fn moto_a_refused_create_is_a_clear_error_and_writes_no_secret() {
    let h = harness().await;
    let message = "Invalid URL: URL must be publicly accessible.";
    h.fake.fail(Failure {
        method: axum::http::Method::POST,
        path: "/v1/webhook_endpoints",
        times: 1,
        status: 400,
        error: invalid("url", "url_invalid", message),
    });

    let err = h.run(Mode::Sync).await.expect_err("refused");

    assert_eq!(
        err,
        format!(
            "creating the checkout endpoint: Stripe answered 400 (invalid_request_error, \
             url_invalid) on `url`: {message}"
        )
    );
    assert!(h.fake.endpoints().is_empty());
    for family in Family::ALL {
        assert_eq!(h.stored(family).await, None, "{family}");
    }
}

#[tokio::test]
async fn moto_a_dry_run_changes_nothing() {
    let h = harness().await;
    let settings = h.settings(Mode::Sync, true);

    let rows = h.run_with(&settings).await.expect("dry run");

    assert_eq!(actions(&rows), all("would create"));
    assert!(h.fake.writes().is_empty(), "{:?}", h.fake.writes());
    assert_eq!(h.stored(Family::Checkout).await, None);
}

#[tokio::test]
async fn moto_an_endpoint_whose_secret_was_not_recorded_is_replaced_on_the_next_run() {
    let h = harness().await;
    // The run dies after the create (the secret only in Stripe's answer) and the secret write.
    h.fake.fail(Failure {
        method: axum::http::Method::POST,
        path: "/v1/webhook_endpoints/",
        times: 1,
        status: 500,
        error: json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
    });
    let err = h.run(Mode::Sync).await.expect_err("interrupted");
    assert!(err.contains("500 (api_error)"), "{err}");
    let lost = h.endpoint(Family::Checkout);
    assert_eq!(lost["metadata"]["billing_secret"], "pending");

    let rows = h.run(Mode::Sync).await.expect("re-run");

    assert_eq!(actions(&rows), all("created"));
    let e = h.endpoint(Family::Checkout);
    assert_ne!(
        e["id"], lost["id"],
        "the endpoint whose secret is unknown is deleted"
    );
    let secret = h.fake.secret_of(e["id"].as_str().expect("id"));
    assert_eq!(h.stored(Family::Checkout).await, Some(json!([secret])));
}

#[tokio::test]
async fn moto_an_endpoint_on_another_api_version_stops_the_run_and_rotate_replaces_it() {
    let h = harness().await;
    let url = h.url(Family::Subscription);
    let events = ["customer.subscription.updated"];
    let clicked = h.fake.seed(&url, "2020-08-27", &events, json!({}));

    let err = h.run(Mode::Sync).await.expect_err("cannot be updated");

    assert!(err.starts_with("nothing changed:"), "{err}");
    assert!(
        err.contains(&format!(
            "subscription: {clicked} renders events as 2020-08-27"
        )),
        "{err}"
    );
    assert!(err.contains("--rotate"), "{err}");
    assert!(h.fake.writes().is_empty(), "{:?}", h.fake.writes());
    assert_eq!(h.stored(Family::Checkout).await, None);

    let rows = h.run(Mode::Rotate).await.expect("rotate");
    let mut want = all("created");
    want[1].1 = "rotated".into();
    assert_eq!(actions(&rows), want);
    h.run(Mode::FinishRotation).await.expect("finish");
    let e = h.endpoint(Family::Subscription);
    assert_ne!(e["id"], clicked.as_str());
    assert_eq!(e["api_version"], STRIPE_VERSION);
    assert_eq!(
        actions(&h.run(Mode::Sync).await.expect("sync")),
        all("unchanged")
    );
}

/// `--connect` also makes each family's Connect endpoint (`connect=true`, its own URL and
/// description), stores its secret in the Connect secret, which a function's Connect endpoint
/// reads; the family's own endpoint and secret are untouched; a second run changes nothing.
#[tokio::test]
async fn moto_connect_makes_each_familys_connect_endpoint_with_its_own_secret() {
    let h = harness().await;
    let plain = h.run(Mode::Sync).await.expect("first run");
    assert_eq!(actions(&plain), all("created"));
    let settings = h.connect_settings();
    let rows = h.run_with(&settings).await.expect("connect run");
    let created: Vec<_> = rows.iter().filter(|r| r.action == "created").collect();
    assert_eq!(created.len(), 4, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.action == "unchanged").count(), 4);
    for family in Family::ALL {
        let url = format!("{}/connect", h.url(family));
        let here = h.fake.at(&url);
        assert_eq!(here.len(), 1, "{url}: {here:?}");
        let id = here[0]["id"].as_str().expect("id").to_owned();
        assert!(h.fake.is_connect(&id), "{family}: made with connect=true");
        assert!(!h
            .fake
            .is_connect(h.endpoint(family)["id"].as_str().expect("id")));
        let description = here[0]["description"].as_str().unwrap_or_default();
        assert!(description.contains("Connect"), "{description}");
        // The Connect secret holds the Connect endpoint's secret, and only it.
        let connect_id = format!("{}-connect", h.secret_ids[&family]);
        let out = h.sm.get_secret_value().secret_id(&connect_id).send().await;
        let stored: Vec<String> =
            serde_json::from_str(out.expect("stored").secret_string().expect("a string"))
                .expect("a JSON array");
        assert_eq!(stored, [h.fake.secret_of(&id)], "{family}");
        let own: Vec<String> =
            serde_json::from_value(h.stored(family).await.expect("own")).expect("a list");
        assert!(
            !own.contains(&stored[0]),
            "{family}: the family's secret is its own"
        );
    }
    let again = h.run_with(&settings).await.expect("third run");
    assert!(again.iter().all(|r| r.action == "unchanged"), "{again:?}");
}
