//! Record once and apply, for a catalogue event: the product's pieces in place of a customer's
//! aggregate, with the same single consistent read (ledger record, the product's own record,
//! the event's price) and single conditional commit (ledger record, each piece it changed at
//! the revision it was read at, audit entry). A price event writes one price, and the product's
//! own record only when the price counts move, so its cost does not grow with the product's
//! prices. A catalogue change belongs to no user, so it writes no user document and no feed
//! message.

use super::service::Pipeline;
use super::verified::{ledger_state, seen, Attempted, Verified};
use crate::domain::catalogue::{Pieces, ProductRecord};
use crate::domain::events::{BillingEvent, CatalogueEvent};
use crate::domain::ids::ProductId;
use crate::ports::{
    CatalogueAudit, Commit, LedgerGuard, LedgerState, PriceWrite, ProductWrite, StoreError,
};
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
        let price = match event {
            CatalogueEvent::Price { snapshot, .. } => Some(&snapshot.id),
            CatalogueEvent::Product { .. } => None,
        };
        let loaded = self
            .store
            .load_product(provider, &v.meta.id, product, price)
            .await?;
        if seen(loaded.ledger.as_ref(), guard) {
            return Ok(Attempted::SeenInLedger);
        }
        let (own, own_rev) = match loaded.product {
            Some(s) => (s.value, Some(s.rev)),
            None => (ProductRecord::new(provider, product.clone()), None),
        };
        let price_rev = loaded.price.as_ref().map(|s| s.rev);
        let before = Pieces::for_event(own, loaded.price.map(|s| s.value), event);
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
        // The product's own record is written (and its revision checked) only when it moved:
        // price events that keep the counts never contend on it.
        let own = (after.product != before.product).then(|| (after.product.clone(), own_rev));
        let price = after.price.map(|(id, record)| PriceWrite {
            id,
            record,
            rev: price_rev,
        });
        let commit = Commit {
            product: Some(ProductWrite {
                provider,
                product: product.clone(),
                own,
                price,
                audit,
            }),
            ..Commit::ledger_only(self.ledger_record(v, LedgerState::Applied, None), guard)
        };
        self.store.commit(&commit).await?;
        if ties {
            self.metrics
                .incr(Counter::TiesUnresolved, v.delivery.endpoint);
        }
        Ok(Attempted::Recorded(LedgerState::Applied))
    }
}

/// The piece of the product an event addresses, as the read route shows it: the product's own
/// fields, or the one price (`null` while unknown).
fn addressed(pieces: &Pieces, event: &CatalogueEvent) -> Value {
    let view = pieces.view();
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
