//! The legacy (pre-expression) parameters that SDKs and old code still
//! send — `Expected`, `KeyConditions`, `QueryFilter`, `ScanFilter`,
//! `AttributeUpdates`, `AttributesToGet`, `ConditionalOperator` —
//! translated into the equivalent expressions, so the kv layer has one
//! implementation of conditions and updates. Every attribute name and
//! value becomes a generated placeholder (`#legacyN`, `:legacyN`), so
//! reserved words and odd names need no care.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::WireError;
use super::wire::{Names, Values};
use crate::value::AttributeValue;

/// A legacy `Condition` (KeyConditions, QueryFilter, ScanFilter).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Condition {
    /// The operands.
    pub attribute_value_list: Option<Vec<AttributeValue>>,
    /// `EQ`, `BETWEEN`, ...
    pub comparison_operator: Option<String>,
}

/// A legacy `ExpectedAttributeValue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpectedAttributeValue {
    /// The value the attribute must equal (the old form).
    pub value: Option<AttributeValue>,
    /// Whether the attribute must exist (the old form).
    pub exists: Option<bool>,
    /// The operator (the newer form).
    pub comparison_operator: Option<String>,
    /// Its operands.
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// A legacy `AttributeValueUpdate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValueUpdate {
    /// The operand.
    pub value: Option<AttributeValue>,
    /// `PUT` (default), `ADD` or `DELETE`.
    pub action: Option<String>,
}

fn invalid(detail: impl std::fmt::Display) -> WireError {
    WireError::validation(format!(
        "One or more parameter values were invalid: {detail}"
    ))
}

/// Rejects a request that mixes legacy and expression parameters, with
/// DynamoDB's message. Each list holds the members present.
pub fn check_not_mixed(legacy: &[&str], expressions: &[&str]) -> Result<(), WireError> {
    if legacy.is_empty() || expressions.is_empty() {
        return Ok(());
    }
    Err(WireError::validation(format!(
        "Can not use both expression and non-expression parameters in the same request: \
         Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
        legacy.join(", "),
        expressions.join(", ")
    )))
}

/// Collects placeholders while legacy parameters are translated.
#[derive(Debug, Default)]
pub struct Translator {
    names: Names,
    values: Values,
}

impl Translator {
    /// A translator with no placeholders yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, n)| *n == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#legacy{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: &AttributeValue) -> String {
        let placeholder = format!(":legacy{}", self.values.len());
        self.values.insert(placeholder.clone(), value.clone());
        placeholder
    }

    /// The generated `ExpressionAttributeNames` (None when empty).
    pub fn names(&self) -> Option<Names> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The generated `ExpressionAttributeValues` (None when empty).
    pub fn values(&self) -> Option<Values> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// `AttributesToGet` as a projection expression.
    pub fn projection(&mut self, attributes: &[String]) -> Result<String, WireError> {
        if attributes.is_empty() {
            return Err(WireError::validation(
                "1 validation error detected: Value '[]' at 'attributesToGet' failed to \
                 satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut parts = Vec::new();
        for attribute in attributes {
            if !seen.insert(attribute) {
                return Err(invalid(format!(
                    "Duplicate value in attribute name: {attribute}"
                )));
            }
            parts.push(self.name(attribute));
        }
        Ok(parts.join(", "))
    }

    /// One comparison of `attribute` by `operator` over `operands`.
    fn comparison(
        &mut self,
        attribute: &str,
        operator: &str,
        operands: &[AttributeValue],
    ) -> Result<String, WireError> {
        let arity = |expected: usize| {
            if operands.len() == expected {
                Ok(())
            } else {
                Err(invalid(format!(
                    "Invalid number of argument(s) for the {operator} ComparisonOperator"
                )))
            }
        };
        let name = self.name(attribute);
        Ok(match operator {
            "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" => {
                arity(1)?;
                let symbol = match operator {
                    "EQ" => "=",
                    "NE" => "<>",
                    "LE" => "<=",
                    "LT" => "<",
                    "GE" => ">=",
                    _ => ">",
                };
                format!("{name} {symbol} {}", self.value(&operands[0]))
            }
            "NOT_NULL" => {
                arity(0)?;
                format!("attribute_exists({name})")
            }
            "NULL" => {
                arity(0)?;
                format!("attribute_not_exists({name})")
            }
            "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
                arity(1)?;
                let value = self.value(&operands[0]);
                match operator {
                    "CONTAINS" => format!("contains({name}, {value})"),
                    "NOT_CONTAINS" => format!("NOT contains({name}, {value})"),
                    _ => format!("begins_with({name}, {value})"),
                }
            }
            "BETWEEN" => {
                arity(2)?;
                let low = self.value(&operands[0]);
                let high = self.value(&operands[1]);
                format!("{name} BETWEEN {low} AND {high}")
            }
            "IN" => {
                if operands.is_empty() {
                    return Err(invalid(format!(
                        "Invalid number of argument(s) for the {operator} ComparisonOperator"
                    )));
                }
                let values: Vec<String> = operands.iter().map(|v| self.value(v)).collect();
                format!("{name} IN ({})", values.join(", "))
            }
            other => {
                return Err(WireError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'comparisonOperator' \
                     failed to satisfy constraint: Member must satisfy enum value set: \
                     [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, \
                     BEGINS_WITH, GE, CONTAINS]"
                )));
            }
        })
    }

    /// Joins clauses with `ConditionalOperator` (AND by default).
    fn join(clauses: Vec<String>, operator: Option<&str>) -> Result<String, WireError> {
        let operator = match operator {
            None | Some("AND") => "AND",
            Some("OR") => "OR",
            Some(other) => {
                return Err(WireError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'conditionalOperator' \
                     failed to satisfy constraint: Member must satisfy enum value set: [AND, OR]"
                )));
            }
        };
        Ok(clauses
            .into_iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(&format!(" {operator} ")))
    }

    /// `KeyConditions`, `QueryFilter` or `ScanFilter` as an expression.
    pub fn conditions(
        &mut self,
        conditions: &BTreeMap<String, Condition>,
        conditional_operator: Option<&str>,
    ) -> Result<String, WireError> {
        let mut clauses = Vec::new();
        for (attribute, condition) in conditions {
            let operator = condition.comparison_operator.as_deref().ok_or_else(|| {
                WireError::validation(
                    "1 validation error detected: Value null at 'comparisonOperator' failed \
                     to satisfy constraint: Member must not be null",
                )
            })?;
            let operands = condition.attribute_value_list.as_deref().unwrap_or(&[]);
            clauses.push(self.comparison(attribute, operator, operands)?);
        }
        Self::join(clauses, conditional_operator)
    }

    /// `KeyConditions` as a key condition expression (always AND, and
    /// without parentheses, which key conditions do not allow).
    pub fn key_conditions(
        &mut self,
        conditions: &BTreeMap<String, Condition>,
    ) -> Result<String, WireError> {
        let mut clauses = Vec::new();
        for (attribute, condition) in conditions {
            let operator = condition.comparison_operator.as_deref().unwrap_or("");
            let operands = condition.attribute_value_list.as_deref().unwrap_or(&[]);
            if !matches!(
                operator,
                "EQ" | "LE" | "LT" | "GE" | "GT" | "BEGINS_WITH" | "BETWEEN"
            ) {
                return Err(invalid(format!(
                    "Unsupported operator on KeyCondition: {operator}"
                )));
            }
            clauses.push(self.comparison(attribute, operator, operands)?);
        }
        Ok(clauses.join(" AND "))
    }

    /// `Expected` as a condition expression.
    pub fn expected(
        &mut self,
        expected: &BTreeMap<String, ExpectedAttributeValue>,
        conditional_operator: Option<&str>,
    ) -> Result<String, WireError> {
        let mut clauses = Vec::new();
        for (attribute, condition) in expected {
            let clause = match (
                &condition.comparison_operator,
                condition.exists,
                &condition.value,
            ) {
                (Some(operator), _, value) => {
                    if value.is_some() {
                        return Err(invalid(format!(
                            "Value and AttributeValueList cannot be used together for \
                             Attribute: {attribute}"
                        )));
                    }
                    let operands = condition.attribute_value_list.as_deref().unwrap_or(&[]);
                    self.comparison(attribute, operator, operands)?
                }
                (None, Some(false), None) => {
                    format!("attribute_not_exists({})", self.name(attribute))
                }
                (None, Some(false), Some(_)) => {
                    return Err(invalid(format!(
                        "Cannot expect an attribute to have a specified value while \
                         expecting it to not exist. Attribute name: {attribute}"
                    )));
                }
                (None, _, Some(value)) => {
                    let name = self.name(attribute);
                    format!("{name} = {}", self.value(value))
                }
                (None, _, None) => {
                    return Err(invalid(format!(
                        "Exists is set to TRUE for attribute ({attribute}), Value must also \
                         be set"
                    )));
                }
            };
            clauses.push(clause);
        }
        Self::join(clauses, conditional_operator)
    }

    /// `AttributeUpdates` as an update expression.
    pub fn attribute_updates(
        &mut self,
        updates: &BTreeMap<String, AttributeValueUpdate>,
    ) -> Result<String, WireError> {
        let (mut set, mut remove, mut add, mut delete) = (vec![], vec![], vec![], vec![]);
        for (attribute, update) in updates {
            let name = self.name(attribute);
            match (update.action.as_deref().unwrap_or("PUT"), &update.value) {
                ("PUT", Some(value)) => set.push(format!("{name} = {}", self.value(value))),
                ("PUT", None) => {
                    return Err(invalid(format!(
                        "Only DELETE action is allowed when no attribute value is specified: \
                         {attribute}"
                    )));
                }
                ("DELETE", None) => remove.push(name),
                ("DELETE", Some(value)) => delete.push(format!("{name} {}", self.value(value))),
                ("ADD", Some(AttributeValue::L(_))) => {
                    let value = self.value(
                        update
                            .value
                            .as_ref()
                            .unwrap_or(&AttributeValue::L(Vec::new())),
                    );
                    let empty = self.value(&AttributeValue::L(Vec::new()));
                    set.push(format!(
                        "{name} = list_append(if_not_exists({name}, {empty}), {value})"
                    ));
                }
                ("ADD", Some(value)) => add.push(format!("{name} {}", self.value(value))),
                ("ADD", None) => {
                    return Err(invalid(format!(
                        "Only DELETE action is allowed when no attribute value is specified: \
                         {attribute}"
                    )));
                }
                (other, _) => {
                    return Err(WireError::validation(format!(
                        "1 validation error detected: Value '{other}' at \
                         'attributeUpdates.{attribute}.member.action' failed to satisfy \
                         constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                    )));
                }
            }
        }
        let mut clauses = Vec::new();
        for (keyword, parts) in [
            ("SET", set),
            ("REMOVE", remove),
            ("ADD", add),
            ("DELETE", delete),
        ] {
            if !parts.is_empty() {
                clauses.push(format!("{keyword} {}", parts.join(", ")));
            }
        }
        Ok(clauses.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(operator: &str, operands: Vec<AttributeValue>) -> Condition {
        Condition {
            attribute_value_list: Some(operands),
            comparison_operator: Some(operator.into()),
        }
    }

    #[test]
    fn conditions_become_placeholdered_clauses() {
        let mut translator = Translator::new();
        let conditions = BTreeMap::from([
            ("a".to_owned(), condition("EQ", vec![1.into()])),
            (
                "b".to_owned(),
                condition("BETWEEN", vec![1.into(), 5.into()]),
            ),
        ]);
        let text = translator.conditions(&conditions, Some("OR")).unwrap();
        assert_eq!(
            text,
            "(#legacy0 = :legacy0) OR (#legacy1 BETWEEN :legacy1 AND :legacy2)"
        );
        assert_eq!(translator.names().unwrap()["#legacy1"], "b");
    }

    #[test]
    fn wrong_arity_is_a_validation_error() {
        let mut translator = Translator::new();
        let conditions = BTreeMap::from([("a".to_owned(), condition("EQ", vec![]))]);
        let error = translator.conditions(&conditions, None).unwrap_err();
        assert!(
            error
                .message
                .contains("Invalid number of argument(s) for the EQ")
        );
    }

    #[test]
    fn expected_exists_false_is_attribute_not_exists() {
        let mut translator = Translator::new();
        let expected = BTreeMap::from([(
            "a".to_owned(),
            ExpectedAttributeValue {
                value: None,
                exists: Some(false),
                comparison_operator: None,
                attribute_value_list: None,
            },
        )]);
        assert_eq!(
            translator.expected(&expected, None).unwrap(),
            "(attribute_not_exists(#legacy0))"
        );
    }

    #[test]
    fn attribute_updates_group_by_clause() {
        let mut translator = Translator::new();
        let updates = BTreeMap::from([
            (
                "a".to_owned(),
                AttributeValueUpdate {
                    value: Some(1.into()),
                    action: Some("ADD".into()),
                },
            ),
            (
                "b".to_owned(),
                AttributeValueUpdate {
                    value: None,
                    action: Some("DELETE".into()),
                },
            ),
            (
                "c".to_owned(),
                AttributeValueUpdate {
                    value: Some("x".into()),
                    action: None,
                },
            ),
        ]);
        assert_eq!(
            translator.attribute_updates(&updates).unwrap(),
            "SET #legacy2 = :legacy1 REMOVE #legacy1 ADD #legacy0 :legacy0"
        );
    }

    #[test]
    fn mixing_is_rejected() {
        let error = check_not_mixed(&["AttributesToGet"], &["ProjectionExpression"]).unwrap_err();
        assert_eq!(
            error.message,
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {AttributesToGet} Expression parameters: \
             {ProjectionExpression}"
        );
    }
}
