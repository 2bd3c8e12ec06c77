//! PayPal as a [`WebhookProvider`]: the check is [`PaypalVerifier`] (offline or API, as
//! configured); the envelope and the mapping are `translate`. Every PayPal type arrives at one
//! endpoint ([`ENDPOINT`], `POST /webhooks/paypal`), so every event's home is that one.

use super::translate::{translate, Envelope};
use super::PaypalVerifier;
use crate::domain::events::EventMeta;
use crate::domain::ids::{EventId, Provider};
use crate::error::{Error, Refusal, Rejection};
use crate::providers::seam::{ReadError, ReadEvent, Verified, WebhookProvider};
use crate::routing::{Endpoint, Route};
use async_trait::async_trait;

/// PayPal's one endpoint: every PayPal type arrives there.
pub const ENDPOINT: Endpoint = Endpoint::new(Provider::PAYPAL, "paypal");
/// Its route (in the PayPal dashboard's webhook URL: never change it).
pub const ROUTE: &str = "/webhooks/paypal";

pub struct PaypalProvider {
    /// `None`: PayPal is not configured here; stored events can still be read (a replay).
    verifier: Option<PaypalVerifier>,
}

impl PaypalProvider {
    pub fn new(verifier: PaypalVerifier) -> Self {
        Self {
            verifier: Some(verifier),
        }
    }

    /// Reads recorded PayPal events (`billing replay`) where PayPal is not configured; every
    /// delivery is refused (400), nothing stored.
    pub fn read_only() -> Self {
        Self { verifier: None }
    }

    /// The verifier, if configured (tests and the local run pre-seed its certificate cache).
    pub fn verifier(&self) -> Option<&PaypalVerifier> {
        self.verifier.as_ref()
    }
}

#[async_trait]
impl WebhookProvider for PaypalProvider {
    fn id(&self) -> Provider {
        Provider::PAYPAL
    }

    fn routes(&self) -> Vec<Route> {
        vec![Route {
            endpoint: ENDPOINT,
            path: ROUTE.into(),
        }]
    }

    /// PayPal's event ids are `WH-…`.
    fn owns_event_id(&self, id: &str) -> bool {
        id.starts_with("WH-")
    }

    async fn verify(
        &self,
        _endpoint: Endpoint,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, Error> {
        match &self.verifier {
            Some(verifier) => verifier.verify(headers, body).await,
            None => Err(Rejection::Unauthentic(Refusal::from(
                "PayPal is not configured here (PAYPAL_WEBHOOK_ID)",
            ))
            .into()),
        }
    }

    fn read(&self, body: &[u8]) -> Result<ReadEvent, ReadError> {
        let envelope = Envelope::parse(body).map_err(|e| ReadError::Unreadable(e.to_string()))?;
        let meta = EventMeta {
            provider: Provider::PAYPAL,
            id: EventId::new(envelope.id.clone()),
            event_type: envelope.event_type.clone(),
            created: envelope.created,
            millis: envelope.millis,
            livemode: envelope.livemode,
            api_version: None,
        };
        Ok(ReadEvent {
            meta,
            home: ENDPOINT.name,
            event: translate(&envelope).map_err(|e| e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_only_provider_reads_but_refuses_every_delivery() {
        let provider = PaypalProvider::read_only();
        let body = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.PENDING","create_time":"2020-01-01T00:00:00.042Z","resource":{}}"#;
        let read = provider.read(body).expect("readable");
        assert_eq!((read.meta.id.as_str(), read.meta.millis), ("WH-1", 42));
        assert_eq!(read.home, ENDPOINT.name);
        let refused = provider
            .verify(ENDPOINT, &http::HeaderMap::new(), body)
            .await;
        assert!(matches!(refused, Err(Error::Rejected(_))));
    }
}
