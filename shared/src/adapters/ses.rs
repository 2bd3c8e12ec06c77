//! Customer emails through SES v2 `SendEmail`: a simple message (subject, text and HTML in
//! UTF-8), the sender, the optional reply-to and configuration set, and the kind as a message
//! tag. SES's refusals map to [`SendError`] by what a retry can change (see `emails::send`).

use super::sdk_error::{kind, Describe};
use crate::emails::send::{Mailer, OutgoingEmail, SendError};
use async_trait::async_trait;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use aws_sdk_sesv2::Client;

pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn utf8(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Rejected(e.describe()))
}

/// Which [`SendError`] an SES failure is. Only the kind and SES's code are kept (never the
/// request, which holds the address).
fn classify(e: SdkError<SendEmailError, aws_sdk_sesv2::config::http::HttpResponse>) -> SendError {
    let what = kind(&e);
    match &e {
        SdkError::ServiceError(service) => match service.err() {
            SendEmailError::TooManyRequestsException(_)
            | SendEmailError::LimitExceededException(_) => SendError::Throttled(what),
            SendEmailError::SendingPausedException(_)
            | SendEmailError::AccountSuspendedException(_) => SendError::Paused(what),
            // The record keeps the refusal's name, from the variant (a response's code may be
            // missing from its metadata).
            SendEmailError::MessageRejected(_) => SendError::Rejected("MessageRejected".into()),
            SendEmailError::MailFromDomainNotVerifiedException(_) => {
                SendError::Rejected("MailFromDomainNotVerifiedException".into())
            }
            SendEmailError::BadRequestException(_) => {
                SendError::Rejected("BadRequestException".into())
            }
            SendEmailError::NotFoundException(_) => SendError::Rejected("NotFoundException".into()),
            _ => SendError::Unavailable(what),
        },
        _ => SendError::Unavailable(what),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let body = Body::builder()
            .text(utf8(&email.content.text)?)
            .html(utf8(&email.content.html)?)
            .build();
        let message = Message::builder()
            .subject(utf8(&email.content.subject)?)
            .body(body)
            .build();
        let tag = MessageTag::builder()
            .name("email_kind")
            .value(email.kind.as_str())
            .build()
            .map_err(|e| SendError::Rejected(e.describe()))?;
        let out = self
            .client
            .send_email()
            .from_email_address(email.from.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .set_reply_to_addresses(email.reply_to.as_ref().map(|r| vec![r.as_str().to_owned()]))
            .set_configuration_set_name(email.configuration_set.clone())
            .email_tags(tag)
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::config::http::HttpResponse;
    use aws_sdk_sesv2::types::error as ses;

    fn refused(e: SendEmailError) -> SendError {
        let response = HttpResponse::new(400u16.try_into().expect("status"), "".into());
        classify(SdkError::service_error(e, response))
    }

    #[test]
    fn each_ses_refusal_is_classified_by_what_a_retry_can_change() {
        use SendEmailError as E;
        let cases = [
            (
                E::TooManyRequestsException(ses::TooManyRequestsException::builder().build()),
                "throttled",
            ),
            (
                E::LimitExceededException(ses::LimitExceededException::builder().build()),
                "throttled",
            ),
            (
                E::SendingPausedException(ses::SendingPausedException::builder().build()),
                "paused",
            ),
            (
                E::AccountSuspendedException(ses::AccountSuspendedException::builder().build()),
                "paused",
            ),
            (
                E::MessageRejected(ses::MessageRejected::builder().build()),
                "rejected MessageRejected",
            ),
            (
                E::MailFromDomainNotVerifiedException(
                    ses::MailFromDomainNotVerifiedException::builder().build(),
                ),
                "rejected MailFromDomainNotVerifiedException",
            ),
        ];
        for (error, want) in cases {
            let got = match refused(error) {
                SendError::Throttled(_) => "throttled".to_owned(),
                SendError::Paused(_) => "paused".to_owned(),
                SendError::Rejected(code) => format!("rejected {code}"),
                SendError::Unavailable(what) => format!("unavailable {what}"),
            };
            assert_eq!(got, want);
        }
        // No answer: SES may have accepted it.
        let timeout = classify(SdkError::timeout_error("operation timeout"));
        assert_eq!(timeout, SendError::Unavailable("timeout".into()));
    }
}
