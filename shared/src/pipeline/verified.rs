//! An event on its way through the second half: verified, read and translated; and the small
//! verdicts every step shares.

use super::service::Delivery;
use crate::domain::customer::Effect;
use crate::domain::events::{BillingEvent, EventMeta};
use crate::domain::ids::CustomerId;
use crate::ports::{LedgerGuard, LedgerRecord, LedgerState};

/// What one read-decide-commit attempt did.
pub(super) enum Attempted {
    Recorded(LedgerState),
    /// The read found the event already recorded: nothing written.
    SeenInLedger,
    /// A customer-less event's charge is bound to this customer: read again with it.
    Bound(CustomerId),
}

/// An event ready to apply: verified, read and translated.
pub(super) struct Verified<'a> {
    pub meta: EventMeta,
    pub event: BillingEvent,
    pub delivery: &'a Delivery<'a>,
}

/// Whether the read shows the event already recorded: any record for a new delivery; for a
/// replay, a record that is no longer parked (or none at all).
pub(super) fn seen(ledger: Option<&LedgerRecord>, guard: LedgerGuard) -> bool {
    match (ledger, guard) {
        (Some(_), LedgerGuard::New) | (None, LedgerGuard::ReplaceParked) => true,
        (Some(rec), LedgerGuard::ReplaceParked) => rec.state != LedgerState::Parked,
        (None, LedgerGuard::New) => false,
    }
}

/// The ledger state an aggregate's verdict is recorded in.
pub(super) fn ledger_state(effect: Effect) -> LedgerState {
    match effect {
        Effect::Applied => LedgerState::Applied,
        Effect::Stale => LedgerState::Stale,
        Effect::Ignored => LedgerState::Ignored,
    }
}
