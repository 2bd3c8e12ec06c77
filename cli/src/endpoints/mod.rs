//! `billing stripe-endpoints`: the four Stripe webhook endpoints provisioned through Stripe's
//! API instead of clicked in the dashboard, each with its family's event types
//! (`providers::stripe::enabled_events`) and the pinned API version
//! (`stripe_api::STRIPE_VERSION`), its signing secret stored in the Secrets Manager secret the
//! family's function reads. Re-running changes nothing; `--rotate` and `--finish-rotation`
//! replace the endpoints (and so their secrets) without a moment when a delivery cannot be
//! verified. The rules are in [`plan`]; this module reads the settings and carries them out.

mod plan;
mod secrets;
mod stripe;
#[cfg(test)]
mod tests;

use billing::adapters::https::parse_base;
use billing::adapters::stripe_api::{KeyError, StripeApiKey, DEFAULT_BASE, STRIPE_VERSION};
use billing::providers::stripe::enabled_events::enabled_events;
use billing::providers::stripe::Family;
use plan::{Action, Desired, Mode, Plan, FAMILY_KEY, PENDING, REPLACES_KEY, SECRET_KEY};
use std::collections::HashMap;

/// The variable holding the Stripe key that may write webhook endpoints (a secret key, or a
/// restricted key with Webhook Endpoints: Write). Not the functions' read-only `STRIPE_API_KEY`.
pub const ADMIN_KEY_VAR: &str = "STRIPE_ADMIN_KEY";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the API is deployed: each family's endpoint is URL/webhooks/stripe/FAMILY.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// Start a secret rotation: a new endpoint beside each current one, both secrets stored.
    #[arg(long, conflicts_with = "finish_rotation")]
    pub rotate: bool,
    /// End a rotation: delete the replaced endpoints and drop their secrets.
    #[arg(long)]
    pub finish_rotation: bool,
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also each family's Connect endpoint (URL/webhooks/stripe/FAMILY/connect, made with
    /// `connect: true`: the events of the platform's connected accounts), its secret in
    /// STRIPE_WEBHOOK_SECRETS_<FAMILY>_CONNECT_ARN.
    #[arg(long)]
    pub connect: bool,
}

/// Everything a run needs besides its two clients.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The deployment's base URL, ending in `/`.
    pub base: reqwest::Url,
    /// Each family's Secrets Manager secret (name or ARN).
    pub secret_ids: HashMap<Family, String>,
    /// With `--connect`: each family's Connect endpoint's secret (name or ARN).
    pub connect_secret_ids: Option<HashMap<Family, String>>,
    pub mode: Mode,
    pub dry_run: bool,
}

impl Settings {
    /// From the flags and `STRIPE_WEBHOOK_SECRETS_<FAMILY>_ARN` (looked up with `var`), the
    /// variables the functions read; every missing one is named at once.
    pub fn new(args: &Args, var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let base = parse_base(&args.base_url).map_err(|e| format!("--base-url: {e}"))?;
        let mut missing = Vec::new();
        let secret_ids = secret_ids_of(&var, "", &mut missing);
        let connect_secret_ids = args
            .connect
            .then(|| secret_ids_of(&var, "_CONNECT", &mut missing));
        if !missing.is_empty() {
            return Err(format!(
                "set {} (the Secrets Manager secret, name or ARN, of each function)",
                missing.join(", ")
            ));
        }
        let mode = match (args.rotate, args.finish_rotation) {
            (true, _) => Mode::Rotate,
            (false, true) => Mode::FinishRotation,
            (false, false) => Mode::Sync,
        };
        Ok(Self {
            base,
            secret_ids,
            connect_secret_ids,
            mode,
            dry_run: args.dry_run,
        })
    }

    fn desired(&self, family: Family, connect: bool) -> Desired {
        let url = endpoint_url(&self.base, family);
        Desired {
            family,
            url: if connect {
                format!("{url}/connect")
            } else {
                url
            },
            api_version: STRIPE_VERSION,
            enabled_events: enabled_events(family),
            connect,
        }
    }

    /// Every endpoint this run manages: each family's, then (`--connect`) each Connect one.
    fn every_desired(&self) -> Vec<Desired> {
        let connect = self.connect_secret_ids.is_some();
        let own = Family::ALL.map(|f| self.desired(f, false));
        let connected = Family::ALL.into_iter().filter(|_| connect);
        own.into_iter()
            .chain(connected.map(|f| self.desired(f, true)))
            .collect()
    }

    /// The Secrets Manager secret `desired`'s signing secret is stored in.
    fn secret_id(&self, desired: &Desired) -> &str {
        match (&self.connect_secret_ids, desired.connect) {
            (Some(ids), true) => &ids[&desired.family],
            _ => &self.secret_ids[&desired.family],
        }
    }
}

/// `STRIPE_WEBHOOK_SECRETS_<FAMILY>{suffix}_ARN` of every family; the missing names are added
/// to `missing`.
fn secret_ids_of(
    var: &impl Fn(&str) -> Option<String>,
    suffix: &str,
    missing: &mut Vec<String>,
) -> HashMap<Family, String> {
    let mut ids = HashMap::new();
    for family in Family::ALL {
        let name = format!("STRIPE_WEBHOOK_SECRETS_{}{suffix}_ARN", family.env_suffix());
        match var(&name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        {
            Some(id) => drop(ids.insert(family, id)),
            None => missing.push(name),
        }
    }
    ids
}

/// `{base}webhooks/stripe/{family}`: the functions' route (a Connect endpoint's adds
/// `/connect`).
pub fn endpoint_url(base: &reqwest::Url, family: Family) -> String {
    format!("{base}webhooks/stripe/{family}")
}

/// One line of the report; never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub family: Family,
    pub action: String,
    pub endpoint: String,
    pub secret: String,
    pub url: String,
    /// The endpoint a rotation replaces (deleted by `--finish-rotation`).
    pub replaces: Option<String>,
}

/// The command: settings from the environment, then [`run`], then the table.
pub async fn command(args: Args) -> Result<(), String> {
    let settings = Settings::new(&args, crate::settings::webhook_secret_arn)?;
    let raw_key = crate::settings::stripe_admin_key(ADMIN_KEY_VAR)
        .ok_or_else(|| format!("set {ADMIN_KEY_VAR} (a key that may write webhook endpoints)"))?;
    let key = StripeApiKey::parse(&raw_key).map_err(|e| match e {
        KeyError::Publishable => format!(
            "{ADMIN_KEY_VAR}: a publishable key (pk_…) cannot write webhook endpoints: use a \
             secret key (sk_…) or a restricted key (rk_…) with Webhook Endpoints: Write"
        ),
        other => format!("{ADMIN_KEY_VAR}: {other}"),
    })?;
    let api_base = crate::settings::stripe_api_base().unwrap_or_else(|| DEFAULT_BASE.into());
    let api_base = parse_base(&api_base).map_err(|e| format!("STRIPE_API_BASE: {e}"))?;
    let client = stripe::client(raw_key.trim(), api_base.as_str())?;
    let secrets = aws_sdk_secretsmanager::Client::new(&billing::app::aws_config().await);
    let mode = if key.livemode() { "live" } else { "test" };
    println!("Stripe {mode} mode, endpoints on API version {STRIPE_VERSION}");
    let mut rows = Vec::new();
    let result = run(&settings, &client, &secrets, &mut rows).await;
    if !rows.is_empty() {
        print!("{}", table(&rows));
    }
    for line in next_steps(&args, &rows) {
        println!("{line}");
    }
    result
}

/// Lists the endpoints, decides every family before writing anything (a family that cannot
/// be decided stops the run unchanged), then carries the decisions out in order. `rows` gets a
/// line per family done, so a failure midway still shows what was changed.
pub async fn run(
    settings: &Settings,
    client: &::stripe::Client,
    secrets: &aws_sdk_secretsmanager::Client,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let all = stripe::list_all(client).await?;
    let mut plans = Vec::new();
    let mut refused = Vec::new();
    for desired in settings.every_desired() {
        match plan::plan(&desired, &all, settings.mode) {
            Ok(p) => plans.push((desired, p)),
            Err(e) => refused.push(format!("{}: {e}", desired.url)),
        }
    }
    if !refused.is_empty() {
        return Err(format!("nothing changed:\n  {}", refused.join("\n  ")));
    }
    for (desired, plan) in plans {
        let secret_id = settings.secret_id(&desired);
        let row = if settings.dry_run {
            dry_row(&desired, &plan)
        } else {
            let io = Io {
                client,
                secrets,
                secret_id,
            };
            apply(&io, &desired, &plan).await?
        };
        rows.push(row);
    }
    Ok(())
}

/// The two clients and the family's secret.
struct Io<'a> {
    client: &'a ::stripe::Client,
    secrets: &'a aws_sdk_secretsmanager::Client,
    secret_id: &'a str,
}

fn row(desired: &Desired, action: &str, endpoint: &str, secret: &str) -> Row {
    Row {
        family: desired.family,
        action: action.into(),
        endpoint: endpoint.into(),
        secret: secret.into(),
        url: desired.url.clone(),
        replaces: None,
    }
}

fn metadata(family: Family, secret: &str, replaces: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::from([
        (FAMILY_KEY.to_owned(), family.as_str().to_owned()),
        (SECRET_KEY.to_owned(), secret.to_owned()),
    ]);
    if let Some(old) = replaces {
        m.insert(REPLACES_KEY.to_owned(), old.to_owned());
    }
    m
}

/// Carries out one family's plan. Each step leaves Stripe and Secrets Manager in a state the
/// next run recognises (see [`plan`]), so an interrupted run is finished by running it again.
async fn apply(io: &Io<'_>, desired: &Desired, plan: &Plan) -> Result<Row, String> {
    for id in &plan.discard {
        stripe::delete(io.client, id).await?;
    }
    let family = desired.family;
    Ok(match &plan.action {
        Action::Create => {
            let id = create_and_store(io, desired, None, Vec::new()).await?;
            row(desired, "created", &id, "stored [new]")
        }
        Action::Unchanged { id } => row(desired, "unchanged", id, "kept"),
        Action::Update { id } => {
            let meta = metadata(family, plan::STORED, None);
            stripe::update(io.client, id, desired, meta).await?;
            row(desired, "updated", id, "kept")
        }
        Action::Rotate { old } => {
            // Read first: if Secrets Manager cannot be read, no endpoint is made.
            let current = secrets::read(io.secrets, io.secret_id).await?;
            let kept = current.len();
            let id = create_and_store(io, desired, Some(old), current).await?;
            let secret = format!("stored [new + {kept} old]");
            Row {
                replaces: Some(old.clone()),
                ..row(desired, "rotated", &id, &secret)
            }
        }
        Action::Rotating { new, old } => Row {
            replaces: Some(old.clone()),
            ..row(desired, "rotating", new, "kept")
        },
        Action::Finish { new, old, present } => {
            if *present {
                stripe::delete(io.client, old).await?;
            }
            let current = secrets::read(io.secrets, io.secret_id).await?;
            let secret = if current.len() > 1 {
                secrets::write(io.secrets, io.secret_id, &current[..1]).await?;
                "stored [new]"
            } else {
                "kept"
            };
            let clear = HashMap::from([(REPLACES_KEY.to_owned(), String::new())]);
            stripe::set_metadata(io.client, new, clear).await?;
            row(desired, "finished", new, secret)
        }
    })
}

/// Creates the endpoint marked `pending`, stores `[its secret, older…]`, then marks it
/// `stored`: the marker says whether the secret reached Secrets Manager.
async fn create_and_store(
    io: &Io<'_>,
    desired: &Desired,
    replaces: Option<&str>,
    older: Vec<String>,
) -> Result<String, String> {
    let meta = metadata(desired.family, PENDING, replaces);
    let (created, secret) = stripe::create(io.client, desired, meta).await?;
    let older = older.into_iter().filter(|s| *s != secret);
    let list: Vec<String> = std::iter::once(secret.clone()).chain(older).collect();
    secrets::write(io.secrets, io.secret_id, &list).await?;
    let stored = HashMap::from([(SECRET_KEY.to_owned(), plan::STORED.to_owned())]);
    stripe::set_metadata(io.client, &created.id, stored).await?;
    Ok(created.id)
}

fn dry_row(desired: &Desired, plan: &Plan) -> Row {
    let (action, endpoint) = match &plan.action {
        Action::Create => ("would create", "-"),
        Action::Unchanged { id } => ("unchanged", id.as_str()),
        Action::Update { id } => ("would update", id.as_str()),
        Action::Rotate { old } => ("would rotate", old.as_str()),
        Action::Rotating { new, .. } => ("rotating", new.as_str()),
        Action::Finish { new, .. } => ("would finish", new.as_str()),
    };
    let mut action = action.to_owned();
    if !plan.discard.is_empty() {
        action.push_str(&format!(" (delete {})", plan.discard.join(", ")));
    }
    row(desired, &action, endpoint, "-")
}

/// The report, aligned; never a secret.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<13} {:<14} {:<32} {:<22} url\n",
        "family", "action", "endpoint", "secret"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<13} {:<14} {:<32} {:<22} {}\n",
            r.family.as_str(),
            r.action,
            r.endpoint,
            r.secret,
            r.url
        ));
    }
    out
}

/// What to do after a rotation started or is still under way.
fn next_steps(args: &Args, rows: &[Row]) -> Vec<String> {
    let old: Vec<String> = rows
        .iter()
        .filter_map(|r| Some(format!("{} ({})", r.replaces.as_ref()?, r.family)))
        .collect();
    if old.is_empty() {
        return Vec::new();
    }
    vec![
        format!("Replaced endpoints, still delivering: {}", old.join(", ")),
        "A rotation is under way: the old and the new endpoints both deliver every event, each \
         signed with its own secret; the functions accept both secrets (they re-read Secrets \
         Manager after a signature miss) and record each event once."
            .into(),
        format!(
            "Once the new endpoints deliver, finish it (deletes the old endpoints, drops their \
             secrets): billing stripe-endpoints --base-url {} --finish-rotation",
            args.base_url
        ),
    ]
}
