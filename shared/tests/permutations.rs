//! Order-independence, through the whole pipeline (signature → parse → translate → apply).
//!
//! Product brief: "every permutation of a lifecycle's events ends in the same state as in-order
//! delivery. Stripe's `created` has one-second resolution, so ties are normal; a terminal state
//! (deleted subscription) is never undone by a late, older event."
//!
//! `lifecycles_converge_in_any_order` generates lifecycles of one customer (`cus_p`), one user
//! (`user_p`) and one or two subscriptions, delivers them in order to a fresh service, then
//! delivers shuffled copies (with redeliveries, some to another family's endpoint) to fresh
//! services and compares the final models. `hand_written_lifecycle_all_720_orders` does the
//! same for every order of one fixed six-event lifecycle.

use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
use billing::domain::access::{
    customer_access, BillingStatus, Standing, SubscriptionAccess, TierPolicy,
};
use billing::domain::customer::CustomerBilling;
use billing::domain::events::{LinkSource, PaymentOutcome};
use billing::domain::ids::{EventId, Provider, SubscriptionId, UserId};
use billing::pipeline::Outcome;
use billing::ports::{BillingStore, FixedClock, LedgerState};
use billing::providers::stripe::signature::{self, WebhookSecret};
use billing::providers::stripe::translate::family_of;
use billing::providers::stripe::{pipeline, Settings, StripeDelivery};
use billing::routing::Family;
use billing::telemetry::{Counter, Metrics};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_test";
const CUSTOMER: &str = "cus_p";
const USER: &str = "user_p";
/// `created` of the first event; every other event is a few seconds later.
const BASE: i64 = 1_700_000_000;
/// When every delivery is signed (and what the service's clock says).
const SIGNED_AT: i64 = BASE + 120;
const SUBS: [&str; 2] = ["sub_p1", "sub_p2"];
const PRICES: [&str; 2] = ["price_basic", "price_pro"];
const PRODUCTS: [&str; 2] = ["prod_basic", "prod_pro"];
const MONTH: i64 = 30 * 86_400;
const MAX_EVENTS: usize = 12;
/// Latest `created` offset of a generated event; the late link comes after it.
const MAX_OFFSET: i64 = 4;
const CASES: u32 = 512;
const PLANS_PER_CASE: usize = 8;

// ---------------------------------------------------------------------------------------------
// Lifecycles
// ---------------------------------------------------------------------------------------------

/// How the customer learns its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A checkout with `client_reference_id` opens the lifecycle.
    Checkout,
    /// Every subscription object carries `metadata.user_id`.
    SubscriptionMetadata,
    /// A checkout with `client_reference_id` closes the lifecycle, after everything else.
    Late,
    /// No user at all (checkouts are guest checkouts).
    Guest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Checkout {
        sub: usize,
        user: bool,
    },
    /// `customer.subscription.created` / `.updated`.
    Subscription {
        created: bool,
        sub: usize,
        status: &'static str,
        cancel_at_period_end: bool,
        price: usize,
        months: i64,
        user_meta: bool,
    },
    Invoice {
        ty: &'static str,
        sub: usize,
        invoice: u8,
        /// Subscription id under `parent.subscription_details` (basil) or top level (older).
        basil: bool,
    },
    Deleted {
        sub: usize,
        reason: &'static str,
        price: usize,
        user_meta: bool,
    },
}

#[derive(Clone)]
struct Ev {
    id: String,
    created: i64,
    kind: Kind,
}

impl Ev {
    fn event_type(&self) -> &'static str {
        match &self.kind {
            Kind::Checkout { .. } => "checkout.session.completed",
            Kind::Subscription { created: true, .. } => "customer.subscription.created",
            Kind::Subscription { created: false, .. } => "customer.subscription.updated",
            Kind::Invoice { ty, .. } => ty,
            Kind::Deleted { .. } => "customer.subscription.deleted",
        }
    }

    fn sub(&self) -> usize {
        match &self.kind {
            Kind::Checkout { sub, .. }
            | Kind::Subscription { sub, .. }
            | Kind::Invoice { sub, .. }
            | Kind::Deleted { sub, .. } => *sub,
        }
    }

    fn set_sub(&mut self, to: usize) {
        match &mut self.kind {
            Kind::Checkout { sub, .. }
            | Kind::Subscription { sub, .. }
            | Kind::Invoice { sub, .. }
            | Kind::Deleted { sub, .. } => *sub = to,
        }
    }

    fn object(&self) -> Value {
        match &self.kind {
            Kind::Checkout { sub, user } => json!({
                "id": format!("cs_{}", self.id),
                "object": "checkout.session",
                "mode": "subscription",
                "status": "complete",
                "payment_status": "paid",
                "customer": CUSTOMER,
                "subscription": SUBS[*sub],
                "client_reference_id": if *user { Value::from(USER) } else { Value::Null },
            }),
            Kind::Subscription {
                sub,
                status,
                cancel_at_period_end,
                price,
                months,
                user_meta,
                ..
            } => {
                let end = BASE + months * MONTH;
                let mut obj = subscription_object(*sub, status, *price, end, *user_meta);
                obj["cancel_at_period_end"] = json!(cancel_at_period_end);
                if *cancel_at_period_end {
                    obj["cancel_at"] = json!(end);
                    obj["cancellation_details"]["reason"] = json!("cancellation_requested");
                }
                if *status == "trialing" {
                    obj["trial_end"] = json!(end);
                }
                obj
            }
            Kind::Invoice {
                ty,
                sub,
                invoice,
                basil,
            } => {
                let id = format!("in_p{}{}", sub + 1, invoice);
                let paid = matches!(*ty, "invoice.paid" | "invoice.payment_succeeded");
                let mut obj = json!({
                    "id": id,
                    "object": "invoice",
                    "customer": CUSTOMER,
                    "status": if paid { "paid" } else { "open" },
                    "billing_reason": "subscription_cycle",
                    "hosted_invoice_url": format!("https://invoice.stripe.com/i/{id}"),
                });
                if *basil {
                    obj["parent"] = json!({
                        "type": "subscription_details",
                        "subscription_details": { "subscription": SUBS[*sub], "metadata": {} },
                    });
                } else {
                    obj["subscription"] = json!(SUBS[*sub]);
                    obj["paid"] = json!(paid);
                }
                obj
            }
            Kind::Deleted {
                sub,
                reason,
                price,
                user_meta,
            } => {
                let mut obj =
                    subscription_object(*sub, "canceled", *price, BASE + MONTH, *user_meta);
                obj["cancellation_details"]["reason"] = json!(reason);
                obj["canceled_at"] = json!(self.created);
                obj["ended_at"] = json!(self.created);
                obj
            }
        }
    }

    fn api_version(&self) -> &'static str {
        match &self.kind {
            Kind::Invoice { basil: true, .. } => "2025-03-31.basil",
            _ => "2020-08-27",
        }
    }

    /// The full Stripe envelope, as bytes on the wire.
    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": self.id,
            "object": "event",
            "api_version": self.api_version(),
            "type": self.event_type(),
            "created": self.created,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "data": { "object": self.object() },
        }))
        .expect("serialisable")
    }
}

fn subscription_object(sub: usize, status: &str, price: usize, end: i64, user_meta: bool) -> Value {
    let start = end - MONTH;
    json!({
        "id": SUBS[sub],
        "object": "subscription",
        "customer": CUSTOMER,
        "status": status,
        "cancel_at_period_end": false,
        "cancel_at": null,
        "trial_end": null,
        "cancellation_details": { "reason": null, "comment": null, "feedback": null },
        "metadata": if user_meta { json!({ "user_id": USER }) } else { json!({}) },
        "items": {
            "object": "list",
            "data": [{
                "id": format!("si_{}", SUBS[sub]),
                "object": "subscription_item",
                "price": { "id": PRICES[price], "object": "price", "product": PRODUCTS[price] },
                "current_period_start": start,
                "current_period_end": end,
            }],
        },
    })
}

impl fmt::Debug for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} +{}s {} {}",
            self.id,
            self.created - BASE,
            self.event_type(),
            SUBS[self.sub()]
        )?;
        match &self.kind {
            Kind::Checkout { user, .. } => write!(f, " client_reference_id={user}"),
            Kind::Subscription {
                status,
                cancel_at_period_end,
                price,
                months,
                user_meta,
                ..
            } => write!(
                f,
                " status={status} cape={cancel_at_period_end} {} end=+{months}mo meta={user_meta}",
                PRICES[*price]
            ),
            Kind::Invoice { invoice, basil, .. } => write!(
                f,
                " in_p{}{invoice} {}",
                self.sub() + 1,
                if *basil { "basil" } else { "top-level" }
            ),
            Kind::Deleted {
                reason, user_meta, ..
            } => write!(f, " reason={reason} meta={user_meta}"),
        }
    }
}

#[derive(Clone)]
struct Lifecycle {
    link: Link,
    subs: usize,
    /// In reference ("in-order") order: sorted by `created`, ties in generated order.
    events: Vec<Ev>,
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Lifecycle {{ link: {:?}, subs: {}", self.link, self.subs)?;
        for e in &self.events {
            writeln!(f, "    {e:?}")?;
        }
        write!(f, "}}")
    }
}

impl Lifecycle {
    fn deleted_subs(&self) -> Vec<usize> {
        let mut subs: Vec<usize> = self
            .events
            .iter()
            .filter(|e| matches!(e.kind, Kind::Deleted { .. }))
            .map(Ev::sub)
            .collect();
        subs.sort_unstable();
        subs.dedup();
        subs
    }
}

fn kind_strategy() -> impl Strategy<Value = (Kind, bool)> {
    let sub = 0..2usize;
    let checkout = sub
        .clone()
        .prop_map(|sub| Kind::Checkout { sub, user: false });
    let subscription = (
        any::<bool>(),
        sub.clone(),
        prop::sample::select(vec![
            "active",
            "past_due",
            "unpaid",
            "trialing",
            "incomplete",
        ]),
        any::<bool>(),
        0..2usize,
        1..=2i64,
    )
        .prop_map(
            |(created, sub, status, cancel_at_period_end, price, months)| Kind::Subscription {
                created,
                sub,
                status,
                cancel_at_period_end,
                price,
                months,
                user_meta: false,
            },
        );
    let invoice = (
        prop::sample::select(vec![
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
        ]),
        sub.clone(),
        1..=2u8,
        any::<bool>(),
    )
        .prop_map(|(ty, sub, invoice, basil)| Kind::Invoice {
            ty,
            sub,
            invoice,
            basil,
        });
    let deleted = (
        sub,
        prop::sample::select(vec![
            "cancellation_requested",
            "payment_failed",
            "payment_disputed",
        ]),
        0..2usize,
    )
        .prop_map(|(sub, reason, price)| Kind::Deleted {
            sub,
            reason,
            price,
            user_meta: false,
        });
    (
        prop_oneof![
            2 => checkout,
            6 => subscription,
            8 => invoice,
            1 => deleted,
        ],
        // Whether this object carries `metadata.user_id` (used in `Link::Checkout` lifecycles).
        any::<bool>(),
    )
}

fn lifecycle_strategy() -> impl Strategy<Value = Lifecycle> {
    (
        prop_oneof![
            Just(Link::Checkout),
            Just(Link::SubscriptionMetadata),
            Just(Link::Late),
            Just(Link::Guest),
        ],
        1..=2usize,
        prop::collection::vec(
            (kind_strategy(), 0..=MAX_OFFSET, any::<u16>()),
            3..=MAX_EVENTS,
        ),
    )
        .prop_map(|(link, subs, raw)| build_lifecycle(link, subs, raw))
}

fn build_lifecycle(link: Link, subs: usize, raw: Vec<((Kind, bool), i64, u16)>) -> Lifecycle {
    let last = raw.len() - 1;
    let mut events: Vec<Ev> = raw
        .into_iter()
        .enumerate()
        .map(|(i, ((kind, meta), offset, salt))| {
            // A random prefix, so that id order (the last tie-break) is not generation order.
            let id = format!("evt_{salt:04x}{i:02}");
            let mut created = BASE + offset;
            let kind = match (link, i) {
                (Link::Checkout, 0) => {
                    created = BASE;
                    Kind::Checkout { sub: 0, user: true }
                }
                (Link::Late, i) if i == last => {
                    created = BASE + MAX_OFFSET + 1;
                    Kind::Checkout { sub: 0, user: true }
                }
                (_, _) => with_user(kind, link, meta),
            };
            let mut ev = Ev { id, created, kind };
            let sub = ev.sub() % subs;
            ev.set_sub(sub);
            ev
        })
        .collect();
    events.sort_by_key(|e| e.created);
    Lifecycle { link, subs, events }
}

fn with_user(kind: Kind, link: Link, meta: bool) -> Kind {
    let user_meta = match link {
        Link::SubscriptionMetadata => true,
        Link::Checkout => meta,
        Link::Late | Link::Guest => false,
    };
    match kind {
        Kind::Checkout { sub, .. } => Kind::Checkout {
            sub,
            user: link == Link::Checkout,
        },
        Kind::Subscription {
            created,
            sub,
            status,
            cancel_at_period_end,
            price,
            months,
            ..
        } => Kind::Subscription {
            created,
            sub,
            status,
            cancel_at_period_end,
            price,
            months,
            user_meta,
        },
        Kind::Deleted {
            sub, reason, price, ..
        } => Kind::Deleted {
            sub,
            reason,
            price,
            user_meta,
        },
        invoice @ Kind::Invoice { .. } => invoice,
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery plans: a permutation plus redeliveries
// ---------------------------------------------------------------------------------------------

/// A shuffle of `0..MAX_EVENTS` (indices past the lifecycle's length are dropped, which leaves a
/// uniform permutation of the rest) and up to two redeliveries `(event, position, endpoint)`.
/// Independent of the lifecycle, so that proptest shrinks the lifecycle and the plans separately.
#[derive(Debug, Clone)]
struct Plan {
    order: Vec<usize>,
    redeliveries: Vec<(usize, usize, usize)>,
}

fn plan_strategy() -> impl Strategy<Value = Plan> {
    (
        Just((0..MAX_EVENTS).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec((0..MAX_EVENTS, 0..=MAX_EVENTS + 2, 0..8usize), 0..=2),
    )
        .prop_map(|(order, redeliveries)| Plan {
            order,
            redeliveries,
        })
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    event: usize,
    family: Family,
}

impl Plan {
    fn deliveries(&self, signed: &[Signed]) -> Vec<Delivery> {
        let n = signed.len();
        let mut out: Vec<Delivery> = self
            .order
            .iter()
            .filter(|&&i| i < n)
            .map(|&i| Delivery {
                event: i,
                family: signed[i].home,
            })
            .collect();
        for &(event, position, endpoint) in &self.redeliveries {
            let event = event % n;
            // Half the redeliveries go to the home endpoint, the rest to any endpoint.
            let family = match endpoint {
                0..=3 => signed[event].home,
                other => Family::ALL[other - 4],
            };
            out.insert(position % (out.len() + 1), Delivery { event, family });
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Running deliveries through a fresh service
// ---------------------------------------------------------------------------------------------

struct Signed {
    id: String,
    event_type: &'static str,
    home: Family,
    body: Vec<u8>,
    header: String,
}

fn sign_all(events: &[Ev]) -> Vec<Signed> {
    let secret = [WebhookSecret::new(SECRET)];
    events
        .iter()
        .map(|e| {
            let body = e.body();
            let header = signature::sign(&body, &secret, SIGNED_AT);
            Signed {
                id: e.id.clone(),
                event_type: e.event_type(),
                home: family_of(e.event_type()),
                body,
                header,
            }
        })
        .collect()
}

fn tiers() -> TierPolicy {
    TierPolicy {
        price_tiers: HashMap::from([
            ("price_basic".to_owned(), "basic".to_owned()),
            ("price_pro".to_owned(), "pro".to_owned()),
        ]),
        order: vec!["basic".to_owned(), "pro".to_owned()],
    }
}

fn settings() -> Settings {
    Settings {
        tolerance_secs: 300,
        livemode: false,
        mapping: Default::default(),
        tiers: tiers(),
    }
}

/// The final model: what must not depend on the delivery order. (`feed_seq` and `updated_at`
/// of the user's document count the path taken, so they are left out.)
#[derive(Debug, Clone, PartialEq)]
struct Model {
    customers: Vec<CustomerBilling>,
    user: Option<UserPart>,
}

#[derive(Debug, Clone, PartialEq)]
struct UserPart {
    access: billing::domain::access::Access,
    sources: BTreeMap<String, Vec<SubscriptionAccess>>,
}

fn describe(signed: &[Signed], deliveries: &[Delivery]) -> String {
    deliveries
        .iter()
        .map(|d| {
            let s = &signed[d.event];
            if d.family == s.home {
                s.id.clone()
            } else {
                format!("{}@{}", s.id, d.family)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Delivers `deliveries` to a fresh service; checks each outcome and the ledger; returns the model.
async fn run(signed: &[Signed], deliveries: &[Delivery]) -> Result<Model, String> {
    let store = Arc::new(InMemoryBillingStore::new());
    let metrics = Arc::new(Metrics::memory());
    let service = pipeline(
        store.clone(),
        Arc::new(StaticSecrets::everywhere(vec![WebhookSecret::new(SECRET)])),
        Arc::new(FixedClock::at(SIGNED_AT)),
        metrics.clone(),
        settings(),
    );
    let mut first_family: Vec<Option<Family>> = vec![None; signed.len()];
    let mut recorded = vec![0usize; signed.len()];
    let mut duplicates = 0u64;
    for (step, d) in deliveries.iter().enumerate() {
        let s = &signed[d.event];
        let outcome = service
            .receive_stripe(d.family, Some(&s.header), &s.body)
            .await;
        let first = first_family[d.event].is_none();
        let ok = match (&outcome, first) {
            (Outcome::Recorded { event_id, state }, true) => {
                *event_id == s.id && *state != LedgerState::Parked
            }
            (Outcome::Duplicate { event_id }, false) => *event_id == s.id,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "delivery #{step} of {} ({}) to {} ({} delivery) answered {outcome:?}",
                s.id,
                s.event_type,
                d.family,
                if first { "first" } else { "repeated" }
            ));
        }
        if first {
            first_family[d.event] = Some(d.family);
            recorded[d.event] += 1;
        } else {
            duplicates += 1;
        }
    }
    for (i, s) in signed.iter().enumerate() {
        let record = store
            .ledger(Provider::Stripe, &EventId::new(s.id.clone()))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} is not in the ledger", s.id))?;
        if recorded[i] != 1
            || record.state == LedgerState::Parked
            || record.event_type != s.event_type
            || Some(record.family) != first_family[i]
        {
            return Err(format!(
                "{}: recorded {} times, ledger {record:?}",
                s.id, recorded[i]
            ));
        }
    }
    let first_time = metrics.count(Counter::Applied)
        + metrics.count(Counter::Stale)
        + metrics.count(Counter::Ignored);
    if metrics.count(Counter::Redelivered) != duplicates || first_time != signed.len() as u64 {
        return Err(format!(
            "metrics: {} redelivered (expected {duplicates}), {first_time} first deliveries \
             (expected {})",
            metrics.count(Counter::Redelivered),
            signed.len()
        ));
    }
    let mut customers = store.customers();
    customers.sort_by(|a, b| (a.provider, &a.customer).cmp(&(b.provider, &b.customer)));
    let user = store.user(&UserId::new(USER)).map(|doc| UserPart {
        access: doc.access,
        sources: doc.sources,
    });
    Ok(Model { customers, user })
}

/// A deleted subscription stays ended, in the aggregate and in the user's document.
fn check_terminal(model: &Model, deleted: &[usize]) -> Result<(), String> {
    let tiers = tiers();
    for &sub in deleted {
        let id = SubscriptionId::new(SUBS[sub]);
        let from_customer = model
            .customers
            .iter()
            .flat_map(|c| customer_access(c, &tiers))
            .find(|a| a.subscription == id);
        let from_user = model
            .user
            .iter()
            .flat_map(|u| u.sources.values().flatten())
            .find(|a| a.subscription == id)
            .cloned();
        for access in from_customer.iter().chain(from_user.iter()) {
            if access.grants
                || access.billing_status != BillingStatus::Cancelled
                || access.standing != Standing::Ended
            {
                return Err(format!("deleted {id} is not ended: {access:?}"));
            }
        }
        if from_customer.is_none() {
            return Err(format!("deleted {id} has no access view in the aggregate"));
        }
        if let Some(u) = &model.user {
            if u.access.subscription.as_ref() == Some(&id) && u.access.grants_paid_tier() {
                return Err(format!(
                    "user access granted by deleted {id}: {:?}",
                    u.access
                ));
            }
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The parts of two models that differ, as compact JSON (in-order first).
fn diff(reference: &Model, other: &Model) -> String {
    fn compact<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_else(|e| e.to_string())
    }
    let mut out = Vec::new();
    let mut line = |what: String, a: String, b: String| {
        out.push(format!(
            "  {what}\n    in order:   {a}\n    this order: {b}"
        ));
    };
    let by_id = |m: &Model| -> BTreeMap<String, CustomerBilling> {
        m.customers
            .iter()
            .map(|c| (c.customer.to_string(), c.clone()))
            .collect()
    };
    let (ca, cb) = (by_id(reference), by_id(other));
    let ids: BTreeSet<&String> = ca.keys().chain(cb.keys()).collect();
    for id in ids {
        match (ca.get(id), cb.get(id)) {
            (Some(a), Some(b)) => {
                if a.links != b.links {
                    line(format!("{id} links"), compact(&a.links), compact(&b.links));
                }
                let subs: BTreeSet<_> = a
                    .subscriptions
                    .keys()
                    .chain(b.subscriptions.keys())
                    .collect();
                for sub in subs {
                    let (x, y) = (a.subscriptions.get(sub), b.subscriptions.get(sub));
                    if x != y {
                        line(
                            format!("{id} subscriptions[{sub}]"),
                            compact(&x),
                            compact(&y),
                        );
                    }
                }
            }
            (a, b) => line(format!("customer {id}"), compact(&a), compact(&b)),
        }
    }
    match (&reference.user, &other.user) {
        (Some(a), Some(b)) => {
            if a.access != b.access {
                line(
                    format!("{USER} access"),
                    compact(&a.access),
                    compact(&b.access),
                );
            }
            if a.sources != b.sources {
                line(
                    format!("{USER} sources"),
                    compact(&a.sources),
                    compact(&b.sources),
                );
            }
        }
        (a, b) if a != b => line(
            format!("{USER} document"),
            format!("{}", a.is_some()),
            format!("{}", b.is_some()),
        ),
        _ => {}
    }
    out.join("\n")
}

/// What the generated cases exercised (printed, so a weakened generator shows up).
#[derive(Default)]
struct Coverage(Mutex<BTreeMap<String, usize>>);

impl Coverage {
    fn add(&self, key: String) {
        *self
            .0
            .lock()
            .expect("coverage lock")
            .entry(key)
            .or_default() += 1;
    }

    fn lifecycle(&self, lifecycle: &Lifecycle, reference: &Model) {
        self.add(format!("lifecycle: link {:?}", lifecycle.link));
        self.add(format!("lifecycle: {} subscription(s)", lifecycle.subs));
        let events = &lifecycle.events;
        if events.windows(2).any(|w| w[0].created == w[1].created) {
            self.add("lifecycle: same-second tie".into());
        }
        if !lifecycle.deleted_subs().is_empty() {
            self.add("lifecycle: a deletion".into());
        }
        let access = reference.user.as_ref().map(|u| &u.access);
        self.add(format!(
            "lifecycle: final user standing {:?}, tier {:?}",
            access.map(|a| a.standing),
            access.and_then(|a| a.tier.clone())
        ));
        for e in events {
            self.add(format!("event: {}", e.event_type()));
            if let Kind::Invoice { basil, .. } = e.kind {
                self.add(format!(
                    "event: invoice subscription {}",
                    if basil {
                        "under parent (basil)"
                    } else {
                        "top-level"
                    }
                ));
            }
        }
    }

    fn plan(&self, signed: &[Signed], deliveries: &[Delivery]) {
        for (i, d) in deliveries.iter().enumerate() {
            if deliveries[..i].iter().any(|p| p.event == d.event) {
                self.add("delivery: redelivery".into());
            }
            if d.family != signed[d.event].home {
                self.add("delivery: to another family's endpoint".into());
            }
        }
    }

    fn report(&self) -> String {
        self.0
            .lock()
            .expect("coverage lock")
            .iter()
            .map(|(k, n)| format!("  {n:>6}  {k}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn lifecycles_converge_in_any_order() {
    let rt = runtime();
    let checked = AtomicUsize::new(0);
    let reordered = AtomicUsize::new(0);
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        lifecycle_strategy(),
        prop::collection::vec(plan_strategy(), PLANS_PER_CASE),
    );
    let result = runner.run(&strategy, |(lifecycle, plans)| {
        let signed = sign_all(&lifecycle.events);
        let in_order: Vec<Delivery> = (0..signed.len())
            .map(|event| Delivery {
                event,
                family: signed[event].home,
            })
            .collect();
        let reference = rt
            .block_on(run(&signed, &in_order))
            .map_err(|e| TestCaseError::fail(format!("in-order delivery: {e}")))?;
        let deleted = lifecycle.deleted_subs();
        check_terminal(&reference, &deleted)
            .map_err(|e| TestCaseError::fail(format!("in-order delivery: {e}")))?;
        coverage.lifecycle(&lifecycle, &reference);
        for (k, plan) in plans.iter().enumerate() {
            let deliveries = plan.deliveries(&signed);
            coverage.plan(&signed, &deliveries);
            let order = describe(&signed, &deliveries);
            let model = rt
                .block_on(run(&signed, &deliveries))
                .map_err(|e| TestCaseError::fail(format!("plan {k} [{order}]: {e}")))?;
            check_terminal(&model, &deleted)
                .map_err(|e| TestCaseError::fail(format!("plan {k} [{order}]: {e}")))?;
            if model != reference {
                return Err(TestCaseError::fail(format!(
                    "plan {k} [{order}] ends elsewhere than in-order delivery\n{}",
                    diff(&reference, &model)
                )));
            }
            checked.fetch_add(1, Ordering::Relaxed);
            if plan
                .order
                .iter()
                .copied()
                .filter(|&i| i < signed.len())
                .ne(0..signed.len())
            {
                reordered.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (lifecycle, plans))) => panic!(
            "order-independence violated: {reason}\nminimal failing lifecycle: {lifecycle:#?}\n\
             ({} delivery plans; the failing sequence is the one in brackets above)",
            plans.len()
        ),
        Err(e) => panic!("{e}"),
    }
    let n = checked.load(Ordering::Relaxed);
    eprintln!(
        "permutations checked: {n} ({} not in the in-order sequence) over {CASES} lifecycles",
        reordered.load(Ordering::Relaxed)
    );
    eprintln!(
        "coverage (lifecycles, events, deliveries):\n{}",
        coverage.report()
    );
    assert!(n >= 1000, "only {n} permutations checked");
}

/// Every order of 6 events, each run with one redelivery (rotating over all four endpoints).
#[test]
fn hand_written_lifecycle_all_720_orders() {
    let ev = |id: &str, offset: i64, kind: Kind| Ev {
        id: id.to_owned(),
        created: BASE + offset,
        kind,
    };
    // Event ids are chosen so that id order disagrees with the intended same-second precedence
    // (invoice.paid beats invoice.payment_failed of the same second by rank, not by id).
    let events = vec![
        ev("evt_h6_checkout", 0, Kind::Checkout { sub: 0, user: true }),
        ev(
            "evt_h5_created",
            0,
            Kind::Subscription {
                created: true,
                sub: 0,
                status: "active",
                cancel_at_period_end: false,
                price: 0,
                months: 1,
                user_meta: false,
            },
        ),
        ev(
            "evt_h4_failed",
            1,
            Kind::Invoice {
                ty: "invoice.payment_failed",
                sub: 0,
                invoice: 1,
                basil: false,
            },
        ),
        ev(
            "evt_h3_paid",
            1,
            Kind::Invoice {
                ty: "invoice.paid",
                sub: 0,
                invoice: 1,
                basil: true,
            },
        ),
        ev(
            "evt_h2_cancel_at_period_end",
            2,
            Kind::Subscription {
                created: false,
                sub: 0,
                status: "active",
                cancel_at_period_end: true,
                price: 1,
                months: 1,
                user_meta: false,
            },
        ),
        ev(
            "evt_h1_deleted",
            3,
            Kind::Deleted {
                sub: 0,
                reason: "cancellation_requested",
                price: 1,
                user_meta: false,
            },
        ),
    ];
    let signed = sign_all(&events);
    let rt = runtime();
    let in_order: Vec<Delivery> = (0..signed.len())
        .map(|event| Delivery {
            event,
            family: signed[event].home,
        })
        .collect();
    let reference = rt.block_on(run(&signed, &in_order)).expect("in order");

    // The in-order model is the one the product brief describes.
    assert_eq!(reference.customers.len(), 1);
    let customer = &reference.customers[0];
    assert_eq!(
        customer
            .links
            .get(&LinkSource::CheckoutClientReference)
            .map(|r| &r.value),
        Some(&UserId::new(USER))
    );
    let record = &customer.subscriptions[&SubscriptionId::new(SUBS[0])];
    assert_eq!(
        record.payment().map(|(o, _)| o),
        Some(PaymentOutcome::Paid),
        "a payment settles a failure of the same second"
    );
    assert_eq!(
        record
            .latest()
            .map(|l| l.candidate.snapshot.status.as_str()),
        Some("canceled")
    );
    let access = customer_access(customer, &tiers());
    assert_eq!(access.len(), 1);
    assert!(!access[0].grants);
    assert_eq!(access[0].billing_status, BillingStatus::Cancelled);
    assert_eq!(
        access[0].cancellation_reason.as_deref(),
        Some("cancellation_requested")
    );
    let user = reference.user.as_ref().expect("user document");
    assert_eq!(user.access.standing, Standing::Ended);
    assert_eq!(user.access.billing_status, BillingStatus::Cancelled);
    assert_eq!(user.access.tier, None);
    assert_eq!(user.access.subscription, Some(SubscriptionId::new(SUBS[0])));
    check_terminal(&reference, &[0]).expect("in order: terminal");

    let mut count = 0;
    for (k, order) in permutations(signed.len()).into_iter().enumerate() {
        let mut deliveries: Vec<Delivery> = order
            .iter()
            .map(|&event| Delivery {
                event,
                family: signed[event].home,
            })
            .collect();
        let again = order[k % order.len()];
        deliveries.insert(
            (k / order.len()) % (deliveries.len() + 1),
            Delivery {
                event: again,
                family: Family::ALL[k % Family::ALL.len()],
            },
        );
        let seq = describe(&signed, &deliveries);
        let model = rt
            .block_on(run(&signed, &deliveries))
            .unwrap_or_else(|e| panic!("order {k} [{seq}]: {e}"));
        check_terminal(&model, &[0]).unwrap_or_else(|e| panic!("order {k} [{seq}]: {e}"));
        assert!(
            model == reference,
            "order {k} [{seq}] ends elsewhere than in-order delivery\n{}",
            diff(&reference, &model)
        );
        count += 1;
    }
    eprintln!("hand-written lifecycle: {count} orders checked");
    assert_eq!(count, 720);
}

/// The smallest case the property test finds (it shrinks to three checkouts because lifecycles
/// have at least three events): two completed checkouts of one customer, one per subscription.
/// Delivered newest first, the older checkout's link is stale, so its commit writes only the
/// ledger and drops the (empty) record of its subscription that `apply` adds; delivered in
/// order, that record is stored. Access is the same either way (an empty record has no view),
/// but the stored aggregate depends on the order.
#[test]
fn two_checkouts_in_either_order() {
    let events = vec![
        Ev {
            id: "evt_c1".into(),
            created: BASE,
            kind: Kind::Checkout { sub: 0, user: true },
        },
        Ev {
            id: "evt_c2".into(),
            created: BASE + 1,
            kind: Kind::Checkout { sub: 1, user: true },
        },
    ];
    let signed = sign_all(&events);
    let rt = runtime();
    let deliver = |order: &[usize]| {
        let deliveries: Vec<Delivery> = order
            .iter()
            .map(|&event| Delivery {
                event,
                family: signed[event].home,
            })
            .collect();
        rt.block_on(run(&signed, &deliveries))
            .unwrap_or_else(|e| panic!("{order:?}: {e}"))
    };
    let in_order = deliver(&[0, 1]);
    let reversed = deliver(&[1, 0]);
    assert!(
        reversed == in_order,
        "evt_c2 then evt_c1 ends elsewhere than in-order delivery\n{}",
        diff(&in_order, &reversed)
    );
}

/// All permutations of `0..n`, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    let mut current: Vec<usize> = (0..n).collect();
    let mut all = vec![current.clone()];
    loop {
        let Some(i) = (1..n).rev().find(|&i| current[i - 1] < current[i]) else {
            return all;
        };
        let j = (i..n)
            .rev()
            .find(|&j| current[j] > current[i - 1])
            .expect("a larger element");
        current.swap(i - 1, j);
        current[i..].reverse();
        all.push(current.clone());
    }
}
