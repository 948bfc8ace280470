//! The item cache's reads: `get_item` and `batch_get_item`.
//!
//! A lookup is keyed by table and key map alone and the whole item is
//! cached; a projection is parsed once (and memoized), then applied to the
//! cached item. A request the table would refuse (maps given without an
//! expression, a projection that does not parse, duplicate keys, too many
//! keys) is passed through, so its error is the table's own.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::keys::{ItemKey, KeyKind, KeyWriter, item_key, with_item_key};
use super::request::{
    ExpressionAttributes, TableName, expression_attribute_setters, field_setters, text_setters,
    with_attributes,
};
use super::stats::Counter;
use super::{Accelerator, CachedItem, Shared};
use crate::kv::expr::{self, Placeholders, Projection};
use crate::kv::{
    BATCH_BYTES_MAX, BATCH_GET_ITEMS_MAX, BatchGetItemOutput, ConsumedCapacity, GetItemOutput,
    KeysAndAttributes, Result, ReturnConsumedCapacity,
};
use crate::value::{Item, item_size};

/// What one item lookup found.
struct Found {
    item: CachedItem,
    /// The table's report when this lookup read the table.
    capacity: Option<ConsumedCapacity>,
    hit: bool,
}

impl Shared {
    /// The item of `key` in `table`, from the item cache or, on a miss,
    /// from the table (one read however many callers miss at once).
    fn find_item(
        &self,
        table: &str,
        key: &Item,
        capacity: ReturnConsumedCapacity,
    ) -> Result<Found> {
        // A hit looks the borrowed key up and allocates nothing; only a
        // miss makes the owned key its entry will be stored under.
        let owned_key = match with_item_key(table, key, |bytes| {
            self.items
                .get_if_hit(bytes, |cached| {
                    if let Some(item) = cached {
                        item.prefetch();
                    }
                })
                .ok_or_else(|| ItemKey::from(bytes))
        }) {
            Ok(item) => {
                self.counters.add(Counter::ItemHit, 1);
                return Ok(Found {
                    item,
                    capacity: None,
                    hit: true,
                });
            }
            Err(owned_key) => owned_key,
        };
        let mut loaded = None;
        let item = self.items.get_or_load(owned_key, |_| {
            let output = self
                .db
                .get_item(table)
                .key(key.clone())
                .return_consumed_capacity(capacity)
                .send()?;
            loaded = Some(output.consumed_capacity);
            Ok::<_, crate::kv::Error>(output.item)
        })?;
        // Another caller's load may have landed since the first lookup.
        let hit = loaded.is_none();
        self.counters.add(
            if hit {
                Counter::ItemHit
            } else {
                Counter::ItemMiss
            },
            1,
        );
        Ok(Found {
            item,
            capacity: loaded.flatten(),
            hit,
        })
    }

    /// The parsed projection of `text` with `names`, or `None` if the
    /// table would refuse it.
    fn projection(
        &self,
        text: &str,
        names: Option<&BTreeMap<String, String>>,
    ) -> Option<Arc<Projection>> {
        if names.is_some_and(BTreeMap::is_empty) {
            return None;
        }
        let key = KeyWriter::new(KeyKind::Projection)
            .text(text)
            .names(names)
            .finish();
        if let Some(projection) = self.projections.get(&key[..]) {
            return Some(projection);
        }
        let no_names = BTreeMap::new();
        let no_values = BTreeMap::new();
        let mut placeholders = Placeholders::new(names.unwrap_or(&no_names), &no_values).ok()?;
        let projection = expr::parse_projection(text, &mut placeholders).ok()?;
        placeholders.check_unused().ok()?;
        let projection = Arc::new(projection);
        // A projection too large to memoize is still used.
        let _ = self
            .projections
            .insert(Arc::from(key), Arc::clone(&projection));
        Some(projection)
    }

    /// The projection a read asks for: `Ok(None)` for the whole item,
    /// `Err(())` when the table must answer the request (with an error).
    fn read_projection(
        &self,
        projection_expression: Option<&str>,
        names: Option<&BTreeMap<String, String>>,
    ) -> std::result::Result<Option<Arc<Projection>>, ()> {
        match projection_expression {
            None if names.is_some() => Err(()),
            None => Ok(None),
            Some(text) => self.projection(text, names).map(Some).ok_or(()),
        }
    }
}

/// Adds the read units of one table read to a batch's total for its table.
fn add_read(total: &mut ConsumedCapacity, part: &ConsumedCapacity) {
    total.capacity_units += part.capacity_units;
    total.read_capacity_units += part.read_capacity_units;
    if let (Some(total), Some(part)) = (&mut total.table, part.table) {
        total.capacity_units += part.capacity_units;
        total.read_capacity_units += part.read_capacity_units;
    }
}

/// The item a read returns: the cached one, projected if asked.
fn projected(item: &Item, projection: Option<&Projection>) -> Item {
    match projection {
        Some(projection) => projection.apply(item),
        None => item.clone(),
    }
}

/// A `get_item` request through the accelerator (item cache).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetItem {
    accelerator: Accelerator,
    table: TableName,
    key: Item,
    consistent_read: bool,
    projection_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_consumed_capacity: ReturnConsumedCapacity,
}

expression_attribute_setters!(GetItem);
text_setters!(GetItem {
    /// Which attributes to return.
    projection_expression,
});
field_setters!(GetItem {
    /// Whether to read the latest committed state: `true` passes the read
    /// through to the table, uncached.
    consistent_read: bool,
    /// Whether to report consumed capacity (0 units when served from the
    /// cache).
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl GetItem {
    pub(super) fn new(accelerator: Accelerator, table: &str) -> Self {
        Self {
            accelerator,
            table: TableName::new(table),
            key: Item::new(),
            consistent_read: false,
            projection_expression: None,
            attributes: ExpressionAttributes::default(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// The same request sent to the table.
    fn to_table(&self) -> crate::kv::GetItem {
        let mut request = self
            .accelerator
            .shared
            .db
            .get_item(self.table.as_str())
            .key(self.key.clone())
            .consistent_read(self.consistent_read)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(projection) = &self.projection_expression {
            request = request.projection_expression(projection.clone());
        }
        with_attributes!(request, self.attributes)
    }

    /// Runs the request. A hit returns a clone of the cached [`Item`],
    /// which shares its attributes (one reference count, no copy); the
    /// item is copy-on-write, so changing it never changes the cache.
    pub fn send(self) -> Result<GetItemOutput> {
        let (item, consumed_capacity) = self.read()?;
        Ok(GetItemOutput {
            item,
            consumed_capacity,
        })
    }

    /// Runs the request and returns the item (projected, if asked) in an
    /// `Arc`. Since [`Item`] became copy-on-write, [`send`](Self::send)
    /// shares the cached item too and is the cheaper call (this one
    /// allocates the `Arc`); it stays for callers written against it.
    /// Consumed capacity is not reported.
    pub fn send_shared(self) -> Result<Option<Arc<Item>>> {
        self.read().map(|(item, _)| item.map(Arc::new))
    }

    /// The item and the consumed capacity to report.
    fn read(self) -> Result<(CachedItem, Option<ConsumedCapacity>)> {
        let shared = &self.accelerator.shared;
        let projection = match shared.read_projection(
            self.projection_expression.as_deref(),
            self.attributes.names.as_ref(),
        ) {
            Ok(projection) if !self.consistent_read && self.attributes.values.is_none() => {
                projection
            }
            _ => {
                shared.counters.add(Counter::PassThrough, 1);
                let output = self.to_table().send()?;
                return Ok((output.item, output.consumed_capacity));
            }
        };
        let table = self.table.as_str();
        let found = shared.find_item(table, &self.key, self.return_consumed_capacity)?;
        let item = match projection {
            Some(projection) => found.item.map(|item| projection.apply(&item)),
            None => found.item,
        };
        let capacity = if found.hit {
            shared.no_capacity(self.return_consumed_capacity, table)
        } else {
            found.capacity
        };
        Ok((item, capacity))
    }
}

/// A `batch_get_item` request through the accelerator: each key of a table
/// read eventually consistently is one item-cache lookup; tables read with
/// `consistent_read` are passed through in one table request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct BatchGetItem {
    accelerator: Accelerator,
    request_items: BTreeMap<String, KeysAndAttributes>,
    return_consumed_capacity: ReturnConsumedCapacity,
}

field_setters!(BatchGetItem {
    /// Whether to report consumed capacity, per table.
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl BatchGetItem {
    pub(super) fn new(accelerator: Accelerator) -> Self {
        Self {
            accelerator,
            request_items: BTreeMap::new(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// What to read from `table` (replaces an earlier entry for it).
    pub fn request_items(mut self, table: impl Into<String>, keys: KeysAndAttributes) -> Self {
        self.request_items.insert(table.into(), keys);
        self
    }

    /// Adds one key to read from `table`.
    pub fn key(mut self, table: impl Into<String>, key: impl Into<Item>) -> Self {
        self.request_items
            .entry(table.into())
            .or_default()
            .keys
            .push(key.into());
        self
    }

    /// The table request for `tables` of this request.
    fn to_table(&self, tables: impl IntoIterator<Item = String>) -> crate::kv::BatchGetItem {
        let mut request = self
            .accelerator
            .shared
            .db
            .batch_get_item()
            .return_consumed_capacity(self.return_consumed_capacity);
        for table in tables {
            if let Some(keys) = self.request_items.get(&table) {
                request = request.request_items(table, keys.clone());
            }
        }
        request
    }

    /// The projections of the cached tables, or `None` if the table must
    /// answer the whole request (it will refuse it).
    fn plan(&self) -> Option<BTreeMap<&str, Option<Arc<Projection>>>> {
        let shared = &self.accelerator.shared;
        let total: usize = self.request_items.values().map(|r| r.keys.len()).sum();
        if self.request_items.is_empty() || total > BATCH_GET_ITEMS_MAX {
            return None;
        }
        let mut plan = BTreeMap::new();
        for (table, request) in &self.request_items {
            let mut seen = HashSet::new();
            if request.keys.is_empty()
                || !request
                    .keys
                    .iter()
                    .all(|key| seen.insert(item_key(table, key)))
            {
                return None;
            }
            let projection = shared
                .read_projection(
                    request.projection_expression.as_deref(),
                    request.expression_attribute_names.as_ref(),
                )
                .ok()?;
            if !request.consistent_read {
                plan.insert(table.as_str(), projection);
            }
        }
        Some(plan)
    }

    /// Runs the request. Keys left over once the response holds 16 MB come
    /// back in `unprocessed_keys`, as from the table.
    pub fn send(self) -> Result<BatchGetItemOutput> {
        let shared = &self.accelerator.shared;
        let Some(plan) = self.plan() else {
            shared.counters.add(Counter::PassThrough, 1);
            return self.to_table(self.request_items.keys().cloned()).send();
        };
        let mut output = BatchGetItemOutput::default();
        let mut response_bytes = 0;
        for (&table, projection) in &plan {
            let request = &self.request_items[table];
            let mut capacity = shared.no_capacity(self.return_consumed_capacity, table);
            for (index, key) in request.keys.iter().enumerate() {
                if response_bytes >= BATCH_BYTES_MAX {
                    let unprocessed = KeysAndAttributes {
                        keys: request.keys[index..].to_vec(),
                        ..request.clone()
                    };
                    output
                        .unprocessed_keys
                        .insert(table.to_owned(), unprocessed);
                    break;
                }
                let found = shared.find_item(table, key, self.return_consumed_capacity)?;
                if let (Some(total), Some(part)) = (&mut capacity, &found.capacity) {
                    add_read(total, part);
                }
                if let Some(item) = found.item {
                    let item = projected(&item, projection.as_deref());
                    response_bytes += item_size(&item);
                    output
                        .responses
                        .entry(table.to_owned())
                        .or_default()
                        .push(item);
                }
            }
            output.consumed_capacity.extend(capacity);
        }
        let consistent: Vec<String> = self
            .request_items
            .iter()
            .filter(|(_, request)| request.consistent_read)
            .map(|(table, _)| table.clone())
            .collect();
        if !consistent.is_empty() {
            shared.counters.add(Counter::PassThrough, 1);
            let passed = self.to_table(consistent).send()?;
            output.responses.extend(passed.responses);
            output.unprocessed_keys.extend(passed.unprocessed_keys);
            output.consumed_capacity.extend(passed.consumed_capacity);
        }
        Ok(output)
    }
}
