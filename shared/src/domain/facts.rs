//! The small facts every layer of the model shares, below the events and the aggregates: what
//! every event carries ([`EventMeta`]), a stretch of time ([`Span`]), how an invoice stopped
//! being owed ([`Settlement`]) and the evidence that orders snapshots of one second
//! ([`OrderEvidence`]). It imports nothing of the model but its identifiers, so that the events,
//! the versions, the periods and the aggregates can all take these without a circle.

use super::ids::{EventId, Provider};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts every event carries, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub provider: Provider,
    pub id: EventId,
    /// The provider's type string, kept verbatim (`customer.subscription.updated`).
    pub event_type: String,
    /// Provider timestamp, Unix seconds.
    pub created: i64,
    /// Milliseconds within `created` (PayPal's `create_time` has them; Stripe's `created` does
    /// not: 0). Only the order of events uses them (`Version::of` in `version.rs`).
    #[serde(default, skip_serializing_if = "is_zero_millis")]
    pub millis: u16,
    pub livemode: bool,
    pub api_version: Option<String>,
}

fn is_zero_millis(n: &u16) -> bool {
    *n == 0
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

/// How an invoice stopped being owed; a greater one replaces a smaller (an uncollectible invoice
/// can still be paid; a paid or voided one is final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Uncollectible,
    Voided,
    Paid,
}

/// A stretch of time, `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}
