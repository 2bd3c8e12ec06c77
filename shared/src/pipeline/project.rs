//! The projection to users: what an applied event changes for the user(s) its customer belongs
//! to, the feed messages that announce it, and its audit entry — all in the event's one commit.

use super::service::Pipeline;
use super::verified::Verified;
use crate::domain::access::{
    customer_access, gift_access, purchase_access, Access, PurchaseAccess, SubscriptionAccess,
};
use crate::domain::customer::CustomerBilling;
use crate::domain::ids::UserId;
use crate::feed::{access_changed, customer_unlinked, summary, update_user_sources, SourceAccess};
use crate::ports::{
    gift_source_key, source_key, AuditRecord, Commit, LedgerGuard, LedgerState, OutboxMessage,
    StoreError, Stored, UserAccessDoc,
};
use crate::telemetry::Counter;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What the commit of an applied event is built from.
pub(super) struct Projection<'a> {
    pub verified: &'a Verified<'a>,
    pub guard: LedgerGuard,
    pub before: &'a CustomerBilling,
    /// The aggregate's revision as read (`None`: it must not exist yet).
    pub rev: Option<u64>,
    /// The user item the first read fetched (for `hint`).
    pub loaded_user: Option<Stored<UserAccessDoc>>,
    pub hint: Option<UserId>,
    /// Subscriptions whose same-second tie stays unresolved.
    pub unresolved: Vec<String>,
}

impl Pipeline {
    /// Builds the commit of an applied event: aggregate, user projections, audit, outbox.
    pub(super) async fn applied_commit(
        &self,
        p: Projection<'_>,
        after: CustomerBilling,
    ) -> Result<Commit, StoreError> {
        let v = p.verified;
        let now = self.clock.now();
        let subs_before = customer_access(p.before, &self.tiers);
        let subs_after = customer_access(&after, &self.tiers);
        let newly_invalid = subs_after.iter().filter(|s| {
            s.invalid.is_some()
                && !subs_before
                    .iter()
                    .any(|b| b.subscription == s.subscription && b.invalid.is_some())
        });
        for s in newly_invalid {
            // Counted once per subscription when it becomes Invalid; visible in its access.
            self.metrics
                .incr(Counter::SubscriptionsInvalid, v.delivery.endpoint);
            tracing::warn!(subscription = %s.subscription, event_id = %v.meta.id, "subscription periods invalid");
        }
        if let crate::domain::events::BillingEvent::Subscription { snapshot, .. } = &v.event {
            if let crate::domain::events::SubscriptionStatus::Unknown(word) = &snapshot.status {
                // Recorded and applied; the access rule grants nothing on it (docs/MODEL.md).
                tracing::warn!(event_id = %v.meta.id, status = %word, "subscription status not known: no access granted on it");
            }
        }
        let (users, mut outbox) = self.project_users(&p, &after, &subs_after, now).await?;
        if after.user().is_none()
            && subs_after.iter().any(|s| s.grants)
            && !subs_before.iter().any(|s| s.grants)
        {
            outbox.push(customer_unlinked(&after, &subs_after, &v.meta, now));
        }
        let mut audit = AuditRecord {
            provider: after.provider,
            customer: after.customer.clone(),
            event_id: v.meta.id.clone(),
            event_type: v.meta.event_type.clone(),
            created: v.meta.created,
            received_at: now,
            user: after.user().cloned(),
            before: summary(p.before.user(), &subs_before, &subs_after),
            after: summary(after.user(), &subs_after, &subs_before),
            unresolved_ties: p.unresolved.clone(),
        };
        if let crate::domain::events::BillingEvent::Grant(grant) = &v.event {
            // Who granted what, and why: the audit trail keeps the operator's words.
            audit.after["grant"] = json!(grant);
        }
        // The purchases that changed, as the subscriptions are listed: only those, each side.
        let (bought_before, bought_after) = (purchase_access(p.before), purchase_access(&after));
        if bought_before != bought_after {
            let changed = |a: &[PurchaseAccess], b: &[PurchaseAccess]| -> Vec<PurchaseAccess> {
                a.iter().filter(|x| !b.contains(x)).cloned().collect()
            };
            audit.before["purchases"] = json!(changed(&bought_before, &bought_after));
            audit.after["purchases"] = json!(changed(&bought_after, &bought_before));
        }
        Ok(Commit {
            ledger: self.ledger_record(v, LedgerState::Applied, Some(after.customer.clone())),
            guard: p.guard,
            customer: Some((after, p.rev)),
            users,
            audit: vec![audit],
            outbox,
            product: None,
            // Added by the caller when the event's invoice changed too.
            invoice: None,
            // Likewise its charge's item.
            charge: None,
            // Added by the caller: the purchases it loaded and changed.
            purchases: vec![],
        })
    }

    /// The user documents the event changes and the feed messages that announce each change:
    /// the user the customer belongs to now, the one it belonged to when a link moved, and
    /// the recipients of the gifts it bought whose gift changed.
    async fn project_users(
        &self,
        p: &Projection<'_>,
        after: &CustomerBilling,
        subs_after: &[SubscriptionAccess],
        now: i64,
    ) -> Result<(Vec<(UserAccessDoc, Option<u64>)>, Vec<OutboxMessage>), StoreError> {
        let mut users = Vec::new();
        let mut outbox = Vec::new();
        for (user, updates) in self.user_updates(p.before, after, subs_after) {
            let stored = if p.hint.as_ref() == Some(&user) {
                // The first read already asked for this user's item (absent means new user).
                p.loaded_user.clone()
            } else {
                // The first read guessed another user (or none): one more read, for this user.
                self.store.load_user(&user).await?
            };
            let (doc, rev) = match stored {
                Some(s) => (s.value, Some(s.rev)),
                // Only taking away from a user that has no document: nothing to take, and
                // creating one would make that user's answer depend on arrival order.
                None if updates.iter().all(|(_, given)| given.is_none()) => continue,
                None => (empty_user_doc(&user), None),
            };
            let updates = with_other_gifts(&doc, updates);
            let (doc, change) = update_user_sources(doc, updates, &self.tiers, now);
            if let Some((previous, access)) = change {
                outbox.push(access_changed(
                    &doc,
                    &previous,
                    &access,
                    &p.verified.meta,
                    now,
                ));
            }
            users.push((doc, rev));
        }
        Ok((users, outbox))
    }

    /// What the event puts in (or takes out of) each user's document, by source: the
    /// customer's own source for the user it belongs to (taken from the one a link moved away
    /// from), and its gifts' source for each recipient whose gifts changed.
    fn user_updates(
        &self,
        before: &CustomerBilling,
        after: &CustomerBilling,
        subs_after: &[SubscriptionAccess],
    ) -> BTreeMap<UserId, Vec<(String, Option<SourceAccess>)>> {
        let mut updates: BTreeMap<UserId, Vec<(String, Option<SourceAccess>)>> = BTreeMap::new();
        let source = source_key(after.provider, &after.customer);
        if let (Some(old), Some(new)) = (before.user(), after.user()) {
            if old != new {
                updates
                    .entry(old.clone())
                    .or_default()
                    .push((source.clone(), None));
            }
        }
        if let Some(user) = after.user() {
            let given = SourceAccess {
                subscriptions: subs_after.to_vec(),
                features: after.features(),
                purchases: after.bought.summary(),
            };
            updates
                .entry(user.clone())
                .or_default()
                .push((source, Some(given)));
        }
        let gifts_source = gift_source_key(after.provider, &after.customer);
        let (gifts_before, gifts_after) = (gift_access(before), gift_access(after));
        let recipients: BTreeSet<&UserId> = gifts_before
            .iter()
            .chain(&gifts_after)
            .map(|(u, _)| u)
            .collect();
        for recipient in recipients {
            let of = |gifts: &[(UserId, SubscriptionAccess)]| -> Vec<SubscriptionAccess> {
                gifts
                    .iter()
                    .filter(|(u, _)| u == recipient)
                    .map(|(_, a)| a.clone())
                    .collect()
            };
            let now_given = of(&gifts_after);
            if now_given == of(&gifts_before) {
                continue;
            }
            let given = (!now_given.is_empty()).then(|| SourceAccess {
                subscriptions: now_given,
                ..SourceAccess::default()
            });
            updates
                .entry(recipient.clone())
                .or_default()
                .push((gifts_source.clone(), given));
        }
        updates
    }
}

/// An event holds only the purchases it addresses, so a gifts source it updates names only
/// the gifts it touched: the recipient keeps the others its document lists, in id order.
fn with_other_gifts(
    doc: &UserAccessDoc,
    updates: Vec<(String, Option<SourceAccess>)>,
) -> Vec<(String, Option<SourceAccess>)> {
    updates
        .into_iter()
        .map(|(source, given)| {
            let Some(listed) = doc
                .sources
                .get(&source)
                .filter(|_| source.starts_with("gift:"))
            else {
                return (source, given);
            };
            let mut subscriptions = given.map(|g| g.subscriptions).unwrap_or_default();
            for other in listed {
                if !subscriptions
                    .iter()
                    .any(|s| s.subscription == other.subscription)
                {
                    subscriptions.push(other.clone());
                }
            }
            subscriptions.sort_by(|a, b| a.subscription.cmp(&b.subscription));
            let given = (!subscriptions.is_empty()).then(|| SourceAccess {
                subscriptions,
                ..SourceAccess::default()
            });
            (source, given)
        })
        .collect()
}

fn empty_user_doc(user: &UserId) -> UserAccessDoc {
    UserAccessDoc {
        user: user.clone(),
        sources: Default::default(),
        features: Default::default(),
        purchases: Default::default(),
        access: Access::none(),
        feed_seq: 0,
        updated_at: 0,
    }
}
