//! DynamoDB's errors as the store's: what a retry can do about each (permanent refusal,
//! transient failure, contention, a duplicate), said without the raw response.

use crate::adapters::sdk_error::Describe;
use crate::ports::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

/// A failed call (timeout, dispatch, response, service error) or request build, by its kind:
/// the provider retries the delivery.
pub(super) fn unavailable(e: impl Describe) -> StoreError {
    StoreError::Unavailable(e.describe())
}

/// DynamoDB's error code for a request it will never accept as it is.
const VALIDATION_EXCEPTION: &str = "ValidationException";

/// A failed call, by what a retry can do: a `ValidationException` (an item over 400 KB, a key
/// or expression DynamoDB rejects) refuses the request itself, so it is permanent; anything
/// else (timeout, dispatch, throttling, a 5xx) is transient.
pub(super) fn failed<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) if service.err().code() == Some(VALIDATION_EXCEPTION) => {
            refused(service.err())
        }
        _ => unavailable(e),
    }
}

/// A refusal in DynamoDB's words: its code and message (which name limits and attributes, not
/// values), without the raw response.
fn refused(e: &impl ProvideErrorMetadata) -> StoreError {
    StoreError::Refused(format!(
        "service {}: {}",
        e.code().unwrap_or("unknown"),
        e.message().unwrap_or("no message")
    ))
}

/// A cancelled transaction, by the reason code of each item (the ledger item is first): a
/// failed condition on the ledger means the event is already recorded; a `ValidationError` (an
/// item DynamoDB will not accept, e.g. one grown over 400 KB) can never succeed; anything else —
/// a moved revision, a conflict with another transaction, throttling — is contention, to
/// re-read and retry.
fn classify_cancellation(codes: &[&str]) -> StoreError {
    if codes.first() == Some(&"ConditionalCheckFailed") {
        StoreError::AlreadyRecorded
    } else if codes.contains(&"ValidationError") {
        StoreError::Refused(format!("transaction cancelled: {codes:?}"))
    } else {
        StoreError::Contention(format!("transaction cancelled: {codes:?}"))
    }
}

/// Maps a failed transaction to the store's error: only a failed condition on the ledger item
/// (always the first item) means "already recorded"; a refusal is permanent (see [`failed`]).
pub(super) fn transact_error(e: SdkError<TransactWriteItemsError>) -> StoreError {
    if let SdkError::ServiceError(service) = &e {
        match service.err() {
            TransactWriteItemsError::TransactionCanceledException(tc) => {
                let codes: Vec<&str> = tc
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                return classify_cancellation(&codes);
            }
            TransactWriteItemsError::TransactionInProgressException(_) => {
                return StoreError::Contention("transaction conflict".into());
            }
            _ => {}
        }
    }
    failed(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    #[test]
    fn a_failed_call_is_unavailable_and_says_its_kind() {
        for (error, kind) in crate::adapters::sdk_error::tests::samples() {
            match unavailable(error) {
                StoreError::Unavailable(text) => {
                    assert!(text.starts_with(&format!("{kind}: ")), "{text}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn only_a_failed_ledger_condition_means_already_recorded() {
        assert_eq!(
            classify_cancellation(&["ConditionalCheckFailed", "None", "None"]),
            StoreError::AlreadyRecorded
        );
        assert_eq!(
            classify_cancellation(&["ConditionalCheckFailed", "ValidationError"]),
            StoreError::AlreadyRecorded,
            "a recorded event is a duplicate, whatever else was refused"
        );
        for codes in [
            ["None", "ConditionalCheckFailed", "None"],
            ["TransactionConflict", "None", "None"],
            ["None", "ThrottlingError", "None"],
            ["None", "None", "ProvisionedThroughputExceeded"],
        ] {
            assert!(
                matches!(classify_cancellation(&codes), StoreError::Contention(_)),
                "{codes:?}"
            );
        }
        for codes in [
            ["None", "ValidationError", "None"],
            ["None", "ConditionalCheckFailed", "ValidationError"],
        ] {
            let e = classify_cancellation(&codes);
            assert!(
                matches!(e, StoreError::Refused(_)) && e.is_permanent(),
                "{codes:?}"
            );
        }
    }

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("status"), "".into())
    }

    /// DynamoDB's answer to an item over 400 KB, as the error of any operation.
    fn too_large<E>(generic: fn(ErrorMetadata) -> E) -> SdkError<E, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code("ValidationException")
            .message("Item size has exceeded the maximum allowed size")
            .build();
        SdkError::service_error(generic(meta), response(400))
    }

    #[test]
    fn a_validation_exception_is_refused_in_dynamodb_s_words() {
        let refused = StoreError::Refused(
            "service ValidationException: Item size has exceeded the maximum allowed size".into(),
        );
        assert!(refused.is_permanent());
        assert_eq!(failed(too_large(PutItemError::generic)), refused);
        assert_eq!(failed(too_large(BatchGetItemError::generic)), refused);
        assert_eq!(failed(too_large(GetItemError::generic)), refused);
        assert_eq!(
            transact_error(too_large(TransactWriteItemsError::generic)),
            refused
        );
    }

    #[test]
    fn every_other_failed_call_stays_transient() {
        for (error, kind) in crate::adapters::sdk_error::tests::samples() {
            match failed(error) {
                StoreError::Unavailable(text) => {
                    assert!(text.starts_with(&format!("{kind}: ")), "{text}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_transaction_cancelled_for_a_validation_error_is_refused() {
        let cancelled = |codes: &[&str]| {
            let reasons = codes
                .iter()
                .map(|c| CancellationReason::builder().code(*c).build())
                .collect();
            let e = TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .build();
            transact_error(SdkError::service_error(
                TransactWriteItemsError::TransactionCanceledException(e),
                response(400),
            ))
        };
        assert_eq!(
            cancelled(&["None", "ValidationError", "None"]),
            StoreError::Refused(
                r#"transaction cancelled: ["None", "ValidationError", "None"]"#.into()
            )
        );
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "None"]),
            StoreError::AlreadyRecorded
        );
        assert!(matches!(
            cancelled(&["None", "ConditionalCheckFailed"]),
            StoreError::Contention(_)
        ));
    }
}
