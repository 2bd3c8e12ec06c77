//! The commit: an event's every write in one request, each conditional on what the event read
//! (the ledger item new or parked, each aggregate at its revision), so a concurrent delivery
//! of the same event, or of another event of the same customer, cannot interleave.

use super::errors::{failed, transact_error, unavailable};
use super::item::{
    audit_item, charge_item, customer_item, get_s, invoice_item, ledger_item, n, outbox_item,
    price_item, product_audit_item, product_item, purchase_items, s, user_item, Item,
};
use super::store::{capacity_report, DynamoBillingStore};
use crate::ports::{Commit, LedgerGuard, ProductWrite, StoreError};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::collections::HashMap;

impl DynamoBillingStore {
    /// Writes `c`: a ledger-only commit as one conditional `PutItem`, any other as one
    /// `TransactWriteItems`.
    pub(super) async fn write_commit(&self, c: &Commit) -> Result<(), StoreError> {
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

    /// A put of a versioned item: new, or at the revision it was read at.
    pub(super) fn guarded_put(
        &self,
        item: Item,
        rev: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
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
            .set_item(Some(ledger_item(&c.ledger, &self.retention)));
        let put = match c.guard {
            LedgerGuard::New => put.condition_expression("attribute_not_exists(PK)"),
            LedgerGuard::ReplaceParked => put
                .condition_expression("#state = :parked")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":parked", s("parked")),
        };
        put.build().map_err(unavailable)
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

    /// The transaction's writes, the ledger item first (its failed condition alone means
    /// "already recorded": `errors::transact_error`).
    pub(super) fn commit_items(&self, c: &Commit) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = vec![TransactWriteItem::builder()
            .put(self.ledger_put(c)?)
            .build()];
        if let Some((cust, rev)) = &c.customer {
            items.push(self.guarded_put(customer_item(cust, *rev)?, *rev)?);
        }
        for (user_doc, rev) in &c.users {
            items.push(self.guarded_put(user_item(user_doc, *rev)?, *rev)?);
        }
        if let Some((invoice, rev)) = &c.invoice {
            items.push(self.guarded_put(invoice_item(invoice, *rev)?, *rev)?);
        }
        if let Some((charge, rev)) = &c.charge {
            items.push(self.guarded_put(charge_item(charge, *rev)?, *rev)?);
        }
        for a in &c.audit {
            items.push(self.put(audit_item(a)?, "attribute_not_exists(PK)", None)?);
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
        let audit = product_audit_item(w.provider, &w.product, &w.audit)?;
        items.push(self.put(audit, "attribute_not_exists(PK)", None)?);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::item::tests::record;
    use super::super::store::tests::unsendable_store;
    use super::*;
    use crate::domain::customer::CustomerBilling;
    use crate::domain::ids::{CustomerId, Provider};
    use crate::ports::BillingStore;

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
}
