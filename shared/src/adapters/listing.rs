//! Listings on the table's `Listings` index: no index partition is written by every event, and
//! every listing reads all of its partitions, page after page, in one order.
//!
//! The four listings whose items any event may write (pending outbox messages, parked events,
//! outbox items set aside, email records) are each spread over [`LISTING_SHARDS`] index
//! partition keys, `{LISTING}#{shard:02}`, the shard being FNV-1a of the item's own `PK` modulo
//! the shard count. One index partition takes 1,000 write units a second; docs/ARCHITECTURE.md, "Scale",
//! sizes the count. A page queries every shard (and the unsharded key that items written before
//! the sharding still carry) and merges them by `GSI1SK`, so the order and the cursor are the
//! listing's, not a shard's.

use super::sdk_error::Describe;
use crate::ports::{Cursor, StoreError, MAX_PAGE};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The index's name in the table. GSI1, its predecessor, projected every attribute (parked
/// bodies of up to 400 KB included); a projection cannot be changed in place, hence a new name.
pub const LISTINGS_INDEX: &str = "Listings";

/// How many index partition keys each listing is spread over (docs/ARCHITECTURE.md, "Scale").
pub const LISTING_SHARDS: u32 = 64;

/// The attributes the index holds beside the keys: what the listings read, never a body.
/// (CloudFormation takes at most 20.)
pub const PROJECTED_ATTRIBUTES: [&str; 20] = [
    // Outbox messages and invoices: the document.
    "doc",
    // Parked ledger records.
    "state",
    "type",
    "created",
    "livemode",
    "family",
    "received_at",
    "customer",
    "detail",
    "raw_sha256",
    "raw_len",
    "signed_at",
    "raw_stored",
    // Outbox items set aside.
    "unreadable_reason",
    "set_aside_at",
    // Email records.
    "email",
    "provider",
    "object",
    "attempts",
    "updated_at",
];

/// A listing kept in the index under sharded keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Outbox messages not yet delivered.
    PendingOutbox,
    /// Parked ledger records.
    Parked,
    /// Outbox items the relay set aside.
    SetAside,
    /// Email records.
    Emails,
}

impl Listing {
    /// The unsharded key every item of the listing carried before the sharding.
    fn name(self) -> &'static str {
        match self {
            Listing::PendingOutbox => "OUTBOX",
            Listing::Parked => "PARKED",
            Listing::SetAside => "OUTBOX_UNREADABLE",
            Listing::Emails => "EMAILS",
        }
    }

    /// The index partition key of the item whose table key is `pk`.
    pub fn key_of(self, pk: &str) -> String {
        format!("{}#{:02}", self.name(), shard_of(pk))
    }

    /// Every index partition key the listing reads: its shards, and the unsharded key (items
    /// written before the sharding keep it until they change; nothing writes it any more).
    pub fn partitions(self) -> Vec<String> {
        (0..LISTING_SHARDS)
            .map(|n| format!("{}#{n:02}", self.name()))
            .chain([self.name().to_owned()])
            .collect()
    }
}

/// FNV-1a (64-bit) of `pk`, modulo [`LISTING_SHARDS`]: stable across builds and Rust versions
/// (std's hasher promises neither), so a reader and every writer agree.
pub fn shard_of(pk: &str) -> u32 {
    let hash = pk.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(LISTING_SHARDS)) as u32
}

/// Which end of the listing comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// What one shard gave: its items in order, and whether it holds more after them.
struct ShardRead {
    items: Vec<Item>,
    more: bool,
}

fn sort_key(item: &Item) -> &str {
    item.get("GSI1SK")
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// The first `limit` items of the listing after `after`, over every shard, and the cursor of
/// the next page. Each shard is read up to `limit` items (following DynamoDB's 1 MB pages), so
/// an item a shard did not return sorts after all `limit` it did: the merge's first `limit`
/// are exact.
pub async fn page(
    client: &Client,
    table: &str,
    listing: Listing,
    after: Option<&Cursor>,
    limit: usize,
    order: Order,
) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut reads = tokio::task::JoinSet::new();
    for partition in listing.partitions() {
        let (client, table) = (client.clone(), table.to_owned());
        let after = after.map(|c| c.sort_key().to_owned());
        reads.spawn(
            async move { read_shard(&client, &table, partition, after, limit, order).await },
        );
    }
    let mut merged = Vec::new();
    let mut more = false;
    while let Some(joined) = reads.join_next().await {
        let shard = joined.map_err(|e| StoreError::Unavailable(format!("listing read: {e}")))??;
        more |= shard.more;
        merged.extend(shard.items);
    }
    merged.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    if order == Order::NewestFirst {
        merged.reverse();
    }
    more |= merged.len() > limit;
    merged.truncate(limit);
    let next = if more {
        merged.last().map(|i| Cursor::after(sort_key(i)))
    } else {
        None
    };
    Ok((merged, next))
}

/// Up to `limit` items of one index partition after `after`, page after page.
async fn read_shard(
    client: &Client,
    table: &str,
    partition: String,
    after: Option<String>,
    limit: usize,
    order: Order,
) -> Result<ShardRead, StoreError> {
    let condition = match (&after, order) {
        (None, _) => "GSI1PK = :pk",
        (Some(_), Order::OldestFirst) => "GSI1PK = :pk AND GSI1SK > :after",
        (Some(_), Order::NewestFirst) => "GSI1PK = :pk AND GSI1SK < :after",
    };
    let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(partition))]);
    if let Some(a) = after {
        values.insert(":after".to_owned(), AttributeValue::S(a));
    }
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(LISTINGS_INDEX)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(order == Order::OldestFirst)
            .limit((limit - items.len()) as i32)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(e.describe()))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if items.len() < limit => start = Some(key.clone()),
            Some(_) => return Ok(ShardRead { items, more: true }),
            None => return Ok(ShardRead { items, more: false }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every listing's items spread over its shards: 10,000 different items land on all 64
    /// keys, none on the unsharded key, and no key takes more than twice its share.
    #[test]
    fn different_items_write_different_index_keys_within_the_shard_space() {
        for listing in [
            Listing::PendingOutbox,
            Listing::Parked,
            Listing::SetAside,
            Listing::Emails,
        ] {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for i in 0..10_000 {
                *counts
                    .entry(listing.key_of(&format!("OUTBOX#chg_{i}")))
                    .or_default() += 1;
            }
            let readable: HashSet<String> = listing.partitions().into_iter().collect();
            assert_eq!(counts.len(), LISTING_SHARDS as usize, "{listing:?}");
            assert!(counts.keys().all(|k| readable.contains(k)), "{listing:?}");
            assert!(!counts.contains_key(listing.name()), "{listing:?}");
            let share = 10_000 / LISTING_SHARDS as usize;
            assert!(
                counts.values().all(|&c| c < 2 * share),
                "{listing:?}: {counts:?}"
            );
        }
    }

    /// The shard of a key never changes (it is stored in items): FNV-1a's published values.
    #[test]
    fn the_shard_function_is_fnv_1a() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; of "" the offset basis 0xcbf29ce484222325.
        assert_eq!(shard_of("a"), (0xaf63_dc4c_8601_ec8c_u64 % 64) as u32);
        assert_eq!(shard_of(""), (0xcbf2_9ce4_8422_2325_u64 % 64) as u32);
        assert_eq!(Listing::Parked.key_of("a"), "PARKED#12");
    }

    /// The template's index is the one the code queries and projects what it reads.
    #[test]
    fn the_template_s_index_is_listings_with_this_projection() {
        let template = include_str!("../../../template.yaml");
        assert!(template.contains(&format!("- IndexName: {LISTINGS_INDEX}\n")));
        let start = template.find("NonKeyAttributes:").expect("projection");
        let list: String = template[start..]
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(inside, _)| inside.to_owned())
            .expect("a list");
        let names: Vec<&str> = list.split(',').map(str::trim).collect();
        assert_eq!(names, PROJECTED_ATTRIBUTES);
    }

    #[test]
    fn a_listing_reads_every_shard_and_the_unsharded_key() {
        let keys = Listing::Emails.partitions();
        assert_eq!(keys.len(), LISTING_SHARDS as usize + 1);
        assert_eq!(keys.first().map(String::as_str), Some("EMAILS#00"));
        assert_eq!(keys.last().map(String::as_str), Some("EMAILS"));
    }
}
