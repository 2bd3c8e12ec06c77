//! The operator as a provider: `billing grant` records a period through the same pipeline as a
//! provider's event — the ledger (once per id), the user's operator account, the user's
//! access, the audit trail (who and why), the feed — so a grant is recorded once, can be
//! parked and replayed, and is audited like everything else. It never arrives over HTTP.

use crate::domain::events::{BillingEvent, EventMeta, SystemGrant};
use crate::domain::ids::{CustomerId, EventId, Provider, UserId};
use crate::error::{Error, Refusal, Rejection};
use crate::providers::seam::{ReadError, ReadEvent, Verified, WebhookProvider};
use crate::routing::Endpoint;
use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The event type of a grant in the ledger and the audit trail.
pub const GRANT_TYPE: &str = "billing.grant";
/// The longest grant (ten years); a longer one is almost certainly a typo.
pub const MAX_GRANT_DAYS: u32 = 3650;
const MAX_TEXT: usize = 500;

/// What `billing grant` records: the body of the operator's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantCommand {
    /// `grant_<random>`: the ledger key, so a retried command with the same body is recorded once.
    pub id: String,
    /// When it was issued: the period starts then.
    pub created: i64,
    pub user: String,
    pub days: u32,
    pub tier: String,
    pub reason: String,
    pub by: String,
}

impl GrantCommand {
    /// A new grant of `days` from `now`, or why it cannot be one (nothing is recorded).
    pub fn new(
        user: &str,
        days: u32,
        tier: &str,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<Self, String> {
        let id = format!("grant_{:016x}", rand::rng().random::<u64>());
        let command = Self {
            id,
            created: now,
            user: user.trim().to_owned(),
            days,
            tier: tier.trim().to_owned(),
            reason: reason.trim().to_owned(),
            by: by.trim().to_owned(),
        };
        command.check()?;
        Ok(command)
    }

    fn check(&self) -> Result<(), String> {
        let text = |name: &str, value: &str| {
            if value.is_empty() {
                Err(format!("{name} is empty"))
            } else if value.len() > MAX_TEXT {
                Err(format!("{name} is longer than {MAX_TEXT} bytes"))
            } else {
                Ok(())
            }
        };
        text("user", &self.user)?;
        text("tier", &self.tier)?;
        text("reason", &self.reason)?;
        text("by (who grants)", &self.by)?;
        if self.user.contains(':') {
            return Err("user contains ':'".into());
        }
        if !self.id.starts_with("grant_") {
            return Err("id must start with grant_".into());
        }
        if !(1..=MAX_GRANT_DAYS).contains(&self.days) {
            return Err(format!("days must be 1 to {MAX_GRANT_DAYS}"));
        }
        Ok(())
    }

    /// The canonical event this command records.
    pub fn event(&self) -> SystemGrant {
        SystemGrant {
            account: CustomerId::new(self.user.clone()),
            user: UserId::new(self.user.clone()),
            start: self.created,
            end: self.created + i64::from(self.days) * 86_400,
            tier: self.tier.clone(),
            reason: self.reason.clone(),
            by: self.by.clone(),
        }
    }
}

/// Where the operator's records are counted and listed (never a route).
pub const ENDPOINT: Endpoint = Endpoint::new(Provider::SYSTEM, "operator");

/// The operator's provider: reads grant commands; has no webhook to verify.
#[derive(Debug, Default)]
pub struct OperatorProvider;

#[async_trait]
impl WebhookProvider for OperatorProvider {
    fn id(&self) -> Provider {
        Provider::SYSTEM
    }

    /// The operator's records are `grant_…`.
    fn owns_event_id(&self, id: &str) -> bool {
        id.starts_with("grant_")
    }

    async fn verify(
        &self,
        _endpoint: Endpoint,
        _headers: &http::HeaderMap,
        _body: &[u8],
    ) -> Result<Verified, Error> {
        Err(
            Rejection::Unauthentic(Refusal::from("operator records are not accepted over HTTP"))
                .into(),
        )
    }

    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError> {
        let command: GrantCommand = serde_json::from_slice(body)
            .map_err(|e| ReadError::Unreadable(format!("not a grant command: {e}")))?;
        let meta = EventMeta {
            provider: Provider::SYSTEM,
            id: EventId::new(command.id.clone()),
            event_type: GRANT_TYPE.into(),
            created: command.created,
            // Operator records belong to no provider mode.
            millis: 0,
            livemode: false,
            api_version: None,
        };
        let event = command
            .check()
            .map(|()| BillingEvent::Grant(command.event()));
        Ok(ReadEvent {
            meta,
            home: ENDPOINT.name,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_command_is_checked_before_anything_is_recorded() {
        let ok = GrantCommand::new("user_1", 30, "pro", "support goodwill", "ana", 1_000).unwrap();
        assert!(ok.id.starts_with("grant_"));
        assert_eq!(ok.event().end - ok.event().start, 30 * 86_400);
        for (user, days, tier, reason, by) in [
            ("", 30, "pro", "r", "ana"),
            ("u", 0, "pro", "r", "ana"),
            ("u", MAX_GRANT_DAYS + 1, "pro", "r", "ana"),
            ("u", 30, "", "r", "ana"),
            ("u", 30, "pro", "  ", "ana"),
            ("u", 30, "pro", "r", ""),
            ("a:b", 30, "pro", "r", "ana"),
        ] {
            assert!(
                GrantCommand::new(user, days, tier, reason, by, 0).is_err(),
                "{user:?} {days} {tier:?} {reason:?} {by:?}"
            );
        }
    }

    #[test]
    fn a_recorded_command_reads_back_as_its_grant() {
        let command = GrantCommand::new("user_1", 7, "pro", "trial extension", "ana", 50).unwrap();
        let body = serde_json::to_vec(&command).unwrap();
        let read = OperatorProvider.read(&body).expect("readable");
        assert_eq!(read.meta.id.as_str(), command.id);
        assert_eq!(read.meta.event_type, GRANT_TYPE);
        assert_eq!(read.home, ENDPOINT.name);
        assert_eq!(read.event, Ok(BillingEvent::Grant(command.event())));
        // A command edited to be invalid is parked, not applied.
        let mut bad = command.clone();
        bad.days = 0;
        let read = OperatorProvider
            .read(&serde_json::to_vec(&bad).unwrap())
            .expect("readable");
        assert!(read.event.is_err());
        assert!(matches!(
            OperatorProvider.read(b"{}"),
            Err(ReadError::Unreadable(_))
        ));
    }
}
