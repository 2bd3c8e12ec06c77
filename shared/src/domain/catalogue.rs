//! The catalogue: one product with its prices, and how one product, price or plan event
//! changes it.
//!
//! A product is kept as pieces, each read and committed by itself so that nothing grows with
//! the number of prices: the product's own record ([`ProductRecord`]: its fields, its deletion
//! and how many prices of each kind it has) and one [`PriceRecord`] per price (the snapshots
//! from `price.*` and from `plan.*`, Stripe's legacy object for the same recurring price, each
//! a [`Newest`] second of snapshots (`same_second.rs`), and a deletion register, which is final). An event reads
//! the product's record and, for a price event, that one price ([`Pieces`]); a price event
//! writes the product's record only when it moves the price counts (a new price, a deletion).
//! A price event for a product not seen yet creates the product with only that price known.
//!
//! Every piece is a join of the events seen, and the views pure functions of the pieces, so
//! any delivery order of the same events gives the same pieces and the same view.

use super::customer::Effect;
use super::events::{
    CatalogueChange, CatalogueEvent, EventMeta, OrderEvidence, PriceBilling, PriceObject,
    PriceSnapshot, ProductSnapshot,
};
use super::ids::{PriceId, ProductId, Provider};
use super::same_second::{Candidate, Latest, Rule, SameSecond, Shape};
use super::version::{Offer, Version};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Same-second precedence of catalogue events: creation first, deletion last.
pub fn rank(change: CatalogueChange) -> u8 {
    match change {
        CatalogueChange::Created => 1,
        CatalogueChange::Updated => 2,
        CatalogueChange::Deleted => 3,
    }
}

/// How catalogue snapshots of one second order themselves: by the evidence kept per field of
/// the model's own snapshot (the same fields for every shape of the object), which makes it
/// exact. An update's `previous` lists every field it changed, so a field it does not list kept
/// its value: an update may come right after another exactly when the other's values are this
/// one's values before the change. Only an update reports what it replaced; a creation or a
/// deletion says nothing about what came before it. Stored bare, each snapshot as `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByField;

impl<T> Rule<T> for ByField {
    const SHAPE: Shape = Shape::Bare;
    const FIELD: &'static str = "value";

    fn may_follow(later: &Candidate<T>, earlier: &Candidate<T>) -> bool {
        later.version.rank == rank(CatalogueChange::Updated)
            && later.evidence.values.iter().all(|(field, after)| {
                let before = later.evidence.previous.get(field).unwrap_or(after);
                earlier
                    .evidence
                    .values
                    .get(field)
                    .map_or(OrderEvidence::ABSENT, String::as_str)
                    == before
            })
    }
}

/// The newest second of a catalogue object's snapshots.
pub type Newest<T> = SameSecond<T, ByField>;

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
    /// Offers one `price.*` or `plan.*` snapshot (and, for a deletion, the deletion register).
    fn offer(
        &mut self,
        meta: &EventMeta,
        change: CatalogueChange,
        object: PriceObject,
        snapshot: &PriceSnapshot,
        evidence: &OrderEvidence,
    ) -> Effect {
        let shape = match object {
            PriceObject::Price => &mut self.price,
            PriceObject::Plan => &mut self.plan,
        };
        offer_piece(
            shape,
            &mut self.deleted,
            change,
            stamp(meta, change, snapshot, evidence),
        )
    }

    /// The count this price adds to (`None` while no snapshot of it is known).
    pub fn bucket(&self) -> Option<Bucket> {
        let (s, _) = self.current()?;
        Some(Bucket {
            recurring: matches!(s.billing, PriceBilling::Recurring { .. }),
            deleted: self.deleted.is_some(),
        })
    }

    /// The price as the read route shows it; `product_deleted` archives it too.
    pub fn view(&self, id: &PriceId, product_deleted: bool) -> Option<Price> {
        let (s, _) = self.current()?;
        Some(Price {
            id: id.clone(),
            active: s.active,
            archived: product_deleted || self.deleted.is_some(),
            currency: s.currency,
            unit_amount: s.unit_amount,
            billing: s.billing,
            tier: s.tier,
            nickname: s.nickname,
            lookup_key: s.lookup_key,
        })
    }

    /// The price's current snapshot: the newer of the two shapes by (second, rank), the price
    /// object on a tie (it is the fuller one). A plan has no lookup key, so a plan snapshot
    /// keeps the one the price events gave.
    pub fn current(&self) -> Option<(PriceSnapshot, bool)> {
        let price = self.price.as_ref().and_then(Newest::latest);
        let plan = self.plan.as_ref().and_then(Newest::latest);
        let key =
            |p: &Latest<'_, PriceSnapshot>| (p.candidate.version.created, p.candidate.version.rank);
        match (price, plan) {
            (Some(p), Some(q)) if key(&q) > key(&p) => {
                let mut value = q.candidate.snapshot.clone();
                value.lookup_key = p.candidate.snapshot.lookup_key.clone();
                Some((value, q.resolved))
            }
            (Some(p), _) => Some((p.candidate.snapshot.clone(), p.resolved)),
            (None, Some(q)) => Some((q.candidate.snapshot.clone(), q.resolved)),
            (None, None) => None,
        }
    }
}

/// Which of a product's price counts one price adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub recurring: bool,
    pub deleted: bool,
}

/// How many prices of each kind a product has, live and deleted: all its kind needs, kept in
/// the product's own record so that no read or write has to see every price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceCounts {
    /// Live (not deleted) recurring prices.
    #[serde(default)]
    pub recurring: u32,
    /// Live one-time prices.
    #[serde(default)]
    pub one_time: u32,
    #[serde(default)]
    pub deleted_recurring: u32,
    #[serde(default)]
    pub deleted_one_time: u32,
}

impl PriceCounts {
    /// The counts of `prices`, each by its [`PriceRecord::bucket`].
    pub fn of<'a>(prices: impl IntoIterator<Item = &'a PriceRecord>) -> Self {
        let mut counts = Self::default();
        for p in prices {
            counts.shift(None, p.bucket());
        }
        counts
    }

    fn slot(&mut self, b: Bucket) -> &mut u32 {
        match (b.recurring, b.deleted) {
            (true, false) => &mut self.recurring,
            (false, false) => &mut self.one_time,
            (true, true) => &mut self.deleted_recurring,
            (false, true) => &mut self.deleted_one_time,
        }
    }

    /// Moves one price from the count `before` to the count `after`.
    pub fn shift(&mut self, before: Option<Bucket>, after: Option<Bucket>) {
        if before == after {
            return;
        }
        if let Some(b) = before {
            let slot = self.slot(b);
            *slot = slot.saturating_sub(1);
        }
        if let Some(a) = after {
            *self.slot(a) += 1;
        }
    }

    /// [`kind_of`] from the counts alone: a deleted product archives every price.
    pub fn kind(&self, product_deleted: bool) -> Option<ProductKind> {
        let live = if product_deleted {
            (0, 0)
        } else {
            (self.recurring, self.one_time)
        };
        let (recurring, one_time) = if live.0 + live.1 > 0 {
            live
        } else {
            (
                self.recurring + self.deleted_recurring,
                self.one_time + self.deleted_one_time,
            )
        };
        if recurring > 0 {
            Some(ProductKind::Subscription)
        } else if one_time > 0 {
            Some(ProductKind::OneTime)
        } else {
            None
        }
    }
}

/// The product's own record: its fields, its deletion, and its price counts. Its size does not
/// depend on how many prices the product has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub provider: Provider,
    pub product: ProductId,
    /// From `product.*` events; absent while only prices of it have arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Newest<ProductSnapshot>>,
    /// `product.deleted`: final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Version>,
    #[serde(default)]
    pub price_counts: PriceCounts,
}

impl ProductRecord {
    pub fn new(provider: Provider, product: ProductId) -> Self {
        Self {
            provider,
            product,
            details: None,
            deleted: None,
            price_counts: PriceCounts::default(),
        }
    }

    /// The product as the read route shows it, with `prices` (one page of them, or all); its
    /// kind comes from the counts, so it is the whole product's whichever page is shown.
    pub fn view<'a>(
        &self,
        prices: impl IntoIterator<Item = (&'a PriceId, &'a PriceRecord)>,
    ) -> Product {
        let archived = self.deleted.is_some();
        let details = self
            .details
            .as_ref()
            .and_then(Newest::latest)
            .map(|p| &p.candidate.snapshot);
        Product {
            provider: self.provider,
            id: self.product.clone(),
            name: details.and_then(|d| d.name.clone()),
            description: details.and_then(|d| d.description.clone()),
            active: details.map(|d| d.active),
            archived,
            kind: self.price_counts.kind(archived),
            tier: details.and_then(|d| d.tier.clone()),
            prices: prices
                .into_iter()
                .filter_map(|(id, record)| Some((id.clone(), record.view(id, archived)?)))
                .collect(),
        }
    }
}

/// A product's `STATE` doc as either layout writes it: the product's own record, or (the layout
/// before prices were items of their own) its fields with every price in a `prices` map and no
/// counts. Parsing every doc as this one shape tells the two apart without a second parse.
#[derive(Debug, Clone, Deserialize)]
pub struct ProductDoc {
    #[serde(flatten)]
    pub record: ProductRecord,
    /// Present (even empty) only in the old layout: its serialiser always wrote the map.
    #[serde(default)]
    pub prices: Option<BTreeMap<PriceId, PriceRecord>>,
}

impl ProductDoc {
    /// The product's record, with the counts of its old `prices` computed as the per-price
    /// layout would have counted the same events, and those prices (`None`: the new layout).
    pub fn into_parts(self) -> (ProductRecord, Option<BTreeMap<PriceId, PriceRecord>>) {
        let mut record = self.record;
        if let Some(prices) = &self.prices {
            record.price_counts = PriceCounts::of(prices.values());
        }
        (record, self.prices)
    }
}

/// What one catalogue event reads and may change: the product's own record and, for a price
/// event, that price's record (a default one while the price is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    pub product: ProductRecord,
    pub price: Option<(PriceId, PriceRecord)>,
}

impl Pieces {
    /// The pieces `event` addresses, from the records read (`price`: the event's price's).
    pub fn for_event(
        product: ProductRecord,
        price: Option<PriceRecord>,
        event: &CatalogueEvent,
    ) -> Self {
        let price = match event {
            CatalogueEvent::Product { .. } => None,
            CatalogueEvent::Price { snapshot, .. } => {
                Some((snapshot.id.clone(), price.unwrap_or_default()))
            }
        };
        Self { product, price }
    }

    /// Applies one catalogue event. Pure: each piece depends only on the set of events seen.
    /// An event about another product or price is ignored (the pipeline never sends one).
    pub fn apply(&mut self, meta: &EventMeta, event: &CatalogueEvent) -> Effect {
        if event.product() != &self.product.product {
            return Effect::Ignored;
        }
        match (event, &mut self.price) {
            (
                CatalogueEvent::Product {
                    change,
                    snapshot,
                    evidence,
                },
                _,
            ) => offer_piece(
                &mut self.product.details,
                &mut self.product.deleted,
                *change,
                stamp(meta, *change, snapshot, evidence),
            ),
            (
                CatalogueEvent::Price {
                    change,
                    object,
                    snapshot,
                    evidence,
                },
                Some((id, record)),
            ) if *id == snapshot.id => {
                let before = record.bucket();
                let effect = record.offer(meta, *change, *object, snapshot, evidence);
                self.product.price_counts.shift(before, record.bucket());
                effect
            }
            (CatalogueEvent::Price { .. }, _) => Effect::Ignored,
        }
    }

    /// The piece `event` addresses when the events of its newest second could not order
    /// themselves: its id (the state chosen is deterministic, but may not be the provider's).
    pub fn unresolved(&self, event: &CatalogueEvent) -> Option<String> {
        let resolved = match event {
            CatalogueEvent::Product { .. } => self.product.details.as_ref()?.latest()?.resolved,
            CatalogueEvent::Price { .. } => self.price.as_ref()?.1.current()?.1,
        };
        (!resolved).then(|| match event {
            CatalogueEvent::Product { snapshot, .. } => snapshot.id.to_string(),
            CatalogueEvent::Price { snapshot, .. } => snapshot.id.to_string(),
        })
    }

    /// The product (with the event's price, if any) as the read route shows it.
    pub fn view(&self) -> Product {
        self.product
            .view(self.price.iter().map(|(id, record)| (id, record)))
    }
}

/// Everything the model knows about one catalogue product, every price included: what tests
/// compare (the store keeps it as [`Pieces`]' items, never as one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub product: ProductRecord,
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
fn offer_piece<T: PartialEq>(
    snapshots: &mut Option<Newest<T>>,
    deleted: &mut Option<Version>,
    change: CatalogueChange,
    stamped: Candidate<T>,
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
) -> Candidate<T> {
    Candidate {
        version: Version::of(meta, rank(change)),
        snapshot: value.clone(),
        evidence: evidence.clone(),
    }
}

impl CatalogueEntry {
    pub fn new(provider: Provider, product: ProductId) -> Self {
        Self {
            product: ProductRecord::new(provider, product),
            prices: BTreeMap::new(),
        }
    }

    /// Applies one catalogue event to the pieces it addresses, as the pipeline does.
    pub fn apply(&mut self, meta: &EventMeta, event: &CatalogueEvent) -> Effect {
        let price = match event {
            CatalogueEvent::Price { snapshot, .. } => self.prices.get(&snapshot.id).cloned(),
            CatalogueEvent::Product { .. } => None,
        };
        let mut pieces = Pieces::for_event(self.product.clone(), price, event);
        let effect = pieces.apply(meta, event);
        if effect == Effect::Applied {
            self.product = pieces.product;
            if let Some((id, record)) = pieces.price {
                self.prices.insert(id, record);
            }
        }
        effect
    }

    pub fn unresolved(&self, event: &CatalogueEvent) -> Option<String> {
        let price = match event {
            CatalogueEvent::Price { snapshot, .. } => self.prices.get(&snapshot.id).cloned(),
            CatalogueEvent::Product { .. } => None,
        };
        Pieces::for_event(self.product.clone(), price, event).unresolved(event)
    }

    /// The product with every price; its kind by [`kind_of`] over the prices themselves (not
    /// the counts, so that a test comparing the two checks the counts).
    pub fn view(&self) -> Product {
        let mut view = self.product.view(&self.prices);
        view.kind = kind_of(view.prices.values());
        view
    }

    /// Whether the product's counts are those of its prices.
    pub fn counts_agree(&self) -> bool {
        self.product.price_counts == PriceCounts::of(self.prices.values())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::ids::EventId;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn update(id: &str, values: &[(&str, &str)], previous: &[(&str, &str)]) -> Candidate<String> {
        Candidate {
            version: Version::new(10, rank(CatalogueChange::Updated), id),
            snapshot: values.iter().map(|(k, v)| format!("{k}={v} ")).collect(),
            evidence: OrderEvidence {
                values: fields(values),
                previous: fields(previous),
            },
        }
    }

    fn latest_of(order: &[&Candidate<String>]) -> (String, bool) {
        let mut n = Newest::default();
        for s in order {
            n.offer((*s).clone());
        }
        let pick = n.latest().expect("a snapshot");
        (pick.candidate.version.event_id.clone(), pick.resolved)
    }

    /// A price record is stored as before the one same-second container (each shape a bare
    /// list of `{"version", "value", "evidence"}`), and such an item reads back the same.
    #[test]
    fn a_price_record_keeps_its_stored_shape() {
        let snap = price("price_1", monthly(), true);
        let mut record = PriceRecord::default();
        record.offer(
            &meta("evt_p", 10),
            CatalogueChange::Created,
            PriceObject::Price,
            &snap,
            &OrderEvidence::default(),
        );
        let text = serde_json::to_string(&record).expect("json");
        let value = serde_json::to_string(&snap).expect("json");
        let old = format!(
            r#"{{"price":[{{"version":{{"created":10,"rank":1,"event_id":"evt_p"}},"value":{value},"evidence":{{}}}}]}}"#
        );
        assert_eq!(text, old);
        let read: PriceRecord = serde_json::from_str(&old).expect("readable");
        assert_eq!(read, record);
    }

    /// An update that changed no field the model keeps still orders: it follows exactly the
    /// snapshots equal to it, never one that differs in a field it did not report.
    #[test]
    fn an_unlisted_field_is_known_to_be_unchanged() {
        // True order: a (active → false), b (nothing kept changed), c (nickname x → y).
        let a = update(
            "evt_z",
            &[("active", "f"), ("nick", "x")],
            &[("active", "t")],
        );
        let b = update("evt_y", &[("active", "f"), ("nick", "x")], &[]);
        let c = update("evt_a", &[("active", "f"), ("nick", "y")], &[("nick", "x")]);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a], [&c, &a, &b]] {
            let (id, resolved) = latest_of(&order);
            assert_eq!((id.as_str(), resolved), ("evt_a", true));
        }
    }

    #[test]
    fn a_value_put_back_within_the_second_is_unresolved() {
        let a = update("evt_a", &[("nick", "y")], &[("nick", "x")]);
        let b = update("evt_b", &[("nick", "x")], &[("nick", "y")]);
        assert_eq!(latest_of(&[&a, &b]), ("evt_b".to_owned(), false));
        assert_eq!(latest_of(&[&b, &a]), ("evt_b".to_owned(), false));
    }

    const PRODUCT: &str = "prod_t";

    fn meta(id: &str, created: i64) -> EventMeta {
        EventMeta {
            provider: Provider::STRIPE,
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
        CatalogueEntry::new(Provider::STRIPE, ProductId::new(PRODUCT))
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

    /// A product's pieces do not grow with its prices: each price's record at its fullest (8
    /// snapshots of each shape in one second, text fields at 500 characters) is a few tens of
    /// KB, and the product's own record only counts its prices (dynamo.rs measures the items).
    pub(crate) fn fullest_price(id: &str) -> PriceRecord {
        let long = |c: char| std::iter::repeat_n(c, 500).collect::<String>();
        let mut record = PriceRecord::default();
        for n in 0..8 {
            for object in [PriceObject::Price, PriceObject::Plan] {
                let mut s = price(id, monthly(), n % 2 == 0);
                s.nickname = Some(long('n'));
                s.tier = Some(long('t'));
                s.lookup_key = Some(long('k'));
                s.unit_amount = Some(i64::MAX - n);
                let previous = price(id, monthly(), n % 2 == 1);
                let evidence = crate::providers::evidence::snapshot_evidence(&s, Some(&previous));
                let event_id = format!("evt_1QxYzAbCdEfGhIjKlMnO{n:04}{object:?}");
                let effect = record.offer(
                    &meta(&event_id, 1_760_000_000),
                    CatalogueChange::Updated,
                    object,
                    &s,
                    &evidence,
                );
                assert_eq!(effect, Effect::Applied);
            }
        }
        assert_eq!(record.price.as_ref().map(|p| p.candidates.len()), Some(8));
        record
    }

    #[test]
    fn counts_follow_every_order_of_creations_and_deletions() {
        let mut e = entry();
        for (n, id) in ["price_a", "price_b", "price_c"].into_iter().enumerate() {
            let billing = if n == 1 {
                PriceBilling::OneTime
            } else {
                monthly()
            };
            let created = price(id, billing, true);
            e.apply(
                &meta(&format!("evt_c{n}"), 10),
                &price_event(
                    CatalogueChange::Created,
                    PriceObject::Price,
                    created.clone(),
                ),
            );
            e.apply(
                &meta(&format!("evt_d{n}"), 20 + n as i64),
                &price_event(CatalogueChange::Deleted, PriceObject::Price, created),
            );
            assert!(e.counts_agree(), "{:?}", e.product.price_counts);
        }
        let counts = e.product.price_counts;
        assert_eq!((counts.deleted_recurring, counts.deleted_one_time), (2, 1));
        assert_eq!(e.product.view(&e.prices).kind, e.view().kind);
        let gone = product_event(CatalogueChange::Deleted, product("Pro", false));
        e.apply(&meta("evt_gone", 30), &gone);
        assert_eq!(
            e.product.view(&e.prices).kind,
            Some(ProductKind::Subscription)
        );
    }

    /// The bound docs/MODEL.md states: every catalogue item under 64 KB, whatever the number of prices
    /// (measured as DynamoDB sizes items).
    #[test]
    fn every_catalogue_item_stays_under_64_kb() {
        use crate::adapters::dynamo::{item_size, price_item, product_item};
        let long = |c: char| std::iter::repeat_n(c, 500).collect::<String>();
        let mut e = entry();
        for n in 0..8 {
            let mut s = product(&long('n'), n % 2 == 0);
            s.description = Some(long('d'));
            s.tier = Some(long('t'));
            let event = product_event(CatalogueChange::Updated, s);
            e.apply(
                &meta(&format!("evt_1QxYzAbCdEfGhIjKlMnO{n:04}"), 1_760_000_000),
                &event,
            );
        }
        let price_id = PriceId::new("price_1QxYzAbCdEfGhIjKlMnOpQrS");
        let record = fullest_price(price_id.as_str());
        let own = product_item(&e.product, Some(u64::MAX - 1)).expect("item");
        let one = price_item(
            Provider::STRIPE,
            &e.product.product,
            &price_id,
            &record,
            Some(1),
        )
        .expect("item");
        let (own, one) = (item_size(&own), item_size(&one));
        eprintln!("largest items: product record {own} bytes, price {one} bytes");
        assert!(own < 64 * 1024 && one < 64 * 1024, "{own}, {one}");
    }

    /// The `STATE` doc the code before per-price items wrote for `e`: its fields and every
    /// price under `prices`, no counts (that layout's serde shape, field for field).
    fn old_layout_doc(e: &CatalogueEntry) -> serde_json::Value {
        let mut doc = serde_json::to_value(&e.product).expect("json");
        let fields = doc.as_object_mut().expect("object");
        fields.remove("price_counts");
        fields.insert(
            "prices".into(),
            serde_json::to_value(&e.prices).expect("json"),
        );
        doc
    }

    /// An item of the old layout reads as the pieces the per-price layout would hold after the
    /// same events: its record (counts included, as the events counted them one by one) and
    /// every price; an item of the new layout reads as itself, with no old prices.
    #[test]
    fn a_product_item_of_the_old_layout_reads_as_its_pieces() {
        use crate::adapters::dynamo::{product_item, product_state};
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut e = entry();
        let mut sub = price("price_sub", monthly(), true);
        let once = price("price_once", PriceBilling::OneTime, true);
        let gone = price("price_gone", monthly(), true);
        let events = [
            price_event(CatalogueChange::Created, PriceObject::Price, sub.clone()),
            price_event(CatalogueChange::Created, PriceObject::Plan, sub.clone()),
            price_event(CatalogueChange::Created, PriceObject::Price, once),
            price_event(CatalogueChange::Created, PriceObject::Price, gone.clone()),
            price_event(CatalogueChange::Deleted, PriceObject::Plan, gone),
            product_event(CatalogueChange::Created, product("Pro", true)),
        ];
        for (n, event) in events.iter().enumerate() {
            let at = 10 + n as i64;
            assert_eq!(
                e.apply(&meta(&format!("evt_{n}"), at), event),
                Effect::Applied
            );
        }
        sub.active = false;
        let off = price_event(CatalogueChange::Updated, PriceObject::Price, sub);
        assert_eq!(e.apply(&meta("evt_off", 30), &off), Effect::Applied);
        assert!(e.counts_agree());
        let counts = e.product.price_counts;
        assert_eq!(
            (counts.recurring, counts.one_time, counts.deleted_recurring),
            (1, 1, 1)
        );

        let mut item = product_item(&e.product, Some(6)).expect("item");
        let new = product_state(&item).expect("new layout");
        assert_eq!(
            (new.stored.value, new.stored.rev, new.old_prices),
            (e.product.clone(), 7, None)
        );
        let old = old_layout_doc(&e);
        assert!(old.get("price_counts").is_none() && old["prices"].is_object());
        item.insert("doc".into(), AttributeValue::S(old.to_string()));
        let read = product_state(&item).expect("old layout");
        assert_eq!((read.stored.value, read.stored.rev), (e.product.clone(), 7));
        assert_eq!(read.old_prices, Some(e.prices.clone()));

        // A product only its own events reached: the old layout wrote an empty map.
        let bare = entry();
        let mut doc = old_layout_doc(&bare);
        doc["prices"] = serde_json::json!({});
        item.insert("doc".into(), AttributeValue::S(doc.to_string()));
        let read = product_state(&item).expect("old layout");
        assert_eq!(read.stored.value, bare.product);
        assert_eq!(read.old_prices, Some(BTreeMap::new()));
    }
}
