//! The newest second of one object's snapshots, and which of them is the object's state.
//!
//! The rule is the subscriptions' (`customer.rs`, docs/ARCHITECTURE.md, "Any order"): a newer `created` second
//! replaces everything kept; events of one second rank creation < update < deletion; among the
//! updates of one second, their `previous_attributes` decide; when they cannot, the choice is
//! deterministic (the greatest version) and reported as unresolved.
//!
//! Here the evidence is kept per field of the model's own snapshot (the same fields for every
//! shape of the object), which makes it exact: an update's `previous` lists every field it
//! changed, so a field it does not list kept its value. An update may therefore come right
//! after another exactly when the other's values are this one's values before the change. Kept
//! in a generic type so that catalogue objects (products, prices) share one implementation.

use super::events::{CatalogueChange, OrderEvidence};
use super::version::{Offer, Version};
use serde::{Deserialize, Serialize};

/// Snapshots kept per second (more changes of one object in one second would be pathological).
const MAX_CANDIDATES: usize = 8;

/// Same-second precedence: creation first, deletion last.
pub fn rank(change: CatalogueChange) -> u8 {
    match change {
        CatalogueChange::Created => 1,
        CatalogueChange::Updated => 2,
        CatalogueChange::Deleted => 3,
    }
}

/// One snapshot with the version of its event and what orders it within its second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub version: Version,
    pub value: T,
    #[serde(default)]
    pub evidence: OrderEvidence,
}

impl<T> Stamped<T> {
    /// Whether this snapshot may have been taken right after `earlier`. Only an update reports
    /// what it replaced; a creation or deletion says nothing about what came before it.
    fn may_follow(&self, earlier: &Stamped<T>) -> bool {
        self.version.rank == rank(CatalogueChange::Updated)
            && self.evidence.values.iter().all(|(field, after)| {
                let before = self.evidence.previous.get(field).unwrap_or(after);
                earlier
                    .evidence
                    .values
                    .get(field)
                    .map_or(OrderEvidence::ABSENT, String::as_str)
                    == before
            })
    }
}

/// Which snapshot is the state, and whether the events proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick<'a, T> {
    pub stamped: &'a Stamped<T>,
    /// `false` when the updates of the newest second could not order themselves.
    pub resolved: bool,
}

/// The snapshots of the newest second seen (all share its `created`), sorted by version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Newest<T> {
    pub candidates: Vec<Stamped<T>>,
}

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
        }
    }
}

impl<T> Newest<T> {
    /// The second these snapshots were taken in.
    pub fn second(&self) -> Option<i64> {
        self.candidates.first().map(|c| c.version.created)
    }

    /// Adds a snapshot: a newer second replaces the set, the same second joins it. Which ones
    /// are kept depends only on the set offered (the greatest versions of the newest second).
    pub fn offer(&mut self, candidate: Stamped<T>) -> Offer {
        // By instant: PayPal's events of one second are ordered by their milliseconds.
        match self.candidates.first().map(|c| c.version.instant()) {
            Some(s) if candidate.version.instant() < s => Offer::Older,
            Some(s) if candidate.version.instant() == s => {
                if self
                    .candidates
                    .iter()
                    .any(|c| c.version == candidate.version)
                {
                    return Offer::Same;
                }
                self.candidates.push(candidate);
                self.candidates.sort_by(|a, b| a.version.cmp(&b.version));
                if self.candidates.len() > MAX_CANDIDATES {
                    self.candidates.remove(0);
                }
                Offer::Taken
            }
            _ => {
                self.candidates = vec![candidate];
                Offer::Taken
            }
        }
    }

    /// The state: among the snapshots of the highest rank of the second, the one every order
    /// the evidence allows ends with; otherwise (undecided) the greatest version among the
    /// possible ends, or among all when no order fits.
    pub fn latest(&self) -> Option<Pick<'_, T>> {
        let top = self.candidates.iter().map(|c| c.version.rank).max()?;
        let pool: Vec<&Stamped<T>> = self
            .candidates
            .iter()
            .filter(|c| c.version.rank == top)
            .collect();
        let ends =
            super::version::path_ends(pool.len(), |next, last| pool[next].may_follow(pool[last]));
        let (stamped, resolved) = match ends.as_slice() {
            [one] => (pool[*one], true),
            [] => (
                *pool.iter().max_by(|a, b| a.version.cmp(&b.version))?,
                false,
            ),
            many => (
                many.iter()
                    .map(|&i| pool[i])
                    .max_by(|a, b| a.version.cmp(&b.version))?,
                false,
            ),
        };
        Some(Pick { stamped, resolved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn update(id: &str, values: &[(&str, &str)], previous: &[(&str, &str)]) -> Stamped<String> {
        Stamped {
            version: Version::new(10, rank(CatalogueChange::Updated), id),
            value: values.iter().map(|(k, v)| format!("{k}={v} ")).collect(),
            evidence: OrderEvidence {
                values: fields(values),
                previous: fields(previous),
            },
        }
    }

    fn latest_of(order: &[&Stamped<String>]) -> (String, bool) {
        let mut n = Newest::default();
        for s in order {
            n.offer((*s).clone());
        }
        let pick = n.latest().expect("a snapshot");
        (pick.stamped.version.event_id.clone(), pick.resolved)
    }

    /// An update that changed no field the model keeps still orders: it follows exactly the
    /// snapshots equal to it, never one that differs in a field it did not report.
    #[test]
    fn an_unlisted_field_is_known_to_be_unchanged() {
        // True order: a (active → false), b (nothing kept changed), c (nickname x → y).
        let a = update(
            "evt_z",
            &[("active", "f"), ("nick", "x")],
            &[("active", "t")],
        );
        let b = update("evt_y", &[("active", "f"), ("nick", "x")], &[]);
        let c = update("evt_a", &[("active", "f"), ("nick", "y")], &[("nick", "x")]);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a], [&c, &a, &b]] {
            let (id, resolved) = latest_of(&order);
            assert_eq!((id.as_str(), resolved), ("evt_a", true));
        }
    }

    #[test]
    fn a_value_put_back_within_the_second_is_unresolved() {
        let a = update("evt_a", &[("nick", "y")], &[("nick", "x")]);
        let b = update("evt_b", &[("nick", "x")], &[("nick", "y")]);
        assert_eq!(latest_of(&[&a, &b]), ("evt_b".to_owned(), false));
        assert_eq!(latest_of(&[&b, &a]), ("evt_b".to_owned(), false));
    }

    #[test]
    fn a_newer_second_replaces_and_an_older_one_is_refused() {
        let mut n = Newest::default();
        let at = |created, id: &str| Stamped {
            version: Version::new(created, 2, id),
            value: id.to_owned(),
            evidence: OrderEvidence::default(),
        };
        assert_eq!(n.offer(at(10, "evt_a")), Offer::Taken);
        assert_eq!(n.offer(at(10, "evt_a")), Offer::Same);
        assert_eq!(n.offer(at(9, "evt_z")), Offer::Older);
        assert_eq!(n.offer(at(11, "evt_b")), Offer::Taken);
        assert_eq!(n.candidates.len(), 1);
        assert_eq!(n.second(), Some(11));
    }
}
