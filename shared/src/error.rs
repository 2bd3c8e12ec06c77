//! The one error type of a delivery, with its kind; `http::respond` is the one place that maps
//! kinds to status codes (rejected → 400, transient → 503). Permanent errors never reach it: the
//! pipeline parks the event with its reason instead, so nothing is retried forever.

use crate::ports::{ApiError, SecretsError, StoreError};

/// Why a delivery was refused (400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not authentic: the provider's own reason (it never quotes a header, body or secret).
    #[error("{0}")]
    Unauthentic(String),
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
    /// A PayPal delivery that failed verification: which check, never a value.
    #[error("{0}")]
    Paypal(crate::providers::paypal::PaypalRejection),
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
