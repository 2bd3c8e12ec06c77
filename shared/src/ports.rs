//! Ports: the small traits the pipeline needs from the outside world, and the records that
//! cross them. Adapters (DynamoDB, SQS, Secrets Manager, in-memory twins) implement these.

use crate::domain::access::{Access, SubscriptionAccess};
use crate::domain::catalogue::{PriceRecord, ProductRecord};
use crate::domain::charge::Charge;
use crate::domain::customer::CustomerBilling;
use crate::domain::events::Purchase;
use crate::domain::ids::{
    Account, CustomerId, EventId, InvoiceId, PriceId, ProductId, Provider, UserId,
};
use crate::domain::invoice::Invoice;
use crate::routing::Endpoint;
use crate::secret::WebhookSecret;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The one state of an event in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerState {
    Applied,
    Stale,
    Ignored,
    Parked,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Applied => "applied",
            LedgerState::Stale => "stale",
            LedgerState::Ignored => "ignored",
            LedgerState::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Applied, Self::Stale, Self::Ignored, Self::Parked]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The raw bytes of a parked delivery, gzip-compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedBody {
    /// `None` when the compressed body would not fit in a DynamoDB item (see docs/ARCHITECTURE.md, "Table design"). A listing
    /// reads the index, which holds no bodies: there a kept body is `Some` and empty.
    pub gzip: Option<Vec<u8>>,
    pub sha256: String,
    pub len: usize,
    /// The Stripe-Signature timestamp it was verified with.
    pub signed_at: i64,
}

/// One event's record in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub provider: Provider,
    pub event_id: EventId,
    pub event_type: String,
    pub created: i64,
    pub livemode: bool,
    pub state: LedgerState,
    /// The name of the endpoint it arrived at first ([`crate::routing::Endpoint::name`]; stored
    /// as `family`, the name Stripe's endpoints gave it).
    pub family: String,
    pub received_at: i64,
    pub customer: Option<CustomerId>,
    /// Why it was parked (or the error a replay met).
    pub detail: Option<String>,
    pub parked: Option<ParkedBody>,
}

/// A stored value with its optimistic-concurrency revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub value: T,
    pub rev: u64,
}

/// The key of one billing source in a user's document: `{provider}:{customer}`.
pub fn source_key(provider: Provider, customer: &CustomerId) -> String {
    format!("{provider}:{customer}")
}

/// The source under which a customer's gifts appear in their recipients' documents. It names
/// no provider, so the recipient's audit trail and invoices never list the buyer's.
pub fn gift_source_key(provider: Provider, customer: &CustomerId) -> String {
    format!("gift:{provider}:{customer}")
}

/// The inverse of [`source_key`].
pub fn parse_source_key(key: &str) -> Option<(Provider, CustomerId)> {
    let (provider, customer) = key.split_once(':')?;
    Some((Provider::parse(provider)?, CustomerId::new(customer)))
}

/// What the model keeps per user: each source's subscriptions and the access they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccessDoc {
    pub user: UserId,
    /// Keyed by [`source_key`] (`stripe:cus_…`).
    pub sources: BTreeMap<String, Vec<SubscriptionAccess>>,
    /// Each source's active features (entitlement lookup keys), keyed like `sources`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Vec<String>>,
    /// Each source's one-time purchases, keyed like `sources`: exact totals and the newest
    /// few, never the whole list, so the item does not grow with the customer's history. (An
    /// item written before kept the whole list under `purchases`: that field is ignored, and
    /// the summary is written by the source's next event.)
    #[serde(
        default,
        rename = "purchase_summary",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub purchases: BTreeMap<String, crate::domain::access::PurchaseSummary>,
    pub access: Access,
    /// Number of access changes published so far; the feed's per-user sequence.
    pub feed_seq: u64,
    pub updated_at: i64,
}

/// One audit entry: what one applied event changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub provider: Provider,
    pub customer: CustomerId,
    pub event_id: EventId,
    pub event_type: String,
    pub created: i64,
    pub received_at: i64,
    pub user: Option<UserId>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// Subscriptions whose same-second events could not be ordered (and no API settled it):
    /// the state chosen is deterministic but may not be the provider's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_ties: Vec<String>,
}

/// One audit entry of the catalogue: what one applied event changed in a product. Kept in the
/// product's own partition (catalogue changes belong to no customer and no user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueAudit {
    pub provider: Provider,
    pub product: ProductId,
    pub event_id: EventId,
    pub event_type: String,
    pub created: i64,
    pub received_at: i64,
    /// The piece the event addressed (the product's own fields, or one price), before and after.
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// The piece's id when its same-second events could not be ordered (the state chosen is
    /// deterministic but may not be the provider's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_ties: Vec<String>,
}

/// What a catalogue event writes: the product's own record when the event changed it (a
/// product event; a price event that moves the price counts), the one price it changed, each
/// with the revision it was read at (`None`: it must not exist yet), and the audit entry.
#[derive(Debug, Clone)]
pub struct ProductWrite {
    pub provider: Provider,
    pub product: ProductId,
    pub own: Option<(ProductRecord, Option<u64>)>,
    pub price: Option<PriceWrite>,
    pub audit: CatalogueAudit,
}

/// One price's record to write, with the revision it was read at.
#[derive(Debug, Clone)]
pub struct PriceWrite {
    pub id: PriceId,
    pub record: PriceRecord,
    pub rev: Option<u64>,
}

/// What the consistent read of a catalogue event returns: its ledger record, the product's own
/// record and, for a price event, that price's record.
#[derive(Debug, Clone, Default)]
pub struct LoadedProduct {
    pub ledger: Option<LedgerRecord>,
    pub product: Option<Stored<ProductRecord>>,
    pub price: Option<Stored<PriceRecord>>,
}

/// One page of a product's prices, in id order; `next` is the last id of the page when more
/// may follow (the cursor of the next page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PricePage {
    pub prices: Vec<(PriceId, PriceRecord)>,
    pub next: Option<PriceId>,
}

/// Most prices one page holds.
pub const MAX_PRICE_PAGE: usize = 100;

/// A side effect written with the state change that causes it; a relay delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Stable id: consumers deduplicate by it.
    pub id: String,
    /// Message kind (`access.changed`, `customer.unlinked`, …); also an SQS attribute.
    pub kind: String,
    pub body: serde_json::Value,
    pub created_at: i64,
}

/// An outbox item to set aside: its `doc` cannot be read as a message, or the queue refused it
/// for good. Never sent again unless requeued. The reason names what is wrong without quoting
/// the document (it holds user data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableOutbox {
    pub id: String,
    pub reason: String,
}

/// One pending outbox item: a message to send, or one to set aside.
pub type PendingOutbox = Result<OutboxMessage, UnreadableOutbox>;

/// An item set aside by the relay, for an operator (`GET /outbox/unreadable`): never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAsideOutbox {
    pub id: String,
    pub reason: String,
    pub set_aside_at: i64,
}

/// Reads the `doc` of the outbox item keyed `OUTBOX#{id}`. Every store and the stream relay
/// decode through here, so they agree on what "unreadable" means.
pub fn read_outbox_doc(id: &str, doc: Option<&str>) -> PendingOutbox {
    let unreadable = |reason: String| UnreadableOutbox {
        id: id.to_owned(),
        reason,
    };
    let doc = doc.ok_or_else(|| unreadable("no doc attribute".into()))?;
    let message: OutboxMessage = serde_json::from_str(doc).map_err(|e| {
        // serde_json's Display can quote the offending value; its category and position cannot.
        unreadable(format!(
            "doc is not an outbox message ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if message.id != id {
        // Deleting by the doc's id would miss this item and resend it on every pass.
        return Err(unreadable("doc id differs from its key".into()));
    }
    Ok(message)
}

/// Where a listing resumes: the index sort key (`{time:011}#{id}`) of the last item a page
/// returned. Outside the store it travels only encoded ([`Cursor::encode`]), so callers treat
/// it as opaque and the key format can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// The longest encoded cursor taken: a sort key is a time, `#` and an id of a few hundred bytes.
const MAX_CURSOR_CHARS: usize = 1024;

impl Cursor {
    pub fn after(sort_key: impl Into<String>) -> Self {
        Self(sort_key.into())
    }

    pub fn sort_key(&self) -> &str {
        &self.0
    }

    /// The form a URL carries: base64url without padding.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Reads an encoded cursor back. Anything that is not one this store gave out is refused;
    /// the reason never quotes the input.
    pub fn decode(text: &str) -> Result<Self, String> {
        use base64::Engine;
        if text.is_empty() || text.len() > MAX_CURSOR_CHARS {
            return Err(format!("cursor must be 1 to {MAX_CURSOR_CHARS} characters"));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| "cursor is not one this listing returned".to_owned())?;
        let key = String::from_utf8(bytes)
            .map_err(|_| "cursor is not one this listing returned".to_owned())?;
        let well_formed = key.len() > 12
            && key.as_bytes()[..11].iter().all(u8::is_ascii_digit)
            && key.as_bytes()[11] == b'#';
        if !well_formed {
            return Err("cursor is not one this listing returned".into());
        }
        Ok(Self(key))
    }
}

/// The sort key of a listed item: oldest first by `at`, ties by `id` (the index's `GSI1SK`).
pub fn listing_sort_key(at: i64, id: &str) -> String {
    format!("{at:011}#{id}")
}

/// One page of a listing, and where the next begins (`None`: nothing after it).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// The most items one page returns.
pub const MAX_PAGE: usize = 1000;

/// The page of `items` (each with its sort key, in listing order) after `after`: the in-memory
/// twins list this way, with the same cursor rule as the table.
pub fn page_of<T>(
    mut items: Vec<(String, T)>,
    after: Option<&Cursor>,
    limit: usize,
    newest_first: bool,
) -> Page<T> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if newest_first {
        items.reverse();
    }
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(key, _)| match after {
            None => true,
            Some(c) if newest_first => key.as_str() < c.sort_key(),
            Some(c) => key.as_str() > c.sort_key(),
        })
        .collect();
    let limit = limit.clamp(1, MAX_PAGE);
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = more
        .then(|| rest.last().map(|(key, _)| Cursor::after(key.clone())))
        .flatten();
    Page {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

/// How the ledger item may be written by a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerGuard {
    /// Only if no record of this event exists.
    New,
    /// Only if the record exists and is parked (a replay).
    ReplaceParked,
}

/// Everything one event changes, written atomically or not at all.
#[derive(Debug, Clone)]
pub struct Commit {
    pub ledger: LedgerRecord,
    pub guard: LedgerGuard,
    /// New aggregate and the revision it was read at (`None`: must not exist yet).
    pub customer: Option<(CustomerBilling, Option<u64>)>,
    pub users: Vec<(UserAccessDoc, Option<u64>)>,
    pub audit: Vec<AuditRecord>,
    pub outbox: Vec<OutboxMessage>,
    /// A catalogue event's product pieces, with its audit entry.
    pub product: Option<ProductWrite>,
    /// The event's invoice and the revision it was read at (`None`: must not exist yet).
    pub invoice: Option<(Invoice, Option<u64>)>,
    /// The event's charge item and the revision it was read at (`None`: must not exist yet).
    pub charge: Option<(Charge, Option<u64>)>,
    /// The customer's purchases the event changed, each an item of its own.
    pub purchases: Vec<PurchaseWrite>,
}

/// One purchase's item to write (beside its customer, `PURCHASE#{session}`), with the
/// revision it was read at (`None`: must not exist yet).
#[derive(Debug, Clone)]
pub struct PurchaseWrite {
    pub purchase: Purchase,
    pub rev: Option<u64>,
    /// Also write the pointer from this payment intent to the purchase (the first time the
    /// purchase names it): how a charge's events find the purchase it paid.
    pub intent: Option<String>,
}

/// How an event names a purchase of its customer: its session (or one-off invoice) id, or the
/// payment intent that paid it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PurchaseKey {
    Session(String),
    Intent(String),
}

impl Commit {
    /// A commit that writes only the ledger record (ignored, stale, parked).
    pub fn ledger_only(ledger: LedgerRecord, guard: LedgerGuard) -> Self {
        Self {
            ledger,
            guard,
            customer: None,
            users: vec![],
            audit: vec![],
            outbox: vec![],
            product: None,
            invoice: None,
            charge: None,
            purchases: vec![],
        }
    }

    pub fn is_ledger_only(&self) -> bool {
        self.customer.is_none()
            && self.users.is_empty()
            && self.audit.is_empty()
            && self.outbox.is_empty()
            && self.product.is_none()
            && self.invoice.is_none()
            && self.charge.is_none()
            && self.purchases.is_empty()
    }
}

/// A customer's aggregate with every purchase it bought (its items, and any copies the
/// aggregate still holds from before purchases had items): what the read routes list.
pub async fn customer_with_purchases(
    store: &dyn BillingStore,
    provider: Provider,
    customer: &CustomerId,
) -> Result<Option<CustomerBilling>, StoreError> {
    let Some(stored) = store.customer(provider, customer).await? else {
        return Ok(None);
    };
    let mut state = stored.value;
    for p in store.all_purchases(provider, customer).await? {
        state.purchases.insert(p.session.clone(), p);
    }
    Ok(Some(state))
}

/// The item of its own an event names beside its customer (an invoice, a charge), read in the
/// event's one consistent read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beside<'a> {
    Nothing,
    Invoice(&'a InvoiceId),
    Charge(&'a str),
}

/// What a single consistent read returns.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub ledger: Option<LedgerRecord>,
    pub customer: Option<Stored<CustomerBilling>>,
    pub user: Option<Stored<UserAccessDoc>>,
    /// The event's invoice (`Beside::Invoice` only).
    pub invoice: Option<Stored<Invoice>>,
    /// The event's charge item (`Beside::Charge` only).
    pub charge: Option<Stored<Charge>>,
}

/// Store errors, each transient or permanent (`is_permanent`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The ledger already holds this event (its condition failed): a redelivery.
    #[error("event already recorded")]
    AlreadyRecorded,
    /// Another writer changed an item we read (or a transaction conflict): re-read and retry.
    #[error("concurrent change: {0}")]
    Contention(String),
    /// Throttling, a timeout, a network error, a 5xx: the provider should retry the delivery.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be decoded: a bug or manual edit; never silently overwritten.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// A request the store will never accept as it is (DynamoDB's ValidationException, an item
    /// over 400 KB): retrying cannot help.
    #[error("request refused by the store: {0}")]
    Refused(String),
}

impl StoreError {
    /// Whether retrying can never help (the event is parked instead of answered 503).
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Corrupt(_) | StoreError::Refused(_))
    }
}

/// A provider API call that did not answer (the caller goes on without it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider API unavailable: {0}")]
pub struct ApiError(pub String);

/// The authoritative store: ledger, aggregates, user access, audit trail and outbox.
#[async_trait]
pub trait BillingStore: Send + Sync {
    /// One consistent read of the event's ledger record, its customer, (if named) a user, and
    /// the item `beside` names.
    async fn load(
        &self,
        provider: Provider,
        event: &EventId,
        customer: Option<&CustomerId>,
        user: Option<&UserId>,
        beside: Beside<'_>,
    ) -> Result<Loaded, StoreError>;
    /// A customer's aggregate (strongly consistent; the billing route).
    async fn customer(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Option<Stored<CustomerBilling>>, StoreError>;
    /// The purchases of one customer that `keys` name, each once (strongly consistent; a
    /// payment intent is followed to its purchase). Read after [`Self::load`]: every write of a
    /// purchase also writes its customer, whose revision the commit checks.
    async fn purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
        keys: &[PurchaseKey],
    ) -> Result<Vec<Stored<Purchase>>, StoreError>;
    /// Every purchase item of a customer, in session order (the billing route).
    async fn all_purchases(
        &self,
        provider: Provider,
        customer: &CustomerId,
    ) -> Result<Vec<Purchase>, StoreError>;
    /// A charge's item (strongly consistent).
    async fn charge(
        &self,
        provider: Provider,
        charge: &str,
    ) -> Result<Option<Stored<Charge>>, StoreError>;
    async fn load_user(&self, user: &UserId) -> Result<Option<Stored<UserAccessDoc>>, StoreError>;
    /// One consistent read of a catalogue event's ledger record, its product's own record and
    /// (a price event) the record of `price`.
    async fn load_product(
        &self,
        provider: Provider,
        event: &EventId,
        product: &ProductId,
        price: Option<&PriceId>,
    ) -> Result<LoadedProduct, StoreError>;
    /// A product's own record (the read route).
    async fn product(
        &self,
        provider: Provider,
        product: &ProductId,
    ) -> Result<Option<Stored<ProductRecord>>, StoreError>;
    /// Up to `limit` (at most [`MAX_PRICE_PAGE`]) of a product's prices, in id order, those
    /// after `after` (the cursor of the previous page).
    async fn product_prices(
        &self,
        provider: Provider,
        product: &ProductId,
        after: Option<&PriceId>,
        limit: usize,
    ) -> Result<PricePage, StoreError>;
    /// Audit entries of one product, newest first.
    async fn product_audit(
        &self,
        provider: Provider,
        product: &ProductId,
        limit: usize,
    ) -> Result<Vec<CatalogueAudit>, StoreError>;
    /// A customer's newest invoices (by the invoice's own `created`, then id), newest first;
    /// with `older_than`, only those after that position (the billing route's next page). May
    /// lag a just-committed change by a moment (an index read).
    async fn invoices(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
        older_than: Option<(i64, &InvoiceId)>,
    ) -> Result<Vec<Invoice>, StoreError>;
    /// One atomic write of everything an event changes.
    async fn commit(&self, commit: &Commit) -> Result<(), StoreError>;
    async fn ledger(
        &self,
        provider: Provider,
        event: &EventId,
    ) -> Result<Option<LedgerRecord>, StoreError>;
    /// The oldest `limit` parked events (every page needed to find them).
    async fn parked(&self, limit: usize) -> Result<Vec<LedgerRecord>, StoreError> {
        collect_pages(limit, |after, want| async move {
            self.parked_page(after.as_ref(), want).await
        })
        .await
    }
    /// One page of parked events, oldest first, after `after`.
    async fn parked_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LedgerRecord>, StoreError>;
    /// Audit entries of one source, newest first.
    async fn audit(
        &self,
        provider: Provider,
        customer: &CustomerId,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Outbox items not yet delivered, oldest first; an item that cannot be read comes back as
    /// `Err(UnreadableOutbox)` in its place, never as a failure of the whole read.
    async fn pending_outbox(&self, limit: usize) -> Result<Vec<PendingOutbox>, StoreError>;
    /// Forget a delivered message. Deleting one that is already gone is not an error.
    async fn delete_outbox(&self, id: &str) -> Result<(), StoreError>;
    /// Moves an unreadable (or refused) item out of the pending outbox, keeping it whole for an
    /// operator.
    /// Setting aside one that is already gone is not an error.
    async fn set_aside_outbox(&self, item: &UnreadableOutbox, at: i64) -> Result<(), StoreError>;
    /// Items set aside, oldest first: id, reason and time only (every page needed).
    async fn unreadable_outbox(&self, limit: usize) -> Result<Vec<SetAsideOutbox>, StoreError> {
        collect_pages(limit, |after, want| async move {
            self.unreadable_page(after.as_ref(), want).await
        })
        .await
    }
    /// Puts a set-aside item back in the pending outbox (as pending since `at`), whole, for the
    /// relay to send again. `Ok(false)`: no set-aside item has this id (never set aside, already
    /// requeued, or deleted).
    async fn requeue_outbox(&self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// One page of the items set aside, oldest first, after `after`.
    async fn unreadable_page(
        &self,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<SetAsideOutbox>, StoreError>;
}

/// Every parked event, page after page (what `billing replay --all` replays).
pub async fn all_parked(store: &dyn BillingStore) -> Result<Vec<LedgerRecord>, StoreError> {
    store.parked(usize::MAX).await
}

/// The first `limit` items of a paged listing: `page(after, want)` is asked for page after page
/// (each at most [`MAX_PAGE`]) until `limit` are found or a page says nothing follows. Every
/// listing that can grow is read this one way, so none stops at its first page.
pub async fn collect_pages<T, F, Fut>(limit: usize, mut page: F) -> Result<Vec<T>, StoreError>
where
    F: FnMut(Option<Cursor>, usize) -> Fut + Send,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>> + Send,
    T: Send,
{
    let mut found = Vec::new();
    let mut after = None;
    while found.len() < limit {
        let got = page(after.take(), (limit - found.len()).min(MAX_PAGE)).await?;
        found.extend(got.items);
        match got.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(found)
}

/// Why a send failed: worth another try, or refused for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// Throttling, a timeout, a network error, a 5xx, or a queue that is missing or closed to us
    /// (every message would fail alike): the message stays pending and is sent again later.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue refuses this message as it is and would refuse it again (SQS's code, e.g.
    /// `InvalidParameterValue` for a body over the queue's size limit): retrying cannot help.
    /// `what` names the part refused in our words; SQS's own text is never kept, since it can
    /// quote the refused value (a user id).
    #[error("refused by SQS: {code}{}", what.map(|w| format!(" ({w})")).unwrap_or_default())]
    Refused {
        code: String,
        what: Option<&'static str>,
    },
}

impl QueueError {
    /// Whether sending the same message again can never succeed (it is set aside instead).
    pub fn is_permanent(&self) -> bool {
        matches!(self, QueueError::Refused { .. })
    }
}

/// Where outbox messages go (SQS in AWS and against moto).
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: &OutboxMessage) -> Result<(), QueueError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secrets unavailable: {0}")]
pub struct SecretsError(pub String);

/// What a [`SecretSource::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Nothing was re-read: the last read is too recent, or the secrets are fixed (inline).
    NotDue,
    /// Re-read; the secrets in use are the same (or the new value was invalid, or could not be
    /// read, and the previous secrets stay).
    Unchanged,
    /// Re-read; the secrets in use changed.
    Changed,
}

/// The signing secrets of each endpoint.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secrets(&self, endpoint: Endpoint) -> Result<Arc<Vec<WebhookSecret>>, SecretsError>;
    /// Re-reads after a signature miss (a rotation), unless a read was recent.
    async fn refresh(&self, endpoint: Endpoint) -> Result<RefreshOutcome, SecretsError>;
}

/// What claiming a PayPal transmission id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmissionClaim {
    /// New, expired, or held by the same body (a redelivery): go on.
    Accepted,
    /// Held, unexpired, by another body: refuse.
    OtherBody,
}

/// PayPal transmission ids accepted within the tolerance window (a conditional write with
/// an expiry on DynamoDB; a map in memory).
#[async_trait]
pub trait TransmissionGuard: Send + Sync {
    /// Claims `id` for the body whose SHA-256 (hex) is `body_sha256`, until `expires_at` (Unix
    /// seconds); an existing claim whose `expires_at` is before `now` counts as absent.
    async fn claim(
        &self,
        id: &str,
        body_sha256: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<TransmissionClaim, StoreError>;
}

/// A provider's REST API, read-only: an object's current state as JSON (`Ok(None)`: no such
/// object). Used to settle what the events cannot (same-second ties).
#[async_trait]
pub trait ProviderApi: Send + Sync {
    /// `path` is relative to the API's version root, e.g. `subscriptions/sub_123`; asked as
    /// the connected `account` when there is one (Stripe's `Stripe-Account` header).
    async fn retrieve(
        &self,
        account: Option<Account>,
        path: &str,
    ) -> Result<Option<serde_json::Value>, ApiError>;
}

/// A provider's REST API read for a notification (Stripe's thin events): `GET {base}/{path}`,
/// the path with its version (`v2/core/events/evt_1`, `v1/subscriptions/sub_1`), on behalf of
/// `context` (the connected account the notification belongs to) when there is one. `Ok(None)`:
/// the API has no such object (404).
#[async_trait]
pub trait NotificationApi: Send + Sync {
    async fn get(
        &self,
        path: &str,
        context: Option<&str>,
    ) -> Result<Option<serde_json::Value>, ApiError>;
}

/// Catch-up jobs' checkpoints (`crate::catchup`): one record per (provider, job, kind).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The stored checkpoint, with its `rev`, or `None`.
    async fn load_checkpoint(
        &self,
        provider: Provider,
        job: &str,
        kind: &str,
    ) -> Result<Option<crate::catchup::checkpoint::Checkpoint>, StoreError>;
    /// Stores `checkpoint` if the stored revision is still `checkpoint.rev` (absent for 0) and
    /// returns the new revision; `Contention` when another writer moved it.
    async fn save_checkpoint(
        &self,
        checkpoint: &crate::catchup::checkpoint::Checkpoint,
    ) -> Result<u64, StoreError>;
    /// Every kind's checkpoint of `job`, by kind (what the job did last).
    async fn checkpoints(
        &self,
        provider: Provider,
        job: &str,
    ) -> Result<Vec<crate::catchup::checkpoint::Checkpoint>, StoreError>;
}

/// Wall-clock seconds; injectable so tests can verify old signed vectors.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// A clock that says what it is told.
#[derive(Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn at(t: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(t))
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
