//! CreateTable, DescribeTable, ListTables, UpdateTable and DeleteTable.
//!
//! Tables are created and deleted synchronously: `create_table` returns an
//! `ACTIVE` table (code that waits for `ACTIVE` works unchanged), and
//! `delete_table` returns once the rows are gone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use super::catalogue::{KvState, TableHandle};
use super::error::{Error, Result};
use super::index_ddl::{
    GlobalSecondaryIndexUpdate, after_update, apply_update, check_indexes, describe_indexes,
};
use super::schema::{
    AttributeDefinition, BillingMode, GlobalIndexDefinition, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, LocalIndexDefinition, LocalSecondaryIndex, ProvisionedThroughput,
    StreamSpecification, TableDefinition, TableDescription, TableStatus, check_definitions_used,
    constraint_error, resolve_key, validate_name,
};
use crate::Database;
use crate::storage::WriteBatch;
use crate::value::ScalarType;

/// The most table names one ListTables page returns.
pub const LIST_TABLES_LIMIT_MAX: usize = 100;

/// Builds the description of a table.
pub(crate) fn describe(handle: &TableHandle, status: TableStatus) -> TableDescription {
    let definition = handle.definition();
    let (item_count, table_size_bytes) = handle.counts();
    let (local_secondary_indexes, global_secondary_indexes) = describe_indexes(handle, &definition);
    TableDescription {
        table_name: definition.name.clone(),
        table_status: status,
        table_id: definition.table_id.clone(),
        table_arn: definition.table_arn(),
        key_schema: definition.key.key_schema(),
        attribute_definitions: definition.attribute_definitions.clone(),
        creation_date_time: UNIX_EPOCH + Duration::from_millis(definition.created_at_millis),
        item_count,
        table_size_bytes,
        billing_mode: definition.billing_mode,
        provisioned_throughput: definition.provisioned_throughput,
        stream_specification: definition.stream_specification,
        latest_stream_arn: definition.stream_arn(),
        latest_stream_label: definition.stream_label.clone(),
        local_secondary_indexes,
        global_secondary_indexes,
        partitions: handle.partitions.describe(),
        hot_keys: handle.partitions.hot_keys(),
    }
}

fn check_billing(mode: BillingMode, throughput: Option<ProvisionedThroughput>) -> Result<()> {
    match (mode, throughput) {
        (BillingMode::Provisioned, None) => Err(Error::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and \
             WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        (BillingMode::PayPerRequest, Some(_)) => Err(Error::validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor \
             WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (_, Some(t)) if t.read_capacity_units == 0 || t.write_capacity_units == 0 => {
            Err(Error::validation(
                "One or more parameter values were invalid: ReadCapacityUnits and \
                 WriteCapacityUnits must be at least 1",
            ))
        }
        _ => Ok(()),
    }
}

/// The first token of each partition of `map`, in order: a new stream
/// opens one shard per partition.
fn partition_starts(map: &crate::partition::map::PartitionMap) -> Vec<u64> {
    map.partitions().iter().map(|p| p.start).collect()
}

/// Switches from provisioned to on-demand allowed per rolling day.
pub const ON_DEMAND_SWITCHES_PER_DAY: usize = 4;

/// Records a switch to on-demand at `now_millis`, or refuses it as
/// DynamoDB does when the last 24 hours already had
/// [`ON_DEMAND_SWITCHES_PER_DAY`] of them.
fn record_on_demand_switch(definition: &mut TableDefinition, now_millis: u64) -> Result<()> {
    const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;
    definition
        .on_demand_switches_millis
        .retain(|&at| now_millis.saturating_sub(at) < DAY_MILLIS);
    if definition.on_demand_switches_millis.len() >= ON_DEMAND_SWITCHES_PER_DAY {
        return Err(Error::LimitExceeded(format!(
            "Subscriber limit exceeded: Update to PayPerRequest mode are limited to {} times \
             within 1 day(s) for table: {}",
            ON_DEMAND_SWITCHES_PER_DAY, definition.name
        )));
    }
    definition.on_demand_switches_millis.push(now_millis);
    Ok(())
}

fn check_stream(spec: Option<StreamSpecification>) -> Result<()> {
    match spec {
        Some(StreamSpecification {
            stream_enabled: true,
            stream_view_type: None,
        }) => Err(Error::validation(
            "One or more parameter values were invalid: You must specify a StreamViewType when \
             enabling a stream",
        )),
        Some(StreamSpecification {
            stream_enabled: false,
            stream_view_type: Some(_),
        }) => Err(Error::validation(
            "One or more parameter values were invalid: You cannot specify a StreamViewType \
             when disabling a stream",
        )),
        _ => Ok(()),
    }
}

/// A `create_table` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateTable {
    db: Database,
    table: String,
    key_schema: Vec<KeySchemaElement>,
    attribute_definitions: Vec<AttributeDefinition>,
    billing_mode: BillingMode,
    provisioned_throughput: Option<ProvisionedThroughput>,
    stream_specification: Option<StreamSpecification>,
    local_secondary_indexes: Vec<LocalSecondaryIndex>,
    global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    tags: Vec<super::tags::Tag>,
}

/// What `create_table` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTableOutput {
    /// The new table.
    pub table_description: TableDescription,
}

impl CreateTable {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            key_schema: Vec::new(),
            attribute_definitions: Vec::new(),
            billing_mode: BillingMode::PayPerRequest,
            provisioned_throughput: None,
            stream_specification: None,
            local_secondary_indexes: Vec::new(),
            global_secondary_indexes: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// What an import records of this request (DynamoDB's
    /// `TableCreationParameters`).
    pub(crate) fn creation_parameters(&self) -> super::import::TableCreationParameters {
        super::import::TableCreationParameters {
            table_name: self.table.clone(),
            attribute_definitions: self.attribute_definitions.clone(),
            key_schema: self.key_schema.clone(),
            billing_mode: self.billing_mode,
            provisioned_throughput: self.provisioned_throughput,
            global_secondary_indexes: self.global_secondary_indexes.clone(),
        }
    }

    /// Tags the new table (see [`Database::tag_resource`]).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(super::tags::Tag {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the partition key (HASH) and defines its type.
    pub fn partition_key(self, name: impl Into<String>, scalar: ScalarType) -> Self {
        self.key_element(name, KeyType::Hash, scalar)
    }

    /// Sets the sort key (RANGE) and defines its type.
    pub fn sort_key(self, name: impl Into<String>, scalar: ScalarType) -> Self {
        self.key_element(name, KeyType::Range, scalar)
    }

    fn key_element(
        mut self,
        name: impl Into<String>,
        key_type: KeyType,
        scalar: ScalarType,
    ) -> Self {
        let name = name.into();
        self.key_schema.push(KeySchemaElement {
            attribute_name: name.clone(),
            key_type,
        });
        self.attribute_definition(name, scalar)
    }

    /// The key schema, as DynamoDB's `KeySchema`.
    pub fn key_schema(mut self, schema: impl IntoIterator<Item = KeySchemaElement>) -> Self {
        self.key_schema.extend(schema);
        self
    }

    /// Defines the type of a key attribute of the table or an index.
    pub fn attribute_definition(mut self, name: impl Into<String>, scalar: ScalarType) -> Self {
        self.attribute_definitions.push(AttributeDefinition {
            attribute_name: name.into(),
            attribute_type: scalar,
        });
        self
    }

    /// The attribute definitions, as DynamoDB's `AttributeDefinitions`.
    pub fn attribute_definitions(
        mut self,
        definitions: impl IntoIterator<Item = AttributeDefinition>,
    ) -> Self {
        self.attribute_definitions.extend(definitions);
        self
    }

    /// On-demand or provisioned (default on-demand).
    pub fn billing_mode(mut self, mode: BillingMode) -> Self {
        self.billing_mode = mode;
        self
    }

    /// Provisioned capacity (with `BillingMode::Provisioned`).
    pub fn provisioned_throughput(mut self, read_units: u64, write_units: u64) -> Self {
        self.provisioned_throughput = Some(ProvisionedThroughput {
            read_capacity_units: read_units,
            write_capacity_units: write_units,
        });
        self
    }

    /// The change stream.
    pub fn stream_specification(mut self, spec: StreamSpecification) -> Self {
        self.stream_specification = Some(spec);
        self
    }

    /// Adds a local secondary index (only possible at creation).
    pub fn local_secondary_index(mut self, index: LocalSecondaryIndex) -> Self {
        self.local_secondary_indexes.push(index);
        self
    }

    /// Adds a global secondary index (also possible later, through
    /// `update_table`).
    pub fn global_secondary_index(mut self, index: GlobalSecondaryIndex) -> Self {
        self.global_secondary_indexes.push(index);
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<CreateTableOutput> {
        validate_name(&self.table, "tableName")?;
        let key = resolve_key(&self.key_schema, &self.attribute_definitions, "Table")?;
        check_billing(self.billing_mode, self.provisioned_throughput)?;
        check_stream(self.stream_specification)?;
        let mut used: BTreeSet<&str> = self
            .key_schema
            .iter()
            .map(|e| e.attribute_name.as_str())
            .collect();
        let (local_keys, global_keys) = check_indexes(
            &key,
            &self.attribute_definitions,
            self.billing_mode,
            &self.local_secondary_indexes,
            &self.global_secondary_indexes,
            &mut used,
        )?;
        check_definitions_used(&self.attribute_definitions, &used)?;
        let tags = super::tags::merged(&BTreeMap::new(), self.tags)?;

        let inner = &self.db.inner;
        let _ddl = inner.kv.ddl.lock();
        if inner.kv.table(&self.table).is_ok() {
            return Err(Error::ResourceInUse(format!(
                "Table already exists: {}",
                self.table
            )));
        }
        let mut batch = WriteBatch::new();
        let locals = self.local_secondary_indexes.len() as u32;
        let count = 1 + locals + self.global_secondary_indexes.len() as u32;
        let keyspace = inner.kv.allocate_keyspaces(count, &mut batch);
        let now = inner.clock.since_epoch();
        let created_at_millis = now.as_millis() as u64;
        let stream_label = self
            .stream_specification
            .filter(|s| s.stream_enabled)
            .map(|_| stream_label(now));
        let mut definition = TableDefinition {
            name: self.table.clone(),
            table_id: table_id(&self.table, keyspace, created_at_millis),
            keyspace,
            key,
            attribute_definitions: self.attribute_definitions,
            billing_mode: self.billing_mode,
            provisioned_throughput: self.provisioned_throughput,
            stream_specification: self.stream_specification,
            stream_label,
            stream_keyspace: None,
            time_to_live: None,
            point_in_time_recovery: None,
            local_indexes: self
                .local_secondary_indexes
                .into_iter()
                .zip(local_keys)
                .enumerate()
                .map(|(n, (index, key))| LocalIndexDefinition {
                    index,
                    key,
                    keyspace: keyspace + 1 + n as u32,
                })
                .collect(),
            // A new table is empty: its global indexes need no backfill.
            global_indexes: self
                .global_secondary_indexes
                .into_iter()
                .zip(global_keys)
                .enumerate()
                .map(|(n, (index, key))| GlobalIndexDefinition {
                    index,
                    key,
                    keyspace: keyspace + 1 + locals + n as u32,
                    status: IndexStatus::Active,
                })
                .collect(),
            created_at_millis,
            on_demand_switches_millis: Vec::new(),
            tags,
        };
        let now_nanos = super::partitions::now_nanos(inner);
        let partitions = crate::partition::map::PartitionMap::new(
            inner.partition_options.initial_partitions,
            now_nanos,
        );
        let stream = match self.stream_specification {
            Some(StreamSpecification {
                stream_enabled: true,
                stream_view_type: Some(view),
            }) => Some(super::stream::create_stream(
                inner,
                &mut definition,
                view,
                &partition_starts(&partitions),
                &mut batch,
            )?),
            _ => None,
        };
        KvState::put_definition(&mut batch, &definition)?;
        super::partitions::stage_new_map(&mut batch, keyspace, &partitions);
        inner.engine.write(batch)?;
        if let Some(stream) = stream {
            stream.register(inner);
        }
        let handle = inner.kv.insert(definition, partitions, now_nanos);
        Ok(CreateTableOutput {
            table_description: describe(&handle, TableStatus::Active),
        })
    }
}

/// A stream label: the creation time as DynamoDB formats it
/// (`2024-01-01T00:00:00.000`, UTC).
pub(super) fn stream_label(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) — Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A unique, UUID-shaped table id.
pub(crate) fn table_id(name: &str, keyspace: u32, created_at_millis: u64) -> String {
    use xxhash_rust::xxh3::xxh3_128;
    let mut seed = name.as_bytes().to_vec();
    seed.extend_from_slice(&keyspace.to_be_bytes());
    seed.extend_from_slice(&created_at_millis.to_be_bytes());
    let h = xxh3_128(&seed);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (h >> 96) as u32,
        (h >> 80) as u16,
        (h >> 64) as u16,
        (h >> 48) as u16,
        h as u64 & 0xffff_ffff_ffff
    )
}

/// A `describe_table` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeTable {
    db: Database,
    table: String,
}

/// What `describe_table` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeTableOutput {
    /// The table.
    pub table: TableDescription,
}

impl DescribeTable {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self { db, table }
    }

    /// Runs the request.
    pub fn send(self) -> Result<DescribeTableOutput> {
        let handle = self.db.inner.kv.table(&self.table).map_err(|_| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Table: {} not found",
                self.table
            ))
        })?;
        Ok(DescribeTableOutput {
            table: describe(&handle, TableStatus::Active),
        })
    }
}

/// A `list_tables` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListTables {
    db: Database,
    exclusive_start_table_name: Option<String>,
    limit: Option<usize>,
}

/// What `list_tables` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListTablesOutput {
    /// Table names, sorted.
    pub table_names: Vec<String>,
    /// Where the next page starts, when this one was cut short.
    pub last_evaluated_table_name: Option<String>,
}

impl ListTables {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            exclusive_start_table_name: None,
            limit: None,
        }
    }

    /// Lists names after this one.
    pub fn exclusive_start_table_name(mut self, name: impl Into<String>) -> Self {
        self.exclusive_start_table_name = Some(name.into());
        self
    }

    /// At most this many names (1–100).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<ListTablesOutput> {
        let limit = self.limit.unwrap_or(LIST_TABLES_LIMIT_MAX);
        if limit == 0 {
            return Err(constraint_error(
                "0",
                "limit",
                "Member must have value greater than or equal to 1",
            ));
        }
        if limit > LIST_TABLES_LIMIT_MAX {
            return Err(constraint_error(
                &limit.to_string(),
                "limit",
                "Member must have value less than or equal to 100",
            ));
        }
        let names: Vec<String> = self
            .db
            .inner
            .kv
            .table_names()
            .into_iter()
            .filter(|name| {
                self.exclusive_start_table_name
                    .as_ref()
                    .is_none_or(|start| name > start)
            })
            .collect();
        let more = names.len() > limit;
        let table_names: Vec<String> = names.into_iter().take(limit).collect();
        Ok(ListTablesOutput {
            last_evaluated_table_name: more.then(|| table_names.last().cloned()).flatten(),
            table_names,
        })
    }
}

/// An `update_table` request: billing mode, capacity, stream.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UpdateTable {
    db: Database,
    table: String,
    billing_mode: Option<BillingMode>,
    provisioned_throughput: Option<ProvisionedThroughput>,
    stream_specification: Option<StreamSpecification>,
    attribute_definitions: Vec<AttributeDefinition>,
    index_updates: Vec<GlobalSecondaryIndexUpdate>,
}

/// What `update_table` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateTableOutput {
    /// The table after the change.
    pub table_description: TableDescription,
}

impl UpdateTable {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            billing_mode: None,
            provisioned_throughput: None,
            stream_specification: None,
            attribute_definitions: Vec::new(),
            index_updates: Vec::new(),
        }
    }

    /// Defines the type of a key attribute of an index being created.
    pub fn attribute_definition(mut self, name: impl Into<String>, scalar: ScalarType) -> Self {
        self.attribute_definitions.push(AttributeDefinition {
            attribute_name: name.into(),
            attribute_type: scalar,
        });
        self
    }

    /// Adds a global secondary index; it is CREATING while existing items
    /// are backfilled in the background, then ACTIVE.
    pub fn create_global_secondary_index(mut self, index: GlobalSecondaryIndex) -> Self {
        self.index_updates
            .push(GlobalSecondaryIndexUpdate::Create(index));
        self
    }

    /// Deletes a global secondary index and reclaims its space.
    pub fn delete_global_secondary_index(mut self, index_name: impl Into<String>) -> Self {
        self.index_updates.push(GlobalSecondaryIndexUpdate::Delete {
            index_name: index_name.into(),
        });
        self
    }

    /// Changes a provisioned global index's read and write capacity.
    pub fn update_global_secondary_index(
        mut self,
        index_name: impl Into<String>,
        read_units: u64,
        write_units: u64,
    ) -> Self {
        self.index_updates.push(GlobalSecondaryIndexUpdate::Update {
            index_name: index_name.into(),
            provisioned_throughput: ProvisionedThroughput {
                read_capacity_units: read_units,
                write_capacity_units: write_units,
            },
        });
        self
    }

    /// DynamoDB's `GlobalSecondaryIndexUpdates` (one create, update or
    /// delete per call).
    pub fn global_secondary_index_updates(
        mut self,
        updates: impl IntoIterator<Item = GlobalSecondaryIndexUpdate>,
    ) -> Self {
        self.index_updates.extend(updates);
        self
    }

    /// Switches the billing mode.
    pub fn billing_mode(mut self, mode: BillingMode) -> Self {
        self.billing_mode = Some(mode);
        self
    }

    /// Sets provisioned capacity.
    pub fn provisioned_throughput(mut self, read_units: u64, write_units: u64) -> Self {
        self.provisioned_throughput = Some(ProvisionedThroughput {
            read_capacity_units: read_units,
            write_capacity_units: write_units,
        });
        self
    }

    /// Enables or disables the stream.
    pub fn stream_specification(mut self, spec: StreamSpecification) -> Self {
        self.stream_specification = Some(spec);
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<UpdateTableOutput> {
        if self.billing_mode.is_none()
            && self.provisioned_throughput.is_none()
            && self.stream_specification.is_none()
            && self.index_updates.is_empty()
        {
            return Err(Error::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, \
                 GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        let inner = &self.db.inner;
        let _ddl = inner.kv.ddl.lock();
        let handle = inner.kv.table(&self.table)?;
        let mut definition = (*handle.definition()).clone();
        let mode = self.billing_mode.unwrap_or(definition.billing_mode);
        let throughput = match (mode, self.provisioned_throughput) {
            (BillingMode::PayPerRequest, None) => None,
            (BillingMode::Provisioned, None) => definition.provisioned_throughput,
            (_, given) => given,
        };
        check_billing(mode, throughput)?;
        check_stream(self.stream_specification)?;
        if definition.billing_mode == BillingMode::Provisioned && mode == BillingMode::PayPerRequest
        {
            let now = inner.clock.since_epoch().as_millis() as u64;
            record_on_demand_switch(&mut definition, now)?;
        }
        let mut stream_change = None;
        if let Some(spec) = self.stream_specification {
            let enabled = definition.stream_label.is_some();
            match (enabled, spec.stream_enabled) {
                (true, true) => {
                    return Err(Error::validation(format!(
                        "Table already has an enabled stream: {}",
                        definition.stream_arn().unwrap_or_default()
                    )));
                }
                (false, false) => {
                    return Err(Error::validation("Table already has no stream enabled"));
                }
                (false, true) => {
                    definition.stream_label = Some(stream_label(inner.clock.since_epoch()));
                    stream_change = spec.stream_view_type.map(Ok);
                }
                (true, false) => {
                    definition.stream_label = None;
                    stream_change = definition.stream_keyspace.take().map(Err);
                }
            }
            definition.stream_specification = Some(spec);
        }
        definition.billing_mode = mode;
        definition.provisioned_throughput = throughput;
        // A new stream is live before any write sees the definition naming
        // it; a disabled one is closed once no write names it any more.
        let mut disabled_stream = None;
        match stream_change {
            Some(Ok(view)) => {
                let mut batch = WriteBatch::new();
                let starts = partition_starts(&handle.partitions.map());
                let stream = super::stream::create_stream(
                    inner,
                    &mut definition,
                    view,
                    &starts,
                    &mut batch,
                )?;
                inner.engine.write(batch)?;
                stream.register(inner);
            }
            Some(Err(keyspace)) => disabled_stream = Some(keyspace),
            None => {}
        }
        let before = handle.definition();
        let mut deleted = None;
        match self.index_updates.len() {
            0 => {
                let mut batch = WriteBatch::new();
                KvState::put_definition(&mut batch, &definition)?;
                inner.engine.write(batch)?;
            }
            1 => {
                let update = self
                    .index_updates
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::validation("GlobalSecondaryIndexUpdates is empty"))?;
                deleted = apply_update(
                    inner,
                    &handle,
                    &mut definition,
                    update,
                    &self.attribute_definitions,
                )?;
            }
            _ => {
                return Err(Error::LimitExceeded(format!(
                    "Subscriber limit exceeded: Only 1 online index can be created or deleted \
                     simultaneously per table: {}",
                    self.table
                )));
            }
        }
        let after = definition.clone();
        {
            // Writes in flight finish with the old definition first.
            let _gate = handle.gate.write();
            handle.set_definition(definition);
        }
        if let Some(keyspace) = disabled_stream {
            super::stream::disable_stream(inner, keyspace)?;
        }
        let mut table_description = describe(&handle, TableStatus::Active);
        table_description.global_secondary_indexes.extend(deleted);
        after_update(inner, &handle, &before, &after)?;
        Ok(UpdateTableOutput { table_description })
    }
}

/// A `delete_table` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteTable {
    db: Database,
    table: String,
}

/// What `delete_table` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteTableOutput {
    /// The table as it was, with status `Deleting`.
    pub table_description: TableDescription,
}

impl DeleteTable {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self { db, table }
    }

    /// Runs the request.
    pub fn send(self) -> Result<DeleteTableOutput> {
        let inner = &self.db.inner;
        let _ddl = inner.kv.ddl.lock();
        let handle = inner.kv.table(&self.table)?;
        let table_description = describe(&handle, TableStatus::Deleting);
        let stream = handle.definition().stream_keyspace;
        inner.kv.drop_table(&inner.engine, &handle)?;
        if let Some(keyspace) = stream {
            // The stream stays readable for the retention period.
            super::stream::disable_stream(inner, keyspace)?;
        }
        Ok(DeleteTableOutput { table_description })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_are_utc_timestamps() {
        assert_eq!(
            stream_label(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000"
        );
        assert_eq!(
            stream_label(Duration::from_millis(1_700_000_000_123)),
            "2023-11-14T22:13:20.123"
        );
    }
}
