//! PayPal as a [`WebhookProvider`]: the check is [`PaypalVerifier`] (offline or API, as
//! configured); the envelope and the mapping are `translate`. Every PayPal type arrives at one
//! endpoint, so every event's home is [`Family::Paypal`].

use super::translate::{translate, Envelope};
use super::PaypalVerifier;
use crate::domain::events::EventMeta;
use crate::domain::ids::{EventId, Provider};
use crate::error::Error;
use crate::pipeline::{ReadError, ReadEvent, Verified, WebhookProvider};
use crate::routing::Family;
use async_trait::async_trait;

pub struct PaypalProvider {
    verifier: PaypalVerifier,
}

impl PaypalProvider {
    pub fn new(verifier: PaypalVerifier) -> Self {
        Self { verifier }
    }

    /// The verifier (tests and the local run pre-seed its certificate cache).
    pub fn verifier(&self) -> &PaypalVerifier {
        &self.verifier
    }
}

#[async_trait]
impl WebhookProvider for PaypalProvider {
    fn id(&self) -> Provider {
        Provider::Paypal
    }

    async fn verify(
        &self,
        _family: Family,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, Error> {
        self.verifier.verify(headers, body).await
    }

    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError> {
        let envelope = Envelope::parse(body).map_err(|e| ReadError::Unreadable(e.to_string()))?;
        let meta = EventMeta {
            provider: Provider::Paypal,
            id: EventId::new(envelope.id.clone()),
            event_type: envelope.event_type.clone(),
            created: envelope.created,
            millis: envelope.millis,
            livemode: envelope.livemode,
            api_version: None,
        };
        Ok(ReadEvent {
            meta,
            home: Family::Paypal,
            event: translate(&envelope).map_err(|e| e.to_string()),
        })
    }
}
