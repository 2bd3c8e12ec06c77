//! The variables each kind's templates get (docs/EMAILS.md lists them), built from an email's
//! content in the customer's locale, and a sample of each kind (what the templates are checked
//! against at cold start). Merchant and customer text is made single-line here; the HTML
//! templates escape it.

use super::context::{CancellationReason, EmailContent, InvoiceDetails, PaymentDate};
use super::kinds::EmailKind;
use super::locale::Formats;
use super::money::{Currency, Money};
use minijinja::Value;
use serde::Serialize;

/// Merchant text on one line: control characters (CR, LF, tabs…) become spaces, so a number
/// or product name cannot add a header line to the subject or break the text's layout.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[derive(Serialize)]
struct InvoiceVars {
    number: String,
    amount_due: String,
    hosted_invoice_url: String,
    pay_by: Option<PayByVars>,
    lines: Vec<LineVars>,
    more_lines: bool,
}

#[derive(Serialize)]
struct PayByVars {
    /// `due` (the due date) or `next_attempt` (Stripe's next automatic attempt).
    kind: &'static str,
    date: String,
}

#[derive(Serialize)]
struct LineVars {
    description: String,
    amount: Option<String>,
}

fn invoice_vars(d: &InvoiceDetails, f: &Formats) -> InvoiceVars {
    InvoiceVars {
        number: one_line(&d.number),
        amount_due: f.money(&d.amount_due),
        hosted_invoice_url: d.hosted_invoice_url.clone(),
        pay_by: d.pay_by.map(|p| match p {
            PaymentDate::Due(t) => PayByVars {
                kind: "due",
                date: f.date(t),
            },
            PaymentDate::NextAttempt(t) => PayByVars {
                kind: "next_attempt",
                date: f.date(t),
            },
        }),
        lines: d
            .lines
            .iter()
            .map(|l| LineVars {
                description: one_line(&l.description),
                amount: l.amount.map(|a| f.money(&a)),
            })
            .collect(),
        more_lines: d.more_lines,
    }
}

fn reason_name(reason: CancellationReason) -> &'static str {
    match reason {
        CancellationReason::CancellationRequested => "cancellation_requested",
        CancellationReason::PaymentFailed => "payment_failed",
        CancellationReason::PaymentDisputed => "payment_disputed",
        CancellationReason::CustomerDeleted => "customer_deleted",
        CancellationReason::Unknown => "unknown",
    }
}

/// The variables of one email in `locale`: `locale`, `customer_name` and the kind's own (every
/// key present, `none` where unknown: the templates run with strict undefined).
pub fn variables(content: &EmailContent, locale: &str, customer_name: Option<&str>) -> Value {
    let f = Formats::of(locale);
    let text = |t: Option<&str>| t.map(one_line).filter(|t| !t.is_empty());
    let common = [
        ("locale", Value::from(locale)),
        ("customer_name", Value::from(text(customer_name))),
    ];
    let own: Vec<(&str, Value)> = match content {
        EmailContent::PaymentActionRequired(d) | EmailContent::PaymentFailed(d) => {
            vec![("invoice", Value::from_serialize(invoice_vars(d, &f)))]
        }
        EmailContent::SubscriptionCancelled {
            reason,
            product_name,
            ends_at,
        } => vec![
            ("reason", Value::from(reason_name(*reason))),
            ("product_name", Value::from(text(product_name.as_deref()))),
            ("ends_at", Value::from(ends_at.map(|t| f.date(t)))),
        ],
        EmailContent::Welcome { product_name } => {
            vec![("product_name", Value::from(text(product_name.as_deref())))]
        }
        EmailContent::TrialEnding {
            trial_end,
            ends_with_trial,
            product_name,
        } => vec![
            ("trial_end", Value::from(f.date(*trial_end))),
            ("ends_with_trial", Value::from(*ends_with_trial)),
            ("product_name", Value::from(text(product_name.as_deref()))),
        ],
    };
    Value::from_iter(
        common
            .into_iter()
            .chain(own)
            .map(|(k, v)| (k.to_owned(), v)),
    )
}

/// A content of `kind` with every optional part present: what the templates are checked
/// against at cold start, and what `billing emails preview` shows without an event.
pub fn sample_content(kind: EmailKind) -> EmailContent {
    let eur = |minor| {
        Money::new(
            minor,
            Currency::parse("eur").unwrap_or_else(|_| unreachable!()),
        )
    };
    let invoice = InvoiceDetails {
        number: "SAMPLE-0001".into(),
        amount_due: eur(2900),
        hosted_invoice_url: "https://invoice.stripe.com/i/sample".into(),
        pay_by: Some(PaymentDate::NextAttempt(1_764_590_400)),
        lines: vec![super::context::LineSummary {
            description: "Pro plan".into(),
            amount: Some(eur(2900)),
        }],
        more_lines: true,
    };
    match kind {
        EmailKind::PaymentActionRequired => EmailContent::PaymentActionRequired(invoice),
        EmailKind::PaymentFailed => EmailContent::PaymentFailed(invoice),
        EmailKind::SubscriptionCancelled => EmailContent::SubscriptionCancelled {
            reason: CancellationReason::CancellationRequested,
            product_name: Some("Pro plan".into()),
            ends_at: Some(1_764_590_400),
        },
        EmailKind::Welcome => EmailContent::Welcome {
            product_name: Some("Pro plan".into()),
        },
        EmailKind::TrialEnding => EmailContent::TrialEnding {
            trial_end: 1_764_590_400,
            ends_with_trial: false,
            product_name: Some("Pro plan".into()),
        },
    }
}

/// [`variables`] of [`sample_content`], with a customer name.
pub fn sample(kind: EmailKind, locale: &str) -> Value {
    variables(&sample_content(kind), locale, Some("Sam Sample"))
}
