//! The canonical billing events: what every provider's payload is translated into.
//! Providers' wire types never get past `providers/`; the model only sees these.

pub use super::charge::{
    ChargeBinding, ChargeEvent, ChargeRefund, DisputeChange, DisputeEvent, RefundChange,
    RefundEvent,
};
pub use super::facts::{EventMeta, OrderEvidence, Settlement, Span};
use super::ids::{Account, CustomerId, InvoiceId, PriceId, ProductId, SubscriptionId, UserId};
pub use super::status::SubscriptionStatus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a user id claim was found; a higher kind wins over a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkSource {
    SubscriptionMetadata = 1,
    CustomerMetadata = 2,
    CheckoutClientReference = 3,
    /// `billing grant`: the operator named the user.
    Operator = 4,
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
    /// Provider status (`active`, `past_due`, … or a word we do not know yet, kept verbatim);
    /// stored as the plain word.
    pub status: SubscriptionStatus,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    /// Tier named by price or product metadata in the payload, if any.
    pub tier_hint: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub trial_end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_start: Option<i64>,
    pub cancellation_reason: Option<String>,
    /// User id from the subscription's metadata (configured key), if present.
    pub user_claim: Option<UserId>,
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
    /// The service period the invoice bills for its subscription (its subscription lines, no
    /// prorations); a settled invoice makes it one of the subscription's periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_reason: Option<String>,
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

/// A one-time purchase as a payment-mode Checkout Session shows it. The session's facts do not
/// change between its events except `paid` (an asynchronous payment method completes the
/// session unpaid and pays it later), so every event of one session joins into one purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// The Checkout Session id, or the invoice id of a one-off invoice: a user may buy the same
    /// product several times, each its own.
    pub session: String,
    /// Where it was bought.
    #[serde(default)]
    pub kind: PurchaseKind,
    /// What links the purchase to its charge (and so to refunds).
    pub payment_intent: Option<String>,
    /// The product bought, when the payload names it (expanded line items, or the session's
    /// `product_id` metadata); the session event carries no line items otherwise.
    pub product: Option<ProductId>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// `payment_status` was `paid` (or `no_payment_required`).
    pub paid: bool,
    /// Bought for someone else: the session's gift metadata (see [`Gift`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift: Option<Gift>,
    /// The session's (or invoice's) own `created`: the same in each of its events; orders a
    /// user's purchases newest first where only the newest are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// The refunded or disputed charges that paid it, by charge id: the customer's copies of
    /// their items, kept with the purchase (in its item) so that the customer's own item does
    /// not grow with them. Never in an event: the aggregate moves them here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paid_by: BTreeMap<String, super::charge::Charge>,
}

/// A period bought as a gift: a payment-mode Checkout Session whose metadata names the
/// recipient (`gift_recipient_user_id`), the length (`gift_days`) and the tier (the tier
/// metadata key, `tier` by default). The period starts when the session was created, so every
/// event of the session says the same; it grants the recipient while the purchase is paid and
/// not refunded or lost in a dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    pub recipient: UserId,
    pub tier: String,
    pub start: i64,
    pub end: i64,
}

/// Where a one-time purchase was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseKind {
    /// A payment-mode Checkout Session.
    #[default]
    Checkout,
    /// A paid invoice of no subscription.
    Invoice,
}

/// A period the operator granted a user (`billing grant USER --days N --reason TEXT`):
/// recorded, applied and audited like a provider event, in the user's own operator account
/// (`system:<user>`), which is one more billing source of that user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemGrant {
    /// The account the grant is kept in: named like the user.
    pub account: CustomerId,
    pub user: UserId,
    /// `[start, end)`, Unix seconds.
    pub start: i64,
    pub end: i64,
    pub tier: String,
    /// Why, in the operator's words (shown in the audit trail and the billing answer).
    pub reason: String,
    /// Who granted it.
    pub by: String,
}

/// A subscription schedule as one event shows it (`subscription_schedule.*`): the phases it
/// will move its subscription through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSnapshot {
    pub id: String,
    pub customer: CustomerId,
    /// The subscription it manages (none before it starts; the released one after release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionId>,
    /// `not_started`, `active`, `completed`, `released`, `canceled`, verbatim.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<SchedulePhase>,
}

/// One phase of a schedule: from `start` to `end`, on `price` (its first item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePhase {
    pub start: i64,
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<i64>,
}

impl ScheduleSnapshot {
    /// The phases still to come: every phase of a schedule not started yet, the phases after
    /// the current one of an active schedule, none once it was completed, released, canceled.
    pub fn scheduled(&self) -> Vec<&SchedulePhase> {
        match (self.status.as_str(), self.current_phase) {
            ("not_started", _) => self.phases.iter().collect(),
            ("active", Some(current)) => self
                .phases
                .iter()
                .filter(|p| p.start >= current.end)
                .collect(),
            _ => Vec::new(),
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
        /// A payment-mode session: the one-time purchase it records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purchase: Option<Purchase>,
        /// The address the customer gave at Checkout (`customer_details.email`, else
        /// `customer_email`): the customer record's address for the emails.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<EmailAddress>,
    },
    /// `charge.refunded`: how much of one charge has been refunded so far.
    ChargeRefunded(ChargeRefund),
    /// An event naming a charge and its customer: binds the charge to the customer.
    ChargeBound(ChargeBinding),
    /// `charge.dispute.*`: names the charge only (its item joins it with the customer).
    Dispute(DisputeEvent),
    /// `refund.*`, `charge.refund.updated`: names the charge only.
    Refund(RefundEvent),
    Subscription {
        change: SubscriptionChange,
        snapshot: SubscriptionSnapshot,
        /// Orders this snapshot against others of the same second.
        #[serde(default)]
        evidence: OrderEvidence,
    },
    InvoicePayment(InvoicePayment),
    /// Any `invoice.*` event the model keeps: the invoice as the event shows it (and, for the
    /// payment events, what it says about paying a subscription: [`InvoiceEvent::payment`]).
    Invoice(Box<InvoiceEvent>),
    /// One payment of an invoice (`invoice_payment.paid`, API 2025-03-31.basil and later): it
    /// names the invoice but not its customer.
    InvoicePaymentPaid(InvoicePaymentPaid),
    /// A customer object was created or updated; it may carry a user id in its metadata.
    CustomerUpdated {
        customer: CustomerId,
        user_claim: Option<UserId>,
        /// The customer object's `email` (the customer record's address for the emails):
        /// `None` when the payload has no `email` field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<AddressChange>,
        /// How the emails address them: the object's `name` and `preferred_locales`
        /// (`None` when the payload has neither field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<CustomerProfile>,
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
    /// The operator granted a user a period (see [`SystemGrant`]).
    Grant(SystemGrant),
    /// A subscription schedule changed (`subscription_schedule.*`); `rank` orders the events
    /// of one second (created, updated, ended).
    Schedule {
        rank: u8,
        snapshot: ScheduleSnapshot,
        #[serde(default)]
        evidence: OrderEvidence,
    },
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
            BillingEvent::ChargeRefunded(r) => Some(&r.customer),
            BillingEvent::ChargeBound(b) => Some(&b.customer),
            BillingEvent::Subscription { snapshot, .. } => Some(&snapshot.customer),
            BillingEvent::InvoicePayment(p) => Some(&p.customer),
            BillingEvent::Invoice(e) => Some(&e.snapshot.customer),
            BillingEvent::Grant(g) => Some(&g.account),
            BillingEvent::Schedule { snapshot, .. } => Some(&snapshot.customer),
            BillingEvent::InvoicePaymentPaid(_)
            | BillingEvent::Dispute(_)
            | BillingEvent::Refund(_)
            | BillingEvent::Catalogue(_)
            | BillingEvent::Unsupported => None,
        }
    }

    /// The charge whose own item this event changes, if any (read and written with it).
    pub fn charge(&self) -> Option<&str> {
        self.charge_event().map(ChargeEvent::charge)
    }

    /// What this event says to its charge's own item, if it names a charge.
    pub fn charge_event(&self) -> Option<ChargeEvent<'_>> {
        match self {
            BillingEvent::ChargeRefunded(r) => Some(ChargeEvent::Refunded(r)),
            BillingEvent::ChargeBound(b) => Some(ChargeEvent::Bound(b)),
            BillingEvent::Dispute(d) => Some(ChargeEvent::Dispute(d)),
            BillingEvent::Refund(r) => Some(ChargeEvent::Refund(r)),
            BillingEvent::CheckoutCompleted { .. }
            | BillingEvent::Subscription { .. }
            | BillingEvent::InvoicePayment(_)
            | BillingEvent::Invoice(_)
            | BillingEvent::InvoicePaymentPaid(_)
            | BillingEvent::CustomerUpdated { .. }
            | BillingEvent::CustomerDeleted { .. }
            | BillingEvent::Entitlements { .. }
            | BillingEvent::Catalogue(_)
            | BillingEvent::Grant(_)
            | BillingEvent::Schedule { .. }
            | BillingEvent::Unsupported => None,
        }
    }

    /// The aggregate this event is applied to; `None` for a type that is not modelled (and for
    /// `invoice_payment.paid`, which changes only its invoice's record: see [`Self::invoice`]).
    pub fn aggregate(&self) -> Option<AggregateKey> {
        match self {
            BillingEvent::Catalogue(c) => Some(AggregateKey::Product(c.product().clone())),
            other => other.customer().cloned().map(AggregateKey::Customer),
        }
    }

    /// The invoice whose own record this event changes, if any (read and written with it).
    pub fn invoice(&self) -> Option<&InvoiceId> {
        match self {
            BillingEvent::Invoice(e) => Some(&e.snapshot.id),
            BillingEvent::InvoicePaymentPaid(p) => Some(&p.invoice),
            _ => None,
        }
    }

    /// Names every user this event mentions inside `account` (`{account}/{user}`): a connected
    /// account's users are its own, so its user `42` and the platform's (or another account's)
    /// user `42` never share an item, a document or a feed message. Every variant is listed, so
    /// a new one that names a user must say how here.
    pub fn scope_users(&mut self, account: Account) {
        let scope = |user: &mut UserId| *user = user.in_account(account);
        match self {
            BillingEvent::CheckoutCompleted { user, purchase, .. } => {
                user.as_mut().map(scope);
                if let Some(gift) = purchase.as_mut().and_then(|p| p.gift.as_mut()) {
                    scope(&mut gift.recipient);
                }
            }
            BillingEvent::Subscription { snapshot, .. } => {
                snapshot.user_claim.as_mut().map(scope);
            }
            BillingEvent::CustomerUpdated { user_claim, .. } => {
                user_claim.as_mut().map(scope);
            }
            BillingEvent::InvoicePayment(p) => {
                p.user_hint.as_mut().map(scope);
            }
            BillingEvent::Invoice(e) => {
                e.snapshot.user_hint.as_mut().map(scope);
            }
            BillingEvent::Grant(g) => scope(&mut g.user),
            BillingEvent::CustomerDeleted { .. }
            | BillingEvent::Schedule { .. }
            | BillingEvent::ChargeRefunded(_)
            | BillingEvent::ChargeBound(_)
            | BillingEvent::Dispute(_)
            | BillingEvent::Refund(_)
            | BillingEvent::Entitlements { .. }
            | BillingEvent::Catalogue(_)
            | BillingEvent::InvoicePaymentPaid(_)
            | BillingEvent::Unsupported => {}
        }
    }

    /// A user id named by the event itself (lets the store read the user's item up front).
    pub fn user_claim(&self) -> Option<&UserId> {
        match self {
            BillingEvent::CheckoutCompleted { user, .. } => user.as_ref(),
            BillingEvent::Subscription { snapshot, .. } => snapshot.user_claim.as_ref(),
            BillingEvent::CustomerUpdated { user_claim, .. } => user_claim.as_ref(),
            BillingEvent::InvoicePayment(p) => p.user_hint.as_ref(),
            BillingEvent::Invoice(e) => e.snapshot.user_hint.as_ref(),
            BillingEvent::Grant(g) => Some(&g.user),
            BillingEvent::CustomerDeleted { .. }
            | BillingEvent::Schedule { .. }
            | BillingEvent::ChargeRefunded(_)
            | BillingEvent::ChargeBound(_)
            | BillingEvent::Dispute(_)
            | BillingEvent::Refund(_)
            | BillingEvent::Entitlements { .. }
            | BillingEvent::Catalogue(_)
            | BillingEvent::InvoicePaymentPaid(_)
            | BillingEvent::Unsupported => None,
        }
    }
}

/// What a customer object says about its address: one is given, or the field is empty (the
/// address was removed, so none is mailed any more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressChange {
    Set(EmailAddress),
    Removed,
}

impl AddressChange {
    pub fn address(&self) -> Option<&EmailAddress> {
        match self {
            AddressChange::Set(a) => Some(a),
            AddressChange::Removed => None,
        }
    }
}

/// An email address: kept for the customer emails, never logged (`Debug` is redacted).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

/// How a customer is addressed in the emails: their name and the languages they prefer, as the
/// provider's customer object holds them (bounded: the name at most 256 characters, at most 5
/// locale tags). Personal data: read by the email consumer only, never in a view, an audit entry,
/// a feed message or a log line (`Debug` is redacted).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_locales: Vec<String>,
}

impl CustomerProfile {
    pub const MAX_NAME_CHARS: usize = 256;
    pub const MAX_LOCALES: usize = 5;

    /// A profile within its bounds: a blank name is none, a longer one cut, locales that are
    /// not tags dropped.
    pub fn new(name: Option<&str>, locales: &[&str]) -> Self {
        Self {
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(Self::MAX_NAME_CHARS).collect()),
            preferred_locales: locales
                .iter()
                .map(|l| l.trim())
                .filter(|l| {
                    !l.is_empty()
                        && l.len() <= 16
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                .take(Self::MAX_LOCALES)
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl std::fmt::Debug for CustomerProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerProfile(<redacted>)")
    }
}

/// Which `invoice.*` event carried an invoice snapshot: decides what it says about the
/// invoice's payment and its same-second precedence ([`InvoiceEventKind::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceEventKind {
    Created,
    Finalized,
    FinalizationFailed,
    Updated,
    /// A draft was deleted: terminal.
    Deleted,
    ActionRequired,
    Failed,
    /// `invoice.paid` / `invoice.payment_succeeded`.
    Paid,
    Voided,
    MarkedUncollectible,
}

impl InvoiceEventKind {
    /// What the event says about a payment of the invoice, if it is a payment event.
    pub fn change(self) -> Option<InvoiceChange> {
        match self {
            InvoiceEventKind::ActionRequired => Some(InvoiceChange::ActionRequired),
            InvoiceEventKind::Failed => Some(InvoiceChange::Failed),
            InvoiceEventKind::Paid => Some(InvoiceChange::Paid),
            InvoiceEventKind::Voided => Some(InvoiceChange::Voided),
            InvoiceEventKind::MarkedUncollectible => Some(InvoiceChange::MarkedUncollectible),
            InvoiceEventKind::Created
            | InvoiceEventKind::Finalized
            | InvoiceEventKind::FinalizationFailed
            | InvoiceEventKind::Updated
            | InvoiceEventKind::Deleted => None,
        }
    }

    /// Same-second precedence, in the order an invoice lives: created, then finalized, then
    /// updates and payment attempts, then written off, then paid, voided or deleted (an invoice
    /// that is written off can still be paid or voided; nothing follows those three).
    pub fn rank(self) -> u8 {
        match self {
            InvoiceEventKind::Created => 1,
            InvoiceEventKind::Finalized | InvoiceEventKind::FinalizationFailed => 2,
            InvoiceEventKind::Updated
            | InvoiceEventKind::ActionRequired
            | InvoiceEventKind::Failed => 3,
            InvoiceEventKind::MarkedUncollectible => 4,
            InvoiceEventKind::Paid | InvoiceEventKind::Voided | InvoiceEventKind::Deleted => 5,
        }
    }
}

/// One line item of an invoice, as the invoice object lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// Minor units of the invoice's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_item: Option<String>,
}

/// An invoice as one event's object shows it, reduced to what the model keeps. Amounts are
/// minor units of `currency` (JPY has none, BHD three).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSnapshot {
    pub id: InvoiceId,
    pub customer: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionId>,
    /// The provider's status verbatim (`draft`, `open`, `paid`, `void`, `uncollectible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_due: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_invoice_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_pdf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_payment_attempt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_count: Option<u32>,
    /// The recipient of the customer emails; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<EmailAddress>,
    /// `subscription_create` (the first invoice of a subscription), `subscription_cycle`,
    /// `manual`, …, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_reason: Option<String>,
    /// The invoice's own creation time (`date` before API 2019-03-14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<InvoiceLine>,
    /// The invoice has more lines than `lines` holds (a later page, or over the kept maximum).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more_lines: bool,
    /// The user named by the subscription's metadata copied onto the invoice, or by the
    /// invoice's own metadata: a hint, not a link (links come from checkout, customer and
    /// subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_hint: Option<UserId>,
}

/// An `invoice.*` event the model keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceEvent {
    pub kind: InvoiceEventKind,
    pub snapshot: InvoiceSnapshot,
    /// Orders this snapshot against others of the same second and precedence.
    #[serde(default)]
    pub evidence: OrderEvidence,
}

impl InvoiceEvent {
    /// What the event says about paying the invoice's subscription (the derived standing):
    /// payment events only.
    pub fn payment(&self) -> Option<InvoicePayment> {
        let s = &self.snapshot;
        Some(InvoicePayment {
            invoice: s.id.clone(),
            customer: s.customer.clone(),
            subscription: s.subscription.clone(),
            change: self.kind.change()?,
            invoice_created: s.created,
            attempt: s.attempt_count,
            hosted_invoice_url: s.hosted_invoice_url.clone(),
            user_hint: s.user_hint.clone(),
            period: s.service_period(),
            amount_paid: s.amount_paid,
            billing_reason: s.billing_reason.clone(),
        })
    }
}

impl InvoiceSnapshot {
    /// The stretch its subscription lines bill: from the earliest start to the latest end of
    /// the lines of its subscription that are not prorations (`None` for a one-off invoice, or
    /// when no line names a period).
    pub fn service_period(&self) -> Option<Span> {
        let sub = self.subscription.as_ref()?;
        let spans = self
            .lines
            .iter()
            .filter(|l| !l.proration && l.subscription.as_ref().is_none_or(|s| s == sub));
        let (mut start, mut end) = (None::<i64>, None::<i64>);
        for line in spans {
            if let (Some(s), Some(e)) = (line.period_start, line.period_end) {
                start = Some(start.map_or(s, |x| x.min(s)));
                end = Some(end.map_or(e, |x| x.max(e)));
            }
        }
        let (start, end) = (start?, end?);
        (end > start).then_some(Span { start, end })
    }
}

/// One payment of an invoice (`invoice_payment.paid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePaymentPaid {
    pub invoice: InvoiceId,
    /// The invoice payment's own id (`inpay_…`).
    pub payment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot as items written while the status was a string hold it: it reads back with
    /// its status as the enum, and writes back byte for byte, a known word and an unknown one.
    #[test]
    fn a_stored_snapshot_round_trips_byte_identically() {
        let stored = |status: &str| {
            format!(
                concat!(
                    r#"{{"id":"sub_1","customer":"cus_1","status":"{}","price_id":"price_1","#,
                    r#""product_id":null,"tier_hint":null,"current_period_start":1,"#,
                    r#""current_period_end":2,"cancel_at_period_end":false,"cancel_at":null,"#,
                    r#""trial_end":null,"cancellation_reason":null,"user_claim":null}}"#
                ),
                status
            )
        };
        for (word, want) in [
            ("active", SubscriptionStatus::Active),
            (
                "paused_for_review",
                SubscriptionStatus::Unknown("paused_for_review".into()),
            ),
        ] {
            let json = stored(word);
            let read: SubscriptionSnapshot = serde_json::from_str(&json).expect("readable");
            assert_eq!(read.status, want);
            assert_eq!(serde_json::to_string(&read).expect("json"), json);
        }
    }
}
