//! A subscription's status in Stripe's words, with a case for a word this system does not know.
//!
//! Stored and sent as the provider's plain word (`"active"`), exactly as when the status was a
//! string, so items written before this type read back unchanged. A word none of the known
//! variants spells is kept verbatim in [`SubscriptionStatus::Unknown`], and every decision on a
//! status matches it explicitly: no rule can silently treat a status Stripe adds tomorrow as
//! one it already knows (docs/MODEL.md, "A status the model does not know").

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Stripe's subscription statuses (PayPal's are translated into these words).
///
/// `Unknown` never holds one of the known words: it is made by [`SubscriptionStatus::parse`]
/// only, and a known word stored in it would read back as the known variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    /// A word the model does not know (yet), verbatim.
    Unknown(String),
}

impl SubscriptionStatus {
    /// The status a provider's word names; an unknown word is kept as it is.
    pub fn parse(word: &str) -> Self {
        match word {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The provider's word, as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Unknown(word) => word,
        }
    }
}

impl From<&str> for SubscriptionStatus {
    fn from(word: &str) -> Self {
        Self::parse(word)
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SubscriptionStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SubscriptionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 8] = [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ];

    #[test]
    fn every_known_word_is_its_own_variant_and_reads_back_as_itself() {
        for word in KNOWN {
            let status = SubscriptionStatus::parse(word);
            assert!(!matches!(status, SubscriptionStatus::Unknown(_)), "{word}");
            assert_eq!(status.as_str(), word);
            let json = serde_json::to_string(&status).expect("json");
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(
                serde_json::from_str::<SubscriptionStatus>(&json).expect("read"),
                status
            );
        }
    }

    /// A word Stripe adds tomorrow is neither `canceled` nor any other known status: it is
    /// kept verbatim, and written back as it came.
    #[test]
    fn an_unknown_word_is_kept_verbatim() {
        let status = SubscriptionStatus::parse("paused_for_review");
        assert_eq!(
            status,
            SubscriptionStatus::Unknown("paused_for_review".into())
        );
        assert_ne!(status, SubscriptionStatus::Canceled);
        assert_eq!(status.to_string(), "paused_for_review");
        assert_eq!(
            serde_json::to_string(&status).expect("json"),
            "\"paused_for_review\""
        );
    }
}
