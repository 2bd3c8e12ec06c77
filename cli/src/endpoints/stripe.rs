//! Stripe's webhook endpoint API through async-stripe (`stripe_misc::webhook_endpoint`): list
//! (every page), create, update, delete; answers turned into [`Remote`], failures into one
//! line that names Stripe's error type, code and parameter, never the key.

use super::plan::{Desired, Remote};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use stripe::{Client, ClientBuilder, RequestStrategy, StripeError, StripeRequest};
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    ListWebhookEndpoint, UpdateWebhookEndpoint, UpdateWebhookEndpointEnabledEvents,
};
use stripe_misc::WebhookEndpoint;
use stripe_shared::ApiVersion;

/// One attempt's bound: a list page or a write answers in well under a second.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The most endpoints Stripe lists per page.
const PAGE: i64 = 100;

/// The client for `base` (ending in `/`). Writes are sent once: a write whose answer was lost
/// is found on the next run by its metadata, so no automatic retry can make a second endpoint.
pub fn client(key: &str, base: &str) -> Result<Client, String> {
    // hyper-rustls builds its TLS configuration from the process default: aws-lc-rs, the
    // provider the AWS SDK uses (an error only means it is installed already).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    ClientBuilder::new(key)
        .url(base)
        .timeout(ATTEMPT_TIMEOUT)
        .request_strategy(RequestStrategy::Once)
        .app_info("billing-webhooks", None, None)
        .build()
        .map_err(|e| describe(&e))
}

/// The pinned version as async-stripe's enum. A version the crate does not know becomes its
/// `Unknown` case, which is sent as given (a test checks ours is a known one).
pub fn api_version(version: &str) -> ApiVersion {
    ApiVersion::from_str(version).unwrap_or_else(|never| match never {})
}

/// Every webhook endpoint of the account, following `has_more`.
pub async fn list_all(client: &Client) -> Result<Vec<Remote>, String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = ListWebhookEndpoint::new().limit(PAGE);
        if let Some(last) = &after {
            request = request.starting_after(last.clone());
        }
        // Reads may be retried: they change nothing.
        let page = request
            .customize()
            .request_strategy(RequestStrategy::ExponentialBackoff(3))
            .send(client)
            .await
            .map_err(|e| format!("listing webhook endpoints: {}", describe(&e)))?;
        after = page.data.last().map(|e| e.id.to_string());
        all.extend(page.data.into_iter().map(remote));
        if !page.has_more || after.is_none() {
            return Ok(all);
        }
    }
}

/// Creates `desired`'s endpoint with `metadata`; returns it and its signing secret.
pub async fn create(
    client: &Client,
    desired: &Desired,
    metadata: HashMap<String, String>,
) -> Result<(Remote, String), String> {
    let events: Vec<CreateWebhookEndpointEnabledEvents> = desired
        .enabled_events
        .iter()
        .map(|e| CreateWebhookEndpointEnabledEvents::from_str(e).unwrap_or_else(|n| match n {}))
        .collect();
    let created = CreateWebhookEndpoint::new(events, desired.url.clone())
        .api_version(api_version(desired.api_version))
        .description(desired.description())
        .metadata(metadata)
        .connect(desired.connect)
        .send(client)
        .await
        .map_err(|e| format!("creating the {} endpoint: {}", desired.family, describe(&e)))?;
    let id = created.id.to_string();
    let secret = created
        .secret
        .clone()
        .filter(|s| s.starts_with("whsec_"))
        .ok_or_else(|| format!("Stripe created {id} but returned no whsec_ signing secret"))?;
    Ok((remote(created), secret))
}

/// Sets everything Stripe lets us update to what `desired` wants, and `metadata`.
pub async fn update(
    client: &Client,
    id: &str,
    desired: &Desired,
    metadata: HashMap<String, String>,
) -> Result<(), String> {
    let events: Vec<UpdateWebhookEndpointEnabledEvents> = desired
        .enabled_events
        .iter()
        .map(|e| UpdateWebhookEndpointEnabledEvents::from_str(e).unwrap_or_else(|n| match n {}))
        .collect();
    UpdateWebhookEndpoint::new(id)
        .enabled_events(events)
        .description(desired.description())
        .disabled(false)
        .metadata(metadata)
        .send(client)
        .await
        .map(drop)
        .map_err(|e| format!("updating {id}: {}", describe(&e)))
}

/// Changes only metadata (an empty value removes a key).
pub async fn set_metadata(
    client: &Client,
    id: &str,
    metadata: HashMap<String, String>,
) -> Result<(), String> {
    UpdateWebhookEndpoint::new(id)
        .metadata(metadata)
        .send(client)
        .await
        .map(drop)
        .map_err(|e| format!("updating {id}'s metadata: {}", describe(&e)))
}

pub async fn delete(client: &Client, id: &str) -> Result<(), String> {
    DeleteWebhookEndpoint::new(id)
        .send(client)
        .await
        .map(drop)
        .map_err(|e| format!("deleting {id}: {}", describe(&e)))
}

fn remote(e: WebhookEndpoint) -> Remote {
    Remote {
        id: e.id.to_string(),
        url: e.url,
        api_version: e.api_version,
        enabled_events: e.enabled_events,
        description: e.description,
        enabled: e.status == "enabled",
        metadata: e.metadata,
    }
}

/// One line for a failed call. A refused key gets no Stripe message: Stripe's echoes a
/// masked part of the key.
pub fn describe(e: &StripeError) -> String {
    match e {
        StripeError::Stripe(api, status) => {
            let kind = api.type_.as_str();
            if *status == 401 {
                return format!("Stripe answered 401 ({kind}): STRIPE_ADMIN_KEY was refused");
            }
            let mut text = format!("Stripe answered {status} ({kind}");
            if let Some(code) = &api.code {
                text.push_str(&format!(", {}", code.as_str()));
            }
            text.push(')');
            if let Some(param) = &api.param {
                text.push_str(&format!(" on `{param}`"));
            }
            if let Some(message) = &api.message {
                text.push_str(&format!(": {message}"));
            }
            text
        }
        StripeError::Timeout => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        StripeError::ClientError(why) => format!("no answer from Stripe: {why}"),
        StripeError::JSONDeserialize(why) => format!("an answer that could not be read: {why}"),
        StripeError::ConfigError(why) => format!("client configuration: {why}"),
    }
}
