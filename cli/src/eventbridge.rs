//! `billing eventbridge dead-letters|redrive`: the EventBridge ingress' dead-letter queue, looked
//! at without its bodies, and moved back to the queue once the cause is fixed.

use billing::eventbridge::{describe, Settings};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum EventbridgeCommand {
    /// The messages of the EventBridge dead-letter queue (BILLING_EVENTBRIDGE_DLQ_URL), one JSON
    /// line each: message id, receive count, the envelope's source, account and detail-type, and
    /// the verdict under BILLING_EVENTBRIDGE_SOURCE and _ACCOUNT (a refusal's kind, or
    /// `accepted` with the event id). Never a body. Each message read stays hidden for 30 s.
    DeadLetters {
        /// At most this many messages.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Move every message of the EventBridge dead-letter queue back to its queue
    /// (BILLING_EVENTBRIDGE_QUEUE_URL): what is now accepted is applied once (an event already
    /// recorded is a duplicate); what is still refused returns there after five receives.
    Redrive,
}

pub async fn command(cmd: EventbridgeCommand) -> Result<(), String> {
    let sdk = billing::app::aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (dlq, queue) = crate::settings::eventbridge_queues()?;
    match cmd {
        EventbridgeCommand::DeadLetters { limit } => {
            let settings = Settings::from_env().map_err(|e| e.to_string())?;
            for line in dead_letters(&sqs, &dlq, &settings, usize::from(limit)).await? {
                println!("{line}");
            }
            Ok(())
        }
        EventbridgeCommand::Redrive => {
            let moved = crate::emails::redrive(&sqs, &dlq, &queue).await?;
            println!("moved {moved} message(s) back to the EventBridge queue");
            Ok(())
        }
    }
}

/// Up to `limit` messages of `dlq`, each described once (`eventbridge::describe`), with its
/// message id and receive count. Reading hides a message for 30 s, so a pass ends when the
/// queue answers nothing new.
pub async fn dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    settings: &Settings,
    limit: usize,
) -> Result<Vec<serde_json::Value>, String> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < limit {
        let batch = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(Attr::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let fresh: Vec<_> = batch
            .messages()
            .iter()
            .filter(|m| seen.insert(m.message_id().unwrap_or_default().to_owned()))
            .collect();
        if fresh.is_empty() {
            return Ok(out);
        }
        for m in fresh.into_iter().take(limit - out.len()) {
            let mut line = describe(m.body().unwrap_or_default(), settings);
            line["message_id"] = m.message_id().unwrap_or_default().into();
            let count = m
                .attributes()
                .and_then(|a| a.get(&Attr::ApproximateReceiveCount));
            line["receive_count"] = count.and_then(|c| c.parse::<u64>().ok()).into();
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing::eventbridge::{sqs_event, SAMPLE_ACCOUNT, SAMPLE_SOURCE};

    /// Against moto (scripts/test): what a dead letter's line says, without its body.
    #[tokio::test]
    async fn moto_dead_letters_are_described_by_verdict_and_event_id_without_bodies() {
        assert!(
            crate::settings::aws_endpoint_set(),
            "AWS_ENDPOINT_URL is not set: run the suite with scripts/test (it starts moto)"
        );
        let sqs = aws_sdk_sqs::Client::new(&billing::app::aws_config().await);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("eventbridge-dlq-{}-{t}", std::process::id());
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_owned();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/tests/fixtures/stripe/lifecycle/01_checkout.session.completed.json");
        let detail: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("json");
        for account in [SAMPLE_ACCOUNT, "210987654321"] {
            let event = sqs_event(&detail, SAMPLE_SOURCE, account, 1_759_316_403);
            let body = event["Records"][0]["body"].as_str().expect("body");
            sqs.send_message()
                .queue_url(&url)
                .message_body(body)
                .send()
                .await
                .expect("send");
        }
        let settings = Settings::sample();
        let lines = dead_letters(&sqs, &url, &settings, 10).await.expect("read");
        let mut verdicts: Vec<_> = lines
            .iter()
            .map(|l| {
                (
                    l["verdict"].clone(),
                    l["event_id"].clone(),
                    l["receive_count"].clone(),
                )
            })
            .collect();
        verdicts.sort_by_key(|v| v.0.to_string());
        assert_eq!(
            verdicts,
            [
                (
                    "accepted".into(),
                    "evt_life_01_checkout_completed".into(),
                    1.into()
                ),
                ("wrong_account".into(), serde_json::Value::Null, 1.into()),
            ]
        );
        for line in &lines {
            assert!(
                line.get("detail").is_none() && !line.to_string().contains("cs_"),
                "{line}"
            );
        }
    }
}
