//! Parking and replay: a validly signed event the code cannot read or apply is kept with its
//! bytes (200, counted, alarmed) and re-applied later through the same second half.

use super::service::{Delivery, DuplicateBy, Outcome, Pipeline};
use crate::digest::{gunzip, gzip, sha256_hex};
use crate::domain::events::EventMeta;
use crate::domain::ids::{CustomerId, EventId, Provider};
use crate::error::Error;
use crate::ports::{Commit, LedgerGuard, LedgerRecord, LedgerState, ParkedBody, StoreError};
use crate::providers::seam::{ReadError, ReadEvent};
use crate::telemetry::Counter;

/// Compressed bodies above this are not stored in the ledger item (DynamoDB caps items at
/// 400 KB); the record keeps the hash and the event must be re-sent from Stripe to replay.
pub const MAX_PARKED_GZIP_BYTES: usize = 300 * 1024;

impl Pipeline {
    /// Reads the envelope; a signed body that is not an event is parked under its hash.
    pub(super) async fn read_or_park(
        &self,
        delivery: &Delivery<'_>,
        guard: LedgerGuard,
    ) -> Result<ReadEvent, Outcome> {
        match delivery.provider.read(delivery.raw) {
            Ok(read) => Ok(read),
            Err(ReadError::Rejected(r)) => Err(Outcome::Rejected(r)),
            Err(ReadError::Unreadable(why)) => Err(self.park_unread(delivery, &why, guard).await),
        }
    }

    /// Parks a signed body that has no readable id under its hash.
    pub(super) async fn park_unread(
        &self,
        delivery: &Delivery<'_>,
        why: &str,
        guard: LedgerGuard,
    ) -> Outcome {
        let meta = EventMeta {
            provider: delivery.provider.id(),
            id: unparsed_id(delivery.raw),
            event_type: "unknown".into(),
            created: 0,
            millis: 0,
            livemode: false,
            api_version: None,
        };
        self.park(delivery, &meta, None, why, guard).await
    }

    /// Records a validly signed event that cannot be translated or applied, with its bytes.
    /// On arrival (`New`) the record must not exist; on a replay (`ReplaceParked`) it is
    /// rewritten with the newest reason, and stays parked. `reason` never holds stored values.
    pub(super) async fn park(
        &self,
        delivery: &Delivery<'_>,
        meta: &EventMeta,
        customer: Option<CustomerId>,
        reason: &str,
        guard: LedgerGuard,
    ) -> Outcome {
        tracing::warn!(event_id = %meta.id, event_type = %meta.event_type, reason, "parking event");
        let record = LedgerRecord {
            provider: meta.provider,
            event_id: meta.id.clone(),
            event_type: meta.event_type.clone(),
            created: meta.created,
            livemode: meta.livemode,
            state: LedgerState::Parked,
            family: delivery.endpoint.to_owned(),
            received_at: self.clock.now(),
            customer,
            detail: Some(reason.to_owned()),
            parked: Some(parked_body(delivery.raw, delivery.signed_at)),
        };
        let result = self.store.commit(&Commit::ledger_only(record, guard)).await;
        self.finish(meta.id.as_str(), result.map(|()| LedgerState::Parked))
    }

    /// Re-applies a parked event through the same pipeline (no signature check: it was
    /// verified when it arrived). Idempotent: a record that is no longer parked is left alone.
    pub async fn replay(&self, provider: Provider, event_id: &EventId) -> Outcome {
        let outcome = self.replay_inner(provider, event_id).await;
        if matches!(outcome, Outcome::Recorded { .. }) {
            self.metrics
                .incr(Counter::Replayed, crate::telemetry::REPLAY_DIMENSION);
        }
        outcome
    }

    async fn replay_inner(&self, provider: Provider, event_id: &EventId) -> Outcome {
        let id = event_id.to_string();
        let gone = |why: String| Outcome::Unavailable(Error::Store(StoreError::Unavailable(why)));
        let Some(source) = self.providers.get(&provider.base()) else {
            return gone(format!("no provider {provider} configured"));
        };
        let record = match self.store.ledger(provider, event_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return gone(format!("no record of {id}")),
            Err(e) => return Outcome::Unavailable(e.into()),
        };
        let Some(parked) = record
            .parked
            .filter(|_| record.state == LedgerState::Parked)
        else {
            return Outcome::Duplicate {
                event_id: id,
                by: DuplicateBy::Read,
            };
        };
        let Some(raw) = parked.gzip.as_deref().and_then(gunzip) else {
            return gone(format!(
                "{id}: body not stored; resend it from the provider"
            ));
        };
        let delivery = Delivery {
            provider: source.as_ref(),
            endpoint: &record.family,
            raw: &raw,
            signed_at: parked.signed_at,
        };
        // A parked notification (its event not found then) is resolved again now.
        let resolved = match self.endpoint_named(provider, &record.family) {
            Some(endpoint) => {
                match self
                    .resolve(&delivery, endpoint, LedgerGuard::ReplaceParked)
                    .await
                {
                    Ok(resolved) => resolved,
                    Err(outcome) => return outcome,
                }
            }
            None => None,
        };
        let delivery = Delivery {
            raw: resolved.as_deref().unwrap_or(raw.as_slice()),
            ..delivery
        };
        let read = match self
            .read_or_park(&delivery, LedgerGuard::ReplaceParked)
            .await
        {
            Ok(read) => read,
            Err(parked) => return parked,
        };
        if read.meta.id != *event_id {
            // Parked under its body's hash when it could not be read; now it reads as another
            // id. Have the provider resend it: it will be recorded under its own id.
            return gone(format!(
                "{id} now reads as {}: resend it from the provider",
                read.meta.id
            ));
        }
        self.translate_and_apply(&delivery, read, LedgerGuard::ReplaceParked)
            .await
    }
}

/// The ledger key of a signed body that has no readable id.
fn unparsed_id(raw: &[u8]) -> EventId {
    EventId::new(format!("unparsed_{}", &sha256_hex(raw)[..32]))
}

fn parked_body(raw: &[u8], signed_at: i64) -> ParkedBody {
    let gzip = gzip(raw).filter(|g| g.len() <= MAX_PARKED_GZIP_BYTES);
    ParkedBody {
        gzip,
        sha256: sha256_hex(raw),
        len: raw.len(),
        signed_at,
    }
}
