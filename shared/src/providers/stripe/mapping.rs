//! What the Stripe translation is configured with, and how it fails.

/// Where the translation looks for user ids and tiers (configured once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeMapping {
    /// Metadata key on customers and subscriptions that holds the application's user id.
    pub user_metadata_key: String,
    /// Metadata key on prices or products that names the tier.
    pub tier_metadata_key: String,
}

impl Default for StripeMapping {
    fn default() -> Self {
        Self {
            user_metadata_key: "user_id".into(),
            tier_metadata_key: "tier".into(),
        }
    }
}

/// A modelled type whose object lacks what the model needs: the event is parked, not dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type}: data.object has no usable `{field}`")]
pub struct TranslateError {
    pub event_type: String,
    pub field: &'static str,
}
