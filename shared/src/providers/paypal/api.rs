//! `PAYPAL_VERIFICATION=api`: PayPal's `POST /v1/notifications/verify-webhook-signature`
//! judges the delivery, with an OAuth client-credentials token (`POST /v1/oauth2/token`)
//! cached until shortly before it expires.
//!
//! The request's `webhook_event` is the received body itself, spliced in byte for byte: a
//! parsed and re-serialised event would differ (key order, number and escape forms) and its
//! CRC32, which PayPal checks, with it. `SUCCESS` accepts; any other status is a rejection;
//! a 5xx, a timeout or no answer is transient (503, PayPal delivers again).

pub use super::settings::{ClientSecret, DEFAULT_API_BASE};
use super::settings::{PaypalApiSettings, PaypalSecretSpec};
use super::transmission::Transmission;
use super::PaypalRejection;
use crate::bounds::CallBounds;
use crate::error::{Error, Refusal, Rejection};
use crate::ports::{ApiError, Clock};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use std::sync::Arc;

/// A token is renewed this long before PayPal says it expires, so none expires in flight.
const TOKEN_MARGIN_SECS: i64 = 60;

/// The largest answer read: both answers are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

struct Token {
    bearer: HeaderValue,
    renew_at: i64,
}

/// The verify-webhook-signature client. Built once at cold start.
pub struct PaypalApi {
    client: reqwest::Client,
    base: Url,
    client_id: String,
    secret: ClientSecret,
    bounds: CallBounds,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for PaypalApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaypalApi")
            .field("base", &self.base.as_str())
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

fn unavailable(why: impl std::fmt::Display) -> Error {
    Error::Api(ApiError(format!("PayPal verification API: {why}")))
}

fn rejected(r: PaypalRejection) -> Error {
    Error::Rejected(Rejection::Unauthentic(Refusal::new(r)))
}

/// The request body: our fields as JSON, then `"webhook_event":` and the raw body. The body
/// must be one JSON object (checked, not re-serialised).
pub fn request_body(
    t: &Transmission,
    webhook_id: &str,
    body: &[u8],
) -> Result<Vec<u8>, PaypalRejection> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if !is_object {
        return Err(PaypalRejection::BodyNotJsonObject);
    }
    let fields = serde_json::json!({
        "auth_algo": t.algo.as_str(),
        "cert_url": t.cert_url,
        "transmission_id": t.id,
        "transmission_sig": t.sig_base64,
        "transmission_time": t.time,
        "webhook_id": webhook_id,
    });
    let mut out = serde_json::to_vec(&fields).expect("a map of strings serialises");
    out.pop(); // its closing brace
    out.extend_from_slice(b",\"webhook_event\":");
    out.extend_from_slice(body);
    out.push(b'}');
    Ok(out)
}

impl PaypalApi {
    /// A client for `base` (https, or http on the loopback host for a test's fake).
    pub fn new(
        base: &str,
        client_id: String,
        secret: ClientSecret,
        bounds: CallBounds,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ApiError> {
        let base = crate::adapters::https::parse_base(base)
            .map_err(|why| ApiError(format!("PAYPAL_API_BASE: {why}")))?;
        let https = base.scheme() == "https";
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(crate::adapters::https::tls_config(https)?)
            .https_only(https)
            .connect_timeout(bounds.connect)
            .timeout(bounds.attempt)
            // A redirect would carry the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("billing-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError(format!("building the PayPal client: {e}")))?;
        Ok(Self {
            client,
            base,
            client_id,
            secret,
            bounds,
            clock,
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base.join(path).map_err(unavailable)
    }

    /// The API's base URL (its origin is the only one a bearer token is sent to).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// GETs `url` with the bearer token: the status and the JSON answer (of at most
    /// `max_bytes`). A 401 forgets the token, so the next call asks for a new one.
    pub(crate) async fn get_json(
        &self,
        url: Url,
        max_bytes: usize,
    ) -> Result<(StatusCode, serde_json::Value), Error> {
        let bearer = self.bearer().await?;
        let request = self.client.get(url).header(AUTHORIZATION, bearer).send();
        let mut response = tokio::time::timeout(self.bounds.operation, request)
            .await
            .map_err(|_| unavailable("timeout"))?
            .map_err(|_| unavailable("no answer"))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            *self.token.lock().await = None;
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| unavailable("body"))? {
            if answer.len() + chunk.len() > max_bytes {
                return Err(unavailable("answer too large"));
            }
            answer.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }

    /// A client for `settings`, its secret read from Secrets Manager when given by ARN.
    pub async fn from_settings(
        settings: &PaypalApiSettings,
        bounds: CallBounds,
        secrets_manager: Option<&aws_sdk_secretsmanager::Client>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        use crate::ports::SecretsError;
        let secret = match &settings.secret {
            PaypalSecretSpec::Inline(secret) => secret.clone(),
            PaypalSecretSpec::Arn(arn) => {
                let client = secrets_manager.ok_or_else(|| {
                    SecretsError("no Secrets Manager client for PAYPAL_CLIENT_SECRET_ARN".into())
                })?;
                let raw = crate::adapters::secrets_manager::read_secret_string(client, arn).await?;
                if raw.trim().is_empty() {
                    return Err(SecretsError(format!("secret {arn} is empty")).into());
                }
                ClientSecret::new(raw.trim())
            }
        };
        Ok(Self::new(
            &settings.base,
            settings.client_id.clone(),
            secret,
            bounds,
            clock,
        )?)
    }

    /// POSTs and reads the answer (status and at most `MAX_ANSWER_BYTES`); no answer within
    /// the attempt bound is transient.
    async fn post(
        &self,
        url: Url,
        auth: HeaderValue,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, serde_json::Value), Error> {
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send();
        let mut response = tokio::time::timeout(self.bounds.operation, request)
            .await
            .map_err(|_| unavailable("timeout"))?
            .map_err(|e| {
                unavailable(if e.is_timeout() {
                    "timeout"
                } else {
                    "no answer"
                })
            })?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| unavailable("body"))? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(unavailable("answer too large"));
            }
            answer.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    }

    /// A bearer token: the cached one until `TOKEN_MARGIN_SECS` before its expiry, else a
    /// new one from `/v1/oauth2/token`.
    async fn bearer(&self) -> Result<HeaderValue, Error> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now();
        if let Some(token) = cached.as_ref().filter(|t| now < t.renew_at) {
            return Ok(token.bearer.clone());
        }
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.client_id,
            self.secret.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| unavailable("PAYPAL_CLIENT_ID or its secret has invalid characters"))?;
        auth.set_sensitive(true);
        let (status, json) = self
            .post(
                self.url("v1/oauth2/token")?,
                auth,
                "application/x-www-form-urlencoded",
                b"grant_type=client_credentials".to_vec(),
            )
            .await?;
        if status != StatusCode::OK {
            // 401: PayPal refused our client id or secret; alarms, and PayPal retries.
            return Err(unavailable(format!(
                "token request answered {}",
                status.as_u16()
            )));
        }
        let access = json["access_token"].as_str().filter(|t| !t.is_empty());
        let expires_in = json["expires_in"].as_i64().unwrap_or(0);
        let Some(access) = access else {
            return Err(unavailable("token answer without access_token"));
        };
        let mut bearer = HeaderValue::from_str(&format!("Bearer {access}"))
            .map_err(|_| unavailable("token with invalid characters"))?;
        bearer.set_sensitive(true);
        *cached = Some(Token {
            bearer: bearer.clone(),
            renew_at: now + expires_in - TOKEN_MARGIN_SECS,
        });
        Ok(bearer)
    }

    /// Asks PayPal whether the delivery is authentic.
    pub async fn verify(
        &self,
        t: &Transmission,
        webhook_id: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        let request = request_body(t, webhook_id, body).map_err(rejected)?;
        let bearer = self.bearer().await?;
        let url = self.url("v1/notifications/verify-webhook-signature")?;
        let (status, json) = self.post(url, bearer, "application/json", request).await?;
        match status {
            StatusCode::OK if json["verification_status"] == "SUCCESS" => Ok(()),
            StatusCode::OK => Err(rejected(PaypalRejection::ApiNotVerified)),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Err(rejected(
                PaypalRejection::ApiRequestRefused(status.as_u16()),
            )),
            StatusCode::UNAUTHORIZED => {
                // The token was revoked early: the next delivery asks for a new one.
                *self.token.lock().await = None;
                Err(unavailable("verification answered 401"))
            }
            s => Err(unavailable(format!("verification answered {}", s.as_u16()))),
        }
    }
}
