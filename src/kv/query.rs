//! Query and Scan: request builders, their outputs, and the iterators that
//! page through every result.

use std::ops::Bound;

use super::capacity::{read_units, report, report_with_indexes};
use super::error::{Error, Result};
use super::expr::{self, Comparator, SortKeyCondition};
use super::index_read::{fetch_keyspace, read_target, start_entry_key};
use super::keys::{EncodedKey, key_from_key_map};
use super::page::{Page, PageRequest, Select, read_page};
use super::request::{
    ConsumedCapacity, ExpressionAttributes, ReturnConsumedCapacity, capacity_setter,
    expression_attribute_setters,
};
use super::throttle::Target;
use crate::Database;
use crate::index::IndexView;
use crate::partition::{keyspace_prefix, partition_prefix, prefix_successor, segment_tokens};
use crate::storage::Direction;
use crate::value::{AttributeValue, Item, encode_key_value};

/// The most segments a parallel scan may have.
pub const MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

/// What a Query or Scan page returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOutput {
    /// The matching items (empty with `Select::Count`).
    pub items: Vec<Item>,
    /// How many items matched the filter.
    pub count: usize,
    /// How many items were read before the filter.
    pub scanned_count: usize,
    /// Where the next page starts, when this one stopped early.
    pub last_evaluated_key: Option<Item>,
    /// The capacity consumed, if requested.
    pub consumed_capacity: Option<ConsumedCapacity>,
}

/// What a Scan page returns (the same fields as a Query page).
pub type ScanOutput = QueryOutput;

fn starting_key_invalid(detail: &str) -> Error {
    Error::validation(format!("The provided starting key is invalid: {detail}"))
}

fn check_limit(limit: Option<usize>, field: &str) -> Result<()> {
    if limit == Some(0) {
        return Err(Error::validation(format!(
            "1 validation error detected: {field} failed to satisfy constraint: Member must \
             have value greater than or equal to 1"
        )));
    }
    Ok(())
}

/// A range of engine keys.
type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The byte range of a partition that a sort key condition selects.
/// `suffixed`: rows continue after the sort key (index entries end with
/// the base item's key), so a key equal to a bound extends past it.
fn sort_range(
    prefix: &[u8],
    condition: Option<&SortKeyCondition>,
    suffixed: bool,
) -> Result<KeyBounds> {
    let (low, high) = plain_sort_range(prefix, condition)?;
    if !suffixed {
        return Ok((low, high));
    }
    let past = |key: Vec<u8>| match prefix_successor(&key) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let low = match low {
        Bound::Excluded(key) => match prefix_successor(&key) {
            Some(start) => Bound::Included(start),
            None => Bound::Excluded(key),
        },
        other => other,
    };
    let high = match high {
        Bound::Included(key) => past(key),
        other => other,
    };
    Ok((low, high))
}

/// [`sort_range`] for rows that end with their sort key.
fn plain_sort_range(prefix: &[u8], condition: Option<&SortKeyCondition>) -> Result<KeyBounds> {
    let with = |value: &AttributeValue| -> Result<Vec<u8>> {
        let mut key = prefix.to_vec();
        encode_key_value(value, &mut key)?;
        Ok(key)
    };
    let partition_end = match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let whole = (Bound::Included(prefix.to_vec()), partition_end.clone());
    let Some(condition) = condition else {
        return Ok(whole);
    };
    Ok(match condition {
        SortKeyCondition::Compare(comparator, value) => {
            let key = with(value)?;
            match comparator {
                Comparator::Equal => (Bound::Included(key.clone()), Bound::Included(key)),
                Comparator::Less => (whole.0, Bound::Excluded(key)),
                Comparator::LessOrEqual => (whole.0, Bound::Included(key)),
                Comparator::Greater => (Bound::Excluded(key), partition_end),
                Comparator::GreaterOrEqual => (Bound::Included(key), partition_end),
                // The key condition grammar never produces `<>`.
                Comparator::NotEqual => whole,
            }
        }
        SortKeyCondition::Between(low, high) => {
            (Bound::Included(with(low)?), Bound::Included(with(high)?))
        }
        SortKeyCondition::BeginsWith(value) => {
            // The escaped bytes of the prefix, without the terminator: an
            // encoding starts with them exactly when the value starts with
            // the prefix.
            let mut start = with(value)?;
            start.truncate(start.len() - 2);
            let end = match prefix_successor(&start) {
                Some(end) => Bound::Excluded(end),
                None => partition_end,
            };
            (Bound::Included(start), end)
        }
    })
}

/// Narrows `range` to the keys after (forward) or before (backward)
/// `start_after`.
fn resume_after(range: KeyBounds, start_after: Option<Vec<u8>>, direction: Direction) -> KeyBounds {
    match (start_after, direction) {
        (None, _) => range,
        (Some(key), Direction::Forward) => (Bound::Excluded(key), range.1),
        (Some(key), Direction::Reverse) => (range.0, Bound::Excluded(key)),
    }
}

fn output(
    page: Page,
    table: &str,
    index: Option<&IndexView<'_>>,
    consistent: bool,
    capacity: ReturnConsumedCapacity,
) -> QueryOutput {
    let read = read_units(page.bytes_read, consistent);
    QueryOutput {
        consumed_capacity: match index {
            None => report(capacity, table, read, 0.0),
            Some(index) => report_with_indexes(
                capacity,
                table,
                (page.fetch_units, 0.0),
                [(index.kind, index.name, read, 0.0)],
            ),
        },
        items: page.items,
        count: page.count,
        scanned_count: page.scanned_count,
        last_evaluated_key: page.last_evaluated_key,
    }
}

/// A `query` request: the items of one partition key, in sort key order.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Query {
    db: Database,
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
capacity_setter!(Query);

impl Query {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
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

    /// Reads a secondary index of the table instead of the table.
    pub fn index_name(mut self, name: impl Into<String>) -> Self {
        self.index_name = Some(name.into());
        self
    }

    /// The key condition: `=` on the partition key, optionally one
    /// condition on the sort key.
    pub fn key_condition_expression(mut self, expression: impl Into<String>) -> Self {
        self.key_condition_expression = Some(expression.into());
        self
    }

    /// A filter applied after reading (it may not name key attributes).
    pub fn filter_expression(mut self, expression: impl Into<String>) -> Self {
        self.filter_expression = Some(expression.into());
        self
    }

    /// Which attributes to return.
    pub fn projection_expression(mut self, expression: impl Into<String>) -> Self {
        self.projection_expression = Some(expression.into());
        self
    }

    /// Ascending sort key order (true, the default) or descending.
    pub fn scan_index_forward(mut self, forward: bool) -> Self {
        self.scan_index_forward = forward;
        self
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

    /// Whether to read the latest committed state.
    pub fn consistent_read(mut self, consistent: bool) -> Self {
        self.consistent_read = consistent;
        self
    }

    /// Every matching item, reading page after page as the iterator goes.
    pub fn items(self) -> Items<Self> {
        Items::new(self)
    }

    /// Runs the request: one page.
    pub fn send(&self) -> Result<QueryOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        let Some(key_condition) = &self.key_condition_expression else {
            return Err(Error::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified \
                 in the request.",
            ));
        };
        check_limit(self.limit, "Value at 'Limit'")?;
        let (index, select) = read_target(
            &definition,
            self.index_name.as_deref(),
            self.consistent_read,
            self.select,
            self.projection_expression.is_some(),
            "1 validation error detected: ",
        )?;
        let read_key = index.as_ref().map_or(&definition.key, |i| i.key);
        let keyspace = index.as_ref().map_or(definition.keyspace, |i| i.keyspace);
        let mut placeholders = self.attributes.placeholders(true)?;
        let key_condition =
            expr::parse_key_condition(key_condition, &mut placeholders, &read_key.expr_schema())?;
        let filter = self
            .filter_expression
            .as_deref()
            .map(|text| expr::parse_filter(text, &mut placeholders))
            .transpose()?;
        let projection = self
            .projection_expression
            .as_deref()
            .map(|text| expr::parse_projection(text, &mut placeholders))
            .transpose()?;
        placeholders.check_unused()?;
        if let Some(filter) = &filter {
            filter.check_no_key_attributes(read_key.names())?;
        }

        let mut partition = Vec::new();
        for value in &key_condition.partition_values {
            encode_key_value(value, &mut partition)?;
        }
        // Composite sort keys: the leading attributes fixed by `=` extend
        // the prefix; the condition applies to the attribute after them.
        let mut prefix = partition_prefix(keyspace, &partition);
        for value in &key_condition.sort_prefix {
            encode_key_value(value, &mut prefix)?;
        }
        let range = sort_range(
            &prefix,
            key_condition.sort_condition.as_ref(),
            index.is_some(),
        )?;
        let direction = if self.scan_index_forward {
            Direction::Forward
        } else {
            Direction::Reverse
        };
        let start_after = match &self.exclusive_start_key {
            None => None,
            Some(start) => {
                let row = match &index {
                    Some(index) => start_entry_key(&definition.key, index, start)?,
                    None => key_from_key_map(&definition.key, start)
                        .map_err(|e| starting_key_invalid(&e.message()))?
                        .row_key(keyspace),
                };
                let conditioned = read_key
                    .sort_attributes()
                    .nth(key_condition.sort_prefix.len());
                let sort_ok = match (&key_condition.sort_condition, conditioned) {
                    (Some(condition), Some((name, _))) => {
                        start.get(name).is_some_and(|v| condition.matches(v))
                    }
                    _ => true,
                };
                if !row.starts_with(&prefix) || !sort_ok {
                    return Err(Error::validation(
                        "The provided starting key is outside query boundaries based on \
                         provided conditions",
                    ));
                }
                Some(row)
            }
        };
        let (start, end) = resume_after(range, start_after, direction);
        let fetch_from = fetch_keyspace(
            index.as_ref(),
            &definition,
            select,
            projection.as_ref(),
            filter.as_ref(),
        );
        // A base-table or local-index Query reads one partition of the
        // table; a global index's is metered on the index.
        let token = crate::kv::partitions::row_token(&prefix);
        let global = index
            .as_ref()
            .filter(|i| i.kind == crate::index::IndexKind::Global)
            .map(|i| i.name);
        let base = global.is_none().then(|| table.partitions.partition(token));
        let target = Target {
            db: inner,
            table: &table,
            definition: &definition,
            partition: base.as_deref().map(|p| (p, token)),
            index: global,
        };
        target.check_read()?;
        let page = read_page(
            inner,
            PageRequest {
                start,
                end,
                direction,
                filter: filter.as_ref(),
                projection: projection.as_ref(),
                count_only: select == Select::Count,
                limit: self.limit,
                key: &definition.key,
                index_key: index.as_ref().map(|i| i.key),
                fetch_from,
                consistent: self.consistent_read,
                expiry: super::ttl::Expiry::of(inner, &definition),
            },
        )?;
        target.charge_read(read_units(page.bytes_read, self.consistent_read) + page.fetch_units);
        crate::kv::partitions::run_pending(inner, &table);
        Ok(output(
            page,
            &self.table,
            index.as_ref(),
            self.consistent_read,
            self.return_consumed_capacity,
        ))
    }
}

/// A `scan` request: every item of a table (or of one parallel-scan
/// segment), in token order.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Scan {
    db: Database,
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
capacity_setter!(Scan);

impl Scan {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
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

    /// Reads a secondary index of the table instead of the table.
    pub fn index_name(mut self, name: impl Into<String>) -> Self {
        self.index_name = Some(name.into());
        self
    }

    /// A filter applied after reading.
    pub fn filter_expression(mut self, expression: impl Into<String>) -> Self {
        self.filter_expression = Some(expression.into());
        self
    }

    /// Which attributes to return.
    pub fn projection_expression(mut self, expression: impl Into<String>) -> Self {
        self.projection_expression = Some(expression.into());
        self
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

    /// Whether to read the latest committed state.
    pub fn consistent_read(mut self, consistent: bool) -> Self {
        self.consistent_read = consistent;
        self
    }

    /// Every matching item, reading page after page as the iterator goes.
    pub fn items(self) -> Items<Self> {
        Items::new(self)
    }

    fn segment_range(&self) -> Result<(u32, u32)> {
        match (self.segment, self.total_segments) {
            (None, None) => Ok((0, 1)),
            (Some(_), None) => Err(Error::validation(
                "The TotalSegments parameter is required but was not present in the request \
                 when Segment parameter is present",
            )),
            (None, Some(_)) => Err(Error::validation(
                "The Segment parameter is required but was not present in the request when \
                 parameter TotalSegments is present",
            )),
            (Some(_), Some(total)) if total == 0 || total > MAX_TOTAL_SEGMENTS => {
                Err(Error::validation(format!(
                    "1 validation error detected: Value '{total}' at 'totalSegments' failed to \
                     satisfy constraint: Member must have value {}",
                    if total == 0 {
                        "greater than or equal to 1"
                    } else {
                        "less than or equal to 1000000"
                    }
                )))
            }
            (Some(segment), Some(total)) if segment >= total => Err(Error::validation(format!(
                "The Segment parameter is zero-based and must be less than parameter \
                 TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
            ))),
            (Some(segment), Some(total)) => Ok((segment, total)),
        }
    }

    /// Runs the request: one page.
    pub fn send(&self) -> Result<ScanOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        if let Some(limit) = self.limit.filter(|&l| l == 0) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy \
                 constraint: Member must have value greater than or equal to 1"
            )));
        }
        let (segment, total) = self.segment_range()?;
        let has_projection = self.projection_expression.is_some();
        let (index, select) = read_target(
            &definition,
            self.index_name.as_deref(),
            self.consistent_read,
            self.select,
            has_projection,
            "",
        )?;
        let keyspace = index.as_ref().map_or(definition.keyspace, |i| i.keyspace);
        let mut placeholders = self
            .attributes
            .placeholders(self.filter_expression.is_some() || has_projection)?;
        let filter = self
            .filter_expression
            .as_deref()
            .map(|text| expr::parse_filter(text, &mut placeholders))
            .transpose()?;
        let projection = self
            .projection_expression
            .as_deref()
            .map(|text| expr::parse_projection(text, &mut placeholders))
            .transpose()?;
        placeholders.check_unused()?;

        let (first_token, end_token) = segment_tokens(segment, total);
        let with_token = |t: u64| {
            let mut key = keyspace_prefix(keyspace).to_vec();
            key.extend_from_slice(&t.to_be_bytes());
            key
        };
        let end = match end_token {
            Some(t) => Bound::Excluded(with_token(t)),
            None => match prefix_successor(&keyspace_prefix(keyspace)) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
        };
        let start = match &self.exclusive_start_key {
            None => Bound::Included(with_token(first_token)),
            Some(start) => {
                let row = match &index {
                    Some(index) => start_entry_key(&definition.key, index, start)?,
                    None => {
                        let key: EncodedKey = key_from_key_map(&definition.key, start)
                            .map_err(|e| starting_key_invalid(&e.message()))?;
                        key.row_key(keyspace)
                    }
                };
                let t = row
                    .get(4..12)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                if t < first_token || end_token.is_some_and(|end| t >= end) {
                    return Err(starting_key_invalid(&format!(
                        "Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct \
                         Segment. TotalSegments: {total} Segment: {segment}"
                    )));
                }
                Bound::Excluded(row)
            }
        };
        let fetch_from = fetch_keyspace(
            index.as_ref(),
            &definition,
            select,
            projection.as_ref(),
            filter.as_ref(),
        );
        // A Scan of the table (or a local index, which shares its tokens)
        // is admitted by the partition it starts in and charged to every
        // partition it read; a global index has its own bucket alone.
        let global = index
            .as_ref()
            .filter(|i| i.kind == crate::index::IndexKind::Global)
            .map(|i| i.name);
        let start_token = match &start {
            Bound::Included(key) | Bound::Excluded(key) => crate::kv::partitions::row_token(key),
            Bound::Unbounded => first_token,
        };
        let map = global.is_none().then(|| table.partitions.map());
        let target = Target {
            db: inner,
            table: &table,
            definition: &definition,
            partition: map
                .as_ref()
                .map(|map| (map.get(start_token).as_ref(), start_token)),
            index: global,
        };
        target.check_read()?;
        let page = read_page(
            inner,
            PageRequest {
                start,
                end,
                direction: Direction::Forward,
                filter: filter.as_ref(),
                projection: projection.as_ref(),
                count_only: select == Select::Count,
                limit: self.limit,
                key: &definition.key,
                index_key: index.as_ref().map(|i| i.key),
                fetch_from,
                consistent: self.consistent_read,
                expiry: super::ttl::Expiry::of(inner, &definition),
            },
        )?;
        let units = read_units(page.bytes_read, self.consistent_read) + page.fetch_units;
        match &map {
            Some(map) => {
                let from = map.index_of(start_token);
                let to = map
                    .index_of(page.last_token.unwrap_or(start_token))
                    .max(from);
                let read: Vec<&crate::partition::map::Partition> = map.partitions()[from..=to]
                    .iter()
                    .map(|p| p.as_ref())
                    .collect();
                target.charge_scan(units, &read);
            }
            None => target.charge_read(units),
        }
        crate::kv::partitions::run_pending(inner, &table);
        Ok(output(
            page,
            &self.table,
            index.as_ref(),
            self.consistent_read,
            self.return_consumed_capacity,
        ))
    }
}

/// A request that reads in pages resumed from `last_evaluated_key`.
pub trait Paged {
    /// Reads one page.
    fn page(&self) -> Result<QueryOutput>;
    /// Sets where the next page starts.
    fn resume_from(&mut self, key: Item);
}

impl Paged for Query {
    fn page(&self) -> Result<QueryOutput> {
        self.send()
    }

    fn resume_from(&mut self, key: Item) {
        self.exclusive_start_key = Some(key);
    }
}

impl Paged for Scan {
    fn page(&self) -> Result<QueryOutput> {
        self.send()
    }

    fn resume_from(&mut self, key: Item) {
        self.exclusive_start_key = Some(key);
    }
}

/// The items of every page of a Query or Scan, read lazily. An error ends
/// the iteration after it is returned.
#[derive(Debug)]
pub struct Items<R> {
    request: Option<R>,
    buffered: std::vec::IntoIter<Item>,
}

impl<R: Paged> Items<R> {
    pub(crate) fn new(request: R) -> Self {
        Self {
            request: Some(request),
            buffered: Vec::new().into_iter(),
        }
    }
}

impl<R: Paged> Iterator for Items<R> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffered.next() {
                return Some(Ok(item));
            }
            let request = self.request.as_mut()?;
            match request.page() {
                Err(error) => {
                    self.request = None;
                    return Some(Err(error));
                }
                Ok(page) => {
                    match page.last_evaluated_key {
                        Some(key) => request.resume_from(key),
                        None => self.request = None,
                    }
                    self.buffered = page.items.into_iter();
                }
            }
        }
    }
}
