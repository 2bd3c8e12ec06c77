//! Capacity metering of the DynamoDB store, for tests and benchmarks only (feature `testing`):
//! requests and the capacity units DynamoDB reports through `ReturnConsumedCapacity`, which a
//! production build never asks for.

use super::dynamo::item::item_size;
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests and capacity units spent (for BENCHMARKS.md and the cost assertions of tests).
#[derive(Debug, Default)]
pub struct CapacityMeter {
    requests: AtomicU64,
    /// Thousandths of a capacity unit, so the counters stay atomic integers.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CapacityReading {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl CapacityMeter {
    fn units(milli: &AtomicU64, units: f64) {
        milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// One read request and the read units it reports.
    pub(super) fn record_read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let units = c.read_capacity_units().or(c.capacity_units());
            Self::units(&self.read_milli, units.unwrap_or(0.0));
        }
    }

    /// One write request: the write units it reports or, from backends that report none (moto
    /// for PutItem and TransactWriteItems), `billed()`: the units DynamoDB bills for the
    /// written items.
    pub(super) fn record_write<'a>(
        &self,
        consumed: impl IntoIterator<Item = &'a ConsumedCapacity>,
        billed: impl FnOnce() -> f64,
    ) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reported: f64 = consumed
            .into_iter()
            .map(|c| {
                c.write_capacity_units()
                    .or(c.capacity_units())
                    .unwrap_or(0.0)
            })
            .sum();
        let units = if reported > 0.0 { reported } else { billed() };
        Self::units(&self.write_milli, units);
    }

    /// Returns the totals so far and starts again from zero.
    pub fn take(&self) -> CapacityReading {
        CapacityReading {
            requests: self.requests.swap(0, Ordering::Relaxed),
            read_units: self.read_milli.swap(0, Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.swap(0, Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Write units DynamoDB bills for putting `items`: 1 per started KB of each, doubled in a
/// transaction.
pub(super) fn billed_write_units<'a>(
    items: impl IntoIterator<Item = &'a HashMap<String, AttributeValue>>,
    transactional: bool,
) -> f64 {
    let per_item: usize = items.into_iter().map(|i| item_size(i).div_ceil(1024)).sum();
    (per_item * if transactional { 2 } else { 1 }) as f64
}
