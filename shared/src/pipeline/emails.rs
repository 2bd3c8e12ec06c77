//! Email jobs in the event's commit (issue 10): an applied event that calls for a customer
//! email adds an `email.job` outbox item to the same transaction as the state it changed, so
//! the job exists exactly when the change does. Only "is this kind switched on" is decided
//! here; whether the email goes out is decided by the consumer against the model at send
//! time (`emails::decide`).

use super::record::Verified;
use super::Pipeline;
use crate::domain::events::{BillingEvent, InvoiceEventKind};
use crate::emails::job::EmailJob;
use crate::emails::kinds::EmailKind;
use crate::ports::Commit;

/// The email an event asks for, if any: only the action-required email has its decision and
/// template so far.
fn email_of(event: &BillingEvent) -> Option<EmailKind> {
    match event {
        BillingEvent::Invoice(e) if e.kind == InvoiceEventKind::ActionRequired => {
            Some(EmailKind::PaymentActionRequired)
        }
        _ => None,
    }
}

impl Pipeline {
    /// Adds the event's email job to `commit` when the event changed its invoice (the commit
    /// writes it) and the email's kind is on.
    pub(super) fn add_email_jobs(&self, v: &Verified<'_>, commit: &mut Commit) {
        let Some((invoice, _)) = &commit.invoice else {
            return;
        };
        let Some(kind) = email_of(&v.event).filter(|k| self.email_kinds.contains(k)) else {
            return;
        };
        let job = EmailJob {
            email: kind,
            provider: invoice.provider,
            object: invoice.id.as_str().to_owned(),
            customer: invoice.customer.clone(),
            event_id: v.meta.id.clone(),
        };
        commit.outbox.push(job.outbox_message(self.clock.now()));
    }
}
