//! `billing grant USER --days N --reason TEXT`: a system period, recorded through the same
//! pipeline as a provider's event (ledger, the user's operator account, access, audit, feed).

use billing::domain::access::TierPolicy;
use billing::pipeline::{Outcome, Pipeline};
use billing::providers::operator::GrantCommand;
use clap::Args;

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The application's user id.
    #[arg(value_name = "USER")]
    user: String,
    /// Length of the period from now, in days (1 to 3650).
    #[arg(long, value_name = "N")]
    days: u32,
    /// Why (kept in the audit trail and shown in the billing answer).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// The tier granted (default: the highest of BILLING_TIER_ORDER).
    #[arg(long, value_name = "TIER")]
    tier: Option<String>,
    /// Who grants it (default: BILLING_OPERATOR, else USER from the environment).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

/// The command's body, or why there is none (nothing recorded).
pub fn command(args: &GrantArgs, tiers: &TierPolicy, now: i64) -> Result<GrantCommand, String> {
    let tier = match (&args.tier, tiers.order.last()) {
        (Some(t), _) => t.clone(),
        (None, Some(highest)) => highest.clone(),
        (None, None) => return Err("no --tier and BILLING_TIER_ORDER is empty".into()),
    };
    let by = args
        .by
        .clone()
        .or_else(crate::settings::operator)
        .ok_or("no --by, BILLING_OPERATOR or USER: say who grants it")?;
    GrantCommand::new(&args.user, args.days, &tier, &args.reason, &by, now)
}

pub async fn run(service: &Pipeline, args: &GrantArgs) -> Result<(), String> {
    let command = command(args, service.tiers(), service.now())?;
    let body = serde_json::to_vec(&command).map_err(|e| e.to_string())?;
    match service.record_operator(&body).await {
        Outcome::Recorded { event_id, state } => {
            let grant = command.event();
            println!(
                "{}",
                serde_json::json!({
                    "grant": event_id, "state": state.as_str(), "user": grant.user,
                    "tier": grant.tier, "start": grant.start, "end": grant.end,
                })
            );
            Ok(())
        }
        Outcome::Duplicate { event_id, .. } => Err(format!("{event_id} was already recorded")),
        Outcome::Rejected(r) => Err(format!("refused: {r}")),
        Outcome::Unavailable(e) => Err(format!("not recorded, retry: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tier: Option<&str>, by: Option<&str>) -> GrantArgs {
        GrantArgs {
            user: "user_1".into(),
            days: 30,
            reason: "outage credit".into(),
            tier: tier.map(str::to_owned),
            by: by.map(str::to_owned),
        }
    }

    #[test]
    fn the_tier_defaults_to_the_highest_and_is_required_without_an_order() {
        let tiers = TierPolicy {
            order: vec!["basic".into(), "pro".into()],
            ..TierPolicy::default()
        };
        let c = command(&args(None, Some("ana")), &tiers, 10).expect("a command");
        assert_eq!((c.tier.as_str(), c.by.as_str()), ("pro", "ana"));
        let c = command(&args(Some("basic"), Some("ana")), &tiers, 10).expect("a command");
        assert_eq!(c.tier, "basic");
        let none = command(&args(None, Some("ana")), &TierPolicy::default(), 10);
        assert!(none.is_err_and(|e| e.contains("--tier")));
    }

    /// The command end to end on an in-memory table: the user gets the tier, the ledger holds
    /// the grant; a refused command writes nothing.
    #[tokio::test]
    async fn a_grant_is_recorded_and_a_refused_one_writes_nothing() {
        use billing::adapters::memory::{InMemoryBillingStore, StaticSecrets};
        use billing::domain::ids::UserId;
        use billing::ports::{BillingStore, FixedClock};
        use billing::telemetry::Metrics;
        use std::sync::Arc;
        let store = Arc::new(InMemoryBillingStore::new());
        let service = billing::providers::stripe::pipeline(
            store.clone(),
            Arc::new(StaticSecrets::everywhere(Vec::new())),
            Arc::new(FixedClock::at(1_000)),
            Arc::new(Metrics::Off),
            Default::default(),
        );
        let mut refused = args(Some("pro"), Some("ana"));
        refused.days = 0;
        assert!(run(&service, &refused).await.is_err());
        assert!(store
            .load_user(&UserId::new("user_1"))
            .await
            .unwrap()
            .is_none());

        run(&service, &args(Some("pro"), Some("ana")))
            .await
            .expect("recorded");
        let doc = store
            .load_user(&UserId::new("user_1"))
            .await
            .unwrap()
            .expect("the user's document");
        assert_eq!(doc.value.access.tier.as_deref(), Some("pro"));
        assert_eq!(
            doc.value.access.current_period_end,
            Some(1_000 + 30 * 86_400)
        );
    }
}
