//! Transactions through the accelerator. `transact_write_items` commits on
//! the table, then refreshes every item it wrote with one
//! `TransactGetItems` (one snapshot) before returning; a cancelled
//! transaction changes nothing in the cache. `transact_get_items` passes
//! through, never cached.
//!
//! The actions wrap the table's (`kv::TransactPut`, ...) and remember the
//! table and key each one writes, which the refresh needs.

use super::Accelerator;
use super::keys::{key_definition, key_map_of};
use super::request::field_setters;
use super::stats::Counter;
use super::writes::{After, Target};
use crate::kv::{
    self, Result, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactGet,
    TransactGetItemsOutput, TransactWriteItemsOutput,
};
use crate::value::{AttributeValue, Item};

/// Implements the per-action setters by handing them to the wrapped table
/// action.
macro_rules! action_setters {
    ($action:ident) => {
        impl $action {
            /// A condition the stored item must meet.
            pub fn condition_expression(mut self, expression: impl Into<String>) -> Self {
                self.action = self.action.condition_expression(expression);
                self
            }

            /// Whether a failed condition returns the stored item in the
            /// cancellation reason.
            pub fn return_values_on_condition_check_failure(
                mut self,
                value: ReturnValuesOnConditionCheckFailure,
            ) -> Self {
                self.action = self.action.return_values_on_condition_check_failure(value);
                self
            }

            /// Sets `ExpressionAttributeNames` (`#placeholder` -> name).
            pub fn expression_attribute_names(
                mut self,
                names: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
            ) -> Self {
                self.action = self.action.expression_attribute_names(names);
                self
            }

            /// Sets `ExpressionAttributeValues` (`:placeholder` -> value).
            pub fn expression_attribute_values(
                mut self,
                values: impl IntoIterator<Item = (impl Into<String>, impl Into<AttributeValue>)>,
            ) -> Self {
                self.action = self.action.expression_attribute_values(values);
                self
            }

            /// Adds one `#placeholder` -> attribute name.
            pub fn name(mut self, placeholder: impl Into<String>, name: impl Into<String>) -> Self {
                self.action = self.action.name(placeholder, name);
                self
            }

            /// Adds one `:placeholder` -> value.
            pub fn value(
                mut self,
                placeholder: impl Into<String>,
                value: impl Into<AttributeValue>,
            ) -> Self {
                self.action = self.action.value(placeholder, value);
                self
            }
        }
    };
}

/// A transactional put through the accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactPut {
    table: String,
    item: Item,
    action: kv::TransactPut,
}

impl TransactPut {
    /// Puts `item` into `table`.
    pub fn new(table: impl Into<String>, item: impl Into<Item>) -> Self {
        let (table, item) = (table.into(), item.into());
        let action = kv::TransactPut::new(table.clone(), item.clone());
        Self {
            table,
            item,
            action,
        }
    }
}
action_setters!(TransactPut);

/// A transactional update through the accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactUpdate {
    table: String,
    key: Item,
    action: kv::TransactUpdate,
}

impl TransactUpdate {
    /// Applies `update_expression` to the item of `key` in `table`.
    pub fn new(
        table: impl Into<String>,
        key: impl Into<Item>,
        update_expression: impl Into<String>,
    ) -> Self {
        let (table, key) = (table.into(), key.into());
        let action = kv::TransactUpdate::new(table.clone(), key.clone(), update_expression);
        Self { table, key, action }
    }
}
action_setters!(TransactUpdate);

/// A transactional delete through the accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactDelete {
    table: String,
    key: Item,
    action: kv::TransactDelete,
}

impl TransactDelete {
    /// Deletes the item of `key` from `table`.
    pub fn new(table: impl Into<String>, key: impl Into<Item>) -> Self {
        let (table, key) = (table.into(), key.into());
        let action = kv::TransactDelete::new(table.clone(), key.clone());
        Self { table, key, action }
    }
}
action_setters!(TransactDelete);

/// A transactional condition check through the accelerator (writes
/// nothing, refreshes nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionCheck {
    action: kv::ConditionCheck,
}

impl ConditionCheck {
    /// Checks the item of `key` in `table` (set the condition with
    /// `condition_expression`; it is required).
    pub fn new(table: impl Into<String>, key: impl Into<Item>) -> Self {
        Self {
            action: kv::ConditionCheck::new(table, key),
        }
    }
}
action_setters!(ConditionCheck);

/// One action of a write transaction through the accelerator.
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

impl TransactWriteItem {
    /// The table's action.
    fn to_table(&self) -> kv::TransactWriteItem {
        match self {
            Self::Put(put) => put.action.clone().into(),
            Self::Update(update) => update.action.clone().into(),
            Self::Delete(delete) => delete.action.clone().into(),
            Self::ConditionCheck(check) => check.action.clone().into(),
        }
    }

    /// The table and key map this action writes (`Ok(None)`: it writes
    /// nothing; `Err(())`: no key the table would accept).
    fn written(&self, accelerator: &Accelerator) -> std::result::Result<Option<(&str, Item)>, ()> {
        Ok(match self {
            Self::Put(put) => {
                let definition =
                    key_definition(&accelerator.shared.db, &put.table).map_err(|_| ())?;
                Some((
                    put.table.as_str(),
                    key_map_of(&definition, &put.item).ok_or(())?,
                ))
            }
            Self::Update(update) => Some((update.table.as_str(), update.key.clone())),
            Self::Delete(delete) => Some((delete.table.as_str(), delete.key.clone())),
            Self::ConditionCheck(_) => None,
        })
    }
}

/// A `transact_write_items` request through the accelerator.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TransactWriteItems {
    accelerator: Accelerator,
    items: Vec<TransactWriteItem>,
    client_request_token: Option<String>,
    return_consumed_capacity: ReturnConsumedCapacity,
}

field_setters!(TransactWriteItems {
    /// Whether to report consumed capacity (the refresh read is not
    /// reported).
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl TransactWriteItems {
    pub(super) fn new(accelerator: Accelerator) -> Self {
        Self {
            accelerator,
            items: Vec::new(),
            client_request_token: None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// Adds an action.
    pub fn item(mut self, action: impl Into<TransactWriteItem>) -> Self {
        self.items.push(action.into());
        self
    }

    /// Adds actions.
    pub fn transact_items(mut self, actions: impl IntoIterator<Item = TransactWriteItem>) -> Self {
        self.items.extend(actions);
        self
    }

    /// Makes the request idempotent for ten minutes.
    pub fn client_request_token(mut self, token: impl Into<String>) -> Self {
        self.client_request_token = Some(token.into());
        self
    }

    /// Runs the request; once it committed, the items it wrote are read
    /// back in one snapshot into the item cache.
    pub fn send(self) -> Result<TransactWriteItemsOutput> {
        let shared = &self.accelerator.shared;
        let mut request = shared
            .db
            .transact_write_items()
            .transact_items(self.items.iter().map(TransactWriteItem::to_table))
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(token) = &self.client_request_token {
            request = request.client_request_token(token.clone());
        }
        let written: std::result::Result<Vec<_>, ()> = self
            .items
            .iter()
            .filter_map(|action| action.written(&self.accelerator).transpose())
            .collect();
        let Ok(written) = written else {
            return request.send();
        };
        let targets: Option<Vec<Target>> = written
            .iter()
            .map(|(table, key)| shared.target(table, key, None))
            .collect();
        let Some(targets) = targets else {
            return request.send();
        };
        let mut tables: Vec<&str> = written.iter().map(|(table, _)| *table).collect();
        tables.sort_unstable();
        tables.dedup();
        shared.write_through(
            &tables,
            targets,
            || request.send(),
            |_| {
                if written.is_empty() {
                    return Vec::new();
                }
                let refresh = written
                    .iter()
                    .fold(shared.db.transact_get_items(), |request, (table, key)| {
                        request.item(TransactGet::new(*table, key.clone()))
                    });
                match refresh.send() {
                    Ok(read) => read.responses.into_iter().map(After::Store).collect(),
                    Err(_) => written.iter().map(|_| After::Evict).collect(),
                }
            },
        )
    }
}

/// A `transact_get_items` request through the accelerator: passed through
/// to the table, never cached (DAX's rule for transactional reads).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TransactGetItems {
    accelerator: Accelerator,
    request: kv::TransactGetItems,
}

impl TransactGetItems {
    pub(super) fn new(accelerator: Accelerator) -> Self {
        let request = accelerator.shared.db.transact_get_items();
        Self {
            accelerator,
            request,
        }
    }

    /// Adds a read.
    pub fn item(mut self, get: TransactGet) -> Self {
        self.request = self.request.item(get);
        self
    }

    /// Whether to report consumed capacity.
    pub fn return_consumed_capacity(mut self, value: ReturnConsumedCapacity) -> Self {
        self.request = self.request.return_consumed_capacity(value);
        self
    }

    /// Runs the request on the table.
    pub fn send(self) -> Result<TransactGetItemsOutput> {
        self.accelerator
            .shared
            .counters
            .add(Counter::PassThrough, 1);
        self.request.send()
    }
}
