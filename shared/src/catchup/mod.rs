//! Catching up with a provider: the pieces `billing import`, `billing backfill` and the
//! scheduled `reconcile` share.
//!
//! Contract:
//! - bodies fetched from the provider's API with our key enter through
//!   [`crate::pipeline::Pipeline::receive_trusted`]: the same ledger, ordering, parking,
//!   projection, outbox and emails as a webhook delivery, minus the signature check;
//! - a job's progress per object kind is a [`Checkpoint`] in the table (`CATCHUP#{provider}#{job}`,
//!   `KIND#{kind}`), written through the [`crate::ports::CheckpointStore`] port by a
//!   conditional write on its `rev`, after each page: a job cut off anywhere starts again from
//!   its last stored cursor, and the ledger makes the objects it re-reads duplicates;
//! - [`Tally`] counts what the pipeline did with each body (applied, unchanged, parked,
//!   rejected); [`progress::Progress`] reports it while the job runs and in its summary;
//! - [`snapshot::snapshot_event`] wraps an object read from a list endpoint as the event that
//!   carries it as a snapshot at fetch time, with an id that is its content (import, reconcile);
//! - [`dry_run::DryRunStore`] lets a job read the real table and write nothing;
//! - [`import`] is `billing import`'s engine.

pub mod checkpoint;
pub mod dry_run;
pub mod import;
pub mod progress;
pub mod snapshot;

pub use checkpoint::{Checkpoint, Tally};

use crate::pipeline::{Outcome, Pipeline};
use crate::ports::LedgerState;
use crate::routing::Endpoint;
use std::time::Duration;

/// Attempts of one body when the store answers a transient failure.
const FEED_ATTEMPTS: u32 = 5;

/// Feeds one trusted body to `pipeline` and counts its outcome in `tally`. A transient failure
/// (`Unavailable`) is tried again, up to `FEED_ATTEMPTS` with a growing pause (the same event
/// id, so nothing applies twice); after that the job must stop without advancing its
/// checkpoint: `Err` says why.
pub async fn feed(
    pipeline: &Pipeline,
    endpoint: Endpoint,
    body: &[u8],
    tally: &mut Tally,
) -> Result<Outcome, String> {
    let mut attempt = 1;
    loop {
        let outcome = pipeline.receive_trusted(endpoint, body).await;
        match &outcome {
            Outcome::Unavailable(e) if attempt < FEED_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "store unavailable; feeding the body again");
                tokio::time::sleep(Duration::from_millis(200u64 << attempt)).await;
                attempt += 1;
            }
            _ => {
                tally.record(&outcome)?;
                return Ok(outcome);
            }
        }
    }
}

impl Tally {
    /// Counts one outcome; `Err` for a transient failure (`Unavailable`), which the job must
    /// stop on (the checkpoint then still names the page before).
    pub fn record(&mut self, outcome: &Outcome) -> Result<(), String> {
        match outcome {
            Outcome::Recorded {
                state: LedgerState::Applied,
                ..
            } => self.applied += 1,
            Outcome::Recorded {
                state: LedgerState::Parked,
                ..
            } => self.parked += 1,
            Outcome::Recorded { .. } | Outcome::Duplicate { .. } => self.unchanged += 1,
            Outcome::Rejected(_) => self.rejected += 1,
            Outcome::Unavailable(e) => return Err(e.to_string()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Rejection};
    use crate::ports::StoreError;

    #[test]
    fn outcomes_are_counted_and_a_transient_failure_stops() {
        let mut t = Tally::default();
        let rec = |state| Outcome::Recorded {
            event_id: "e".into(),
            state,
        };
        for o in [
            rec(LedgerState::Applied),
            rec(LedgerState::Stale),
            rec(LedgerState::Ignored),
            rec(LedgerState::Parked),
            Outcome::Duplicate {
                event_id: "e".into(),
                by: crate::pipeline::DuplicateBy::Read,
            },
            Outcome::Rejected(Rejection::UnknownProvider("x".into())),
        ] {
            t.record(&o).expect("counted");
        }
        assert_eq!(
            t,
            Tally {
                applied: 1,
                unchanged: 3,
                parked: 1,
                rejected: 1
            }
        );
        assert_eq!(t.total(), 6);
        let down = Outcome::Unavailable(Error::Store(StoreError::Unavailable("x".into())));
        assert!(t.record(&down).is_err());
        assert_eq!(t.total(), 6);
    }
}
