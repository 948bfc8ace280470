//! The query cache's reads: `query` and `scan`, one cached page per
//! canonical request. Writes leave cached pages alone (DAX); in the opt-in
//! invalidation mode a page is first registered under its partition key
//! (a Query of the table) or its table (a Scan, or a Query of a secondary
//! index), so a write can drop it.

use std::sync::Arc;

use super::keys::{KeyKind, KeyWriter, key_definition, partition_tag, table_tag};
use super::request::{
    ExpressionAttributes, expression_attribute_setters, field_setters, text_setters,
    with_attributes,
};
use super::stats::Counter;
use super::{Accelerator, CachedPage, Shared};
use crate::kv::expr::{self, Placeholders};
use crate::kv::{Items, Paged, QueryOutput, Result, ReturnConsumedCapacity, ScanOutput, Select};
use crate::value::Item;

impl Shared {
    /// The page of the request with canonical key `key`, from the query
    /// cache or, on a miss, from `load` (one read however many callers miss
    /// at once). `tag` names the page's partition or table for the opt-in
    /// invalidation mode (`None`: the request cannot be tagged and is
    /// passed through).
    fn find_page(
        &self,
        key: Vec<u8>,
        table: &str,
        capacity: ReturnConsumedCapacity,
        tag: impl FnOnce() -> Option<Vec<u8>>,
        load: impl FnOnce() -> Result<QueryOutput>,
    ) -> Result<QueryOutput> {
        let key: Arc<[u8]> = Arc::from(key);
        let tag = match &self.tags {
            None => None,
            Some(tags) => {
                let Some(tag) = tag() else {
                    self.counters.add(Counter::PassThrough, 1);
                    return load();
                };
                tags.register(tag.clone(), &key, &self.queries);
                Some((tags, tag))
            }
        };
        let mut loaded = None;
        let page = self.queries.get_or_load(Arc::clone(&key), |_| {
            let output = load()?;
            loaded = Some(output.consumed_capacity);
            Ok::<_, crate::kv::Error>(Arc::new(CachedPage {
                items: output.items,
                count: output.count,
                scanned_count: output.scanned_count,
                last_evaluated_key: output.last_evaluated_key,
            }))
        })?;
        if let Some((tags, tag)) = tag
            && !tags.is_registered(&tag, &key)
        {
            self.queries.remove(&key[..]);
        }
        let hit = loaded.is_none();
        self.counters.add(
            if hit {
                Counter::QueryHit
            } else {
                Counter::QueryMiss
            },
            1,
        );
        Ok(QueryOutput {
            items: page.items.clone(),
            count: page.count,
            scanned_count: page.scanned_count,
            last_evaluated_key: page.last_evaluated_key.clone(),
            consumed_capacity: match loaded {
                Some(capacity) => capacity,
                None => self.no_capacity(capacity, table),
            },
        })
    }
}

/// A `query` request through the accelerator (query cache).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Query {
    accelerator: Accelerator,
    table: String,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    filter_expression: Option<String>,
    projection_expression: Option<String>,
    attributes: ExpressionAttributes,
    scan_index_forward: bool,
    limit: Option<usize>,
    exclusive_start_key: Option<Item>,
    select: Option<Select>,
    consistent_read: bool,
    return_consumed_capacity: ReturnConsumedCapacity,
}

expression_attribute_setters!(Query);
text_setters!(Query {
    /// Reads a secondary index of the table instead of the table.
    index_name,
    /// The key condition: `=` on the partition key, optionally one
    /// condition on the sort key.
    key_condition_expression,
    /// A filter applied after reading (it may not name key attributes).
    filter_expression,
    /// Which attributes to return.
    projection_expression,
});
field_setters!(Query {
    /// Ascending sort key order (true, the default) or descending.
    scan_index_forward: bool,
    /// Whether to read the latest committed state: `true` passes the
    /// request through to the table, uncached.
    consistent_read: bool,
    /// Whether to report consumed capacity (0 units when served from the
    /// cache).
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl Query {
    pub(super) fn new(accelerator: Accelerator, table: String) -> Self {
        Self {
            accelerator,
            table,
            index_name: None,
            key_condition_expression: None,
            filter_expression: None,
            projection_expression: None,
            attributes: ExpressionAttributes::default(),
            scan_index_forward: true,
            limit: None,
            exclusive_start_key: None,
            select: None,
            consistent_read: false,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// At most this many items are evaluated (read before the filter).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after this key (a previous page's `last_evaluated_key`).
    pub fn exclusive_start_key(mut self, key: impl Into<Item>) -> Self {
        self.exclusive_start_key = Some(key.into());
        self
    }

    /// What to return.
    pub fn select(mut self, select: Select) -> Self {
        self.select = Some(select);
        self
    }

    /// The same request sent to the table.
    fn to_table(&self) -> crate::kv::Query {
        let mut request = self
            .accelerator
            .shared
            .db
            .query(self.table.clone())
            .scan_index_forward(self.scan_index_forward)
            .consistent_read(self.consistent_read)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(index) = &self.index_name {
            request = request.index_name(index.clone());
        }
        if let Some(condition) = &self.key_condition_expression {
            request = request.key_condition_expression(condition.clone());
        }
        if let Some(filter) = &self.filter_expression {
            request = request.filter_expression(filter.clone());
        }
        if let Some(projection) = &self.projection_expression {
            request = request.projection_expression(projection.clone());
        }
        if let Some(limit) = self.limit {
            request = request.limit(limit);
        }
        if let Some(start) = &self.exclusive_start_key {
            request = request.exclusive_start_key(start.clone());
        }
        if let Some(select) = self.select {
            request = request.select(select);
        }
        with_attributes!(request, self.attributes)
    }

    /// The canonical request: every parameter that changes the page.
    fn cache_key(&self) -> Vec<u8> {
        KeyWriter::new(KeyKind::Query)
            .text(&self.table)
            .optional_text(self.index_name.as_deref())
            .optional_text(self.key_condition_expression.as_deref())
            .optional_text(self.filter_expression.as_deref())
            .optional_text(self.projection_expression.as_deref())
            .names(self.attributes.names.as_ref())
            .values(self.attributes.values.as_ref())
            .number(u64::from(self.scan_index_forward))
            .optional_number(self.limit.map(|limit| limit as u64))
            .optional_item(self.exclusive_start_key.as_ref())
            .optional_text(self.select.map(Select::as_str))
            .finish()
    }

    /// The tag of the partition this query reads, if its key condition
    /// parses against the table's key. A query of a secondary index is
    /// tagged with its table: a write to any partition may change it.
    fn partition_tag(&self) -> Option<Vec<u8>> {
        if self.index_name.is_some() {
            return Some(table_tag(&self.table));
        }
        let definition = key_definition(&self.accelerator.shared.db, &self.table).ok()?;
        let schema = definition.expr_schema();
        let no_names = Default::default();
        let no_values = Default::default();
        let mut placeholders = Placeholders::new(
            self.attributes.names.as_ref().unwrap_or(&no_names),
            self.attributes.values.as_ref().unwrap_or(&no_values),
        )
        .ok()?;
        let text = self.key_condition_expression.as_deref()?;
        let condition = expr::parse_key_condition(text, &mut placeholders, &schema).ok()?;
        partition_tag(&self.table, condition.partition_value())
    }

    /// Every matching item, reading page after page through the query
    /// cache as the iterator goes (each page is cached on its own).
    pub fn items(self) -> Items<Self> {
        Items::new(self)
    }

    /// Runs the request: one page.
    pub fn send(&self) -> Result<QueryOutput> {
        let shared = &self.accelerator.shared;
        if self.consistent_read {
            shared.counters.add(Counter::PassThrough, 1);
            return self.to_table().send();
        }
        shared.find_page(
            self.cache_key(),
            &self.table,
            self.return_consumed_capacity,
            || self.partition_tag(),
            || self.to_table().send(),
        )
    }
}

impl Paged for Query {
    fn page(&self) -> Result<QueryOutput> {
        self.send()
    }

    fn resume_from(&mut self, key: Item) {
        self.exclusive_start_key = Some(key);
    }
}

/// A `scan` request through the accelerator (query cache).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Scan {
    accelerator: Accelerator,
    table: String,
    index_name: Option<String>,
    filter_expression: Option<String>,
    projection_expression: Option<String>,
    attributes: ExpressionAttributes,
    limit: Option<usize>,
    exclusive_start_key: Option<Item>,
    select: Option<Select>,
    segment: Option<u32>,
    total_segments: Option<u32>,
    consistent_read: bool,
    return_consumed_capacity: ReturnConsumedCapacity,
}

expression_attribute_setters!(Scan);
text_setters!(Scan {
    /// Reads a secondary index of the table instead of the table.
    index_name,
    /// A filter applied after reading.
    filter_expression,
    /// Which attributes to return.
    projection_expression,
});
field_setters!(Scan {
    /// Whether to read the latest committed state: `true` passes the
    /// request through to the table, uncached.
    consistent_read: bool,
    /// Whether to report consumed capacity (0 units when served from the
    /// cache).
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl Scan {
    pub(super) fn new(accelerator: Accelerator, table: String) -> Self {
        Self {
            accelerator,
            table,
            index_name: None,
            filter_expression: None,
            projection_expression: None,
            attributes: ExpressionAttributes::default(),
            limit: None,
            exclusive_start_key: None,
            select: None,
            segment: None,
            total_segments: None,
            consistent_read: false,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// At most this many items are evaluated (read before the filter).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after this key (a previous page's `last_evaluated_key`).
    pub fn exclusive_start_key(mut self, key: impl Into<Item>) -> Self {
        self.exclusive_start_key = Some(key.into());
        self
    }

    /// What to return.
    pub fn select(mut self, select: Select) -> Self {
        self.select = Some(select);
        self
    }

    /// This scan's segment of a parallel scan (0-based).
    pub fn segment(mut self, segment: u32) -> Self {
        self.segment = Some(segment);
        self
    }

    /// How many segments the parallel scan has.
    pub fn total_segments(mut self, total: u32) -> Self {
        self.total_segments = Some(total);
        self
    }

    /// The same request sent to the table.
    fn to_table(&self) -> crate::kv::Scan {
        let mut request = self
            .accelerator
            .shared
            .db
            .scan(self.table.clone())
            .consistent_read(self.consistent_read)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(index) = &self.index_name {
            request = request.index_name(index.clone());
        }
        if let Some(filter) = &self.filter_expression {
            request = request.filter_expression(filter.clone());
        }
        if let Some(projection) = &self.projection_expression {
            request = request.projection_expression(projection.clone());
        }
        if let Some(limit) = self.limit {
            request = request.limit(limit);
        }
        if let Some(start) = &self.exclusive_start_key {
            request = request.exclusive_start_key(start.clone());
        }
        if let Some(select) = self.select {
            request = request.select(select);
        }
        if let Some(segment) = self.segment {
            request = request.segment(segment);
        }
        if let Some(total) = self.total_segments {
            request = request.total_segments(total);
        }
        with_attributes!(request, self.attributes)
    }

    /// The canonical request: every parameter that changes the page.
    fn cache_key(&self) -> Vec<u8> {
        KeyWriter::new(KeyKind::Scan)
            .text(&self.table)
            .optional_text(self.index_name.as_deref())
            .optional_text(self.filter_expression.as_deref())
            .optional_text(self.projection_expression.as_deref())
            .names(self.attributes.names.as_ref())
            .values(self.attributes.values.as_ref())
            .optional_number(self.limit.map(|limit| limit as u64))
            .optional_item(self.exclusive_start_key.as_ref())
            .optional_text(self.select.map(Select::as_str))
            .optional_number(self.segment.map(u64::from))
            .optional_number(self.total_segments.map(u64::from))
            .finish()
    }

    /// Every matching item, reading page after page through the query
    /// cache as the iterator goes (each page is cached on its own).
    pub fn items(self) -> Items<Self> {
        Items::new(self)
    }

    /// Runs the request: one page.
    pub fn send(&self) -> Result<ScanOutput> {
        let shared = &self.accelerator.shared;
        if self.consistent_read {
            shared.counters.add(Counter::PassThrough, 1);
            return self.to_table().send();
        }
        shared.find_page(
            self.cache_key(),
            &self.table,
            self.return_consumed_capacity,
            || Some(table_tag(&self.table)),
            || self.to_table().send(),
        )
    }
}

impl Paged for Scan {
    fn page(&self) -> Result<ScanOutput> {
        self.send()
    }

    fn resume_from(&mut self, key: Item) {
        self.exclusive_start_key = Some(key);
    }
}
