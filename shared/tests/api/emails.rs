//! Golden files for the customer emails (`shared/tests/golden/emails/`): every Stripe
//! `invoice.*` fixture, of every API version, read through the Stripe translation and
//! `Invoice::apply`, renders the action-required email (subject + text, and HTML) exactly as
//! its golden files hold it; `index.txt` lists every invoice fixture with what became of it,
//! so a fixture that stops rendering fails too. The other kinds render from fixed contexts
//! (`kinds/`), in English and in French (`.fr`), under a brand with every setting. The three
//! currency classes' invoices render in both languages too. `UPDATE_GOLDEN=1` rewrites the files (and removes orphans); without it any
//! difference, missing or orphan file fails the test.

use crate::helpers::fixture_path;
use billing::domain::events::{BillingEvent, EmailAddress, EventMeta};
use billing::domain::ids::{EventId, Provider};
use billing::domain::invoice::Invoice;
use billing::emails::brand::Brand;
use billing::emails::context::{CancellationReason, EmailContent, EmailContext, InvoiceDetails};
use billing::emails::render::{render, Reader, RenderedEmail};
use billing::emails::templates::Templates;
use billing::providers::stripe::event::Envelope;
use billing::providers::stripe::translate::{translate, StripeMapping};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rendering never shows the recipient; this one proves it.
const RECIPIENT: &str = "golden.recipient@example.com";

fn golden_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/emails")
}

fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// Every `invoice.*` fixture under `stripe/`, by path relative to it, sorted.
fn invoice_fixtures() -> Vec<(String, Vec<u8>)> {
    let root = fixture_path("stripe");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        for file in std::fs::read_dir(&dir).expect("version dir") {
            let path = file.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let numbered = name.split_once('_').map_or(name, |(_, rest)| rest);
            if path.extension().is_some_and(|e| e == "json")
                && (name.starts_with("invoice.") || numbered.starts_with("invoice."))
            {
                let rel = path.strip_prefix(&root).expect("under root");
                out.push((
                    rel.display().to_string(),
                    std::fs::read(&path).expect("read"),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The invoice the model holds after this one event, or why there is none.
fn invoice_from(body: &[u8]) -> Result<Invoice, String> {
    let env = Envelope::parse(body).map_err(|e| e.to_string())?;
    let BillingEvent::Invoice(event) =
        translate(&env, &StripeMapping::default()).map_err(|e| e.to_string())?
    else {
        return Err(format!("{} is not an invoice snapshot", env.event_type));
    };
    let meta = EventMeta {
        provider: Provider::STRIPE,
        id: EventId::new(env.id.clone()),
        event_type: env.event_type.clone(),
        created: env.created,
        millis: 0,
        livemode: env.livemode.unwrap_or(false),
        api_version: env.api_version.clone(),
    };
    let mut invoice = Invoice::new(Provider::STRIPE, event.snapshot.id.clone());
    invoice.apply(&meta, &event);
    Ok(invoice)
}

fn context(object_id: &str, content: EmailContent) -> EmailContext {
    EmailContext {
        object_id: object_id.to_owned(),
        recipient: EmailAddress::new(RECIPIENT),
        content,
    }
}

/// The files one rendered email is kept as: `<stem>.txt` (subject line, blank line, text) and
/// `<stem>.html`.
fn files_of(stem: &str, email: &RenderedEmail, out: &mut BTreeMap<String, String>) {
    assert!(
        !email.text.contains(RECIPIENT) && !email.html.contains(RECIPIENT),
        "{stem}: the recipient is rendered"
    );
    out.insert(
        format!("{stem}.txt"),
        format!("Subject: {}\n\n{}", email.subject, email.text),
    );
    out.insert(format!("{stem}.html"), email.html.clone());
}

/// The brand of the golden files: every setting set, so the footer shows each.
fn golden_brand() -> Brand {
    Brand {
        name: "Golden Co".into(),
        url: Some("https://golden.example".into()),
        support_email: Some("help@golden.example".into()),
        support_url: Some("https://golden.example/help".into()),
        logo_url: None,
        color: "#0a7cff".into(),
        postal_address: Some("1 Golden Way, Springfield".into()),
    }
}

fn in_locale(locale: &str) -> Reader {
    Reader {
        name: None,
        preferred_locales: vec![locale.to_owned()],
    }
}

/// Every golden file, by path relative to the golden root, as the code renders it now.
fn rendered_now() -> BTreeMap<String, String> {
    let templates = Templates::built_in(&golden_brand()).expect("the built-in templates");
    let mut out = BTreeMap::new();
    let mut index = String::new();
    let fixtures = invoice_fixtures();
    assert!(
        fixtures.len() >= 30,
        "only {} invoice fixtures",
        fixtures.len()
    );
    for (rel, body) in &fixtures {
        let outcome = invoice_from(body).and_then(|invoice| {
            let details = InvoiceDetails::from_invoice(&invoice).map_err(|e| e.to_string())?;
            let content = EmailContent::PaymentActionRequired(details);
            let ctx = context(invoice.id.as_str(), content);
            let en = render(&ctx, &templates, &in_locale("en")).map_err(|e| e.to_string())?;
            let fr = render(&ctx, &templates, &in_locale("fr")).map_err(|e| e.to_string())?;
            Ok((en, fr))
        });
        let stem = format!(
            "invoices/{}",
            rel.trim_end_matches(".json").replace('/', "__")
        );
        match outcome {
            Ok((en, fr)) => {
                index.push_str(&format!("{rel}: rendered ({stem}.txt, .html)\n"));
                files_of(&stem, &en, &mut out);
                // French for the three currency classes (the amounts' own formats).
                if rel.starts_with("SYNTH-emails/") {
                    files_of(&format!("{stem}.fr"), &fr, &mut out);
                }
            }
            Err(why) => index.push_str(&format!("{rel}: not rendered: {why}\n")),
        }
    }
    out.insert("index.txt".into(), index);
    for (stem, content) in other_kinds() {
        let ctx = context("sub_golden", content);
        for (suffix, locale) in [("", "en"), (".fr", "fr")] {
            let email = render(&ctx, &templates, &in_locale(locale)).expect("renders");
            files_of(&format!("kinds/{stem}{suffix}"), &email, &mut out);
        }
    }
    out
}

/// The other kinds, from fixed contexts: payment failed from a fixture invoice, one
/// cancellation per reason, welcome with and without a product name, the trial's end with the
/// subscription continuing or ending with it.
fn other_kinds() -> Vec<(String, EmailContent)> {
    let failed = std::fs::read(fixture_path(
        "stripe/lifecycle/04_invoice.payment_failed.json",
    ))
    .expect("fixture");
    let details = invoice_from(&failed)
        .ok()
        .and_then(|i| InvoiceDetails::from_invoice(&i).ok())
        .expect("the lifecycle's failed invoice renders");
    let mut kinds = vec![(
        "payment_failed__lifecycle_04".to_owned(),
        EmailContent::PaymentFailed(details),
    )];
    for (name, reason) in [
        (
            "cancellation_requested",
            CancellationReason::CancellationRequested,
        ),
        ("payment_failed", CancellationReason::PaymentFailed),
        ("payment_disputed", CancellationReason::PaymentDisputed),
        ("customer_deleted", CancellationReason::CustomerDeleted),
        ("unknown", CancellationReason::Unknown),
    ] {
        kinds.push((
            format!("subscription_cancelled__{name}"),
            EmailContent::SubscriptionCancelled {
                reason,
                product_name: Some("Team <Annual> & \"Co\"".into()),
                ends_at: Some(1_764_590_400),
            },
        ));
    }
    kinds.push((
        "welcome__product".into(),
        EmailContent::Welcome {
            product_name: Some("Team <Annual> & \"Co\"".into()),
        },
    ));
    kinds.push((
        "welcome__no_product".into(),
        EmailContent::Welcome { product_name: None },
    ));
    for (name, ends_with_trial) in [("continues", false), ("ends_with_trial", true)] {
        kinds.push((
            format!("trial_ending__{name}"),
            EmailContent::TrialEnding {
                trial_end: 1_764_590_400,
                ends_with_trial,
                product_name: Some("Team <Annual> & \"Co\"".into()),
            },
        ));
    }
    kinds
}

/// Files under `dir`, relative to it.
fn files_on_disk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let rel = format!("{prefix}{name}");
        if path.is_dir() {
            files_on_disk(&path, &format!("{rel}/"), out);
        } else {
            out.push(rel);
        }
    }
}

#[test]
fn every_fixture_invoice_and_every_kind_renders_as_its_golden_files() {
    let root = golden_root();
    let want = rendered_now();
    let mut problems = Vec::new();
    for (rel, content) in &want {
        let path = root.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(held) if held == *content => {}
            held => {
                if updating() {
                    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&path, content).expect("write golden");
                } else {
                    let first = held.as_deref().map_or("missing".to_owned(), |h| {
                        let line = h.lines().zip(content.lines()).position(|(a, b)| a != b);
                        format!("differs from line {}", line.map_or(0, |l| l + 1))
                    });
                    problems.push(format!("{rel}: {first}"));
                }
            }
        }
    }
    let mut on_disk = Vec::new();
    files_on_disk(&root, "", &mut on_disk);
    for rel in on_disk.iter().filter(|r| !want.contains_key(*r)) {
        if updating() {
            std::fs::remove_file(root.join(rel)).expect("remove orphan");
        } else {
            problems.push(format!("{rel}: orphan (nothing renders it)"));
        }
    }
    assert!(
        problems.is_empty(),
        "golden files differ (UPDATE_GOLDEN=1 rewrites them; review the diff):\n{}",
        problems.join("\n")
    );
}

#[test]
fn each_currency_class_renders_its_own_amount() {
    let want = rendered_now();
    for (class, amount, montant) in [
        ("two_decimal_eur", "€29.00", "29,00\u{a0}€"),
        ("zero_decimal_jpy", "¥1,200", "1\u{202f}200\u{a0}¥"),
        ("three_decimal_bhd", "BHD\u{a0}12.340", "12,340\u{a0}BHD"),
    ] {
        let stem = format!("invoices/SYNTH-emails__invoice.payment_action_required__{class}");
        let text = &want[&format!("{stem}.txt")];
        let html = &want[&format!("{stem}.html")];
        assert!(
            text.contains(&format!("Amount due: {amount}")),
            "{class}: {text}"
        );
        assert!(html.contains(amount), "{class}: {html}");
        let texte = &want[&format!("{stem}.fr.txt")];
        assert!(
            texte.contains(&format!("Montant dû : {montant}")),
            "{class}: {texte}"
        );
    }
    let jpy =
        &want["invoices/SYNTH-emails__invoice.payment_action_required__zero_decimal_jpy.html"];
    assert!(
        !jpy.contains("<script>") && jpy.contains("&lt;script&gt;"),
        "{jpy}"
    );
}
