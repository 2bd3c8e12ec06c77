//! The variables each kind's templates get (docs/EMAILS.md lists them), built from an
//! [`EmailContext`] in the customer's locale, and the rendering through [`Templates`]. Every
//! piece of merchant or customer text (invoice number, line descriptions, product and customer
//! names) is made single-line here ([`one_line`]); the HTML templates escape it (minijinja's
//! autoescaping), the text and subject show it as it is. The recipient is never a variable.

use super::context::EmailContext;
pub use super::templates::RenderedEmail;
use super::templates::{TemplateError, Templates};
pub use super::variables::{sample, sample_content, variables};

/// Escapes text for HTML element content and quoted attribute values: `&`, `<`, `>`, `"` and
/// `'` become character references, so no text can open a tag or leave an attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub use super::variables::one_line;

/// A Unix time as its UTC calendar date, `YYYY-MM-DD` (years past 9999 get more digits, years
/// before 0 a sign). Total over every `i64`: the days-to-civil conversion of the proleptic
/// Gregorian calendar on 400-year eras, in `i64` throughout.
pub fn iso_date(unix: i64) -> String {
    let (year, month, day) = super::locale::civil(unix);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Who the email is to, as far as the templates may say it: the customer's name where known,
/// the locales they prefer (Stripe's `preferred_locales`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reader {
    pub name: Option<String>,
    pub preferred_locales: Vec<String>,
}

/// Renders `ctx` for `reader` in the first of their locales that has templates.
pub fn render(
    ctx: &EmailContext,
    templates: &Templates,
    reader: &Reader,
) -> Result<RenderedEmail, TemplateError> {
    let kind = ctx.kind();
    let locale = templates.locale_for(kind, &reader.preferred_locales);
    templates.render(
        kind,
        locale,
        variables(&ctx.content, locale, reader.name.as_deref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::EmailAddress;
    use crate::emails::brand::Brand;
    use crate::emails::context::LineSummary;
    use crate::emails::context::{CancellationReason, EmailContent, InvoiceDetails, PaymentDate};
    use crate::emails::money::{Currency, Money};
    use crate::emails::templates::Templates;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("eur").expect("eur"))
    }

    fn invoice(number: &str, url: &str, description: &str) -> InvoiceDetails {
        InvoiceDetails {
            number: number.into(),
            amount_due: eur(2900),
            hosted_invoice_url: url.into(),
            pay_by: Some(PaymentDate::NextAttempt(1_762_261_200)),
            lines: vec![LineSummary {
                description: description.into(),
                amount: Some(eur(2900)),
            }],
            more_lines: true,
        }
    }

    fn context(content: EmailContent) -> EmailContext {
        EmailContext {
            object_id: "in_1".into(),
            recipient: EmailAddress::new("someone@example.com"),
            content,
        }
    }

    #[test]
    fn escape_html_replaces_the_five_special_characters() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain €29.00"), "plain €29.00");
        assert_eq!(escape_html("&amp;"), "&amp;amp;");
    }

    #[test]
    fn one_line_turns_controls_into_spaces() {
        assert_eq!(one_line(" N-1\r\nBcc: x@y.z\t"), "N-1  Bcc: x@y.z");
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        for (unix, want) in [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (86_399, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (4_107_456_000, "2100-02-28"), // 2100 is not a leap year
            (4_107_542_400, "2100-03-01"),
            (1_762_261_200, "2025-11-04"),
            (253_402_300_799, "9999-12-31"),
            (-62_135_596_800, "0001-01-01"),
        ] {
            assert_eq!(iso_date(unix), want, "{unix}");
        }
        // The extremes give some date and no panic (years far beyond any invoice).
        assert!(
            iso_date(i64::MAX).ends_with("-12-04"),
            "{}",
            iso_date(i64::MAX)
        );
        assert!(
            iso_date(i64::MIN).starts_with('-'),
            "{}",
            iso_date(i64::MIN)
        );
    }

    fn templates() -> Templates {
        Templates::built_in(&Brand::named("Team Co")).expect("the built-in templates check")
    }

    fn show(content: EmailContent) -> RenderedEmail {
        render(&context(content), &templates(), &Reader::default()).expect("renders")
    }

    #[test]
    fn merchant_text_is_escaped_in_html_and_kept_on_one_line_elsewhere() {
        let hostile = invoice(
            "N-1\"><script>alert(1)</script>\r\nBcc: x@y.z",
            "https://invoice.stripe.com/i/x?a=1&b=\"><script>alert(2)</script>",
            "Team <b>plan</b> & 'more'",
        );
        for content in [
            EmailContent::PaymentActionRequired(hostile.clone()),
            EmailContent::PaymentFailed(hostile.clone()),
        ] {
            let r = show(content);
            assert!(!r.html.contains("<script>"), "{}", r.html);
            assert!(!r.html.contains("<b>plan"), "{}", r.html);
            assert!(
                r.html.contains("b=&quot;&gt;&lt;script&gt;alert(2)"),
                "the URL cannot leave its attribute: {}",
                r.html
            );
            assert!(r.html.contains("Team &lt;b&gt;plan&lt;"), "{}", r.html);
            assert!(r.html.contains("N-1&quot;&gt;&lt;script&gt;"), "{}", r.html);
            assert!(
                !r.subject.contains('\r') && !r.subject.contains('\n'),
                "{:?}",
                r.subject
            );
            assert!(
                r.subject.contains("Bcc: x@y.z"),
                "kept, on the subject's one line"
            );
            // The text keeps the merchant's words as they are, on one line each.
            assert!(
                r.text.contains("- Team <b>plan</b> & 'more': €29.00\n"),
                "{}",
                r.text
            );
            assert!(!r.text.contains("someone@example.com") && !r.html.contains("someone@"));
        }
    }

    #[test]
    fn the_action_required_email_says_who_writes_and_shows_link_amount_number_and_date() {
        let mut d = invoice("SYN-0001", "https://invoice.stripe.com/i/acct/abc", "Team");
        let r = show(EmailContent::PaymentActionRequired(d.clone()));
        assert_eq!(
            r.subject,
            "Team Co: confirm your payment for invoice SYN-0001"
        );
        for part in [
            "Team Co",
            "€29.00",
            "SYN-0001",
            "4 November 2025",
            "next attempt",
            "and more items",
            "You receive this email because",
        ] {
            assert!(r.text.contains(part), "text lacks {part}: {}", r.text);
            assert!(r.html.contains(part), "html lacks {part}: {}", r.html);
        }
        assert!(r.text.contains("https://invoice.stripe.com/i/acct/abc"));
        // The button and the plain link beside it.
        assert_eq!(
            r.html.matches("invoice.stripe.com").count(),
            3,
            "{}",
            r.html
        );
        d.pay_by = Some(PaymentDate::Due(1_764_601_200));
        let r = show(EmailContent::PaymentActionRequired(d.clone()));
        assert!(
            r.text.contains("by the due date, 1 December 2025."),
            "{}",
            r.text
        );
        d.pay_by = None;
        let r = show(EmailContent::PaymentActionRequired(d));
        assert!(!r.text.contains("due date") && !r.text.contains("next attempt"));
    }

    #[test]
    fn the_cancellation_email_words_each_reason_and_escapes_the_product() {
        use CancellationReason::*;
        let mut texts = Vec::new();
        for (reason, words) in [
            (CancellationRequested, "as requested"),
            (PaymentFailed, "payments could not be collected"),
            (PaymentDisputed, "disputed"),
            (CustomerDeleted, "customer account was closed"),
            (Unknown, "has been cancelled."),
        ] {
            let r = show(EmailContent::SubscriptionCancelled {
                reason,
                product_name: Some("Pro <i>\"2026\"</i>".into()),
                ends_at: Some(1_764_590_400),
            });
            assert!(r.text.contains(words), "{reason:?}: {}", r.text);
            assert!(r.text.contains("Your subscription to Pro <i>\"2026\"</i>"));
            assert!(
                r.html.contains("Pro &lt;i&gt;&quot;2026&quot;&lt;"),
                "{}",
                r.html
            );
            assert!(r.text.contains("Your access ends on 1 December 2025."));
            texts.push(r.text);
        }
        texts.dedup();
        assert_eq!(texts.len(), 5, "every reason has its own wording");
        assert_eq!(
            CancellationReason::from_model(Some("customer_deleted")),
            CustomerDeleted
        );
        assert_eq!(CancellationReason::from_model(Some("new_reason")), Unknown);
        assert_eq!(CancellationReason::from_model(None), Unknown);
    }

    #[test]
    fn the_welcome_email_names_the_product_when_known_and_the_brand_always() {
        let r = show(EmailContent::Welcome {
            product_name: Some("Team & Co\n".into()),
        });
        assert_eq!(r.subject, "Welcome to Team & Co");
        assert!(
            r.html.contains("<title>Welcome to Team &amp; Co</title>"),
            "{}",
            r.html
        );
        let r = show(EmailContent::Welcome { product_name: None });
        assert_eq!(r.subject, "Welcome to Team Co");
    }

    #[test]
    fn a_customer_name_greets_them() {
        let r = render(
            &context(EmailContent::Welcome { product_name: None }),
            &templates(),
            &Reader {
                name: Some("Ada <Lovelace>".into()),
                preferred_locales: Vec::new(),
            },
        )
        .expect("renders");
        assert!(r.text.starts_with("Hello Ada <Lovelace>,"), "{}", r.text);
        assert!(r.html.contains("Hello Ada &lt;Lovelace&gt;,"), "{}", r.html);
    }
}
