//! Logging and metrics. Logs are JSON lines without payloads, secrets or email addresses;
//! metrics are CloudWatch Embedded Metric Format lines, so they cost no API call on Lambda.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Initialises `tracing` once: JSON on Lambda, human-readable locally (`BILLING_LOG_FORMAT`).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests, the local server) keeps the first subscriber.
    let _ = result;
}

/// Counters the pipeline and the relay emit; one name per outcome so alarms can target each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    Applied,
    Stale,
    Ignored,
    Parked,
    Redelivered,
    SignatureRejected,
    LivemodeRejected,
    OutsideFamily,
    Unavailable,
    SecretRefresh,
    OutboxDelivered,
    OutboxFailed,
    OutboxUnreadable,
    /// The queue refused an outbox message for good (too large, an invalid character): set
    /// aside like an unreadable one.
    OutboxRefused,
    Replayed,
    TiesUnresolved,
    /// An applied event left a subscription Invalid (its periods overlap or leave a gap while
    /// the provider says it runs) that was not before.
    SubscriptionsInvalid,
    /// SES accepted a customer email.
    EmailsSent,
    /// A customer email decided against at send time (paid meanwhile, suppressed, …).
    EmailsSkipped,
    /// SES refused a customer email for good (`MessageRejected`, sender not verified).
    EmailsRejected,
    /// An email job whose email was already finished (a redelivery, a second event).
    EmailsDuplicate,
    /// An email job returned to its queue (throttled, paused, claimed elsewhere, no answer).
    EmailsRetried,
    /// SES throttled a send (each attempt).
    EmailsThrottled,
    /// SES refused to send because the account's sending is paused (an alarm watches it).
    EmailsSendingPaused,
    /// An address suppressed after a permanent bounce or a complaint.
    EmailSuppressions,
    /// An event the reconcile function's backfill recorded that no webhook had delivered.
    MissedEvents,
    /// A subscription the reconcile function found different from Stripe's, and repaired.
    DriftRepaired,
    /// An EventBridge record refused before the pipeline (another source or account, no
    /// Stripe event in its `detail`, unreadable): returned to its queue, it ends in the DLQ.
    EventBridgeRefused,
}

/// The dimension every counter carries (`Family`), and its values besides the endpoint
/// families: the relay's and the replay command's.
pub const DIMENSION: &str = "Family";
/// `BILLING_METRICS_NAMESPACE` when unset.
pub const DEFAULT_NAMESPACE: &str = "BillingWebhooks";
pub const RELAY_DIMENSION: &str = "relay";
pub const REPLAY_DIMENSION: &str = "replay";
/// The reconcile function's (`MissedEvents`, `DriftRepaired`).
pub const RECONCILE_DIMENSION: &str = "reconcile";
/// The dimension of the email metrics.
pub const EMAILS_DIMENSION: &str = "emails";
/// The EventBridge ingress' refusals (`EventBridgeRefused`); the events it applies are counted
/// at their Stripe family, like a webhook delivery's.
pub const EVENTBRIDGE_DIMENSION: &str = "eventbridge";

impl Counter {
    /// Every counter (a new one goes here too), so the dashboard check (`billing metrics`) can list what the code emits.
    pub const ALL: [Counter; 28] = [
        Counter::Applied,
        Counter::Stale,
        Counter::Ignored,
        Counter::Parked,
        Counter::Redelivered,
        Counter::SignatureRejected,
        Counter::LivemodeRejected,
        Counter::OutsideFamily,
        Counter::Unavailable,
        Counter::SecretRefresh,
        Counter::OutboxDelivered,
        Counter::OutboxFailed,
        Counter::OutboxUnreadable,
        Counter::OutboxRefused,
        Counter::Replayed,
        Counter::TiesUnresolved,
        Counter::SubscriptionsInvalid,
        Counter::EmailsSent,
        Counter::EmailsSkipped,
        Counter::EmailsRejected,
        Counter::EmailsDuplicate,
        Counter::EmailsRetried,
        Counter::EmailsThrottled,
        Counter::EmailsSendingPaused,
        Counter::EmailSuppressions,
        Counter::MissedEvents,
        Counter::DriftRepaired,
        Counter::EventBridgeRefused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Applied => "EventsApplied",
            Counter::Stale => "EventsStale",
            Counter::Ignored => "EventsIgnored",
            Counter::Parked => "EventsParked",
            Counter::Redelivered => "EventsRedelivered",
            Counter::SignatureRejected => "SignatureRejected",
            Counter::LivemodeRejected => "LivemodeRejected",
            Counter::OutsideFamily => "EventsOutsideFamily",
            Counter::Unavailable => "TransientFailures",
            Counter::SecretRefresh => "SecretRefreshes",
            Counter::OutboxDelivered => "OutboxDelivered",
            Counter::OutboxFailed => "OutboxFailed",
            Counter::OutboxUnreadable => "OutboxUnreadable",
            Counter::OutboxRefused => "OutboxRefused",
            Counter::Replayed => "EventsReplayed",
            Counter::TiesUnresolved => "TiesUnresolved",
            Counter::SubscriptionsInvalid => "SubscriptionsInvalid",
            Counter::EmailsSent => "EmailsSent",
            Counter::EmailsSkipped => "EmailsSkipped",
            Counter::EmailsRejected => "EmailsRejected",
            Counter::EmailsDuplicate => "EmailsDuplicate",
            Counter::EmailsRetried => "EmailsRetried",
            Counter::EmailsThrottled => "EmailsThrottled",
            Counter::EmailsSendingPaused => "EmailsSendingPaused",
            Counter::EmailSuppressions => "EmailSuppressions",
            Counter::MissedEvents => "MissedEvents",
            Counter::DriftRepaired => "DriftRepaired",
            Counter::EventBridgeRefused => "EventBridgeRefused",
        }
    }
}

/// Where counters go: EMF on stdout in production, memory in tests.
pub enum Metrics {
    Emf { namespace: String },
    Memory(Mutex<BTreeMap<(Counter, String), u64>>),
    Off,
}

impl Metrics {
    pub fn memory() -> Self {
        Metrics::Memory(Mutex::new(BTreeMap::new()))
    }

    /// Counts one occurrence, dimensioned by endpoint family.
    pub fn incr(&self, counter: Counter, family: &str) {
        match self {
            Metrics::Emf { namespace } => {
                let line = serde_json::json!({
                    "_aws": {
                        "Timestamp": std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64),
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [[DIMENSION]],
                            "Metrics": [{"Name": counter.name(), "Unit": "Count"}]
                        }]
                    },
                    DIMENSION: family,
                    counter.name(): 1
                });
                println!("{line}");
            }
            Metrics::Memory(map) => {
                if let Ok(mut map) = map.lock() {
                    *map.entry((counter, family.to_owned())).or_default() += 1;
                }
            }
            Metrics::Off => {}
        }
    }

    /// Total of one counter over all families (memory sink only; 0 elsewhere).
    pub fn count(&self, counter: Counter) -> u64 {
        match self {
            Metrics::Memory(map) => map
                .lock()
                .map(|m| {
                    m.iter()
                        .filter(|((c, _), _)| *c == counter)
                        .map(|(_, n)| n)
                        .sum()
                })
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// What the code emits, as the dashboard check reads it (`billing metrics`): the namespace's
/// default, the one dimension, its values (the endpoints' names, then the relay's, the
/// replay's, the emails', the reconcile's and the EventBridge ingress'), and every counter's name.
pub fn emitted(endpoints: &[&str]) -> serde_json::Value {
    let mut values: Vec<&str> = endpoints.to_vec();
    values.extend([
        RELAY_DIMENSION,
        REPLAY_DIMENSION,
        EMAILS_DIMENSION,
        RECONCILE_DIMENSION,
        EVENTBRIDGE_DIMENSION,
    ]);
    serde_json::json!({
        "default_namespace": DEFAULT_NAMESPACE,
        "dimension": DIMENSION,
        "dimension_values": values,
        "metrics": Counter::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_unique() {
        let names: std::collections::BTreeSet<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::ALL.len());
    }

    #[test]
    fn emitted_lists_the_endpoints_the_relay_and_replay() {
        let endpoints = [
            "checkout",
            "subscription",
            "invoice",
            "charge",
            "paypal",
            "operator",
        ];
        let e = emitted(&endpoints);
        let values: Vec<&str> = e["dimension_values"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(
            values,
            [
                "checkout",
                "subscription",
                "invoice",
                "charge",
                "paypal",
                "operator",
                "relay",
                "replay",
                "emails",
                "reconcile",
                "eventbridge"
            ]
        );
        assert_eq!(e["metrics"].as_array().map(Vec::len), Some(28));
        assert_eq!(e["dimension"], "Family");
    }
}
