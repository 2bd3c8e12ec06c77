//! `billing emails list|redrive`, and the local run's in-process email consumer: the same
//! `EmailSender` the emails Lambda runs, fed from the local email queue in moto.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use billing::adapters::email_store::DynamoEmailLedger;
use billing::app::App;
use billing::emails::records::EmailLedger;
use billing::emails::send::{EmailSender, SqsEvent, SqsRecord, SqsSystemAttributes};
use clap::Subcommand;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum EmailsCommand {
    /// Sent-email records, newest change first, one JSON line each: kind, object, state,
    /// SES message id or reason, attempts, time. Never an address.
    List {
        /// How many records (the newest), over every page.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Every record, page after page (instead of --limit).
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Render one email with the configured brand and templates (BILLING_BRAND_*,
    /// BILLING_EMAIL_TEMPLATES) from a sample, a Stripe event file or the table, and write its
    /// subject, text and HTML to files. Sends nothing.
    Preview(crate::preview::PreviewArgs),
    /// Move every message of the email dead-letter queue (BILLING_EMAIL_DLQ_URL) back to the
    /// email queue (BILLING_EMAIL_QUEUE_URL). A job already finished is not sent again.
    Redrive,
}

pub async fn command(app: &App, cmd: EmailsCommand) -> Result<(), String> {
    let sdk = billing::app::sdk_loader(&app.config.bounds).load().await;
    match cmd {
        EmailsCommand::List { limit, all } => {
            let limit = if all { usize::MAX } else { usize::from(limit) };
            let ledger =
                DynamoEmailLedger::new(aws_sdk_dynamodb::Client::new(&sdk), &app.config.table);
            let records = ledger.records(limit).await.map_err(|e| e.to_string())?;
            for r in records {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            }
            Ok(())
        }
        EmailsCommand::Preview(args) => crate::preview::command(args).await,
        EmailsCommand::Redrive => {
            let (dlq, queue) = crate::settings::email_redrive_queues()?;
            let moved = redrive(&aws_sdk_sqs::Client::new(&sdk), &dlq, &queue).await?;
            println!("moved {moved} message(s) back to the email queue");
            Ok(())
        }
    }
}

/// Moves messages from `from` to `to` until `from` answers empty: each is sent (body and
/// attributes) before it is deleted, so a failure leaves a copy, never none.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> Result<usize, String> {
    let describe = |e: &dyn std::fmt::Display| e.to_string();
    let mut moved = 0;
    loop {
        let batch = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| describe(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        if batch.messages().is_empty() {
            return Ok(moved);
        }
        for m in batch.messages() {
            sqs.send_message()
                .queue_url(to)
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes().cloned())
                .send()
                .await
                .map_err(|e| describe(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            sqs.delete_message()
                .queue_url(from)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| describe(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            moved += 1;
        }
    }
}

/// One pass of the local consumer: receive a batch (waiting up to a second), hand it to the
/// sender as Lambda would, delete what it finished. Returned messages come back after the
/// queue's visibility timeout, as in AWS.
pub async fn consume_once(
    sender: &EmailSender,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<usize, String> {
    let batch = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    let mut handles = HashMap::new();
    let records = batch
        .messages()
        .iter()
        .map(|m| {
            let id = m.message_id().unwrap_or_default().to_owned();
            handles.insert(
                id.clone(),
                m.receipt_handle().unwrap_or_default().to_owned(),
            );
            SqsRecord {
                message_id: id,
                body: m.body().unwrap_or_default().to_owned(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                system: SqsSystemAttributes {
                    approximate_receive_count: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .cloned(),
                },
                ..Default::default()
            }
        })
        .collect();
    let response = sender.handle_batch(&SqsEvent { records }).await;
    for failed in &response.batch_item_failures {
        handles.remove(&failed.item_identifier);
    }
    let done = handles.len();
    for handle in handles.into_values() {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    }
    Ok(done)
}

/// Creates (or finds) the local email queue in the emulator.
pub async fn local_email_queue(sqs: &aws_sdk_sqs::Client) -> Result<String, String> {
    Ok(sqs
        .create_queue()
        .queue_name("billing-emails-local")
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot create the local email queue: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .queue_url()
        .unwrap_or_default()
        .to_owned())
}

/// The local consumer loop (spawned by `billing local`).
pub async fn consume_forever(sender: EmailSender, sqs: aws_sdk_sqs::Client, url: String) {
    loop {
        if let Err(e) = consume_once(&sender, &sqs, &url).await {
            tracing::warn!(error = %e, "local email consumer pass failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        sqs.create_queue()
            .queue_name(format!("{name}-{}-{t}", std::process::id()))
            .send()
            .await
            .expect("create queue in moto")
            .queue_url()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn moto_redrive_moves_every_message_back_with_its_attributes() {
        assert!(
            crate::settings::aws_endpoint_set(),
            "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts moto)"
        );
        let sqs = aws_sdk_sqs::Client::new(&billing::app::aws_config().await);
        let (dlq, jobs) = (
            queue(&sqs, "redrive-dlq").await,
            queue(&sqs, "redrive-jobs").await,
        );
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("email.job")
            .build()
            .expect("attribute");
        for n in 0..13 {
            sqs.send_message()
                .queue_url(&dlq)
                .message_body(format!("{{\"n\": {n}}}"))
                .message_attributes("kind", kind.clone())
                .send()
                .await
                .expect("send");
        }
        assert_eq!(redrive(&sqs, &dlq, &jobs).await, Ok(13));
        let mut bodies = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&jobs)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                let attr = m.message_attributes().and_then(|a| a.get("kind"));
                assert_eq!(attr.and_then(|a| a.string_value()), Some("email.job"));
                bodies.push(m.body().unwrap_or_default().to_owned());
                sqs.delete_message()
                    .queue_url(&jobs)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 13);
        assert_eq!(redrive(&sqs, &dlq, &jobs).await, Ok(0), "the DLQ is empty");
    }
}
