//! What to do for one family, decided from the endpoints Stripe lists at the family's URL,
//! without any I/O: the part of `stripe-endpoints` that holds its rules.
//!
//! Our endpoints carry metadata that makes every step re-runnable: `billing_family`;
//! `billing_secret` = `pending` from the create until the signing secret is in Secrets Manager,
//! then `stored` (an endpoint still `pending` lost its secret with an interrupted run: Stripe
//! shows a secret only in the create answer, so it is deleted and made again); and, during a
//! rotation, `billing_replaces` = the id of the endpoint the new one replaces.

use billing::providers::stripe::Family;
use std::collections::{BTreeSet, HashMap};

pub const FAMILY_KEY: &str = "billing_family";
pub const SECRET_KEY: &str = "billing_secret";
pub const REPLACES_KEY: &str = "billing_replaces";
pub const PENDING: &str = "pending";
pub const STORED: &str = "stored";

/// A webhook endpoint as Stripe lists it (only what the rules read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    pub url: String,
    /// `None`: the account's default version at the time events are sent.
    pub api_version: Option<String>,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub metadata: HashMap<String, String>,
}

/// What one family's endpoint must look like.
#[derive(Debug, Clone)]
pub struct Desired {
    pub family: Family,
    pub url: String,
    pub api_version: &'static str,
    pub enabled_events: &'static [&'static str],
    /// A Connect endpoint (`connect: true` at creation; Stripe cannot change it later, and its
    /// URL is its own, so the rules below never mix it with the family's).
    pub connect: bool,
}

impl Desired {
    pub fn description(&self) -> String {
        let kind = if self.connect { " Connect" } else { "" };
        format!(
            "billing-webhooks {}{kind} endpoint (managed by `billing stripe-endpoints`)",
            self.family
        )
    }

    /// Whether `remote` has every setting Stripe lets us update (events, description,
    /// enabled, our metadata) as wanted. The API version is not among them.
    pub fn matches(&self, remote: &Remote) -> bool {
        let wanted: BTreeSet<&str> = self.enabled_events.iter().copied().collect();
        let has: BTreeSet<&str> = remote.enabled_events.iter().map(String::as_str).collect();
        wanted == has
            && remote.description.as_deref() == Some(self.description().as_str())
            && remote.enabled
            && meta(remote, FAMILY_KEY) == Some(self.family.as_str())
            && meta(remote, SECRET_KEY) == Some(STORED)
    }
}

fn meta<'a>(remote: &'a Remote, key: &str) -> Option<&'a str> {
    remote.metadata.get(key).map(String::as_str)
}

/// Which run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create what is missing, update what drifted.
    Sync,
    /// Start a rotation: a new endpoint next to each current one, both secrets stored.
    Rotate,
    /// End a rotation: delete the replaced endpoints and drop their secrets.
    FinishRotation,
}

/// The decision for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No endpoint yet: create one and store `[its secret]`.
    Create,
    /// Everything as wanted.
    Unchanged { id: String },
    /// Update events, description, enabled and metadata in place.
    Update { id: String },
    /// Create a replacement for `old` and store `[new secret, current secrets…]`.
    Rotate { old: String },
    /// A rotation is under way (`new` replaces `old`, which may already be gone).
    Rotating { new: String, old: String },
    /// Delete `old` if `present`, keep only the first stored secret, clear the marker on `new`.
    Finish {
        new: String,
        old: String,
        present: bool,
    },
}

/// The decision plus the endpoints that lost their secret (deleted first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub discard: Vec<String>,
    pub action: Action,
}

/// Why no decision can be taken; the run stops before writing anything for this family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{id} renders events as {}, not {want}; Stripe cannot change an endpoint's API \
         version: run with --rotate to replace it",
        has.as_deref().unwrap_or("the account's default version")
    )]
    WrongVersion {
        id: String,
        has: Option<String>,
        want: &'static str,
    },
    #[error("{} endpoints at this URL and no rotation between them ({}): delete the extra ones in Stripe", ids.len(), ids.join(", "))]
    Ambiguous { ids: Vec<String> },
    #[error("no endpoint at this URL: nothing to finish")]
    NothingToFinish,
}

/// Decides what to do for `desired.family`, given every endpoint Stripe lists (any URL).
pub fn plan(desired: &Desired, all: &[Remote], mode: Mode) -> Result<Plan, PlanError> {
    let here: Vec<&Remote> = all.iter().filter(|r| r.url == desired.url).collect();
    let (lost, live): (Vec<&Remote>, Vec<&Remote>) = here
        .into_iter()
        .partition(|r| meta(r, SECRET_KEY) == Some(PENDING));
    let discard = lost.iter().map(|r| r.id.clone()).collect();
    let action = decide(desired, &live, mode)?;
    Ok(Plan { discard, action })
}

fn decide(desired: &Desired, live: &[&Remote], mode: Mode) -> Result<Action, PlanError> {
    if let Some((new, old)) = rotation(live) {
        return Ok(match mode {
            Mode::FinishRotation => Action::Finish {
                present: live.iter().any(|r| r.id == old),
                new,
                old,
            },
            Mode::Sync | Mode::Rotate => Action::Rotating { new, old },
        });
    }
    match (live, mode) {
        ([], Mode::FinishRotation) => Err(PlanError::NothingToFinish),
        ([], _) => Ok(Action::Create),
        ([one], Mode::FinishRotation) => Ok(Action::Unchanged { id: one.id.clone() }),
        ([one], Mode::Rotate) => Ok(Action::Rotate {
            old: one.id.clone(),
        }),
        ([one], Mode::Sync) => {
            if one.api_version.as_deref() != Some(desired.api_version) {
                return Err(PlanError::WrongVersion {
                    id: one.id.clone(),
                    has: one.api_version.clone(),
                    want: desired.api_version,
                });
            }
            let id = one.id.clone();
            Ok(if desired.matches(one) {
                Action::Unchanged { id }
            } else {
                Action::Update { id }
            })
        }
        (many, _) => Err(PlanError::Ambiguous {
            ids: many.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// `(new, old)` when the live endpoints are a rotation: one marked as replacing another,
/// and at most that other one beside it (it is gone once a finish deleted it).
fn rotation(live: &[&Remote]) -> Option<(String, String)> {
    let marked: Vec<&&Remote> = live
        .iter()
        .filter(|r| meta(r, REPLACES_KEY).is_some_and(|v| !v.is_empty()))
        .collect();
    let [new] = marked.as_slice() else {
        return None;
    };
    let old = meta(new, REPLACES_KEY)?.to_owned();
    let others: Vec<&&Remote> = live.iter().filter(|r| r.id != new.id).collect();
    match others.as_slice() {
        [] => Some((new.id.clone(), old)),
        [other] if other.id == old => Some((new.id.clone(), old)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &[&str] = &["invoice.paid", "invoice.voided"];

    fn desired() -> Desired {
        Desired {
            family: Family::Invoice,
            url: "https://x.example/webhooks/stripe/invoice".into(),
            api_version: "2025-06-30.basil",
            enabled_events: EVENTS,
            connect: false,
        }
    }

    /// An endpoint exactly as `desired()` wants it, plus `extra` metadata.
    fn remote(id: &str, extra: &[(&str, &str)]) -> Remote {
        let d = desired();
        let mut metadata = HashMap::from([
            (FAMILY_KEY.to_owned(), "invoice".to_owned()),
            (SECRET_KEY.to_owned(), STORED.to_owned()),
        ]);
        for (k, v) in extra {
            metadata.insert((*k).to_owned(), (*v).to_owned());
        }
        Remote {
            id: id.into(),
            url: d.url.clone(),
            api_version: Some(d.api_version.into()),
            // Stripe may list them in another order: the comparison is as sets.
            enabled_events: EVENTS.iter().rev().map(|e| (*e).to_owned()).collect(),
            description: Some(d.description()),
            enabled: true,
            metadata,
        }
    }

    fn action(all: &[Remote], mode: Mode) -> Result<Action, PlanError> {
        plan(&desired(), all, mode).map(|p| p.action)
    }

    #[test]
    fn a_missing_endpoint_is_created_and_one_as_wanted_is_left_alone() {
        assert_eq!(action(&[], Mode::Sync), Ok(Action::Create));
        assert_eq!(action(&[], Mode::Rotate), Ok(Action::Create));
        let mut elsewhere = remote("we_other", &[]);
        elsewhere.url = "https://y.example/webhooks/stripe/invoice".into();
        assert_eq!(action(&[elsewhere], Mode::Sync), Ok(Action::Create));
        let same = Action::Unchanged { id: "we_1".into() };
        assert_eq!(action(&[remote("we_1", &[])], Mode::Sync), Ok(same));
    }

    #[test]
    fn every_updatable_drift_is_an_update() {
        let drifts: [fn(&mut Remote); 6] = [
            |r| drop(r.enabled_events.pop()),
            |r| r.enabled_events = vec!["*".into()],
            |r| r.description = None,
            |r| r.enabled = false,
            // A dashboard-made endpoint: adopted, our metadata added.
            |r| r.metadata.clear(),
            |r| drop(r.metadata.insert(FAMILY_KEY.into(), "charge".into())),
        ];
        for (i, drift) in drifts.iter().enumerate() {
            let mut r = remote("we_1", &[]);
            drift(&mut r);
            let update = Action::Update { id: "we_1".into() };
            assert_eq!(action(&[r], Mode::Sync), Ok(update), "drift {i}");
        }
    }

    #[test]
    fn another_api_version_is_an_error_naming_rotate() {
        let mut r = remote("we_1", &[]);
        r.api_version = Some("2020-08-27".into());
        let err = action(&[r.clone()], Mode::Sync).expect_err("cannot be updated");
        assert!(err.to_string().contains("2020-08-27"), "{err}");
        assert!(err.to_string().contains("--rotate"), "{err}");
        r.api_version = None;
        let err = action(&[r.clone()], Mode::Sync).expect_err("default version");
        assert!(err.to_string().contains("default version"), "{err}");
        let rotate = Action::Rotate { old: "we_1".into() };
        assert_eq!(action(&[r], Mode::Rotate), Ok(rotate));
    }

    #[test]
    fn an_endpoint_whose_secret_was_never_stored_is_discarded() {
        let lost = remote("we_lost", &[(SECRET_KEY, PENDING)]);
        let p = plan(&desired(), std::slice::from_ref(&lost), Mode::Sync).expect("plan");
        assert_eq!(
            (p.discard, p.action),
            (vec!["we_lost".into()], Action::Create)
        );
        let p = plan(&desired(), &[remote("we_1", &[]), lost], Mode::Rotate).expect("plan");
        let rotate = Action::Rotate { old: "we_1".into() };
        assert_eq!((p.discard, p.action), (vec!["we_lost".into()], rotate));
    }

    #[test]
    fn a_rotation_is_recognised_in_every_mode() {
        let old = remote("we_old", &[]);
        let new = remote("we_new", &[(REPLACES_KEY, "we_old")]);
        let both = [old, new.clone()];
        let rotating = Action::Rotating {
            new: "we_new".into(),
            old: "we_old".into(),
        };
        assert_eq!(action(&both, Mode::Sync), Ok(rotating.clone()));
        assert_eq!(action(&both, Mode::Rotate), Ok(rotating));
        let finish = |present| Action::Finish {
            new: "we_new".into(),
            old: "we_old".into(),
            present,
        };
        assert_eq!(action(&both, Mode::FinishRotation), Ok(finish(true)));
        // A finish interrupted after the delete: the marker is still there.
        assert_eq!(action(&[new], Mode::FinishRotation), Ok(finish(false)));
        let done = Action::Unchanged { id: "we_1".into() };
        assert_eq!(
            action(&[remote("we_1", &[])], Mode::FinishRotation),
            Ok(done)
        );
        assert_eq!(
            action(&[], Mode::FinishRotation),
            Err(PlanError::NothingToFinish)
        );
    }

    #[test]
    fn two_endpoints_without_a_rotation_between_them_are_an_error() {
        let pairs = [
            [remote("we_a", &[]), remote("we_b", &[])],
            [
                remote("we_a", &[]),
                remote("we_b", &[(REPLACES_KEY, "we_c")]),
            ],
        ];
        for pair in pairs {
            let err = action(&pair, Mode::Sync).expect_err("ambiguous");
            assert!(matches!(err, PlanError::Ambiguous { .. }), "{err}");
            assert!(err.to_string().contains("we_a, we_b"), "{err}");
        }
    }
}
