//! Least privilege, held from the code's side: every DynamoDB request a function's code sends
//! for representative deliveries (the fixtures, the read routes, a stream batch, an email batch)
//! is recorded on the wire by an SDK interceptor, before it reaches moto, and must be one that
//! its `functions/<dir>/permissions.toml` lists: the action on that resource (table or index),
//! the partition key (IAM's `dynamodb:LeadingKeys`) matching a listed pattern, and, where the
//! list names attributes, only those. A code path that grows a call the list lacks fails here;
//! `scripts/check-template` holds the template to the same lists.

use crate::helpers::*;
use crate::paypal_support as pp;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use billing::adapters::dynamo::{DynamoBillingStore, Retention};
use billing::adapters::email_store::DynamoEmailLedger;
use billing::adapters::email_testing::InMemoryMailer;
use billing::adapters::sqs::SqsQueue;
use billing::domain::events::EmailAddress;
use billing::emails::kinds::{EmailKind, EmailSettings};
use billing::emails::send::{EmailSender, SendPolicy, SqsEvent, SqsRecord};
use billing::http::local_router;
use billing::ports::FixedClock;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::pipeline;
use billing::providers::stripe::translate::family_of;
use billing::relay::{handle_stream_batch, RoutedQueue};
use billing::telemetry::Metrics;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One DynamoDB request (or one item of a transaction or batch) as IAM authorises it.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    /// `table` or `index/<name>`, as the lists name them.
    resource: String,
    /// The IAM action (a transaction's `Put` is `PutItem`).
    action: String,
    /// The partition key (of the index, for a query on one).
    key: String,
    /// Every attribute the request names (keys, item, expressions).
    attributes: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("recorder lock"))
    }
}

/// The SDK interceptor: reads each request as it is about to be sent. On an SQS client
/// (`queues`: each queue's URL and logical id in the template) a send is recorded as the
/// `[calls]` entry `sqs:<action>` on that queue.
#[derive(Debug, Clone)]
struct Recording {
    recorder: Arc<Recorder>,
    queues: Option<HashMap<String, String>>,
}

impl Intercept for Recording {
    fn name(&self) -> &'static str {
        "permissions recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let action = target.rsplit('.').next().unwrap_or_default();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let calls = match &self.queues {
            Some(queues) => {
                let url = body["QueueUrl"].as_str().unwrap_or_default();
                let queue = queues.get(url).cloned().unwrap_or_else(|| url.to_owned());
                vec![Call {
                    resource: "calls".into(),
                    action: format!("sqs:{action}"),
                    key: queue,
                    attributes: BTreeSet::new(),
                }]
            }
            None => calls_of(action, &body),
        };
        self.recorder
            .calls
            .lock()
            .expect("recorder lock")
            .extend(calls);
        Ok(())
    }
}

fn pk(key: &Value) -> String {
    key["PK"]["S"].as_str().unwrap_or_default().to_owned()
}

/// Words of DynamoDB's expression language that are not attribute names.
const EXPRESSION_WORDS: [&str; 17] = [
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
];

/// The attribute names one request (or transaction item) names.
fn attributes(request: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for part in ["Key", "Item"] {
        if let Some(map) = request[part].as_object() {
            names.extend(map.keys().cloned());
        }
    }
    if let Some(map) = request["ExpressionAttributeNames"].as_object() {
        names.extend(map.values().filter_map(Value::as_str).map(str::to_owned));
    }
    for expression in [
        "UpdateExpression",
        "ConditionExpression",
        "ProjectionExpression",
    ] {
        let text = request[expression].as_str().unwrap_or_default();
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || "_#:".contains(c)));
        names.extend(
            words
                .filter(|w| !w.is_empty() && !w.starts_with(['#', ':']))
                .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
                .filter(|w| !EXPRESSION_WORDS.contains(w))
                .map(str::to_owned),
        );
    }
    names
}

fn call(resource: &str, action: &str, key: String, request: &Value) -> Call {
    Call {
        resource: resource.to_owned(),
        action: action.to_owned(),
        key,
        attributes: attributes(request),
    }
}

/// The partition key a query names: the value bound in its key condition's first clause.
fn query_call(body: &Value) -> Call {
    let resource = body["IndexName"]
        .as_str()
        .map_or("table".to_owned(), |i| format!("index/{i}"));
    let condition = body["KeyConditionExpression"].as_str().unwrap_or_default();
    let first = condition.split(" AND ").next().unwrap_or_default();
    let placeholder = first.split('=').nth(1).unwrap_or_default().trim();
    let key = body["ExpressionAttributeValues"][placeholder]["S"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    call(&resource, "Query", key, body)
}

/// What IAM authorises in one request: one call per item of a batch or transaction.
fn calls_of(action: &str, body: &Value) -> Vec<Call> {
    match action {
        "GetItem" | "DeleteItem" | "UpdateItem" => {
            vec![call("table", action, pk(&body["Key"]), body)]
        }
        "PutItem" => vec![call("table", action, pk(&body["Item"]), body)],
        "Query" => vec![query_call(body)],
        "BatchGetItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
            .map(|k| call("table", action, pk(&k), &json!({ "Key": k })))
            .collect(),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| item.as_object().cloned().unwrap_or_default())
            .map(|(kind, op)| match kind.as_str() {
                "Put" => call("table", "PutItem", pk(&op["Item"]), &op),
                "Update" => call("table", "UpdateItem", pk(&op["Key"]), &op),
                "Delete" => call("table", "DeleteItem", pk(&op["Key"]), &op),
                _ => call("table", "ConditionCheckItem", pk(&op["Key"]), &op),
            })
            .collect(),
        // DescribeTable and anything else: no list grants them, so they are reported.
        other => vec![call("table", other, String::new(), &Value::Null)],
    }
}

/// A function's list: (resource, action) -> partition-key patterns and, if named, attributes;
/// its `[calls]` as ("calls", action) -> resources.
type Listed = HashMap<(String, String), (Vec<String>, Option<Vec<String>>)>;

fn strings(item: Option<&toml_edit::Item>) -> Vec<String> {
    item.and_then(toml_edit::Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn load(path: &Path, listed: &mut Listed) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc =
        toml_edit::Document::parse(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let root = doc.as_table();
    for include in strings(root.get("include")) {
        load(&path.parent().expect("a directory").join(include), listed);
    }
    if let Some(calls) = root.get("calls").and_then(toml_edit::Item::as_table_like) {
        for (action, resources) in calls.iter() {
            let slot = listed
                .entry(("calls".into(), action.to_owned()))
                .or_default();
            slot.0.extend(strings(Some(resources)));
        }
    }
    let Some(dynamo) = root
        .get("dynamodb")
        .and_then(toml_edit::Item::as_table_like)
    else {
        return;
    };
    for (section, actions) in dynamo.iter() {
        let actions = actions
            .as_table_like()
            .expect("dynamodb.<resource> is a table");
        for (action, spec) in actions.iter() {
            let (keys, names) = match spec.as_table_like() {
                Some(t) => (
                    strings(t.get("keys")),
                    t.get("attributes").map(|a| strings(Some(a))),
                ),
                None => (strings(Some(spec)), None),
            };
            let slot = listed
                .entry((section.to_owned(), action.to_owned()))
                .or_default();
            slot.0.extend(keys);
            if names.is_some() {
                slot.1 = names;
            }
        }
    }
}

/// `functions/<dir>/permissions.toml` with what it includes.
fn listed(dir: &str) -> Listed {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut listed = Listed::new();
    load(&root.join(dir).join("permissions.toml"), &mut listed);
    listed
}

/// IAM's `StringLike`: `*` any run of characters, `?` any one.
fn like(pattern: &[u8], value: &[u8]) -> bool {
    match pattern.split_first() {
        None => value.is_empty(),
        Some((b'*', rest)) => (0..=value.len()).any(|i| like(rest, &value[i..])),
        Some((b'?', rest)) => !value.is_empty() && like(rest, &value[1..]),
        Some((c, rest)) => value.first() == Some(c) && like(rest, &value[1..]),
    }
}

/// Why `call` is outside `list`, if it is.
fn outside(list: &Listed, call: &Call) -> Option<String> {
    let slot = list.get(&(call.resource.clone(), call.action.clone()));
    if call.resource == "calls" {
        // Another service's call: its resource must be listed under `[calls]`.
        let listed = slot
            .map(|(resources, _)| resources.as_slice())
            .unwrap_or_default();
        return (!listed.contains(&call.key)).then(|| {
            format!(
                "{} on {} is not in [calls] ({listed:?})",
                call.action, call.key
            )
        });
    }
    let Some((keys, names)) = slot else {
        return Some(format!(
            "dynamodb:{} on {} is not listed",
            call.action, call.resource
        ));
    };
    if !keys.iter().any(|k| like(k.as_bytes(), call.key.as_bytes())) {
        return Some(format!(
            "dynamodb:{} on {} with key {:?} matches none of {keys:?}",
            call.action, call.resource, call.key
        ));
    }
    let names = names.as_ref()?;
    let extra: Vec<&String> = call
        .attributes
        .iter()
        .filter(|a| !names.contains(a))
        .collect();
    (!extra.is_empty()).then(|| {
        format!(
            "dynamodb:{} on {} names attributes {extra:?} not listed",
            call.action, call.resource
        )
    })
}

fn assert_within(dir: &str, calls: &[Call], what: &str) {
    let list = listed(dir);
    let out: BTreeSet<String> = calls.iter().filter_map(|c| outside(&list, c)).collect();
    assert!(
        out.is_empty(),
        "{what}: calls beyond {dir}/permissions.toml:\n{}",
        out.into_iter().collect::<Vec<_>>().join("\n")
    );
}

fn did(calls: &[Call], action: &str) -> bool {
    calls.iter().any(|c| c.action == action)
}

/// A DynamoDB client on moto that records every request into `recorder`.
fn recorded_client(recorder: &Arc<Recorder>) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk_config())
        .interceptor(Recording {
            recorder: recorder.clone(),
            queues: None,
        })
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A table in moto whose client records every request; the table's creation is not recorded.
async fn recorded_store() -> (Arc<DynamoBillingStore>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = recorded_client(&recorder);
    let store = Arc::new(DynamoBillingStore::new(
        client,
        unique("billing"),
        Retention::default(),
    ));
    store
        .create_table_if_missing()
        .await
        .expect("create table in moto");
    recorder.take();
    (store, recorder)
}

/// Every Stripe fixture file (events only), in a stable order.
fn stripe_fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            stripe_fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The Stripe functions: each fixture to its family's endpoint (emails on, so the jobs are
/// queued as the invoice, checkout and subscription functions queue them).
async fn stripe_deliveries(store: &Arc<DynamoBillingStore>, recorder: &Recorder) -> TestApp {
    let mut app = spawn_on(store.clone(), false);
    let kinds = EmailKind::ALL.into_iter().collect();
    let service = pipeline(
        app.store.clone(),
        app.secrets.clone(),
        app.clock.clone(),
        app.metrics.clone(),
        settings(false),
    );
    app.service = Arc::new(service.with_email_kinds(kinds));
    app.router = local_router(app.service.clone());
    store.warm_up().await;
    let warm = recorder.take();
    let mut files = Vec::new();
    stripe_fixtures(&fixture_path("stripe"), &mut files);
    let mut seen = Vec::new();
    for path in files {
        let body = std::fs::read(&path).expect("fixture");
        let Ok(envelope) = Envelope::parse(&body) else {
            continue; // not an event (the signed vectors)
        };
        let family = family_of(&envelope.event_type);
        app.post(family, &body).await;
        let calls = recorder.take();
        let dir = format!("functions/{family}");
        assert_within(&dir, &warm, "warm-up");
        assert_within(&dir, &calls, &path.display().to_string());
        seen.extend(calls);
    }
    assert!(
        did(&seen, "BatchGetItem") && did(&seen, "PutItem"),
        "nothing recorded: {seen:?}"
    );
    app
}

/// The first key (PK) of an item whose partition key starts with `prefix`, read unrecorded.
async fn some_key(table: &str, prefix: &str) -> String {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let out = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(PK, :p)")
        .expression_attribute_values(":p", AttributeValue::S(prefix.to_owned()))
        .send()
        .await
        .expect("scan");
    let items = out.items();
    let pk = items
        .first()
        .and_then(|i| i.get("PK"))
        .and_then(|v| v.as_s().ok());
    pk.unwrap_or_else(|| panic!("no {prefix} item")).clone()
}

/// The read API: every read route, on what the deliveries wrote.
async fn read_routes(app: &TestApp, table: &str, recorder: &Recorder) {
    let user = some_key(table, "USER#").await;
    let event = some_key(table, "EVT#stripe#").await;
    let product = some_key(table, "PRODUCT#stripe#").await;
    let user = user.trim_start_matches("USER#");
    let paths = [
        "/events/parked".to_owned(),
        "/outbox/unreadable".to_owned(),
        format!("/events/stripe/{}", event.trim_start_matches("EVT#stripe#")),
        format!("/users/{user}/access"),
        format!("/users/{user}/events"),
        format!("/users/{user}/billing"),
        format!(
            "/products/{}",
            product.trim_start_matches("PRODUCT#stripe#")
        ),
    ];
    for path in &paths {
        app.get(path).await;
    }
    let calls = recorder.take();
    assert_within("functions/api", &calls, "read routes");
    assert!(did(&calls, "GetItem") && did(&calls, "Query"), "{calls:?}");
}

/// One DynamoDB Streams record of an outbox insert, as the event source mapping hands it over.
fn stream_record(sequence: usize, item: &HashMap<String, AttributeValue>) -> Value {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let keys = json!({"PK": {"S": text("PK")}, "SK": {"S": "OUTBOX"}});
    let mut image = keys.clone();
    image["doc"] = json!({"S": text("doc")});
    json!({
        "eventID": format!("ev-{sequence}"), "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": sequence.to_string(),
            "SizeBytes": 100, "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/billing/stream/x"
    })
}

/// The relay: a stream batch of every outbox item the deliveries wrote, and one unreadable item
/// (set aside), sent to queues in moto. Returns the email jobs as the email queue hands them over.
async fn relay_batch(store: &Arc<DynamoBillingStore>, recorder: &Arc<Recorder>) -> Vec<SqsRecord> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    client
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S("OUTBOX#unreadable".into()))
        .item("SK", AttributeValue::S("OUTBOX".into()))
        .item("doc", AttributeValue::S("{not json".into()))
        .send()
        .await
        .expect("put an unreadable outbox item");
    let out = client
        .scan()
        .table_name(store.table())
        .filter_expression("begins_with(PK, :p)")
        .expression_attribute_values(":p", AttributeValue::S("OUTBOX#".into()))
        .send()
        .await
        .expect("scan outbox");
    let records: Vec<Value> = out
        .items()
        .iter()
        .enumerate()
        .map(|(i, item)| stream_record(i + 1, item))
        .collect();
    let event: StreamEvent = serde_json::from_value(json!({ "Records": records })).expect("event");
    let (sqs, feed_url) = moto_queue("feed").await;
    let (_, email_url) = moto_queue("jobs").await;
    let queues = [(&feed_url, "FeedQueue"), (&email_url, "EmailQueue")];
    let recording = Recording {
        recorder: recorder.clone(),
        queues: Some(queues.map(|(u, n)| (u.clone(), n.to_owned())).into()),
    };
    let sends = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk_config())
            .interceptor(recording)
            .build(),
    );
    let routed = RoutedQueue {
        feed: Arc::new(SqsQueue::new(sends.clone(), feed_url)),
        emails: Some(Arc::new(SqsQueue::new(sends, email_url.clone()))),
    };
    store.warm_up().await;
    let answer = handle_stream_batch(store.as_ref(), &routed, &Metrics::memory(), &event).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let calls = recorder.take();
    assert_within("functions/relay", &calls, "stream batch");
    assert!(
        did(&calls, "DeleteItem") && did(&calls, "UpdateItem") && did(&calls, "sqs:SendMessage"),
        "{calls:?}"
    );
    let received = receive_all(&sqs, &email_url).await;
    received
        .into_iter()
        .map(|(id, _, body)| SqsRecord {
            message_id: id,
            body: body.to_string(),
            ..Default::default()
        })
        .collect()
}

/// The emails function: the relayed jobs and a permanent bounce, in one SQS batch.
async fn email_batch(
    store: &Arc<DynamoBillingStore>,
    recorder: &Arc<Recorder>,
    jobs: Vec<SqsRecord>,
) {
    assert!(!jobs.is_empty(), "the fixtures queue email jobs");
    // The ledger's own client, recording like the store's.
    let ledger_client = recorded_client(recorder);
    let sender = EmailSender {
        store: store.clone(),
        ledger: Arc::new(DynamoEmailLedger::new(ledger_client, store.table())),
        mailer: Arc::new(InMemoryMailer::default()),
        settings: EmailSettings {
            kinds: EmailKind::ALL.into_iter().collect(),
            from: Some(EmailAddress::new("billing@example.com")),
            reply_to: None,
            configuration_set: None,
            connected_accounts: false,
        },
        clock: Arc::new(FixedClock::at(NOW)),
        metrics: Arc::new(Metrics::memory()),
        policy: SendPolicy::default(),
        visibility: None,
        templates: crate::email_send::test_templates(),
    };
    let mut records = jobs;
    let ses = json!({"eventType": "Bounce", "mail": {"messageId": "m-1"},
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "gone@example.com"}]}});
    let sns = json!({"Type": "Notification", "MessageId": "sns-1", "Message": ses.to_string()});
    records.push(SqsRecord {
        message_id: "bounce".into(),
        body: sns.to_string(),
        ..Default::default()
    });
    store.warm_up().await;
    sender.handle_batch(&SqsEvent { records }).await;
    let calls = recorder.take();
    assert_within("functions/emails", &calls, "email batch");
    assert!(
        did(&calls, "UpdateItem") && did(&calls, "PutItem"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn moto_permissions_the_stripe_functions_the_read_api_the_relay_and_the_emails_call_only_what_they_list(
) {
    let (store, recorder) = recorded_store().await;
    let app = stripe_deliveries(&store, &recorder).await;
    read_routes(&app, store.table(), &recorder).await;
    let jobs = relay_batch(&store, &recorder).await;
    email_batch(&store, &recorder, jobs).await;
}

/// The eventbridge function: every Stripe fixture as an EventBridge envelope through its
/// consumer (emails on, as the template passes them), and a refused one; warm-up included.
#[tokio::test]
async fn moto_permissions_the_eventbridge_function_calls_only_what_it_lists() {
    use billing::eventbridge::{sqs_event, Ingress, Settings, SAMPLE_ACCOUNT, SAMPLE_SOURCE};
    let (store, recorder) = recorded_store().await;
    let app = spawn_on(store.clone(), false);
    let kinds = EmailKind::ALL.into_iter().collect();
    let service = pipeline(
        app.store.clone(),
        app.secrets.clone(),
        app.clock.clone(),
        app.metrics.clone(),
        settings(false),
    );
    let ingress = Ingress {
        pipeline: Arc::new(service.with_email_kinds(kinds)),
        settings: Settings::sample(),
        metrics: app.metrics.clone(),
    };
    store.warm_up().await;
    let mut seen = recorder.take();
    let mut files = Vec::new();
    stripe_fixtures(&fixture_path("stripe"), &mut files);
    for (n, path) in files.iter().enumerate() {
        let body = std::fs::read(path).expect("fixture");
        let Ok(detail) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        // One in ten from another account: refused before any call.
        let account = if n % 10 == 9 {
            "210987654321"
        } else {
            SAMPLE_ACCOUNT
        };
        let event = sqs_event(&detail, SAMPLE_SOURCE, account, NOW);
        let event: SqsEvent = serde_json::from_value(event).expect("an SQS event");
        ingress.handle_batch(&event).await;
        seen.extend(recorder.take());
    }
    assert_within("functions/eventbridge", &seen, "EventBridge batches");
    assert!(
        did(&seen, "GetItem") && did(&seen, "BatchGetItem") && did(&seen, "PutItem"),
        "nothing recorded: {seen:?}"
    );
}

#[tokio::test]
async fn moto_permissions_the_paypal_function_calls_only_what_it_lists() {
    let (store, recorder) = recorded_store().await;
    let clock = Arc::new(FixedClock::at(NOW));
    let verifier = pp::suite_verifier(clock.clone()).await;
    let service = Arc::new(pp::pipeline_with_paypal(
        store.clone(),
        clock,
        Arc::new(Metrics::memory()),
        settings(false),
        SECRET,
        verifier,
    ));
    let router = billing::http::local_router(service);
    store.warm_up().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_path("paypal"))
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in &files {
        let body = std::fs::read(path).expect("fixture");
        let mut req = http::Request::post("/webhooks/paypal");
        for (name, value) in &pp::headers(&body, NOW) {
            req = req.header(name, value);
        }
        let req = req.body(axum::body::Body::from(body)).expect("request");
        call_router(&router, req).await;
    }
    let calls = recorder.take();
    assert_within("functions/paypal", &calls, "PayPal deliveries");
    assert!(
        did(&calls, "BatchGetItem") && did(&calls, "PutItem"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn moto_permissions_the_thin_function_calls_only_what_it_lists() {
    let (store, recorder) = recorded_store().await;
    store.warm_up().await;
    let warm = recorder.take();
    assert_within("functions/thin", &warm, "warm-up");
    crate::thin::deliver_every_notification(store).await;
    let calls = recorder.take();
    assert_within("functions/thin", &calls, "thin deliveries");
    assert!(
        did(&calls, "BatchGetItem") && did(&calls, "PutItem"),
        "{calls:?}"
    );
}

/// The check itself: a call beyond a list (an action, a key, an attribute) is reported.
#[test]
fn a_call_beyond_a_functions_list_is_reported() {
    let list = listed("functions/checkout");
    let at = |resource: &str, action: &str, key: &str| Call {
        resource: resource.into(),
        action: action.into(),
        key: key.into(),
        attributes: BTreeSet::new(),
    };
    assert_eq!(
        outside(&list, &at("table", "PutItem", "AUDIT#stripe#cus_1")),
        None
    );
    assert!(outside(&list, &at("table", "DeleteItem", "AUDIT#stripe#cus_1")).is_some());
    assert!(outside(&list, &at("table", "GetItem", "AUDIT#stripe#cus_1")).is_some());
    assert!(outside(&list, &at("index/Listings", "Query", "PARKED#07")).is_some());
    assert!(outside(&list, &at("table", "DescribeTable", "")).is_some());
    let relay = listed("functions/relay");
    let mut update = at("table", "UpdateItem", "OUTBOX#m1");
    update.attributes = ["PK", "SK", "GSI1PK", "GSI1SK"].map(String::from).into();
    assert_eq!(outside(&relay, &update), None);
    update.attributes.insert("doc".into());
    assert!(
        outside(&relay, &update).is_some(),
        "an attribute beyond the list"
    );
    let send = |queue: &str| Call {
        resource: "calls".into(),
        action: "sqs:SendMessage".into(),
        key: queue.into(),
        attributes: BTreeSet::new(),
    };
    assert_eq!(outside(&relay, &send("FeedQueue")), None);
    assert!(outside(&relay, &send("FeedDeadLetterQueue")).is_some());
    assert!(
        outside(&list, &send("FeedQueue")).is_some(),
        "checkout sends nothing"
    );
    assert!(like(b"EVT#*", b"EVT#stripe#evt_1") && !like(b"EVT#*", b"EVTX"));
    assert!(like(b"WARMUP", b"WARMUP") && !like(b"WARMUP", b"WARMUP2"));
}

/// What a request names, as IAM reads it: a transaction's items, a batch's keys, a query's
/// partition key on its index, an update's attributes.
#[test]
fn requests_are_read_as_iam_authorises_them() {
    let transaction = json!({"TransactItems": [
        {"Put": {"Item": {"PK": {"S": "EVT#stripe#e"}, "SK": {"S": "EVT"}}}},
        {"ConditionCheck": {"Key": {"PK": {"S": "USER#u"}, "SK": {"S": "ACCESS"}}}}
    ]});
    let calls = calls_of("TransactWriteItems", &transaction);
    let read: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.action.as_str(), c.key.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("PutItem", "EVT#stripe#e"),
            ("ConditionCheckItem", "USER#u")
        ]
    );
    let query = json!({"IndexName": "Listings", "KeyConditionExpression": "GSI1PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "PARKED#07"}}});
    let q = &calls_of("Query", &query)[0];
    assert_eq!(
        (q.resource.as_str(), q.key.as_str()),
        ("index/Listings", "PARKED#07")
    );
    let update = json!({"Key": {"PK": {"S": "OUTBOX#m"}, "SK": {"S": "OUTBOX"}},
        "UpdateExpression": "SET GSI1PK = :pk, #r = :why", "ConditionExpression": "attribute_exists(PK)",
        "ExpressionAttributeNames": {"#r": "unreadable_reason"}});
    let u = &calls_of("UpdateItem", &update)[0];
    let names: Vec<&str> = u.attributes.iter().map(String::as_str).collect();
    assert_eq!(names, ["GSI1PK", "PK", "SK", "unreadable_reason"]);
}
