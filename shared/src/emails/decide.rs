//! Whether the "payment action required" email goes out, decided when the job runs (not when
//! the event arrived) from the model as it is then. Pure: the caller reads the invoice, the
//! subscription's status and the customer's address; a skip comes back with a typed reason
//! for the sent-email record and the metrics.
//!
//! | the invoice, when the job runs                                  | decision                      |
//! |-----------------------------------------------------------------|-------------------------------|
//! | deleted, paid, voided or uncollectible                          | skip (`invoice_<status>`)     |
//! | first of a subscription (`subscription_create`) whose status is `incomplete` or not yet known | skip (`opens_subscription`) |
//! | no address on the invoice nor the customer, or not an address   | skip (`no_recipient`)         |
//! | no number, amount, currency or https hosted page                | skip (`missing_<field>`)      |
//! | otherwise                                                       | send                          |
//!
//! Uncollectible is a skip: the merchant (or the dunning settings) wrote the invoice off and
//! stopped asking; an email asking the customer to confirm a payment would contradict that.
//! Should it still be paid, `invoice.paid` says so and nothing is lost.
//!
//! The first invoice of a subscription is Checkout's: its page asks for the authentication
//! itself. Such a subscription stays `incomplete` until that invoice is paid, so a status not
//! yet known (the subscription's events not applied yet) is taken as `incomplete`; any other
//! known status (an `active` one whose invoice is still open, which Stripe does not produce
//! today) sends.

use super::context::{EmailContent, EmailContext, InvoiceDetails, MissingDetail};
use super::kinds::address_shape_ok;
use crate::domain::events::EmailAddress;
use crate::domain::invoice::{Invoice, InvoiceStatus};
use std::fmt;

/// Why an email was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The invoice no longer asks for a payment (its status: deleted, paid, voided,
    /// uncollectible).
    Settled(InvoiceStatus),
    /// The first invoice of a subscription still in Checkout.
    OpensSubscription,
    /// No address, or one that is not an address.
    NoRecipient,
    /// The email could not say what it must.
    Missing(MissingDetail),
}

impl SkipReason {
    /// The reason's name in records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Settled(InvoiceStatus::Deleted) => "invoice_deleted",
            SkipReason::Settled(InvoiceStatus::Paid) => "invoice_paid",
            SkipReason::Settled(InvoiceStatus::Voided) => "invoice_voided",
            SkipReason::Settled(InvoiceStatus::Uncollectible) => "invoice_uncollectible",
            // Not produced (pending and failed invoices are still owed); named for totality.
            SkipReason::Settled(InvoiceStatus::Pending | InvoiceStatus::Failed) => "invoice_owed",
            SkipReason::OpensSubscription => "opens_subscription",
            SkipReason::NoRecipient => "no_recipient",
            SkipReason::Missing(MissingDetail::Number) => "missing_number",
            SkipReason::Missing(MissingDetail::AmountDue) => "missing_amount_due",
            SkipReason::Missing(MissingDetail::Currency) => "missing_currency",
            SkipReason::Missing(MissingDetail::HostedInvoiceUrl) => "missing_hosted_invoice_url",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decision reads besides the invoice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surroundings<'a> {
    /// The status of the invoice's subscription as the model holds it (`None`: no
    /// subscription, or none of its events applied yet).
    pub subscription_status: Option<&'a str>,
    /// The customer record's address: used when the invoice carries none.
    pub customer_email: Option<&'a EmailAddress>,
}

/// The action-required email for `invoice`, or why not (the module's table, in its order).
pub fn payment_action_required(
    invoice: &Invoice,
    around: Surroundings<'_>,
) -> Result<EmailContext, SkipReason> {
    let status = invoice.status();
    if matches!(
        status,
        InvoiceStatus::Deleted
            | InvoiceStatus::Paid
            | InvoiceStatus::Voided
            | InvoiceStatus::Uncollectible
    ) {
        return Err(SkipReason::Settled(status));
    }
    let in_checkout = around.subscription_status.is_none_or(|s| s == "incomplete");
    if invoice.opens_subscription() && in_checkout {
        return Err(SkipReason::OpensSubscription);
    }
    let usable = |a: &&EmailAddress| address_shape_ok(a.as_str());
    let recipient = invoice
        .customer_email()
        .filter(usable)
        .or(around.customer_email.filter(usable))
        .ok_or(SkipReason::NoRecipient)?;
    let details = InvoiceDetails::from_invoice(invoice).map_err(SkipReason::Missing)?;
    Ok(EmailContext {
        object_id: invoice.id.as_str().to_owned(),
        recipient: recipient.clone(),
        content: EmailContent::PaymentActionRequired(details),
    })
}
