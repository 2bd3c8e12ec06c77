//! `billing`: the local run and the operator's commands; `billing COMMAND --help` for each.
//!
//! ```text
//! billing local                       serve all endpoints on BILLING_LOCAL_ADDR (moto behind it)
//! billing send FILE [--family F] [--url URL] [--secret whsec_…] [--at UNIX]
//! billing replay (--all | EVENT_ID)   re-apply parked events through the same pipeline
//! billing parked                      list parked events
//! billing grant USER --days N --reason TEXT [--tier T] [--by NAME]   grant a system period
//! billing relay [--once]              deliver pending outbox messages to BILLING_FEED_QUEUE_URL
//! billing outbox list                 outbox items set aside (unreadable, or refused by SQS)
//! billing outbox requeue (--all | ID) put set-aside items back for the relay
//! billing create-table [--print]      create BILLING_TABLE (local runs and tests), or print its definition
//! billing lambda-event FILE [--family F] [--secret S] [--at UNIX] [--base64]   print an API Gateway event
//! billing stripe-endpoints --base-url URL [--rotate | --finish-rotation] [--dry-run]
//!                                     create or update the Stripe webhook endpoints
//! billing lambda-event FILE --stream [--after FILE]… [--at UNIX]   print the relay's DynamoDB Streams event
//! billing lambda-event FILE --email-jobs [--after FILE]… [--at UNIX]   print the emails function's SQS event
//! billing read-event PATH [--at UNIX]  print the api function's event for a read route
//! billing paypal-event FILE --key-dir DIR [--at UNIX]   print a locally signed PayPal delivery
//! billing eventbridge-event FILE [--source S] [--account A] [--at UNIX]   print the eventbridge function's SQS event
//! billing emails list [--limit N|--all] sent-email records, newest first (no addresses)
//! billing emails redrive              move the email dead-letter queue back to the email queue
//! billing eventbridge dead-letters [--limit N]   the EventBridge dead letters by verdict (no bodies)
//! billing eventbridge redrive         move the EventBridge dead-letter queue back to its queue
//! billing import [--since TIME] [--kinds K,…] [--concurrency N] [--dry-run] [--restart] [--status]
//!                [--account acct_…]   import what Stripe already knows (resumable; a connected account's)
//! billing backfill --since TIME [--until TIME] [--types T,…] [--provider stripe|paypal]
//!                [--account acct_…]   apply the provider's events the webhooks missed
//! billing catchup status [--account acct_…]…   what import, backfill and reconcile did last (checkpoints)
//! ```

#![warn(clippy::too_many_lines)]

mod backfill;
mod dev;
mod emails;
mod endpoints;
mod eventbridge;
mod grant;
mod import;
mod outbox;
mod preview;
mod settings;

use billing::adapters::sqs::SqsQueue;
use billing::app::{with_deadline, App};
use billing::config::Config;
use billing::domain::ids::{EventId, Provider};
use billing::emails::kinds::{EmailQueueing, EmailSettings};
use billing::http::{ledger_json, local_router};
use billing::pipeline::Outcome;
use billing::ports::{BillingStore, Queue};
use billing::providers::paypal::settings::PaypalSettings;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::signature::{sign, WebhookSecret};
use billing::providers::stripe::translate::family_of;
use billing::providers::stripe::Family;
use billing::relay::{self, RoutedQueue};
use billing::telemetry::Metrics;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

type CliResult = Result<(), String>;

/// Local run, signed sends, replay and relay for the billing webhooks.
#[derive(Debug, Parser)]
#[command(name = "billing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every endpoint on BILLING_LOCAL_ADDR, with the table and a feed queue in moto.
    Local,
    /// Sign a Stripe event file's exact bytes and POST them to a running endpoint.
    Send {
        #[command(flatten)]
        event: SignedEvent,
        /// Where to post (default: the family's endpoint on BILLING_LOCAL_ADDR).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Re-apply parked events through the same pipeline (the signature was checked on arrival).
    Replay(ReplayArgs),
    /// List parked events, oldest first, one JSON line each.
    Parked,
    /// Grant USER a system period of N days from now (recorded, audited, announced).
    Grant(grant::GrantArgs),
    /// Deliver pending outbox messages to BILLING_FEED_QUEUE_URL.
    Relay {
        /// Drain the outbox (every item pending now) and exit instead of polling every second.
        #[arg(long)]
        once: bool,
    },
    /// Outbox items the relay set aside (unreadable, or refused by SQS), and their requeue.
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// Create BILLING_TABLE if it does not exist (local runs and tests).
    CreateTable {
        /// Print the table's definition (CloudFormation property names, JSON) instead: what
        /// template.yaml's Table must say (scripts/check-template compares them).
        #[arg(long)]
        print: bool,
    },
    /// Print, as JSON, the CloudWatch metrics the functions emit (namespace default, dimension,
    /// its values, metric names): what dashboards and alarms may use.
    Metrics,
    /// Print an API Gateway (HTTP API, payload 2.0) event carrying a signed Stripe event file,
    /// for `sam local invoke` and `cargo lambda invoke --data-file`.
    #[command(group(clap::ArgGroup::new("derived").args(["stream", "email_jobs"])))]
    LambdaEvent {
        #[command(flatten)]
        event: SignedEvent,
        /// Base64-encode the body, as API Gateway does for binary media types.
        #[arg(long)]
        base64: bool,
        /// Instead: apply FILE to an empty in-memory model and print the DynamoDB Streams
        /// event the table delivers to the relay (one INSERT per outbox item FILE writes). --at
        /// is when it is applied (default: the event's `created`, so the output is stable).
        #[arg(long, conflicts_with_all = ["base64", "secret"])]
        stream: bool,
        /// Instead: apply FILE to an empty in-memory model and print the SQS event the emails
        /// function receives for the email jobs FILE queues (one record per job).
        #[arg(long, conflicts_with_all = ["base64", "secret"])]
        email_jobs: bool,
        /// With --stream or --email-jobs: apply this event file first (repeatable, in order;
        /// each to the family of its type).
        #[arg(long, value_name = "FILE", requires = "derived")]
        after: Vec<PathBuf>,
    },
    /// Print an API Gateway (HTTP API, payload 2.0) event carrying a PayPal event file to
    /// `POST /webhooks/paypal`, signed now with a local RSA key in KEY_DIR (made there if
    /// missing) under the webhook id `LOCALINVOKE0000000`: only `scripts/fake_paypal.py` (standing
    /// in for PayPal's verify-webhook-signature API) accepts it.
    PaypalEvent {
        /// The PayPal event file (its exact bytes are the body).
        file: PathBuf,
        /// Where the local key pair is (`paypal-local.pk8`, `paypal-local.pub.der`).
        #[arg(long, value_name = "KEY_DIR")]
        key_dir: PathBuf,
        /// The transmission time (Unix seconds; default: now).
        #[arg(long)]
        at: Option<i64>,
    },
    /// Print an API Gateway (HTTP API, payload 2.0) GET event of a read route (`PATH`, with its
    /// query), as API Gateway passes it once IAM has authorised the caller: for the api
    /// function under `sam local invoke` and `cargo lambda invoke --data-file`.
    ReadEvent {
        /// The route and query, e.g. `/users/user_42/access`.
        path: String,
        /// The request time (Unix seconds; default: now).
        #[arg(long)]
        at: Option<i64>,
    },
    /// Print the SQS event the eventbridge function receives when Stripe sends a Stripe event
    /// file through Amazon EventBridge: the file's event as the `detail` of an envelope from
    /// SOURCE in ACCOUNT (default: the local samples', which scripts/lambda-invoke-check
    /// configures), for `cargo lambda invoke --data-file` and `sam local invoke`.
    EventbridgeEvent {
        /// The Stripe event file.
        file: PathBuf,
        /// The envelope's `source` (the partner event source).
        #[arg(long, default_value = billing::eventbridge::SAMPLE_SOURCE)]
        source: String,
        /// The envelope's `account` (the AWS account id).
        #[arg(long, default_value = billing::eventbridge::SAMPLE_ACCOUNT)]
        account: String,
        /// The envelope's time (Unix seconds; default: the event's `created`, so the output is
        /// stable).
        #[arg(long)]
        at: Option<i64>,
    },
    /// Create or update the four Stripe webhook endpoints (STRIPE_ADMIN_KEY) and store their
    /// signing secrets in Secrets Manager (STRIPE_WEBHOOK_SECRETS_<FAMILY>_ARN).
    StripeEndpoints(endpoints::Args),
    /// Import what Stripe already knows (catalogue, customers, subscriptions, recent invoices and
    /// payments, entitlements) through the pipeline; resumable, `--dry-run` writes nothing.
    Import(import::ImportArgs),
    /// Customer emails: the sent-email records, and the dead-letter queue's redrive.
    Emails {
        #[command(subcommand)]
        command: emails::EmailsCommand,
    },
    /// The EventBridge ingress' dead-letter queue: its messages by verdict (no bodies), and
    /// their redrive.
    Eventbridge {
        #[command(subcommand)]
        command: eventbridge::EventbridgeCommand,
    },
    /// List the provider's events of a time range (at most 30 days back) and apply them oldest
    /// first like deliveries: what the webhooks delivered is a duplicate, what they missed is
    /// applied once. STRIPE_API_KEY (or _ARN) with Events: Read; PayPal: PAYPAL_CLIENT_ID and
    /// its secret.
    Backfill(backfill::BackfillArgs),
    /// The catch-up jobs' checkpoints (import, backfill, reconcile).
    Catchup {
        #[command(subcommand)]
        command: CatchupCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CatchupCommand {
    /// One JSON line per checkpoint: when each job ran, how far it came, what it applied, and
    /// when reconcile last found missed events or drift.
    Status {
        /// Also these connected accounts' checkpoints (repeatable; default: those of
        /// BILLING_RECONCILE_STRIPE_ACCOUNTS, when set).
        #[arg(long, value_name = "acct_…", value_parser = connected_account)]
        account: Vec<billing::domain::ids::Account>,
    },
}

/// One of Stripe's endpoint families (`paypal` and `operator` are families too, not Stripe's).
fn stripe_family(s: &str) -> Result<Family, String> {
    Family::ALL
        .into_iter()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| {
            format!("unknown family `{s}` (Stripe's: checkout, subscription, invoice, charge)")
        })
}

/// A Stripe event file to sign, and how.
#[derive(Debug, Args)]
struct SignedEvent {
    /// The event file; its exact bytes are signed and sent.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// checkout, subscription, invoice or charge (default: the family of the event's type).
    #[arg(long, value_name = "FAMILY", value_parser = stripe_family)]
    family: Option<Family>,
    /// The signing secret (default: the first of STRIPE_WEBHOOK_SECRETS_<FAMILY>, else the
    /// generated development secret).
    #[arg(long, value_name = "whsec_…")]
    secret: Option<String>,
    /// The signature's timestamp in Unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    at: Option<i64>,
    /// To the family's Connect endpoint (`/webhooks/stripe/FAMILY/connect`), signed with its
    /// secret (default: the first of STRIPE_WEBHOOK_SECRETS_<FAMILY>_CONNECT, else the generated
    /// development one).
    #[arg(long)]
    connect: bool,
    /// FILE is a thin event notification (`v2.core.event`): to the thin endpoint
    /// (`/webhooks/stripe/thin`), signed with its secret (default: the first of
    /// STRIPE_WEBHOOK_SECRETS_THIN).
    #[arg(long, conflicts_with_all = ["connect", "family"])]
    thin: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ReplayArgs {
    /// The parked event to re-apply (a Connect account's: ACCOUNT/EVENT_ID, `acct_…/evt_…`).
    #[arg(value_name = "EVENT_ID")]
    event_id: Option<String>,
    /// Re-apply every parked event.
    #[arg(long)]
    all: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Bad arguments and `--help` end here (exit codes 2 and 0), before anything is built.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Local => local().await,
        Command::Send { event, url } => send(&event, url).await,
        Command::Replay(args) => replay(args).await,
        Command::Parked => parked().await,
        Command::Grant(args) => match build_app(Metrics::Off).await {
            Ok(app) => grant::run(&app.service, &args).await,
            Err(e) => Err(e),
        },
        Command::Relay { once } => relay_cmd(once).await,
        Command::Outbox { command } => match build_app(Metrics::Off).await {
            Ok(app) => outbox::command(&app, command).await,
            Err(e) => Err(e),
        },
        Command::CreateTable { print: true } => {
            let schema = billing::adapters::dynamo::schema::table_schema();
            println!("{:#}", serde_json::json!(schema));
            Ok(())
        }
        Command::CreateTable { print: false } => create_table().await,
        Command::Metrics => {
            let endpoints = billing::providers::built_in_endpoints();
            let names: Vec<&str> = endpoints.iter().map(|e| e.as_str()).collect();
            println!("{:#}", billing::telemetry::emitted(&names));
            Ok(())
        }
        Command::LambdaEvent {
            event,
            stream: true,
            after,
            ..
        } => stream_event(&event, &after).await,
        Command::LambdaEvent {
            event,
            email_jobs: true,
            after,
            ..
        } => email_jobs_event(&event, &after).await,
        Command::PaypalEvent { file, key_dir, at } => std::fs::read(&file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|body| dev::paypal_gateway_event(&body, &key_dir, at.unwrap_or_else(now)))
            .and_then(|event| print_json(&event)),
        Command::ReadEvent { path, at } => {
            print_json(&dev::read_route_event(&path, at.unwrap_or_else(now)))
        }
        Command::EventbridgeEvent {
            file,
            source,
            account,
            at,
        } => eventbridge_event(&file, &source, &account, at),
        Command::LambdaEvent { event, base64, .. } => lambda_event(&event, base64),
        Command::StripeEndpoints(args) => endpoints::command(args).await,
        Command::Import(args) => match build_app(Metrics::Off).await {
            Ok(app) => import::command(&app, &args).await,
            Err(e) => Err(e),
        },
        // A preview needs no table unless it reads one (it builds the app itself then).
        Command::Emails {
            command: emails::EmailsCommand::Preview(args),
        } => preview::command(args).await,
        Command::Emails { command } => match build_app(Metrics::Off).await {
            Ok(app) => emails::command(&app, command).await,
            Err(e) => Err(e),
        },
        Command::Eventbridge { command } => eventbridge::command(command).await,
        Command::Backfill(args) => backfill::command(args).await,
        Command::Catchup {
            command: CatchupCommand::Status { account },
        } => backfill::status(account).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("billing: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the app from the environment, with development defaults where a variable is unset.
async fn build_app(metrics: Metrics) -> Result<App, String> {
    build_app_with_emails(metrics, EmailQueueing::default()).await
}

/// [`build_app`], queueing the email jobs `emails` says (the local run, `replay`).
async fn build_app_with_emails(metrics: Metrics, emails: EmailQueueing) -> Result<App, String> {
    let defaults = dev::defaults()?;
    let config = Config::from_env(&Family::ALL, Some(&defaults)).map_err(|e| e.to_string())?;
    billing::telemetry::init(config.log_json);
    let app = App::build_with_emails(config, metrics, emails).await?;
    // PayPal when configured; otherwise its recorded events can still be read (a replay).
    match PaypalSettings::from_env_if_set().map_err(|e| e.to_string())? {
        Some(paypal) => app.with_paypal(&paypal).await,
        None => app.with_provider(std::sync::Arc::new(
            billing::providers::paypal::PaypalProvider::read_only(),
        )),
    }
}

/// The local run's emails, when a kind is on: email jobs go to a local email queue, and the
/// same consumer as the emails Lambda runs in-process on it, sending through moto's SES.
async fn local_emails(app: &mut App, settings: EmailSettings) -> CliResult {
    let sdk = billing::app::sdk_loader(&app.config.bounds).load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = match billing::app::email_queue_url() {
        Some(url) => url,
        None => emails::local_email_queue(&sqs).await?,
    };
    println!("email queue: {url}");
    let looks = settings::email_looks(!settings.kinds.is_empty())?;
    let mut sender = billing::app::email_sender(&sdk, app, settings, looks)?;
    // Local records carry no queue ARN: waiting jobs are returned on this queue.
    sender.visibility = Some(Arc::new(
        billing::adapters::email_queue::SqsVisibility::for_queue(sqs.clone(), url.clone()),
    ));
    if let Some(feed) = app.queue.take() {
        let emails: Arc<dyn Queue> = Arc::new(SqsQueue::new(sqs.clone(), url.clone()));
        app.queue = Some(Arc::new(RoutedQueue {
            feed,
            emails: Some(emails),
        }));
    }
    tokio::spawn(emails::consume_forever(sender, sqs, url));
    Ok(())
}

async fn local() -> CliResult {
    // Read first: a bad BILLING_EMAILS or sender stops the run here, by name.
    let emails = settings::email_settings()?;
    let mut app = build_app_with_emails(
        Metrics::Emf {
            namespace: "BillingWebhooksLocal".into(),
        },
        emails.queueing(),
    )
    .await?;
    if app
        .store
        .create_table_if_missing()
        .await
        .map_err(|e| e.to_string())?
    {
        println!("created table {}", app.config.table);
    }
    if app.queue.is_none() {
        let (queue, url) = dev::local_queue().await?;
        println!("feed queue: {url}");
        app.queue = Some(queue);
    }
    if !emails.kinds.is_empty() {
        local_emails(&mut app, emails).await?;
    }
    let addr = app.config.local_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    dev::print_banner(&app.config, addr)?;
    let (store, queue, metrics) = (app.store.clone(), app.queue.clone(), app.metrics.clone());
    tokio::spawn(async move {
        // The local stand-in for the DynamoDB Streams relay: the same `deliver` code, polled.
        let Some(queue) = queue else { return };
        loop {
            if let Err(e) = relay::drain(store.as_ref(), queue.as_ref(), &metrics, 100).await {
                tracing::warn!(error = %e, "relay pass failed");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // The same deadline as the Lambdas, so a frozen stand-in answers 503 here too.
    let router = with_deadline(
        local_router(app.service.clone()),
        app.config.delivery_timeout,
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

/// A Stripe event file's exact bytes and its envelope.
fn read_event(path: &Path) -> Result<(Vec<u8>, Envelope), String> {
    let shown = path.display();
    let body = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let env = Envelope::parse(&body).map_err(|e| format!("{shown}: {e}"))?;
    Ok((body, env))
}

fn read_fixture(path: &Path) -> Result<(Vec<u8>, Family), String> {
    let (body, env) = read_event(path)?;
    Ok((body, family_of(&env.event_type)))
}

fn secret_for(secret: Option<&str>, family: Family) -> Result<WebhookSecret, String> {
    if let Some(s) = secret {
        return Ok(WebhookSecret::new(s));
    }
    let var = format!("STRIPE_WEBHOOK_SECRETS_{}", family.env_suffix());
    if let Some(first) = settings::inline_webhook_secrets(family)
        .as_deref()
        .and_then(|v| v.split(',').next())
    {
        return Ok(WebhookSecret::new(first.trim()));
    }
    let defaults = dev::defaults()?;
    defaults
        .secrets
        .get(&family)
        .map(|s| WebhookSecret::new(s.clone()))
        .ok_or_else(|| format!("no secret for {family}: pass --secret or set {var}"))
}

/// A connected account's id (`acct_…`), as `--account` takes it.
pub fn connected_account(s: &str) -> Result<billing::domain::ids::Account, String> {
    billing::domain::ids::Account::parse(s.trim())
        .ok_or_else(|| format!("{s}: not a connected account id (acct_…)"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fixture's exact bytes, the family they go to and their Stripe-Signature header.
struct Signed {
    body: Vec<u8>,
    /// The endpoint's path: `/webhooks/stripe/{family}`, or its Connect one.
    path: String,
    header: String,
    at: i64,
}

/// Reads the event file and signs its exact bytes.
fn signed_fixture(event: &SignedEvent) -> Result<Signed, String> {
    if event.thin {
        return signed_thin(event);
    }
    let (body, home) = read_fixture(&event.file)?;
    let family = event.family.unwrap_or(home);
    let (secret, path) = if event.connect {
        let secret = event
            .secret
            .clone()
            .or_else(|| settings::inline_connect_secrets(family))
            .and_then(|list| list.split(',').next().map(|s| s.trim().to_owned()))
            .or_else(|| {
                let defaults = dev::defaults().ok()?;
                defaults.connect_secrets.get(&family).cloned()
            })
            .ok_or_else(|| {
                let var = format!("STRIPE_WEBHOOK_SECRETS_{}_CONNECT", family.env_suffix());
                format!("no Connect secret for {family}: pass --secret or set {var}")
            })?;
        let path = format!("/webhooks/stripe/{family}/connect");
        (WebhookSecret::new(secret), path)
    } else {
        let path = format!("/webhooks/stripe/{family}");
        (secret_for(event.secret.as_deref(), family)?, path)
    };
    let at = event.at.unwrap_or_else(now);
    let header = sign(&body, &[secret], at);
    Ok(Signed {
        body,
        path,
        header,
        at,
    })
}

/// A thin notification signed for the thin endpoint: its bytes are checked to be one (an
/// event id, a type, a related object or none), never re-serialised.
fn signed_thin(event: &SignedEvent) -> Result<Signed, String> {
    use billing::providers::stripe::thin;
    let body = std::fs::read(&event.file).map_err(|e| format!("{}: {e}", event.file.display()))?;
    serde_json::from_slice(&body)
        .map_err(|e| e.to_string())
        .and_then(|root| thin::Notification::parse(&root))
        .map_err(|e| format!("{}: {e}", event.file.display()))?;
    let secret = event
        .secret
        .clone()
        .or_else(settings::inline_thin_secrets)
        .and_then(|list| list.split(',').next().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .ok_or("no thin endpoint secret: pass --secret or set STRIPE_WEBHOOK_SECRETS_THIN")?;
    let at = event.at.unwrap_or_else(now);
    let header = sign(&body, &[WebhookSecret::new(secret)], at);
    Ok(Signed {
        body,
        path: thin::PATH.to_owned(),
        header,
        at,
    })
}

/// The client `send` posts with. reqwest is built with rustls but no crypto provider (the
/// workspace picks aws-lc-rs once, explicitly), so the process installs it before the first
/// client: without it `Client::new` panics ("No provider set").
fn http_client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Signs a fixture file's exact bytes and posts it to a running endpoint.
async fn send(event: &SignedEvent, url: Option<String>) -> CliResult {
    let Signed {
        body, path, header, ..
    } = signed_fixture(event)?;
    let url = match url {
        Some(u) => u,
        None => {
            let addr = settings::local_addr();
            format!("http://{addr}{path}")
        }
    };
    let response = http_client()?
        .post(&url)
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{} {text}", status.as_u16());
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("endpoint answered {status}"))
    }
}

async fn replay(args: ReplayArgs) -> CliResult {
    // A replayed event queues its emails as on arrival (the invoice function's settings).
    let app = build_app_with_emails(Metrics::Off, settings::email_settings()?.queueing()).await?;
    let ids: Vec<(Provider, EventId)> = match (args.all, args.event_id) {
        (true, _) => {
            // Every page of every shard: the ids first, then the replays (a replayed event
            // leaves the listing, which would move a cursor's ground under it).
            let parked = billing::ports::all_parked(app.store.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            parked
                .into_iter()
                .map(|r| (r.provider, r.event_id))
                .collect()
        }
        (false, Some(given)) => {
            let (account, id) = match given.split_once('/') {
                Some((account, id)) => (Some(connected_account(account)?), id.to_owned()),
                None => (None, given),
            };
            // Each registered provider says whether the id is its own.
            let provider = app.service.provider_of_event(&id).ok_or_else(|| {
                format!("{id}: no provider knows this event id (evt_…, WH-…, grant_…)")
            })?;
            let provider = provider.within(account);
            vec![(provider, EventId::new(id))]
        }
        // The argument group requires one of them; kept as an error, not a panic.
        (false, None) => return Err("replay takes --all or an EVENT_ID".into()),
    };
    let mut failures = 0;
    for (provider, id) in ids {
        let outcome = app.service.replay(provider, &id).await;
        let line = match &outcome {
            Outcome::Recorded { state, .. } => state.as_str().to_owned(),
            Outcome::Duplicate { .. } => "not parked (nothing to do)".to_owned(),
            Outcome::Rejected(r) => format!("rejected: {r}"),
            Outcome::Unavailable(e) => {
                failures += 1;
                format!("failed: {e}")
            }
        };
        println!("{id}: {line}");
    }
    if failures > 0 {
        return Err(format!("{failures} replay(s) failed"));
    }
    Ok(())
}

async fn parked() -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let mut after = None;
    loop {
        let page = app
            .store
            .parked_page(after.as_ref(), billing::ports::MAX_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for r in &page.items {
            println!("{}", ledger_json(r));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

async fn relay_cmd(once: bool) -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let queue = app
        .queue
        .clone()
        .ok_or("BILLING_FEED_QUEUE_URL is not set")?;
    loop {
        let (store, queue) = (app.store.as_ref(), queue.as_ref());
        let report = if once {
            relay::sweep(store, queue, &app.metrics, 100).await
        } else {
            relay::drain(store, queue, &app.metrics, 100).await
        }
        .map_err(|e| e.to_string())?;
        if report.sent + report.failed > 0 {
            println!("sent {} failed {}", report.sent, report.failed);
        }
        if report.set_aside + report.refused > 0 {
            println!(
                "set aside {} unreadable, {} refused by SQS (billing outbox list)",
                report.set_aside, report.refused
            );
        }
        if once {
            return if report.failed == 0 {
                Ok(())
            } else {
                Err("some messages failed".into())
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn create_table() -> CliResult {
    let app = build_app(Metrics::Off).await?;
    let created = app
        .store
        .create_table_if_missing()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{} {}",
        app.config.table,
        if created { "created" } else { "exists" }
    );
    Ok(())
}

/// Prints an API Gateway HTTP API (v2) event whose body is the fixture, signed now: the
/// format `sam local invoke` and `cargo lambda invoke --data-file` take.
fn lambda_event(event: &SignedEvent, base64: bool) -> CliResult {
    let Signed {
        body,
        path,
        header,
        at,
    } = signed_fixture(event)?;
    let event = dev::api_gateway_event(&path, &body, &header, at, base64);
    println!(
        "{}",
        serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The `after` files and then FILE, each with the family of its type (FILE's may be given),
/// and when FILE is applied (`--at`, else its `created`).
fn deliveries_of(
    event: &SignedEvent,
    after: &[PathBuf],
) -> Result<(Vec<dev::Delivery>, i64), String> {
    let mut deliveries = Vec::new();
    for path in after {
        deliveries.push(read_fixture(path)?);
    }
    let (body, env) = read_event(&event.file)?;
    let family = event.family.unwrap_or_else(|| family_of(&env.event_type));
    deliveries.push((body, family));
    Ok((deliveries, event.at.unwrap_or(env.created)))
}

/// The DynamoDB Streams event the relay receives once the `after` files and then FILE are
/// applied to an empty model.
async fn stream_event_of(
    event: &SignedEvent,
    after: &[PathBuf],
) -> Result<serde_json::Value, String> {
    let (deliveries, at) = deliveries_of(event, after)?;
    dev::relay_stream_event(&deliveries, at).await
}

/// The SQS event the emails function receives for the email jobs FILE queues once the `after`
/// files are applied.
async fn email_event_of(
    event: &SignedEvent,
    after: &[PathBuf],
) -> Result<serde_json::Value, String> {
    let (deliveries, at) = deliveries_of(event, after)?;
    dev::email_queue_event(&deliveries, at).await
}

/// Prints `email_event_of`: what `sam local invoke` and `cargo lambda invoke` give the emails
/// function.
async fn email_jobs_event(event: &SignedEvent, after: &[PathBuf]) -> CliResult {
    print_json(&email_event_of(event, after).await?)
}

fn print_json(value: &serde_json::Value) -> CliResult {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The eventbridge function's SQS event for the Stripe event in `file`.
fn eventbridge_event_of(
    file: &Path,
    source: &str,
    account: &str,
    at: Option<i64>,
) -> Result<serde_json::Value, String> {
    let (body, env) = read_event(file)?;
    let detail: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    let at = at.unwrap_or(env.created);
    Ok(billing::eventbridge::sqs_event(
        &detail, source, account, at,
    ))
}

fn eventbridge_event(file: &Path, source: &str, account: &str, at: Option<i64>) -> CliResult {
    print_json(&eventbridge_event_of(file, source, account, at)?)
}

/// Prints `stream_event_of`: what `sam local invoke` and `cargo lambda invoke` give the relay.
async fn stream_event(event: &SignedEvent, after: &[PathBuf]) -> CliResult {
    print_json(&stream_event_of(event, after).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("billing").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_parses() {
        for args in [
            &["local"][..],
            &["send", "f.json"],
            &[
                "send", "f.json", "--family", "invoice", "--url", "http://x", "--secret",
                "whsec_x", "--at", "17",
            ],
            &["replay", "evt_1"],
            &["replay", "--all"],
            &["parked"],
            &["relay"],
            &["relay", "--once"],
            &["create-table"],
            &["create-table", "--print"],
            &["lambda-event", "f.json", "--family", "charge"],
            &["stripe-endpoints", "--base-url", "https://x.example"],
            &[
                "stripe-endpoints",
                "--base-url",
                "https://x.example",
                "--rotate",
            ],
            &[
                "stripe-endpoints",
                "--base-url",
                "https://x.example",
                "--finish-rotation",
                "--dry-run",
            ],
            // What scripts/events runs.
            &[
                "lambda-event",
                "f.json",
                "--family",
                "invoice",
                "--secret",
                "whsec_x",
                "--at",
                "1700000000",
                "--base64",
            ],
            &["emails", "list"],
            &["emails", "list", "--limit", "5"],
            &["emails", "list", "--all"],
            &["emails", "redrive"],
            &["outbox", "list"],
            &["outbox", "requeue", "--all"],
            &["outbox", "requeue", "chg_1"],
            &["backfill", "--since", "2026-12-01T00:00:00Z"],
            &[
                "backfill",
                "--since",
                "1700000000",
                "--until",
                "1700003600",
                "--types",
                "invoice.paid,invoice.created",
            ],
            &["backfill", "--since", "1700000000", "--provider", "paypal"],
            &["catchup", "status"],
            &[
                "lambda-event",
                "b.json",
                "--stream",
                "--after",
                "a.json",
                "--at",
                "5",
            ],
        ] {
            assert!(parse(args).is_ok(), "{args:?}: {:?}", parse(args).err());
        }
        let Ok(Cli {
            command: Command::Send { event, url },
        }) = parse(&["send", "f.json", "--family", "charge", "--at", "5"])
        else {
            panic!("send parses into Send");
        };
        assert_eq!(event.file, PathBuf::from("f.json"));
        assert_eq!(event.family, Some(Family::Charge));
        assert_eq!((event.at, event.secret, url), (Some(5), None, None));
    }

    /// A connected account's catch-up (`--account`) and a thin notification (`--thin`).
    #[test]
    fn account_and_thin_flags_parse_and_bad_ones_are_refused() {
        use clap::error::ErrorKind;
        for args in [
            &[
                "catchup",
                "status",
                "--account",
                "acct_1A",
                "--account",
                "acct_2B",
            ][..],
            &["backfill", "--since", "1700000000", "--account", "acct_1A"],
            &["import", "--account", "acct_1A", "--dry-run"],
            &["import", "--status", "--account", "acct_1A"],
            &[
                "lambda-event",
                "n.json",
                "--thin",
                "--secret",
                "whsec_x",
                "--at",
                "5",
            ],
        ] {
            assert!(parse(args).is_ok(), "{args:?}: {:?}", parse(args).err());
        }
        for (args, kind) in [
            (
                &["lambda-event", "n.json", "--thin", "--connect"][..],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["lambda-event", "n.json", "--thin", "--family", "invoice"],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["backfill", "--since", "1", "--account", "cus_1"],
                ErrorKind::ValueValidation,
            ),
            (
                &["catchup", "status", "--account", "1"],
                ErrorKind::ValueValidation,
            ),
        ] {
            let err = parse(args).expect_err("must be refused");
            assert_eq!(err.kind(), kind, "{args:?}: {err}");
        }
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        use clap::error::ErrorKind;
        for (args, kind) in [
            (&[][..], ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand),
            (&["frobnicate"], ErrorKind::InvalidSubcommand),
            (&["send"], ErrorKind::MissingRequiredArgument),
            (
                &["send", "f.json", "--familly", "x"],
                ErrorKind::UnknownArgument,
            ),
            (
                &["send", "f.json", "--family", "paypal"],
                ErrorKind::ValueValidation,
            ),
            (
                &["send", "f.json", "--at", "soon"],
                ErrorKind::ValueValidation,
            ),
            (&["send", "f.json", "--url"], ErrorKind::InvalidValue),
            (&["replay"], ErrorKind::MissingRequiredArgument),
            (&["replay", "--all", "evt_1"], ErrorKind::ArgumentConflict),
            (&["relay", "--once", "now"], ErrorKind::UnknownArgument),
            (&["stripe-endpoints"], ErrorKind::MissingRequiredArgument),
            (
                &["emails"],
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            ),
            (
                &["emails", "list", "--limit", "0"],
                ErrorKind::ValueValidation,
            ),
            (&["emails", "send"], ErrorKind::InvalidSubcommand),
            (&["outbox", "requeue"], ErrorKind::MissingRequiredArgument),
            (&["backfill"], ErrorKind::MissingRequiredArgument),
            (
                &["backfill", "--since", "last week"],
                ErrorKind::ValueValidation,
            ),
            (
                &["backfill", "--since", "1", "--provider", "braintree"],
                ErrorKind::InvalidValue,
            ),
            (
                &["outbox", "requeue", "--all", "chg_1"],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["emails", "list", "--all", "--limit", "5"],
                ErrorKind::ArgumentConflict,
            ),
            (
                &[
                    "stripe-endpoints",
                    "--base-url",
                    "https://x.example",
                    "--rotate",
                    "--finish-rotation",
                ],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["lambda-event", "f.json", "--after", "a.json"],
                ErrorKind::MissingRequiredArgument,
            ),
            (
                &["lambda-event", "f.json", "--stream", "--base64"],
                ErrorKind::ArgumentConflict,
            ),
        ] {
            let err = parse(args).expect_err("must be refused");
            assert_eq!(err.kind(), kind, "{args:?}: {err}");
        }
        let err = parse(&["send", "f.json", "--family", "paypal"]).expect_err("refused");
        assert!(err.to_string().contains("unknown family `paypal`"), "{err}");
    }

    /// `billing send` panicked before its first request ("No provider set").
    #[test]
    fn the_send_client_builds() {
        assert!(http_client().is_ok());
    }

    #[test]
    fn every_command_has_help() {
        for name in [
            "local",
            "send",
            "replay",
            "parked",
            "grant",
            "relay",
            "create-table",
            "lambda-event",
            "eventbridge-event",
            "eventbridge",
            "stripe-endpoints",
            "emails",
            "outbox",
            "backfill",
            "catchup",
        ] {
            let err = parse(&[name, "--help"]).expect_err("help is an early exit");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{name}");
            assert!(err.to_string().contains("Usage: billing"), "{name}: {err}");
        }
    }

    /// events/relay.outbox-insert.json is what scripts/events makes it: `lambda-event --stream`
    /// of the subscription's creation after the checkout. A change to the outbox item or its
    /// message fails here until the file is regenerated.
    #[tokio::test]
    async fn the_relay_sample_event_is_what_lambda_event_stream_prints() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fx = root.join("shared/tests/fixtures/stripe/lifecycle");
        let (created, checkout) = (
            fx.join("02_customer.subscription.created.json"),
            fx.join("01_checkout.session.completed.json"),
        );
        let args = [
            "lambda-event",
            created.to_str().expect("utf8"),
            "--stream",
            "--after",
            checkout.to_str().expect("utf8"),
        ];
        let Ok(Cli {
            command: Command::LambdaEvent { event, after, .. },
        }) = parse(&args)
        else {
            panic!("lambda-event --stream parses");
        };
        let made = stream_event_of(&event, &after).await.expect("an event");
        let path = root.join("events/relay.outbox-insert.json");
        let text = std::fs::read_to_string(&path).expect("the relay sample");
        let file: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(made, file, "regenerate events/ with scripts/events");
    }

    /// events/eventbridge.json is what scripts/events makes it: `eventbridge-event` of the
    /// past-due update, with the local samples' source and account.
    #[test]
    fn the_eventbridge_sample_is_what_eventbridge_event_prints() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fx = root.join("shared/tests/fixtures/stripe/lifecycle");
        let file = fx.join("06_customer.subscription.updated__past_due.json");
        let args = ["eventbridge-event", file.to_str().expect("utf8")];
        let Ok(Cli {
            command:
                Command::EventbridgeEvent {
                    file,
                    source,
                    account,
                    at,
                },
        }) = parse(&args)
        else {
            panic!("eventbridge-event parses");
        };
        let made = eventbridge_event_of(&file, &source, &account, at).expect("an event");
        let text = std::fs::read_to_string(root.join("events/eventbridge.json")).expect("sample");
        let sample: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(made, sample, "regenerate events/ with scripts/events");
    }

    #[tokio::test]
    async fn the_email_and_read_samples_are_what_the_commands_print() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fx = root.join("shared/tests/fixtures/stripe/lifecycle");
        let path = |name: &str| fx.join(name).to_str().expect("utf8").to_owned();
        let args = [
            "lambda-event".to_owned(),
            path("05_invoice.payment_action_required.json"),
            "--email-jobs".to_owned(),
            "--after".to_owned(),
            path("01_checkout.session.completed.json"),
            "--after".to_owned(),
            path("02_customer.subscription.created.json"),
            "--after".to_owned(),
            path("03_invoice.paid.json"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Ok(Cli {
            command: Command::LambdaEvent { event, after, .. },
        }) = parse(&args)
        else {
            panic!("lambda-event --email-jobs parses");
        };
        let made = email_event_of(&event, &after).await.expect("an event");
        let read = |name: &str| -> serde_json::Value {
            let text = std::fs::read_to_string(root.join("events").join(name)).expect("sample");
            serde_json::from_str(&text).expect("json")
        };
        assert_eq!(
            made,
            read("emails.payment_action_required.json"),
            "regenerate events/ with scripts/events"
        );
        let job = made["Records"][0]["body"].as_str().expect("a body");
        let job = billing::emails::job::EmailJob::from_body(job).expect("an email job");
        assert_eq!(job.object(), "in_life2");
        assert_eq!(
            dev::read_route_event("/users/user_42/access", 1_759_316_403),
            read("api.users-access.json"),
            "regenerate events/ with scripts/events"
        );
    }

    /// `--thin` signs a notification's exact bytes for the thin route (the committed sample is
    /// one, re-signed by scripts/events); a snapshot event is not a notification.
    #[test]
    fn a_thin_notification_is_signed_for_the_thin_route_and_a_snapshot_refused() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fixtures = root.join("shared/tests/fixtures");
        let thin = |file: PathBuf| SignedEvent {
            file,
            family: None,
            secret: Some("whsec_local_invoke_thin".into()),
            at: Some(1_764_028_800),
            connect: false,
            thin: true,
        };
        let file =
            fixtures.join("stripe-thin/02_v1.customer.subscription.created.notification.json");
        let signed = signed_fixture(&thin(file.clone())).expect("signed");
        assert_eq!(signed.path, "/webhooks/stripe/thin");
        assert_eq!(signed.body, std::fs::read(&file).expect("fixture"));
        let secret = [WebhookSecret::new("whsec_local_invoke_thin")];
        assert_eq!(signed.header, sign(&signed.body, &secret, 1_764_028_800));
        let text =
            std::fs::read_to_string(root.join("events/thin.v1.customer.subscription.created.json"))
                .expect("the thin sample");
        let sample: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(sample["rawPath"], "/webhooks/stripe/thin");
        assert_eq!(
            sample["body"].as_str().map(str::as_bytes),
            Some(&signed.body[..])
        );
        let snapshot = fixtures.join("stripe/lifecycle/02_customer.subscription.created.json");
        let err = signed_fixture(&thin(snapshot)).err().expect("refused");
        assert!(err.contains("v2.core.event"), "{err}");
    }

    #[test]
    fn the_paypal_sample_is_a_fixture_signed_as_paypal_signs() {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        use base64::Engine;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fixture =
            root.join("shared/tests/fixtures/paypal/BILLING.SUBSCRIPTION.CREATED__dj-paypal.json");
        let body = std::fs::read(&fixture).expect("fixture");
        let dir = std::env::temp_dir().join(format!("billing-paypal-key-{}", std::process::id()));
        let event = dev::paypal_gateway_event(&body, &dir, 1_759_316_403).expect("an event");
        let header = |name: &str| event["headers"][name].as_str().expect(name).to_owned();
        assert_eq!(header("paypal-transmission-time"), "2025-10-01T11:00:03Z");
        let signed = format!(
            "{}|{}|{}|{}",
            header("paypal-transmission-id"),
            header("paypal-transmission-time"),
            dev::PAYPAL_LOCAL_WEBHOOK_ID,
            crc32fast::hash(&body)
        );
        let sig = base64::engine::general_purpose::STANDARD
            .decode(header("paypal-transmission-sig"))
            .expect("base64");
        let public = std::fs::read(dir.join("paypal-local.pub.der")).expect("public key");
        // The public key is SubjectPublicKeyInfo; aws-lc-rs verifies with its RSAPublicKey.
        let spki = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_of(&public));
        spki.verify(signed.as_bytes(), &sig).expect("verifies");
        assert_eq!(event["body"].as_str().expect("body").as_bytes(), body);
        // The committed sample has the same shape (its signature is re-made by scripts/events).
        let text =
            std::fs::read_to_string(root.join("events/paypal.BILLING.SUBSCRIPTION.CREATED.json"))
                .expect("the PayPal sample");
        let sample: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(sample["body"], event["body"]);
        assert_eq!(sample["rawPath"], "/webhooks/paypal");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The RSAPublicKey inside a SubjectPublicKeyInfo (its BIT STRING's content).
    fn public_key_of(spki: &[u8]) -> Vec<u8> {
        // SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0x00, RSAPublicKey } }: the key is
        // the tail after the BIT STRING's header and its unused-bits byte.
        let at = spki
            .windows(2)
            .rposition(|w| w == [0x03, 0x82])
            .expect("a long BIT STRING");
        spki[at + 5..].to_vec()
    }
}
