//! The canonical billing events: what every provider's payload is translated into.
//! Providers' wire types never get past `providers/`; the model only sees these.

use super::ids::{
    CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, SubscriptionId, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Facts every event carries, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub provider: Provider,
    pub id: EventId,
    /// The provider's type string, kept verbatim (`customer.subscription.updated`).
    pub event_type: String,
    /// Provider timestamp, Unix seconds.
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
}

/// How a user id claim was found; a higher kind wins over a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkSource {
    SubscriptionMetadata = 1,
    CustomerMetadata = 2,
    CheckoutClientReference = 3,
}

/// What kind of subscription event carried a snapshot (decides same-second precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionChange {
    Created,
    Updated,
    TrialWillEnd,
    Paused,
    Resumed,
    Deleted,
}

/// A subscription as one event saw it: the full object, reduced to what the model keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    pub id: SubscriptionId,
    pub customer: CustomerId,
    /// Provider status verbatim (`active`, `past_due`, … or a value we do not know yet).
    pub status: String,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    /// Tier named by price or product metadata in the payload, if any.
    pub tier_hint: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancellation_reason: Option<String>,
    /// User id from the subscription's metadata (configured key), if present.
    pub user_claim: Option<UserId>,
}

/// Evidence of order between snapshots of one object taken in the same second.
///
/// Providers stamp events to the second (Stripe) and ids are random, so two events about one
/// object in one second cannot be ordered by their envelopes. An update event reports the values
/// its change replaced (Stripe's `data.previous_attributes`): of two same-second snapshots, the
/// later is the one whose previous values are the other's values. Both sides are kept as short
/// digests per leaf path (`status`, `metadata.note`, `items`), so comparing them needs no payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvidence {
    /// Leaf path → digest of the object's value after the event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Leaf path → digest of the value before the event; empty when the event reports none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous: BTreeMap<String, String>,
}

impl OrderEvidence {
    /// Digest of a path absent from an object (compared as JSON `null`).
    pub const ABSENT: &'static str = "null";

    /// Whether `self` was taken right after `earlier`: every value this event replaced is the
    /// value `earlier` shows. An event that reports no previous values proves nothing.
    pub fn follows(&self, earlier: &OrderEvidence) -> bool {
        !self.previous.is_empty()
            && self.previous.iter().all(|(path, before)| {
                earlier
                    .values
                    .get(path)
                    .map_or(Self::ABSENT, String::as_str)
                    == before
            })
    }
}

/// What an invoice event says about the payment of a subscription (the derived standing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    ActionRequired,
    Failed,
    Paid,
}

/// What happened to an invoice, as one event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceChange {
    /// The customer must authenticate the payment (3-D Secure): `invoice.payment_action_required`.
    ActionRequired,
    /// An attempt failed: `invoice.payment_failed`.
    Failed,
    /// `invoice.paid` / `invoice.payment_succeeded`.
    Paid,
    /// `invoice.voided`: the invoice will never be paid; nothing is owed.
    Voided,
    /// `invoice.marked_uncollectible`: written off (it may still be paid later).
    MarkedUncollectible,
}

impl InvoiceChange {
    /// The standing-ending outcome this change settles the invoice with, if it settles it.
    pub fn settlement(self) -> Option<Settlement> {
        match self {
            InvoiceChange::Paid => Some(Settlement::Paid),
            InvoiceChange::Voided => Some(Settlement::Voided),
            InvoiceChange::MarkedUncollectible => Some(Settlement::Uncollectible),
            InvoiceChange::ActionRequired | InvoiceChange::Failed => None,
        }
    }
}

/// How an invoice stopped being owed; a greater one replaces a smaller (an uncollectible invoice
/// can still be paid; a paid or voided one is final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Uncollectible,
    Voided,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePayment {
    pub invoice: InvoiceId,
    pub customer: CustomerId,
    pub subscription: Option<SubscriptionId>,
    pub change: InvoiceChange,
    /// The invoice's own creation time (the same in every event of it); orders invoices.
    pub invoice_created: Option<i64>,
    /// Which payment attempt the event is about (`attempt_count`); both events Stripe sends for
    /// one attempt that needs authentication carry the same number.
    pub attempt: Option<u32>,
    /// Stripe's hosted invoice page, for "payment action required" emails.
    pub hosted_invoice_url: Option<String>,
    /// The user named by the subscription's metadata as copied onto the invoice. Only a hint
    /// for reading the user's item up front; links come from checkout, customer, subscription.
    pub user_hint: Option<UserId>,
}

/// The features a customer is entitled to, as one summary event lists them (Stripe
/// Entitlements: `entitlements.active_entitlement_summary.updated` carries the whole list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementSet {
    /// The features' lookup keys (the application's own names for them).
    pub lookup_keys: BTreeSet<String>,
    /// `false` when the event's list was cut short (`has_more`): the keys are a part only.
    pub complete: bool,
}

/// What happened to a catalogue object (a product, a price, or a price's legacy plan object);
/// decides same-second precedence like [`SubscriptionChange`]: creation first, deletion last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueChange {
    Created,
    Updated,
    Deleted,
}

/// A product as one event saw it, reduced to what the model keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSnapshot {
    pub id: ProductId,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Whether it can be bought now (the provider's `active`); a deletion is kept apart.
    pub active: bool,
    /// The tier named by the product's metadata (`BILLING_TIER_METADATA_KEY`).
    pub tier: Option<String>,
}

/// How a price is paid: once, or every `interval_count` `interval`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PriceBilling {
    OneTime,
    Recurring {
        /// `day`, `week`, `month` or `year`, verbatim.
        interval: String,
        interval_count: u32,
    },
}

/// A price as one event saw it, reduced to what the model keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSnapshot {
    pub id: PriceId,
    /// The product it belongs to (a price never moves to another product).
    pub product: ProductId,
    pub active: bool,
    /// ISO 4217, lowercase as Stripe sends it.
    pub currency: String,
    /// In the currency's minor unit (cents; yen have none, dinars three); `None` for tiered or
    /// customer-chosen amounts.
    pub unit_amount: Option<i64>,
    pub billing: PriceBilling,
    /// The tier named by the price's metadata (`BILLING_TIER_METADATA_KEY`).
    pub tier: Option<String>,
    pub nickname: Option<String>,
    /// Prices only: the legacy plan object has no lookup key.
    pub lookup_key: Option<String>,
}

/// Which object an event about a price carried. Stripe still sends `plan.*` (the legacy object)
/// beside `price.*` for recurring prices: two events, two shapes, one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceObject {
    Plan,
    Price,
}

/// An event about the catalogue: it changes one product aggregate and no customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "catalogue", rename_all = "snake_case")]
pub enum CatalogueEvent {
    Product {
        change: CatalogueChange,
        snapshot: ProductSnapshot,
        /// Orders this snapshot against others of the same second (per snapshot field).
        #[serde(default)]
        evidence: OrderEvidence,
    },
    Price {
        change: CatalogueChange,
        object: PriceObject,
        snapshot: PriceSnapshot,
        #[serde(default)]
        evidence: OrderEvidence,
    },
}

impl CatalogueEvent {
    /// The product whose aggregate the event changes.
    pub fn product(&self) -> &ProductId {
        match self {
            CatalogueEvent::Product { snapshot, .. } => &snapshot.id,
            CatalogueEvent::Price { snapshot, .. } => &snapshot.product,
        }
    }
}

/// The aggregate an event is applied to: the unit of one consistent read and one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateKey {
    /// A provider customer: links, subscriptions, invoices.
    Customer(CustomerId),
    /// A catalogue product with its prices.
    Product(ProductId),
}

impl AggregateKey {
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            AggregateKey::Customer(c) => Some(c),
            AggregateKey::Product(_) => None,
        }
    }
}

/// The canonical event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BillingEvent {
    /// A completed Checkout: links the customer (and its subscription) to a user.
    CheckoutCompleted {
        customer: CustomerId,
        subscription: Option<SubscriptionId>,
        user: Option<UserId>,
    },
    Subscription {
        change: SubscriptionChange,
        snapshot: SubscriptionSnapshot,
        /// Orders this snapshot against others of the same second.
        #[serde(default)]
        evidence: OrderEvidence,
    },
    InvoicePayment(InvoicePayment),
    /// A customer object was created or updated; it may carry a user id in its metadata.
    CustomerUpdated {
        customer: CustomerId,
        user_claim: Option<UserId>,
    },
    /// The customer was deleted: its subscriptions end (the provider cancels them too).
    CustomerDeleted {
        customer: CustomerId,
    },
    /// A customer's active entitlements changed; the event lists all of them.
    Entitlements {
        customer: CustomerId,
        entitlements: EntitlementSet,
        /// Orders this summary against others of the same second.
        #[serde(default)]
        evidence: OrderEvidence,
    },
    /// A product, price or plan changed: applied to the product's aggregate.
    Catalogue(CatalogueEvent),
    /// A type this system records but does not model (yet): answered 200 as "ignored".
    Unsupported,
}

impl BillingEvent {
    /// The customer whose billing state this event touches, if it touches any.
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            BillingEvent::CheckoutCompleted { customer, .. }
            | BillingEvent::CustomerUpdated { customer, .. }
            | BillingEvent::CustomerDeleted { customer }
            | BillingEvent::Entitlements { customer, .. } => Some(customer),
            BillingEvent::Subscription { snapshot, .. } => Some(&snapshot.customer),
            BillingEvent::InvoicePayment(p) => Some(&p.customer),
            BillingEvent::Catalogue(_) | BillingEvent::Unsupported => None,
        }
    }

    /// The aggregate this event is applied to; `None` for a type that is not modelled.
    pub fn aggregate(&self) -> Option<AggregateKey> {
        match self {
            BillingEvent::Catalogue(c) => Some(AggregateKey::Product(c.product().clone())),
            other => other.customer().cloned().map(AggregateKey::Customer),
        }
    }

    /// A user id named by the event itself (lets the store read the user's item up front).
    pub fn user_claim(&self) -> Option<&UserId> {
        match self {
            BillingEvent::CheckoutCompleted { user, .. } => user.as_ref(),
            BillingEvent::Subscription { snapshot, .. } => snapshot.user_claim.as_ref(),
            BillingEvent::CustomerUpdated { user_claim, .. } => user_claim.as_ref(),
            BillingEvent::InvoicePayment(p) => p.user_hint.as_ref(),
            BillingEvent::CustomerDeleted { .. }
            | BillingEvent::Entitlements { .. }
            | BillingEvent::Catalogue(_)
            | BillingEvent::Unsupported => None,
        }
    }
}
