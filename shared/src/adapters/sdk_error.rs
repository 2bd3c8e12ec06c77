//! Why an AWS SDK call failed, in a few words: the kind (timeout, dispatch, response, service
//! error code) leads every adapter's error text, so a 503 in the logs says why without a body
//! or a secret.

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::error::Error;

/// A failure's text for an adapter's error: its kind first.
pub trait Describe {
    fn describe(&self) -> String;
}

impl<E, R> Describe for SdkError<E, R>
where
    E: ProvideErrorMetadata + Error + 'static,
    R: std::fmt::Debug,
{
    fn describe(&self) -> String {
        describe(self)
    }
}

/// A request that could not be built (a required field missing): our bug, never sent.
impl Describe for BuildError {
    fn describe(&self) -> String {
        format!("construction: {self}")
    }
}

/// The kind of a failed SDK call: `timeout` (an attempt or the operation ran out of time),
/// `dispatch (timeout|io|…)` (the request never got an answer: connect failed or timed out,
/// connection reset), `response` (an answer we could not read), `service CODE` (AWS answered
/// with an error), `construction` (our request was invalid before it was sent).
pub fn kind<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(d) => {
            let how = if d.is_timeout() {
                "timeout"
            } else if d.is_io() {
                "io"
            } else if d.is_user() {
                "user"
            } else {
                "other"
            };
            format!("dispatch ({how})")
        }
        SdkError::ResponseError(_) => "response".into(),
        SdkError::ServiceError(s) => format!("service {}", s.err().code().unwrap_or("unknown")),
        SdkError::ConstructionFailure(_) => "construction".into(),
        _ => "unknown".into(),
    }
}

/// `"{kind}: {the error and its sources}"`: the text every adapter puts in its error.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
    R: std::fmt::Debug,
{
    format!("{}: {}", kind(e), DisplayErrorContext(e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("status"), "".into())
    }

    /// One failed call of each kind, as the SDK reports them.
    pub(crate) fn samples() -> Vec<(SdkError<GetItemError, HttpResponse>, &'static str)> {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let throttled = GetItemError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        );
        vec![
            (SdkError::timeout_error("operation timeout"), "timeout"),
            (
                SdkError::dispatch_failure(ConnectorError::timeout("connect timeout".into())),
                "dispatch (timeout)",
            ),
            (
                SdkError::dispatch_failure(ConnectorError::io(io.into())),
                "dispatch (io)",
            ),
            (
                SdkError::response_error("unreadable", response(200)),
                "response",
            ),
            (
                SdkError::service_error(throttled, response(400)),
                "service ThrottlingException",
            ),
            (
                SdkError::construction_failure("missing table"),
                "construction",
            ),
        ]
    }

    #[test]
    fn each_failure_is_described_by_its_kind_first() {
        for (error, expected) in samples() {
            assert_eq!(kind(&error), expected);
            let text = describe(&error);
            assert!(text.starts_with(&format!("{expected}: ")), "{text}");
        }
    }
}
