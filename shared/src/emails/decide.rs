//! Whether an email goes out, decided when the job runs (not when
//! the event arrived) from the model as it is then. Pure: the caller reads the invoice, the
//! subscription's status and the customer's address; a skip comes back with a typed reason
//! for the sent-email record and the metrics.
//!
//! | the invoice, when the job runs                                  | decision                      |
//! |-----------------------------------------------------------------|-------------------------------|
//! | deleted, paid, voided or uncollectible                          | skip (`invoice_<status>`)     |
//! | first of a subscription (`subscription_create`) whose status is `incomplete` or not yet known | skip (`opens_subscription`) |
//! | no address on the invoice nor the customer, or not an address   | skip (`no_recipient`)         |
//! | no number, amount, currency or https hosted page                | skip (`missing_<field>`)      |
//! | otherwise                                                       | send                          |
//!
//! The payment-failed email follows the same table, and goes only for an attempt that needs no
//! authentication: Stripe sends `invoice.payment_failed` and `invoice.payment_action_required`
//! for one off-session attempt that needs it, in either order, and that attempt's email is the
//! action-required one (`action_required_instead`, whether that kind is on or not). Until
//! [`SCA_SETTLE_SECS`] after the invoice's newest event, a failed attempt whose
//! action-required event has not arrived may still get one, so the decision waits.
//!
//! The cancellation email goes out only for a subscription that has ended when the job runs
//! (`subscription_not_ended` otherwise), the welcome only while its subscription or purchase
//! grants access (`nothing_granted`); both go to the customer record's address (`no_recipient`
//! without one). A subscription still `incomplete` (basil creates Checkout's subscriptions so,
//! then updates them to `active` or `trialing` once the first payment succeeds) may still
//! grant: its welcome waits, until [`INCOMPLETE_HORIZON_SECS`] after the newest word about it
//! (Stripe expires an incomplete subscription 23 hours after its creation), then is skipped
//! `incomplete_expired`.
//!
//! A decision that waits is [`SkipReason::Unsettled`]: never recorded, the job comes back.
//!
//! Uncollectible is a skip: the merchant (or the dunning settings) wrote the invoice off and
//! stopped asking; an email asking the customer to confirm a payment would contradict that.
//! Should it still be paid, `invoice.paid` says so and nothing is lost.
//!
//! The first invoice of a subscription is Checkout's: its page asks for the authentication
//! itself. Such a subscription stays `incomplete` until that invoice is paid, so a status not
//! yet known (the subscription's events not applied yet) is taken as `incomplete`; any other
//! known status (an `active` one whose invoice is still open, which Stripe does not produce
//! today) sends.

use super::context::{EmailContent, EmailContext, InvoiceDetails, MissingDetail};
use super::kinds::address_shape_ok;
use crate::domain::access::{SourceStatus, Standing, SubscriptionAccess};
use crate::domain::events::{EmailAddress, SubscriptionStatus};
use crate::domain::invoice::{Invoice, InvoiceStatus};
use std::fmt;

/// How long a failed attempt waits for its `invoice.payment_action_required` (Stripe sends
/// both at once; an hour covers Stripe's first redeliveries of a webhook we failed).
pub const SCA_SETTLE_SECS: i64 = 3600;

/// How long a welcome waits for a subscription still `incomplete`, after the newest word about
/// it: Stripe's 23 hours to `incomplete_expired`, plus an hour for a late webhook.
pub const INCOMPLETE_HORIZON_SECS: i64 = 24 * 3600;

/// How long after a subscription's last period ended a cancellation email still makes sense.
/// Older news is not sent: `billing import` and `reconcile` bring in subscriptions that ended
/// years ago, and a backfill events up to 30 days old; their customers must not hear of it now.
pub const CANCELLATION_NEWS_SECS: i64 = 7 * 24 * 3600;

/// Why an email was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The invoice no longer asks for a payment (its status: deleted, paid, voided,
    /// uncollectible).
    Settled(InvoiceStatus),
    /// The first invoice of a subscription still in Checkout.
    OpensSubscription,
    /// No address, or one that is not an address.
    NoRecipient,
    /// The email could not say what it must.
    Missing(MissingDetail),
    /// A cancellation email for a subscription that has not ended (it was restored, or its
    /// deletion is not the newest state).
    NotEnded,
    /// A welcome for a subscription or purchase that grants nothing now (unpaid, refunded,
    /// ended).
    NothingGranted,
    /// A payment-failed email for an attempt that needs authentication: its email is the
    /// action-required one.
    ActionRequiredInstead,
    /// A welcome for a subscription still `incomplete` past [`INCOMPLETE_HORIZON_SECS`].
    IncompleteExpired,
    /// A cancellation of a subscription whose last period ended more than
    /// [`CANCELLATION_NEWS_SECS`] ago (imported, reconciled or backfilled history).
    OldNews,
    /// A trial-ending email for a subscription no longer in its trial (paid early, cancelled,
    /// or the trial's end has passed).
    TrialOver,
    /// Not final: the decision may change before `until` (the job waits, nothing is recorded).
    Unsettled { why: &'static str, until: i64 },
}

impl SkipReason {
    /// The reason's name in records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Settled(InvoiceStatus::Deleted) => "invoice_deleted",
            SkipReason::Settled(InvoiceStatus::Paid) => "invoice_paid",
            SkipReason::Settled(InvoiceStatus::Voided) => "invoice_voided",
            SkipReason::Settled(InvoiceStatus::Uncollectible) => "invoice_uncollectible",
            // Not produced (pending and failed invoices are still owed); named for totality.
            SkipReason::Settled(InvoiceStatus::Pending | InvoiceStatus::Failed) => "invoice_owed",
            SkipReason::OpensSubscription => "opens_subscription",
            SkipReason::NoRecipient => "no_recipient",
            SkipReason::Missing(MissingDetail::Number) => "missing_number",
            SkipReason::Missing(MissingDetail::AmountDue) => "missing_amount_due",
            SkipReason::Missing(MissingDetail::Currency) => "missing_currency",
            SkipReason::Missing(MissingDetail::HostedInvoiceUrl) => "missing_hosted_invoice_url",
            SkipReason::NotEnded => "subscription_not_ended",
            SkipReason::NothingGranted => "nothing_granted",
            SkipReason::ActionRequiredInstead => "action_required_instead",
            SkipReason::IncompleteExpired => "incomplete_expired",
            SkipReason::OldNews => "old_news",
            SkipReason::TrialOver => "trial_over",
            SkipReason::Unsettled { why, .. } => why,
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decision reads besides the invoice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surroundings<'a> {
    /// The status of the invoice's subscription as the model holds it (`None`: no
    /// subscription, or none of its events applied yet).
    pub subscription_status: Option<&'a SubscriptionStatus>,
    /// The customer record's address: used when the invoice carries none.
    pub customer_email: Option<&'a EmailAddress>,
    /// When the job runs (the clock's seconds): what waits, waits until a time.
    pub now: i64,
}

/// The action-required email for `invoice`, or why not (the module's table, in its order).
pub fn payment_action_required(
    invoice: &Invoice,
    around: Surroundings<'_>,
) -> Result<EmailContext, SkipReason> {
    invoice_email(invoice, around, EmailContent::PaymentActionRequired)
}

/// The payment-failed email for `invoice`: the same table as the action-required email (a
/// settled invoice needs no new card; Checkout's own page reports the first invoice's
/// failure).
pub fn payment_failed(
    invoice: &Invoice,
    around: Surroundings<'_>,
) -> Result<EmailContext, SkipReason> {
    let ctx = invoice_email(invoice, around, EmailContent::PaymentFailed)?;
    // Per attempt: the newest attempt's events are gathered in `attempt`, in any order.
    if invoice.attempt.is_some_and(|a| a.action_required) {
        return Err(SkipReason::ActionRequiredInstead);
    }
    let settled = invoice.last_event + SCA_SETTLE_SECS;
    if around.now < settled {
        return Err(SkipReason::Unsettled {
            why: "awaiting_action_required",
            until: settled,
        });
    }
    Ok(ctx)
}

/// The recipient: the invoice's address, else the customer record's, each only if it has the
/// shape of an address.
fn recipient<'a>(
    invoice_email: Option<&'a EmailAddress>,
    record: Option<&'a EmailAddress>,
) -> Result<&'a EmailAddress, SkipReason> {
    let usable = |a: &&EmailAddress| address_shape_ok(a.as_str());
    invoice_email
        .filter(usable)
        .or(record.filter(usable))
        .ok_or(SkipReason::NoRecipient)
}

fn invoice_email(
    invoice: &Invoice,
    around: Surroundings<'_>,
    content: fn(InvoiceDetails) -> EmailContent,
) -> Result<EmailContext, SkipReason> {
    let status = invoice.status();
    if matches!(
        status,
        InvoiceStatus::Deleted
            | InvoiceStatus::Paid
            | InvoiceStatus::Voided
            | InvoiceStatus::Uncollectible
    ) {
        return Err(SkipReason::Settled(status));
    }
    use SubscriptionStatus as S;
    // Checkout's own page asks for the first payment while the subscription waits for it.
    // Every status is decided by name; an unknown one is treated as out of checkout (the email
    // is sent), as it was before the status was typed.
    let in_checkout = match around.subscription_status {
        None | Some(S::Incomplete) => true,
        Some(
            S::IncompleteExpired
            | S::Trialing
            | S::Active
            | S::PastDue
            | S::Canceled
            | S::Unpaid
            | S::Paused
            | S::Unknown(_),
        ) => false,
    };
    if invoice.opens_subscription() && in_checkout {
        return Err(SkipReason::OpensSubscription);
    }
    let recipient = recipient(invoice.customer_email(), around.customer_email)?;
    let details = InvoiceDetails::from_invoice(invoice).map_err(SkipReason::Missing)?;
    Ok(EmailContext {
        object_id: invoice.id.as_str().to_owned(),
        recipient: recipient.clone(),
        content: content(details),
    })
}

/// The cancellation email for a subscription as the access rule sees it now: only an ended
/// one (`customer.subscription.deleted` queued it; a cancellation at the period's end is not
/// an end yet), to the customer record's address.
pub fn subscription_cancelled(
    access: &SubscriptionAccess,
    customer_email: Option<&EmailAddress>,
    now: i64,
) -> Result<EmailContext, SkipReason> {
    if access.standing != Standing::Ended {
        return Err(SkipReason::NotEnded);
    }
    if access
        .current_period_end
        .is_some_and(|end| now - end > CANCELLATION_NEWS_SECS)
    {
        return Err(SkipReason::OldNews);
    }
    let content = EmailContent::cancellation(access, None).ok_or(SkipReason::NotEnded)?;
    Ok(EmailContext {
        object_id: access.subscription.as_str().to_owned(),
        recipient: recipient(None, customer_email)?.clone(),
        content,
    })
}

/// The trial-ending email for a subscription as the access rule sees it now: only while it is
/// still trialing and its trial has not ended, to the customer record's address.
pub fn trial_ending(
    access: &SubscriptionAccess,
    customer_email: Option<&EmailAddress>,
    now: i64,
) -> Result<EmailContext, SkipReason> {
    use SubscriptionStatus as S;
    let in_trial = match &access.status {
        SourceStatus::Subscription(S::Trialing) => true,
        SourceStatus::Subscription(
            S::Incomplete
            | S::IncompleteExpired
            | S::Active
            | S::PastDue
            | S::Canceled
            | S::Unpaid
            | S::Paused
            // Not known to be in a trial: no trial email.
            | S::Unknown(_),
        )
        | SourceStatus::Granted
        | SourceStatus::Gift => false,
    };
    let Some(trial_end) = access.trial_end.filter(|end| in_trial && *end > now) else {
        return Err(SkipReason::TrialOver);
    };
    Ok(EmailContext {
        object_id: access.subscription.as_str().to_owned(),
        recipient: recipient(None, customer_email)?.clone(),
        content: EmailContent::TrialEnding {
            trial_end,
            ends_with_trial: access.cancel_at_period_end,
            product_name: None,
        },
    })
}

/// The welcome for what a checkout bought (`object`: its subscription or its session), if it
/// grants access now, to the customer record's address.
pub fn welcome(
    object: &str,
    grants: bool,
    customer_email: Option<&EmailAddress>,
) -> Result<EmailContext, SkipReason> {
    if !grants {
        return Err(SkipReason::NothingGranted);
    }
    Ok(EmailContext {
        object_id: object.to_owned(),
        recipient: recipient(None, customer_email)?.clone(),
        content: EmailContent::Welcome { product_name: None },
    })
}

/// The welcome for a subscription as the access rule sees it now: a subscription still
/// `incomplete` waits (its first payment may still succeed) until the horizon, then is
/// skipped `incomplete_expired`; otherwise [`welcome`].
pub fn subscription_welcome(
    access: &SubscriptionAccess,
    customer_email: Option<&EmailAddress>,
    now: i64,
) -> Result<EmailContext, SkipReason> {
    use SubscriptionStatus as S;
    let incomplete = match &access.status {
        SourceStatus::Subscription(S::Incomplete) => true,
        SourceStatus::Subscription(
            S::IncompleteExpired
            | S::Trialing
            | S::Active
            | S::PastDue
            | S::Canceled
            | S::Unpaid
            | S::Paused
            // Grants nothing (the access rule): skipped below as nothing granted.
            | S::Unknown(_),
        )
        | SourceStatus::Granted
        | SourceStatus::Gift => false,
    };
    if !access.grants && incomplete {
        let until = access.as_of + INCOMPLETE_HORIZON_SECS;
        return Err(if now < until {
            SkipReason::Unsettled {
                why: "subscription_incomplete",
                until,
            }
        } else {
            SkipReason::IncompleteExpired
        });
    }
    welcome(access.subscription.as_str(), access.grants, customer_email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{EventMeta, InvoiceEvent, InvoiceEventKind, InvoiceSnapshot};
    use crate::domain::ids::{CustomerId, EventId, InvoiceId, Provider};

    fn snapshot(status: &str, reason: &str, email: Option<&str>) -> InvoiceSnapshot {
        InvoiceSnapshot {
            id: InvoiceId::new("in_1"),
            customer: CustomerId::new("cus_1"),
            subscription: None,
            status: Some(status.into()),
            number: Some("N-1".into()),
            currency: Some("eur".into()),
            amount_due: Some(2900),
            amount_paid: Some(0),
            amount_remaining: Some(2900),
            total: Some(2900),
            hosted_invoice_url: Some("https://invoice.stripe.com/i/1".into()),
            invoice_pdf: None,
            due_date: None,
            next_payment_attempt: Some(1_762_261_200),
            attempt_count: Some(1),
            customer_email: email.map(EmailAddress::new),
            billing_reason: Some(reason.into()),
            created: Some(5),
            period_start: None,
            period_end: None,
            lines: Vec::new(),
            more_lines: false,
            user_hint: None,
        }
    }

    /// An invoice after `invoice.payment_action_required`, then `then` (if any).
    fn invoice_with(s: InvoiceSnapshot, then: Option<(InvoiceEventKind, &str)>) -> Invoice {
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        let mut steps = vec![(InvoiceEventKind::ActionRequired, s.clone())];
        if let Some((kind, status)) = then {
            steps.push((
                kind,
                InvoiceSnapshot {
                    status: Some(status.into()),
                    ..s
                },
            ));
        }
        for (i, (kind, snapshot)) in steps.into_iter().enumerate() {
            let meta = EventMeta {
                provider: Provider::STRIPE,
                id: EventId::new(format!("evt_{i}")),
                event_type: "invoice.x".into(),
                created: 10 + i as i64,
                millis: 0,
                livemode: false,
                api_version: None,
            };
            invoice.apply(
                &meta,
                &InvoiceEvent {
                    kind,
                    snapshot,
                    evidence: Default::default(),
                },
            );
        }
        invoice
    }

    fn cycle(email: Option<&str>) -> InvoiceSnapshot {
        snapshot("open", "subscription_cycle", email)
    }

    const NOTHING: Surroundings<'static> = Surroundings {
        subscription_status: None,
        customer_email: None,
        now: 0,
    };

    #[test]
    fn an_owed_renewal_with_an_address_is_sent_with_its_details() {
        let ctx =
            payment_action_required(&invoice_with(cycle(Some("a@example.com")), None), NOTHING)
                .expect("send");
        assert_eq!(
            ctx.kind(),
            crate::emails::kinds::EmailKind::PaymentActionRequired
        );
        assert_eq!(ctx.object_id, "in_1");
        assert_eq!(ctx.recipient.as_str(), "a@example.com");
        let EmailContent::PaymentActionRequired(d) = &ctx.content else {
            panic!("{:?}", ctx.content)
        };
        assert_eq!(d.amount_due.to_string(), "29.00 EUR");
        assert_eq!(d.number, "N-1");
    }

    #[test]
    fn a_settled_invoice_is_skipped_with_its_status() {
        use InvoiceEventKind::*;
        for (kind, status, want) in [
            (Paid, "paid", "invoice_paid"),
            (Voided, "void", "invoice_voided"),
            (
                MarkedUncollectible,
                "uncollectible",
                "invoice_uncollectible",
            ),
            (Deleted, "draft", "invoice_deleted"),
        ] {
            let invoice = invoice_with(cycle(Some("a@example.com")), Some((kind, status)));
            let skip = payment_action_required(&invoice, NOTHING).expect_err(status);
            assert_eq!(skip.as_str(), want);
        }
        // A newer failed attempt leaves the invoice owed: still sent.
        let invoice = invoice_with(cycle(Some("a@example.com")), Some((Failed, "open")));
        assert!(payment_action_required(&invoice, NOTHING).is_ok());
    }

    #[test]
    fn the_first_invoice_of_a_subscription_in_checkout_is_skipped() {
        let first = invoice_with(
            snapshot("open", "subscription_create", Some("a@example.com")),
            None,
        );
        for status in [None, Some(&SubscriptionStatus::Incomplete)] {
            let around = Surroundings {
                subscription_status: status,
                customer_email: None,
                now: 0,
            };
            assert_eq!(
                payment_action_required(&first, around).map(|_| ()),
                Err(SkipReason::OpensSubscription),
                "{status:?}"
            );
        }
        let active = Surroundings {
            subscription_status: Some(&SubscriptionStatus::Active),
            customer_email: None,
            now: 0,
        };
        assert!(payment_action_required(&first, active).is_ok());
        // A renewal is sent whatever the subscription's status.
        let renewal = invoice_with(cycle(Some("a@example.com")), None);
        let incomplete = Surroundings {
            subscription_status: Some(&SubscriptionStatus::Incomplete),
            customer_email: None,
            now: 0,
        };
        assert!(payment_action_required(&renewal, incomplete).is_ok());
    }

    #[test]
    fn the_recipient_is_the_invoice_address_else_the_customer_record() {
        let record = EmailAddress::new("record@example.com");
        let around = Surroundings {
            subscription_status: None,
            customer_email: Some(&record),
            now: 0,
        };
        let to = |email: Option<&str>, around| {
            payment_action_required(&invoice_with(cycle(email), None), around)
                .map(|c| c.recipient.as_str().to_owned())
        };
        assert_eq!(
            to(Some("inv@example.com"), around),
            Ok("inv@example.com".into())
        );
        assert_eq!(to(None, around), Ok("record@example.com".into()));
        // An invoice address that is no address falls back to the record.
        assert_eq!(
            to(Some("not-an-address"), around),
            Ok("record@example.com".into())
        );
        assert_eq!(to(None, NOTHING), Err(SkipReason::NoRecipient));
        assert_eq!(to(Some("x@y"), NOTHING), Err(SkipReason::NoRecipient));
        assert_eq!(SkipReason::NoRecipient.to_string(), "no_recipient");
    }

    #[test]
    fn an_invoice_without_what_the_email_shows_is_skipped_naming_it() {
        type Change = fn(&mut InvoiceSnapshot);
        let cases: [(Change, &str); 4] = [
            (|s| s.number = None, "missing_number"),
            (|s| s.amount_due = None, "missing_amount_due"),
            (|s| s.currency = Some("euro".into()), "missing_currency"),
            (
                |s| s.hosted_invoice_url = Some("javascript:alert(1)".into()),
                "missing_hosted_invoice_url",
            ),
        ];
        for (change, want) in cases {
            let mut s = cycle(Some("a@example.com"));
            change(&mut s);
            let skip = payment_action_required(&invoice_with(s, None), NOTHING).expect_err(want);
            assert_eq!(skip.as_str(), want);
        }
    }

    fn access(standing: crate::domain::access::Standing, grants: bool) -> SubscriptionAccess {
        use crate::domain::access::BillingStatus;
        use crate::domain::ids::SubscriptionId;
        SubscriptionAccess {
            provider: Provider::STRIPE,
            customer: CustomerId::new("cus_1"),
            subscription: SubscriptionId::new("sub_1"),
            grants,
            tier: None,
            status: "canceled".into(),
            standing,
            billing_status: BillingStatus::Done,
            current_period_end: Some(1_764_590_400),
            cancel_at_period_end: false,
            trial_end: None,
            cancellation_reason: Some("payment_failed".into()),
            payment: None,
            invoice: None,
            as_of: 1,
            invalid: None,
            ends_at: None,
        }
    }

    /// An invoice after one `invoice.payment_failed` (created 10), then `then` (if any).
    fn failed_invoice(then: Option<InvoiceEventKind>) -> Invoice {
        let mut invoice = Invoice::new(Provider::STRIPE, InvoiceId::new("in_1"));
        let kinds = std::iter::once(InvoiceEventKind::Failed).chain(then);
        for (i, kind) in kinds.enumerate() {
            let meta = EventMeta {
                provider: Provider::STRIPE,
                id: EventId::new(format!("evt_f{i}")),
                event_type: "invoice.x".into(),
                created: 10 + i as i64,
                millis: 0,
                livemode: false,
                api_version: None,
            };
            let snapshot = cycle(Some("a@example.com"));
            let (kind, snapshot) = match kind {
                InvoiceEventKind::Paid => (
                    kind,
                    InvoiceSnapshot {
                        status: Some("paid".into()),
                        ..snapshot
                    },
                ),
                _ => (kind, snapshot),
            };
            let event = InvoiceEvent {
                kind,
                snapshot,
                evidence: Default::default(),
            };
            invoice.apply(&meta, &event);
        }
        invoice
    }

    fn at(now: i64) -> Surroundings<'static> {
        Surroundings { now, ..NOTHING }
    }

    #[test]
    fn a_failed_payment_follows_the_action_required_table_with_its_own_content() {
        let settled = at(10 + SCA_SETTLE_SECS);
        let ctx = payment_failed(&failed_invoice(None), settled).expect("send");
        assert!(matches!(ctx.content, EmailContent::PaymentFailed(_)));
        let paid = failed_invoice(Some(InvoiceEventKind::Paid));
        assert_eq!(
            payment_failed(&paid, settled).map(|_| ()),
            Err(SkipReason::Settled(InvoiceStatus::Paid))
        );
    }

    #[test]
    fn a_failed_attempt_that_needs_authentication_gets_no_payment_failed_email() {
        // The action-required event first, or after: either way, per attempt.
        let asked_first = invoice_with(
            cycle(Some("a@example.com")),
            Some((InvoiceEventKind::Failed, "open")),
        );
        let asked_after = failed_invoice(Some(InvoiceEventKind::ActionRequired));
        for invoice in [&asked_first, &asked_after] {
            for now in [0, 10 + SCA_SETTLE_SECS] {
                assert_eq!(
                    payment_failed(invoice, at(now)).map(|_| ()),
                    Err(SkipReason::ActionRequiredInstead)
                );
                assert!(payment_action_required(invoice, at(now)).is_ok());
            }
        }
        // Only the failure so far: the decision waits until the settle time, then sends.
        let alone = failed_invoice(None);
        let until = 10 + SCA_SETTLE_SECS;
        assert_eq!(
            payment_failed(&alone, at(until - 1)).map(|_| ()),
            Err(SkipReason::Unsettled {
                why: "awaiting_action_required",
                until
            })
        );
        assert!(payment_failed(&alone, at(until)).is_ok());
        assert_eq!(
            SkipReason::ActionRequiredInstead.as_str(),
            "action_required_instead"
        );
    }

    #[test]
    fn a_welcome_for_an_incomplete_subscription_waits_until_the_horizon() {
        use crate::domain::access::Standing;
        let record = EmailAddress::new("r@example.com");
        let mut incomplete = access(Standing::Overdue, false);
        incomplete.status = "incomplete".into();
        let until = incomplete.as_of + INCOMPLETE_HORIZON_SECS;
        assert_eq!(
            subscription_welcome(&incomplete, Some(&record), until - 1).map(|_| ()),
            Err(SkipReason::Unsettled {
                why: "subscription_incomplete",
                until
            })
        );
        assert_eq!(
            subscription_welcome(&incomplete, Some(&record), until).map(|_| ()),
            Err(SkipReason::IncompleteExpired)
        );
        let mut active = access(Standing::Good, true);
        active.status = "active".into();
        assert!(subscription_welcome(&active, Some(&record), 0).is_ok());
        let ended = access(Standing::Ended, false);
        assert_eq!(
            subscription_welcome(&ended, Some(&record), 0).map(|_| ()),
            Err(SkipReason::NothingGranted)
        );
    }

    #[test]
    fn a_cancellation_goes_out_only_for_an_ended_subscription_with_an_address() {
        use crate::domain::access::Standing;
        let record = EmailAddress::new("r@example.com");
        let ended = subscription_cancelled(&access(Standing::Ended, false), Some(&record), 0)
            .expect("send");
        assert_eq!(ended.recipient.as_str(), "r@example.com");
        assert_eq!(ended.object_id, "sub_1");
        assert!(matches!(
            ended.content,
            EmailContent::SubscriptionCancelled {
                reason: crate::emails::context::CancellationReason::PaymentFailed,
                ..
            }
        ));
        for standing in [Standing::Good, Standing::Cancelling, Standing::Overdue] {
            let skip = subscription_cancelled(&access(standing, true), Some(&record), 0);
            assert_eq!(skip.map(|_| ()), Err(SkipReason::NotEnded), "{standing:?}");
        }
        let nobody = subscription_cancelled(&access(Standing::Ended, false), None, 0);
        assert_eq!(nobody.map(|_| ()), Err(SkipReason::NoRecipient));
        assert_eq!(SkipReason::NotEnded.as_str(), "subscription_not_ended");
    }

    #[test]
    fn a_subscription_that_ended_long_ago_gets_no_cancellation_email() {
        use crate::domain::access::Standing;
        let record = EmailAddress::new("r@example.com");
        // Imported in 2026, ended in 2024: its customer must not hear of it now.
        let mut old = access(Standing::Ended, false);
        old.current_period_end = Some(1_700_000_000);
        let now = 1_700_000_000 + CANCELLATION_NEWS_SECS;
        assert!(subscription_cancelled(&old, Some(&record), now).is_ok());
        assert_eq!(
            subscription_cancelled(&old, Some(&record), now + 1).map(|_| ()),
            Err(SkipReason::OldNews)
        );
        // Cancelled at once mid-period: the period's end is still ahead, the news is fresh.
        old.current_period_end = Some(now + 86_400);
        assert!(subscription_cancelled(&old, Some(&record), now).is_ok());
        assert_eq!(SkipReason::OldNews.as_str(), "old_news");
    }

    #[test]
    fn a_welcome_goes_out_only_while_something_grants() {
        let record = EmailAddress::new("r@example.com");
        let sent = welcome("sub_1", true, Some(&record)).expect("send");
        assert_eq!(sent.content, EmailContent::Welcome { product_name: None });
        assert_eq!(
            welcome("sub_1", false, Some(&record)).map(|_| ()),
            Err(SkipReason::NothingGranted)
        );
        let bad = EmailAddress::new("nope");
        assert_eq!(
            welcome("cs_1", true, Some(&bad)).map(|_| ()),
            Err(SkipReason::NoRecipient)
        );
        assert_eq!(SkipReason::NothingGranted.as_str(), "nothing_granted");
    }
}
