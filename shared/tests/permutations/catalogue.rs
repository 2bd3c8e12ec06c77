//! The catalogue's order independence, checked against the truth through the whole pipeline.
//!
//! Generated catalogues are real sequences of one product (`prod_k`) and up to three prices:
//! events in their true order with non-decreasing `created` (often several in one second) and
//! random ids; every object derived from the previous one of its kind; every `*.updated`
//! carrying Stripe-shaped `data.previous_attributes` (the parent's `previous_attributes`). A
//! recurring price is announced as `price.*` and `plan.*` twins in the same second, or (as an
//! endpoint may be subscribed) by one of the two only; deletions follow Stripe's rules (a
//! recurring price is deleted through its plan; a product only once no price of it is live).
//! The oracle (`truth`) reads the final objects of the true sequence, never the model.
//!
//! - `catalogues_match_the_true_order`: each catalogue in order and in shuffled orders (with
//!   redeliveries, some to another family's endpoint), each to a fresh service; every final
//!   product must equal the oracle's and the in-order one (where the events of one second
//!   cannot decide, only a counted unresolved tie excuses a difference from the oracle).
//! - `generated_catalogues_are_real_sequences`: the generator's invariants and coverage.

use super::*;
use billing::domain::catalogue::{CatalogueEntry, Price, Product, ProductKind};
use billing::domain::events::PriceBilling;
use billing::domain::ids::{PriceId, ProductId};

const PRODUCT: &str = "prod_k";
const PRICE_IDS: [&str; 3] = ["price_k0", "price_k1", "price_k2"];
const PRODUCT_CREATED: &str = "product.created";
const PRODUCT_UPDATED: &str = "product.updated";
const PRODUCT_DELETED: &str = "product.deleted";
const CAT_CASES: u32 = 256;
/// Snapshots the model keeps per object and second: the generator stays within it.
const PER_SECOND: usize = 8;

/// Which events announce a price: a recurring one has a `plan.*` twin of every `price.*`
/// event, unless the endpoint takes only one of the two kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Both,
    PriceOnly,
    PlanOnly,
}

/// The stream of snapshots a receiver orders independently: the product's, and per price its
/// `price.*` and its `plan.*` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Product,
    Price(usize),
    Plan(usize),
}

#[derive(Clone)]
struct CatEv {
    id: String,
    created: i64,
    ty: &'static str,
    channel: Channel,
    object: Value,
    previous: Option<Value>,
    what: String,
}

impl CatEv {
    fn body(&self) -> Vec<u8> {
        let mut data = json!({ "object": self.object });
        if let Some(previous) = &self.previous {
            data["previous_attributes"] = previous.clone();
        }
        serde_json::to_vec(&json!({
            "id": self.id,
            "object": "event",
            "api_version": "2025-06-30.basil",
            "type": self.ty,
            "created": self.created,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "data": data,
        }))
        .expect("serialisable")
    }
}

impl fmt::Debug for CatEv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} +{}s {} {}",
            self.id,
            self.created - BASE,
            self.ty,
            self.what
        )
    }
}

/// One price as Stripe holds it, with how it is announced.
#[derive(Debug, Clone)]
struct TruePrice {
    object: Value,
    announce: Announce,
    deleted: bool,
}

impl TruePrice {
    fn recurring(&self) -> bool {
        self.object["type"] == "recurring"
    }
}

/// The price object's legacy plan face: the same id, amount and period, no lookup key.
fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "nickname": price["nickname"],
        "product": price["product"],
        "usage_type": "licensed",
    })
}

fn price_object(i: usize, recurring: bool, lookup: bool) -> Value {
    let amount = 1000 * (i as i64 + 1);
    json!({
        "id": PRICE_IDS[i],
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "currency": if recurring { "usd" } else { "jpy" },
        "livemode": false,
        "lookup_key": if lookup { json!(format!("key_{i}_a")) } else { Value::Null },
        "metadata": {},
        "nickname": null,
        "product": PRODUCT,
        "recurring": if recurring {
            json!({"interval": if i == 2 { "year" } else { "month" }, "interval_count": 1,
                   "meter": null, "usage_type": "licensed"})
        } else {
            Value::Null
        },
        "type": if recurring { "recurring" } else { "one_time" },
        "unit_amount": amount,
        "unit_amount_decimal": amount.to_string(),
    })
}

/// A generated catalogue in its true order, with the final state of every object.
#[derive(Clone)]
struct Catalogue {
    events: Vec<CatEv>,
    product: Value,
    product_deleted: bool,
    prices: Vec<TruePrice>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ambiguous = if self.ambiguous() { " (ambiguous)" } else { "" };
        let announce: Vec<Announce> = self.prices.iter().map(|p| p.announce).collect();
        writeln!(
            f,
            "Catalogue{ambiguous} {{ prices announced {announce:?}, true order:"
        )?;
        for e in &self.events {
            writeln!(f, "    {e:?}")?;
            if let Some(previous) = &e.previous {
                writeln!(f, "        previous_attributes {previous}")?;
            }
        }
        write!(f, "}}")
    }
}

impl Catalogue {
    /// The truly last event of `channel` and the others of its second and type: the snapshots
    /// a receiver must choose the final one from.
    fn final_group(&self, channel: Channel) -> Vec<&CatEv> {
        let events: Vec<&CatEv> = self
            .events
            .iter()
            .filter(|e| e.channel == channel)
            .collect();
        let Some(last) = events.last() else {
            return Vec::new();
        };
        events
            .iter()
            .filter(|e| e.created == last.created && e.ty == last.ty)
            .copied()
            .collect()
    }

    /// The events may not decide `channel`'s final snapshot: an earlier update of the final
    /// second replaced values the last one holds (a value put back within the second).
    fn ambiguous_channel(&self, channel: Channel) -> bool {
        let group = self.final_group(channel);
        let Some((last, earlier)) = group.split_last() else {
            return false;
        };
        earlier
            .iter()
            .any(|e| e.previous.as_ref().is_some_and(|p| holds(&last.object, p)))
    }

    fn channels(&self) -> BTreeSet<Channel> {
        self.events.iter().map(|e| e.channel).collect()
    }

    fn ambiguous(&self) -> bool {
        self.channels()
            .into_iter()
            .any(|c| self.ambiguous_channel(c))
    }
}

/// The oracle: the product as the final objects of the true sequence describe it.
fn truth(c: &Catalogue) -> Product {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let prices: BTreeMap<PriceId, Price> = c
        .prices
        .iter()
        .map(|p| {
            let o = &p.object;
            let billing = if p.recurring() {
                PriceBilling::Recurring {
                    interval: text(&o["recurring"]["interval"]).unwrap_or_default(),
                    interval_count: 1,
                }
            } else {
                PriceBilling::OneTime
            };
            let id = PriceId::new(text(&o["id"]).unwrap_or_default());
            let price = Price {
                id: id.clone(),
                active: o["active"].as_bool().unwrap_or(false),
                archived: p.deleted || c.product_deleted,
                currency: text(&o["currency"]).unwrap_or_default(),
                unit_amount: o["unit_amount"].as_i64(),
                billing,
                tier: text(&o["metadata"]["tier"]),
                nickname: text(&o["nickname"]),
                lookup_key: text(&o["lookup_key"]),
            };
            (id, price)
        })
        .collect();
    // Stated again, not borrowed from the model: recurring among the live prices (all of them
    // when none is live) makes a subscription product.
    let live: Vec<&Price> = prices.values().filter(|p| !p.archived).collect();
    let pool: Vec<&Price> = if live.is_empty() {
        prices.values().collect()
    } else {
        live
    };
    let kind = match pool.as_slice() {
        [] => None,
        some if some.iter().any(|p| p.billing != PriceBilling::OneTime) => {
            Some(ProductKind::Subscription)
        }
        _ => Some(ProductKind::OneTime),
    };
    Product {
        provider: Provider::STRIPE,
        id: ProductId::new(PRODUCT),
        name: text(&c.product["name"]),
        description: text(&c.product["description"]),
        active: c.product["active"].as_bool(),
        archived: c.product_deleted,
        kind,
        tier: text(&c.product["metadata"]["tier"]),
        prices,
    }
}

// ---------------------------------------------------------------------------------------------
// The generator: steps applied to Stripe's objects, written forwards
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum CatStep {
    ProductName(u8),
    ProductActive,
    ProductTier(u8),
    ProductDescription(u8),
    NewPrice {
        recurring: bool,
        announce: u8,
    },
    PriceActive(usize),
    PriceNickname(usize, u8),
    PriceTier(usize, u8),
    PriceLookupKey(usize, u8),
    DeletePrice(usize),
    DeleteProduct,
    /// Two changes of one object in quick succession (the same second, unless it is full).
    Burst(Channel, u8, u8),
}

fn pick<T: Copy>(options: &[T], n: u8) -> T {
    options[usize::from(n) % options.len()]
}

/// Sets (or removes) the `tier` metadata key of a product or price object.
fn set_tier(object: &mut Value, n: u8) {
    match pick(&[None, Some("basic"), Some("pro")], n) {
        Some(t) => object["metadata"]["tier"] = json!(t),
        None => {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("tier");
            }
        }
    }
}

struct CatBuilder {
    now: i64,
    salt: u16,
    events: Vec<CatEv>,
    product: Value,
    product_deleted: bool,
    prices: Vec<TruePrice>,
}

impl CatBuilder {
    fn new(salt: u16) -> Self {
        let metadata = match salt % 3 {
            0 => json!({}),
            1 => json!({"tier": "basic"}),
            _ => json!({"tier": "pro"}),
        };
        let product = json!({
            "id": PRODUCT,
            "object": "product",
            "active": true,
            "description": null,
            "livemode": false,
            "metadata": metadata,
            "name": "Pro",
        });
        let mut b = Self {
            now: BASE,
            salt,
            events: Vec::new(),
            product: product.clone(),
            product_deleted: false,
            prices: Vec::new(),
        };
        b.push(
            PRODUCT_CREATED,
            Channel::Product,
            product,
            None,
            "Pro".into(),
        );
        b
    }

    fn push(
        &mut self,
        ty: &'static str,
        channel: Channel,
        object: Value,
        previous: Option<Value>,
        what: String,
    ) {
        // A random prefix, so that id order (the last tie-break) is not the true order.
        let id = format!("evt_{:04x}{:02}", self.salt, self.events.len());
        self.salt = self.salt.wrapping_mul(31).wrapping_add(17);
        self.events.push(CatEv {
            id,
            created: self.now,
            ty,
            channel,
            object,
            previous,
            what,
        });
    }

    /// Moves to the next second when `channel` already has as many snapshots in this one as
    /// the model keeps (more would be pathological, and is not what is tested here).
    fn room(&mut self, channel: Channel) {
        let here = self
            .events
            .iter()
            .filter(|e| e.channel == channel && e.created == self.now)
            .count();
        if here + 1 >= PER_SECOND {
            self.now += 1;
        }
    }

    fn update_product(&mut self, change: impl FnOnce(&mut Value)) {
        let before = self.product.clone();
        change(&mut self.product);
        if before == self.product {
            return;
        }
        self.room(Channel::Product);
        let previous = previous_attributes(&before, &self.product);
        let what = previous.to_string();
        let after = self.product.clone();
        self.push(
            PRODUCT_UPDATED,
            Channel::Product,
            after,
            Some(previous),
            what,
        );
    }

    /// Announces `ty`'s change of price `i` (`created`, `updated`, `deleted`) as its endpoint
    /// takes it: the price event, the plan event, or both in the same second.
    fn announce(&mut self, i: usize, action: &str, before: Option<&Value>) {
        let price = self.prices[i].clone();
        let (to_price, to_plan) = match (price.recurring(), price.announce) {
            (false, _) | (true, Announce::PriceOnly) => (true, false),
            (true, Announce::PlanOnly) => (false, true),
            (true, Announce::Both) => (true, true),
        };
        // A plan has no lookup key: a change of it alone is not announced as a plan event.
        let plan_changed = before.is_none_or(|b| plan_of(b) != plan_of(&price.object));
        let ty = |kind: &str| -> &'static str {
            match (kind, action) {
                ("price", "created") => "price.created",
                ("price", "updated") => "price.updated",
                ("price", _) => "price.deleted",
                (_, "created") => "plan.created",
                (_, "updated") => "plan.updated",
                _ => "plan.deleted",
            }
        };
        if to_price {
            self.room(Channel::Price(i));
            let previous = before.map(|b| previous_attributes(b, &price.object));
            let what = previous.as_ref().map_or(String::new(), Value::to_string);
            self.push(
                ty("price"),
                Channel::Price(i),
                price.object.clone(),
                previous,
                what,
            );
        }
        if to_plan && plan_changed {
            self.room(Channel::Plan(i));
            let after = plan_of(&price.object);
            let previous = before.map(|b| previous_attributes(&plan_of(b), &after));
            let what = previous.as_ref().map_or(String::new(), Value::to_string);
            self.push(ty("plan"), Channel::Plan(i), after, previous, what);
        }
    }

    fn update_price(&mut self, i: usize, change: impl FnOnce(&mut Value)) {
        let Some(p) = self.prices.get(i).filter(|p| !p.deleted) else {
            return;
        };
        let before = p.object.clone();
        change(&mut self.prices[i].object);
        if self.prices[i].object != before {
            self.announce(i, "updated", Some(&before));
        }
    }

    fn step(&mut self, step: CatStep) {
        const NAMES: [&str; 3] = ["Pro", "Pro Plus", "Team"];
        const TEXTS: [Option<&str>; 3] = [None, Some("a"), Some("b")];
        match step {
            CatStep::ProductName(n) => self.update_product(|p| p["name"] = json!(pick(&NAMES, n))),
            CatStep::ProductActive => {
                self.update_product(|p| p["active"] = json!(!p["active"].as_bool().unwrap_or(true)))
            }
            CatStep::ProductTier(n) => self.update_product(|p| set_tier(p, n)),
            CatStep::ProductDescription(n) => {
                self.update_product(|p| p["description"] = json!(pick(&TEXTS, n)))
            }
            CatStep::NewPrice {
                recurring,
                announce,
            } => self.new_price(recurring, announce),
            CatStep::PriceActive(i) => self.update_price(i, |o| {
                o["active"] = json!(!o["active"].as_bool().unwrap_or(true))
            }),
            CatStep::PriceNickname(i, n) => {
                self.update_price(i, |o| o["nickname"] = json!(pick(&TEXTS, n)))
            }
            CatStep::PriceTier(i, n) => self.update_price(i, |o| set_tier(o, n)),
            CatStep::PriceLookupKey(i, n) => {
                // The Dashboard cannot give a plan-only price a key the plan would not show.
                if self
                    .prices
                    .get(i)
                    .is_some_and(|p| p.announce != Announce::PlanOnly)
                {
                    let key =
                        pick(&[None, Some("a"), Some("b")], n).map(|k| format!("key_{i}_{k}"));
                    self.update_price(i, |o| o["lookup_key"] = json!(key));
                }
            }
            CatStep::DeletePrice(i) => self.delete_price(i),
            CatStep::Burst(Channel::Product, a, b) => {
                self.step(CatStep::ProductName(a));
                self.step(CatStep::ProductTier(b));
            }
            CatStep::Burst(Channel::Price(i) | Channel::Plan(i), a, b) => {
                self.step(CatStep::PriceNickname(i, a));
                self.step(CatStep::PriceTier(i, b));
                self.step(CatStep::PriceActive(i));
            }
            CatStep::DeleteProduct => self.delete_product(),
        }
    }

    fn new_price(&mut self, recurring: bool, announce: u8) {
        if self.prices.len() == PRICE_IDS.len() {
            return;
        }
        let ways = [
            Announce::Both,
            Announce::Both,
            Announce::PriceOnly,
            Announce::PlanOnly,
        ];
        let announce = pick(&ways, announce);
        let i = self.prices.len();
        let plan_only = recurring && announce == Announce::PlanOnly;
        let mut object = price_object(i, recurring, !plan_only);
        if self.salt.is_multiple_of(2) {
            object["metadata"]["tier"] = json!("pro");
        }
        self.prices.push(TruePrice {
            object,
            announce,
            deleted: false,
        });
        self.announce(i, "created", None);
    }

    /// Stripe deletes only a recurring price, through its plan.
    fn delete_price(&mut self, i: usize) {
        if self
            .prices
            .get(i)
            .is_some_and(|p| p.recurring() && !p.deleted)
        {
            self.prices[i].deleted = true;
            self.prices[i].object["active"] = json!(false);
            self.announce(i, "deleted", None);
        }
    }

    /// Stripe deletes a product only when no price of it is left: its recurring prices are
    /// deleted first (through their plans); a one-time price cannot be, so it prevents this.
    fn delete_product(&mut self) {
        let late = self.events.len() >= 4;
        if !late || !self.prices.iter().all(|p| p.recurring() || p.deleted) {
            return;
        }
        for i in 0..self.prices.len() {
            self.delete_price(i);
        }
        self.room(Channel::Product);
        self.product_deleted = true;
        self.product["active"] = json!(false);
        let after = self.product.clone();
        self.push(
            PRODUCT_DELETED,
            Channel::Product,
            after,
            None,
            String::new(),
        );
    }

    fn finish(self) -> Catalogue {
        Catalogue {
            events: self.events,
            product: self.product,
            product_deleted: self.product_deleted,
            prices: self.prices,
        }
    }
}

fn cat_step_strategy() -> impl Strategy<Value = CatStep> {
    let price = 0..PRICE_IDS.len();
    prop_oneof![
        2 => any::<u8>().prop_map(CatStep::ProductName),
        1 => Just(CatStep::ProductActive),
        2 => any::<u8>().prop_map(CatStep::ProductTier),
        1 => any::<u8>().prop_map(CatStep::ProductDescription),
        4 => (any::<bool>(), any::<u8>())
            .prop_map(|(recurring, announce)| CatStep::NewPrice { recurring, announce }),
        2 => price.clone().prop_map(CatStep::PriceActive),
        2 => (price.clone(), any::<u8>()).prop_map(|(i, n)| CatStep::PriceNickname(i, n)),
        2 => (price.clone(), any::<u8>()).prop_map(|(i, n)| CatStep::PriceTier(i, n)),
        1 => (price.clone(), any::<u8>()).prop_map(|(i, n)| CatStep::PriceLookupKey(i, n)),
        2 => price.clone().prop_map(CatStep::DeletePrice),
        1 => Just(CatStep::DeleteProduct),
        2 => (any::<u8>(), any::<u8>())
            .prop_map(|(a, b)| CatStep::Burst(Channel::Product, a, b)),
        2 => (price, any::<u8>(), any::<u8>())
            .prop_map(|(i, a, b)| CatStep::Burst(Channel::Price(i), a, b)),
    ]
}

fn catalogue_strategy() -> impl Strategy<Value = Catalogue> {
    // Most steps happen in the second of the step before: same-second groups are common.
    let advance = prop_oneof![6 => Just(0i64), 3 => Just(1i64), 1 => Just(2i64)];
    (
        any::<u16>(),
        prop::collection::vec((cat_step_strategy(), advance), 3..=14),
    )
        .prop_map(|(salt, steps)| {
            let mut b = CatBuilder::new(salt);
            for (step, advance) in steps {
                if b.product_deleted {
                    break;
                }
                // Room for every event the step may write (a price change has two twins).
                let most = match step {
                    CatStep::Burst(Channel::Product, ..) => 2,
                    CatStep::Burst(..) => 6,
                    CatStep::ProductName(_)
                    | CatStep::ProductActive
                    | CatStep::ProductTier(_)
                    | CatStep::ProductDescription(_) => 1,
                    CatStep::DeleteProduct => 2 * PRICE_IDS.len() + 1,
                    _ => 2,
                };
                if b.events.len() + most <= MAX_EVENTS {
                    b.now += advance;
                    b.step(step);
                }
            }
            b.finish()
        })
}

// ---------------------------------------------------------------------------------------------
// Running a catalogue through a fresh service
// ---------------------------------------------------------------------------------------------

fn sign_catalogue(events: &[CatEv]) -> Vec<Signed> {
    events
        .iter()
        .map(|e| Signed::new(&e.id, e.ty, e.body(), SECRET))
        .collect()
}

/// What one run ends with: the stored product and the unresolved ties counted.
struct CatRun {
    entries: Vec<CatalogueEntry>,
    ties: u64,
}

async fn run_catalogue(signed: &[Signed], deliveries: &[Delivery]) -> Result<CatRun, String> {
    let store = Arc::new(InMemoryBillingStore::new());
    let metrics = Arc::new(Metrics::memory());
    let settings = Settings::default();
    let provider = StripeProvider::new(
        Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)])),
        Arc::new(FixedClock::at(SIGNED_AT)),
        metrics.clone(),
        settings.clone(),
    );
    let service = Pipeline::new(
        store.clone(),
        Arc::new(FixedClock::at(SIGNED_AT)),
        metrics.clone(),
        settings.tiers,
    )
    .with_provider(Arc::new(provider));
    let receipts = deliver(&service, signed, deliveries).await?;
    check_ledger(&store, signed, &receipts).await?;
    if !store.customers().is_empty()
        || store
            .pending_outbox(1)
            .await
            .map_or(true, |o| !o.is_empty())
    {
        return Err("a catalogue event touched a customer or wrote a feed message".into());
    }
    Ok(CatRun {
        entries: store.products(),
        ties: metrics.count(Counter::TiesUnresolved),
    })
}

/// The final product must be the true one; where the events of one second cannot decide, a
/// difference is excused only by a counted unresolved tie.
fn judge_catalogue(c: &Catalogue, truth: &Product, run: &CatRun) -> Result<(), String> {
    let [entry] = run.entries.as_slice() else {
        return Err(format!(
            "{} product aggregates, expected 1",
            run.entries.len()
        ));
    };
    // The route's view takes the kind from the counts in the product's own record: they must
    // be its prices' in every order.
    if !entry.counts_agree() || entry.product.view(&entry.prices) != entry.view() {
        return Err(format!(
            "the product's price counts are not its prices': {:?}",
            entry.product.price_counts
        ));
    }
    let seen = entry.view();
    if &seen == truth || (c.ambiguous() && run.ties > 0) {
        return Ok(());
    }
    let why = if c.ambiguous() {
        "same-second events left undecided, yet no unresolved tie was counted"
    } else {
        "the final product is not the true order's"
    };
    Err(format!(
        "{why}\n    true:  {}\n    model: {}",
        serde_json::to_string(truth).unwrap_or_default(),
        serde_json::to_string(&seen).unwrap_or_default()
    ))
}

fn check_catalogue(
    rt: &tokio::runtime::Runtime,
    c: &Catalogue,
    plans: &[Plan],
    checked: &AtomicUsize,
) -> Result<(), TestCaseError> {
    let signed = sign_catalogue(&c.events);
    let truth = truth(c);
    let reference = rt
        .block_on(run_catalogue(&signed, &in_order(&signed)))
        .and_then(|r| judge_catalogue(c, &truth, &r).map(|()| r))
        .map_err(|e| TestCaseError::fail(format!("in-order delivery: {e}")))?;
    for (k, plan) in plans.iter().enumerate() {
        let deliveries = plan.deliveries(&signed);
        let order = describe(&signed, &deliveries);
        let fail = |e: String| TestCaseError::fail(format!("plan {k} [{order}]: {e}"));
        let result = rt
            .block_on(run_catalogue(&signed, &deliveries))
            .map_err(&fail)?;
        judge_catalogue(c, &truth, &result).map_err(&fail)?;
        // The stored aggregate itself, not only its view, is the same in every order.
        if result.entries != reference.entries {
            return Err(fail(format!(
                "ends elsewhere than in-order delivery\n    in order:   {}\n    this order: {}",
                serde_json::to_string(&reference.entries).unwrap_or_default(),
                serde_json::to_string(&result.entries).unwrap_or_default()
            )));
        }
        checked.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[test]
fn catalogues_match_the_true_order() {
    let rt = runtime();
    let checked = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: CAT_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        catalogue_strategy(),
        prop::collection::vec(plan_strategy(), PLANS_PER_CASE),
    );
    let result = runner.run(&strategy, |(c, plans)| {
        check_catalogue(&rt, &c, &plans, &checked)
    });
    let n = checked.load(Ordering::Relaxed);
    eprintln!("catalogue permutations checked: {n}");
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (c, _))) => {
            panic!("{reason}\nminimal failing catalogue: {c:#?}")
        }
        Err(e) => panic!("{e}"),
    }
    assert!(n >= CAT_CASES as usize, "only {n} permutations checked");
}

/// What the generated catalogues exercise: the features the property test is for.
fn features(c: &Catalogue) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for channel in c.channels() {
        let group = c.final_group(channel);
        if group.len() >= 2 {
            out.insert("final snapshot: one of 2+ same-second updates");
            if group.windows(2).any(|w| w[0].id > w[1].id) {
                out.insert("final snapshot: ... the earlier one with the greater id");
            }
        }
        if c.ambiguous_channel(channel) {
            out.insert("ambiguous: a value put back within the second");
        }
    }
    let announce = |a: Announce| c.prices.iter().any(|p| p.recurring() && p.announce == a);
    if announce(Announce::Both) {
        out.insert("price: recurring, with plan twins");
    }
    if announce(Announce::PlanOnly) {
        out.insert("price: recurring, plan events only");
    }
    if c.prices.iter().any(|p| !p.recurring()) {
        out.insert("price: one-time");
    }
    if c.prices.iter().any(|p| p.deleted) {
        out.insert("price: deleted");
    }
    if c.product_deleted {
        out.insert("product: deleted");
    }
    let tiered = |v: &Value| !v["metadata"]["tier"].is_null();
    if tiered(&c.product) && c.prices.iter().any(|p| tiered(&p.object)) {
        out.insert("tier: on the product and a price");
    }
    out
}

/// The generator writes real sequences, and enough of the cases the property test is for.
#[test]
fn generated_catalogues_are_real_sequences() {
    let strategy = catalogue_strategy();
    // A fixed seed: the coverage floors below are about this generator, not about luck.
    let mut runner = TestRunner::deterministic();
    let mut coverage: BTreeMap<&str, usize> = BTreeMap::new();
    let cases = CAT_CASES as usize;
    for _ in 0..cases {
        let c = strategy
            .new_tree(&mut runner)
            .expect("a catalogue")
            .current();
        assert!(
            !c.events.is_empty() && c.events.len() <= MAX_EVENTS,
            "{} events",
            c.events.len()
        );
        assert!(
            c.events.windows(2).all(|w| w[0].created <= w[1].created),
            "`created` goes backwards: {c:#?}"
        );
        let ids: BTreeSet<&String> = c.events.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), c.events.len(), "ids repeat: {c:#?}");
        for e in &c.events {
            let changed = e
                .previous
                .as_ref()
                .is_some_and(|p| !p.as_object().is_some_and(|m| m.is_empty()));
            assert_eq!(
                e.ty.ends_with(".updated"),
                changed,
                "{e:?}: previous_attributes"
            );
        }
        for feature in features(&c) {
            *coverage.entry(feature).or_default() += 1;
        }
    }
    eprintln!("generated catalogues ({cases}): {coverage:#?}");
    let floors = [
        ("final snapshot: one of 2+ same-second updates", cases / 8),
        (
            "final snapshot: ... the earlier one with the greater id",
            cases / 20,
        ),
        ("ambiguous: a value put back within the second", 3),
        ("price: recurring, with plan twins", cases / 4),
        ("price: recurring, plan events only", cases / 20),
        ("price: one-time", cases / 4),
        ("price: deleted", cases / 20),
        ("product: deleted", 3),
        ("tier: on the product and a price", cases / 20),
    ];
    for (feature, floor) in floors {
        let n = coverage.get(feature).copied().unwrap_or(0);
        assert!(
            n >= floor,
            "{feature}: {n} of {cases} catalogues, want ≥ {floor}"
        );
    }
    let ambiguous = coverage
        .get("ambiguous: a value put back within the second")
        .copied()
        .unwrap_or(0);
    assert!(
        ambiguous <= cases / 4,
        "{ambiguous} ambiguous catalogues: too many are only checked for agreement"
    );
}
