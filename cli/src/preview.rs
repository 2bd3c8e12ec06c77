//! `billing emails preview KIND`: one email rendered with the configured brand and templates
//! (`BILLING_BRAND_*`, `BILLING_EMAIL_TEMPLATES`), from a sample, a Stripe event file, or what
//! the table holds (an invoice, or a customer's subscription), written as three files to look
//! at. Nothing is sent and nothing is written to the table.

use billing::domain::access::{customer_access, TierPolicy};
use billing::domain::customer::CustomerBilling;
use billing::domain::events::{BillingEvent, EmailAddress, EventMeta};
use billing::domain::ids::{CustomerId, EventId, InvoiceId, Provider, SubscriptionId};
use billing::domain::invoice::Invoice;
use billing::emails::context::{EmailContent, EmailContext, InvoiceDetails};
use billing::emails::decide::{subscription_cancelled, subscription_welcome, trial_ending};
use billing::emails::kinds::EmailKind;
use billing::emails::render::{render, sample_content, Reader, RenderedEmail};
use billing::emails::templates::Templates;
use billing::ports::{Beside, BillingStore};
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::translate::{translate, StripeMapping};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// payment_action_required, payment_failed, subscription_cancelled, welcome, trial_ending.
    #[arg(value_parser = parse_kind)]
    pub kind: EmailKind,
    /// A Stripe event (JSON file): an `invoice.*` event for the invoice emails, a
    /// `customer.subscription.*` event for the others.
    #[arg(long, conflicts_with_all = ["invoice", "customer"])]
    pub event: Option<PathBuf>,
    /// A stored invoice (`in_…`) of the table, for the invoice emails.
    #[arg(long, conflicts_with = "customer")]
    pub invoice: Option<String>,
    /// A stored customer (`cus_…`) with `--subscription`, for the subscription emails.
    #[arg(long, requires = "subscription")]
    pub customer: Option<String>,
    #[arg(long, requires = "customer")]
    pub subscription: Option<String>,
    /// The customer's locale (`fr`, `fr-CA`, …); the default language when it has no templates.
    #[arg(long)]
    pub locale: Option<String>,
    /// Where the files go.
    #[arg(long, default_value = "target/email-preview")]
    pub out: PathBuf,
}

fn parse_kind(name: &str) -> Result<EmailKind, String> {
    EmailKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = EmailKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{name}`: one of {}", names.join(", "))
    })
}

/// Where a preview's content comes from.
pub enum Source<'a> {
    Sample,
    Event(&'a [u8]),
}

/// The content of `kind` from `source`, or why that source cannot make it.
pub fn content(kind: EmailKind, source: Source<'_>) -> Result<EmailContent, String> {
    let body = match source {
        Source::Sample => return Ok(sample_content(kind)),
        Source::Event(body) => body,
    };
    let env = Envelope::parse(body).map_err(|e| format!("not a Stripe event: {e}"))?;
    let event = translate(&env, &StripeMapping::default()).map_err(|e| e.to_string())?;
    let meta = EventMeta {
        provider: Provider::STRIPE,
        id: EventId::new(env.id.clone()),
        event_type: env.event_type.clone(),
        created: env.created,
        millis: 0,
        livemode: env.livemode.unwrap_or(false),
        api_version: env.api_version.clone(),
    };
    match (&event, kind) {
        (BillingEvent::Invoice(e), EmailKind::PaymentActionRequired | EmailKind::PaymentFailed) => {
            let mut invoice = Invoice::new(Provider::STRIPE, e.snapshot.id.clone());
            invoice.apply(&meta, e);
            invoice_content(kind, &invoice)
        }
        (
            BillingEvent::Subscription { snapshot, .. },
            EmailKind::SubscriptionCancelled | EmailKind::Welcome | EmailKind::TrialEnding,
        ) => {
            let mut state = CustomerBilling::new(Provider::STRIPE, snapshot.customer.clone());
            state.apply(&meta, &event);
            subscription_content(kind, &state, &snapshot.id, env.created)
        }
        _ => Err(format!(
            "a {} event cannot make the {kind} email (invoice.* for the invoice emails, \
             customer.subscription.* for the others)",
            env.event_type
        )),
    }
}

fn invoice_content(kind: EmailKind, invoice: &Invoice) -> Result<EmailContent, String> {
    let details = InvoiceDetails::from_invoice(invoice).map_err(|e| e.to_string())?;
    match kind {
        EmailKind::PaymentFailed => Ok(EmailContent::PaymentFailed(details)),
        EmailKind::PaymentActionRequired => Ok(EmailContent::PaymentActionRequired(details)),
        EmailKind::SubscriptionCancelled | EmailKind::Welcome | EmailKind::TrialEnding => {
            Err(format!(
                "an invoice makes the invoice emails, not {kind} (--customer and --subscription)"
            ))
        }
    }
}

/// A subscription email as the consumer would decide it at `now` (a skip is the answer).
fn subscription_content(
    kind: EmailKind,
    state: &CustomerBilling,
    subscription: &SubscriptionId,
    now: i64,
) -> Result<EmailContent, String> {
    let access = customer_access(state, &TierPolicy::default());
    let access = access
        .iter()
        .find(|a| &a.subscription == subscription)
        .ok_or_else(|| format!("no subscription {subscription} in the model"))?;
    // The preview's own recipient: the decision needs one; it is never rendered.
    let to = EmailAddress::new("preview@example.invalid");
    let decided = match kind {
        EmailKind::SubscriptionCancelled => subscription_cancelled(access, Some(&to), now),
        EmailKind::TrialEnding => trial_ending(access, Some(&to), now),
        EmailKind::Welcome | EmailKind::PaymentActionRequired | EmailKind::PaymentFailed => {
            subscription_welcome(access, Some(&to), now)
        }
    };
    decided
        .map(|ctx| ctx.content)
        .map_err(|skip| format!("the consumer would not send it now: {}", skip.as_str()))
}

/// The content from the table: a stored invoice, or a customer's subscription.
async fn stored(
    store: &dyn BillingStore,
    kind: EmailKind,
    args: &PreviewArgs,
) -> Result<EmailContent, String> {
    if let Some(id) = &args.invoice {
        let id = InvoiceId::new(id.clone());
        let loaded = store
            .load(
                Provider::STRIPE,
                &EventId::new("-"),
                None,
                None,
                Beside::Invoice(&id),
            )
            .await
            .map_err(|e| e.to_string())?;
        let invoice = loaded
            .invoice
            .ok_or_else(|| format!("no invoice {id} in the table"))?;
        return invoice_content(kind, &invoice.value);
    }
    let (Some(customer), Some(subscription)) = (&args.customer, &args.subscription) else {
        return Err("--invoice or --customer with --subscription".into());
    };
    let customer = CustomerId::new(customer.clone());
    let loaded = store
        .load(
            Provider::STRIPE,
            &EventId::new("-"),
            Some(&customer),
            None,
            Beside::Nothing,
        )
        .await
        .map_err(|e| e.to_string())?;
    let state = loaded
        .customer
        .ok_or_else(|| format!("no customer {customer} in the table"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    subscription_content(
        kind,
        &state.value,
        &SubscriptionId::new(subscription.clone()),
        now,
    )
}

/// Renders `content` in `locale` and writes `{kind}[.{locale}].subject|txt|html` to `out`;
/// returns the three paths.
pub fn write(
    templates: &Templates,
    content: EmailContent,
    locale: Option<&str>,
    out: &Path,
) -> Result<(RenderedEmail, Vec<PathBuf>), String> {
    let kind = content.kind();
    let reader = Reader {
        name: None,
        preferred_locales: locale.map(str::to_owned).into_iter().collect(),
    };
    let ctx = EmailContext {
        object_id: "preview".into(),
        recipient: EmailAddress::new("preview@example.invalid"),
        content,
    };
    let email = render(&ctx, templates, &reader).map_err(|e| e.to_string())?;
    let used = templates.locale_for(kind, &reader.preferred_locales);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = if used == billing::emails::locale::DEFAULT_LOCALE {
        kind.to_string()
    } else {
        format!("{kind}.{used}")
    };
    let mut paths = Vec::new();
    for (ext, body) in [
        ("subject", &email.subject),
        ("txt", &email.text),
        ("html", &email.html),
    ] {
        let path = out.join(format!("{stem}.{ext}"));
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        paths.push(path);
    }
    Ok((email, paths))
}

/// The command: the templates from the environment, the content from the chosen source.
pub async fn command(args: PreviewArgs) -> Result<(), String> {
    let (templates, _) = crate::settings::email_looks(true)?;
    let content = if args.invoice.is_some() || args.customer.is_some() {
        let app = crate::build_app(billing::telemetry::Metrics::Off).await?;
        stored(app.store.as_ref(), args.kind, &args).await?
    } else if let Some(path) = &args.event {
        let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        content(args.kind, Source::Event(&body))?
    } else {
        content(args.kind, Source::Sample)?
    };
    let (email, paths) = write(&templates, content, args.locale.as_deref(), &args.out)?;
    println!("subject: {}", email.subject);
    for path in paths {
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The brand of docs/img/email-brand.env (`KEY=VALUE` lines, `#` comments).
    fn picture_env() -> std::collections::HashMap<String, String> {
        let text = std::fs::read_to_string(root().join("docs/img/email-brand.env")).expect("env");
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn out(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("billing-preview-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// README's picture is of the preview: its HTML source must be what the preview renders
    /// today (scripts/email-picture writes both; a template change must rerun it).
    #[test]
    fn the_readme_picture_is_the_preview_of_today() {
        let env = picture_env();
        let (templates, brand) =
            billing::emails::templates::from_env(|k| env.get(k).cloned(), true).expect("templates");
        assert_eq!(brand.expect("a brand").name, "Acme Cloud");
        let content = content(EmailKind::PaymentActionRequired, Source::Sample).expect("sample");
        let (email, paths) = write(&templates, content, None, &out("readme")).expect("written");
        let held = std::fs::read_to_string(root().join("docs/img/email-action-required.html"))
            .expect("the picture's source (scripts/email-picture)");
        assert!(
            held == email.html,
            "docs/img/email-action-required.html is not today's preview: run scripts/email-picture"
        );
        assert!(root().join("docs/img/email-action-required.png").is_file());
        assert!(paths[2].ends_with("payment_action_required.html"));
    }

    #[test]
    fn a_preview_writes_three_files_in_the_locale_asked() {
        let brand = billing::emails::brand::Brand::named("Acme");
        let templates = Templates::built_in(&brand).expect("templates");
        let content = content(EmailKind::TrialEnding, Source::Sample).expect("sample");
        let dir = out("fr");
        let (email, paths) = write(&templates, content, Some("fr-CA"), &dir).expect("written");
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "trial_ending.fr.subject",
                "trial_ending.fr.txt",
                "trial_ending.fr.html"
            ]
        );
        assert!(
            email.subject.starts_with("Acme : votre essai"),
            "{}",
            email.subject
        );
        assert_eq!(
            std::fs::read_to_string(&paths[1]).expect("text"),
            email.text
        );
    }

    #[test]
    fn a_preview_reads_an_event_as_the_consumer_would() {
        let fixture = |rel: &str| {
            std::fs::read(root().join("shared/tests/fixtures/stripe").join(rel)).expect("fixture")
        };
        let body = fixture("SYNTH-emails/invoice.payment_action_required__zero_decimal_jpy.json");
        let EmailContent::PaymentActionRequired(d) =
            content(EmailKind::PaymentActionRequired, Source::Event(&body)).expect("an invoice")
        else {
            panic!("the action-required content");
        };
        assert_eq!(d.amount_due.currency.code(), "JPY");
        let err = content(EmailKind::Welcome, Source::Event(&body)).expect_err("wrong kind");
        assert!(err.contains("cannot make the welcome email"), "{err}");
        let trial =
            fixture("2018-01-23/customer.subscription.trial_will_end__stripe_model_callbacks.json");
        // The fixture's trial ended long before its event's time? The consumer's decision
        // says so; otherwise the email.
        match content(EmailKind::TrialEnding, Source::Event(&trial)) {
            Ok(EmailContent::TrialEnding { trial_end, .. }) => assert_eq!(trial_end, 1_518_176_751),
            other => panic!("{other:?}"),
        }
        assert!(content(EmailKind::Welcome, Source::Event(b"not json")).is_err());
    }
}
