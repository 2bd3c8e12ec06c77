//! Items: each record as the table stores it, and back; an item's size by DynamoDB's rules.
//! Pure functions over attribute maps: nothing here sends a request.

use super::keys::{
    audit_pk, charge_pk, customer_pk, intent_sk, invoice_pk, invoices_gsi_pk, ledger_pk, outbox_pk,
    price_sk, product_audit_sk, product_pk, purchase_sk, time_sk, user_pk, CHARGE_SK, INVOICE_SK,
    LEDGER_SK, OUTBOX_PREFIX, OUTBOX_SK, STATE_SK, USER_SK,
};
use super::schema;
use crate::adapters::listing::Listing;
use crate::domain::catalogue::{PriceRecord, ProductRecord};
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::ids::{CustomerId, EventId, PriceId, ProductId, Provider};
use crate::domain::invoice::Invoice;
use crate::ports::{
    read_outbox_doc, AuditRecord, CatalogueAudit, LedgerRecord, LedgerState, OutboxMessage,
    ParkedBody, PendingOutbox, PurchaseWrite, StoreError, Stored, UserAccessDoc,
};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit, attribute names and values included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

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

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item's key: its primary key attributes alone.
pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(super) fn doc<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
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

pub(super) fn stored<T: DeserializeOwned>(
    item: &Item,
    what: &str,
) -> Result<Stored<T>, StoreError> {
    Ok(Stored {
        value: doc(item, what)?,
        rev: get_n(item, "rev").ok_or_else(|| corrupt(what))? as u64,
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A versioned item (`kind`, JSON `doc`, `rev`): written at the revision after `rev`, the one
/// it was read at (1 for a new item).
fn versioned<T: serde::Serialize>(
    pk: String,
    sk: &str,
    kind: &str,
    value: &T,
    rev: Option<u64>,
) -> Result<Item, StoreError> {
    let mut item = key(pk, sk);
    item.insert("kind".into(), s(kind));
    item.insert("doc".into(), s(to_json(value)?));
    item.insert("rev".into(), n(rev.map_or(1, |r| r + 1)));
    Ok(item)
}

/// The ledger item of `r`; it expires after the retention of its state.
pub(super) fn ledger_item(r: &LedgerRecord, retention: &Retention) -> Item {
    let mut item = key(ledger_pk(r.provider, &r.event_id), LEDGER_SK);
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
        item.insert("GSI1SK".into(), s(time_sk(r.received_at, &r.event_id)));
        retention.parked_secs
    } else {
        retention.ledger_secs
    };
    item.insert(schema::TTL_ATTRIBUTE.into(), n(r.received_at + kept));
    item
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

/// A customer's aggregate; `user` once linked (for operators reading the table).
pub(super) fn customer_item(cust: &CustomerBilling, rev: Option<u64>) -> Result<Item, StoreError> {
    let pk = customer_pk(cust.provider, &cust.customer);
    let mut item = versioned(pk, STATE_SK, "customer", cust, rev)?;
    if let Some(u) = cust.user() {
        item.insert("user".into(), s(u.as_str()));
    }
    Ok(item)
}

/// A user's access document.
pub(super) fn user_item(user_doc: &UserAccessDoc, rev: Option<u64>) -> Result<Item, StoreError> {
    versioned(user_pk(&user_doc.user), USER_SK, "user", user_doc, rev)
}

/// A customer's audit entry (never expires).
pub(super) fn audit_item(a: &AuditRecord) -> Result<Item, StoreError> {
    let mut item = key(
        audit_pk(a.provider, &a.customer),
        &time_sk(a.created, &a.event_id),
    );
    item.insert("kind".into(), s("audit"));
    item.insert("doc".into(), s(to_json(a)?));
    Ok(item)
}

/// A catalogue product's own record.
pub(crate) fn product_item(own: &ProductRecord, rev: Option<u64>) -> Result<Item, StoreError> {
    let pk = product_pk(own.provider, &own.product);
    versioned(pk, STATE_SK, "product", own, rev)
}

/// One price's record as its item, in its product's partition.
pub(crate) fn price_item(
    provider: Provider,
    product: &ProductId,
    price: &PriceId,
    record: &PriceRecord,
    rev: Option<u64>,
) -> Result<Item, StoreError> {
    let pk = product_pk(provider, product);
    versioned(pk, &price_sk(price), "price", record, rev)
}

/// A catalogue event's audit entry, in its product's partition (never expires).
pub(super) fn product_audit_item(
    provider: Provider,
    product: &ProductId,
    a: &CatalogueAudit,
) -> Result<Item, StoreError> {
    let sk = product_audit_sk(a.created, &a.event_id);
    let mut item = key(product_pk(provider, product), &sk);
    item.insert("kind".into(), s("product_audit"));
    item.insert("doc".into(), s(to_json(a)?));
    Ok(item)
}

/// An invoice's item. Once its customer is known it is listed in GSI1 under the customer, by
/// its own `created`, so the read route asks for a customer's newest invoices in one query.
pub(super) fn invoice_item(invoice: &Invoice, rev: Option<u64>) -> Result<Item, StoreError> {
    let pk = invoice_pk(invoice.provider, &invoice.id);
    let mut item = versioned(pk, INVOICE_SK, "invoice", invoice, rev)?;
    if let Some(customer) = &invoice.customer {
        item.insert("customer".into(), s(customer.as_str()));
        item.insert(
            "GSI1PK".into(),
            s(invoices_gsi_pk(invoice.provider, customer)),
        );
        item.insert(
            "GSI1SK".into(),
            s(time_sk(invoice.sort_time().max(0), &invoice.id)),
        );
    }
    Ok(item)
}

/// A charge's item; `customer` once a binding event named it (for operators reading the table).
pub(super) fn charge_item(charge: &Charge, rev: Option<u64>) -> Result<Item, StoreError> {
    let pk = charge_pk(charge.provider, &charge.id);
    let mut item = versioned(pk, CHARGE_SK, "charge", charge, rev)?;
    if let Some(customer) = &charge.customer {
        item.insert("customer".into(), s(customer.as_str()));
    }
    Ok(item)
}

/// A purchase's item and, when a payment intent paid it, the intent's pointer to it; each with
/// the revision its write is conditional on (none for the pointer).
pub(super) fn purchase_items(
    provider: Provider,
    customer: &CustomerId,
    w: &PurchaseWrite,
) -> Result<Vec<(Item, Option<u64>)>, StoreError> {
    let pk = customer_pk(provider, customer);
    let session = &w.purchase.session;
    let item = versioned(
        pk.clone(),
        &purchase_sk(session),
        "purchase",
        &w.purchase,
        w.rev,
    )?;
    let mut items = vec![(item, w.rev)];
    if let Some(pi) = &w.intent {
        let mut pointer = key(pk, &intent_sk(pi));
        pointer.insert("kind".into(), s("purchase_intent"));
        pointer.insert("session".into(), s(session.as_str()));
        items.push((pointer, None));
    }
    Ok(items)
}

/// The outbox item of `m` as the commit writes it; the table's stream carries this image to
/// the relay (`billing lambda-event --stream` prints it).
pub fn outbox_item(m: &OutboxMessage) -> Result<Item, StoreError> {
    let pk = outbox_pk(&m.id);
    let mut item = key(pk.clone(), OUTBOX_SK);
    item.insert("kind".into(), s("outbox"));
    item.insert("doc".into(), s(to_json(m)?));
    item.insert("GSI1PK".into(), s(Listing::PendingOutbox.key_of(&pk)));
    // Oldest first; consumers need no order (docs/MODEL.md, "Change feed").
    item.insert("GSI1SK".into(), s(time_sk(m.created_at, &m.id)));
    Ok(item)
}

/// The message id of an outbox item, from its key (readable even when its `doc` is not).
pub(super) fn outbox_id(item: &Item) -> &str {
    get_s(item, "PK")
        .and_then(|pk| pk.strip_prefix(OUTBOX_PREFIX))
        .unwrap_or_default()
}

/// Reads one pending outbox item; an unreadable `doc` is returned, not raised.
pub fn outbox_from_item(item: &Item) -> PendingOutbox {
    read_outbox_doc(outbox_id(item), get_s(item, "doc"))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::adapters::listing;

    /// A ledger record of `event_type` (an ignored Stripe charge event).
    pub(in super::super) fn record(event_type: &str) -> LedgerRecord {
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
            let item = ledger_item(&r, &Retention::default());
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
    fn item_sizes_follow_dynamodb_rules() {
        let item: Item = HashMap::from([
            ("PK".to_owned(), s("abc")),
            ("n".to_owned(), n(12345)),
            ("b".to_owned(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_size(&item), (2 + 3) + (1 + 4) + (1 + 1));
    }
}
