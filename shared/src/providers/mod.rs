//! Providers: verify and translate each provider's wire format into `domain::events`.

pub mod evidence;
pub mod operator;
pub mod paypal;
pub mod stripe;
