//! The index side of CreateTable, UpdateTable and DescribeTable: checking
//! index definitions against DynamoDB's rules, adding a global index to a
//! live table (then backfilled in the background, see `index::backfill`),
//! deleting one, and describing indexes with their live counts.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::catalogue::{KvState, TableHandle, purge_keyspace};
use super::error::{Error, Result};
use super::schema::{
    AttributeDefinition, BillingMode, GlobalIndexDefinition, GlobalSecondaryIndex,
    GlobalSecondaryIndexDescription, IndexProjection, IndexStatus, KeyDefinition,
    LocalSecondaryIndex, LocalSecondaryIndexDescription, MAX_GLOBAL_SECONDARY_INDEXES,
    MAX_LOCAL_SECONDARY_INDEXES, MAX_PROJECTED_NON_KEY_ATTRIBUTES, ProjectionType,
    ProvisionedThroughput, TableDefinition, resolve_global_key, resolve_key, validate_name,
};
use crate::db::DatabaseInner;
use crate::storage::WriteBatch;

/// One change of `UpdateTable`'s `GlobalSecondaryIndexUpdates`.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalSecondaryIndexUpdate {
    /// Adds an index; existing items are backfilled while it is CREATING.
    Create(GlobalSecondaryIndex),
    /// Deletes an index and reclaims its space.
    Delete {
        /// The index to delete.
        index_name: String,
    },
    /// Changes a provisioned index's throughput (takes effect at once).
    Update {
        /// The index to change.
        index_name: String,
        /// Its new read and write capacity.
        provisioned_throughput: ProvisionedThroughput,
    },
}

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::validation(format!(
        "One or more parameter values were invalid: {message}"
    ))
}

/// Checks a projection's shape.
fn check_projection(projection: &IndexProjection) -> Result<()> {
    match (
        projection.projection_type,
        projection.non_key_attributes.is_empty(),
    ) {
        (ProjectionType::Include, true) => Err(invalid(
            "NonKeyAttributes must be specified for projection type INCLUDE",
        )),
        (ProjectionType::All | ProjectionType::KeysOnly, false) => Err(invalid(
            "ProjectionType is ALL or KEYS_ONLY, but NonKeyAttributes is specified",
        )),
        _ => Ok(()),
    }
}

/// Checks the indexes of a table (at creation, or after an update) and
/// resolves their keys; adds their key attributes to `used`.
pub(crate) fn check_indexes<'a>(
    key: &KeyDefinition,
    definitions: &[AttributeDefinition],
    billing_mode: BillingMode,
    locals: &'a [LocalSecondaryIndex],
    globals: &'a [GlobalSecondaryIndex],
    used: &mut BTreeSet<&'a str>,
) -> Result<(Vec<KeyDefinition>, Vec<KeyDefinition>)> {
    if locals.len() > MAX_LOCAL_SECONDARY_INDEXES {
        return Err(invalid(
            "Number of LocalSecondaryIndexes exceeds per-table limit of 5",
        ));
    }
    if globals.len() > MAX_GLOBAL_SECONDARY_INDEXES {
        return Err(invalid(
            "GlobalSecondaryIndex count exceeds the per-table limit of 20",
        ));
    }
    let mut names = BTreeSet::new();
    let mut non_key = 0;
    let mut local_keys = Vec::new();
    for index in locals {
        validate_name(&index.index_name, "localSecondaryIndexes.member.indexName")?;
        if !names.insert(index.index_name.as_str()) {
            return Err(invalid(format!(
                "Duplicate index name: {}",
                index.index_name
            )));
        }
        if key.sort_key.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying \
                 a LocalSecondaryIndex",
            ));
        }
        let index_key = resolve_key(&index.key_schema, definitions, "Index")?;
        if index_key.partition_key.0 != key.partition_key.0 {
            return Err(invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema \
                 for index: {}. index hash key: {}, table hash key: {}",
                index.index_name, index_key.partition_key.0, key.partition_key.0
            )));
        }
        if index_key.sort_key.is_none() {
            return Err(invalid(format!(
                "Index KeySchema does not have a range key for index: {}",
                index.index_name
            )));
        }
        check_projection(&index.projection)?;
        non_key += index.projection.non_key_attributes.len();
        used.extend(index.key_schema.iter().map(|e| e.attribute_name.as_str()));
        local_keys.push(index_key);
    }
    let mut global_keys = Vec::new();
    for index in globals {
        validate_name(&index.index_name, "globalSecondaryIndexes.member.indexName")?;
        if !names.insert(index.index_name.as_str()) {
            return Err(invalid(format!(
                "Duplicate index name: {}",
                index.index_name
            )));
        }
        let index_key = resolve_global_key(&index.key_schema, definitions)?;
        check_projection(&index.projection)?;
        match (billing_mode, &index.provisioned_throughput) {
            (BillingMode::Provisioned, None) => {
                return Err(invalid(format!(
                    "ProvisionedThroughput must be specified for index: {}",
                    index.index_name
                )));
            }
            (BillingMode::PayPerRequest, Some(_)) => {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {} when \
                     BillingMode is PAY_PER_REQUEST",
                    index.index_name
                )));
            }
            _ => {}
        }
        non_key += index.projection.non_key_attributes.len();
        used.extend(index.key_schema.iter().map(|e| e.attribute_name.as_str()));
        global_keys.push(index_key);
    }
    if non_key > MAX_PROJECTED_NON_KEY_ATTRIBUTES {
        return Err(invalid(format!(
            "The number of projected attributes in all indexes exceeds the limit of \
             {MAX_PROJECTED_NON_KEY_ATTRIBUTES}: {non_key}"
        )));
    }
    Ok((local_keys, global_keys))
}

/// The indexes of a table as `describe_table` shows them.
pub(crate) fn describe_indexes(
    handle: &TableHandle,
    definition: &TableDefinition,
) -> (
    Vec<LocalSecondaryIndexDescription>,
    Vec<GlobalSecondaryIndexDescription>,
) {
    let local = definition
        .local_indexes
        .iter()
        .map(|index| {
            let (item_count, index_size_bytes) = handle.index_state(index.keyspace).counts.get();
            LocalSecondaryIndexDescription {
                index_name: index.index.index_name.clone(),
                key_schema: index.key.key_schema(),
                projection: index.index.projection.clone(),
                item_count,
                index_size_bytes,
                index_arn: definition.index_arn(&index.index.index_name),
            }
        })
        .collect();
    let global = definition
        .global_indexes
        .iter()
        .map(|index| {
            let state = handle.index_state(index.keyspace);
            let (item_count, index_size_bytes) = state.counts.get();
            let progress = state.backfill.lock().clone();
            GlobalSecondaryIndexDescription {
                index_name: index.index.index_name.clone(),
                key_schema: index.key.key_schema(),
                projection: index.index.projection.clone(),
                index_status: index.status,
                backfilling: index.status == IndexStatus::Creating,
                backfill_items_scanned: progress.as_ref().map_or(0, |p| p.scanned),
                backfill_items_skipped: progress.as_ref().map_or(0, |p| p.skipped),
                provisioned_throughput: index.index.provisioned_throughput,
                item_count,
                index_size_bytes,
                index_arn: definition.index_arn(&index.index.index_name),
            }
        })
        .collect();
    (local, global)
}

/// Keeps only the attribute definitions some key of the table uses.
fn prune_definitions(definition: &mut TableDefinition) {
    let mut used: BTreeSet<String> = definition.key.names().map(str::to_owned).collect();
    for index in &definition.local_indexes {
        used.extend(index.key.names().map(str::to_owned));
    }
    for index in &definition.global_indexes {
        used.extend(index.key.names().map(str::to_owned));
    }
    definition
        .attribute_definitions
        .retain(|d| used.contains(&d.attribute_name));
}

/// Applies one global index update to the table, under the DDL lock.
/// Returns the description of a deleted index (status DELETING).
pub(crate) fn apply_update(
    db: &Arc<DatabaseInner>,
    handle: &TableHandle,
    definition: &mut TableDefinition,
    update: GlobalSecondaryIndexUpdate,
    new_definitions: &[AttributeDefinition],
) -> Result<Option<GlobalSecondaryIndexDescription>> {
    let busy = || {
        Error::LimitExceeded(format!(
            "Subscriber limit exceeded: Only 1 online index can be created or deleted \
             simultaneously per table: {}",
            definition.name
        ))
    };
    match update {
        GlobalSecondaryIndexUpdate::Create(index) => {
            if definition
                .global_indexes
                .iter()
                .any(|i| i.status == IndexStatus::Creating)
            {
                return Err(busy());
            }
            let mut definitions = definition.attribute_definitions.clone();
            for new in new_definitions {
                match definitions
                    .iter()
                    .find(|d| d.attribute_name == new.attribute_name)
                {
                    Some(existing) if existing.attribute_type != new.attribute_type => {
                        return Err(invalid(format!(
                            "Cannot change the type of attribute {} used as a key",
                            new.attribute_name
                        )));
                    }
                    Some(_) => {}
                    None => definitions.push(new.clone()),
                }
            }
            let mut globals: Vec<GlobalSecondaryIndex> = definition
                .global_indexes
                .iter()
                .map(|i| i.index.clone())
                .collect();
            globals.push(index.clone());
            let locals: Vec<LocalSecondaryIndex> = definition
                .local_indexes
                .iter()
                .map(|i| i.index.clone())
                .collect();
            let mut used = BTreeSet::new();
            let (_, global_keys) = check_indexes(
                &definition.key,
                &definitions,
                definition.billing_mode,
                &locals,
                &globals,
                &mut used,
            )?;
            let key = global_keys
                .last()
                .cloned()
                .ok_or_else(|| invalid("no index"))?;
            let mut batch = WriteBatch::new();
            let keyspace = db.kv.allocate_keyspaces(1, &mut batch);
            // The table may be empty: then there is nothing to backfill.
            definition.attribute_definitions = definitions;
            definition.global_indexes.push(GlobalIndexDefinition {
                index,
                key,
                keyspace,
                status: IndexStatus::Creating,
            });
            *handle.index_state(keyspace).backfill.lock() = Some(Default::default());
            KvState::put_definition(&mut batch, definition)?;
            db.engine.write(batch)?;
            Ok(None)
        }
        GlobalSecondaryIndexUpdate::Delete { index_name } => {
            let position = index_position(definition, &index_name)?;
            let (_, mut described) = describe_indexes(handle, definition);
            let mut description = described.swap_remove(position);
            description.index_status = IndexStatus::Deleting;
            description.backfilling = false;
            let removed = definition.global_indexes.remove(position);
            prune_definitions(definition);
            let mut batch = WriteBatch::new();
            KvState::put_definition(&mut batch, definition)?;
            KvState::mark_dropped(&mut batch, removed.keyspace);
            db.engine.write(batch)?;
            Ok(Some(description))
        }
        GlobalSecondaryIndexUpdate::Update {
            index_name,
            provisioned_throughput,
        } => {
            let position = index_position(definition, &index_name)?;
            if definition.billing_mode != BillingMode::Provisioned {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {index_name} when \
                     BillingMode is PAY_PER_REQUEST"
                )));
            }
            if provisioned_throughput.read_capacity_units == 0
                || provisioned_throughput.write_capacity_units == 0
            {
                return Err(invalid(
                    "ReadCapacityUnits and WriteCapacityUnits must be at least 1",
                ));
            }
            let index = &mut definition.global_indexes[position].index;
            if index.provisioned_throughput == Some(provisioned_throughput) {
                // DynamoDB refuses a no-op change, with this text.
                let (read, write) = (
                    provisioned_throughput.read_capacity_units,
                    provisioned_throughput.write_capacity_units,
                );
                return Err(Error::validation(format!(
                    "The provisioned throughput for the index {index_name} will not change. The \
                     requested value equals the current value. Current ReadCapacityUnits \
                     provisioned for index {index_name}: {read}. Requested ReadCapacityUnits: \
                     {read}. Current WriteCapacityUnits provisioned for index {index_name}: \
                     {write}. Requested WriteCapacityUnits: {write}."
                )));
            }
            index.provisioned_throughput = Some(provisioned_throughput);
            let mut batch = WriteBatch::new();
            KvState::put_definition(&mut batch, definition)?;
            db.engine.write(batch)?;
            Ok(None)
        }
    }
}

/// Where the global index `name` is in `definition`, or DynamoDB's error.
fn index_position(definition: &TableDefinition, name: &str) -> Result<usize> {
    definition
        .global_indexes
        .iter()
        .position(|i| i.index.index_name == name)
        .ok_or_else(|| {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Index: {name} not found"
            ))
        })
}

/// After the new definition is published: starts the backfill of a created
/// index, or purges a deleted one's rows.
pub(crate) fn after_update(
    db: &Arc<DatabaseInner>,
    handle: &TableHandle,
    before: &TableDefinition,
    after: &TableDefinition,
) -> Result<()> {
    for index in &after.global_indexes {
        if index.status == IndexStatus::Creating
            && !before
                .global_indexes
                .iter()
                .any(|i| i.keyspace == index.keyspace)
        {
            crate::index::start_backfill(db, &after.name, index.keyspace);
        }
    }
    for index in &before.global_indexes {
        if !after
            .global_indexes
            .iter()
            .any(|i| i.keyspace == index.keyspace)
        {
            handle.forget_index(index.keyspace);
            purge_keyspace(&db.engine, index.keyspace)?;
        }
    }
    Ok(())
}
