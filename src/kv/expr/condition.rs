//! Evaluating a parsed condition or filter against an item.
//!
//! DynamoDB's semantics: a missing attribute equals nothing (so `<>` with
//! it is true) and orders against nothing; values of different types are
//! unequal and unordered; `size` of a type without a size is missing. None
//! of this is an error at evaluation time — the checks that are errors ran
//! when parsing.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{Comparator, Condition, Function, Operand, Path};
use super::error::ExpressionError;
use super::path::resolve;
use crate::value::{AttributeValue, Item, Number};

impl Condition {
    /// Whether `item` satisfies the condition. A missing item is an empty
    /// [`Item`].
    pub fn evaluate(&self, item: &Item) -> bool {
        match self {
            Self::Compare {
                comparator,
                left,
                right,
            } => compare(*comparator, operand(item, left), operand(item, right)),
            Self::Between {
                operand: tested,
                lower,
                upper,
            } => {
                let (Some(value), Some(lower), Some(upper)) = (
                    operand(item, tested),
                    operand(item, lower),
                    operand(item, upper),
                ) else {
                    return false;
                };
                compare_scalars(&value, &lower).is_some_and(Ordering::is_ge)
                    && compare_scalars(&value, &upper).is_some_and(Ordering::is_le)
            }
            Self::In {
                operand: tested,
                candidates,
            } => {
                let Some(value) = operand(item, tested) else {
                    return false;
                };
                candidates
                    .iter()
                    .any(|candidate| operand(item, candidate).is_some_and(|c| c == value))
            }
            Self::Function(function) => function.evaluate(item),
            Self::Not(inner) => !inner.evaluate(item),
            Self::And(left, right) => left.evaluate(item) && right.evaluate(item),
            Self::Or(left, right) => left.evaluate(item) || right.evaluate(item),
        }
    }
}

impl Condition {
    /// Fails if the condition reads one of `key_attribute_names` — a Query's
    /// filter may not (DynamoDB's rule and message).
    pub fn check_no_key_attributes<'k>(
        &self,
        key_attribute_names: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), ExpressionError> {
        let keys: Vec<&str> = key_attribute_names.into_iter().collect();
        let mut found = None;
        self.visit_paths(&mut |path| {
            if found.is_none() && keys.contains(&path.top_level_name()) {
                found = Some(path.top_level_name().to_owned());
            }
        });
        match found {
            Some(name) => Err(ExpressionError::validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key \
                 attribute: {name}"
            ))),
            None => Ok(()),
        }
    }

    /// Calls `visit` with every document path the condition reads.
    pub fn visit_paths(&self, visit: &mut impl FnMut(&Path)) {
        match self {
            Self::Compare { left, right, .. } => {
                visit_operand(left, visit);
                visit_operand(right, visit);
            }
            Self::Between {
                operand,
                lower,
                upper,
            } => {
                for operand in [operand, lower, upper] {
                    visit_operand(operand, visit);
                }
            }
            Self::In {
                operand,
                candidates,
            } => {
                visit_operand(operand, visit);
                for candidate in candidates {
                    visit_operand(candidate, visit);
                }
            }
            Self::Function(function) => match function {
                Function::AttributeExists(path)
                | Function::AttributeNotExists(path)
                | Function::AttributeType(path, _) => visit(path),
                Function::BeginsWith(a, b) | Function::Contains(a, b) => {
                    visit_operand(a, visit);
                    visit_operand(b, visit);
                }
            },
            Self::Not(inner) => inner.visit_paths(visit),
            Self::And(left, right) | Self::Or(left, right) => {
                left.visit_paths(visit);
                right.visit_paths(visit);
            }
        }
    }
}

fn visit_operand(operand: &Operand, visit: &mut impl FnMut(&Path)) {
    match operand {
        Operand::Path(path) => visit(path),
        Operand::Value(_) => {}
        Operand::Size(inner) => visit_operand(inner, visit),
    }
}

impl Function {
    fn evaluate(&self, item: &Item) -> bool {
        match self {
            Self::AttributeExists(path) => resolve(item, path).is_some(),
            Self::AttributeNotExists(path) => resolve(item, path).is_none(),
            Self::AttributeType(path, type_name) => match (resolve(item, path), &type_name.value) {
                (Some(value), AttributeValue::S(name)) => value.attribute_type().name() == name,
                _ => false,
            },
            Self::BeginsWith(whole, prefix) => {
                match (
                    operand(item, whole).as_deref(),
                    operand(item, prefix).as_deref(),
                ) {
                    (Some(AttributeValue::S(s)), Some(AttributeValue::S(p))) => {
                        s.starts_with(p.as_str())
                    }
                    (Some(AttributeValue::B(b)), Some(AttributeValue::B(p))) => b.starts_with(p),
                    _ => false,
                }
            }
            Self::Contains(container, element) => {
                match (operand(item, container), operand(item, element)) {
                    (Some(container), Some(element)) => contains(&container, &element),
                    _ => false,
                }
            }
        }
    }
}

/// The value of an operand for `item`: borrowed from the item or the
/// expression, or computed for `size`.
fn operand<'v>(item: &'v Item, operand: &'v Operand) -> Option<Cow<'v, AttributeValue>> {
    match operand {
        Operand::Path(path) => resolve(item, path).map(Cow::Borrowed),
        Operand::Value(value) => Some(Cow::Borrowed(&value.value)),
        Operand::Size(inner) => {
            let value = self::operand(item, inner)?;
            size(&value).map(|n| Cow::Owned(AttributeValue::N(Number::from(n))))
        }
    }
}

/// DynamoDB's `size`: characters of a string, bytes of a binary, elements
/// of a set, list or map; numbers, booleans and nulls have none.
pub(crate) fn size(value: &AttributeValue) -> Option<usize> {
    match value {
        AttributeValue::S(s) => Some(s.chars().count()),
        AttributeValue::B(b) => Some(b.len()),
        AttributeValue::Ss(set) => Some(set.len()),
        AttributeValue::Ns(set) => Some(set.len()),
        AttributeValue::Bs(set) => Some(set.len()),
        AttributeValue::L(list) => Some(list.len()),
        AttributeValue::M(map) => Some(map.len()),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => None,
    }
}

fn compare(
    comparator: Comparator,
    left: Option<Cow<'_, AttributeValue>>,
    right: Option<Cow<'_, AttributeValue>>,
) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        // Nothing equals a missing attribute, so only `<>` holds.
        return comparator == Comparator::NotEqual;
    };
    let order = || compare_scalars(&left, &right);
    match comparator {
        Comparator::Equal => left == right,
        Comparator::NotEqual => left != right,
        Comparator::Less => order().is_some_and(Ordering::is_lt),
        Comparator::LessOrEqual => order().is_some_and(Ordering::is_le),
        Comparator::Greater => order().is_some_and(Ordering::is_gt),
        Comparator::GreaterOrEqual => order().is_some_and(Ordering::is_ge),
    }
}

/// DynamoDB's order between two values of the same scalar type: numbers by
/// value, strings by UTF-8 bytes, binaries as unsigned bytes. Other pairs
/// are unordered.
pub(crate) fn compare_scalars(left: &AttributeValue, right: &AttributeValue) -> Option<Ordering> {
    match (left, right) {
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.as_slice().cmp(b.as_slice())),
        _ => None,
    }
}

/// `contains`: a substring of a string, a byte run of a binary, a member
/// of a set of the element's type, or an element of a list.
fn contains(container: &AttributeValue, element: &AttributeValue) -> bool {
    match (container, element) {
        (AttributeValue::S(s), AttributeValue::S(part)) => s.contains(part.as_str()),
        (AttributeValue::B(b), AttributeValue::B(part)) => {
            part.is_empty()
                || b.windows(part.len())
                    .any(|window| window == part.as_slice())
        }
        (AttributeValue::Ss(set), AttributeValue::S(s)) => set.contains(s),
        (AttributeValue::Ns(set), AttributeValue::N(n)) => set.contains(n),
        (AttributeValue::Bs(set), AttributeValue::B(b)) => set.contains(b),
        (AttributeValue::L(list), element) => list.contains(element),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_order_within_their_type_only() {
        let n = |v: i64| AttributeValue::from(v);
        assert_eq!(compare_scalars(&n(2), &n(10)), Some(Ordering::Less));
        assert_eq!(
            compare_scalars(&AttributeValue::from("b"), &AttributeValue::from("a")),
            Some(Ordering::Greater)
        );
        // Unsigned bytes: 0xff sorts after 0x01.
        assert_eq!(
            compare_scalars(
                &AttributeValue::B(vec![0xff]),
                &AttributeValue::B(vec![0x01])
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_scalars(&n(1), &AttributeValue::from("1")), None);
        assert_eq!(
            compare_scalars(&AttributeValue::Null, &AttributeValue::Null),
            None
        );
    }

    #[test]
    fn size_counts_characters_bytes_and_elements() {
        assert_eq!(size(&AttributeValue::from("héllo")), Some(5));
        assert_eq!(size(&AttributeValue::B(vec![1, 2, 3])), Some(3));
        assert_eq!(size(&AttributeValue::string_set(["a", "b"])), Some(2));
        assert_eq!(size(&AttributeValue::from(5)), None);
        assert_eq!(size(&AttributeValue::Bool(true)), None);
    }

    #[test]
    fn contains_matches_by_container_type() {
        let s = AttributeValue::from;
        assert!(contains(&s("hello"), &s("ell")));
        assert!(!contains(&s("hello"), &AttributeValue::from(1)));
        assert!(contains(
            &AttributeValue::B(vec![1, 2, 3]),
            &AttributeValue::B(vec![2, 3])
        ));
        assert!(contains(
            &AttributeValue::number_set([1, 2]),
            &AttributeValue::from(2)
        ));
        assert!(!contains(&AttributeValue::number_set([1, 2]), &s("2")));
        assert!(contains(
            &AttributeValue::L(vec![s("x"), AttributeValue::from(3)]),
            &AttributeValue::from(3)
        ));
        assert!(!contains(
            &AttributeValue::from(12),
            &AttributeValue::from(1)
        ));
    }
}
