//! The billing store on DynamoDB: one table, conditional writes, one transaction per event.
//!
//! | item      | PK                         | SK                      | notes                                  |
//! |-----------|----------------------------|-------------------------|----------------------------------------|
//! | ledger    | `EVT#{provider}#{event}`   | `EVT`                   | TTL `expires_at` (parked: own retention)|
//! | customer  | `CUS#{provider}#{customer}`| `STATE`                 | aggregate JSON `doc`, `rev`            |
//! | user      | `USER#{user}`              | `ACCESS`                | access JSON `doc`, `rev`               |
//! | invoice   | `INVOICE#{provider}#{inv}` | `INVOICE`               | invoice JSON `doc`, `rev`, `customer`  |
//! | charge    | `CHARGE#{provider}#{charge}`| `CHARGE`               | charge JSON `doc`, `rev`, `customer`   |
//! | purchase  | `CUS#{provider}#{customer}`| `PURCHASE#{session}`    | one purchase's JSON `doc`, `rev`       |
//! | intent    | `CUS#{provider}#{customer}`| `PURCHASE_PI#{intent}`  | `session` the payment intent paid      |
//! | audit     | `AUDIT#{provider}#{cust}`  | `{created:011}#{event}` | never expires                          |
//! | outbox    | `OUTBOX#{id}`              | `OUTBOX`                | deleted once delivered                 |
//! | product   | `PRODUCT#{provider}#{prod}`| `STATE`                 | product's own record `doc`, `rev`      |
//! | price     | `PRODUCT#{provider}#{prod}`| `PRICE#{price}`         | one price's record `doc`, `rev`        |
//! | product audit | `PRODUCT#{provider}#{prod}` | `AUDIT#{created:011}#{event}` | never expires             |
//!
//! The index `Listings` (keys `GSI1PK`, `GSI1SK`; only the attributes listings read, never a
//! parked body) is sparse: parked events (`PARKED#{shard}`), pending outbox messages
//! (`OUTBOX#{shard}`) and outbox items set aside (`OUTBOX_UNREADABLE#{shard}`), each ordered by
//! time and sharded so that no index partition takes every event's write (`listing.rs`), and
//! each customer's invoices (`INVOICES#{provider}#{customer}`, by the invoice's `created`).

#[cfg(feature = "testing")]
use super::capacity::{billed_write_units, CapacityMeter};
use super::listing::{self, Listing, Order};
use super::sdk_error::Describe;
use crate::domain::catalogue::{PriceRecord, ProductRecord};
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::Purchase;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId};
use crate::domain::invoice::Invoice;
use crate::ports::Beside;
use crate::ports::{
    read_outbox_doc, AuditRecord, BillingStore, CatalogueAudit, Commit, Cursor, LedgerGuard,
    LedgerRecord, LedgerState, Loaded, LoadedProduct, OutboxMessage, Page, ParkedBody,
    PendingOutbox, PricePage, ProductWrite, PurchaseKey, PurchaseWrite, SetAsideOutbox, StoreError,
    Stored, UnreadableOutbox, UserAccessDoc, MAX_PAGE,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ReturnConsumedCapacity, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
#[cfg(feature = "testing")]
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

/// The table's one index (named for the `GSI1PK`/`GSI1SK` keys it kept from its predecessor).
pub const GSI1: &str = listing::LISTINGS_INDEX;

/// An item's size by DynamoDB's rules: attribute names plus values (numbers approximated by
/// their digit count, which DynamoDB stores in about half as many bytes plus one).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    _ => 0,
                }
        })
        .sum()
}

/// DynamoDB's item size limit, attribute names and values included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// What DynamoDB is asked to report of the capacity a request consumed: the totals, for the
/// meter of tests and benchmarks; nothing in a production build.
fn capacity_report() -> Option<ReturnConsumedCapacity> {
    cfg!(feature = "testing").then_some(ReturnConsumedCapacity::Total)
}

/// How long ledger records live (DynamoDB TTL on `expires_at`, counted from `received_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records of finished events (at least 30 days: Stripe resends up to 30 days back).
    pub ledger_secs: i64,
    /// Parked records: their raw bodies hold customer data, so they do not wait forever.
    pub parked_secs: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            ledger_secs: 90 * 86_400,
            parked_secs: 90 * 86_400,
        }
    }
}

/// The key of the warm-up read: an item that never exists.
const WARM_UP_KEY: &str = "WARMUP";

pub struct DynamoBillingStore {
    client: Client,
    table: String,
    retention: Retention,
    /// Requests and capacity units spent (tests and benchmarks).
    #[cfg(feature = "testing")]
    pub meter: Arc<CapacityMeter>,
    /// Off only to test DynamoDB's own refusal of an oversized item.
    #[cfg(feature = "testing")]
    check_sizes: bool,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

fn ledger_pk(provider: Provider, event: &EventId) -> String {
    format!("EVT#{provider}#{event}")
}

fn customer_pk(provider: Provider, customer: &CustomerId) -> String {
    format!("CUS#{provider}#{customer}")
}

fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// A catalogue product's partition: its own record (`STATE`), one item per price
/// (`PRICE#{price}`) and its audit entries.
fn product_pk(provider: Provider, product: &ProductId) -> String {
    format!("PRODUCT#{provider}#{product}")
}

/// Sort-key prefix of a product's price items: `PRICE#{price}`, so a query lists them in id
/// order.
const PRICE_PREFIX: &str = "PRICE#";

fn price_sk(price: &PriceId) -> String {
    format!("{PRICE_PREFIX}{price}")
}

mod old_products;
pub mod schema;
pub(crate) use old_products::product_state;

pub(crate) fn product_item(own: &ProductRecord, rev: Option<u64>) -> Result<Item, StoreError> {
    let mut item = key(product_pk(own.provider, &own.product), "STATE");
    item.insert("kind".into(), s("product"));
    item.insert("doc".into(), s(to_json(own)?));
    item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
    Ok(item)
}

/// One price's record as its item, in its product's partition.
pub(crate) fn price_item(
    provider: Provider,
    product: &ProductId,
    price: &PriceId,
    record: &PriceRecord,
    rev: Option<u64>,
) -> Result<Item, StoreError> {
    let mut item = key(product_pk(provider, product), &price_sk(price));
    item.insert("kind".into(), s("price"));
    item.insert("doc".into(), s(to_json(record)?));
    item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
    Ok(item)
}

/// Sort-key prefix of a product's audit entries: `AUDIT#{created:011}#{event}`.
const PRODUCT_AUDIT_PREFIX: &str = "AUDIT#";
/// An invoice is its own item, keyed by its id alone: `invoice_payment.paid` names only the
/// invoice, and every event of it must find the same item.
fn invoice_pk(provider: Provider, invoice: &InvoiceId) -> String {
    format!("INVOICE#{provider}#{invoice}")
}

const INVOICE_SK: &str = "INVOICE";

/// A charge is its own item, keyed by its id alone: disputes and refund objects name only the
/// charge, and every event of it must find the same item.
fn charge_pk(provider: Provider, charge: &str) -> String {
    format!("CHARGE#{provider}#{charge}")
}

const CHARGE_SK: &str = "CHARGE";

/// A charge's item; `customer` once a binding event named it (for operators reading the table).
fn charge_item(charge: &Charge, rev: Option<u64>) -> Result<Item, StoreError> {
    let mut item = key(charge_pk(charge.provider, &charge.id), CHARGE_SK);
    item.insert("kind".into(), s("charge"));
    item.insert("doc".into(), s(to_json(charge)?));
    item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
    if let Some(customer) = &charge.customer {
        item.insert("customer".into(), s(customer.as_str()));
    }
    Ok(item)
}

/// A purchase is an item of its own in its customer's partition, so the customer's item does
/// not grow with its history; an event addresses it by session (or one-off invoice) id.
const PURCHASE_PREFIX: &str = "PURCHASE#";
/// The pointer from a payment intent to the purchase it paid: what a charge's events know.
const INTENT_PREFIX: &str = "PURCHASE_PI#";

fn purchase_items(
    provider: Provider,
    customer: &CustomerId,
    w: &PurchaseWrite,
) -> Result<Vec<(Item, Option<u64>)>, StoreError> {
    let pk = customer_pk(provider, customer);
    let session = &w.purchase.session;
    let mut item = key(pk.clone(), &format!("{PURCHASE_PREFIX}{session}"));
    item.insert("kind".into(), s("purchase"));
    item.insert("doc".into(), s(to_json(&w.purchase)?));
    item.insert("rev".into(), n(w.rev.map_or(1, |r| r + 1)));
    let mut items = vec![(item, w.rev)];
    if let Some(pi) = &w.intent {
        let mut pointer = key(pk, &format!("{INTENT_PREFIX}{pi}"));
        pointer.insert("kind".into(), s("purchase_intent"));
        pointer.insert("session".into(), s(session.as_str()));
        items.push((pointer, None));
    }
    Ok(items)
}

/// The index partition listing a customer's invoices (GSI1), newest last by `GSI1SK`.
fn invoices_gsi_pk(provider: Provider, customer: &CustomerId) -> String {
    format!("INVOICES#{provider}#{customer}")
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn doc<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let raw = get_s(item, "doc").ok_or_else(|| corrupt(what))?;
    // serde's message can quote the stored value (an email, a user id): keep only where and
    // what kind of error it was, so the reason can be stored and logged.
    serde_json::from_str(raw).map_err(|e| {
        StoreError::Corrupt(format!(
            "{what}: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

fn stored<T: DeserializeOwned>(item: &Item, what: &str) -> Result<Stored<T>, StoreError> {
    Ok(Stored {
        value: doc(item, what)?,
        rev: get_n(item, "rev").ok_or_else(|| corrupt(what))? as u64,
    })
}

/// The outbox item of `m` as the commit writes it; the table's stream carries this image to
/// the relay (`billing lambda-event --stream` prints it).
pub fn outbox_item(m: &OutboxMessage) -> Result<Item, StoreError> {
    let pk = format!("OUTBOX#{}", m.id);
    let mut item = key(pk.clone(), "OUTBOX");
    item.insert("kind".into(), s("outbox"));
    item.insert("doc".into(), s(to_json(m)?));
    item.insert("GSI1PK".into(), s(Listing::PendingOutbox.key_of(&pk)));
    // Oldest first; consumers need no order (docs/MODEL.md, "Change feed").
    item.insert("GSI1SK".into(), s(format!("{:011}#{}", m.created_at, m.id)));
    Ok(item)
}

/// `item` as a DynamoDB Streams record carries it (`Keys`, `NewImage`). Only the scalar types
/// the table's items use are converted; any other is an error rather than a wrong image.
pub fn stream_image(item: &Item) -> Result<serde_dynamo::Item, StoreError> {
    use serde_dynamo::AttributeValue as Image;
    let mut image = HashMap::new();
    for (name, value) in item {
        let converted = match value {
            AttributeValue::S(v) => Image::S(v.clone()),
            AttributeValue::N(v) => Image::N(v.clone()),
            AttributeValue::B(v) => Image::B(v.as_ref().to_vec()),
            AttributeValue::Bool(v) => Image::Bool(*v),
            AttributeValue::Null(v) => Image::Null(*v),
            // Named by attribute only: a value may hold user data.
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "attribute {name}: a type the table's items do not use"
                )))
            }
        };
        image.insert(name.clone(), converted);
    }
    Ok(image.into())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A failed call (timeout, dispatch, response, service error) or request build, by its kind:
/// the provider retries the delivery.
fn unavailable(e: impl Describe) -> StoreError {
    StoreError::Unavailable(e.describe())
}

/// DynamoDB's error code for a request it will never accept as it is.
const VALIDATION_EXCEPTION: &str = "ValidationException";

/// A failed call, by what a retry can do: a `ValidationException` (an item over 400 KB, a key
/// or expression DynamoDB rejects) refuses the request itself, so it is permanent; anything
/// else (timeout, dispatch, throttling, a 5xx) is transient.
fn failed<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) if service.err().code() == Some(VALIDATION_EXCEPTION) => {
            refused(service.err())
        }
        _ => unavailable(e),
    }
}

/// A refusal in DynamoDB's words: its code and message (which name limits and attributes, not
/// values), without the raw response.
fn refused(e: &impl ProvideErrorMetadata) -> StoreError {
    StoreError::Refused(format!(
        "service {}: {}",
        e.code().unwrap_or("unknown"),
        e.message().unwrap_or("no message")
    ))
}

impl DynamoBillingStore {
    /// One strongly consistent `GetItem` of a versioned item (`doc` and `rev`): a customer
    /// aggregate, a charge.
    async fn get_stored<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
        what: &str,
    ) -> Result<Option<Stored<T>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(|i| stored(i, what)).transpose()
    }

    pub fn new(client: Client, table: impl Into<String>, retention: Retention) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
            #[cfg(feature = "testing")]
            meter: Arc::new(CapacityMeter::default()),
            #[cfg(feature = "testing")]
            check_sizes: true,
        }
    }

    /// Opens the DynamoDB connection during init (DNS, TCP, TLS, credentials) with one cheap
    /// read, so the first delivery does not pay for it. A failure is logged and ignored: the
    /// first delivery then connects itself, within the same bounds.
    pub async fn warm_up(&self) {
        let started = std::time::Instant::now();
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(WARM_UP_KEY.into()))
            .key("SK", AttributeValue::S(WARM_UP_KEY.into()))
            .consistent_read(false)
            .send()
            .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(_) => tracing::info!(elapsed_ms, "DynamoDB connection warmed"),
            Err(e) => tracing::warn!(
                elapsed_ms,
                error = %super::sdk_error::describe(&e),
                "DynamoDB warm-up failed; the first delivery will connect"
            ),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn ledger_item(&self, r: &LedgerRecord) -> Item {
        let mut item = key(ledger_pk(r.provider, &r.event_id), "EVT");
        item.insert("kind".into(), s("event"));
        item.insert("state".into(), s(r.state.as_str()));
        item.insert("type".into(), s(r.event_type.clone()));
        item.insert("created".into(), n(r.created));
        item.insert("livemode".into(), AttributeValue::Bool(r.livemode));
        item.insert("family".into(), s(r.family.as_str()));
        item.insert("received_at".into(), n(r.received_at));
        if let Some(c) = &r.customer {
            item.insert("customer".into(), s(c.as_str()));
        }
        if let Some(d) = &r.detail {
            item.insert("detail".into(), s(d.chars().take(1000).collect::<String>()));
        }
        if let Some(p) = &r.parked {
            if let Some(g) = &p.gzip {
                item.insert("raw_gzip".into(), AttributeValue::B(Blob::new(g.clone())));
            }
            item.insert("raw_sha256".into(), s(p.sha256.clone()));
            // Listings read the index, which holds no body: this says one is kept.
            item.insert("raw_stored".into(), AttributeValue::Bool(p.gzip.is_some()));
            item.insert("raw_len".into(), n(p.len));
            item.insert("signed_at".into(), n(p.signed_at));
        }
        let kept = if r.state == LedgerState::Parked {
            // Parked records wait for a replay, but not forever: the raw body is customer data.
            let pk = ledger_pk(r.provider, &r.event_id);
            item.insert("GSI1PK".into(), s(Listing::Parked.key_of(&pk)));
            item.insert(
                "GSI1SK".into(),
                s(format!("{:011}#{}", r.received_at, r.event_id)),
            );
            self.retention.parked_secs
        } else {
            self.retention.ledger_secs
        };
        item.insert(schema::TTL_ATTRIBUTE.into(), n(r.received_at + kept));
        item
    }

    fn put(
        &self,
        item: Item,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn guarded_put(&self, item: Item, rev: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        match rev {
            None => self.put(item, "attribute_not_exists(PK)", None),
            Some(r) => self.put(
                item,
                "rev = :rev",
                Some(HashMap::from([(":rev".into(), n(r))])),
            ),
        }
    }

    /// The ledger item's conditional put: new, or replacing a parked record (a replay).
    fn ledger_put(&self, c: &Commit) -> Result<Put, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.ledger_item(&c.ledger)));
        let put = match c.guard {
            LedgerGuard::New => put.condition_expression("attribute_not_exists(PK)"),
            LedgerGuard::ReplaceParked => put
                .condition_expression("#state = :parked")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":parked", s("parked")),
        };
        put.build().map_err(unavailable)
    }

    /// Refuses, before sending, the first item DynamoDB would refuse for its size: the reason
    /// names the item's kind and size, never its content.
    fn fits<'a>(&self, items: impl IntoIterator<Item = &'a Item>) -> Result<(), StoreError> {
        if !self.checks_sizes() {
            return Ok(());
        }
        for item in items {
            let size = item_size(item);
            if size > MAX_ITEM_BYTES {
                let kind = match get_s(item, "kind") {
                    Some("event") => "ledger",
                    Some(kind) => kind,
                    None => "an",
                };
                return Err(StoreError::Refused(format!(
                    "{kind} item is {size} bytes, over DynamoDB's item limit of {MAX_ITEM_BYTES}"
                )));
            }
        }
        Ok(())
    }

    /// A ledger-only commit is a single conditional PutItem (half the cost of a transaction).
    async fn put_ledger_only(&self, c: &Commit) -> Result<(), StoreError> {
        let put = self.ledger_put(c)?;
        self.fits([put.item()])?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item().clone()))
            .condition_expression(put.condition_expression().unwrap_or_default())
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count_write(out.consumed_capacity(), Some(c));
                Ok(())
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                self.count_write(None, None);
                Err(StoreError::AlreadyRecorded)
            }
            Err(e) => Err(failed(e)),
        }
    }

    fn commit_items(&self, c: &Commit) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = vec![TransactWriteItem::builder()
            .put(self.ledger_put(c)?)
            .build()];
        if let Some((cust, rev)) = &c.customer {
            let mut item = key(customer_pk(cust.provider, &cust.customer), "STATE");
            item.insert("kind".into(), s("customer"));
            item.insert("doc".into(), s(to_json(cust)?));
            item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
            if let Some(u) = cust.user() {
                item.insert("user".into(), s(u.as_str()));
            }
            items.push(self.guarded_put(item, *rev)?);
        }
        for (user_doc, rev) in &c.users {
            let mut item = key(user_pk(&user_doc.user), "ACCESS");
            item.insert("kind".into(), s("user"));
            item.insert("doc".into(), s(to_json(user_doc)?));
            item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
            items.push(self.guarded_put(item, *rev)?);
        }
        if let Some((invoice, rev)) = &c.invoice {
            items.push(self.guarded_put(invoice_item(invoice, *rev)?, *rev)?);
        }
        if let Some((charge, rev)) = &c.charge {
            items.push(self.guarded_put(charge_item(charge, *rev)?, *rev)?);
        }
        for a in &c.audit {
            let mut item = key(
                format!("AUDIT#{}#{}", a.provider, a.customer),
                &format!("{:011}#{}", a.created, a.event_id),
            );
            item.insert("kind".into(), s("audit"));
            item.insert("doc".into(), s(to_json(a)?));
            items.push(self.put(item, "attribute_not_exists(PK)", None)?);
        }
        for m in &c.outbox {
            items.push(self.put(outbox_item(m)?, "attribute_not_exists(PK)", None)?);
        }
        if let Some(w) = &c.product {
            items.extend(self.product_items(w)?);
        }
        if let Some((cust, _)) = &c.customer {
            for w in &c.purchases {
                for (item, rev) in purchase_items(cust.provider, &cust.customer, w)? {
                    if get_s(&item, "kind") == Some("purchase_intent") {
                        // The pointer never changes (an intent pays one session): written
                        // again, it is the same item, so it needs no condition.
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build()
                            .map_err(unavailable)?;
                        items.push(TransactWriteItem::builder().put(put).build());
                    } else {
                        items.push(self.guarded_put(item, rev)?);
                    }
                }
            }
        }
        Ok(items)
    }

    /// A catalogue event's pieces (each conditional on the revision it was read at, like a
    /// customer's aggregate) and its audit entry, all in the product's partition.
    fn product_items(&self, w: &ProductWrite) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(3);
        if let Some((own, rev)) = &w.own {
            items.push(self.guarded_put(product_item(own, *rev)?, *rev)?);
        }
        if let Some(p) = &w.price {
            let item = price_item(w.provider, &w.product, &p.id, &p.record, p.rev)?;
            items.push(self.guarded_put(item, p.rev)?);
        }
        let a = &w.audit;
        let sk = format!("{PRODUCT_AUDIT_PREFIX}{:011}#{}", a.created, a.event_id);
        let mut audit = key(product_pk(w.provider, &w.product), &sk);
        audit.insert("kind".into(), s("product_audit"));
        audit.insert("doc".into(), s(to_json(a)?));
        items.push(self.put(audit, "attribute_not_exists(PK)", None)?);
        Ok(items)
    }

    /// Creates the table (and its TTL) if it does not exist. For local runs and tests; in AWS
    /// the SAM template owns the table.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        if self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        let schema = schema::table_schema();
        let mut create = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::from(schema.billing_mode))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(
                        schema.stream_specification.stream_view_type,
                    ))
                    .build()
                    .map_err(unavailable)?,
            );
        for a in &schema.attribute_definitions {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type))
                    .build()
                    .map_err(unavailable)?,
            );
        }
        for k in &schema.key_schema {
            create = create.key_schema(key_element(k)?);
        }
        for index in &schema.global_secondary_indexes {
            create = create.global_secondary_indexes(index_of(index)?);
        }
        create.send().await.map_err(failed)?;
        let ttl = &schema.time_to_live_specification;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(ttl.enabled)
                    .attribute_name(ttl.attribute_name)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(failed)?;
        Ok(true)
    }
}

fn key_element(k: &schema::KeyElement) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(k.attribute_name)
        .key_type(KeyType::from(k.key_type))
        .build()
        .map_err(unavailable)
}

fn index_of(index: &schema::IndexSchema) -> Result<GlobalSecondaryIndex, StoreError> {
    let projected = index.projection.non_key_attributes.iter();
    let mut gsi = GlobalSecondaryIndex::builder()
        .index_name(index.index_name)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection.projection_type))
                .set_non_key_attributes(Some(projected.map(|a| (*a).to_owned()).collect()))
                .build(),
        );
    for k in &index.key_schema {
        gsi = gsi.key_schema(key_element(k)?);
    }
    gsi.build().map_err(unavailable)
}

impl DynamoBillingStore {
    /// One consistent read of a catalogue event's items; an old-layout product item comes back
    /// as it is, to be converted.
    async fn load_product_once(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<(LoadedProduct, Option<old_products::ProductState>), StoreError> {
        let mut keys = vec![
            key(ledger_pk(provider, event), "EVT"),
            key(product_pk(provider, product), "STATE"),
        ];
        if let Some(p) = price {
            keys.push(key(product_pk(provider, product), &price_sk(p)));
        }
        let mut loaded = LoadedProduct::default();
        let mut old = None;
        for item in self.batch_get(keys).await? {
            let pk = get_s(&item, "PK").unwrap_or_default();
            let sk = get_s(&item, "SK").unwrap_or_default();
            if pk.starts_with("EVT#") {
                loaded.ledger = Some(ledger_from_item(&item)?);
            } else if sk.starts_with(PRICE_PREFIX) {
                loaded.price = Some(stored(&item, "price")?);
            } else if pk.starts_with("PRODUCT#") {
                let state = product_state(&item)?;
                if state.old_prices.is_some() {
                    old = Some(state);
                } else {
                    loaded.product = Some(state.stored);
                }
            }
        }
        Ok((loaded, old))
    }
}

/// Test and benchmark builds count every request and the capacity it consumed, and may switch
/// the size check off.
#[cfg(feature = "testing")]
impl DynamoBillingStore {
    /// Sends items over 400 KB to DynamoDB, so a test can see its own refusal.
    pub fn without_size_check(mut self) -> Self {
        self.check_sizes = false;
        self
    }

    fn checks_sizes(&self) -> bool {
        self.check_sizes
    }

    /// Writes a whole product (its own record and every price, at revision 1) straight into
    /// the table, 25 items a request: tests and benchmarks of large catalogues, which would
    /// otherwise apply each price through the pipeline.
    pub async fn seed_product(
        &self,
        entry: &crate::domain::catalogue::CatalogueEntry,
    ) -> Result<(), StoreError> {
        let own = &entry.product;
        let mut items = vec![product_item(own, None)?];
        for (id, record) in &entry.prices {
            items.push(price_item(own.provider, &own.product, id, record, None)?);
        }
        self.batch_put(&items).await
    }

    /// Writes a customer's purchase items (and their intent pointers) straight into the table,
    /// 25 items a request: tests and benchmarks of long histories, which through commits would
    /// cost moto a copy of the table per transaction.
    pub async fn seed_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        purchases: &[PurchaseWrite],
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for w in purchases {
            items.extend(
                purchase_items(provider, customer, w)?
                    .into_iter()
                    .map(|(i, _)| i),
            );
        }
        self.batch_put(&items).await
    }

    /// Unconditional puts, 25 items a `BatchWriteItem` (the seeders above).
    async fn batch_put(&self, items: &[Item]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let requests = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(unavailable)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(failed)?;
            if out.unprocessed_items().is_some_and(|u| !u.is_empty()) {
                return Err(StoreError::Unavailable("seed: unprocessed items".into()));
            }
        }
        Ok(())
    }

    /// Writes a product's `STATE` item as the code before per-price items wrote it (`doc`:
    /// that layout's JSON, every price inside), at revision `rev`: tests of the conversion.
    pub async fn seed_old_product(
        &self,
        provider: Provider,
        product: &ProductId,
        doc: &serde_json::Value,
        rev: u64,
    ) -> Result<(), StoreError> {
        let mut item = key(product_pk(provider, product), "STATE");
        item.insert("kind".into(), s("product"));
        item.insert("doc".into(), s(doc.to_string()));
        item.insert("rev".into(), n(rev));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    fn count_read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.meter.record_read(consumed);
    }

    /// `written`: the commit a write wrote; its items give the units DynamoDB bills when the
    /// backend reports none (moto).
    fn count_write<'a>(
        &self,
        consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        written: Option<&Commit>,
    ) {
        self.meter.record_write(consumed, || match written {
            None => 0.0,
            Some(c) if c.is_ledger_only() => {
                billed_write_units([&self.ledger_item(&c.ledger)], false)
            }
            Some(c) => {
                let items = self.commit_items(c).unwrap_or_default();
                billed_write_units(items.iter().filter_map(|t| t.put().map(Put::item)), true)
            }
        });
    }
}

/// A production build checks every size and counts nothing.
#[cfg(not(feature = "testing"))]
impl DynamoBillingStore {
    fn checks_sizes(&self) -> bool {
        true
    }

    fn count_read<'a>(&self, _consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {}

    fn count_write<'a>(
        &self,
        _consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        _written: Option<&Commit>,
    ) {
    }
}

/// An invoice's item. Once its customer is known it is listed in GSI1 under the customer, by
/// its own `created`, so the read route asks for a customer's newest invoices in one query.
fn invoice_item(invoice: &Invoice, rev: Option<u64>) -> Result<Item, StoreError> {
    let mut item = key(invoice_pk(invoice.provider, &invoice.id), INVOICE_SK);
    item.insert("kind".into(), s("invoice"));
    item.insert("doc".into(), s(to_json(invoice)?));
    item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
    if let Some(customer) = &invoice.customer {
        item.insert("customer".into(), s(customer.as_str()));
        item.insert(
            "GSI1PK".into(),
            s(invoices_gsi_pk(invoice.provider, customer)),
        );
        item.insert(
            "GSI1SK".into(),
            s(format!("{:011}#{}", invoice.sort_time().max(0), invoice.id)),
        );
    }
    Ok(item)
}

/// Reads a ledger item back into a record.
pub fn ledger_from_item(item: &Item) -> Result<LedgerRecord, StoreError> {
    let pk = get_s(item, "PK").ok_or_else(|| corrupt("ledger PK"))?;
    let mut parts = pk.splitn(3, '#');
    let (_, provider, event) = (parts.next(), parts.next(), parts.next());
    let provider = provider
        .and_then(Provider::parse)
        .ok_or_else(|| corrupt("ledger provider"))?;
    let stored = item.get("raw_stored").and_then(|v| v.as_bool().ok()) == Some(&true);
    let parked = get_s(item, "raw_sha256").map(|sha| ParkedBody {
        // Read from the index, a kept body is known only by `raw_stored` (ports::ParkedBody).
        gzip: match item.get("raw_gzip").and_then(|v| v.as_b().ok()) {
            Some(b) => Some(b.as_ref().to_vec()),
            None => stored.then(Vec::new),
        },
        sha256: sha.to_owned(),
        len: get_n(item, "raw_len").unwrap_or(0) as usize,
        signed_at: get_n(item, "signed_at").unwrap_or(0),
    });
    Ok(LedgerRecord {
        provider,
        event_id: EventId::new(event.ok_or_else(|| corrupt("ledger id"))?),
        event_type: get_s(item, "type").unwrap_or_default().to_owned(),
        created: get_n(item, "created").unwrap_or(0),
        livemode: item
            .get("livemode")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        state: get_s(item, "state")
            .and_then(LedgerState::parse)
            .ok_or_else(|| corrupt("ledger state"))?,
        family: get_s(item, "family")
            .ok_or_else(|| corrupt("ledger family"))?
            .to_owned(),
        received_at: get_n(item, "received_at").unwrap_or(0),
        customer: get_s(item, "customer").map(CustomerId::new),
        detail: get_s(item, "detail").map(str::to_owned),
        parked,
    })
}

/// A cancelled transaction, by the reason code of each item (the ledger item is first): a
/// failed condition on the ledger means the event is already recorded; a `ValidationError` (an
/// item DynamoDB will not accept, e.g. one grown over 400 KB) can never succeed; anything else —
/// a moved revision, a conflict with another transaction, throttling — is contention, to
/// re-read and retry.
fn classify_cancellation(codes: &[&str]) -> StoreError {
    if codes.first() == Some(&"ConditionalCheckFailed") {
        StoreError::AlreadyRecorded
    } else if codes.contains(&"ValidationError") {
        StoreError::Refused(format!("transaction cancelled: {codes:?}"))
    } else {
        StoreError::Contention(format!("transaction cancelled: {codes:?}"))
    }
}

/// Maps a failed transaction to the store's error: only a failed condition on the ledger item
/// (always the first item) means "already recorded"; a refusal is permanent (see [`failed`]).
fn transact_error(e: SdkError<TransactWriteItemsError>) -> StoreError {
    if let SdkError::ServiceError(service) = &e {
        match service.err() {
            TransactWriteItemsError::TransactionCanceledException(tc) => {
                let codes: Vec<&str> = tc
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                return classify_cancellation(&codes);
            }
            TransactWriteItemsError::TransactionInProgressException(_) => {
                return StoreError::Contention("transaction conflict".into());
            }
            _ => {}
        }
    }
    failed(e)
}

/// The keys of an event's one consistent read: its ledger record, its customer, a user.
fn load_keys(
    provider: Provider,
    event: &EventId,
    customer: Option<&CustomerId>,
    user: Option<&UserId>,
) -> Vec<Item> {
    let mut keys = vec![key(ledger_pk(provider, event), "EVT")];
    if let Some(c) = customer {
        keys.push(key(customer_pk(provider, c), "STATE"));
    }
    if let Some(u) = user {
        keys.push(key(user_pk(u), "ACCESS"));
    }
    keys
}

impl DynamoBillingStore {
    /// One consistent `BatchGetItem` of `keys`, each item read into its place in [`Loaded`].
    async fn batch_load(&self, keys: Vec<Item>) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        for item in self.batch_get(keys).await? {
            let pk = get_s(&item, "PK").unwrap_or_default();
            if pk.starts_with("EVT#") {
                loaded.ledger = Some(ledger_from_item(&item)?);
            } else if pk.starts_with("CUS#") {
                loaded.customer = Some(stored(&item, "customer")?);
            } else if pk.starts_with("USER#") {
                loaded.user = Some(stored(&item, "user")?);
            } else if pk.starts_with("INVOICE#") {
                loaded.invoice = Some(stored(&item, "invoice")?);
            } else if pk.starts_with("CHARGE#") {
                loaded.charge = Some(stored(&item, "charge")?);
            }
        }
        Ok(loaded)
    }
}

#[async_trait]
impl BillingStore for DynamoBillingStore {
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError> {
        let mut keys = load_keys(provider, event, customer, user);
        match beside {
            Beside::Nothing => {}
            Beside::Invoice(invoice) => keys.push(key(invoice_pk(provider, invoice), INVOICE_SK)),
            Beside::Charge(charge) => keys.push(key(charge_pk(provider, charge), CHARGE_SK)),
        }
        self.batch_load(keys).await
    }

    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError> {
        self.get_stored(customer_pk(provider, customer), "STATE", "customer")
            .await
    }

    async fn purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        keys: &[PurchaseKey],
    ) -> Result<Vec<Stored<Purchase>>, StoreError> {
        let pk = customer_pk(provider, customer);
        let mut sessions: Vec<String> = Vec::new();
        let mut intents: Vec<Item> = Vec::new();
        for k in keys {
            match k {
                PurchaseKey::Session(session) => sessions.push(session.clone()),
                PurchaseKey::Intent(pi) => {
                    intents.push(key(pk.clone(), &format!("{INTENT_PREFIX}{pi}")));
                }
            }
        }
        if !intents.is_empty() {
            // A second read only for a charge's events (refunds, disputes): the pointers first.
            for pointer in self.batch_get(intents).await? {
                let session =
                    get_s(&pointer, "session").ok_or_else(|| corrupt("purchase intent"))?;
                sessions.push(session.to_owned());
            }
        }
        sessions.sort();
        sessions.dedup();
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let keys = sessions
            .iter()
            .map(|session| key(pk.clone(), &format!("{PURCHASE_PREFIX}{session}")))
            .collect();
        let mut found = self
            .batch_get(keys)
            .await?
            .iter()
            .map(|item| stored(item, "purchase"))
            .collect::<Result<Vec<Stored<Purchase>>, _>>()?;
        found.sort_by(|a, b| a.value.session.cmp(&b.value.session));
        Ok(found)
    }

    async fn all_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Vec<Purchase>, StoreError> {
        let pk = customer_pk(provider, customer);
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :purchase)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":purchase", s(PURCHASE_PREFIX))
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(capacity_report())
                .send()
                .await
                .map_err(failed)?;
            self.count_read(out.consumed_capacity());
            for item in out.items() {
                all.push(doc(item, "purchase")?);
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(all),
            }
        }
    }

    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError> {
        self.get_stored(charge_pk(provider, charge), CHARGE_SK, "charge")
            .await
    }

    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
        older_than: Option<(i64, &InvoiceId)>,
    ) -> Result<Vec<Invoice>, StoreError> {
        // A GSI is read eventually consistent: an invoice committed a moment ago may be missing.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", s(invoices_gsi_pk(provider, customer)));
        // The index's sort key is the position itself (see `invoice_item`).
        let query = match older_than {
            None => query.key_condition_expression("GSI1PK = :pk"),
            Some((at, id)) => query
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":before", s(format!("{:011}#{id}", at.max(0)))),
        };
        let out = query
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        out.items().iter().map(|i| doc(i, "invoice")).collect()
    }

    /// An old-layout product is converted first (`old_products.rs`), then read again: a few
    /// rounds at most, as only a concurrent conversion or event can make one lose.
    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError> {
        for _ in 0..3 {
            match self
                .load_product_once(provider, event, product, price)
                .await?
            {
                (loaded, None) => return Ok(loaded),
                (_, Some(old)) => self.convert_old_product(old).await?,
            }
        }
        Err(StoreError::Contention(
            "product item still in the old layout after converting it".into(),
        ))
    }

    async fn product(
        &self,
        provider: Provider,
        product: &ProductId,
    ) -> Result<Option<Stored<ProductRecord>>, StoreError> {
        Ok(self
            .product_state_item(provider, product)
            .await?
            .map(|s| s.stored))
    }

    async fn product_prices(
        &self,
        provider: Provider,
        product: &ProductId,
        after: Option<&PriceId>,
        limit: usize,
    ) -> Result<PricePage, StoreError> {
        let limit = limit.clamp(1, crate::ports::MAX_PRICE_PAGE);
        // The read route may not write: until an event converts an old-layout product, its
        // prices are paged from its doc (a price item of an interrupted conversion holds the
        // same record).
        let state = self.product_state_item(provider, product).await?;
        if let Some(old) = state.and_then(|s| s.old_prices) {
            return Ok(old_products::old_price_page(&old, after, limit));
        }
        let pk = product_pk(provider, product);
        // One more than the page, so that `next` is set only when a price follows.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :price)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":price", s(PRICE_PREFIX))
            .set_exclusive_start_key(after.map(|a| key(pk, &price_sk(a))))
            .limit(limit as i32 + 1)
            .consistent_read(true)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        let mut prices = Vec::with_capacity(limit);
        for item in out.items().iter().take(limit) {
            let id = get_s(item, "SK")
                .and_then(|sk| sk.strip_prefix(PRICE_PREFIX))
                .ok_or_else(|| corrupt("price SK"))?;
            prices.push((PriceId::new(id), doc(item, "price")?));
        }
        // A page cut short by DynamoDB's 1 MB per query also continues after its last price.
        let more = out.items().len() > limit || out.last_evaluated_key().is_some();
        let next = more
            .then(|| prices.last().map(|(id, _)| id.clone()))
            .flatten();
        Ok(PricePage { prices, next })
    }

    async fn product_audit(
        &self,
        provider: Provider,
        product: &ProductId,
        limit: usize,
    ) -> Result<Vec<CatalogueAudit>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :audit)")
            .expression_attribute_values(":pk", s(product_pk(provider, product)))
            .expression_attribute_values(":audit", s(PRODUCT_AUDIT_PREFIX))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(failed)?;
        out.items()
            .iter()
            .map(|i| doc(i, "product audit"))
            .collect()
    }

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), "ACCESS")))
            .consistent_read(true)
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await
            .map_err(failed)?;
        self.count_read(out.consumed_capacity());
        out.item().map(|i| stored(i, "user")).transpose()
    }

    async fn commit(&self, c: &Commit) -> Result<(), StoreError> {
        if c.is_ledger_only() {
            return self.put_ledger_only(c).await;
        }
        let items = self.commit_items(c)?;
        self.fits(items.iter().filter_map(|t| t.put().map(Put::item)))?;
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_return_consumed_capacity(capacity_report())
            .send()
            .await;
        match out {
            Ok(out) => {
                self.count_write(out.consumed_capacity(), Some(c));
                Ok(())
            }
            Err(e) => {
                self.count_write(None, None);
                Err(transact_error(e))
            }
        }
    }

    async fn ledger(
        &self,
        provider: Provider,
        event: &EventId,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(ledger_pk(provider, event), "EVT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(ledger_from_item).transpose()
    }

    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError> {
        let (items, next) = self.list(Listing::Parked, after, limit).await?;
        Ok(Page {
            items: items
                .iter()
                .map(ledger_from_item)
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn audit(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(format!("AUDIT#{provider}#{customer}")))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(failed)?;
        out.items().iter().map(|i| doc(i, "audit")).collect()
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError> {
        // The oldest `limit` over every shard: delivered items are deleted, so the next pass
        // takes the next ones.
        let (items, _) = self.list(Listing::PendingOutbox, None, limit).await?;
        Ok(items.iter().map(outbox_from_item).collect())
    }

    async fn delete_outbox(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("OUTBOX#{id}"), "OUTBOX")))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn set_aside_outbox(&self, item: &UnreadableOutbox, at: i64) -> Result<(), StoreError> {
        // Re-tagged in place: the pending index no longer lists it, the raw item stays.
        let pk = format!("OUTBOX#{}", item.id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), "OUTBOX")))
            .update_expression(
                "SET GSI1PK = :pk, GSI1SK = :sk, unreadable_reason = :why, set_aside_at = :at",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":pk", s(Listing::SetAside.key_of(&pk)))
            .expression_attribute_values(":sk", s(format!("{at:011}#{}", item.id)))
            .expression_attribute_values(":why", s(item.reason.clone()))
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn requeue_outbox(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        // Re-tagged in place, the inverse of `set_aside_outbox`: only an item set aside, so a
        // second requeue (or one of an item deleted meanwhile) changes nothing. Pending again
        // under its own shard, as the commit wrote it.
        let pk = format!("OUTBOX#{id}");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), "OUTBOX")))
            .update_expression(
                "SET GSI1PK = :pk, GSI1SK = :sk REMOVE unreadable_reason, set_aside_at",
            )
            .condition_expression("attribute_exists(set_aside_at)")
            .expression_attribute_values(":pk", s(Listing::PendingOutbox.key_of(&pk)))
            .expression_attribute_values(":sk", s(format!("{at:011}#{id}")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError> {
        let (items, next) = self.list(Listing::SetAside, after, limit).await?;
        let items = items
            .iter()
            .map(|i| SetAsideOutbox {
                id: outbox_id(i).to_owned(),
                reason: get_s(i, "unreadable_reason").unwrap_or_default().to_owned(),
                set_aside_at: get_n(i, "set_aside_at").unwrap_or(0),
            })
            .collect();
        Ok(Page { items, next })
    }
}

/// The message id of an outbox item, from its key (readable even when its `doc` is not).
fn outbox_id(item: &Item) -> &str {
    get_s(item, "PK")
        .and_then(|pk| pk.strip_prefix("OUTBOX#"))
        .unwrap_or_default()
}

/// Reads one pending outbox item; an unreadable `doc` is returned, not raised.
pub fn outbox_from_item(item: &Item) -> PendingOutbox {
    read_outbox_doc(outbox_id(item), get_s(item, "doc"))
}

impl DynamoBillingStore {
    /// One consistent `BatchGetItem` of `keys` (a delivery's single read), asking again only
    /// for the keys DynamoDB left unprocessed under load.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for _ in 0..5 {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .set_return_consumed_capacity(capacity_report())
                .send()
                .await
                .map_err(failed)?;
            self.count_read(out.consumed_capacity());
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Unavailable(
            "batch read left keys unprocessed".into(),
        ))
    }

    /// One page of a sharded listing, oldest first (`listing::page`).
    async fn list(
        &self,
        listing: Listing,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        listing::page(
            &self.client,
            &self.table,
            listing,
            after,
            limit,
            Order::OldestFirst,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::CustomerBilling;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    /// The stream image of an outbox item is what the stream relay reads back: its keys and
    /// its message. A type the table does not use is refused, named by attribute, never quoted.
    #[test]
    fn an_outbox_items_stream_image_reads_back_as_its_message() {
        let m = OutboxMessage {
            id: "chg_1".into(),
            kind: "access.changed".into(),
            body: serde_json::json!({"schema": "billing.access_changed.v1", "user_id": "user_42"}),
            created_at: 1_735_689_600,
        };
        let image = stream_image(&outbox_item(&m).expect("item")).expect("image");
        let text = |name: &str| match image.get(name) {
            Some(serde_dynamo::AttributeValue::S(v)) => Some(v.as_str()),
            _ => None,
        };
        assert_eq!(
            (text("PK"), text("SK"), text("GSI1PK")),
            (Some("OUTBOX#chg_1"), Some("OUTBOX"), Some("OUTBOX#19"))
        );
        assert_eq!(read_outbox_doc("chg_1", text("doc")), Ok(m));
        let mut odd = key("OUTBOX#x".into(), "OUTBOX");
        odd.insert("doc".into(), AttributeValue::Ss(vec!["user_42".into()]));
        let err = stream_image(&odd).expect_err("a string set is not converted");
        assert!(err.to_string().contains("attribute doc"), "{err}");
        assert!(!err.to_string().contains("user_42"), "{err}");
    }

    /// Issue 17, point 2: no index partition key is written by every event. The outbox items
    /// and parked records of 6,400 different events spread over the listing's 64 shards, each
    /// taking no more than twice its share (today every one of them is written under `OUTBOX`
    /// or `PARKED`: one partition, 1,000 write units a second, for the whole table).
    #[test]
    fn different_events_write_different_index_keys_within_the_shard_space() {
        use std::collections::HashMap as Counts;
        let store = unsendable_store();
        let shards = listing::LISTING_SHARDS as usize;
        let events = 100 * shards;
        let mut outbox: Counts<String, usize> = Counts::new();
        let mut parked: Counts<String, usize> = Counts::new();
        for i in 0..events {
            let m = OutboxMessage {
                id: format!("chg_{i}"),
                kind: "access.changed".into(),
                body: serde_json::json!({}),
                created_at: 1_735_689_600,
            };
            let item = outbox_item(&m).expect("item");
            *outbox
                .entry(get_s(&item, "GSI1PK").expect("pk").into())
                .or_default() += 1;
            let mut r = record("customer.subscription.updated");
            r.event_id = EventId::new(format!("evt_{i}"));
            r.state = LedgerState::Parked;
            let item = store.ledger_item(&r);
            *parked
                .entry(get_s(&item, "GSI1PK").expect("pk").into())
                .or_default() += 1;
        }
        for (what, counts) in [("outbox", &outbox), ("parked", &parked)] {
            assert_eq!(counts.len(), shards, "{what}: {counts:?}");
            assert!(
                counts.values().all(|&c| c <= 2 * events / shards),
                "{what}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_failed_call_is_unavailable_and_says_its_kind() {
        for (error, kind) in crate::adapters::sdk_error::tests::samples() {
            match unavailable(error) {
                StoreError::Unavailable(text) => {
                    assert!(text.starts_with(&format!("{kind}: ")), "{text}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn only_a_failed_ledger_condition_means_already_recorded() {
        assert_eq!(
            classify_cancellation(&["ConditionalCheckFailed", "None", "None"]),
            StoreError::AlreadyRecorded
        );
        assert_eq!(
            classify_cancellation(&["ConditionalCheckFailed", "ValidationError"]),
            StoreError::AlreadyRecorded,
            "a recorded event is a duplicate, whatever else was refused"
        );
        for codes in [
            ["None", "ConditionalCheckFailed", "None"],
            ["TransactionConflict", "None", "None"],
            ["None", "ThrottlingError", "None"],
            ["None", "None", "ProvisionedThroughputExceeded"],
        ] {
            assert!(
                matches!(classify_cancellation(&codes), StoreError::Contention(_)),
                "{codes:?}"
            );
        }
        for codes in [
            ["None", "ValidationError", "None"],
            ["None", "ConditionalCheckFailed", "ValidationError"],
        ] {
            let e = classify_cancellation(&codes);
            assert!(
                matches!(e, StoreError::Refused(_)) && e.is_permanent(),
                "{codes:?}"
            );
        }
    }

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("status"), "".into())
    }

    /// DynamoDB's answer to an item over 400 KB, as the error of any operation.
    fn too_large<E>(generic: fn(ErrorMetadata) -> E) -> SdkError<E, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code("ValidationException")
            .message("Item size has exceeded the maximum allowed size")
            .build();
        SdkError::service_error(generic(meta), response(400))
    }

    #[test]
    fn a_validation_exception_is_refused_in_dynamodb_s_words() {
        let refused = StoreError::Refused(
            "service ValidationException: Item size has exceeded the maximum allowed size".into(),
        );
        assert!(refused.is_permanent());
        assert_eq!(failed(too_large(PutItemError::generic)), refused);
        assert_eq!(failed(too_large(BatchGetItemError::generic)), refused);
        assert_eq!(failed(too_large(GetItemError::generic)), refused);
        assert_eq!(
            transact_error(too_large(TransactWriteItemsError::generic)),
            refused
        );
    }

    #[test]
    fn every_other_failed_call_stays_transient() {
        for (error, kind) in crate::adapters::sdk_error::tests::samples() {
            match failed(error) {
                StoreError::Unavailable(text) => {
                    assert!(text.starts_with(&format!("{kind}: ")), "{text}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_transaction_cancelled_for_a_validation_error_is_refused() {
        let cancelled = |codes: &[&str]| {
            let reasons = codes
                .iter()
                .map(|c| CancellationReason::builder().code(*c).build())
                .collect();
            let e = TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .build();
            transact_error(SdkError::service_error(
                TransactWriteItemsError::TransactionCanceledException(e),
                response(400),
            ))
        };
        assert_eq!(
            cancelled(&["None", "ValidationError", "None"]),
            StoreError::Refused(
                r#"transaction cancelled: ["None", "ValidationError", "None"]"#.into()
            )
        );
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "None"]),
            StoreError::AlreadyRecorded
        );
        assert!(matches!(
            cancelled(&["None", "ConditionalCheckFailed"]),
            StoreError::Contention(_)
        ));
    }

    /// A store whose client has no credentials: a request it actually sent would fail as
    /// `Unavailable`, so a `Refused` shows the check ran before sending.
    fn unsendable_store() -> DynamoBillingStore {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        DynamoBillingStore::new(Client::from_conf(conf), "billing", Retention::default())
    }

    fn record(event_type: &str) -> LedgerRecord {
        LedgerRecord {
            provider: Provider::STRIPE,
            event_id: EventId::new("evt_big"),
            event_type: event_type.into(),
            created: 1,
            livemode: false,
            state: LedgerState::Ignored,
            family: "charge".into(),
            received_at: 1,
            customer: None,
            detail: None,
            parked: None,
        }
    }

    #[tokio::test]
    async fn an_item_over_400_kb_is_refused_before_sending_naming_its_kind_and_size() {
        let store = unsendable_store();
        let value = "private-value-".repeat(32_000);
        let cases = [
            (
                Commit::ledger_only(record(&value), LedgerGuard::New),
                "ledger item is 448",
            ),
            (
                Commit {
                    customer: Some((
                        CustomerBilling::new(Provider::STRIPE, CustomerId::new(&value)),
                        None,
                    )),
                    ..Commit::ledger_only(record("customer.updated"), LedgerGuard::New)
                },
                "customer item is 896",
            ),
        ];
        for (commit, named) in cases {
            match store.commit(&commit).await {
                Err(StoreError::Refused(why)) => {
                    assert!(why.starts_with(named), "{why}");
                    assert!(!why.contains("private-value"), "{why}");
                }
                other => panic!("{named}: {other:?}"),
            }
        }
        // A commit that fits is sent (and fails here, having no credentials).
        let small = Commit::ledger_only(record("charge.succeeded"), LedgerGuard::New);
        assert!(matches!(
            store.commit(&small).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn the_size_limit_is_dynamodb_s_400_kb() {
        let store = unsendable_store();
        let item = |size: usize| -> Item {
            HashMap::from([
                ("kind".to_owned(), s("user")),
                (
                    "doc".to_owned(),
                    s("x".repeat(size - "kind".len() - "user".len() - 3)),
                ),
            ])
        };
        assert_eq!(item_size(&item(MAX_ITEM_BYTES)), MAX_ITEM_BYTES);
        assert_eq!(store.fits([&item(MAX_ITEM_BYTES)]), Ok(()));
        assert_eq!(
            store.fits([&item(MAX_ITEM_BYTES + 1)]),
            Err(StoreError::Refused(
                "user item is 409601 bytes, over DynamoDB's item limit of 409600".into()
            ))
        );
    }

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        let item: Item = HashMap::from([
            ("PK".to_owned(), s("abc")),
            ("n".to_owned(), n(12345)),
            ("b".to_owned(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_size(&item), (2 + 3) + (1 + 4) + (1 + 1));
    }
}
