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
            SendEmailError::MessageRejected(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::BadRequestException(_)
            | SendEmailError::NotFoundException(_) => SendError::Rejected(rejection_code(&what)),
            _ => SendError::Unavailable(what),
        },
        _ => SendError::Unavailable(what),
    }
}

/// `service MessageRejected` → `MessageRejected`: the code is what the record keeps.
fn rejection_code(what: &str) -> String {
    what.strip_prefix("service ").unwrap_or(what).to_owned()
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

    #[test]
    fn the_record_keeps_the_code_of_a_rejection() {
        assert_eq!(rejection_code("service MessageRejected"), "MessageRejected");
        assert_eq!(rejection_code("construction"), "construction");
    }
}
