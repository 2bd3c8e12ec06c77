//! `billing create-table`: the table made from its one definition (`schema.rs`), for local
//! runs and tests; in AWS the SAM template owns the table (and `scripts/check-template` holds
//! it to the same definition).

use super::errors::{failed, unavailable};
use super::schema;
use super::store::DynamoBillingStore;
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

impl DynamoBillingStore {
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
