//! A webhook signing secret: provider-neutral (the ports and the secret sources carry it), and
//! never printed.

/// An endpoint signing secret (Stripe's `whsec_…`). Debug never shows it; there is no Display.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps a signing secret exactly as the provider shows it (Stripe: keep `whsec_`).
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself. Only for keying the HMAC and for handing to tools
    /// that need it; never log the result.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}
