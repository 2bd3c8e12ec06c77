//! Record once and apply, for a catalogue event: the product's aggregate in place of a
//! customer's, with the same single consistent read and single conditional commit (ledger
//! record, aggregate at the revision it was read at, audit entry). A catalogue change belongs to
//! no user, so it writes no user document and no feed message.

use super::record::{ledger_state, seen, Attempted, Verified};
use super::Pipeline;
use crate::domain::catalogue::CatalogueEntry;
use crate::domain::events::{BillingEvent, CatalogueEvent};
use crate::domain::ids::ProductId;
use crate::ports::{CatalogueAudit, Commit, LedgerGuard, LedgerState, ProductWrite, StoreError};
use crate::telemetry::Counter;
use serde_json::{json, Value};

impl Pipeline {
    /// One read-decide-commit attempt on `product`'s aggregate.
    pub(super) async fn attempt_product(
        &self,
        v: &Verified<'_>,
        guard: LedgerGuard,
        product: &ProductId,
    ) -> Result<Attempted, StoreError> {
        let BillingEvent::Catalogue(event) = &v.event else {
            // `BillingEvent::aggregate` names a product for catalogue events only.
            return Err(StoreError::Refused("not a catalogue event".into()));
        };
        let provider = v.meta.provider;
        let loaded = self
            .store
            .load_product(provider, &v.meta.id, product)
            .await?;
        if seen(loaded.ledger.as_ref(), guard) {
            return Ok(Attempted::SeenInLedger);
        }
        let (before, rev) = match loaded.product {
            Some(s) => (s.value, Some(s.rev)),
            None => (CatalogueEntry::new(provider, product.clone()), None),
        };
        let mut after = before.clone();
        let state = ledger_state(after.apply(&v.meta, event));
        if state != LedgerState::Applied {
            let record = self.ledger_record(v, state, None);
            self.store
                .commit(&Commit::ledger_only(record, guard))
                .await?;
            return Ok(Attempted::Recorded(state));
        }
        let unresolved: Vec<String> = after.unresolved(event).into_iter().collect();
        for piece in &unresolved {
            tracing::warn!(event_id = %v.meta.id, %piece, "same-second catalogue events could not be ordered; the choice is deterministic");
        }
        let audit = CatalogueAudit {
            provider,
            product: product.clone(),
            event_id: v.meta.id.clone(),
            event_type: v.meta.event_type.clone(),
            created: v.meta.created,
            received_at: self.clock.now(),
            before: addressed(&before, event),
            after: addressed(&after, event),
            unresolved_ties: unresolved,
        };
        let ties = !audit.unresolved_ties.is_empty();
        let commit = Commit {
            product: Some(ProductWrite {
                entry: after,
                rev,
                audit,
            }),
            ..Commit::ledger_only(self.ledger_record(v, LedgerState::Applied, None), guard)
        };
        self.store.commit(&commit).await?;
        if ties {
            self.metrics
                .incr(Counter::TiesUnresolved, v.delivery.family.as_str());
        }
        Ok(Attempted::Recorded(LedgerState::Applied))
    }
}

/// The piece of the product an event addresses, as the read route shows it: the product's own
/// fields, or the one price (`null` while unknown).
fn addressed(entry: &CatalogueEntry, event: &CatalogueEvent) -> Value {
    let view = entry.view();
    match event {
        CatalogueEvent::Product { .. } => json!({
            "name": view.name,
            "description": view.description,
            "active": view.active,
            "archived": view.archived,
            "tier": view.tier,
            "kind": view.kind,
        }),
        CatalogueEvent::Price { snapshot, .. } => {
            json!(view.prices.get(&snapshot.id))
        }
    }
}
