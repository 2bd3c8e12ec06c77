//! In-memory twins of the ports, with the same conditional semantics as the DynamoDB adapter:
//! for fast domain and pipeline tests. Not for production; the real store is `dynamo`.

use super::dynamo::MAX_ITEM_BYTES;
use crate::domain::catalogue::{CatalogueEntry, PriceRecord, ProductRecord};
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::Purchase;
use crate::domain::ids::{CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId};
use crate::domain::invoice::Invoice;
use crate::ports::Beside;
use crate::ports::{listing_sort_key, page_of, Cursor, Page};
use crate::ports::{
    read_outbox_doc, AuditRecord, BillingStore, CatalogueAudit, Commit, LedgerGuard, LedgerRecord,
    LedgerState, Loaded, LoadedProduct, OutboxMessage, PendingOutbox, PricePage, ProductWrite,
    PurchaseKey, Queue, QueueError, SecretSource, SecretsError, SetAsideOutbox, StoreError, Stored,
    UnreadableOutbox, UserAccessDoc,
};
use crate::providers::stripe::Family;
use crate::routing::Endpoint;
use crate::secret::WebhookSecret;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Tables {
    ledger: HashMap<(Provider, EventId), LedgerRecord>,
    customers: HashMap<(Provider, CustomerId), Stored<CustomerBilling>>,
    users: HashMap<UserId, Stored<UserAccessDoc>>,
    invoices: HashMap<(Provider, InvoiceId), Stored<Invoice>>,
    charges: HashMap<(Provider, String), Stored<Charge>>,
    /// Each customer's purchases by session id (the sort key's order), and the pointers from
    /// a payment intent to its purchase's session.
    purchases: BTreeMap<(Provider, CustomerId, String), Stored<Purchase>>,
    intents: HashMap<(Provider, CustomerId, String), String>,
    /// Keyed like the DynamoDB sort key, so iteration order is the same.
    audit: BTreeMap<(Provider, CustomerId, i64, EventId), AuditRecord>,
    /// Keyed `(created_at, id)` like the pending index; the document is kept as stored text so
    /// an unreadable one can exist here too.
    outbox: BTreeMap<(i64, String), OutboxItem>,
    /// Each product's own record, and each price's, keyed (like the sort key) in id order.
    products: HashMap<(Provider, ProductId), Stored<ProductRecord>>,
    prices: BTreeMap<(Provider, ProductId, PriceId), Stored<PriceRecord>>,
    /// Keyed like the DynamoDB sort key within the product's partition.
    product_audit: BTreeMap<(Provider, ProductId, i64, EventId), CatalogueAudit>,
}

struct OutboxItem {
    doc: String,
    /// `(reason, when)` once the relay set it aside (unreadable, or refused by the queue).
    set_aside: Option<(String, i64)>,
}

#[derive(Default)]
pub struct InMemoryBillingStore {
    tables: Mutex<Tables>,
    /// Refuse, as DynamoDB does, a commit with an item over 400 KB (off by default: the check
    /// encodes every item, which the permutation suites need not pay for).
    item_limit: bool,
}

impl InMemoryBillingStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that refuses what DynamoDB refuses for its size: any item of a commit whose
    /// JSON document is over DynamoDB's 400 KB item limit (the document is nearly all of it).
    pub fn with_item_limit() -> Self {
        Self {
            item_limit: true,
            ..Self::default()
        }
    }

    /// The largest JSON document a commit would write, with its kind.
    fn check_item_sizes(&self, c: &Commit) -> Result<(), StoreError> {
        if !self.item_limit {
            return Ok(());
        }
        let mut sizes: Vec<(&str, usize)> = Vec::new();
        let mut add = |kind: &'static str, json: Result<String, serde_json::Error>| {
            sizes.push((kind, json.map_or(0, |j| j.len())));
        };
        if let Some((cust, _)) = &c.customer {
            add("customer", serde_json::to_string(cust));
        }
        for (doc, _) in &c.users {
            add("user", serde_json::to_string(doc));
        }
        if let Some((invoice, _)) = &c.invoice {
            add("invoice", serde_json::to_string(invoice));
        }
        if let Some((charge, _)) = &c.charge {
            add("charge", serde_json::to_string(charge));
        }
        for w in &c.purchases {
            add("purchase", serde_json::to_string(&w.purchase));
        }
        for m in &c.outbox {
            add("outbox", serde_json::to_string(m));
        }
        for (kind, size) in sizes {
            if size > crate::adapters::dynamo::MAX_ITEM_BYTES {
                return Err(StoreError::Refused(format!(
                    "{kind} item is {size} bytes, over DynamoDB's item limit"
                )));
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))
    }

    /// Every customer aggregate, for tests that compare models.
    pub fn customers(&self) -> Vec<CustomerBilling> {
        self.lock()
            .map(|t| t.customers.values().map(|s| s.value.clone()).collect())
            .unwrap_or_default()
    }

    /// Every product with all its prices, for tests that compare models.
    pub fn products(&self) -> Vec<CatalogueEntry> {
        let Ok(t) = self.lock() else {
            return vec![];
        };
        t.products
            .iter()
            .map(|((provider, product), own)| CatalogueEntry {
                product: own.value.clone(),
                prices: t
                    .prices
                    .iter()
                    .filter(|((p, id, _), _)| p == provider && id == product)
                    .map(|((_, _, price), s)| (price.clone(), s.value.clone()))
                    .collect(),
            })
            .collect()
    }

    /// Every invoice, for tests that compare models (in key order).
    pub fn all_invoices(&self) -> Vec<Invoice> {
        let mut all: Vec<Invoice> = self
            .lock()
            .map(|t| t.invoices.values().map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| (a.provider, &a.id).cmp(&(b.provider, &b.id)));
        all
    }

    /// Every charge item, for tests that compare models (in key order).
    pub fn all_charges(&self) -> Vec<Charge> {
        let mut all: Vec<Charge> = self
            .lock()
            .map(|t| t.charges.values().map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| (a.provider, &a.id).cmp(&(b.provider, &b.id)));
        all
    }

    /// Every customer aggregate with its purchase items put back in it (as the read routes
    /// see it), for tests.
    pub fn customers_with_purchases(&self) -> Vec<CustomerBilling> {
        let Ok(t) = self.lock() else {
            return vec![];
        };
        t.customers
            .values()
            .map(|s| {
                let mut c = s.value.clone();
                let mine = t
                    .purchases
                    .iter()
                    .filter(|((p, id, _), _)| *p == c.provider && *id == c.customer);
                for ((_, _, session), item) in mine {
                    c.purchases.insert(session.clone(), item.value.clone());
                }
                c
            })
            .collect()
    }

    pub fn user(&self, user: &UserId) -> Option<UserAccessDoc> {
        self.lock().ok()?.users.get(user).map(|s| s.value.clone())
    }

    /// Puts an outbox item with any document text (tests of unreadable items).
    pub fn put_raw_outbox(&self, id: &str, created_at: i64, doc: &str) {
        if let Ok(mut t) = self.lock() {
            let item = OutboxItem {
                doc: doc.to_owned(),
                set_aside: None,
            };
            t.outbox.insert((created_at, id.to_owned()), item);
        }
    }
}

/// DynamoDB refuses an item over 400 KB. The twin keeps documents, not items, so it measures
/// the `doc` of each versioned item it is asked to put (the attribute that grows) and refuses
/// what DynamoDB would: an in-memory run meets the same cliff as the table.
fn fits(kind: &str, doc: &impl serde::Serialize) -> Result<(), StoreError> {
    let size = serde_json::to_vec(doc)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .len();
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Refused(format!(
            "{kind} item is {size} bytes, over DynamoDB's item limit of {MAX_ITEM_BYTES}"
        )));
    }
    Ok(())
}

fn rev_matches<T>(current: Option<&Stored<T>>, expected: Option<u64>) -> bool {
    current.map(|s| s.rev) == expected
}

/// Every item a commit puts must still be at the revision it was read at.
fn check_revisions(t: &Tables, c: &Commit) -> Result<(), StoreError> {
    if let Some((cust, rev)) = &c.customer {
        let current = t.customers.get(&(cust.provider, cust.customer.clone()));
        if !rev_matches(current, *rev) {
            return Err(StoreError::Contention("customer revision moved".into()));
        }
    }
    for (doc, rev) in &c.users {
        if !rev_matches(t.users.get(&doc.user), *rev) {
            return Err(StoreError::Contention("user revision moved".into()));
        }
    }
    if let Some((invoice, rev)) = &c.invoice {
        let current = t.invoices.get(&(invoice.provider, invoice.id.clone()));
        if !rev_matches(current, *rev) {
            return Err(StoreError::Contention("invoice revision moved".into()));
        }
    }
    if let Some((charge, rev)) = &c.charge {
        let current = t.charges.get(&(charge.provider, charge.id.clone()));
        if !rev_matches(current, *rev) {
            return Err(StoreError::Contention("charge revision moved".into()));
        }
    }
    if let Some(w) = &c.product {
        check_product(t, w)?;
    }
    if let Some((cust, _)) = &c.customer {
        for w in &c.purchases {
            let key = (
                cust.provider,
                cust.customer.clone(),
                w.purchase.session.clone(),
            );
            if !rev_matches(t.purchases.get(&key), w.rev) {
                return Err(StoreError::Contention("purchase revision moved".into()));
            }
        }
    } else if !c.purchases.is_empty() {
        return Err(StoreError::Refused(
            "purchases without their customer".into(),
        ));
    }
    Ok(())
}

/// Puts a commit's purchase items and intent pointers (after `check_revisions`).
fn put_purchases(t: &mut Tables, c: &Commit) {
    let Some((cust, _)) = &c.customer else {
        return;
    };
    for w in &c.purchases {
        let session = w.purchase.session.clone();
        if let Some(pi) = &w.intent {
            let key = (cust.provider, cust.customer.clone(), pi.clone());
            t.intents.insert(key, session.clone());
        }
        let stored = Stored {
            value: w.purchase.clone(),
            rev: w.rev.map_or(1, |r| r + 1),
        };
        t.purchases
            .insert((cust.provider, cust.customer.clone(), session), stored);
    }
}

/// A catalogue write's pieces must be at the revisions they were read at, and fit in an item.
fn check_product(t: &Tables, w: &ProductWrite) -> Result<(), StoreError> {
    let key = (w.provider, w.product.clone());
    if let Some((own, rev)) = &w.own {
        if !rev_matches(t.products.get(&key), *rev) {
            return Err(StoreError::Contention("product revision moved".into()));
        }
        fits("product", own)?;
    }
    if let Some(p) = &w.price {
        let current = t.prices.get(&(key.0, key.1, p.id.clone()));
        if !rev_matches(current, p.rev) {
            return Err(StoreError::Contention("price revision moved".into()));
        }
        fits("price", &p.record)?;
    }
    Ok(())
}

/// Puts a catalogue write's pieces and audit entry (after `check_product`).
fn put_product(t: &mut Tables, w: &ProductWrite) {
    let key = (w.provider, w.product.clone());
    if let Some((own, rev)) = &w.own {
        let stored = Stored {
            value: own.clone(),
            rev: rev.map_or(1, |r| r + 1),
        };
        t.products.insert(key.clone(), stored);
    }
    if let Some(p) = &w.price {
        let stored = Stored {
            value: p.record.clone(),
            rev: p.rev.map_or(1, |r| r + 1),
        };
        t.prices
            .insert((key.0, key.1.clone(), p.id.clone()), stored);
    }
    let a = &w.audit;
    t.product_audit
        .insert((key.0, key.1, a.created, a.event_id.clone()), a.clone());
}

#[async_trait]
impl BillingStore for InMemoryBillingStore {
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError> {
        // One lock: the twin reads everything at one instant, as DynamoDB's consistent read does.
        let t = self.lock()?;
        Ok(Loaded {
            ledger: t.ledger.get(&(provider, event.clone())).cloned(),
            customer: customer.and_then(|c| t.customers.get(&(provider, c.clone())).cloned()),
            user: user.and_then(|u| t.users.get(u).cloned()),
            invoice: match beside {
                Beside::Invoice(i) => t.invoices.get(&(provider, i.clone())).cloned(),
                _ => None,
            },
            charge: match beside {
                Beside::Charge(c) => t.charges.get(&(provider, c.to_owned())).cloned(),
                _ => None,
            },
        })
    }

    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError> {
        Ok(self
            .lock()?
            .customers
            .get(&(provider, customer.clone()))
            .cloned())
    }

    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError> {
        Ok(self
            .lock()?
            .charges
            .get(&(provider, charge.to_owned()))
            .cloned())
    }

    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError> {
        Ok(self.lock()?.users.get(user).cloned())
    }

    async fn purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        keys: &[PurchaseKey],
    ) -> Result<Vec<Stored<Purchase>>, StoreError> {
        let t = self.lock()?;
        let mut sessions: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                PurchaseKey::Session(s) => Some(s.clone()),
                PurchaseKey::Intent(pi) => t
                    .intents
                    .get(&(provider, customer.clone(), pi.clone()))
                    .cloned(),
            })
            .collect();
        sessions.sort();
        sessions.dedup();
        Ok(sessions
            .into_iter()
            .filter_map(|s| t.purchases.get(&(provider, customer.clone(), s)).cloned())
            .collect())
    }

    async fn all_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Vec<Purchase>, StoreError> {
        let t = self.lock()?;
        Ok(t.purchases
            .iter()
            .filter(|((p, c, _), _)| *p == provider && c == customer)
            .map(|(_, s)| s.value.clone())
            .collect())
    }

    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
        older_than: Option<(i64, &InvoiceId)>,
    ) -> Result<Vec<Invoice>, StoreError> {
        let t = self.lock()?;
        let mut found: Vec<Invoice> = t
            .invoices
            .values()
            .filter(|s| s.value.provider == provider && s.value.customer.as_ref() == Some(customer))
            .filter(|s| older_than.is_none_or(|at| (s.value.sort_time().max(0), &s.value.id) < at))
            .map(|s| s.value.clone())
            .collect();
        // Newest first, like the index the DynamoDB store reads.
        found.sort_by(|a, b| (b.sort_time(), &b.id).cmp(&(a.sort_time(), &a.id)));
        found.truncate(limit);
        Ok(found)
    }

    async fn commit(&self, c: &Commit) -> Result<(), StoreError> {
        let mut t = self.lock()?;
        let key = (c.ledger.provider, c.ledger.event_id.clone());
        let ledger_ok = match (c.guard, t.ledger.get(&key)) {
            (LedgerGuard::New, None) => true,
            (LedgerGuard::ReplaceParked, Some(r)) => r.state == LedgerState::Parked,
            _ => false,
        };
        if !ledger_ok {
            return Err(StoreError::AlreadyRecorded);
        }
        check_revisions(&t, c)?;
        self.check_item_sizes(c)?;
        // Encoded before anything is written, so a failure leaves nothing behind.
        let outbox = c
            .outbox
            .iter()
            .map(|m| Ok(((m.created_at, m.id.clone()), serde_json::to_string(m)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        t.ledger.insert(key, c.ledger.clone());
        if let Some((cust, rev)) = &c.customer {
            let stored = Stored {
                value: cust.clone(),
                rev: rev.map_or(1, |r| r + 1),
            };
            t.customers
                .insert((cust.provider, cust.customer.clone()), stored);
        }
        for (doc, rev) in &c.users {
            let stored = Stored {
                value: doc.clone(),
                rev: rev.map_or(1, |r| r + 1),
            };
            t.users.insert(doc.user.clone(), stored);
        }
        if let Some((invoice, rev)) = &c.invoice {
            let stored = Stored {
                value: invoice.clone(),
                rev: rev.map_or(1, |r| r + 1),
            };
            t.invoices
                .insert((invoice.provider, invoice.id.clone()), stored);
        }
        if let Some((charge, rev)) = &c.charge {
            let stored = Stored {
                value: charge.clone(),
                rev: rev.map_or(1, |r| r + 1),
            };
            t.charges
                .insert((charge.provider, charge.id.clone()), stored);
        }
        for a in &c.audit {
            let key = (
                a.provider,
                a.customer.clone(),
                a.created,
                a.event_id.clone(),
            );
            t.audit.insert(key, a.clone());
        }
        for (key, doc) in outbox {
            let item = OutboxItem {
                doc,
                set_aside: None,
            };
            t.outbox.insert(key, item);
        }
        if let Some(w) = &c.product {
            put_product(&mut t, w);
        }
        put_purchases(&mut t, c);
        Ok(())
    }

    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError> {
        let t = self.lock()?;
        Ok(LoadedProduct {
            ledger: t.ledger.get(&(provider, event.clone())).cloned(),
            product: t.products.get(&(provider, product.clone())).cloned(),
            price: price.and_then(|p| {
                t.prices
                    .get(&(provider, product.clone(), p.clone()))
                    .cloned()
            }),
        })
    }

    async fn product(
        &self,
        provider: Provider,
        product: &ProductId,
    ) -> Result<Option<Stored<ProductRecord>>, StoreError> {
        Ok(self
            .lock()?
            .products
            .get(&(provider, product.clone()))
            .cloned())
    }

    async fn product_prices(
        &self,
        provider: Provider,
        product: &ProductId,
        after: Option<&PriceId>,
        limit: usize,
    ) -> Result<PricePage, StoreError> {
        let limit = limit.clamp(1, crate::ports::MAX_PRICE_PAGE);
        let t = self.lock()?;
        let mut prices: Vec<(PriceId, PriceRecord)> = t
            .prices
            .iter()
            .filter(|((p, id, price), _)| {
                *p == provider && id == product && after.is_none_or(|a| price > a)
            })
            .take(limit + 1)
            .map(|((_, _, price), s)| (price.clone(), s.value.clone()))
            .collect();
        let more = prices.len() > limit;
        prices.truncate(limit);
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
        let t = self.lock()?;
        Ok(t.product_audit
            .iter()
            .rev()
            .filter(|((p, id, _, _), _)| *p == provider && id == product)
            .take(limit)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn ledger(
        &self,
        provider: Provider,
        event: &EventId,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        Ok(self.lock()?.ledger.get(&(provider, event.clone())).cloned())
    }

    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError> {
        let t = self.lock()?;
        let parked = t
            .ledger
            .values()
            .filter(|r| r.state == LedgerState::Parked)
            .map(|r| {
                let key = listing_sort_key(r.received_at, r.event_id.as_str());
                (key, r.clone())
            })
            .collect();
        Ok(page_of(parked, after, limit, false))
    }

    async fn audit(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let t = self.lock()?;
        Ok(t.audit
            .iter()
            .rev()
            .filter(|((p, c, _, _), _)| *p == provider && c == customer)
            .take(limit)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError> {
        Ok(self
            .lock()?
            .outbox
            .iter()
            .filter(|(_, item)| item.set_aside.is_none())
            .take(limit)
            .map(|((_, id), item)| read_outbox_doc(id, Some(&item.doc)))
            .collect())
    }

    async fn delete_outbox(&self, id: &str) -> Result<(), StoreError> {
        self.lock()?.outbox.retain(|(_, k), _| k != id);
        Ok(())
    }

    async fn set_aside_outbox(&self, item: &UnreadableOutbox, at: i64) -> Result<(), StoreError> {
        let mut t = self.lock()?;
        if let Some((_, stored)) = t.outbox.iter_mut().find(|((_, k), _)| *k == item.id) {
            stored.set_aside = Some((item.reason.clone(), at));
        }
        Ok(())
    }

    async fn requeue_outbox(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let mut t = self.lock()?;
        let key = t
            .outbox
            .iter()
            .find(|((_, k), item)| k == id && item.set_aside.is_some())
            .map(|(key, _)| key.clone());
        let Some(item) = key.and_then(|key| t.outbox.remove(&key)) else {
            return Ok(false);
        };
        // Pending again from `at`, as the table's index orders it.
        let item = OutboxItem {
            doc: item.doc,
            set_aside: None,
        };
        t.outbox.insert((at, id.to_owned()), item);
        Ok(true)
    }

    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError> {
        let t = self.lock()?;
        let keyed = t
            .outbox
            .iter()
            .filter_map(|((_, id), item)| {
                let (reason, at) = item.set_aside.clone()?;
                let listed = SetAsideOutbox {
                    id: id.clone(),
                    reason,
                    set_aside_at: at,
                };
                Some((listing_sort_key(at, id), listed))
            })
            .collect();
        Ok(page_of(keyed, after, limit, false))
    }
}

/// A queue that keeps what it was sent.
#[derive(Default)]
pub struct InMemoryQueue {
    pub sent: Mutex<Vec<OutboxMessage>>,
}

impl InMemoryQueue {
    /// The ids of the messages sent so far, in order.
    pub fn sent_ids(&self) -> Vec<String> {
        self.sent
            .lock()
            .map(|sent| sent.iter().map(|m| m.id.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Queue for InMemoryQueue {
    async fn send(&self, message: &OutboxMessage) -> Result<(), QueueError> {
        self.sent
            .lock()
            .map_err(|_| QueueError::Unavailable("queue lock poisoned".into()))?
            .push(message.clone());
        Ok(())
    }
}

/// Fixed secrets per endpoint, optionally replaced later (to test rotation).
#[derive(Default)]
pub struct StaticSecrets {
    current: Mutex<HashMap<Endpoint, Arc<Vec<WebhookSecret>>>>,
    /// What a refresh would find (simulates a rotation in the secret store).
    next: Mutex<HashMap<Endpoint, Arc<Vec<WebhookSecret>>>>,
}

impl StaticSecrets {
    /// Keyed by endpoint, or by Stripe family.
    pub fn new<K: Into<Endpoint>>(
        secrets: impl IntoIterator<Item = (K, Vec<WebhookSecret>)>,
    ) -> Self {
        let current = secrets
            .into_iter()
            .map(|(k, s)| (k.into(), Arc::new(s)))
            .collect();
        Self {
            current: Mutex::new(current),
            next: Mutex::new(HashMap::new()),
        }
    }

    /// The same secrets on every Stripe family's endpoint and its Connect endpoint.
    pub fn everywhere(secrets: Vec<WebhookSecret>) -> Self {
        Self::new(
            Family::ALL
                .into_iter()
                .flat_map(|f| [f.endpoint(), f.connect_endpoint()])
                .map(|endpoint| (endpoint, secrets.clone()))
                .collect::<Vec<_>>(),
        )
    }

    /// Stages a rotation that the next `refresh` picks up.
    pub fn rotate(&self, endpoint: impl Into<Endpoint>, secrets: Vec<WebhookSecret>) {
        if let Ok(mut next) = self.next.lock() {
            next.insert(endpoint.into(), Arc::new(secrets));
        }
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn secrets(&self, endpoint: Endpoint) -> Result<Arc<Vec<WebhookSecret>>, SecretsError> {
        let current = self
            .current
            .lock()
            .map_err(|_| SecretsError("lock poisoned".into()))?;
        Ok(current.get(&endpoint).cloned().unwrap_or_default())
    }

    /// Every call is a re-read of the in-memory store: `Changed` when a rotation was staged.
    async fn refresh(
        &self,
        endpoint: Endpoint,
    ) -> Result<crate::ports::RefreshOutcome, SecretsError> {
        let staged = self
            .next
            .lock()
            .map_err(|_| SecretsError("lock poisoned".into()))?
            .remove(&endpoint);
        match staged {
            Some(s) => {
                self.current
                    .lock()
                    .map_err(|_| SecretsError("lock poisoned".into()))?
                    .insert(endpoint, s);
                Ok(crate::ports::RefreshOutcome::Changed)
            }
            None => Ok(crate::ports::RefreshOutcome::Unchanged),
        }
    }
}
