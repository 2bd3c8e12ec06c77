//! HTTP: the routes, and the one place that turns an outcome into a status code.
//!
//! Status policy: bad or missing signature, stale timestamp, wrong livemode → 400, nothing
//! stored. Recorded (applied, stale, ignored, parked) or a redelivery → 200. A transient
//! failure → 503, so the provider retries. A body over [`MAX_WEBHOOK_BODY_BYTES`] → 413.
//! Handlers never return `Err`.

use crate::domain::access::{newest_first, purchase_access, PurchaseAccess};
use crate::domain::charge::Charge;
use crate::domain::ids::{Account, EventId, PriceId, ProductId, Provider, UserId};
use crate::error::Rejection;
use crate::pipeline::{Outcome, Pipeline};
use crate::ports::{
    parse_source_key, AuditRecord, LedgerRecord, StoreError, Stored, UserAccessDoc, MAX_PRICE_PAGE,
};
use crate::ports::{Cursor, MAX_PAGE};
use crate::routing::{Endpoint, Route};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The only response builder for webhook deliveries.
pub fn respond(outcome: &Outcome) -> Response {
    let (status, body) = match outcome {
        Outcome::Recorded { event_id, state } => (
            StatusCode::OK,
            json!({"event_id": event_id, "state": state.as_str()}),
        ),
        Outcome::Duplicate { event_id, by } => (
            StatusCode::OK,
            json!({"event_id": event_id, "state": "duplicate", "detected_by": by.as_str()}),
        ),
        Outcome::Rejected(why) => (
            match why {
                Rejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            },
            json!({"error": why.to_string()}),
        ),
        // The detail stays in the logs (logged with its kind where it happened); the provider
        // only needs to know to retry. Permanent errors are parked before they get here.
        Outcome::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily unavailable; retry"}),
        ),
    };
    (status, Json(body)).into_response()
}

fn store_failure(e: &StoreError) -> Response {
    tracing::error!(error = %e, "read failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "temporarily unavailable; retry"})),
    )
        .into_response()
}

/// The largest webhook body taken, in bytes: Lambda's 6 MB request limit, so the Lambda and
/// the local run accept the same deliveries. axum's default (2 MB) would refuse validly signed
/// events Stripe can send, with a plain-text 413 outside the status policy.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A body the webhook route could not take: over the limit or cut off while being read.
/// Either way nothing was verified or stored.
fn unreadable_body(rejection: &BytesRejection) -> Response {
    let why = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Rejection::BodyTooLarge {
            limit: MAX_WEBHOOK_BODY_BYTES,
        }
    } else {
        Rejection::BodyUnreadable
    };
    tracing::warn!(error = %why, "webhook body refused before verification");
    respond(&Outcome::Rejected(why))
}

/// The webhook routes of the given endpoints (a Lambda serves its own only), as their
/// providers name them (`POST /webhooks/stripe/{family}`, `POST /webhooks/paypal`, …). An
/// endpoint whose provider is not registered in `service` gets no route.
pub fn webhook_router(service: Arc<Pipeline>, endpoints: &[Endpoint]) -> Router {
    let routes = service
        .routes()
        .into_iter()
        .filter(|r| endpoints.contains(&r.endpoint));
    every_route(service.clone(), routes)
}

fn every_route(service: Arc<Pipeline>, routes: impl Iterator<Item = Route>) -> Router {
    let mut router = Router::new();
    for Route { endpoint, path } in routes {
        router = router.route(
            &path,
            post(
                move |State(svc): State<Arc<Pipeline>>,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    let body = match body {
                        Ok(body) => body,
                        Err(rejection) => return unreadable_body(&rejection),
                    };
                    respond(&svc.receive(endpoint, &headers, &body).await)
                },
            ),
        );
    }
    router
        .route("/webhooks/{*rest}", post(no_endpoint))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY_BYTES))
        .with_state(service)
}

/// A delivery to a webhook path no registered provider serves (PayPal's, where PayPal is not
/// configured): refused by the status policy (400 with a body), nothing read or stored.
async fn no_endpoint(Path(rest): Path<String>) -> Response {
    let provider = rest.split('/').next().unwrap_or_default();
    respond(&Outcome::Rejected(Rejection::UnknownProvider(
        provider
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect(),
    )))
}

/// The read routes' paths, as template.yaml's API events name them.
pub const READ_ROUTES: [&str; 7] = [
    "/events/parked",
    "/outbox/unreadable",
    "/events/{provider}/{event_id}",
    "/users/{user_id}/access",
    "/users/{user_id}/events",
    "/products/{product_id}",
    "/users/{user_id}/billing",
];

/// The read routes: ledger records, user access, the audit trail and the catalogue.
pub fn read_router(service: Arc<Pipeline>) -> Router {
    let [parked, unreadable, event, access, events, product, billing] = READ_ROUTES;
    Router::new()
        .route(parked, get(parked_events))
        .route(unreadable, get(unreadable_outbox))
        .route(event, get(event_record))
        .route(access, get(user_access))
        .route(events, get(user_events))
        .route(product, get(catalogue_product))
        .route(billing, get(user_billing))
        .with_state(service)
}

/// Everything on one address: every registered provider's routes and the read routes (the
/// local run, the tests).
pub fn local_router(service: Arc<Pipeline>) -> Router {
    let routes = service.routes();
    every_route(service.clone(), routes.into_iter()).merge(read_router(service))
}

pub fn ledger_json(r: &LedgerRecord) -> serde_json::Value {
    json!({
        "provider": r.provider,
        "event_id": r.event_id,
        "type": r.event_type,
        "created": r.created,
        "livemode": r.livemode,
        "state": r.state.as_str(),
        "family": r.family,
        "received_at": r.received_at,
        "customer": r.customer,
        "detail": r.detail,
        "parked_body": r.parked.as_ref().map(|p| json!({
            "bytes": p.len,
            "sha256": p.sha256,
            "stored": p.gzip.is_some(),
        })),
    })
}

/// `GET /events/{provider}/{event_id}`: `stripe`, `paypal`, or `system` (the operator's).
async fn event_record(
    State(svc): State<Arc<Pipeline>>,
    Path((provider, event_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let account = match account_query(raw.as_deref()) {
        Ok(account) => account,
        Err(why) => return bad_query(&why),
    };
    let Some(provider) = Provider::parse(&provider).map(|p| p.within(account)) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such provider"})),
        )
            .into_response();
    };
    match svc.store().ledger(provider, &EventId::new(event_id)).await {
        Ok(Some(r)) => Json(ledger_json(&r)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such event"})),
        )
            .into_response(),
        Err(e) => store_failure(&e),
    }
}

/// A listing's page when the request names no `limit`.
pub const DEFAULT_PAGE: usize = 100;

/// A listing route's query: `cursor` (a `next_cursor` it answered before) and `limit`
/// (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]). Other parameters are ignored.
fn list_query(raw: Option<&str>) -> Result<(Option<Cursor>, usize), String> {
    let (mut cursor, mut limit) = (None, DEFAULT_PAGE);
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            // A cursor is base64url: nothing in it is ever percent-encoded.
            "cursor" => cursor = Some(Cursor::decode(value)?),
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| format!("limit must be a number from 1 to {MAX_PAGE}"))?;
            }
            _ => {}
        }
    }
    Ok((cursor, limit))
}

/// `account=acct_…` in a read route's query: the platform asks about one of its connected
/// accounts (Stripe Connect); without it, the platform's own account. Other parameters are the
/// route's own.
fn account_query(raw: Option<&str>) -> Result<Option<Account>, String> {
    let value = raw
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("account="));
    match value {
        None => Ok(None),
        Some(v) => Account::parse(v)
            .map(Some)
            .ok_or_else(|| "account must be a connected account id (acct_…)".to_owned()),
    }
}

/// The user a read route asks about: in the connected account its query names, if any.
fn asked_user(user_id: String, raw: Option<&str>) -> Result<UserId, Box<Response>> {
    let user = UserId::new(user_id);
    match account_query(raw) {
        Ok(Some(account)) => Ok(user.in_account(account)),
        Ok(None) => Ok(user),
        Err(why) => Err(Box::new(bad_query(&why))),
    }
}

fn bad_query(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response()
}

/// Parked events, oldest first, a page at a time (`?cursor=&limit=`; `next_cursor` is `null`
/// on the last page): what `billing replay --all` re-applies.
async fn parked_events(State(svc): State<Arc<Pipeline>>, RawQuery(raw): RawQuery) -> Response {
    let (cursor, limit) = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(why) => return bad_query(&why),
    };
    match svc.store().parked_page(cursor.as_ref(), limit).await {
        Ok(page) => Json(json!({
            "parked": page.items.iter().map(ledger_json).collect::<Vec<_>>(),
            "next_cursor": page.next.map(|c| c.encode()),
        }))
        .into_response(),
        Err(e) => store_failure(&e),
    }
}

/// Outbox items the relay set aside, oldest first, a page at a time (as `/events/parked`):
/// id, reason, time; never content.
async fn unreadable_outbox(State(svc): State<Arc<Pipeline>>, RawQuery(raw): RawQuery) -> Response {
    let (cursor, limit) = match list_query(raw.as_deref()) {
        Ok(q) => q,
        Err(why) => return bad_query(&why),
    };
    match svc.store().unreadable_page(cursor.as_ref(), limit).await {
        Ok(page) => Json(json!({
            "unreadable": page.items,
            "next_cursor": page.next.map(|c| c.encode()),
        }))
        .into_response(),
        Err(e) => store_failure(&e),
    }
}

async fn user_access(
    State(svc): State<Arc<Pipeline>>,
    Path(user_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let user = match asked_user(user_id, raw.as_deref()) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    match svc.store().load_user(&user).await {
        Ok(mut doc) => {
            refresh(&svc, doc.as_mut());
            // The same view every feed message carries (`feed::access_view`).
            let mut body = json!(crate::feed::access_view(doc.as_ref().map(|d| &d.value)));
            body["user_id"] = json!(user);
            // Known: some billing source is linked to the user now. A user a link moved away
            // from keeps a document (its feed counter) but is no longer known, the same answer
            // as in an order where the link never reached it.
            let known = doc.as_ref().is_some_and(|d| !d.value.sources.is_empty());
            body["known"] = json!(known);
            Json(body).into_response()
        }
        Err(e) => store_failure(&e),
    }
}

/// The access as of now: a fixed period that lapsed since the document was written no longer
/// grants (no event marks its end).
fn refresh(svc: &Pipeline, doc: Option<&mut Stored<UserAccessDoc>>) {
    if let Some(d) = doc {
        let now = svc.now();
        for entry in d.value.sources.values_mut().flatten() {
            if entry.grants && !entry.grants_at(now) {
                entry.grants = false;
                entry.standing = crate::domain::access::Standing::Ended;
                entry.billing_status = crate::domain::access::BillingStatus::Cancelled;
            }
        }
        d.value.access = crate::feed::current_access(&d.value, svc.tiers(), now);
    }
}

/// Audit entries of every source linked to the user, newest first.
async fn user_events(
    State(svc): State<Arc<Pipeline>>,
    Path(user_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    const LIMIT: usize = 100;
    let user = match asked_user(user_id, raw.as_deref()) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let doc = match svc.store().load_user(&user).await {
        Ok(d) => d,
        Err(e) => return store_failure(&e),
    };
    let mut entries: Vec<AuditRecord> = Vec::new();
    let sources = doc
        .map(|d| d.value.sources.into_keys().collect::<Vec<_>>())
        .unwrap_or_default();
    for (provider, customer) in sources.iter().filter_map(|k| parse_source_key(k)) {
        match svc.store().audit(provider, &customer, LIMIT).await {
            Ok(mut a) => entries.append(&mut a),
            Err(e) => return store_failure(&e),
        }
    }
    entries.sort_by(|a, b| (b.created, &b.event_id).cmp(&(a.created, &a.event_id)));
    entries.truncate(LIMIT);
    Json(json!({"user_id": user, "events": entries})).into_response()
}

/// Invoices a billing answer lists: the newest, over all the user's sources.
pub const BILLING_INVOICES: usize = 24;

/// `GET /users/{user_id}/billing`: the user's subscriptions and one-time purchases with their
/// refund and dispute state (as in the access answer), newest invoices, and refunded or
/// disputed charges. Invoices
/// come from an index and may lag a just-applied event by a moment.
async fn user_billing(
    State(svc): State<Arc<Pipeline>>,
    Path(user_id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let page = match BillingPage::parse(uri.query()) {
        Ok(page) => page,
        Err(reason) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
        }
    };
    let user = match asked_user(user_id, uri.query()) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let mut doc = match svc.store().load_user(&user).await {
        Ok(d) => d,
        Err(e) => return store_failure(&e),
    };
    refresh(&svc, doc.as_mut());
    let known = doc.as_ref().is_some_and(|d| !d.value.sources.is_empty());
    let view = crate::feed::access_view(doc.as_ref().map(|d| &d.value));
    let customers: Vec<_> = doc
        .map(|d| d.value.sources.into_keys().collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| parse_source_key(k))
        .collect();
    let (invoices, more_invoices) = match page.invoices(&svc, &customers).await {
        Ok(found) => found,
        Err(e) => return store_failure(&e),
    };
    let last_invoice = invoices.last().map(invoice_key);
    // Every source listed is linked to this user, so the link names the invoices' user.
    let invoices: Vec<_> = invoices.iter().map(|i| i.view(Some(&user))).collect();
    let BillingParts {
        subscriptions,
        scheduled,
        charges,
        purchases,
    } = match with_periods(&svc, &customers, view.sources).await {
        Ok(s) => s,
        Err(e) => return store_failure(&e),
    };
    let (purchases, charges, next_cursor) =
        page.cut(purchases, charges, (more_invoices, last_invoice));
    Json(json!({
        "user_id": user,
        "known": known,
        "subscriptions": subscriptions,
        "scheduled": scheduled,
        "purchases": purchases,
        "invoices": invoices,
        "charges": charges,
        "next_cursor": next_cursor,
    }))
    .into_response()
}

/// Items a billing answer lists of each list that grows with the history, unless `limit` says.
pub const BILLING_PAGE: usize = 50;
/// The largest `limit` a billing request may ask for.
pub const BILLING_PAGE_MAX: usize = 200;

/// Where a page of the billing answer starts: after the last purchase and the last charge the
/// previous page listed (keys, not offsets, so a purchase that arrives meanwhile shifts
/// nothing). Sent as opaque base64url JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct BillingCursor {
    /// The last purchase listed: its `created`, id and customer (newest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<(Option<i64>, String, String)>,
    /// The last charge listed: its customer and id (in that order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<(String, String)>,
    /// The last invoice listed: its `created` (see `Invoice::sort_time`) and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<(i64, String)>,
}

/// One request's page of the billing answer.
#[derive(Debug)]
struct BillingPage {
    after: BillingCursor,
    /// `None`: the defaults ([`BILLING_PAGE`]; invoices [`BILLING_INVOICES`]).
    limit: Option<usize>,
}

fn invoice_key(i: &crate::domain::invoice::Invoice) -> (i64, String) {
    (i.sort_time().max(0), i.id.to_string())
}

fn purchase_key(p: &PurchaseAccess) -> (Option<i64>, String, String) {
    (p.created, p.purchase.clone(), p.customer.to_string())
}

fn charge_key(c: &crate::domain::charge::ChargeView) -> (String, String) {
    let customer = c.customer.as_ref().map(ToString::to_string);
    (customer.unwrap_or_default(), c.charge.clone())
}

impl BillingPage {
    /// Reads `cursor` and `limit` from the query string; anything else is ignored.
    fn parse(query: Option<&str>) -> Result<Self, String> {
        use base64::Engine as _;
        let mut page = Self {
            after: BillingCursor::default(),
            limit: None,
        };
        for pair in query.unwrap_or_default().split('&') {
            match pair.split_once('=') {
                Some(("limit", v)) => {
                    let limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=BILLING_PAGE_MAX).contains(n))
                        .ok_or(format!("limit must be 1 to {BILLING_PAGE_MAX}"))?;
                    page.limit = Some(limit);
                }
                Some(("cursor", v)) => {
                    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v)
                        .map_err(|_| "cursor is not one this route gave".to_owned())?;
                    page.after = serde_json::from_slice(&bytes)
                        .map_err(|_| "cursor is not one this route gave".to_owned())?;
                }
                _ => {}
            }
        }
        Ok(page)
    }

    /// This page of the invoices of every source, newest first, and whether there are more:
    /// from each source the newest after the cursor, merged.
    async fn invoices(
        &self,
        svc: &Pipeline,
        customers: &[(Provider, crate::domain::ids::CustomerId)],
    ) -> Result<(Vec<crate::domain::invoice::Invoice>, bool), StoreError> {
        let limit = self.limit.unwrap_or(BILLING_INVOICES);
        let after = self.after.i.as_ref();
        let after_id = after.map(|(_, id)| crate::domain::ids::InvoiceId::new(id.as_str()));
        let older_than = after.zip(after_id.as_ref()).map(|((at, _), id)| (*at, id));
        let mut invoices = Vec::new();
        for (provider, customer) in customers {
            let mut found = svc
                .store()
                .invoices(*provider, customer, limit + 1, older_than)
                .await?;
            invoices.append(&mut found);
        }
        invoices.sort_by(|a, b| (b.sort_time(), &b.id).cmp(&(a.sort_time(), &a.id)));
        let more = invoices.len() > limit;
        invoices.truncate(limit);
        Ok((invoices, more))
    }

    /// This page of each list (sorted: purchases newest first, charges by customer and id),
    /// and the cursor of the next page when any list (invoices too: whether there are more,
    /// and the last listed) has more.
    fn cut(
        &self,
        purchases: Vec<PurchaseAccess>,
        mut charges: Vec<crate::domain::charge::ChargeView>,
        (more_invoices, last_invoice): (bool, Option<(i64, String)>),
    ) -> (
        Vec<PurchaseAccess>,
        Vec<crate::domain::charge::ChargeView>,
        Option<String>,
    ) {
        use base64::Engine as _;
        charges.sort_by_key(charge_key);
        let purchases: Vec<PurchaseAccess> = purchases
            .into_iter()
            .filter(|p| self.after.p.as_ref().is_none_or(|k| &purchase_key(p) < k))
            .collect();
        let charges: Vec<_> = charges
            .into_iter()
            .filter(|c| self.after.c.as_ref().is_none_or(|k| &charge_key(c) > k))
            .collect();
        let limit = self.limit.unwrap_or(BILLING_PAGE);
        let more = purchases.len() > limit || charges.len() > limit || more_invoices;
        let purchases: Vec<_> = purchases.into_iter().take(limit).collect();
        let charges: Vec<_> = charges.into_iter().take(limit).collect();
        let next = more.then(|| {
            let cursor = BillingCursor {
                p: purchases.last().map(purchase_key).or(self.after.p.clone()),
                c: charges.last().map(charge_key).or(self.after.c.clone()),
                i: last_invoice.or(self.after.i.clone()),
            };
            let json = serde_json::to_vec(&cursor).unwrap_or_default();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        });
        (purchases, charges, next)
    }
}

/// Each subscription's access with its periods (settled invoices, trial, gift, grant; start
/// order), and the phases the sources' schedules have still to come, read from the aggregates
/// of the sources the entries name.
async fn with_periods(
    svc: &Pipeline,
    sources: &[(Provider, crate::domain::ids::CustomerId)],
    subscriptions: Vec<crate::domain::access::SubscriptionAccess>,
) -> Result<BillingParts, StoreError> {
    let mut aggregates = std::collections::BTreeMap::new();
    let named = subscriptions
        .iter()
        .map(|s| (s.provider, s.customer.clone()));
    for key in sources.iter().cloned().chain(named) {
        if let std::collections::btree_map::Entry::Vacant(slot) = aggregates.entry(key) {
            let (provider, customer) = slot.key();
            // Each purchase is an item of its own: the list pages over all of them.
            let found =
                crate::ports::customer_with_purchases(svc.store().as_ref(), *provider, customer)
                    .await?;
            slot.insert(found);
        }
    }
    let mut out = Vec::with_capacity(subscriptions.len());
    for s in subscriptions {
        let periods = aggregates[&(s.provider, s.customer.clone())]
            .as_ref()
            .map(|c| c.periods_of(&s.subscription))
            .unwrap_or_default();
        let mut value = json!(s);
        value["periods"] = json!(periods);
        out.push(value);
    }
    let scheduled = aggregates
        .values()
        .flatten()
        .flat_map(|c| {
            c.scheduled().into_values().map(|(schedule, phases)| {
                json!({
                    "schedule": schedule.id, "customer": schedule.customer,
                    "subscription": schedule.subscription, "status": schedule.status,
                    "periods": phases,
                })
            })
        })
        .collect();
    // Refunded or disputed charges of the user's own customers (not of a gift's buyer), those
    // of subscription invoices included (they change no access, so the access answer does
    // not list them).
    let charges = sources
        .iter()
        .filter_map(|key| aggregates.get(key).and_then(Option::as_ref))
        .flat_map(|c| c.all_charges().map(Charge::view))
        .collect();
    // Every purchase of the user's own customers, newest first (the access answer and the
    // feed carry only the newest few).
    let mut purchases: Vec<PurchaseAccess> = sources
        .iter()
        .filter_map(|key| aggregates.get(key).and_then(Option::as_ref))
        .flat_map(purchase_access)
        .collect();
    purchases.sort_by(newest_first);
    Ok(BillingParts {
        subscriptions: out,
        scheduled,
        charges,
        purchases,
    })
}

/// What the billing answer reads from its sources' aggregates.
struct BillingParts {
    subscriptions: Vec<serde_json::Value>,
    scheduled: Vec<serde_json::Value>,
    charges: Vec<crate::domain::charge::ChargeView>,
    purchases: Vec<PurchaseAccess>,
}

/// A Stripe catalogue product with one page of its prices (archived ones marked), the cursor
/// of the next page, and its newest changes (the audit entries of its product, price and plan
/// events, newest first).
async fn catalogue_product(
    State(svc): State<Arc<Pipeline>>,
    Path(product_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    const CHANGES: usize = 20;
    let id = ProductId::new(product_id);
    let stripe = match account_query(query.as_deref()) {
        Ok(account) => Provider::STRIPE.within(account),
        Err(why) => return bad_query(&why),
    };
    let (after, limit) = match price_page_query(query.as_deref()) {
        Ok(page) => page,
        Err(why) => return (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response(),
    };
    let own = match svc.store().product(stripe, &id).await {
        Ok(Some(stored)) => stored.value,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such product"})),
            )
                .into_response()
        }
        Err(e) => return store_failure(&e),
    };
    let page = match svc
        .store()
        .product_prices(stripe, &id, after.as_ref(), limit)
        .await
    {
        Ok(page) => page,
        Err(e) => return store_failure(&e),
    };
    match svc.store().product_audit(stripe, &id, CHANGES).await {
        Ok(changes) => {
            let mut body = json!(own.view(page.prices.iter().map(|(id, p)| (id, p))));
            body["next_cursor"] = json!(page.next.as_ref().map(price_cursor));
            body["changes"] = json!(changes);
            Json(body).into_response()
        }
        Err(e) => store_failure(&e),
    }
}

/// Prices per page of `GET /products/{id}` unless `limit` says otherwise.
const DEFAULT_PRICE_PAGE: usize = 100;

/// The cursor after a price: opaque to clients (the hex of its id, so it needs no escaping).
fn price_cursor(last: &PriceId) -> String {
    hex::encode(last.as_str())
}

/// `cursor` and `limit` of a price page; a clear reason for anything else.
fn price_page_query(query: Option<&str>) -> Result<(Option<PriceId>, usize), String> {
    let (mut after, mut limit) = (None, DEFAULT_PRICE_PAGE);
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "cursor" => {
                let id = hex::decode(value)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|id| !id.is_empty())
                    .ok_or("cursor is not one this route gave")?;
                after = Some(PriceId::new(id));
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PRICE_PAGE).contains(l))
                    .ok_or(format!("limit must be a number from 1 to {MAX_PRICE_PAGE}"))?;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

#[cfg(test)]
mod tests {
    use super::READ_ROUTES;

    /// The deployed API routes each read route to the read Lambda (an HttpApi event of
    /// `ApiFunction`, IAM by default): a route missing there would answer 404 in AWS only.
    #[test]
    fn every_read_route_is_in_the_template() {
        let template = include_str!("../../template.yaml");
        for path in READ_ROUTES {
            let quoted = format!("Method: GET, Path: \"{path}\" }}");
            let bare = format!("Method: GET, Path: {path} }}");
            assert!(
                template.contains(&quoted) || template.contains(&bare),
                "template.yaml has no GET {path} event"
            );
        }
    }
}
