//! What a table is: key schema, attribute definitions, billing mode,
//! stream specification and local secondary indexes — the types of
//! `create_table`'s request and `describe_table`'s answer — and
//! DynamoDB's rules for them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use crate::value::ScalarType;

/// The most local secondary indexes a table may have.
pub const MAX_LOCAL_SECONDARY_INDEXES: usize = 5;

/// The most global secondary indexes a table may have.
pub const MAX_GLOBAL_SECONDARY_INDEXES: usize = 20;

/// The most `NonKeyAttributes` across all indexes of a table.
pub const MAX_PROJECTED_NON_KEY_ATTRIBUTES: usize = 100;

/// The most attributes of a global secondary index's partition key, and
/// of its sort key (DynamoDB's multi-attribute keys, November 2025).
pub const MAX_INDEX_KEY_ATTRIBUTES: usize = 4;

/// Shortest and longest table or index name.
pub const TABLE_NAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=255;

/// The role of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// The partition key.
    Hash,
    /// The sort key.
    Range,
}

/// One element of a key schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeySchemaElement {
    /// The key attribute's name.
    pub attribute_name: String,
    /// Its role.
    pub key_type: KeyType,
}

/// The type of an attribute used in a key of the table or an index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributeDefinition {
    /// The attribute's name.
    pub attribute_name: String,
    /// Its scalar type.
    pub attribute_type: ScalarType,
}

/// How the table is billed (and, in a later issue, throttled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum BillingMode {
    /// On-demand capacity.
    #[default]
    PayPerRequest,
    /// Provisioned read and write capacity units.
    Provisioned,
}

/// Provisioned capacity units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProvisionedThroughput {
    /// Read capacity units per second.
    pub read_capacity_units: u64,
    /// Write capacity units per second.
    pub write_capacity_units: u64,
}

/// What a stream record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamViewType {
    /// Only the key attributes.
    KeysOnly,
    /// The item after the change.
    NewImage,
    /// The item before the change.
    OldImage,
    /// Both.
    NewAndOldImages,
}

/// Whether the table has a change stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamSpecification {
    /// Whether the stream is on.
    pub stream_enabled: bool,
    /// What records carry (required when enabled).
    pub stream_view_type: Option<StreamViewType>,
}

/// Which attributes an index stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProjectionType {
    /// Every attribute.
    All,
    /// The table's and the index's key attributes.
    KeysOnly,
    /// The keys and the listed non-key attributes.
    Include,
}

/// An index's projection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndexProjection {
    /// Which attributes.
    pub projection_type: ProjectionType,
    /// The non-key attributes of an `Include` projection.
    pub non_key_attributes: Vec<String>,
}

impl IndexProjection {
    /// An `ALL` projection.
    pub fn all() -> Self {
        Self {
            projection_type: ProjectionType::All,
            non_key_attributes: Vec::new(),
        }
    }

    /// A `KEYS_ONLY` projection.
    pub fn keys_only() -> Self {
        Self {
            projection_type: ProjectionType::KeysOnly,
            non_key_attributes: Vec::new(),
        }
    }

    /// An `INCLUDE` projection of the keys and `attributes`.
    pub fn include(attributes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            projection_type: ProjectionType::Include,
            non_key_attributes: attributes.into_iter().map(Into::into).collect(),
        }
    }
}

/// A key schema of a HASH attribute and an optional RANGE attribute.
fn key_schema_of(partition_key: String, sort_key: Option<String>) -> Vec<KeySchemaElement> {
    std::iter::once(KeySchemaElement {
        attribute_name: partition_key,
        key_type: KeyType::Hash,
    })
    .chain(sort_key.map(|name| KeySchemaElement {
        attribute_name: name,
        key_type: KeyType::Range,
    }))
    .collect()
}

/// A local secondary index: the table's partition key with another sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalSecondaryIndex {
    /// The index's name.
    pub index_name: String,
    /// HASH (the table's partition key) and RANGE (the index's sort key).
    pub key_schema: Vec<KeySchemaElement>,
    /// What the index stores.
    pub projection: IndexProjection,
}

impl LocalSecondaryIndex {
    /// An index on the table's `partition_key` sorted by `sort_key`,
    /// projecting everything (change with [`Self::projection`]).
    pub fn new(
        index_name: impl Into<String>,
        partition_key: impl Into<String>,
        sort_key: impl Into<String>,
    ) -> Self {
        Self {
            index_name: index_name.into(),
            key_schema: key_schema_of(partition_key.into(), Some(sort_key.into())),
            projection: IndexProjection::all(),
        }
    }

    /// Sets what the index stores.
    pub fn projection(mut self, projection: IndexProjection) -> Self {
        self.projection = projection;
        self
    }
}

impl GlobalSecondaryIndex {
    /// An index keyed by `partition_key` alone, projecting everything
    /// (add a sort key with [`Self::sort_key`]).
    pub fn new(index_name: impl Into<String>, partition_key: impl Into<String>) -> Self {
        Self {
            index_name: index_name.into(),
            key_schema: key_schema_of(partition_key.into(), None),
            projection: IndexProjection::all(),
            provisioned_throughput: None,
        }
    }

    /// Adds a further partition key attribute: a composite (multi-attribute)
    /// partition key of up to [`MAX_INDEX_KEY_ATTRIBUTES`] attributes, in
    /// the order given. Queries must then give `=` on every one of them.
    pub fn partition_key(mut self, name: impl Into<String>) -> Self {
        let at = self
            .key_schema
            .iter()
            .take_while(|e| e.key_type == KeyType::Hash)
            .count();
        self.key_schema.insert(
            at,
            KeySchemaElement {
                attribute_name: name.into(),
                key_type: KeyType::Hash,
            },
        );
        self
    }

    /// Adds a sort key attribute. Called more than once, it builds a
    /// composite sort key of up to [`MAX_INDEX_KEY_ATTRIBUTES`] attributes,
    /// ordered by the first, then the second, and so on.
    pub fn sort_key(mut self, name: impl Into<String>) -> Self {
        self.key_schema.push(KeySchemaElement {
            attribute_name: name.into(),
            key_type: KeyType::Range,
        });
        self
    }

    /// Sets what the index stores.
    pub fn projection(mut self, projection: IndexProjection) -> Self {
        self.projection = projection;
        self
    }

    /// Sets the index's own capacity (provisioned tables).
    pub fn provisioned_throughput(mut self, read_units: u64, write_units: u64) -> Self {
        self.provisioned_throughput = Some(ProvisionedThroughput {
            read_capacity_units: read_units,
            write_capacity_units: write_units,
        });
        self
    }
}

/// A global secondary index: its own partition key and optional sort key,
/// each of one attribute or (composite keys) up to four.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GlobalSecondaryIndex {
    /// The index's name.
    pub index_name: String,
    /// 1–4 HASH elements, then 0–4 RANGE elements.
    pub key_schema: Vec<KeySchemaElement>,
    /// What the index stores.
    pub projection: IndexProjection,
    /// The index's own capacity (provisioned tables).
    pub provisioned_throughput: Option<ProvisionedThroughput>,
}

/// An index's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being built: existing items are being backfilled.
    Creating,
    /// Being changed.
    Updating,
    /// Being deleted.
    Deleting,
    /// Ready for queries.
    Active,
}

/// `describe_table`'s view of a local secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSecondaryIndexDescription {
    /// The index's name.
    pub index_name: String,
    /// HASH (the table's partition key) and RANGE.
    pub key_schema: Vec<KeySchemaElement>,
    /// What the index stores.
    pub projection: IndexProjection,
    /// Entries in the index.
    pub item_count: u64,
    /// The sum of the entries' sizes, in bytes.
    pub index_size_bytes: u64,
    /// The ARN-like id.
    pub index_arn: String,
}

/// `describe_table`'s view of a global secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalSecondaryIndexDescription {
    /// The index's name.
    pub index_name: String,
    /// HASH and optional RANGE.
    pub key_schema: Vec<KeySchemaElement>,
    /// What the index stores.
    pub projection: IndexProjection,
    /// CREATING while existing items are backfilled, then ACTIVE.
    pub index_status: IndexStatus,
    /// Whether existing items are being added to the index.
    pub backfilling: bool,
    /// Base items examined by the backfill so far (while it runs).
    pub backfill_items_scanned: u64,
    /// Items the backfill left out because an index key attribute had the
    /// wrong type, was empty or too long (DynamoDB's silent violations).
    pub backfill_items_skipped: u64,
    /// The index's own capacity (provisioned tables).
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// Entries in the index.
    pub item_count: u64,
    /// The sum of the entries' sizes, in bytes.
    pub index_size_bytes: u64,
    /// The ARN-like id.
    pub index_arn: String,
}

/// A table's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableStatus {
    /// Being created.
    Creating,
    /// Ready.
    Active,
    /// Being changed.
    Updating,
    /// Being deleted.
    Deleting,
}

/// The resolved key of a table or index: names and types.
///
/// Tables and local indexes have one partition key attribute and at most
/// one sort key attribute. A global index may have composite keys: the
/// further attributes are in `more_partition_keys` and `more_sort_keys`,
/// and its entries are keyed by the concatenated (self-delimiting)
/// encodings, so they sort by the first attribute, then the second.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyDefinition {
    /// The (first) partition key attribute's name and type.
    pub partition_key: (String, ScalarType),
    /// The (first) sort key attribute's name and type, if any.
    pub sort_key: Option<(String, ScalarType)>,
    /// The partition key attributes after the first (composite keys of
    /// global indexes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_partition_keys: Vec<(String, ScalarType)>,
    /// The sort key attributes after the first (composite keys of global
    /// indexes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_sort_keys: Vec<(String, ScalarType)>,
}

impl KeyDefinition {
    /// A key of one partition key attribute and an optional sort key.
    pub fn simple(
        partition_key: (String, ScalarType),
        sort_key: Option<(String, ScalarType)>,
    ) -> Self {
        Self {
            partition_key,
            sort_key,
            more_partition_keys: Vec::new(),
            more_sort_keys: Vec::new(),
        }
    }

    /// The partition key attributes, in key schema order.
    pub fn partition_attributes(&self) -> impl Iterator<Item = (&str, ScalarType)> {
        std::iter::once(&self.partition_key)
            .chain(&self.more_partition_keys)
            .map(|(name, scalar)| (name.as_str(), *scalar))
    }

    /// The sort key attributes, in key schema order.
    pub fn sort_attributes(&self) -> impl Iterator<Item = (&str, ScalarType)> {
        self.sort_key
            .iter()
            .chain(&self.more_sort_keys)
            .map(|(name, scalar)| (name.as_str(), *scalar))
    }

    /// Whether either key has more than one attribute.
    pub fn is_composite(&self) -> bool {
        !self.more_partition_keys.is_empty() || !self.more_sort_keys.is_empty()
    }

    /// The key attribute names, partition key first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.partition_attributes()
            .chain(self.sort_attributes())
            .map(|(name, _)| name)
    }

    /// The expression layer's view of the schema.
    pub(crate) fn expr_schema(&self) -> crate::kv::expr::KeySchema<'_> {
        crate::kv::expr::KeySchema {
            partition_keys: self.partition_attributes().collect(),
            sort_keys: self.sort_attributes().collect(),
        }
    }

    /// The key schema elements describing this key.
    pub fn key_schema(&self) -> Vec<KeySchemaElement> {
        let element = |name: &str, key_type| KeySchemaElement {
            attribute_name: name.to_owned(),
            key_type,
        };
        self.partition_attributes()
            .map(|(name, _)| element(name, KeyType::Hash))
            .chain(
                self.sort_attributes()
                    .map(|(name, _)| element(name, KeyType::Range)),
            )
            .collect()
    }
}

/// A local secondary index as stored in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalIndexDefinition {
    /// The definition as given.
    pub index: LocalSecondaryIndex,
    /// The index key (the table's partition key, the index's sort key).
    pub key: KeyDefinition,
    /// The keyspace its rows live in.
    pub keyspace: u32,
}

/// A global secondary index as stored in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalIndexDefinition {
    /// The definition as given.
    pub index: GlobalSecondaryIndex,
    /// The index key.
    pub key: KeyDefinition,
    /// The keyspace its rows live in.
    pub keyspace: u32,
    /// `Creating` until its backfill finished, then `Active`.
    pub status: IndexStatus,
}

/// Everything the catalogue stores about a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDefinition {
    /// The name.
    pub name: String,
    /// A unique id (never reused, unlike names).
    pub table_id: String,
    /// The keyspace its items live in.
    pub keyspace: u32,
    /// The primary key.
    pub key: KeyDefinition,
    /// The attribute definitions as given.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// Billing mode.
    pub billing_mode: BillingMode,
    /// Provisioned capacity (provisioned mode).
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// The stream specification, if one was given.
    pub stream_specification: Option<StreamSpecification>,
    /// The label of the current stream (its creation time), if enabled.
    pub stream_label: Option<String>,
    /// The keyspace of the current stream's records, if enabled.
    #[serde(default)]
    pub stream_keyspace: Option<u32>,
    /// The time-to-live setting, once `update_time_to_live` was called.
    #[serde(default)]
    pub time_to_live: Option<super::ttl::TimeToLiveSpecification>,
    /// Point-in-time recovery, while enabled (see `kv::pitr`).
    #[serde(default)]
    pub point_in_time_recovery: Option<super::pitr::PitrDefinition>,
    /// Local secondary indexes.
    pub local_indexes: Vec<LocalIndexDefinition>,
    /// Global secondary indexes.
    #[serde(default)]
    pub global_indexes: Vec<GlobalIndexDefinition>,
    /// Creation time, milliseconds since the epoch.
    pub created_at_millis: u64,
    /// When the table last switched from provisioned to on-demand
    /// (milliseconds since the epoch; DynamoDB allows 4 per 24 hours).
    #[serde(default)]
    pub on_demand_switches_millis: Vec<u64>,
    /// The table's tags, by key (`tag_resource`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The ARN-like id of the table called `name` (also of one not yet
/// created: an import's ARN names its target table).
pub(crate) fn table_arn_of(name: &str) -> String {
    format!("arn:nimbus:dynamodb:local:000000000000:table/{name}")
}

impl TableDefinition {
    /// The ARN-like id of the table.
    pub fn table_arn(&self) -> String {
        table_arn_of(&self.name)
    }

    /// The ARN-like id of index `name`.
    pub fn index_arn(&self, name: &str) -> String {
        format!("{}/index/{name}", self.table_arn())
    }

    /// Every keyspace the table owns: its items', then its indexes'.
    pub fn keyspaces(&self) -> Vec<u32> {
        std::iter::once(self.keyspace)
            .chain(self.local_indexes.iter().map(|i| i.keyspace))
            .chain(self.global_indexes.iter().map(|i| i.keyspace))
            .collect()
    }

    /// The ARN-like id of the current stream, if any.
    pub fn stream_arn(&self) -> Option<String> {
        self.stream_label
            .as_ref()
            .map(|label| format!("{}/stream/{label}", self.table_arn()))
    }
}

/// `describe_table`'s answer (and `create_table`'s, `delete_table`'s).
#[derive(Debug, Clone, PartialEq)]
pub struct TableDescription {
    /// The name.
    pub table_name: String,
    /// The state.
    pub table_status: TableStatus,
    /// The unique id.
    pub table_id: String,
    /// The ARN-like id.
    pub table_arn: String,
    /// HASH and optional RANGE.
    pub key_schema: Vec<KeySchemaElement>,
    /// The key attributes' types.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// When the table was created.
    pub creation_date_time: SystemTime,
    /// How many items the table holds.
    pub item_count: u64,
    /// The sum of its items' sizes, in bytes.
    pub table_size_bytes: u64,
    /// Billing mode.
    pub billing_mode: BillingMode,
    /// Provisioned capacity (provisioned mode).
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// The stream specification.
    pub stream_specification: Option<StreamSpecification>,
    /// The current stream's ARN-like id.
    pub latest_stream_arn: Option<String>,
    /// The current stream's label.
    pub latest_stream_label: Option<String>,
    /// Local secondary indexes.
    pub local_secondary_indexes: Vec<LocalSecondaryIndexDescription>,
    /// Global secondary indexes.
    pub global_secondary_indexes: Vec<GlobalSecondaryIndexDescription>,
    /// The table's partitions in token order (a nimbus extension:
    /// DynamoDB does not show them).
    pub partitions: Vec<super::PartitionDescription>,
    /// Partition keys found too hot to split away (most recent last).
    pub hot_keys: Vec<super::HotKey>,
}

/// DynamoDB's "1 validation error detected: Value '{value}' at '{field}'
/// failed to satisfy constraint: {constraint}".
pub(crate) fn constraint_error(value: &str, field: &str, constraint: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: {constraint}"
    ))
}

/// Checks a table or index name against DynamoDB's rules.
pub(crate) fn validate_name(name: &str, field: &str) -> Result<()> {
    if name.len() < *TABLE_NAME_LENGTH.start() {
        return Err(constraint_error(
            name,
            field,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > *TABLE_NAME_LENGTH.end() {
        return Err(constraint_error(
            name,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(constraint_error(
            name,
            field,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// The type `definitions` give the key attribute `name`.
fn key_attribute_type(definitions: &[AttributeDefinition], name: &str) -> Result<ScalarType> {
    definitions
        .iter()
        .find(|d| d.attribute_name == name)
        .map(|d| d.attribute_type)
        .ok_or_else(|| {
            Error::validation(format!(
                "One or more parameter values were invalid: Some index key attributes are not \
                 defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: [{}]",
                definitions
                    .iter()
                    .map(|d| d.attribute_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Checks the lengths of a key schema's attribute names.
fn check_key_names(key_schema: &[KeySchemaElement], what: &str) -> Result<()> {
    for element in key_schema {
        if element.attribute_name.is_empty() {
            return Err(Error::validation("Empty attribute name"));
        }
        if element.attribute_name.len() > 255 {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: {what} key attribute names must be \
                 at most 255 bytes"
            )));
        }
    }
    Ok(())
}

/// Resolves a global secondary index's key schema: one HASH element and
/// an optional RANGE element as for tables, or a composite key of 1–4
/// HASH elements followed by 0–4 RANGE elements.
pub(crate) fn resolve_global_key(
    key_schema: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
) -> Result<KeyDefinition> {
    let hashes = key_schema
        .iter()
        .take_while(|e| e.key_type == KeyType::Hash)
        .count();
    if hashes == 0 || (hashes == 1 && key_schema.len() <= 2) {
        return resolve_key(key_schema, definitions, "Index");
    }
    if key_schema.len() > 2 * MAX_INDEX_KEY_ATTRIBUTES {
        return Err(constraint_error(
            "KeySchema",
            "keySchema",
            "Member must have length less than or equal to 8",
        ));
    }
    let (hash, range) = key_schema.split_at(hashes);
    if range.iter().any(|e| e.key_type == KeyType::Hash) {
        return Err(Error::validation(
            "Invalid KeySchema: every HASH KeySchemaElement must come before the RANGE \
             KeySchemaElements",
        ));
    }
    for (elements, kind) in [(hash, "HASH"), (range, "RANGE")] {
        if elements.len() > MAX_INDEX_KEY_ATTRIBUTES {
            return Err(Error::validation(format!(
                "Invalid KeySchema: a global secondary index key can have at most \
                 {MAX_INDEX_KEY_ATTRIBUTES} {kind} KeySchemaElements"
            )));
        }
    }
    check_key_names(key_schema, "Index")?;
    let mut seen = BTreeSet::new();
    if let Some(twice) = key_schema
        .iter()
        .find(|e| !seen.insert(e.attribute_name.as_str()))
    {
        return Err(Error::validation(format!(
            "Invalid KeySchema: Duplicate attribute name in KeySchema: {}",
            twice.attribute_name
        )));
    }
    let resolve = |elements: &[KeySchemaElement]| -> Result<Vec<(String, ScalarType)>> {
        elements
            .iter()
            .map(|e| {
                Ok((
                    e.attribute_name.clone(),
                    key_attribute_type(definitions, &e.attribute_name)?,
                ))
            })
            .collect()
    };
    let mut partition = resolve(hash)?.into_iter();
    let mut sort = resolve(range)?.into_iter();
    let Some(partition_key) = partition.next() else {
        return resolve_key(key_schema, definitions, "Index");
    };
    Ok(KeyDefinition {
        partition_key,
        sort_key: sort.next(),
        more_partition_keys: partition.collect(),
        more_sort_keys: sort.collect(),
    })
}

/// Resolves a key schema against the attribute definitions.
pub(crate) fn resolve_key(
    key_schema: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
    what: &str,
) -> Result<KeyDefinition> {
    let type_of = |name: &str| key_attribute_type(definitions, name);
    check_key_names(key_schema, what)?;
    match key_schema {
        [hash] if hash.key_type == KeyType::Hash => Ok(KeyDefinition::simple(
            (hash.attribute_name.clone(), type_of(&hash.attribute_name)?),
            None,
        )),
        [hash, range] if hash.key_type == KeyType::Hash && range.key_type == KeyType::Range => {
            if hash.attribute_name == range.attribute_name {
                return Err(Error::validation(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same \
                     name",
                ));
            }
            Ok(KeyDefinition::simple(
                (hash.attribute_name.clone(), type_of(&hash.attribute_name)?),
                Some((
                    range.attribute_name.clone(),
                    type_of(&range.attribute_name)?,
                )),
            ))
        }
        [] => Err(constraint_error(
            "[]",
            "keySchema",
            "Member must have length greater than or equal to 1",
        )),
        [_, _, _, ..] => Err(constraint_error(
            "KeySchema",
            "keySchema",
            "Member must have length less than or equal to 2",
        )),
        [first, ..] if first.key_type != KeyType::Hash => Err(Error::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        )),
        _ => Err(Error::validation(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        )),
    }
}

/// Checks that every attribute definition is used by a key of the table
/// or one of its indexes, and that none is defined twice.
pub(crate) fn check_definitions_used(
    definitions: &[AttributeDefinition],
    used: &BTreeSet<&str>,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    for definition in definitions {
        if !seen.insert(definition.attribute_name.as_str()) {
            return Err(Error::validation(
                "Cannot have two attributes with the same name",
            ));
        }
    }
    if seen != *used {
        return Err(Error::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does \
             not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    Ok(())
}
