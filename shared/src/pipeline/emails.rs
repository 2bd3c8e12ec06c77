//! Email jobs in the event's commit (issue 10): an applied event that calls for a customer
//! email adds an `email.job` outbox item to the same transaction as the state it changed, so
//! the job exists exactly when the change does. Only "is this kind switched on" is decided
//! here; whether the email goes out is decided by the consumer against the model at send
//! time (`emails::decide`).
//!
//! | applied event                                   | email                     | object            |
//! |-------------------------------------------------|---------------------------|-------------------|
//! | `invoice.payment_action_required` (invoice moved) | `payment_action_required` | the invoice     |
//! | `invoice.payment_failed` (invoice moved)        | `payment_failed`          | the invoice       |
//! | `customer.subscription.deleted`                 | `subscription_cancelled`  | the subscription  |
//! | `customer.subscription.trial_will_end`          | `trial_ending`            | the subscription  |
//! | `checkout.session.completed` with a subscription | `welcome`                | the subscription  |
//! | the same, paid purchase (payment mode)          | `welcome`                 | the session       |
//!
//! (`checkout.session.async_payment_succeeded` is read as a completed session: a purchase paid
//! later is welcomed then, under the same object.)
//!
//! The welcome's object is the subscription when there is one: what is welcomed is the access
//! it grants, and a subscription's events (not the session's) tell the consumer whether it
//! still grants; a later checkout for another subscription is a new welcome. A purchase has
//! no subscription, so its session (the purchase's key in the aggregate) is the object.

use super::service::Pipeline;
use super::verified::Verified;
use crate::domain::events::{BillingEvent, InvoiceEventKind, SubscriptionChange};
use crate::domain::ids::CustomerId;
use crate::emails::job::{EmailJob, EmailSubject};
use crate::ports::Commit;

/// The email an applied event asks for: its kind, object and customer, given what the commit
/// writes (an invoice email only when the commit writes the invoice).
fn email_of(event: &BillingEvent, commit: &Commit) -> Option<(EmailSubject, Option<CustomerId>)> {
    // Every event and every change is named: a new one is a compile error here until someone
    // decides whether it calls for an email.
    match event {
        BillingEvent::Invoice(e) => {
            let (stored, _) = commit.invoice.as_ref()?;
            let invoice = stored.id.clone();
            let subject = match e.kind {
                InvoiceEventKind::ActionRequired => EmailSubject::PaymentActionRequired { invoice },
                InvoiceEventKind::Failed => EmailSubject::PaymentFailed { invoice },
                InvoiceEventKind::Created
                | InvoiceEventKind::Finalized
                | InvoiceEventKind::FinalizationFailed
                | InvoiceEventKind::Updated
                | InvoiceEventKind::Deleted
                | InvoiceEventKind::Paid
                | InvoiceEventKind::Voided
                | InvoiceEventKind::MarkedUncollectible => return None,
            };
            Some((subject, stored.customer.clone()))
        }
        BillingEvent::Subscription {
            change, snapshot, ..
        } => {
            commit.customer.as_ref()?;
            let subscription = snapshot.id.clone();
            let subject = match change {
                SubscriptionChange::Deleted => EmailSubject::SubscriptionCancelled { subscription },
                SubscriptionChange::TrialWillEnd => EmailSubject::TrialEnding { subscription },
                SubscriptionChange::Created
                | SubscriptionChange::Updated
                | SubscriptionChange::Paused
                | SubscriptionChange::Resumed => return None,
            };
            Some((subject, Some(snapshot.customer.clone())))
        }
        BillingEvent::CheckoutCompleted {
            customer,
            subscription,
            purchase,
            ..
        } => {
            commit.customer.as_ref()?;
            let subject = match (subscription, purchase) {
                (Some(sub), _) => EmailSubject::SubscriptionWelcome {
                    subscription: sub.clone(),
                },
                (None, Some(p)) if p.paid => EmailSubject::PurchaseWelcome {
                    session: p.session.clone(),
                },
                // Unpaid (an asynchronous payment still pending) or nothing bought.
                (None, Some(_) | None) => return None,
            };
            Some((subject, Some(customer.clone())))
        }
        BillingEvent::ChargeRefunded(_)
        | BillingEvent::ChargeBound(_)
        | BillingEvent::Dispute(_)
        | BillingEvent::Refund(_)
        | BillingEvent::InvoicePayment(_)
        | BillingEvent::InvoicePaymentPaid(_)
        | BillingEvent::CustomerUpdated { .. }
        | BillingEvent::CustomerDeleted { .. }
        | BillingEvent::Entitlements { .. }
        | BillingEvent::Catalogue(_)
        | BillingEvent::Grant(_)
        | BillingEvent::Schedule { .. }
        | BillingEvent::Unsupported => None,
    }
}

impl Pipeline {
    /// Adds the event's email job to `commit` when the email's kind is on (the commit writes
    /// the state the email is about).
    pub(super) fn add_email_jobs(&self, v: &Verified<'_>, commit: &mut Commit) {
        let Some((subject, customer)) = email_of(&v.event, commit) else {
            return;
        };
        if !self.emails.kinds.contains(&subject.kind()) {
            return;
        }
        if v.meta.provider.account().is_some() && !self.emails.connected_accounts {
            return;
        }
        let job = EmailJob {
            subject,
            provider: v.meta.provider,
            customer,
            event_id: v.meta.id.clone(),
        };
        commit.outbox.push(job.outbox_message(self.clock.now()));
    }
}
