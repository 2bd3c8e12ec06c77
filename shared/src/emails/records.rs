//! The sent-email record and the claim that lets one email out (issue 10, "once"): one item
//! per email (kind and object), claimed by a conditional write that holds a lease, then marked
//! with its outcome. The suppression list is kept beside it, keyed by a hash of the address.
//! Neither ever holds an address or a body.

use super::kinds::EmailKind;
use crate::digest::sha256_hex;
use crate::domain::events::EmailAddress;
use crate::ports::{Cursor, Page, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where an email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    /// A consumer holds it until `lease_until`: sending, or dead (then taken over after it).
    Claimed,
    /// SES accepted it (`detail`: its message id).
    Sent,
    /// SES refused it for good (`detail`: SES's error code); never retried.
    Rejected,
    /// Not sent, on purpose (`detail`: the reason, e.g. `invoice_paid`, `suppressed`).
    Skipped,
}

impl EmailState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailState::Claimed => "claimed",
            EmailState::Sent => "sent",
            EmailState::Rejected => "rejected",
            EmailState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Claimed, Self::Sent, Self::Rejected, Self::Skipped]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The record of one email: kind, object, outcome, message id or reason, time. No address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    pub email: EmailKind,
    /// `{provider}#{object}`'s object part with its provider, as the job named them.
    pub provider: String,
    pub object: String,
    pub state: EmailState,
    /// The SES message id (sent), SES's error code (rejected) or the reason (skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Claims taken so far (more than one: a consumer died or gave the email back).
    pub attempts: u32,
    pub updated_at: i64,
}

/// A final outcome to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Sent { message_id: String },
    Rejected { code: String },
    Skipped { reason: String },
}

impl Finished {
    pub fn state(&self) -> EmailState {
        match self {
            Finished::Sent { .. } => EmailState::Sent,
            Finished::Rejected { .. } => EmailState::Rejected,
            Finished::Skipped { .. } => EmailState::Skipped,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Finished::Sent { message_id } => message_id,
            Finished::Rejected { code } => code,
            Finished::Skipped { reason } => reason,
        }
    }
}

/// The email a claim is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailKey {
    pub email: EmailKind,
    pub provider: String,
    pub object: String,
}

impl EmailKey {
    /// `{kind}#{provider}#{object}`: the item's key.
    pub fn as_key(&self) -> String {
        format!("{}#{}#{}", self.email, self.provider, self.object)
    }
}

/// What trying to claim an email found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours until the lease ends (`attempts` counts this one).
    Won { attempts: u32 },
    /// Another consumer holds a lease that has not ended.
    Held { until: i64 },
    /// Already sent, rejected or skipped: nothing more to do.
    Done(EmailRecord),
}

/// A suppression entry's key: the SHA-256 of the address, trimmed and lower-cased (SES
/// compares addresses without case), so the list holds no address.
pub fn address_hash(address: &EmailAddress) -> String {
    // A named mailbox (`Name <a@b>`) is suppressed by its address.
    let raw = address.as_str();
    let bare = raw
        .strip_suffix('>')
        .and_then(|r| r.rsplit_once('<'))
        .map_or(raw, |(_, a)| a);
    sha256_hex(bare.trim().to_ascii_lowercase().as_bytes())
}

/// Claims, outcomes and suppressions (DynamoDB in AWS and against moto, memory in tests).
#[async_trait]
pub trait EmailLedger: Send + Sync {
    /// Claims `key` for `token` until `now + lease_secs`: wins if no record exists or the
    /// last claim's lease has ended; one conditional write.
    async fn claim(
        &self,
        key: &EmailKey,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Claim, StoreError>;
    /// Records the outcome, if `token` still holds the claim (`Ok(false)`: it does not: its
    /// lease ended and another consumer took the email over).
    async fn finish(
        &self,
        key: &EmailKey,
        token: &str,
        outcome: &Finished,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Gives the claim back (SES said, for certain, that it did not send): the next delivery
    /// of the job may claim at once.
    async fn release(&self, key: &EmailKey, token: &str) -> Result<(), StoreError>;
    /// Whether the address (by [`address_hash`]) is suppressed.
    async fn suppressed(&self, hash: &str) -> Result<bool, StoreError>;
    /// Suppresses the address (a permanent bounce or a complaint); recording it again is no
    /// error.
    async fn suppress(&self, hash: &str, reason: &str, at: i64) -> Result<(), StoreError>;
    /// The newest `limit` email records, newest change first (every page needed to find them).
    async fn records(&self, limit: usize) -> Result<Vec<EmailRecord>, StoreError> {
        crate::ports::collect_pages(limit, |before, want| async move {
            self.records_page(before.as_ref(), want).await
        })
        .await
    }
    /// One page of email records, newest change first, before `before`.
    async fn records_page(
        &self,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<EmailRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suppression_key_is_a_hash_of_the_bare_address_without_case() {
        let a = address_hash(&EmailAddress::new("Jo.Doe@Example.com"));
        assert_eq!(a, address_hash(&EmailAddress::new(" jo.doe@example.com ")));
        assert_eq!(
            a,
            address_hash(&EmailAddress::new("Jo Doe <jo.doe@example.com>"))
        );
        assert_ne!(a, address_hash(&EmailAddress::new("jo.doe2@example.com")));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("example"));
    }

    #[test]
    fn states_read_back_by_name() {
        for s in [
            EmailState::Claimed,
            EmailState::Sent,
            EmailState::Rejected,
            EmailState::Skipped,
        ] {
            assert_eq!(EmailState::parse(s.as_str()), Some(s));
        }
        assert_eq!(EmailState::parse("lost"), None);
    }
}
