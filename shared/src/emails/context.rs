//! What one email needs, and nothing more: built from the model (an [`Invoice`], a
//! subscription's end) so that rendering needs no store and a job carries no payload. The
//! recipient travels beside the content and is never rendered into the body.

use super::kinds::EmailKind;
use super::money::{Currency, Money};
use crate::domain::access::{Standing, SubscriptionAccess};
use crate::domain::events::{EmailAddress, InvoiceLine};
use crate::domain::invoice::Invoice;
use serde::{Deserialize, Serialize};

/// Lines shown in an invoice email; the rest are summed up as "and more items on the
/// invoice" (the hosted page has them all).
pub const MAX_LINES_SHOWN: usize = 20;

/// When the customer has to act by: the invoice's due date (`send_invoice` invoices), else
/// Stripe's next automatic attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "at")]
pub enum PaymentDate {
    Due(i64),
    NextAttempt(i64),
}

/// One invoice line as the email shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSummary {
    /// The line's description (merchant text, escaped in HTML).
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

/// What an invoice email (action required, payment failed) shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDetails {
    pub number: String,
    pub amount_due: Money,
    /// Stripe's hosted invoice page, always `https://`.
    pub hosted_invoice_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by: Option<PaymentDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineSummary>,
    /// The invoice has more lines than shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more_lines: bool,
}

/// Why an invoice cannot make an email: a field the email must show is absent or unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MissingDetail {
    #[error("the invoice has no number (still a draft)")]
    Number,
    #[error("the invoice has no amount due")]
    AmountDue,
    #[error("the invoice has no usable currency")]
    Currency,
    #[error("the invoice has no https hosted invoice page")]
    HostedInvoiceUrl,
}

impl MissingDetail {
    pub fn as_str(self) -> &'static str {
        match self {
            MissingDetail::Number => "number",
            MissingDetail::AmountDue => "amount_due",
            MissingDetail::Currency => "currency",
            MissingDetail::HostedInvoiceUrl => "hosted_invoice_url",
        }
    }
}

impl InvoiceDetails {
    /// The details of `invoice` as the model holds them (its latest snapshot, the number and
    /// hosted page kept from finalization). Lines in another currency than the invoice's
    /// cannot exist at Stripe; their amounts are shown in the invoice's currency.
    pub fn from_invoice(invoice: &Invoice) -> Result<Self, MissingDetail> {
        let view = invoice.view(None);
        let number = view.number.ok_or(MissingDetail::Number)?;
        let currency = view
            .currency
            .as_deref()
            .and_then(|c| Currency::parse(c).ok())
            .ok_or(MissingDetail::Currency)?;
        let amount_due = view.amount_due.ok_or(MissingDetail::AmountDue)?;
        // Only an https page goes into a link: a `javascript:` or `data:` URL would run in the
        // reader's mail client whatever the escaping.
        let hosted_invoice_url = view
            .hosted_invoice_url
            .filter(|u| u.starts_with("https://") && u.len() > "https://".len())
            .ok_or(MissingDetail::HostedInvoiceUrl)?;
        let pay_by = match (view.due_date, view.next_payment_attempt) {
            (Some(due), _) => Some(PaymentDate::Due(due)),
            (None, Some(next)) => Some(PaymentDate::NextAttempt(next)),
            (None, None) => None,
        };
        let lines: Vec<LineSummary> = view
            .lines
            .iter()
            .take(MAX_LINES_SHOWN)
            .map(|l| line_summary(l, currency))
            .collect();
        Ok(Self {
            number,
            amount_due: Money::new(amount_due, currency),
            hosted_invoice_url,
            pay_by,
            more_lines: view.more_lines || view.lines.len() > lines.len(),
            lines,
        })
    }
}

fn line_summary(line: &InvoiceLine, currency: Currency) -> LineSummary {
    let description = line
        .description
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| line.product_id.clone())
        .unwrap_or_else(|| "Item".to_owned());
    LineSummary {
        description,
        amount: line.amount.map(|a| Money::new(a, currency)),
    }
}

/// Why a subscription ended, as the cancellation email words it. Stripe's
/// `cancellation_details.reason` values, plus the model's own `customer_deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// The customer (or the merchant on their behalf) cancelled.
    CancellationRequested,
    /// Payments failed until the subscription was cancelled.
    PaymentFailed,
    /// A payment was disputed.
    PaymentDisputed,
    /// The customer record was deleted.
    CustomerDeleted,
    /// No reason given, or one this version does not know.
    Unknown,
}

impl CancellationReason {
    /// From the reason the model keeps verbatim (`Deletion::reason`, the access view's
    /// `cancellation_reason`).
    pub fn from_model(reason: Option<&str>) -> Self {
        match reason {
            Some("cancellation_requested") => Self::CancellationRequested,
            Some("payment_failed") => Self::PaymentFailed,
            Some("payment_disputed") => Self::PaymentDisputed,
            Some(crate::domain::access::CUSTOMER_DELETED) => Self::CustomerDeleted,
            _ => Self::Unknown,
        }
    }
}

impl EmailContent {
    /// The cancellation email for one subscription as the access rule sees it: an ended
    /// subscription (deleted, or its customer deleted) says why; one cancelling at its period's
    /// end also says when access ends. `None` while the subscription is not cancelled.
    pub fn cancellation(access: &SubscriptionAccess, product_name: Option<String>) -> Option<Self> {
        let reason = CancellationReason::from_model(access.cancellation_reason.as_deref());
        let (reason, ends_at) = match access.standing {
            Standing::Ended => (reason, None),
            // Only the customer (or the merchant for them) schedules an end of period.
            Standing::Cancelling => match reason {
                CancellationReason::Unknown => (
                    CancellationReason::CancellationRequested,
                    access.current_period_end,
                ),
                known => (known, access.current_period_end),
            },
            Standing::Good
            | Standing::Trial
            | Standing::Overdue
            | Standing::ActionRequired
            | Standing::Inactive
            | Standing::None => return None,
        };
        Some(EmailContent::SubscriptionCancelled {
            reason,
            product_name,
            ends_at,
        })
    }
}

/// What the kind-specific part of an email shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EmailContent {
    PaymentActionRequired(InvoiceDetails),
    PaymentFailed(InvoiceDetails),
    SubscriptionCancelled {
        reason: CancellationReason,
        /// The product's name from the catalogue, when known (merchant text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_name: Option<String>,
        /// When access ends (or ended), if later than the email.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ends_at: Option<i64>,
    },
    Welcome {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_name: Option<String>,
    },
    TrialEnding {
        /// When the trial ends.
        trial_end: i64,
        /// Whether the subscription is set to end with the trial (else it continues, paid).
        ends_with_trial: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_name: Option<String>,
    },
}

impl EmailContent {
    pub fn kind(&self) -> EmailKind {
        match self {
            EmailContent::PaymentActionRequired(_) => EmailKind::PaymentActionRequired,
            EmailContent::PaymentFailed(_) => EmailKind::PaymentFailed,
            EmailContent::SubscriptionCancelled { .. } => EmailKind::SubscriptionCancelled,
            EmailContent::Welcome { .. } => EmailKind::Welcome,
            EmailContent::TrialEnding { .. } => EmailKind::TrialEnding,
        }
    }
}

/// One email to send: what it is about (kind and object: the key an email is sent once
/// under), to whom, and what it shows. `Debug` never shows the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContext {
    /// The invoice, subscription or checkout session the email is about.
    pub object_id: String,
    pub recipient: EmailAddress,
    pub content: EmailContent,
}

impl EmailContext {
    pub fn kind(&self) -> EmailKind {
        self.content.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::BillingStatus;
    use crate::domain::ids::{CustomerId, Provider, SubscriptionId};

    fn access(standing: Standing, reason: Option<&str>) -> SubscriptionAccess {
        SubscriptionAccess {
            provider: Provider::STRIPE,
            customer: CustomerId::new("cus_1"),
            subscription: SubscriptionId::new("sub_1"),
            grants: standing == Standing::Cancelling,
            tier: None,
            status: "active".into(),
            standing,
            billing_status: BillingStatus::Done,
            current_period_end: Some(1_764_590_400),
            cancel_at_period_end: standing == Standing::Cancelling,
            trial_end: None,
            cancellation_reason: reason.map(str::to_owned),
            payment: None,
            invoice: None,
            as_of: 1,
            invalid: None,
            ends_at: None,
        }
    }

    #[test]
    fn a_cancellation_is_read_from_the_access_rule() {
        use CancellationReason::*;
        let content =
            |standing, reason| EmailContent::cancellation(&access(standing, reason), None);
        let ended = |reason, ends_at| {
            Some(EmailContent::SubscriptionCancelled {
                reason,
                product_name: None,
                ends_at,
            })
        };
        assert_eq!(
            content(Standing::Ended, Some("payment_failed")),
            ended(PaymentFailed, None)
        );
        assert_eq!(
            content(Standing::Ended, Some("customer_deleted")),
            ended(CustomerDeleted, None)
        );
        assert_eq!(content(Standing::Ended, None), ended(Unknown, None));
        assert_eq!(
            content(Standing::Cancelling, None),
            ended(CancellationRequested, Some(1_764_590_400))
        );
        for standing in [Standing::Good, Standing::Overdue, Standing::ActionRequired] {
            assert_eq!(content(standing, Some("cancellation_requested")), None);
        }
    }

    #[test]
    fn a_job_serializes_without_surprises_and_debug_hides_the_recipient() {
        let ctx = EmailContext {
            object_id: "sub_1".into(),
            recipient: EmailAddress::new("someone@example.com"),
            content: EmailContent::Welcome { product_name: None },
        };
        let json = serde_json::to_value(&ctx).expect("json");
        assert_eq!(json["content"]["kind"], "welcome");
        let back: EmailContext = serde_json::from_value(json).expect("back");
        assert_eq!(back, ctx);
        assert!(!format!("{ctx:?}").contains("someone@"));
    }
}
