//! Key condition expressions of a Query: `pk = :v`, optionally `AND` one
//! condition on the sort key, checked against the key schema the caller
//! passes.
//!
//! DynamoDB parses them with the condition grammar and then rejects every
//! shape a key lookup cannot serve; the messages below are its own.

use std::cmp::Ordering;

use super::ast::{Comparator, Condition, Function, Operand, Path};
use super::condition::compare_scalars;
use super::condition_parser::parse_condition_grammar;
use super::error::{ExpressionError, ExpressionKind};
use super::placeholders::Placeholders;
use crate::value::{AttributeValue, ScalarType};

/// The key attributes of the table or index being queried: one partition
/// and at most one sort key attribute, or (composite keys of a global
/// index) up to four of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema<'k> {
    /// The partition key attributes' names and types, in key order.
    pub partition_keys: Vec<(&'k str, ScalarType)>,
    /// The sort key attributes' names and types, in key order.
    pub sort_keys: Vec<(&'k str, ScalarType)>,
}

impl<'k> KeySchema<'k> {
    /// A schema of one partition key attribute and an optional sort key.
    pub fn simple(
        partition_key: (&'k str, ScalarType),
        sort_key: Option<(&'k str, ScalarType)>,
    ) -> Self {
        Self {
            partition_keys: vec![partition_key],
            sort_keys: sort_key.into_iter().collect(),
        }
    }

    fn is_composite(&self) -> bool {
        self.partition_keys.len() > 1 || self.sort_keys.len() > 1
    }
}

/// A validated key condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    /// The partition key values to read, one per partition key attribute.
    pub partition_values: Vec<AttributeValue>,
    /// Composite sort keys: the values the leading sort key attributes
    /// must equal, before the one `sort_condition` constrains.
    pub sort_prefix: Vec<AttributeValue>,
    /// The condition on the sort key attribute after `sort_prefix`, if any.
    pub sort_condition: Option<SortKeyCondition>,
}

impl KeyCondition {
    /// The (first) partition key value.
    pub fn partition_value(&self) -> &AttributeValue {
        // Parsing always yields one value per partition key attribute.
        &self.partition_values[0]
    }
}

/// The one condition a Query may put on the sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyCondition {
    /// `sk op :v` for `= < <= > >=` (never `<>`).
    Compare(Comparator, AttributeValue),
    /// `sk BETWEEN :low AND :high`, inclusive.
    Between(AttributeValue, AttributeValue),
    /// `begins_with(sk, :prefix)` on a string or binary key.
    BeginsWith(AttributeValue),
}

impl SortKeyCondition {
    /// Whether a sort key value satisfies the condition.
    pub fn matches(&self, sort_value: &AttributeValue) -> bool {
        match self {
            Self::Compare(comparator, bound) => {
                let Some(order) = compare_scalars(sort_value, bound) else {
                    return false;
                };
                match comparator {
                    Comparator::Equal => order == Ordering::Equal,
                    Comparator::NotEqual => order != Ordering::Equal,
                    Comparator::Less => order == Ordering::Less,
                    Comparator::LessOrEqual => order != Ordering::Greater,
                    Comparator::Greater => order == Ordering::Greater,
                    Comparator::GreaterOrEqual => order != Ordering::Less,
                }
            }
            Self::Between(low, high) => {
                compare_scalars(sort_value, low).is_some_and(Ordering::is_ge)
                    && compare_scalars(sort_value, high).is_some_and(Ordering::is_le)
            }
            Self::BeginsWith(prefix) => match (sort_value, prefix) {
                (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
                (AttributeValue::B(b), AttributeValue::B(p)) => b.starts_with(p),
                _ => false,
            },
        }
    }
}

/// One `attribute <condition>` term of the expression.
struct Term {
    attribute: String,
    condition: SortKeyCondition,
}

/// Parses a key condition expression and checks it against `schema`.
pub(crate) fn parse_key_condition(
    source: &str,
    placeholders: &mut Placeholders<'_>,
    schema: &KeySchema<'_>,
) -> Result<KeyCondition, ExpressionError> {
    let condition = parse_condition_grammar(source, ExpressionKind::KeyCondition, placeholders)?;
    let mut leaves = Vec::new();
    collect_leaves(&condition, &mut leaves)?;
    let most = (schema.partition_keys.len() + schema.sort_keys.len()).max(2);
    if leaves.len() > most {
        return Err(ExpressionError::validation(if most == 2 {
            "Conditions can be of length 1 or 2 only".to_owned()
        } else {
            format!("Conditions can be of length 1 to {most} only")
        }));
    }
    let mut terms: Vec<Term> = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let term = term(leaf)?;
        if terms.iter().any(|t| t.attribute == term.attribute) {
            return Err(ExpressionError::validation(
                "KeyConditionExpressions must only contain one condition per key",
            ));
        }
        terms.push(term);
    }
    check_schema(terms, schema)
}

/// The `AND`ed leaves of `condition`, rejecting the operators a key
/// condition cannot use.
fn collect_leaves<'c>(
    condition: &'c Condition,
    leaves: &mut Vec<&'c Condition>,
) -> Result<(), ExpressionError> {
    let invalid = |operator: &str| {
        Err(ExpressionError::validation(format!(
            "Invalid operator used in KeyConditionExpression: {operator}"
        )))
    };
    match condition {
        Condition::And(left, right) => {
            collect_leaves(left, leaves)?;
            collect_leaves(right, leaves)
        }
        Condition::Or(..) => invalid("OR"),
        Condition::Not(_) => invalid("NOT"),
        Condition::In { .. } => invalid("IN"),
        Condition::Compare {
            comparator: Comparator::NotEqual,
            ..
        } => invalid("<>"),
        Condition::Function(function) if !matches!(function, Function::BeginsWith(..)) => {
            invalid(function.name())
        }
        leaf => {
            leaves.push(leaf);
            Ok(())
        }
    }
}

/// The attribute a leaf constrains and how.
fn term(leaf: &Condition) -> Result<Term, ExpressionError> {
    let operands: Vec<&Operand> = match leaf {
        Condition::Compare { left, right, .. } => vec![left, right],
        Condition::Between {
            operand,
            lower,
            upper,
        } => vec![operand, lower, upper],
        Condition::Function(Function::BeginsWith(a, b)) => vec![a, b],
        _ => Vec::new(),
    };
    if operands.iter().any(|o| matches!(o, Operand::Size(_))) {
        return Err(ExpressionError::validation(
            "KeyConditionExpressions cannot contain nested operations",
        ));
    }
    let paths: Vec<&Path> = operands
        .iter()
        .filter_map(|o| match o {
            Operand::Path(path) => Some(path),
            _ => None,
        })
        .collect();
    if paths.iter().any(|path| path.elements().len() > 1) {
        return Err(ExpressionError::validation(
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ));
    }
    let invalid_condition = |detail: &str| {
        Err(ExpressionError::validation(format!(
            "Invalid condition in KeyConditionExpression: {detail}"
        )))
    };
    match paths.len() {
        0 => return invalid_condition("No key attribute specified"),
        1 => {}
        _ => return invalid_condition("Multiple attribute names used in one condition"),
    }
    let value = |operand: &Operand| match operand {
        Operand::Value(value) => value.value.clone(),
        _ => AttributeValue::Null,
    };
    let (attribute, condition) = match leaf {
        Condition::Compare {
            comparator,
            left: Operand::Path(path),
            right,
        } => (path, SortKeyCondition::Compare(*comparator, value(right))),
        Condition::Compare {
            comparator,
            left,
            right: Operand::Path(path),
        } => (
            path,
            SortKeyCondition::Compare(comparator.flipped(), value(left)),
        ),
        Condition::Between {
            operand: Operand::Path(path),
            lower,
            upper,
        } => (path, SortKeyCondition::Between(value(lower), value(upper))),
        Condition::Function(Function::BeginsWith(Operand::Path(path), prefix)) => {
            (path, SortKeyCondition::BeginsWith(value(prefix)))
        }
        Condition::Between { .. } => {
            return invalid_condition(
                "BETWEEN operator must have the key attribute as its first operand",
            );
        }
        _ => {
            return invalid_condition(
                "begins_with operator must have the key attribute as its first operand",
            );
        }
    };
    Ok(Term {
        attribute: attribute.top_level_name().to_owned(),
        condition,
    })
}

/// Matches the terms to the key schema: `=` on every partition key
/// attribute; then conditions on the sort key attributes left to right,
/// without gaps, every one but the last an `=`.
fn check_schema(
    mut terms: Vec<Term>,
    schema: &KeySchema<'_>,
) -> Result<KeyCondition, ExpressionError> {
    let missed = |name: &str| {
        Err(ExpressionError::validation(format!(
            "Query condition missed key schema element: {name}"
        )))
    };
    let not_supported = || {
        Err(ExpressionError::validation(
            "Query key condition not supported",
        ))
    };
    let mut partition_values = Vec::with_capacity(schema.partition_keys.len());
    for &(name, scalar) in &schema.partition_keys {
        let Some(position) = terms.iter().position(|t| t.attribute == name) else {
            return missed(name);
        };
        let SortKeyCondition::Compare(Comparator::Equal, value) = terms.remove(position).condition
        else {
            return not_supported();
        };
        check_type(&value, scalar)?;
        partition_values.push(value);
    }
    // Each remaining term must name a sort key attribute; together they
    // must be the first `terms.len()` of them.
    let mut by_position: Vec<Option<Term>> = schema.sort_keys.iter().map(|_| None).collect();
    for term in terms {
        match schema
            .sort_keys
            .iter()
            .position(|(name, _)| *name == term.attribute)
        {
            Some(position) => by_position[position] = Some(term),
            None if schema.sort_keys.is_empty() => return not_supported(),
            None if !schema.is_composite() => return missed(schema.sort_keys[0].0),
            None => return not_supported(),
        }
    }
    let given = by_position
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |last| last + 1);
    let mut sort_prefix = Vec::new();
    let mut sort_condition = None;
    for (position, (term, &(name, scalar))) in by_position
        .into_iter()
        .zip(&schema.sort_keys)
        .take(given)
        .enumerate()
    {
        let Some(term) = term else {
            return missed(name);
        };
        match &term.condition {
            SortKeyCondition::Compare(_, value) | SortKeyCondition::BeginsWith(value) => {
                check_type(value, scalar)?;
            }
            SortKeyCondition::Between(low, high) => {
                check_type(low, scalar)?;
                check_type(high, scalar)?;
            }
        }
        if position + 1 == given {
            sort_condition = Some(term.condition);
        } else if let SortKeyCondition::Compare(Comparator::Equal, value) = term.condition {
            sort_prefix.push(value);
        } else {
            // Only the last sort key condition may be a range.
            return not_supported();
        }
    }
    Ok(KeyCondition {
        partition_values,
        sort_prefix,
        sort_condition,
    })
}

fn check_type(value: &AttributeValue, expected: ScalarType) -> Result<(), ExpressionError> {
    if value.attribute_type() == expected.attribute_type() {
        Ok(())
    } else {
        Err(ExpressionError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match \
             schema type",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_conditions_match_within_the_key_type() {
        let n = |v: i64| AttributeValue::from(v);
        let cases = [
            (Comparator::Equal, 5, true),
            (Comparator::Less, 4, true),
            (Comparator::Less, 5, false),
            (Comparator::LessOrEqual, 5, true),
            (Comparator::Greater, 6, true),
            (Comparator::GreaterOrEqual, 4, false),
        ];
        for (comparator, value, expected) in cases {
            let condition = SortKeyCondition::Compare(comparator, n(5));
            assert_eq!(
                condition.matches(&n(value)),
                expected,
                "{comparator:?} {value}"
            );
        }
        // A value of another type never matches.
        assert!(
            !SortKeyCondition::Compare(Comparator::Equal, n(5)).matches(&AttributeValue::from("5"))
        );
        let prefix = SortKeyCondition::BeginsWith(AttributeValue::B(vec![0xff]));
        assert!(prefix.matches(&AttributeValue::B(vec![0xff, 0])));
        assert!(!prefix.matches(&AttributeValue::B(vec![0x7f])));
    }
}
