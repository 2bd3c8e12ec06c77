//! Invoices in the use case: an invoice is its own item beside its customer's aggregate, read
//! in the event's one consistent read and written in its one transaction (guarded by its own
//! revision), so an invoice event still costs one read and one write round trip.
//!
//! An event that changes only its invoice (a snapshot such as `invoice.created`, an unpaid
//! one-off invoice's events, `invoice_payment.paid`) writes the ledger record, the invoice and an
//! audit entry, and leaves the customer aggregate and the users alone: their access cannot
//! have changed. A paid one-off invoice is a purchase, so its payment changes the aggregate
//! too and is committed like any applied event, with its invoice.

use super::charges::{attach_charge, with_charge, ChargeUpdate};
use super::service::Pipeline;
use super::verified::{Attempted, Verified};
use crate::domain::customer::{CustomerBilling, Effect};
use crate::domain::events::BillingEvent;
use crate::domain::ids::CustomerId;
use crate::domain::invoice::Invoice;
use crate::domain::version::Offer;
use crate::feed::summary;
use crate::ports::{AuditRecord, Commit, LedgerGuard, LedgerState, StoreError, Stored};
use serde_json::json;

/// What one event does to its invoice.
pub(super) struct InvoiceUpdate {
    /// `None`: the invoice had no item yet.
    pub before: Option<Invoice>,
    pub after: Invoice,
    /// The revision `before` was read at (`None`: the item must not exist yet).
    pub rev: Option<u64>,
    pub effect: Effect,
}

/// Applies the event to its invoice as read; `None` when the event names no invoice.
pub(super) fn invoice_update(
    v: &Verified<'_>,
    stored: Option<Stored<Invoice>>,
) -> Option<InvoiceUpdate> {
    let id = v.event.invoice()?;
    let (before, rev) = match stored {
        Some(s) => (Some(s.value), Some(s.rev)),
        None => (None, None),
    };
    let mut after = before
        .clone()
        .unwrap_or_else(|| Invoice::new(v.meta.provider, id.clone()));
    let offered = match &v.event {
        BillingEvent::Invoice(event) => after.apply(&v.meta, event),
        BillingEvent::InvoicePaymentPaid(paid) => after.apply_payment(&v.meta, paid),
        _ => return None,
    };
    let effect = if offered == Offer::Taken {
        Effect::Applied
    } else {
        Effect::Stale
    };
    Some(InvoiceUpdate {
        before,
        after,
        rev,
        effect,
    })
}

/// The ledger state of an event from what it did to the customer and to its invoice: applied
/// if either moved, else stale if either was older, else ignored.
pub(super) fn ledger_state(customer: Effect, invoice: Option<&InvoiceUpdate>) -> LedgerState {
    let effects = [Some(customer), invoice.map(|i| i.effect)];
    if effects.contains(&Some(Effect::Applied)) {
        LedgerState::Applied
    } else if effects.contains(&Some(Effect::Stale)) {
        LedgerState::Stale
    } else {
        LedgerState::Ignored
    }
}

/// What an audit entry says about an invoice: its id and status (never the customer's email
/// address).
fn audit_part(invoice: Option<&Invoice>) -> serde_json::Value {
    invoice.map_or(
        serde_json::Value::Null,
        |i| json!({"id": i.id, "status": i.status()}),
    )
}

/// Adds the invoice to a commit built for the customer (when the invoice changed) and to its
/// audit entry.
pub(super) fn attach_invoice(commit: &mut Commit, update: Option<InvoiceUpdate>) {
    let Some(update) = update.filter(|u| u.effect == Effect::Applied) else {
        return;
    };
    for audit in &mut commit.audit {
        audit.before["invoice"] = audit_part(update.before.as_ref());
        audit.after["invoice"] = audit_part(Some(&update.after));
    }
    commit.invoice = Some((update.after, update.rev));
}

impl Pipeline {
    /// Commits an event that left the customer aggregate as it was (`customer_effect`, or no
    /// aggregate at all): its own items (invoice, charge) when they moved, else only the
    /// ledger record.
    pub(super) async fn commit_invoice_only(
        &self,
        v: &Verified<'_>,
        guard: LedgerGuard,
        (update, charge): (Option<InvoiceUpdate>, Option<ChargeUpdate>),
        customer: Option<&CustomerBilling>,
        customer_effect: Effect,
    ) -> Result<Attempted, StoreError> {
        let state = with_charge(
            ledger_state(customer_effect, update.as_ref()),
            charge.as_ref(),
        );
        let customer_id: Option<CustomerId> = customer
            .map(|c| c.customer.clone())
            .or_else(|| update.as_ref().and_then(|u| u.after.customer.clone()))
            .or_else(|| charge.as_ref().and_then(|c| c.after.customer.clone()));
        let record = self.ledger_record(v, state, customer_id.clone());
        let mut commit = Commit::ledger_only(record, guard);
        if state == LedgerState::Applied {
            let user = customer.and_then(CustomerBilling::user);
            if let Some(customer) = customer_id {
                // The user's access cannot have changed: the summary has no subscriptions.
                let before = summary(user, &[], &[]);
                let after = summary(user, &[], &[]);
                commit.audit.push(AuditRecord {
                    provider: v.meta.provider,
                    customer,
                    event_id: v.meta.id.clone(),
                    event_type: v.meta.event_type.clone(),
                    created: v.meta.created,
                    received_at: self.clock.now(),
                    user: user.cloned(),
                    before,
                    after,
                    unresolved_ties: Vec::new(),
                });
            }
            attach_invoice(&mut commit, update);
            attach_charge(&mut commit, charge);
            self.add_email_jobs(v, &mut commit);
        }
        self.store.commit(&commit).await?;
        if let Some((charge, _)) = &commit.charge {
            self.remember_charge(v.meta.provider, charge);
        }
        Ok(Attempted::Recorded(state))
    }
}
