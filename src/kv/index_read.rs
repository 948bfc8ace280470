//! Query and Scan on a secondary index: which index, whether the read is
//! allowed (GSIs: ACTIVE, eventually consistent), the default `Select`,
//! whether a local index read must fetch base items, and where a page
//! resumes (`ExclusiveStartKey` = the table's key plus the index's key).

use std::collections::BTreeSet;

use super::error::{Error, Result};
use super::expr::{Condition, Projection};
use super::keys::key_from_key_map;
use super::page::Select;
use super::schema::{IndexStatus, KeyDefinition, ProjectionType, TableDefinition};
use crate::index::{IndexKind, IndexView, covers, entry_key, projection_names};
use crate::value::Item;

/// The index a read names, after DynamoDB's checks.
fn index_for_read<'d>(
    definition: &'d TableDefinition,
    name: &str,
    consistent: bool,
) -> Result<IndexView<'d>> {
    let index = crate::index::find(definition, name)?;
    if index.kind == IndexKind::Global {
        if consistent {
            return Err(Error::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        if index.status != IndexStatus::Active {
            return Err(Error::validation(format!(
                "Cannot read from backfilling global secondary index: {name}"
            )));
        }
    }
    Ok(index)
}

/// The index a Query or Scan reads (if it names one) and its `Select`,
/// after every check; `prefix` is what the operation puts before
/// DynamoDB's model-constraint messages.
pub(crate) fn read_target<'d>(
    definition: &'d TableDefinition,
    index_name: Option<&str>,
    consistent: bool,
    given: Option<Select>,
    has_projection: bool,
    prefix: &str,
) -> Result<(Option<IndexView<'d>>, Select)> {
    let index = index_name
        .map(|name| index_for_read(definition, name, consistent))
        .transpose()?;
    let mut select = super::page::check_select(given, has_projection, index.is_some(), prefix)?;
    if let Some(index) = &index {
        select = index_select(index, given, has_projection, select)?;
    }
    Ok((index, select))
}

/// The table keyspace a read must fetch base items from, if it reads a
/// local index and wants attributes the index does not store.
pub(crate) fn fetch_keyspace(
    index: Option<&IndexView<'_>>,
    definition: &TableDefinition,
    select: Select,
    projection: Option<&Projection>,
    filter: Option<&Condition>,
) -> Option<u32> {
    index
        .filter(|i| must_fetch(i, &definition.key, select, projection, filter))
        .map(|_| definition.keyspace)
}

/// The `Select` of a read: the given one, or the default — every
/// projected attribute on an index, the projection expression's if any.
/// A global index without an ALL projection cannot return every attribute.
fn index_select(
    index: &IndexView<'_>,
    given: Option<Select>,
    has_projection: bool,
    checked: Select,
) -> Result<Select> {
    let select = match given {
        None if !has_projection => Select::AllProjectedAttributes,
        _ => checked,
    };
    if select == Select::AllAttributes
        && index.kind == IndexKind::Global
        && index.projection.projection_type != ProjectionType::All
    {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not \
             supported for global secondary index {} because its projection type is not ALL",
            index.name
        )));
    }
    Ok(select)
}

/// Whether a local index read must replace entries by their base items:
/// it wants attributes the index does not store.
fn must_fetch(
    index: &IndexView<'_>,
    table_key: &KeyDefinition,
    select: Select,
    projection: Option<&Projection>,
    filter: Option<&Condition>,
) -> bool {
    if index.kind != IndexKind::Local {
        return false;
    }
    let mut wanted: Vec<String> = Vec::new();
    if let Some(filter) = filter {
        filter.visit_paths(&mut |path| wanted.push(path.top_level_name().to_owned()));
    }
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let filter_covered = covers(index, table_key, Some(&wanted));
    let output_covered = match select {
        Select::AllAttributes => covers(index, table_key, None),
        Select::SpecificAttributes => {
            projection.is_none_or(|p| covers(index, table_key, Some(&projection_names(p))))
        }
        Select::AllProjectedAttributes | Select::Count => true,
    };
    !(filter_covered && output_covered)
}

fn start_invalid(detail: Option<&str>) -> Error {
    Error::validation(match detail {
        Some(detail) => format!("The provided starting key is invalid: {detail}"),
        None => "The provided starting key is invalid".to_owned(),
    })
}

/// The index row an `ExclusiveStartKey` names: it must hold exactly the
/// table's key attributes and the index's.
pub(crate) fn start_entry_key(
    table_key: &KeyDefinition,
    index: &IndexView<'_>,
    start: &Item,
) -> Result<Vec<u8>> {
    let expected: BTreeSet<&str> = table_key.names().chain(index.key.names()).collect();
    if start.len() != expected.len() || !start.keys().all(|k| expected.contains(k.as_str())) {
        return Err(start_invalid(None));
    }
    let base: Item = table_key
        .names()
        .filter_map(|name| start.get(name).map(|v| (name.to_owned(), v.clone())))
        .collect();
    // Only the key parts after `keyspace | token` are used.
    let base_row = key_from_key_map(table_key, &base)
        .map_err(|e| start_invalid(Some(&e.message())))?
        .row_key(0);
    entry_key(index, start, &base_row)
        .map_err(|_| start_invalid(Some("The provided key element does not match the schema")))
}
