//! Who a customer is: the user it belongs to (one register per way of learning it, the
//! strongest source present wins) and the customer record's address for the emails.

use crate::domain::events::{EmailAddress, EventMeta, LinkSource};
use crate::domain::ids::UserId;
use crate::domain::version::{offer, Offer, Register, Version};
use std::collections::BTreeMap;

/// One register per way of learning the user.
pub type Links = BTreeMap<LinkSource, Register<UserId>>;

/// The customer record's address register: the newest event that says anything about it wins
/// (`None` inside: a customer object without an address).
pub type AddressRegister = Option<Register<Option<EmailAddress>>>;

/// Offers `source`'s claim that the customer is `user`, versioned by its event.
pub fn claim(links: &mut Links, source: LinkSource, meta: &EventMeta, user: &UserId) -> Offer {
    let version = Version::of(meta, 0);
    let mut slot = links.remove(&source);
    let result = offer(&mut slot, &version, user.clone());
    if let Some(register) = slot {
        links.insert(source, register);
    }
    result
}

/// The user: the claim of the strongest source present.
pub fn user(links: &Links) -> Option<&UserId> {
    links.values().next_back().map(|r| &r.value)
}

/// Offers what one event says about the address, versioned like the user links.
pub fn offer_email(
    email: &mut AddressRegister,
    meta: &EventMeta,
    address: Option<EmailAddress>,
) -> Offer {
    offer(email, &Version::of(meta, 0), address)
}

/// The address, if the newest event about it gave one.
pub fn email(register: &AddressRegister) -> Option<&EmailAddress> {
    register.as_ref()?.value.as_ref()
}

#[cfg(test)]
mod tests {
    use crate::domain::customer::fixtures::meta;
    use crate::domain::customer::{CustomerBilling, Effect};
    use crate::domain::events::{BillingEvent, EmailAddress};
    use crate::domain::ids::{CustomerId, Provider};

    #[test]
    fn the_record_address_is_a_register_the_newest_customer_or_checkout_event_wins() {
        use crate::domain::events::AddressChange;
        let customer = |email: Option<AddressChange>| BillingEvent::CustomerUpdated {
            customer: CustomerId::new("cus"),
            user_claim: None,
            email,
            profile: None,
        };
        let set = |a: &str| Some(AddressChange::Set(EmailAddress::new(a)));
        let checkout = BillingEvent::CheckoutCompleted {
            customer: CustomerId::new("cus"),
            subscription: None,
            user: None,
            purchase: None,
            email: Some(EmailAddress::new("checkout@example.com")),
        };
        let events = [
            (meta("evt_1", 10), customer(set("old@example.com"))),
            (meta("evt_2", 20), checkout),
            (meta("evt_3", 30), customer(Some(AddressChange::Removed))),
            (meta("evt_4", 40), customer(set("new@example.com"))),
        ];
        // Every order of the first n events ends at the newest of them.
        let want = [
            Some("old@example.com"),
            Some("checkout@example.com"),
            None,
            Some("new@example.com"),
        ];
        for n in 1..=events.len() {
            for reversed in [false, true] {
                let mut state = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
                let mut order: Vec<_> = events[..n].iter().collect();
                if reversed {
                    order.reverse();
                }
                for (m, e) in order {
                    state.apply(m, e);
                }
                assert_eq!(state.email().map(EmailAddress::as_str), want[n - 1], "{n}");
            }
        }
        // An address alone applies; its redelivery is stale; no field at all is ignored.
        let mut state = CustomerBilling::new(Provider::STRIPE, CustomerId::new("cus"));
        let (m, e) = &events[0];
        assert_eq!(state.apply(m, e), Effect::Applied);
        assert_eq!(state.apply(m, e), Effect::Stale);
        assert_eq!(
            state.apply(&meta("evt_9", 50), &customer(None)),
            Effect::Ignored
        );
    }
}
