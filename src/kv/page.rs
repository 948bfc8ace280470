//! The page reader Query and Scan share: walk a key range, decode items,
//! stop at `Limit` items evaluated or 1 MiB read (counted before the
//! filter, as DynamoDB does), filter, project, count, and say where the
//! next page starts.

use std::ops::Bound;

use super::capacity::read_units;
use super::error::Result;
use super::expr::{Condition, Projection};
use super::keys::{key_map_of, key_of_item};
use super::schema::KeyDefinition;
use super::views::read_item_at;
use crate::db::DatabaseInner;
use crate::storage::Direction;
use crate::value::{Item, decode_item, item_size};

/// The most item bytes one Query or Scan page reads: 1 MiB.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// What a Query or Scan returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Select {
    /// Every attribute (the default without a projection).
    #[default]
    AllAttributes,
    /// The attributes projected into the index queried.
    AllProjectedAttributes,
    /// The projection expression's attributes.
    SpecificAttributes,
    /// Only the count.
    Count,
}

impl Select {
    /// DynamoDB's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllAttributes => "ALL_ATTRIBUTES",
            Self::AllProjectedAttributes => "ALL_PROJECTED_ATTRIBUTES",
            Self::SpecificAttributes => "SPECIFIC_ATTRIBUTES",
            Self::Count => "COUNT",
        }
    }
}

/// How to read one page.
pub(crate) struct PageRequest<'a> {
    pub(crate) start: Bound<Vec<u8>>,
    pub(crate) end: Bound<Vec<u8>>,
    pub(crate) direction: Direction,
    pub(crate) filter: Option<&'a Condition>,
    pub(crate) projection: Option<&'a Projection>,
    pub(crate) count_only: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) key: &'a KeyDefinition,
    /// The index read, if any: its key joins the table's in
    /// `last_evaluated_key`.
    pub(crate) index_key: Option<&'a KeyDefinition>,
    /// Replace each index entry by its base item (a local index read that
    /// wants attributes the index does not store): the table's keyspace.
    pub(crate) fetch_from: Option<u32>,
    pub(crate) consistent: bool,
    /// Hides expired-but-unswept items, like a filter (an option).
    pub(crate) expiry: Option<super::ttl::Expiry>,
}

/// One page read.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) items: Vec<Item>,
    pub(crate) count: usize,
    pub(crate) scanned_count: usize,
    pub(crate) last_evaluated_key: Option<Item>,
    pub(crate) bytes_read: usize,
    /// Read units of the base items fetched for a local index read.
    pub(crate) fetch_units: f64,
    /// The token of the last row read (a Scan meters every partition from
    /// its start to here).
    pub(crate) last_token: Option<u64>,
}

/// Reads one page.
pub(crate) fn read_page(db: &DatabaseInner, request: PageRequest<'_>) -> Result<Page> {
    let mut page = Page::default();
    let snapshot = db.kv.eventual.snapshot(db, request.consistent)?;
    let rows = db.engine.range(
        (request.start, request.end),
        request.direction,
        snapshot.as_deref(),
    )?;
    for row in rows {
        let (row_key, value) = row?;
        page.last_token = Some(super::partitions::row_token(&row_key));
        let mut item = decode_item(&value)?;
        page.scanned_count += 1;
        // An index page is sized on its entries (the projection).
        page.bytes_read += item_size(&item);
        let stop = request
            .limit
            .is_some_and(|limit| page.scanned_count >= limit)
            || page.bytes_read >= MAX_PAGE_BYTES;
        if stop {
            let mut key = key_map_of(request.key, &item);
            if let Some(index_key) = request.index_key {
                key.extend(key_map_of(index_key, &item));
            }
            page.last_evaluated_key = Some(key);
        }
        if let Some(keyspace) = request.fetch_from {
            let row_key = key_of_item(request.key, &item)?.row_key(keyspace);
            // The entry and its item commit together, so the item exists
            // in the same view.
            if let Some(base) = read_item_at(db, &row_key, snapshot.as_deref())? {
                page.fetch_units += read_units(item_size(&base), request.consistent);
                item = base;
            }
        }
        let expired = request.expiry.as_ref().is_some_and(|e| e.hides(&item));
        if !expired && request.filter.is_none_or(|filter| filter.evaluate(&item)) {
            page.count += 1;
            if !request.count_only {
                page.items.push(match request.projection {
                    Some(projection) => projection.apply(&item),
                    None => item,
                });
            }
        }
        if stop {
            break;
        }
    }
    Ok(page)
}

/// Checks `Select` against the projection, with DynamoDB's messages;
/// `prefix` is what the operation puts before them.
pub(crate) fn check_select(
    select: Option<Select>,
    has_projection: bool,
    has_index: bool,
    prefix: &str,
) -> Result<Select> {
    use super::error::Error;
    let select = select.unwrap_or(if has_projection {
        Select::SpecificAttributes
    } else {
        Select::AllAttributes
    });
    match select {
        Select::Count if has_projection => Err(Error::validation(format!(
            "{prefix}Cannot specify the ProjectionExpression when choosing to get only the Count"
        ))),
        Select::AllAttributes if has_projection => Err(Error::validation(format!(
            "{prefix}Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"
        ))),
        Select::SpecificAttributes if !has_projection => Err(Error::validation(format!(
            "{prefix}Must specify the AttributesToGet or ProjectionExpression when choosing to \
             get SPECIFIC_ATTRIBUTES"
        ))),
        Select::AllProjectedAttributes if !has_index => Err(Error::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        select => Ok(select),
    }
}
