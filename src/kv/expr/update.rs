//! Applying a parsed update expression to an item.
//!
//! DynamoDB reads every operand of every `SET` from the item as it was
//! before the update (so `SET a = b REMOVE b` copies the old `b`), then
//! applies the actions. Application works on a copy and replaces the item
//! only when every action succeeded, so an error leaves it untouched.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::ast::{Path, PathElement, SetValue, UpdateExpression, UpdateOperand, ValueAction};
use super::error::{ExpressionError, incorrect_data_type, invalid_document_path};
use super::path::{Parent, parent_mut, resolve};
use crate::value::{AttributeValue, Item, Number};

/// Whether the item an update applies to was stored before.
///
/// DynamoDB accepts `REMOVE a.b` and `REMOVE a[0]` on an item that does
/// not exist (there is nothing to remove), but rejects them on a stored
/// item without `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// The item was read from the table.
    Existing,
    /// No item has the key; the update creates it from its key attributes.
    New,
}

impl UpdateExpression {
    /// Fails if an action writes one of the table's key attributes, with
    /// DynamoDB's message. The caller passes its key schema's names.
    pub fn check_key_attributes<'k>(
        &self,
        key_attribute_names: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), ExpressionError> {
        let keys: Vec<&str> = key_attribute_names.into_iter().collect();
        match self
            .target_paths()
            .map(Path::top_level_name)
            .find(|name| keys.contains(name))
        {
            Some(name) => Err(ExpressionError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. \
                 This attribute is part of the key"
            ))),
            None => Ok(()),
        }
    }

    /// Applies the update to `item` and returns the names of the top-level
    /// attributes its actions target (what `UPDATED_OLD`/`UPDATED_NEW`
    /// return). On error `item` is unchanged.
    ///
    /// The caller validates the resulting item (size, nesting, key types).
    pub fn apply(
        &self,
        item: &mut Item,
        state: ItemState,
    ) -> Result<BTreeSet<String>, ExpressionError> {
        let values = self
            .set
            .iter()
            .map(|action| evaluate(item, &action.value))
            .collect::<Result<Vec<_>, _>>()?;
        let mut updated = item.clone();

        // Writes to one list apply in index order, so `SET a[7] = :x,
        // a[5] = :y` on a short list appends `:y` before `:x`.
        let mut sets: Vec<(&Path, AttributeValue)> = self
            .set
            .iter()
            .map(|action| &action.path)
            .zip(values)
            .collect();
        sets.sort_by(|a, b| compare_paths(a.0, b.0));
        for (path, value) in sets {
            assign(&mut updated, path, value)?;
        }

        // Removing higher indexes first keeps every index pointing at the
        // element it named in the original list.
        let mut removes: Vec<&Path> = self.remove.iter().collect();
        removes.sort_by(|a, b| compare_paths(b, a));
        for path in removes {
            remove(&mut updated, path, state)?;
        }

        for action in &self.add {
            add(&mut updated, action)?;
        }
        for action in &self.delete {
            delete(&mut updated, action, state)?;
        }

        *item = updated;
        Ok(self
            .target_paths()
            .map(|path| path.top_level_name().to_owned())
            .collect())
    }
}

/// A total order on paths: by steps, names before indexes, indexes by
/// value, a prefix before its extensions.
fn compare_paths(a: &Path, b: &Path) -> Ordering {
    for (x, y) in a.elements().iter().zip(b.elements()) {
        let order = match (x, y) {
            (PathElement::Name(x), PathElement::Name(y)) => x.name.cmp(&y.name),
            (PathElement::Index(x), PathElement::Index(y)) => x.cmp(y),
            (PathElement::Name(_), PathElement::Index(_)) => Ordering::Less,
            (PathElement::Index(_), PathElement::Name(_)) => Ordering::Greater,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.elements().len().cmp(&b.elements().len())
}

/// The value a `SET` assigns, read from the original item.
fn evaluate(item: &Item, value: &SetValue) -> Result<AttributeValue, ExpressionError> {
    let (first, second, subtract) = match value {
        SetValue::Operand(operand) => return evaluate_operand(item, operand),
        SetValue::Plus(first, second) => (first, second, false),
        SetValue::Minus(first, second) => (first, second, true),
    };
    let (AttributeValue::N(a), AttributeValue::N(b)) = (
        evaluate_operand(item, first)?,
        evaluate_operand(item, second)?,
    ) else {
        return Err(incorrect_data_type());
    };
    let result: Number = if subtract {
        a.checked_sub(&b)?
    } else {
        a.checked_add(&b)?
    };
    Ok(AttributeValue::N(result))
}

fn evaluate_operand(
    item: &Item,
    operand: &UpdateOperand,
) -> Result<AttributeValue, ExpressionError> {
    match operand {
        UpdateOperand::Path(path) => resolve(item, path).cloned().ok_or_else(|| {
            ExpressionError::validation(
                "The provided expression refers to an attribute that does not exist in the item",
            )
        }),
        UpdateOperand::Value(value) => Ok(value.value.clone()),
        UpdateOperand::IfNotExists(path, fallback) => match resolve(item, path) {
            Some(value) => Ok(value.clone()),
            None => evaluate_operand(item, fallback),
        },
        UpdateOperand::ListAppend(first, second) => {
            match (
                evaluate_operand(item, first)?,
                evaluate_operand(item, second)?,
            ) {
                (AttributeValue::L(mut first), AttributeValue::L(second)) => {
                    first.extend(second);
                    Ok(AttributeValue::L(first))
                }
                _ => Err(incorrect_data_type()),
            }
        }
    }
}

/// Puts `value` at `path`; an index past a list's end appends.
fn assign(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), ExpressionError> {
    match parent_mut(item, path) {
        Some(Parent::Map(map, name)) => {
            map.insert(name.to_owned(), value);
        }
        Some(Parent::List(list, index)) => match list.get_mut(index) {
            Some(slot) => *slot = value,
            None => list.push(value),
        },
        None => return Err(invalid_document_path()),
    }
    Ok(())
}

/// Removes what is at `path`; nothing there is fine, an unreachable parent
/// is an error unless the item is new.
fn remove(item: &mut Item, path: &Path, state: ItemState) -> Result<(), ExpressionError> {
    match parent_mut(item, path) {
        Some(Parent::Map(map, name)) => {
            map.remove(name);
        }
        Some(Parent::List(list, index)) => {
            if index < list.len() {
                list.remove(index);
            }
        }
        None if state == ItemState::New => {}
        None => return Err(invalid_document_path()),
    }
    Ok(())
}

/// `ADD`: adds to a number or unions into a set; a missing attribute
/// starts at zero or the empty set.
fn add(item: &mut Item, action: &ValueAction) -> Result<(), ExpressionError> {
    let added = &action.value.value;
    let new = match (resolve(item, &action.path), added) {
        (None, _) => added.clone(),
        (Some(AttributeValue::N(current)), AttributeValue::N(n)) => {
            AttributeValue::N(current.checked_add(n)?)
        }
        (Some(AttributeValue::Ss(current)), AttributeValue::Ss(more)) => {
            AttributeValue::Ss(current.union(more).cloned().collect())
        }
        (Some(AttributeValue::Ns(current)), AttributeValue::Ns(more)) => {
            AttributeValue::Ns(current.union(more).copied().collect())
        }
        (Some(AttributeValue::Bs(current)), AttributeValue::Bs(more)) => {
            AttributeValue::Bs(current.union(more).cloned().collect())
        }
        _ => return Err(incorrect_data_type()),
    };
    assign(item, &action.path, new)
}

/// `DELETE`: removes elements from a set; a set left empty is removed.
fn delete(item: &mut Item, action: &ValueAction, state: ItemState) -> Result<(), ExpressionError> {
    let removed = &action.value.value;
    let remaining = match (resolve(item, &action.path), removed) {
        (None, _) => {
            // Nothing to delete from, but the path must still be reachable.
            return match parent_mut(item, &action.path) {
                Some(_) => Ok(()),
                None if state == ItemState::New => Ok(()),
                None => Err(invalid_document_path()),
            };
        }
        (Some(AttributeValue::Ss(current)), AttributeValue::Ss(gone)) => {
            AttributeValue::Ss(current.difference(gone).cloned().collect())
        }
        (Some(AttributeValue::Ns(current)), AttributeValue::Ns(gone)) => {
            AttributeValue::Ns(current.difference(gone).copied().collect())
        }
        (Some(AttributeValue::Bs(current)), AttributeValue::Bs(gone)) => {
            AttributeValue::Bs(current.difference(gone).cloned().collect())
        }
        _ => return Err(incorrect_data_type()),
    };
    let emptied = match &remaining {
        AttributeValue::Ss(set) => set.is_empty(),
        AttributeValue::Ns(set) => set.is_empty(),
        AttributeValue::Bs(set) => set.is_empty(),
        _ => false,
    };
    if emptied {
        remove(item, &action.path, state)
    } else {
        assign(item, &action.path, remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::item;
    use crate::kv::expr::{Placeholders, parse_update};

    fn apply(
        source: &str,
        item: &mut Item,
        state: ItemState,
    ) -> Result<BTreeSet<String>, ExpressionError> {
        let names = BTreeMap::new();
        let values = BTreeMap::from([
            (":v".to_string(), AttributeValue::from(1)),
            (":ns".to_string(), AttributeValue::number_set([1, 2])),
            (":three".to_string(), AttributeValue::number_set([3])),
        ]);
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        parse_update(source, &mut placeholders)
            .unwrap()
            .apply(item, state)
    }

    #[test]
    fn paths_order_by_steps_with_indexes_numerically() {
        let names = BTreeMap::new();
        let values = BTreeMap::from([(":v".to_string(), AttributeValue::from(1))]);
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        let parsed = parse_update("REMOVE a[10], a[9], b", &mut placeholders).unwrap();
        let paths = parsed.remove_actions();
        assert_eq!(compare_paths(&paths[1], &paths[0]), Ordering::Less);
        assert_eq!(compare_paths(&paths[0], &paths[2]), Ordering::Less);
    }

    #[test]
    fn removing_the_last_elements_of_a_set_removes_the_attribute() {
        let mut item = item! { "s" => AttributeValue::number_set([1, 2, 3]) };
        apply("DELETE s :ns", &mut item, ItemState::Existing).unwrap();
        assert_eq!(item["s"], AttributeValue::number_set([3]));
        apply("DELETE s :three ADD t :ns", &mut item, ItemState::Existing).unwrap();
        assert_eq!(item.get("s"), None);
        assert_eq!(item["t"], AttributeValue::number_set([1, 2]));
    }

    #[test]
    fn a_new_item_accepts_nested_removes_but_not_nested_writes() {
        let mut item = item! { "pk" => "k" };
        apply("REMOVE a.b, c[3] DELETE d.e :ns", &mut item, ItemState::New).unwrap();
        assert_eq!(item, item! { "pk" => "k" });
        let error = apply("ADD a.b :v", &mut item, ItemState::New).unwrap_err();
        assert_eq!(error, invalid_document_path());
    }

    #[test]
    fn errors_leave_the_item_untouched() {
        let mut item = item! { "n" => 5, "s" => "text" };
        let before = item.clone();
        let error =
            apply("SET n = n + :v, m = s + :v", &mut item, ItemState::Existing).unwrap_err();
        assert_eq!(error, incorrect_data_type());
        assert_eq!(item, before);
    }
}
