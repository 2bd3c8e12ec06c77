//! Charges in the use case: a charge is its own item beside its customer's aggregate, read in
//! the event's consistent read and written in its one transaction (guarded by its own revision).
//!
//! Disputes and refund objects name only their charge. Their event reads the charge's item;
//! when a binding event (`charge.refunded`, `payment_intent.succeeded`) has already named the
//! charge's customer, a second consistent read adds the customer (and its user) and the event
//! commits the item and the customer's copy of it together. A binding event reads the item with
//! its customer and carries over whatever the item already holds. So whichever arrives second
//! joins the two, in its one commit; a dispute of a charge whose customer never becomes known
//! stays applied on the charge's item.

use super::verified::Verified;
use crate::domain::charge::Charge;
use crate::domain::customer::Effect;
use crate::domain::version::Offer;
use crate::ports::{Commit, LedgerState, Stored};
use serde_json::json;

/// What one event does to its charge's item.
pub(super) struct ChargeUpdate {
    pub before: Option<Charge>,
    pub after: Charge,
    /// The revision `before` was read at (`None`: the item must not exist yet).
    pub rev: Option<u64>,
    pub effect: Effect,
}

/// Applies the event to its charge as read; `None` when the event names no charge.
pub(super) fn charge_update(
    v: &Verified<'_>,
    stored: Option<Stored<Charge>>,
) -> Option<ChargeUpdate> {
    let event = v.event.charge_event()?;
    let id = event.charge();
    let (before, rev) = match stored {
        Some(s) => (Some(s.value), Some(s.rev)),
        None => (None, None),
    };
    let mut after = before
        .clone()
        .unwrap_or_else(|| Charge::new(v.meta.provider, id));
    let effect = match after.apply(&v.meta, event) {
        Offer::Taken => Effect::Applied,
        Offer::Same | Offer::Older => Effect::Stale,
    };
    Some(ChargeUpdate {
        before,
        after,
        rev,
        effect,
    })
}

/// The ledger state once the charge's own effect is added to what the rest of the event did.
pub(super) fn with_charge(state: LedgerState, charge: Option<&ChargeUpdate>) -> LedgerState {
    match (state, charge.map(|c| c.effect)) {
        (_, Some(Effect::Applied)) => LedgerState::Applied,
        (LedgerState::Ignored, Some(Effect::Stale)) => LedgerState::Stale,
        (state, _) => state,
    }
}

/// What an audit entry says about a charge: its id, refunded total and disputes' statuses
/// (never a card detail: the item holds none).
pub(super) fn audit_part(charge: Option<&Charge>) -> serde_json::Value {
    charge.map_or(serde_json::Value::Null, |c| {
        let disputes: serde_json::Map<String, serde_json::Value> = c
            .disputes
            .iter()
            .map(|(id, d)| (id.clone(), json!(d.status())))
            .collect();
        json!({"id": c.id, "refunded": c.refunded_total(), "disputes": disputes})
    })
}

/// Adds the charge's item to a commit (when it changed) and its state to the audit entries.
pub(super) fn attach_charge(commit: &mut Commit, update: Option<ChargeUpdate>) {
    let Some(update) = update.filter(|u| u.effect == Effect::Applied) else {
        return;
    };
    for audit in &mut commit.audit {
        audit.before["charge"] = audit_part(update.before.as_ref());
        audit.after["charge"] = audit_part(Some(&update.after));
    }
    commit.charge = Some((update.after, update.rev));
}
