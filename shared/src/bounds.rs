//! How long a call to a remote service, and a whole delivery, may wait: `BILLING_AWS_*` and
//! `BILLING_DELIVERY_TIMEOUT_MS`, read by [`read_bounds`]. The AWS clients (`app::sdk_loader`)
//! and the providers' HTTPS clients (`adapters::stripe_api`, `providers::paypal::api`) take
//! the same [`CallBounds`].

use crate::settings::{number, within, ConfigError};
use std::time::Duration;

/// How long one call to a remote service may wait. Read once and applied where clients are
/// built (`app::sdk_loader` for AWS); an HTTP client for a provider's API takes the same
/// values (connect timeout, per-request timeout, attempts within an overall deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBounds {
    /// Setting up a connection: TCP and TLS.
    pub connect: Duration,
    /// One attempt: connect (if needed), send, and read the whole response.
    pub attempt: Duration,
    /// One operation: every attempt and the backoff between them.
    pub operation: Duration,
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
}

impl Default for CallBounds {
    /// 2 s to connect (a TLS handshake costs about 0.75 s on a 128 MB Lambda), 2 s per
    /// attempt, 4 s per operation, 3 attempts: a call to a service that does not answer fails
    /// within 4 s (docs/ARCHITECTURE.md, "Bounded waits").
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(2_000),
            attempt: Duration::from_millis(2_000),
            operation: Duration::from_millis(4_000),
            max_attempts: 3,
        }
    }
}

/// The default of `BILLING_DELIVERY_TIMEOUT_MS`.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_millis(10_000);

/// The call bounds and the delivery deadline; each must fit inside the next
/// (connect ≤ attempt ≤ operation ≤ delivery), and the delivery inside API Gateway's 29 s.
pub fn read_bounds(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(CallBounds, Duration), ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let d = CallBounds::default();
    let ms = |name: &str, range, default: Duration| {
        number(
            &get,
            name,
            range,
            "milliseconds",
            default.as_millis() as u64,
        )
        .map(Duration::from_millis)
    };
    let bounds = CallBounds {
        connect: ms("BILLING_AWS_CONNECT_TIMEOUT_MS", 100..=10_000, d.connect)?,
        attempt: ms("BILLING_AWS_ATTEMPT_TIMEOUT_MS", 100..=25_000, d.attempt)?,
        operation: ms("BILLING_AWS_TIMEOUT_MS", 100..=25_000, d.operation)?,
        max_attempts: number(
            &get,
            "BILLING_AWS_MAX_ATTEMPTS",
            1..=10,
            "attempts",
            u64::from(d.max_attempts),
        )? as u32,
    };
    let delivery = ms(
        "BILLING_DELIVERY_TIMEOUT_MS",
        1_000..=28_000,
        DEFAULT_DELIVERY_TIMEOUT,
    )?;
    within(
        "BILLING_AWS_CONNECT_TIMEOUT_MS",
        bounds.connect,
        "BILLING_AWS_ATTEMPT_TIMEOUT_MS",
        bounds.attempt,
    )?;
    within(
        "BILLING_AWS_ATTEMPT_TIMEOUT_MS",
        bounds.attempt,
        "BILLING_AWS_TIMEOUT_MS",
        bounds.operation,
    )?;
    within(
        "BILLING_AWS_TIMEOUT_MS",
        bounds.operation,
        "BILLING_DELIVERY_TIMEOUT_MS",
        delivery,
    )?;
    Ok((bounds, delivery))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::lookup;

    #[test]
    fn call_bounds_default_and_read_in_milliseconds() {
        let (bounds, delivery) = read_bounds(&lookup(&[])).expect("valid");
        assert_eq!(bounds, CallBounds::default());
        assert_eq!(delivery, DEFAULT_DELIVERY_TIMEOUT);
        let set = [
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "200"),
            ("BILLING_AWS_ATTEMPT_TIMEOUT_MS", "400"),
            ("BILLING_AWS_TIMEOUT_MS", "900"),
            ("BILLING_AWS_MAX_ATTEMPTS", "2"),
            ("BILLING_DELIVERY_TIMEOUT_MS", "5000"),
        ];
        let (bounds, delivery) = read_bounds(&lookup(&set)).expect("valid");
        assert_eq!(
            bounds,
            CallBounds {
                connect: Duration::from_millis(200),
                attempt: Duration::from_millis(400),
                operation: Duration::from_millis(900),
                max_attempts: 2,
            }
        );
        assert_eq!(delivery, Duration::from_millis(5000));
    }

    #[test]
    fn call_bounds_out_of_range_or_out_of_order_name_the_variable() {
        let err = |pairs: &[(&str, &str)]| {
            read_bounds(&lookup(pairs))
                .expect_err("must fail")
                .to_string()
        };
        for (name, bad) in [
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "0"),
            ("BILLING_AWS_CONNECT_TIMEOUT_MS", "1s"),
            ("BILLING_AWS_ATTEMPT_TIMEOUT_MS", "-5"),
            ("BILLING_AWS_TIMEOUT_MS", "30000"),
            ("BILLING_AWS_MAX_ATTEMPTS", "0"),
            ("BILLING_AWS_MAX_ATTEMPTS", "11"),
            ("BILLING_DELIVERY_TIMEOUT_MS", "29000"),
        ] {
            let msg = err(&[(name, bad)]);
            assert!(msg.starts_with(name), "{name}={bad}: {msg}");
            assert!(msg.contains("expected whole"), "{name}={bad}: {msg}");
        }
        // Each bound must fit inside the next: connect ≤ attempt ≤ operation ≤ delivery.
        let msg = err(&[("BILLING_AWS_CONNECT_TIMEOUT_MS", "3000")]);
        assert!(
            msg.starts_with("BILLING_AWS_CONNECT_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_AWS_ATTEMPT_TIMEOUT_MS"),
            "{msg}"
        );
        let msg = err(&[("BILLING_AWS_TIMEOUT_MS", "1000")]);
        assert!(
            msg.starts_with("BILLING_AWS_ATTEMPT_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_AWS_TIMEOUT_MS"),
            "{msg}"
        );
        let msg = err(&[("BILLING_DELIVERY_TIMEOUT_MS", "3000")]);
        assert!(
            msg.starts_with("BILLING_AWS_TIMEOUT_MS")
                && msg.contains("exceeds BILLING_DELIVERY_TIMEOUT_MS"),
            "{msg}"
        );
    }
}
