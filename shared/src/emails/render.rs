//! Subject, plain text and HTML of each kind, rendered by hand from an [`EmailContext`] (four
//! short templates do not need a template engine). Every piece of merchant or customer text —
//! invoice number, line descriptions, product names, the hosted page's URL — goes through
//! [`escape_html`] in the HTML, through [`one_line`] in the subject and the text. Dates are UTC,
//! `YYYY-MM-DD`; amounts follow `money.rs`. The recipient is never rendered.

use super::context::{CancellationReason, EmailContent, EmailContext, InvoiceDetails, PaymentDate};
use std::fmt::Write as _;

/// One rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

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

/// Merchant text on one line: control characters (CR, LF, tabs…) become spaces, so a number
/// or product name cannot add a header line to the subject or break the text's layout.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A Unix time as its UTC calendar date, `YYYY-MM-DD` (years past 9999 get more digits, years
/// before 0 a sign). Total over every `i64`: the days-to-civil conversion of the proleptic
/// Gregorian calendar on 400-year eras, in `i64` throughout.
pub fn iso_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    // Shift the epoch to 0000-03-01 so that a leap day ends each year of the era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Renders `ctx`.
pub fn render(ctx: &EmailContext) -> RenderedEmail {
    match &ctx.content {
        EmailContent::PaymentActionRequired(d) => action_required(d),
        EmailContent::PaymentFailed(d) => payment_failed(d),
        EmailContent::SubscriptionCancelled {
            reason,
            product_name,
            ends_at,
        } => cancelled(*reason, product_name.as_deref(), *ends_at),
        EmailContent::Welcome { product_name } => welcome(product_name.as_deref()),
        EmailContent::TrialEnding {
            trial_end,
            ends_with_trial,
            product_name,
        } => trial_ending(*trial_end, *ends_with_trial, product_name.as_deref()),
    }
}

/// The whole HTML document around already-escaped body parts.
fn document(subject: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n<body style=\"font-family: sans-serif; line-height: 1.5;\">\n\
         {body}</body>\n</html>\n",
        escape_html(subject)
    )
}

/// Plain text and HTML from paragraphs, with an optional call to action (label, URL) after
/// `before_link` paragraphs and an optional invoice summary at the end.
fn assemble(
    subject: String,
    paras: &[String],
    link: Option<(&str, &str, usize)>,
    invoice: Option<&InvoiceDetails>,
) -> RenderedEmail {
    let mut text = String::new();
    let mut html = String::new();
    for (i, p) in paras.iter().enumerate() {
        if let Some((label, url, _)) = link.filter(|l| l.2 == i) {
            let _ = write!(text, "{label}:\n{url}\n\n");
            let _ = writeln!(
                html,
                "<p><a href=\"{}\">{}</a></p>",
                escape_html(url),
                escape_html(label)
            );
        }
        let _ = write!(text, "{p}\n\n");
        let _ = writeln!(html, "<p>{}</p>", escape_html(p));
    }
    if let Some(d) = invoice {
        summary(d, &mut text, &mut html);
    }
    RenderedEmail {
        html: document(&subject, &html),
        subject,
        text,
    }
}

/// The invoice's lines and amount due, in both forms.
fn summary(d: &InvoiceDetails, text: &mut String, html: &mut String) {
    let number = one_line(&d.number);
    let _ = writeln!(text, "Invoice {number}");
    let _ = writeln!(
        html,
        "<table style=\"border-collapse: collapse;\">\n<caption>Invoice {}</caption>",
        escape_html(&number)
    );
    for line in &d.lines {
        let description = one_line(&line.description);
        let amount = line.amount.map(|a| a.to_string()).unwrap_or_default();
        let _ = writeln!(text, "- {description}: {amount}");
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td style=\"text-align: right;\">{}</td></tr>",
            escape_html(&description),
            escape_html(&amount)
        );
    }
    if d.more_lines {
        let _ = writeln!(text, "- and more items on the invoice page");
        let _ = writeln!(
            html,
            "<tr><td colspan=\"2\">and more items on the invoice page</td></tr>"
        );
    }
    let _ = writeln!(text, "Amount due: {}", d.amount_due);
    let _ = writeln!(
        html,
        "<tr><th style=\"text-align: left;\">Amount due</th><th style=\"text-align: right;\">{}</th></tr>\n</table>",
        escape_html(&d.amount_due.to_string())
    );
}

fn pay_by_sentence(pay_by: Option<PaymentDate>, due: &str, next: &str) -> Option<String> {
    Some(match pay_by? {
        PaymentDate::Due(t) => format!("{due} {}.", iso_date(t)),
        PaymentDate::NextAttempt(t) => format!("{next} {}.", iso_date(t)),
    })
}

fn action_required(d: &InvoiceDetails) -> RenderedEmail {
    let number = one_line(&d.number);
    let mut paras = vec![
        "Hello,".into(),
        format!(
            "Your bank asks you to confirm the payment of invoice {number} ({}). The payment \
             is not complete until you confirm it.",
            d.amount_due
        ),
    ];
    paras.extend(pay_by_sentence(
        d.pay_by,
        "Please confirm it by the due date,",
        "Please confirm it before our next attempt to collect it, on",
    ));
    paras.push("Thank you.".into());
    let link_at = paras.len() - 1;
    assemble(
        format!("Action required: confirm your payment for invoice {number}"),
        &paras,
        Some(("Confirm your payment", &d.hosted_invoice_url, link_at)),
        Some(d),
    )
}

fn payment_failed(d: &InvoiceDetails) -> RenderedEmail {
    let number = one_line(&d.number);
    let mut paras = vec![
        "Hello,".into(),
        format!(
            "We could not collect the payment of invoice {number} ({}). Please update your \
             payment method and pay the invoice on its page.",
            d.amount_due
        ),
    ];
    paras.extend(pay_by_sentence(
        d.pay_by,
        "The invoice is due on",
        "We will try to collect it again on",
    ));
    paras.push("Thank you.".into());
    let link_at = paras.len() - 1;
    assemble(
        format!("Payment failed for invoice {number}: please update your payment method"),
        &paras,
        Some(("Update your payment method", &d.hosted_invoice_url, link_at)),
        Some(d),
    )
}

fn cancelled(
    reason: CancellationReason,
    product: Option<&str>,
    ends_at: Option<i64>,
) -> RenderedEmail {
    let product = product.map(one_line).filter(|p| !p.is_empty());
    let what = match &product {
        Some(p) => format!("Your subscription to {p}"),
        None => "Your subscription".to_owned(),
    };
    let why = match reason {
        CancellationReason::CancellationRequested => {
            format!("{what} has been cancelled, as requested.")
        }
        CancellationReason::PaymentFailed => format!(
            "{what} has been cancelled because its payments could not be collected. You can \
             subscribe again at any time."
        ),
        CancellationReason::PaymentDisputed => format!(
            "{what} has been cancelled because a payment for it was disputed with your bank."
        ),
        CancellationReason::CustomerDeleted => {
            format!("{what} has ended because your customer account was closed.")
        }
        CancellationReason::Unknown => format!("{what} has been cancelled."),
    };
    let mut paras = vec!["Hello,".to_owned(), why];
    if let Some(t) = ends_at {
        paras.push(format!("Your access ends on {}.", iso_date(t)));
    }
    paras.push("Thank you for having been with us.".into());
    let subject = match reason {
        CancellationReason::CustomerDeleted => "Your subscription has ended",
        CancellationReason::CancellationRequested
        | CancellationReason::PaymentFailed
        | CancellationReason::PaymentDisputed
        | CancellationReason::Unknown => "Your subscription has been cancelled",
    };
    assemble(subject.to_owned(), &paras, None, None)
}

fn welcome(product: Option<&str>) -> RenderedEmail {
    let product = product.map(one_line).filter(|p| !p.is_empty());
    let (subject, thanks) = match &product {
        Some(p) => (
            format!("Welcome to {p}"),
            format!("Thank you for subscribing to {p}. Your subscription is active."),
        ),
        None => (
            "Welcome".to_owned(),
            "Thank you for subscribing. Your subscription is active.".to_owned(),
        ),
    };
    let paras = ["Hello,".to_owned(), thanks];
    assemble(subject, &paras, None, None)
}

fn trial_ending(trial_end: i64, ends_with_trial: bool, product: Option<&str>) -> RenderedEmail {
    let product = product.map(one_line).filter(|p| !p.is_empty());
    let day = iso_date(trial_end);
    let what = match &product {
        Some(p) => format!("Your trial of {p}"),
        None => "Your trial".to_owned(),
    };
    let next = if ends_with_trial {
        "Your subscription is set to end with the trial, so nothing will be charged.".to_owned()
    } else {
        "Your subscription then continues and its first payment is taken with your saved \
         payment method. To stop it, cancel before that day."
            .to_owned()
    };
    let paras = [
        "Hello,".to_owned(),
        format!("{what} ends on {day}."),
        next,
        "Thank you.".into(),
    ];
    assemble(format!("Your trial ends on {day}"), &paras, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::EmailAddress;
    use crate::emails::context::LineSummary;
    use crate::emails::money::{Currency, Money};

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
            let r = render(&context(content));
            assert!(!r.html.contains("<script>"), "{}", r.html);
            assert!(!r.html.contains("<b>plan"), "{}", r.html);
            assert!(
                r.html.contains(
                    "href=\"https://invoice.stripe.com/i/x?a=1&amp;b=&quot;&gt;&lt;script&gt;"
                ),
                "{}",
                r.html
            );
            assert!(r
                .html
                .contains("Team &lt;b&gt;plan&lt;/b&gt; &amp; &#39;more&#39;"));
            assert!(r.html.contains("N-1&quot;&gt;&lt;script&gt;"));
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
                r.text.contains("- Team <b>plan</b> & 'more': 29.00 EUR\n"),
                "{}",
                r.text
            );
            assert!(!r.text.contains("someone@example.com") && !r.html.contains("someone@"));
        }
    }

    #[test]
    fn the_action_required_email_shows_link_amount_number_and_date() {
        let mut d = invoice("SYN-0001", "https://invoice.stripe.com/i/acct/abc", "Team");
        let r = render(&context(EmailContent::PaymentActionRequired(d.clone())));
        assert_eq!(
            r.subject,
            "Action required: confirm your payment for invoice SYN-0001"
        );
        for part in [
            "https://invoice.stripe.com/i/acct/abc",
            "29.00 EUR",
            "SYN-0001",
            "2025-11-04",
            "next attempt",
            "and more items",
        ] {
            assert!(r.text.contains(part), "text lacks {part}: {}", r.text);
            assert!(r.html.contains(part), "html lacks {part}: {}", r.html);
        }
        d.pay_by = Some(PaymentDate::Due(1_764_601_200));
        let r = render(&context(EmailContent::PaymentActionRequired(d.clone())));
        assert!(
            r.text.contains("by the due date, 2025-12-01."),
            "{}",
            r.text
        );
        d.pay_by = None;
        let r = render(&context(EmailContent::PaymentActionRequired(d)));
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
            let r = render(&context(EmailContent::SubscriptionCancelled {
                reason,
                product_name: Some("Pro <i>\"2026\"</i>".into()),
                ends_at: Some(1_764_590_400),
            }));
            assert!(r.text.contains(words), "{reason:?}: {}", r.text);
            assert!(r.text.contains("Your subscription to Pro <i>\"2026\"</i>"));
            assert!(
                r.html.contains("Pro &lt;i&gt;&quot;2026&quot;&lt;/i&gt;"),
                "{}",
                r.html
            );
            assert!(r.text.contains("Your access ends on 2025-12-01."));
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
    fn the_welcome_email_names_the_product_when_known() {
        let r = render(&context(EmailContent::Welcome {
            product_name: Some("Team & Co\n".into()),
        }));
        assert_eq!(r.subject, "Welcome to Team & Co");
        assert!(
            r.html.contains("<title>Welcome to Team &amp; Co</title>"),
            "{}",
            r.html
        );
        let r = render(&context(EmailContent::Welcome { product_name: None }));
        assert_eq!(r.subject, "Welcome");
    }
}
