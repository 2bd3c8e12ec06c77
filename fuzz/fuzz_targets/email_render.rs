//! Email rendering of hostile text through the built-in templates: any email context (JSON),
//! and the input as text in every merchant field and the customer's name of every kind, in
//! English and French. Contract: nothing panics, every render succeeds; the subject is one line;
//! the HTML holds only the templates' own tags, so no text can open a tag or leave an attribute.
#![no_main]

use billing::domain::events::EmailAddress;
use billing::emails::context::{
    CancellationReason, EmailContent, EmailContext, InvoiceDetails, LineSummary, PaymentDate,
};
use billing::emails::money::{Currency, Money};
use billing::emails::brand::Brand;
use billing::emails::render::{render, Reader, RenderedEmail};
use billing::emails::templates::Templates;
use std::sync::OnceLock;
use libfuzzer_sys::fuzz_target;

/// Every tag the built-in templates write.
const TAGS: [&str; 23] = [
    "!DOCTYPE", "html", "/html", "head", "/head", "meta", "title", "/title", "body", "/body", "p",
    "/p", "a", "/a", "table", "/table", "tr", "/tr", "td", "/td", "img", "span", "/span",
];

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        let brand = Brand {
            url: Some("https://fuzz.example".into()),
            support_email: Some("help@fuzz.example".into()),
            postal_address: Some("1 Fuzz Lane".into()),
            ..Brand::named("Fuzz Co")
        };
        Templates::built_in(&brand).expect("the built-in templates check")
    })
}

fn show(ctx: &EmailContext, name: &str) {
    for locale in ["en", "fr"] {
        let reader = Reader {
            name: Some(name.to_owned()),
            preferred_locales: vec![locale.to_owned()],
        };
        check(&render(ctx, templates(), &reader).expect("every context renders"));
    }
}

fn check(email: &RenderedEmail) {
    assert!(
        !email.subject.chars().any(char::is_control),
        "a control character in the subject"
    );
    for tag in email.html.split('<').skip(1) {
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap_or_default();
        assert!(
            TAGS.contains(&name),
            "a tag the templates do not write: <{name}"
        );
    }
}

/// `text` in every merchant field of each kind.
fn contexts(text: &str, number: i64) -> Vec<EmailContext> {
    let currency = Currency::parse("usd").expect("usd");
    let details = InvoiceDetails {
        number: text.to_owned(),
        amount_due: Money::new(number, currency),
        hosted_invoice_url: format!("https://invoice.stripe.com/{text}"),
        pay_by: Some(PaymentDate::Due(number)),
        lines: vec![LineSummary {
            description: text.to_owned(),
            amount: Some(Money::new(number, currency)),
        }],
        more_lines: true,
    };
    let product_name = Some(text.to_owned());
    [
        EmailContent::PaymentActionRequired(details.clone()),
        EmailContent::PaymentFailed(details),
        EmailContent::SubscriptionCancelled {
            reason: CancellationReason::PaymentFailed,
            product_name: product_name.clone(),
            ends_at: Some(number),
        },
        EmailContent::Welcome {
            product_name: product_name.clone(),
        },
        EmailContent::TrialEnding {
            trial_end: number,
            ends_with_trial: number % 2 == 0,
            product_name,
        },
    ]
    .into_iter()
    .map(|content| EmailContext {
        object_id: "in_fuzz".into(),
        recipient: EmailAddress::new("customer@example.com"),
        content,
    })
    .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(ctx) = serde_json::from_slice::<EmailContext>(data) {
        show(&ctx, "Fuzz");
    }
    let text = String::from_utf8_lossy(data);
    let number = data
        .iter()
        .take(8)
        .fold(0i64, |n, &b| n.rotate_left(8) ^ i64::from(b));
    for ctx in contexts(&text, number) {
        show(&ctx, &text);
    }
});
