//! Versions and last-writer-wins registers: the reason any delivery order converges.
//!
//! Every piece of state that an event can set is kept in a [`Register`] stamped with the
//! [`Version`] of the event that set it. A register only moves to a strictly greater version,
//! so applying a set of events in any order (and any event any number of times) leaves each
//! register at the value of its greatest event: the model is a join of independent maxima.

use super::facts::EventMeta;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Total order on events for one piece of state: the provider's `created` second, then its
/// milliseconds (PayPal stamps `create_time` to the millisecond; Stripe events have none, so
/// 0), then a per-type precedence that breaks same-instant ties, then the event id so that two
/// different events never compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub created: i64,
    /// Milliseconds within `created` (0–999). Absent from items stored before it existed, and
    /// never written when 0, so Stripe's stored versions are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub millis: u16,
    pub rank: u8,
    pub event_id: String,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl Version {
    pub fn new(created: i64, rank: u8, event_id: impl Into<String>) -> Self {
        Self {
            created,
            millis: 0,
            rank,
            event_id: event_id.into(),
        }
    }

    /// The version of the event `meta` describes, at precedence `rank`.
    pub fn of(meta: &EventMeta, rank: u8) -> Self {
        Self {
            millis: meta.millis,
            ..Self::new(meta.created, rank, meta.id.as_str())
        }
    }

    /// When the event was stamped: the second and its milliseconds. Snapshots of one instant
    /// are ordered by rank and evidence; of different instants, by the instant.
    pub fn instant(&self) -> (i64, u16) {
        (self.created, self.millis)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.created, self.millis, self.rank, self.event_id.as_str()).cmp(&(
            other.created,
            other.millis,
            other.rank,
            other.event_id.as_str(),
        ))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A value together with the version of the event that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register<T> {
    pub version: Version,
    pub value: T,
}

/// Outcome of offering a value to a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The register moved to the offered version.
    Taken,
    /// The register already holds this exact version (a redelivery of the same event).
    Same,
    /// The register holds a newer version: the offer is stale.
    Older,
}

/// Offers `value` at `version` to an optional register; it is taken only if strictly newer.
pub fn offer<T>(slot: &mut Option<Register<T>>, version: &Version, value: T) -> Offer {
    match slot {
        Some(current) => match version.cmp(&current.version) {
            Ordering::Greater => {
                *slot = Some(Register {
                    version: version.clone(),
                    value,
                });
                Offer::Taken
            }
            Ordering::Equal => Offer::Same,
            Ordering::Less => Offer::Older,
        },
        None => {
            *slot = Some(Register {
                version: version.clone(),
                value,
            });
            Offer::Taken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_wins_older_and_same_do_not() {
        let mut slot = None;
        assert_eq!(
            offer(&mut slot, &Version::new(10, 1, "evt_b"), "b"),
            Offer::Taken
        );
        assert_eq!(
            offer(&mut slot, &Version::new(9, 9, "evt_z"), "z"),
            Offer::Older
        );
        assert_eq!(
            offer(&mut slot, &Version::new(10, 1, "evt_b"), "b"),
            Offer::Same
        );
        assert_eq!(
            offer(&mut slot, &Version::new(10, 2, "evt_a"), "a"),
            Offer::Taken
        );
        assert_eq!(slot.map(|r| r.value), Some("a"));
    }

    #[test]
    fn milliseconds_order_events_of_one_second_before_rank() {
        let early = Version {
            millis: 120,
            ..Version::new(5, 9, "WH-z")
        };
        let late = Version {
            millis: 121,
            ..Version::new(5, 0, "WH-a")
        };
        assert!(early < late);
        assert!(late < Version::new(6, 0, "WH-a"));
        // A version stored before milliseconds existed reads as 0, and 0 is not written.
        let stored: Version =
            serde_json::from_str(r#"{"created":5,"rank":1,"event_id":"evt_1"}"#).unwrap();
        assert_eq!(stored, Version::new(5, 1, "evt_1"));
        assert!(!serde_json::to_string(&stored).unwrap().contains("millis"));
    }

    #[test]
    fn event_id_breaks_full_ties_deterministically() {
        let a = Version::new(5, 1, "evt_a");
        let b = Version::new(5, 1, "evt_b");
        assert!(a < b);
        let mut one = None;
        offer(&mut one, &a, 1);
        offer(&mut one, &b, 2);
        let mut two = None;
        offer(&mut two, &b, 2);
        offer(&mut two, &a, 1);
        assert_eq!(one, two);
    }
}
