//! TransactWriteItems and TransactGetItems.
//!
//! A write transaction validates every action, takes its items' locks in
//! ascending stripe order (giving up with `TransactionConflict` when a lock
//! stays held by another writer), checks every condition, and commits every
//! change — with its idempotency record — as one engine batch, so it is
//! all-or-nothing and serializable against single-item writes and other
//! transactions. A get transaction reads one engine snapshot.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use xxhash_rust::xxh3::Xxh3;

use super::capacity::{IndexUnits, Tally, read_units, write_units};
use super::catalogue::TableHandle;
use super::error::{CancellationReason, Error, Result};
use super::expr::{self, Condition, ItemState, Projection, UpdateExpression};
use super::keys::{key_from_key_map, key_of_item};
use super::partitions::{row_token, run_pending};
use super::request::{
    CollectionTally, ConsumedCapacity, ExpressionAttributes, ItemCollectionMetrics,
    ReturnConsumedCapacity, ReturnItemCollectionMetrics, ReturnValuesOnConditionCheckFailure,
    expression_attribute_setters,
};
use super::throttle::{ItemCharge, Target, admit_writes};
use super::write::{Effects, Staging, check_condition, enter_tables, read_item};
use crate::Database;
use crate::index::IndexKind;
use crate::partition::{TRANSACTIONS_KEYSPACE, keyspace_prefix};
use crate::value::{Item, decode_item, encode_item, item_size, validate_item};

/// The most actions one transaction may have.
pub const TRANSACT_ITEMS_MAX: usize = 100;
/// The most bytes a transaction's payload may have: 4 MB.
pub const TRANSACT_PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The longest client request token.
pub const CLIENT_REQUEST_TOKEN_MAX: usize = 36;
/// How long a client request token makes a transaction idempotent.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a transaction waits for an item another writer holds before it
/// is cancelled with `TransactionConflict`.
pub const TRANSACTION_LOCK_PATIENCE: Duration = Duration::from_millis(500);

/// Builds the per-action setters shared by the four write actions.
macro_rules! action_common {
    ($action:ident) => {
        expression_attribute_setters!($action);

        impl $action {
            /// A condition the stored item must meet.
            pub fn condition_expression(mut self, expression: impl Into<String>) -> Self {
                self.condition_expression = Some(expression.into());
                self
            }

            /// Whether a failed condition returns the stored item in the
            /// cancellation reason.
            pub fn return_values_on_condition_check_failure(
                mut self,
                value: ReturnValuesOnConditionCheckFailure,
            ) -> Self {
                self.on_failure = value;
                self
            }
        }
    };
}

/// A transactional put.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactPut {
    table: String,
    item: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    on_failure: ReturnValuesOnConditionCheckFailure,
}

impl TransactPut {
    /// Puts `item` into `table`.
    pub fn new(table: impl Into<String>, item: impl Into<Item>) -> Self {
        Self {
            table: table.into(),
            item: item.into(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            on_failure: ReturnValuesOnConditionCheckFailure::None,
        }
    }
}
action_common!(TransactPut);

/// A transactional update.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactUpdate {
    table: String,
    key: Item,
    update_expression: String,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    on_failure: ReturnValuesOnConditionCheckFailure,
}

impl TransactUpdate {
    /// Applies `update_expression` to the item of `key` in `table`.
    pub fn new(
        table: impl Into<String>,
        key: impl Into<Item>,
        update_expression: impl Into<String>,
    ) -> Self {
        Self {
            table: table.into(),
            key: key.into(),
            update_expression: update_expression.into(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            on_failure: ReturnValuesOnConditionCheckFailure::None,
        }
    }
}
action_common!(TransactUpdate);

/// A transactional delete.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactDelete {
    table: String,
    key: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    on_failure: ReturnValuesOnConditionCheckFailure,
}

impl TransactDelete {
    /// Deletes the item of `key` from `table`.
    pub fn new(table: impl Into<String>, key: impl Into<Item>) -> Self {
        Self {
            table: table.into(),
            key: key.into(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            on_failure: ReturnValuesOnConditionCheckFailure::None,
        }
    }
}
action_common!(TransactDelete);

/// A transactional condition check: writes nothing, but the transaction
/// fails unless the item meets the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionCheck {
    table: String,
    key: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    on_failure: ReturnValuesOnConditionCheckFailure,
}

impl ConditionCheck {
    /// Checks the item of `key` in `table` (set the condition with
    /// `condition_expression`; it is required).
    pub fn new(table: impl Into<String>, key: impl Into<Item>) -> Self {
        Self {
            table: table.into(),
            key: key.into(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            on_failure: ReturnValuesOnConditionCheckFailure::None,
        }
    }
}
action_common!(ConditionCheck);

/// One action of a write transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactWriteItem {
    /// Put an item.
    Put(TransactPut),
    /// Update an item.
    Update(TransactUpdate),
    /// Delete an item.
    Delete(TransactDelete),
    /// Check an item's condition.
    ConditionCheck(ConditionCheck),
}

impl From<TransactPut> for TransactWriteItem {
    fn from(action: TransactPut) -> Self {
        Self::Put(action)
    }
}

impl From<TransactUpdate> for TransactWriteItem {
    fn from(action: TransactUpdate) -> Self {
        Self::Update(action)
    }
}

impl From<TransactDelete> for TransactWriteItem {
    fn from(action: TransactDelete) -> Self {
        Self::Delete(action)
    }
}

impl From<ConditionCheck> for TransactWriteItem {
    fn from(action: ConditionCheck) -> Self {
        Self::ConditionCheck(action)
    }
}

/// What an action does once its condition held.
enum Change {
    Put(Item),
    Update(UpdateExpression, Item),
    Delete,
    None,
}

/// A validated action.
struct Planned {
    table: Arc<TableHandle>,
    table_name: String,
    row_key: Vec<u8>,
    condition: Option<Condition>,
    on_failure: ReturnValuesOnConditionCheckFailure,
    change: Change,
}

/// A `transact_write_items` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TransactWriteItems {
    db: Database,
    items: Vec<TransactWriteItem>,
    client_request_token: Option<String>,
    return_consumed_capacity: ReturnConsumedCapacity,
    return_item_collection_metrics: ReturnItemCollectionMetrics,
}

/// What `transact_write_items` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactWriteItemsOutput {
    /// The capacity consumed per table, if requested.
    pub consumed_capacity: Vec<ConsumedCapacity>,
    /// Per table, the item collections the actions changed (tables with
    /// local indexes), if requested.
    pub item_collection_metrics: BTreeMap<String, Vec<ItemCollectionMetrics>>,
}

fn cancelled(count: usize, index: usize, reason: CancellationReason) -> Error {
    let mut reasons = vec![CancellationReason::none(); count];
    reasons[index] = reason;
    Error::TransactionCanceled { reasons }
}

fn validation_reason(count: usize, index: usize, error: Error) -> Error {
    match error {
        Error::Validation(message) => cancelled(
            count,
            index,
            CancellationReason::new("ValidationError", &message, None),
        ),
        other => other,
    }
}

impl TransactWriteItems {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            items: Vec::new(),
            client_request_token: None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
            return_item_collection_metrics: ReturnItemCollectionMetrics::None,
        }
    }

    /// Whether to report the sizes of the item collections written to.
    pub fn return_item_collection_metrics(mut self, value: ReturnItemCollectionMetrics) -> Self {
        self.return_item_collection_metrics = value;
        self
    }

    /// Adds an action.
    pub fn item(mut self, action: impl Into<TransactWriteItem>) -> Self {
        self.items.push(action.into());
        self
    }

    /// Sets the actions.
    pub fn transact_items(mut self, actions: impl IntoIterator<Item = TransactWriteItem>) -> Self {
        self.items.extend(actions);
        self
    }

    /// Makes the request idempotent for ten minutes.
    pub fn client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }

    /// Whether to report consumed capacity.
    pub fn return_consumed_capacity(mut self, value: ReturnConsumedCapacity) -> Self {
        self.return_consumed_capacity = value;
        self
    }

    fn check_shape(&self) -> Result<()> {
        if self.items.is_empty() || self.items.len() > TRANSACT_ITEMS_MAX {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'TransactItems' failed to satisfy \
                 constraint: Member must have length {}",
                if self.items.is_empty() {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 100"
                }
            )));
        }
        if let Some(token) = &self.client_request_token
            && (token.is_empty() || token.len() > CLIENT_REQUEST_TOKEN_MAX)
        {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{token}' at 'clientRequestToken' failed to \
                 satisfy constraint: Member must have length {}",
                if token.is_empty() {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 36"
                }
            )));
        }
        Ok(())
    }

    /// Validates every action: expressions (a whole-request error), keys
    /// and items (a `ValidationError` reason), one action per item.
    fn plan(&self) -> Result<(Vec<Planned>, usize)> {
        let inner = &self.db.inner;
        let count = self.items.len();
        let mut planned = Vec::with_capacity(count);
        let mut payload = 0;
        for (index, action) in self.items.iter().enumerate() {
            let (table_name, attributes, condition_text, on_failure) = match action {
                TransactWriteItem::Put(a) => (
                    &a.table,
                    &a.attributes,
                    &a.condition_expression,
                    a.on_failure,
                ),
                TransactWriteItem::Update(a) => (
                    &a.table,
                    &a.attributes,
                    &a.condition_expression,
                    a.on_failure,
                ),
                TransactWriteItem::Delete(a) => (
                    &a.table,
                    &a.attributes,
                    &a.condition_expression,
                    a.on_failure,
                ),
                TransactWriteItem::ConditionCheck(a) => (
                    &a.table,
                    &a.attributes,
                    &a.condition_expression,
                    a.on_failure,
                ),
            };
            let table = inner.kv.table(table_name)?;
            let definition = table.definition();
            let update_text = match action {
                TransactWriteItem::Update(a) => Some(a.update_expression.as_str()),
                _ => None,
            };
            if matches!(action, TransactWriteItem::ConditionCheck(_)) && condition_text.is_none() {
                return Err(Error::validation(
                    "1 validation error detected: Value null at \
                     'transactItems.member.conditionCheck.conditionExpression' failed to satisfy \
                     constraint: Member must not be null",
                ));
            }
            let mut placeholders =
                attributes.placeholders(condition_text.is_some() || update_text.is_some())?;
            let update = update_text
                .map(|text| expr::parse_update(text, &mut placeholders))
                .transpose()?;
            let condition = condition_text
                .as_deref()
                .map(|text| expr::parse_condition(text, &mut placeholders))
                .transpose()?;
            placeholders.check_unused()?;
            payload += table_name.len()
                + condition_text.as_ref().map_or(0, String::len)
                + update_text.map_or(0, str::len)
                + attributes
                    .values
                    .iter()
                    .flatten()
                    .map(|(k, v)| k.len() + crate::value::attribute_value_size(v))
                    .sum::<usize>();
            let keyed = |key: &Item| -> Result<Vec<u8>> {
                Ok(key_from_key_map(&definition.key, key)?.row_key(definition.keyspace))
            };
            let resolved: Result<(Vec<u8>, Change)> = match action {
                TransactWriteItem::Put(a) => validate_item(&a.item)
                    .map_err(Error::from)
                    .and_then(|()| key_of_item(&definition.key, &a.item))
                    .map(|key| {
                        payload += item_size(&a.item);
                        (
                            key.row_key(definition.keyspace),
                            Change::Put(a.item.clone()),
                        )
                    }),
                TransactWriteItem::Update(a) => {
                    let update = update.ok_or_else(|| Error::validation("missing update"))?;
                    update.check_key_attributes(definition.key.names())?;
                    payload += item_size(&a.key);
                    keyed(&a.key).map(|row| (row, Change::Update(update, a.key.clone())))
                }
                TransactWriteItem::Delete(a) => {
                    payload += item_size(&a.key);
                    keyed(&a.key).map(|row| (row, Change::Delete))
                }
                TransactWriteItem::ConditionCheck(a) => {
                    payload += item_size(&a.key);
                    keyed(&a.key).map(|row| (row, Change::None))
                }
            };
            let (row_key, change) = resolved.map_err(|e| validation_reason(count, index, e))?;
            planned.push(Planned {
                table,
                table_name: table_name.clone(),
                row_key,
                condition,
                on_failure,
                change,
            });
        }
        let mut targets = HashSet::new();
        if !planned.iter().all(|p| targets.insert(&p.row_key)) {
            return Err(Error::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        if payload > TRANSACT_PAYLOAD_BYTES_MAX {
            return Err(Error::validation(
                "Transaction request size cannot exceed 4 MB: the aggregate size of the \
                 transaction payload is too large",
            ));
        }
        Ok((planned, payload))
    }

    /// Runs the request.
    pub fn send(self) -> Result<TransactWriteItemsOutput> {
        self.check_shape()?;
        let (planned, _) = self.plan()?;
        let inner = &self.db.inner;
        let count = planned.len();

        // A token serialises its own retries: the second waits for the
        // first, then finds its record.
        let token_key = self.client_request_token.as_ref().map(|token| {
            let mut key = keyspace_prefix(TRANSACTIONS_KEYSPACE).to_vec();
            key.extend_from_slice(token.as_bytes());
            key
        });
        let _token_lock = token_key.as_ref().map(|key| inner.kv.locks.lock(key));
        let fingerprint = self.fingerprint();
        let now_millis = inner.clock.since_epoch().as_millis() as u64;
        if let Some(key) = &token_key
            && let Some(record) = inner.engine.get(key)?
        {
            let (hash, completed) = decode_token_record(&record)?;
            if now_millis.saturating_sub(completed) < IDEMPOTENCY_WINDOW.as_millis() as u64 {
                if hash != fingerprint {
                    return Err(Error::IdempotentParameterMismatch(
                        "The request uses the same client token as a previous, but non-identical \
                         request."
                            .into(),
                    ));
                }
                return Ok(self.report(&planned, &[], Vec::new(), true));
            }
        }

        let _gates = enter_tables(planned.iter().map(|p| &p.table))?;
        let _locks = inner
            .kv
            .locks
            .try_lock_all(
                planned.iter().map(|p| p.row_key.as_slice()),
                TRANSACTION_LOCK_PATIENCE,
            )
            .map_err(|stripe| Error::TransactionCanceled {
                reasons: planned
                    .iter()
                    .map(|p| {
                        if inner.kv.locks.stripe_of(&p.row_key) == stripe {
                            CancellationReason::new(
                                "TransactionConflict",
                                "Transaction is ongoing for the item",
                                None,
                            )
                        } else {
                            CancellationReason::none()
                        }
                    })
                    .collect(),
            })?;

        let olds = planned
            .iter()
            .map(|p| read_item(inner, &p.row_key))
            .collect::<Result<Vec<_>>>()?;
        let mut reasons = vec![CancellationReason::none(); count];
        let mut failed = false;
        for ((action, old), reason) in planned.iter().zip(&olds).zip(&mut reasons) {
            if !check_condition(action.condition.as_ref(), old.as_ref()) {
                failed = true;
                let item = match action.on_failure {
                    ReturnValuesOnConditionCheckFailure::AllOld => old.clone(),
                    ReturnValuesOnConditionCheckFailure::None => None,
                };
                *reason = CancellationReason::new(
                    "ConditionalCheckFailed",
                    "The conditional request failed",
                    item,
                );
            }
        }
        if failed {
            return Err(Error::TransactionCanceled { reasons });
        }
        let mut staging = Staging::new(inner);
        let mut staged = Vec::with_capacity(count);
        let mut news = Vec::with_capacity(count);
        // Per staged action: its index, table units and index write count.
        let mut shares: Vec<(usize, f64, usize)> = Vec::with_capacity(count);
        let mut staged_index_writes = 0;
        for (index, (action, old)) in planned.iter().zip(&olds).enumerate() {
            let new = match &action.change {
                Change::Put(item) => Some(item.clone()),
                Change::Delete => None,
                Change::None => old.clone(),
                Change::Update(update, key) => {
                    let (mut item, state) = match old {
                        Some(old) => (old.clone(), ItemState::Existing),
                        None => (key.clone(), ItemState::New),
                    };
                    update
                        .apply(&mut item, state)
                        .map_err(|e| validation_reason(count, index, e.into()))?;
                    validate_item(&item).map_err(|e| validation_reason(count, index, e.into()))?;
                    Some(item)
                }
            };
            if !matches!(action.change, Change::None) {
                staging
                    .stage(
                        &action.table,
                        &action.table.definition(),
                        &action.row_key,
                        old.as_ref(),
                        new.as_ref(),
                    )
                    .map_err(|e| match e {
                        Error::Validation(_) => validation_reason(count, index, e),
                        other => other,
                    })?;
                staged.push(index);
                let total = staging.index_writes().count();
                let local: f64 = staging
                    .index_writes()
                    .skip(staged_index_writes)
                    .filter(|w| w.kind == IndexKind::Local)
                    .map(|w| w.units)
                    .sum();
                let size = old
                    .as_ref()
                    .map_or(0, item_size)
                    .max(new.as_ref().map_or(0, item_size));
                // Transactions cost double: a prepare and a commit.
                shares.push((
                    index,
                    2.0 * (write_units(size) + local),
                    total - staged_index_writes,
                ));
                staged_index_writes = total;
            }
            news.push(new);
        }
        let definitions: Vec<_> = planned.iter().map(|p| p.table.definition()).collect();
        let mut writes = staging.index_writes();
        let charges: Vec<ItemCharge<'_>> = shares
            .iter()
            .map(|&(index, units, index_writes)| ItemCharge {
                table: &planned[index].table,
                definition: &definitions[index],
                token: row_token(&planned[index].row_key),
                units,
                global: writes
                    .by_ref()
                    .take(index_writes)
                    .filter(|w| w.kind == IndexKind::Global)
                    // GSI propagation is outside the transaction's two
                    // phases: ordinary price, as the report says.
                    .map(|w| (w.name.as_str(), w.units))
                    .collect(),
            })
            .collect();
        if let Err((at, error)) = admit_writes(inner, &charges) {
            let mut reasons = vec![CancellationReason::none(); count];
            if let Some(reason) = shares.get(at).and_then(|s| reasons.get_mut(s.0)) {
                *reason = CancellationReason::new(
                    "ProvisionedThroughputExceeded",
                    &error.message(),
                    None,
                );
            }
            return Err(Error::TransactionCanceled { reasons });
        }
        drop(charges);
        drop(writes);
        if let Some(key) = &token_key {
            let mut record = fingerprint.to_be_bytes().to_vec();
            record.extend_from_slice(&now_millis.to_be_bytes());
            staging.batch.put(key, &record);
        }
        let effects = staging.commit().map_err(|e| match e {
            Error::ItemCollectionSizeLimitExceeded(message) => {
                let mut reasons = vec![CancellationReason::none(); count];
                if let Some(reason) = reasons.first_mut() {
                    *reason =
                        CancellationReason::new("ItemCollectionSizeLimitExceeded", &message, None);
                }
                Error::TransactionCanceled { reasons }
            }
            other => other,
        })?;
        let mut sizes = Vec::with_capacity(count);
        for (old, new) in olds.iter().zip(&news) {
            let (old, new) = (old.as_ref().map(item_size), new.as_ref().map(item_size));
            sizes.push(old.unwrap_or(0).max(new.unwrap_or(0)));
        }
        // Splits the writes asked for run once no gate is held.
        drop(_locks);
        drop(_gates);
        for action in &planned {
            run_pending(inner, &action.table);
        }
        let mut per_action: Vec<Option<Effects>> = (0..count).map(|_| None).collect();
        for (index, effects) in staged.into_iter().zip(effects) {
            per_action[index] = Some(effects);
        }
        Ok(self.report(&planned, &sizes, per_action, false))
    }

    /// What the request reports: capacity per table — two write units per
    /// KB per action and per local index entry written (a replay reports
    /// read units, as DynamoDB does), plus each global index write at its
    /// ordinary price (GSI propagation is not part of the transaction's
    /// protocol; the throttle charges the same) — and the item collections
    /// changed.
    fn report(
        &self,
        planned: &[Planned],
        sizes: &[usize],
        mut effects: Vec<Option<Effects>>,
        replay: bool,
    ) -> TransactWriteItemsOutput {
        let mut tally = Tally::default();
        let mut collections = CollectionTally::default();
        for (index, action) in planned.iter().enumerate() {
            let size = sizes.get(index).copied().unwrap_or(0);
            let units = if replay {
                (read_units(size, true), 0.0)
            } else {
                (0.0, 2.0 * write_units(size))
            };
            let action_effects = effects.get_mut(index).and_then(Option::as_mut);
            let indexes =
                action_effects
                    .iter()
                    .flat_map(|e| e.indexes.iter())
                    .map(|w| -> IndexUnits<'_> {
                        // A local index entry is written with its item, so it
                        // is part of the transaction; a global one is not.
                        let factor = if w.kind == IndexKind::Local { 2.0 } else { 1.0 };
                        (w.kind, &w.name, 0.0, factor * w.units)
                    });
            tally.add(&action.table_name, units, indexes);
            if let Some(action_effects) = effects.get_mut(index).and_then(Option::as_mut) {
                collections.add(&action.table_name, action_effects);
            }
        }
        TransactWriteItemsOutput {
            consumed_capacity: tally.report(self.return_consumed_capacity),
            item_collection_metrics: collections.report(self.return_item_collection_metrics),
        }
    }

    /// A hash of everything the request asks for, to tell a retry from a
    /// different request under the same token.
    fn fingerprint(&self) -> u128 {
        let mut hasher = Xxh3::new();
        let mut bytes = Vec::new();
        let string = |hasher: &mut Xxh3, s: &str| {
            hasher.update(&(s.len() as u64).to_be_bytes());
            hasher.update(s.as_bytes());
        };
        for action in &self.items {
            let (tag, table, item, expressions, attributes) = match action {
                TransactWriteItem::Put(a) => (
                    0u8,
                    &a.table,
                    &a.item,
                    [a.condition_expression.as_deref(), None],
                    &a.attributes,
                ),
                TransactWriteItem::Update(a) => (
                    1,
                    &a.table,
                    &a.key,
                    [
                        a.condition_expression.as_deref(),
                        Some(a.update_expression.as_str()),
                    ],
                    &a.attributes,
                ),
                TransactWriteItem::Delete(a) => (
                    2,
                    &a.table,
                    &a.key,
                    [a.condition_expression.as_deref(), None],
                    &a.attributes,
                ),
                TransactWriteItem::ConditionCheck(a) => (
                    3,
                    &a.table,
                    &a.key,
                    [a.condition_expression.as_deref(), None],
                    &a.attributes,
                ),
            };
            hasher.update(&[tag]);
            string(&mut hasher, table);
            bytes.clear();
            encode_item(item, &mut bytes);
            hasher.update(&bytes);
            for expression in expressions {
                string(&mut hasher, expression.unwrap_or("\0none"));
            }
            for (placeholder, name) in attributes.names.iter().flatten() {
                string(&mut hasher, placeholder);
                string(&mut hasher, name);
            }
            let values: Item = attributes
                .values
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            bytes.clear();
            encode_item(&values, &mut bytes);
            hasher.update(&bytes);
        }
        hasher.digest128()
    }
}

fn decode_token_record(record: &[u8]) -> Result<(u128, u64)> {
    let hash = record.get(..16).and_then(|b| b.try_into().ok());
    let completed = record.get(16..24).and_then(|b| b.try_into().ok());
    match (hash, completed) {
        (Some(hash), Some(completed)) => {
            Ok((u128::from_be_bytes(hash), u64::from_be_bytes(completed)))
        }
        _ => Err(Error::Storage(crate::storage::StorageError::corruption(
            "transaction token record",
            0,
            "record shorter than 24 bytes",
        ))),
    }
}

/// One read of a get transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactGet {
    table: String,
    key: Item,
    projection_expression: Option<String>,
    attributes: ExpressionAttributes,
}

impl TransactGet {
    /// Reads the item of `key` in `table`.
    pub fn new(table: impl Into<String>, key: impl Into<Item>) -> Self {
        Self {
            table: table.into(),
            key: key.into(),
            projection_expression: None,
            attributes: ExpressionAttributes::default(),
        }
    }

    /// Which attributes to return.
    pub fn projection_expression(mut self, expression: impl Into<String>) -> Self {
        self.projection_expression = Some(expression.into());
        self
    }
}
expression_attribute_setters!(TransactGet);

/// A `transact_get_items` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TransactGetItems {
    db: Database,
    items: Vec<TransactGet>,
    return_consumed_capacity: ReturnConsumedCapacity,
}

/// What `transact_get_items` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactGetItemsOutput {
    /// One entry per read, in order: the item, or `None` if absent.
    pub responses: Vec<Option<Item>>,
    /// The capacity consumed per table, if requested.
    pub consumed_capacity: Vec<ConsumedCapacity>,
}

impl TransactGetItems {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            items: Vec::new(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// Adds a read.
    pub fn item(mut self, get: TransactGet) -> Self {
        self.items.push(get);
        self
    }

    /// Whether to report consumed capacity.
    pub fn return_consumed_capacity(mut self, value: ReturnConsumedCapacity) -> Self {
        self.return_consumed_capacity = value;
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<TransactGetItemsOutput> {
        if self.items.is_empty() || self.items.len() > TRANSACT_ITEMS_MAX {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'TransactItems' failed to satisfy \
                 constraint: Member must have length {}",
                if self.items.is_empty() {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 100"
                }
            )));
        }
        let inner = &self.db.inner;
        let mut plans: Vec<(Vec<u8>, Option<Projection>)> = Vec::with_capacity(self.items.len());
        let mut tables = Vec::with_capacity(self.items.len());
        for get in &self.items {
            let table = inner.kv.table(&get.table)?;
            tables.push(Arc::clone(&table));
            let definition = table.definition();
            let mut placeholders = get
                .attributes
                .placeholders(get.projection_expression.is_some())?;
            let projection = get
                .projection_expression
                .as_deref()
                .map(|text| expr::parse_projection(text, &mut placeholders))
                .transpose()?;
            placeholders.check_unused()?;
            let row_key = key_from_key_map(&definition.key, &get.key)?.row_key(definition.keyspace);
            plans.push((row_key, projection));
        }
        let mut targets = HashSet::new();
        if !plans.iter().all(|(row_key, _)| targets.insert(row_key)) {
            return Err(Error::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        // Provisioned tables: every read must be admitted before any is
        // served; one that cannot be cancels the transaction.
        let definitions: Vec<_> = tables.iter().map(|t| t.definition()).collect();
        let partitions: Vec<_> = plans
            .iter()
            .zip(&tables)
            .map(|((row_key, _), table)| {
                let token = row_token(row_key);
                (table.partitions.partition(token), token)
            })
            .collect();
        let targets: Vec<Target<'_>> = tables
            .iter()
            .zip(&definitions)
            .zip(&partitions)
            .map(|((table, definition), (partition, token))| Target {
                db: inner,
                table,
                definition,
                partition: Some((partition, *token)),
                index: None,
            })
            .collect();
        for (at, target) in targets.iter().enumerate() {
            if let Err(error) = target.check_read() {
                let mut reasons = vec![CancellationReason::none(); targets.len()];
                reasons[at] = CancellationReason::new(
                    "ProvisionedThroughputExceeded",
                    &error.message(),
                    None,
                );
                return Err(Error::TransactionCanceled { reasons });
            }
        }
        let snapshot = inner.engine.snapshot()?;
        let mut output = TransactGetItemsOutput::default();
        for (((row_key, projection), get), target) in plans.iter().zip(&self.items).zip(&targets) {
            let item = match inner.engine.get_at(&snapshot, row_key)? {
                Some(bytes) => Some(decode_item(&bytes)?),
                None => None,
            }
            .filter(|item| !super::ttl::hides(inner, &get.table, item));
            let read = 2.0 * read_units(item.as_ref().map_or(0, item_size), true);
            target.charge_read(read);
            if self.return_consumed_capacity != ReturnConsumedCapacity::None {
                match output
                    .consumed_capacity
                    .iter_mut()
                    .find(|c| c.table_name == get.table)
                {
                    Some(entry) => {
                        entry.read_capacity_units += read;
                        entry.capacity_units += read;
                    }
                    None => output.consumed_capacity.push(ConsumedCapacity {
                        table_name: get.table.clone(),
                        capacity_units: read,
                        read_capacity_units: read,
                        write_capacity_units: 0.0,
                        ..ConsumedCapacity::default()
                    }),
                }
            }
            output.responses.push(match (item, projection) {
                (Some(item), Some(projection)) => Some(projection.apply(&item)),
                (item, _) => item,
            });
        }
        Ok(output)
    }
}
