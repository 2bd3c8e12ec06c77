//! The catalogue: one product with its prices, and how one product, price or plan event
//! changes it.
//!
//! A product is an aggregate of its own (catalogue events name no customer): the unit of one
//! consistent read and one conditional commit, like a customer. Each piece is versioned by
//! itself, so events of a product and of its prices may arrive in any order: the product's own
//! fields, and per price the snapshots from `price.*` and from `plan.*` (Stripe's legacy object
//! for the same recurring price, sent beside it), each a [`Newest`] second of snapshots; and a
//! deletion register per piece, which is final. A price event for a product not seen yet
//! creates the aggregate with only that price known.
//!
//! The state is a join of the events seen, and [`CatalogueEntry::view`] a pure function of it,
//! so any delivery order of the same events gives the same view.

use super::customer::Effect;
use super::events::{
    CatalogueChange, CatalogueEvent, EventMeta, OrderEvidence, PriceBilling, PriceObject,
    PriceSnapshot, ProductSnapshot,
};
use super::ids::{PriceId, ProductId, Provider};
use super::newest::{rank, Newest, Pick, Stamped};
use super::version::{Offer, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the model keeps about one price: the newest snapshots of each shape, and its deletion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRecord {
    /// From `price.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Newest<PriceSnapshot>>,
    /// From `plan.*` events: the same price as the legacy plan object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Newest<PriceSnapshot>>,
    /// The newest deletion (`price.deleted` or `plan.deleted`): final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Version>,
}

impl PriceRecord {
    /// The price's current snapshot: the newer of the two shapes by (second, rank), the price
    /// object on a tie (it is the fuller one). A plan has no lookup key, so a plan snapshot
    /// keeps the one the price events gave.
    pub fn current(&self) -> Option<(PriceSnapshot, bool)> {
        let price = self.price.as_ref().and_then(Newest::latest);
        let plan = self.plan.as_ref().and_then(Newest::latest);
        let key = |p: &Pick<'_, PriceSnapshot>| (p.stamped.version.created, p.stamped.version.rank);
        match (price, plan) {
            (Some(p), Some(q)) if key(&q) > key(&p) => {
                let mut value = q.stamped.value.clone();
                value.lookup_key = p.stamped.value.lookup_key.clone();
                Some((value, q.resolved))
            }
            (Some(p), _) => Some((p.stamped.value.clone(), p.resolved)),
            (None, Some(q)) => Some((q.stamped.value.clone(), q.resolved)),
            (None, None) => None,
        }
    }
}

/// Everything the model knows about one catalogue product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub provider: Provider,
    pub product: ProductId,
    /// From `product.*` events; absent while only prices of it have arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Newest<ProductSnapshot>>,
    /// `product.deleted`: final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Version>,
    #[serde(default)]
    pub prices: BTreeMap<PriceId, PriceRecord>,
}

/// Whether a product is bought as a subscription or once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    Subscription,
    OneTime,
}

/// A price as the read route shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub id: PriceId,
    pub active: bool,
    /// Deleted (or its product deleted): it can never be bought again.
    pub archived: bool,
    pub currency: String,
    /// Minor units of `currency`.
    pub unit_amount: Option<i64>,
    /// `type`: `one_time`, or `recurring` with `interval` and `interval_count`.
    #[serde(flatten)]
    pub billing: PriceBilling,
    pub tier: Option<String>,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
}

/// A product as the read route shows it: the model's answer, derived from the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub provider: Provider,
    pub id: ProductId,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `None` while no event about the product itself arrived (only its prices are known).
    pub active: Option<bool>,
    /// Deleted: final.
    pub archived: bool,
    /// `None` while no price of it is known.
    pub kind: Option<ProductKind>,
    pub tier: Option<String>,
    pub prices: BTreeMap<PriceId, Price>,
}

/// The kind the prices give: a recurring price makes a subscription product (also when it has
/// one-time prices beside, e.g. a setup fee: each price keeps its own `type`); only one-time
/// prices make a one-time purchase. Archived prices count only when every price is archived,
/// so a product keeps the kind it was sold as.
pub fn kind_of<'a>(prices: impl IntoIterator<Item = &'a Price>) -> Option<ProductKind> {
    let all: Vec<&Price> = prices.into_iter().collect();
    let live: Vec<&Price> = all.iter().copied().filter(|p| !p.archived).collect();
    let pool = if live.is_empty() { all } else { live };
    if pool
        .iter()
        .any(|p| matches!(p.billing, PriceBilling::Recurring { .. }))
    {
        Some(ProductKind::Subscription)
    } else if pool.is_empty() {
        None
    } else {
        Some(ProductKind::OneTime)
    }
}

/// A deletion register: keeps the newest deletion version.
fn delete(slot: &mut Option<Version>, version: &Version) -> Offer {
    match slot {
        Some(v) if *v == *version => Offer::Same,
        Some(v) if *v > *version => Offer::Older,
        _ => {
            *slot = Some(version.clone());
            Offer::Taken
        }
    }
}

/// Offers a snapshot to one piece (and, for a deletion, to its deletion register).
fn offer_piece<T>(
    snapshots: &mut Option<Newest<T>>,
    deleted: &mut Option<Version>,
    change: CatalogueChange,
    stamped: Stamped<T>,
) -> Effect {
    let version = stamped.version.clone();
    let mut offers = vec![snapshots.get_or_insert_with(Newest::default).offer(stamped)];
    if change == CatalogueChange::Deleted {
        offers.push(delete(deleted, &version));
    }
    if offers.contains(&Offer::Taken) {
        Effect::Applied
    } else {
        Effect::Stale
    }
}

fn stamp<T: Clone>(
    meta: &EventMeta,
    change: CatalogueChange,
    value: &T,
    evidence: &OrderEvidence,
) -> Stamped<T> {
    Stamped {
        version: Version::of(meta, rank(change)),
        value: value.clone(),
        evidence: evidence.clone(),
    }
}

impl CatalogueEntry {
    pub fn new(provider: Provider, product: ProductId) -> Self {
        Self {
            provider,
            product,
            details: None,
            deleted: None,
            prices: BTreeMap::new(),
        }
    }

    /// Applies one catalogue event. Pure: the result depends only on the set of events seen.
    /// An event about another product is ignored (the pipeline never sends one).
    pub fn apply(&mut self, meta: &EventMeta, event: &CatalogueEvent) -> Effect {
        if event.product() != &self.product {
            return Effect::Ignored;
        }
        match event {
            CatalogueEvent::Product {
                change,
                snapshot,
                evidence,
            } => offer_piece(
                &mut self.details,
                &mut self.deleted,
                *change,
                stamp(meta, *change, snapshot, evidence),
            ),
            CatalogueEvent::Price {
                change,
                object,
                snapshot,
                evidence,
            } => {
                let record = self.prices.entry(snapshot.id.clone()).or_default();
                let shape = match object {
                    PriceObject::Price => &mut record.price,
                    PriceObject::Plan => &mut record.plan,
                };
                offer_piece(
                    shape,
                    &mut record.deleted,
                    *change,
                    stamp(meta, *change, snapshot, evidence),
                )
            }
        }
    }

    /// The piece `event` addresses when the events of its newest second could not order
    /// themselves: its id (the state chosen is deterministic, but may not be the provider's).
    pub fn unresolved(&self, event: &CatalogueEvent) -> Option<String> {
        let resolved = match event {
            CatalogueEvent::Product { .. } => self.details.as_ref()?.latest()?.resolved,
            CatalogueEvent::Price { snapshot, .. } => self.prices.get(&snapshot.id)?.current()?.1,
        };
        (!resolved).then(|| match event {
            CatalogueEvent::Product { snapshot, .. } => snapshot.id.to_string(),
            CatalogueEvent::Price { snapshot, .. } => snapshot.id.to_string(),
        })
    }

    /// The product as the model answers it.
    pub fn view(&self) -> Product {
        let archived = self.deleted.is_some();
        let details = self
            .details
            .as_ref()
            .and_then(Newest::latest)
            .map(|p| &p.stamped.value);
        let prices: BTreeMap<PriceId, Price> = self
            .prices
            .iter()
            .filter_map(|(id, record)| {
                let (s, _) = record.current()?;
                Some((
                    id.clone(),
                    Price {
                        id: id.clone(),
                        active: s.active,
                        archived: archived || record.deleted.is_some(),
                        currency: s.currency,
                        unit_amount: s.unit_amount,
                        billing: s.billing,
                        tier: s.tier,
                        nickname: s.nickname,
                        lookup_key: s.lookup_key,
                    },
                ))
            })
            .collect();
        Product {
            provider: self.provider,
            id: self.product.clone(),
            name: details.and_then(|d| d.name.clone()),
            description: details.and_then(|d| d.description.clone()),
            active: details.map(|d| d.active),
            archived,
            kind: kind_of(prices.values()),
            tier: details.and_then(|d| d.tier.clone()),
            prices,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::EventId;

    const PRODUCT: &str = "prod_t";

    fn meta(id: &str, created: i64) -> EventMeta {
        EventMeta {
            provider: Provider::Stripe,
            id: EventId::new(id),
            event_type: "price.updated".into(),
            created,
            millis: 0,
            livemode: false,
            api_version: None,
        }
    }

    fn product(name: &str, active: bool) -> ProductSnapshot {
        ProductSnapshot {
            id: ProductId::new(PRODUCT),
            name: Some(name.into()),
            description: None,
            active,
            tier: Some("pro".into()),
        }
    }

    fn price(id: &str, billing: PriceBilling, active: bool) -> PriceSnapshot {
        PriceSnapshot {
            id: PriceId::new(id),
            product: ProductId::new(PRODUCT),
            active,
            currency: "usd".into(),
            unit_amount: Some(1500),
            billing,
            tier: None,
            nickname: None,
            lookup_key: Some(format!("{id}_key")),
        }
    }

    fn monthly() -> PriceBilling {
        PriceBilling::Recurring {
            interval: "month".into(),
            interval_count: 1,
        }
    }

    fn price_event(
        change: CatalogueChange,
        object: PriceObject,
        snapshot: PriceSnapshot,
    ) -> CatalogueEvent {
        CatalogueEvent::Price {
            change,
            object,
            snapshot,
            evidence: OrderEvidence::default(),
        }
    }

    fn product_event(change: CatalogueChange, snapshot: ProductSnapshot) -> CatalogueEvent {
        CatalogueEvent::Product {
            change,
            snapshot,
            evidence: OrderEvidence::default(),
        }
    }

    fn entry() -> CatalogueEntry {
        CatalogueEntry::new(Provider::Stripe, ProductId::new(PRODUCT))
    }

    #[test]
    fn a_price_event_creates_the_product_with_only_that_price() {
        let mut e = entry();
        let created = price_event(
            CatalogueChange::Created,
            PriceObject::Price,
            price("price_a", monthly(), true),
        );
        assert_eq!(e.apply(&meta("evt_1", 10), &created), Effect::Applied);
        let view = e.view();
        assert_eq!((view.name, view.active, view.archived), (None, None, false));
        assert_eq!(view.kind, Some(ProductKind::Subscription));
        assert_eq!(view.prices.len(), 1);
        assert_eq!(
            e.apply(&meta("evt_1", 10), &created),
            Effect::Stale,
            "redelivery"
        );
        // The product's own event fills in its fields, whichever came first.
        let p = product_event(CatalogueChange::Created, product("Pro", true));
        assert_eq!(e.apply(&meta("evt_0", 5), &p), Effect::Applied);
        let view = e.view();
        assert_eq!(
            (view.name.as_deref(), view.active),
            (Some("Pro"), Some(true))
        );
    }

    #[test]
    fn kind_follows_the_live_prices() {
        let mut e = entry();
        assert_eq!(e.view().kind, None);
        let once = price("price_once", PriceBilling::OneTime, true);
        e.apply(
            &meta("evt_1", 10),
            &price_event(CatalogueChange::Created, PriceObject::Price, once),
        );
        assert_eq!(e.view().kind, Some(ProductKind::OneTime));
        // A recurring price beside a one-time one (a setup fee): a subscription product.
        let sub = price("price_sub", monthly(), true);
        e.apply(
            &meta("evt_2", 11),
            &price_event(CatalogueChange::Created, PriceObject::Price, sub.clone()),
        );
        assert_eq!(e.view().kind, Some(ProductKind::Subscription));
        // Its deletion leaves only the one-time price live.
        e.apply(
            &meta("evt_3", 12),
            &price_event(CatalogueChange::Deleted, PriceObject::Plan, sub),
        );
        assert_eq!(e.view().kind, Some(ProductKind::OneTime));
    }

    /// A deletion is final: no later or older event about the price or product undoes it, and
    /// a plan event never undoes a price deletion.
    #[test]
    fn a_deletion_is_final_in_any_order() {
        let events = [
            (
                meta("evt_a", 10),
                price_event(
                    CatalogueChange::Created,
                    PriceObject::Price,
                    price("price_a", monthly(), true),
                ),
            ),
            (
                meta("evt_b", 20),
                price_event(
                    CatalogueChange::Deleted,
                    PriceObject::Price,
                    price("price_a", monthly(), false),
                ),
            ),
            (
                meta("evt_c", 30),
                price_event(
                    CatalogueChange::Updated,
                    PriceObject::Plan,
                    price("price_a", monthly(), true),
                ),
            ),
            (
                meta("evt_d", 25),
                product_event(CatalogueChange::Deleted, product("Pro", false)),
            ),
            (
                meta("evt_e", 40),
                product_event(CatalogueChange::Updated, product("Pro again", true)),
            ),
        ];
        for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1]] {
            let mut e = entry();
            for i in order {
                e.apply(&events[i].0, &events[i].1);
            }
            let view = e.view();
            assert!(view.archived, "{order:?}");
            assert!(view.prices[&PriceId::new("price_a")].archived, "{order:?}");
        }
    }

    /// `plan.*` and `price.*` describe one price: the newer wins, the price on a tie, and the
    /// lookup key (which plans lack) is kept from the price events.
    #[test]
    fn plan_and_price_twins_make_one_price() {
        let mut renamed = price("price_a", monthly(), true);
        renamed.nickname = Some("Monthly".into());
        let mut plan_view = renamed.clone();
        plan_view.lookup_key = None;
        let events = [
            (
                meta("evt_p1", 10),
                price_event(
                    CatalogueChange::Created,
                    PriceObject::Price,
                    price("price_a", monthly(), true),
                ),
            ),
            (
                meta("evt_q1", 10),
                price_event(CatalogueChange::Created, PriceObject::Plan, {
                    let mut p = price("price_a", monthly(), true);
                    p.lookup_key = None;
                    p
                }),
            ),
            (
                meta("evt_q2", 21),
                price_event(CatalogueChange::Updated, PriceObject::Plan, plan_view),
            ),
            (
                meta("evt_p2", 20),
                price_event(CatalogueChange::Updated, PriceObject::Price, renamed),
            ),
        ];
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 2, 0, 3]] {
            let mut e = entry();
            for i in order {
                e.apply(&events[i].0, &events[i].1);
            }
            let p = &e.view().prices[&PriceId::new("price_a")];
            assert_eq!(p.nickname.as_deref(), Some("Monthly"), "{order:?}");
            assert_eq!(p.lookup_key.as_deref(), Some("price_a_key"), "{order:?}");
        }
    }

    #[test]
    fn an_event_about_another_product_changes_nothing() {
        let mut e = entry();
        let mut other = price("price_x", monthly(), true);
        other.product = ProductId::new("prod_other");
        let before = e.clone();
        let event = price_event(CatalogueChange::Created, PriceObject::Price, other);
        assert_eq!(e.apply(&meta("evt_1", 1), &event), Effect::Ignored);
        assert_eq!(e, before);
    }

    /// Every catalogue event rewrites its product's item: what a product with many prices
    /// costs (README quotes the figure). 100 recurring prices, each with its plan twin.
    #[test]
    fn a_product_with_a_hundred_twinned_prices_fits_in_one_item() {
        let mut e = entry();
        for i in 0..100 {
            for (object, prefix) in [(PriceObject::Price, "evt_p"), (PriceObject::Plan, "evt_q")] {
                let mut s = price(&format!("price_1QxYzAbCdEfGhIjK{i:04}"), monthly(), true);
                s.nickname = Some("Pro monthly".into());
                s.tier = Some("pro".into());
                let evidence = crate::providers::evidence::snapshot_evidence(&s, None);
                let event = CatalogueEvent::Price {
                    change: CatalogueChange::Created,
                    object,
                    snapshot: s,
                    evidence,
                };
                let id = format!("{prefix}_1QxYzAbCdEfGhIjKlMnO{i:04}");
                assert_eq!(e.apply(&meta(&id, 1_760_000_000), &event), Effect::Applied);
            }
        }
        let bytes = serde_json::to_vec(&e).expect("json").len();
        eprintln!("a product with 100 twinned prices: {bytes} bytes");
        assert!(bytes < 200 * 1024, "{bytes} bytes");
    }
}
