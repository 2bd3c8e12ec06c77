//! The one container of "the newest within the same second": the snapshots of one object taken
//! in the newest second seen, and which of them is the object's state. Every aggregate keeps its
//! same-second snapshots in it — a subscription, a customer's entitlements, a subscription
//! schedule (`customer`), a product and a price (`catalogue`), an invoice (`invoice`) — each
//! with a [`Rule`] that says how its snapshots order themselves.
//!
//! The rule is the subscriptions' (docs/ARCHITECTURE.md, "Any order"): a newer second replaces
//! everything kept; events of one second rank creation < update < deletion and the highest rank
//! present is read; among the snapshots of that rank, their order evidence decides (which one
//! may come right after which); when it cannot, the choice is deterministic (the rule's
//! tie-break, by default the greatest version) and reported as unresolved.
//!
//! Which snapshots are kept depends only on the set offered, so any delivery order keeps the
//! same ones: the container is a join like the registers of `version.rs`.

use super::facts::OrderEvidence;
use super::version::{Offer, Version};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::marker::PhantomData;

/// Snapshots kept per second that the rule counts (more changes of one object in one second
/// would be pathological).
pub const MAX_CANDIDATES: usize = 8;

/// One snapshot, the version of its event and what orders it against others of its second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<T> {
    pub version: Version,
    pub snapshot: T,
    pub evidence: OrderEvidence,
}

/// Which candidate is the state, and whether the events proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest<'a, T> {
    pub candidate: &'a Candidate<T>,
    /// `false` when the snapshots of the newest second could not order themselves: the choice
    /// is deterministic but may not be the provider's order.
    pub resolved: bool,
}

/// How a container is stored: the shape each aggregate wrote before the container was one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"candidates": [entry, …]}` (subscriptions, entitlements, schedules).
    Wrapped,
    /// `[entry, …]` (catalogue pieces, invoices).
    Bare,
}

/// How one kind of object's snapshots of one second order themselves. The defaults are the
/// subscriptions'; an aggregate overrides what differs for its object.
pub trait Rule<T> {
    /// The stored shape of the container.
    const SHAPE: Shape;
    /// The name of a stored entry's snapshot field (`{"version", FIELD, "evidence"}`).
    const FIELD: &'static str;
    /// Whether a higher rank of the same instant replaces the lower ones (only the highest is
    /// kept), rather than being kept beside them (and read first).
    const TOP_RANK_ONLY: bool = false;
    /// Whether identical snapshots with identical evidence (two events that report one change)
    /// are kept once, under the greater version.
    const TWINS_ONCE: bool = false;

    /// Whether a snapshot counts towards [`MAX_CANDIDATES`] and towards the ordering of its
    /// second; one that does not (a snapshot read from the provider's API to settle a tie) is
    /// an aid, dropped by [`SameSecond::drop_needless_aids`] once the others order themselves.
    fn counts(_version: &Version) -> bool {
        true
    }

    /// Whether `later` may have been taken right after `earlier`: by default, every value the
    /// later event replaced (`previous_attributes`) is the value `earlier` shows.
    fn may_follow(later: &Candidate<T>, earlier: &Candidate<T>) -> bool {
        later.evidence.follows(&earlier.evidence)
    }

    /// The deterministic choice among the possible latest ones when the evidence cannot
    /// decide: the greatest by this order (by default the version).
    fn undecided(a: &Candidate<T>, b: &Candidate<T>) -> Ordering {
        a.version.cmp(&b.version)
    }
}

/// The snapshots of the newest second seen (all of one instant), sorted by version.
pub struct SameSecond<T, R> {
    pub candidates: Vec<Candidate<T>>,
    rule: PhantomData<fn() -> R>,
}

impl<T, R> SameSecond<T, R> {
    /// A container holding `candidates` as they are (sorted by version, of one instant).
    pub fn from_candidates(candidates: Vec<Candidate<T>>) -> Self {
        Self {
            candidates,
            rule: PhantomData,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The second these snapshots were taken in.
    pub fn second(&self) -> Option<i64> {
        self.candidates.first().map(|c| c.version.created)
    }
}

impl<T, R> Default for SameSecond<T, R> {
    fn default() -> Self {
        Self::from_candidates(Vec::new())
    }
}

impl<T: Clone, R> Clone for SameSecond<T, R> {
    fn clone(&self) -> Self {
        Self::from_candidates(self.candidates.clone())
    }
}

impl<T: PartialEq, R> PartialEq for SameSecond<T, R> {
    fn eq(&self, other: &Self) -> bool {
        self.candidates == other.candidates
    }
}

impl<T: Eq, R> Eq for SameSecond<T, R> {}

impl<T: std::fmt::Debug, R> std::fmt::Debug for SameSecond<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SameSecond")
            .field("candidates", &self.candidates)
            .finish()
    }
}

impl<T: PartialEq, R: Rule<T>> SameSecond<T, R> {
    /// What decides whether a candidate replaces the set, joins it or is older: its instant
    /// (PayPal's events of one second are ordered by their milliseconds), and its rank when
    /// only the highest is kept.
    fn generation(version: &Version) -> ((i64, u16), u8) {
        let rank = if R::TOP_RANK_ONLY { version.rank } else { 0 };
        (version.instant(), rank)
    }

    /// Adds a snapshot: a newer second replaces the set, the same second joins it, an older one
    /// is refused; a redelivery (the same event id) changes nothing.
    pub fn offer(&mut self, candidate: Candidate<T>) -> Offer {
        let offered = Self::generation(&candidate.version);
        match self
            .candidates
            .first()
            .map(|c| Self::generation(&c.version))
        {
            Some(kept) if offered < kept => return Offer::Older,
            Some(kept) if offered == kept => {}
            _ => {
                self.candidates = vec![candidate];
                return Offer::Taken;
            }
        }
        let id = &candidate.version.event_id;
        if self.candidates.iter().any(|c| &c.version.event_id == id) {
            return Offer::Same;
        }
        if R::TWINS_ONCE {
            let twin = self
                .candidates
                .iter_mut()
                .find(|c| c.snapshot == candidate.snapshot && c.evidence == candidate.evidence);
            if let Some(twin) = twin {
                // Which twin arrived first leaves no trace: the greater version is kept.
                if candidate.version <= twin.version {
                    return Offer::Same;
                }
                *twin = candidate;
                self.candidates.sort_by(|a, b| a.version.cmp(&b.version));
                return Offer::Taken;
            }
        }
        self.candidates.push(candidate);
        self.candidates.sort_by(|a, b| a.version.cmp(&b.version));
        // Only what the rule counts fills the cap: an aid comes and goes with arrival order, so
        // letting it push out an event would make which event is forgotten depend on that
        // order. Sorted, the first is the oldest event (an aid ranks above its second's events).
        let counted = self
            .candidates
            .iter()
            .filter(|c| R::counts(&c.version))
            .count();
        if counted > MAX_CANDIDATES {
            self.candidates.remove(0);
        }
        Offer::Taken
    }
}

impl<T, R: Rule<T>> SameSecond<T, R> {
    /// The state: among the snapshots of the highest rank of the second, the one every order
    /// the evidence allows ends with; otherwise (unresolved) the greatest by the rule's
    /// tie-break among the possible ends, or among all when no order fits.
    ///
    /// In the true order each snapshot may come right after the one before it, so the true
    /// order is a path through the "may come right after" relation that visits every snapshot.
    /// When every such path ends at the same snapshot, it is the latest; otherwise (a change
    /// put back within the second, a snapshot that reports no previous values) the events
    /// cannot decide.
    pub fn latest(&self) -> Option<Latest<'_, T>> {
        let top = self.candidates.iter().map(|c| c.version.rank).max()?;
        let pool: Vec<&Candidate<T>> = self
            .candidates
            .iter()
            .filter(|c| c.version.rank == top)
            .collect();
        let ends = path_ends(pool.len(), |next, last| {
            R::may_follow(pool[next], pool[last])
        });
        let undecided = |a: &&Candidate<T>, b: &&Candidate<T>| R::undecided(a, b);
        let (candidate, resolved) = match ends.as_slice() {
            [one] => (pool[*one], true),
            [] => (pool.iter().copied().max_by(undecided)?, false),
            many => (many.iter().map(|&i| pool[i]).max_by(undecided)?, false),
        };
        Some(Latest {
            candidate,
            resolved,
        })
    }
}

impl<T: Clone, R: Rule<T>> SameSecond<T, R> {
    /// Forgets the aids (snapshots the rule does not count) once the counted snapshots of the
    /// second order themselves: then they add nothing, and whether one was ever fetched
    /// depends only on arrival order.
    pub fn drop_needless_aids(&mut self) {
        if self.candidates.iter().all(|c| R::counts(&c.version)) {
            return;
        }
        let counted = Self::from_candidates(
            self.candidates
                .iter()
                .filter(|c| R::counts(&c.version))
                .cloned()
                .collect(),
        );
        if counted.latest().is_some_and(|l| l.resolved) {
            *self = counted;
        }
    }
}

/// The items that end some order of all `n` items in which each one may come right after the
/// one before it (`may_follow(next, last)`): the candidates for the latest of one second's
/// snapshots. Subset dynamic programming; `n` is small (at most [`MAX_CANDIDATES`] and the aids).
pub fn path_ends(n: usize, may_follow: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    if n <= 1 {
        return (0..n).collect();
    }
    let full = (1usize << n) - 1;
    // reach[mask][last]: some order of exactly the items in `mask` ends at `last`.
    let mut reach = vec![vec![false; n]; full + 1];
    for i in 0..n {
        reach[1 << i][i] = true;
    }
    for mask in 1..=full {
        for last in 0..n {
            if !reach[mask][last] {
                continue;
            }
            for next in (0..n).filter(|&j| mask & (1 << j) == 0) {
                if may_follow(next, last) {
                    reach[mask | (1 << next)][next] = true;
                }
            }
        }
    }
    (0..n).filter(|&i| reach[full][i]).collect()
}

/// One stored entry: `{"version", R::FIELD, "evidence"}` (evidence always written).
struct Entry<'a, T, R>(&'a Candidate<T>, PhantomData<fn() -> R>);

impl<T: Serialize, R: Rule<T>> Serialize for Entry<'_, T, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Candidate", 3)?;
        s.serialize_field("version", &self.0.version)?;
        s.serialize_field(R::FIELD, &self.0.snapshot)?;
        s.serialize_field("evidence", &self.0.evidence)?;
        s.end()
    }
}

/// The entries as a list.
struct Entries<'a, T, R>(&'a [Candidate<T>], PhantomData<fn() -> R>);

impl<T: Serialize, R: Rule<T>> Serialize for Entries<'_, T, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|c| Entry::<T, R>(c, PhantomData)))
    }
}

impl<T: Serialize, R: Rule<T>> Serialize for SameSecond<T, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = Entries::<T, R>(&self.candidates, PhantomData);
        match R::SHAPE {
            Shape::Bare => entries.serialize(serializer),
            Shape::Wrapped => {
                let mut s = serializer.serialize_struct("Snapshots", 1)?;
                s.serialize_field("candidates", &entries)?;
                s.end()
            }
        }
    }
}

/// A stored entry as read: its snapshot under either name the aggregates wrote.
#[derive(Deserialize)]
struct EntryRepr<T> {
    version: Version,
    #[serde(alias = "value")]
    snapshot: T,
    #[serde(default)]
    evidence: OrderEvidence,
}

#[derive(Deserialize)]
struct WrappedRepr<T> {
    candidates: Vec<EntryRepr<T>>,
}

impl<'de, T: Deserialize<'de>, R: Rule<T>> Deserialize<'de> for SameSecond<T, R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = match R::SHAPE {
            Shape::Bare => Vec::<EntryRepr<T>>::deserialize(deserializer)?,
            Shape::Wrapped => WrappedRepr::<T>::deserialize(deserializer)?.candidates,
        };
        Ok(Self::from_candidates(
            entries
                .into_iter()
                .map(|e| Candidate {
                    version: e.version,
                    snapshot: e.snapshot,
                    evidence: e.evidence,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default rule, stored bare with a `value` field (as a test shape).
    #[derive(Debug)]
    struct Plain;

    impl Rule<String> for Plain {
        const SHAPE: Shape = Shape::Bare;
        const FIELD: &'static str = "value";
    }

    fn at(created: i64, id: &str) -> Candidate<String> {
        Candidate {
            version: Version::new(created, 2, id),
            snapshot: id.to_owned(),
            evidence: OrderEvidence::default(),
        }
    }

    #[test]
    fn a_newer_second_replaces_and_an_older_one_is_refused() {
        let mut n = SameSecond::<String, Plain>::default();
        assert_eq!(n.offer(at(10, "evt_a")), Offer::Taken);
        assert_eq!(n.offer(at(10, "evt_a")), Offer::Same);
        assert_eq!(n.offer(at(9, "evt_z")), Offer::Older);
        assert_eq!(n.offer(at(11, "evt_b")), Offer::Taken);
        assert_eq!(n.candidates.len(), 1);
        assert_eq!(n.second(), Some(11));
    }

    #[test]
    fn the_items_that_end_every_order() {
        // 0 → 1 → 2 is the only order of all three.
        let chain = |next: usize, last: usize| next == last + 1;
        assert_eq!(path_ends(3, chain), [2]);
        assert_eq!(path_ends(3, |_, _| false), Vec::<usize>::new());
        assert_eq!(path_ends(1, |_, _| false), [0]);
        assert_eq!(path_ends(2, |_, _| true), [0, 1]);
    }
}
