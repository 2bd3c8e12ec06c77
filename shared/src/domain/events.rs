//! The canonical billing events: what every provider's payload is translated into.
//! Providers' wire types never get past `providers/`; the model only sees these.

use super::ids::{CustomerId, EventId, InvoiceId, Provider, SubscriptionId, UserId};
use serde::{Deserialize, Serialize};

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

/// What an invoice event says about the payment of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    ActionRequired,
    Failed,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePayment {
    pub invoice: InvoiceId,
    pub customer: CustomerId,
    pub subscription: Option<SubscriptionId>,
    pub outcome: PaymentOutcome,
    /// Stripe's hosted invoice page, for "payment action required" emails.
    pub hosted_invoice_url: Option<String>,
    /// The user named by the subscription's metadata as copied onto the invoice. Only a hint
    /// for reading the user's item up front; links come from checkout, customer, subscription.
    pub user_hint: Option<UserId>,
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
    },
    InvoicePayment(InvoicePayment),
    /// A customer object was created or updated; it may carry a user id in its metadata.
    CustomerUpdated {
        customer: CustomerId,
        user_claim: Option<UserId>,
    },
    /// A type this system records but does not model (yet): answered 200 as "ignored".
    Unsupported,
}

impl BillingEvent {
    /// The customer whose billing state this event touches, if it touches any.
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            BillingEvent::CheckoutCompleted { customer, .. }
            | BillingEvent::CustomerUpdated { customer, .. } => Some(customer),
            BillingEvent::Subscription { snapshot, .. } => Some(&snapshot.customer),
            BillingEvent::InvoicePayment(p) => Some(&p.customer),
            BillingEvent::Unsupported => None,
        }
    }

    /// A user id named by the event itself (lets the store read the user's item up front).
    pub fn user_claim(&self) -> Option<&UserId> {
        match self {
            BillingEvent::CheckoutCompleted { user, .. } => user.as_ref(),
            BillingEvent::Subscription { snapshot, .. } => snapshot.user_claim.as_ref(),
            BillingEvent::CustomerUpdated { user_claim, .. } => user_claim.as_ref(),
            BillingEvent::InvoicePayment(p) => p.user_hint.as_ref(),
            BillingEvent::Unsupported => None,
        }
    }
}
