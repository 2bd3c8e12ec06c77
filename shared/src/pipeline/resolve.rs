//! Resolving a notification: a verified body that names an event instead of carrying it (Stripe's
//! thin events) becomes the event the provider fetched, before anything reads it. The rest of the
//! way is the same as a delivery's: ledger, ordering, parking.

use super::service::{Delivery, Outcome, Pipeline};
use crate::error::Error;
use crate::ports::LedgerGuard;
use crate::providers::seam::Resolved;
use crate::routing::Endpoint;

impl Pipeline {
    /// The bytes to read for `delivery` at `endpoint`: `None` for the body itself, the fetched
    /// event otherwise. A transient fetch failure answers 503 with nothing written; an
    /// unresolvable notification is parked (200, its bytes kept for `billing replay`).
    pub(super) async fn resolve(
        &self,
        delivery: &Delivery<'_>,
        endpoint: Endpoint,
        guard: LedgerGuard,
    ) -> Result<Option<Vec<u8>>, Outcome> {
        if guard == LedgerGuard::New {
            self.already_recorded(delivery, endpoint).await?;
        }
        match delivery.provider.resolve(endpoint, delivery.raw).await {
            Ok(Resolved::Body) => Ok(None),
            Ok(Resolved::Event(body)) => Ok(Some(body)),
            Ok(Resolved::Unresolvable {
                meta: Some(meta),
                reason,
            }) => Err(self.park(delivery, &meta, None, &reason, guard).await),
            Ok(Resolved::Unresolvable { meta: None, reason }) => {
                Err(self.park_unread(delivery, &reason, guard).await)
            }
            Err(Error::Rejected(r)) => Err(Outcome::Rejected(r)),
            Err(e) => Err(self.failed(None, e)),
        }
    }

    /// A notification whose event the ledger already holds is a duplicate, answered without
    /// fetching it again (Stripe redelivers until it gets a 2xx).
    async fn already_recorded(
        &self,
        delivery: &Delivery<'_>,
        endpoint: Endpoint,
    ) -> Result<(), Outcome> {
        let Some((provider, id)) = delivery.provider.notified_event(endpoint, delivery.raw) else {
            return Ok(());
        };
        // The pipeline's own consistent first read (the ledger record alone), so this adds no
        // other call to what a webhook function may do.
        let loaded = self
            .store
            .load(provider, &id, None, None, crate::ports::Beside::Nothing)
            .await;
        match loaded.map(|l| l.ledger) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(Outcome::Duplicate {
                event_id: id.to_string(),
                by: super::service::DuplicateBy::Read,
            }),
            Err(e) => Err(self.failed(Some(id.as_str()), e.into())),
        }
    }

    /// The endpoint a stored record arrived at, among `provider`'s routes (`None` for one that
    /// has no route, like the operator's): a replay resolves at the same endpoint.
    pub(super) fn endpoint_named(
        &self,
        provider: crate::domain::ids::Provider,
        name: &str,
    ) -> Option<Endpoint> {
        let provider = self.providers.get(&provider.base())?;
        provider
            .routes()
            .into_iter()
            .map(|r| r.endpoint)
            .find(|e| e.name == name)
    }
}
