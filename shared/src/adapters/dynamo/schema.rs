//! The table's definition, in one place and in CloudFormation's own property shape:
//! `billing create-table` creates the table from it, `billing create-table --print` prints it,
//! and `scripts/check-template` fails when template.yaml's `Table` says anything else (keys,
//! attribute types, indexes and their projections, stream, time to live, billing mode).
//! Settings only AWS has (point-in-time recovery, encryption, deletion protection, the legacy
//! index a stack update may keep) live in the template alone.

use super::super::listing;
use serde::Serialize;

/// The table's properties that the code depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableSchema {
    pub billing_mode: &'static str,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    pub global_secondary_indexes: Vec<IndexSchema>,
    pub stream_specification: StreamSpecification,
    pub time_to_live_specification: TimeToLive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: &'static str,
    /// Every key attribute is a string.
    pub attribute_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: &'static str,
    /// `HASH` or `RANGE`.
    pub key_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexSchema {
    pub index_name: &'static str,
    pub key_schema: Vec<KeyElement>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    /// `INCLUDE`: only what the listings read (never a parked body).
    pub projection_type: &'static str,
    pub non_key_attributes: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    pub stream_view_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: &'static str,
    pub enabled: bool,
}

/// The attribute DynamoDB's time to live reads (parked bodies, ledger records, audit entries
/// that expire).
pub const TTL_ATTRIBUTE: &str = "expires_at";

fn string(name: &'static str) -> AttributeDefinition {
    AttributeDefinition {
        attribute_name: name,
        attribute_type: "S",
    }
}

fn key(hash: &'static str, range: &'static str) -> Vec<KeyElement> {
    vec![
        KeyElement {
            attribute_name: hash,
            key_type: "HASH",
        },
        KeyElement {
            attribute_name: range,
            key_type: "RANGE",
        },
    ]
}

/// The definition every deployment's table has.
pub fn table_schema() -> TableSchema {
    TableSchema {
        billing_mode: "PAY_PER_REQUEST",
        attribute_definitions: vec![
            string("PK"),
            string("SK"),
            string("GSI1PK"),
            string("GSI1SK"),
        ],
        key_schema: key("PK", "SK"),
        global_secondary_indexes: vec![IndexSchema {
            index_name: listing::LISTINGS_INDEX,
            key_schema: key("GSI1PK", "GSI1SK"),
            projection: Projection {
                projection_type: "INCLUDE",
                non_key_attributes: listing::PROJECTED_ATTRIBUTES.to_vec(),
            },
        }],
        stream_specification: StreamSpecification {
            stream_view_type: "NEW_IMAGE",
        },
        time_to_live_specification: TimeToLive {
            attribute_name: TTL_ATTRIBUTE,
            enabled: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_prints_in_cloudformation_property_names() {
        let printed = serde_json::to_value(table_schema()).expect("json");
        assert_eq!(printed["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(
            printed["KeySchema"],
            serde_json::json!([
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"}
            ])
        );
        let index = &printed["GlobalSecondaryIndexes"][0];
        assert_eq!(index["IndexName"], "Listings");
        assert_eq!(index["Projection"]["ProjectionType"], "INCLUDE");
        assert_eq!(
            index["Projection"]["NonKeyAttributes"]
                .as_array()
                .map(Vec::len),
            Some(listing::PROJECTED_ATTRIBUTES.len())
        );
        assert_eq!(
            printed["TimeToLiveSpecification"],
            serde_json::json!({"AttributeName": "expires_at", "Enabled": true})
        );
    }

    #[test]
    fn every_key_attribute_is_defined_once() {
        let schema = table_schema();
        let defined: Vec<&str> = schema
            .attribute_definitions
            .iter()
            .map(|a| a.attribute_name)
            .collect();
        let mut keys: Vec<&str> = schema
            .key_schema
            .iter()
            .chain(
                schema
                    .global_secondary_indexes
                    .iter()
                    .flat_map(|i| &i.key_schema),
            )
            .map(|k| k.attribute_name)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut sorted = defined.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, keys, "DynamoDB refuses definitions no key uses");
        assert_eq!(sorted.len(), defined.len());
    }
}
