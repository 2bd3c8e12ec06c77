//! The one error type of a delivery, with its kind; `http::respond` is the one place that maps
//! kinds to status codes (rejected → 400, transient → 503). Permanent errors never reach it: the
//! pipeline parks the event with its reason instead, so nothing is retried forever.

use crate::ports::{ApiError, SecretsError, StoreError};
use std::fmt;
use std::sync::Arc;

/// A provider's reason for refusing a delivery as not authentic. It holds the provider's own
/// error (its message names the failed check, never a header, body or secret); the core only
/// shows it, and a provider's tests take their own type back out ([`Refusal::downcast_ref`]).
#[derive(Clone)]
pub struct Refusal(Arc<dyn std::error::Error + Send + Sync>);

impl Refusal {
    pub fn new(why: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(why))
    }

    /// The provider's own reason, if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

/// A refusal given as plain words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Words(String);

impl From<&str> for Refusal {
    fn from(words: &str) -> Self {
        Refusal::new(Words(words.to_owned()))
    }
}

impl From<String> for Refusal {
    fn from(words: String) -> Self {
        Refusal::new(Words(words))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Refusal({self})")
    }
}

/// Two refusals are equal when they say the same.
impl PartialEq for Refusal {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Refusal {}

/// Why a delivery was refused (400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not authentic: the provider's own reason (it never quotes a header, body or secret).
    #[error("{0}")]
    Unauthentic(Refusal),
    #[error("event livemode={event} but this endpoint runs livemode={configured}")]
    Livemode { event: bool, configured: bool },
    #[error("no webhook endpoint for provider `{0}`")]
    UnknownProvider(String),
    /// Larger than the route takes (Lambda's request limit); answered 413.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body could not be read from the connection.
    #[error("request body could not be read")]
    BodyUnreadable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The delivery is not authentic or not ours: 400, nothing stored.
    Rejected,
    /// May succeed later (throttling, a timeout, contention, an unreachable service): 503.
    Transient,
    /// Can never succeed as it is (a request DynamoDB refuses, a corrupt stored item).
    Permanent,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Rejected => "rejected",
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The delivery ran past its deadline (`BILLING_DELIVERY_TIMEOUT_MS`): a slow dependency.
    #[error("delivery exceeded its deadline of {0:?}")]
    Deadline(std::time::Duration),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::Store(e) if e.is_permanent() => ErrorKind::Permanent,
            Error::Store(_) | Error::Secrets(_) | Error::Api(_) | Error::Deadline(_) => {
                ErrorKind::Transient
            }
        }
    }
}
