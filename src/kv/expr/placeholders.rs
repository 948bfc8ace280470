//! `ExpressionAttributeNames` and `ExpressionAttributeValues`: checking the
//! maps, resolving `#name` and `:value` while parsing, and tracking which
//! entries the request's expressions used.
//!
//! DynamoDB rejects a request whose maps hold an entry no expression uses,
//! so one [`Placeholders`] is threaded through the parsing of every
//! expression of a request, and [`Placeholders::check_unused`] runs last.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ExpressionError, ExpressionKind};
use crate::value::{AttributeValue, validate_value};

/// The longest `#name` or `:value` placeholder, in bytes, `#`/`:` included.
pub const MAX_PLACEHOLDER_BYTES: usize = 255;

/// The most bytes all substitution entries of one map may take together
/// (DynamoDB's 2 MB limit on expression attribute names and values).
pub const MAX_SUBSTITUTION_BYTES: usize = 2 * 1024 * 1024;

/// A request's placeholder maps and which of their entries were used.
#[derive(Debug, Clone)]
pub struct Placeholders<'a> {
    names: &'a BTreeMap<String, String>,
    values: &'a BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<&'a str>,
    used_values: BTreeSet<&'a str>,
}

impl<'a> Placeholders<'a> {
    /// Checks the maps (placeholder syntax and length, total size, valid
    /// values) and starts tracking their use.
    pub fn new(
        names: &'a BTreeMap<String, String>,
        values: &'a BTreeMap<String, AttributeValue>,
    ) -> Result<Self, ExpressionError> {
        check_keys("ExpressionAttributeNames", names.keys(), '#')?;
        check_keys("ExpressionAttributeValues", values.keys(), ':')?;
        let names_bytes: usize = names.iter().map(|(k, v)| k.len() + v.len()).sum();
        if names_bytes > MAX_SUBSTITUTION_BYTES {
            return Err(ExpressionError::validation(
                "ExpressionAttributeNames exceeds max size",
            ));
        }
        let values_bytes: usize = values
            .iter()
            .map(|(k, v)| k.len() + crate::value::attribute_value_size(v))
            .sum();
        if values_bytes > MAX_SUBSTITUTION_BYTES {
            return Err(ExpressionError::validation(
                "ExpressionAttributeValues exceeds max size",
            ));
        }
        for (key, value) in values {
            validate_value(value, 1).map_err(|error| {
                ExpressionError::validation(format!(
                    "ExpressionAttributeValues contains invalid value: {} for key {key}",
                    error.message()
                ))
            })?;
        }
        Ok(Self {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        })
    }

    /// The attribute name `#placeholder` stands for, marking it used.
    pub(crate) fn name(
        &mut self,
        kind: ExpressionKind,
        placeholder: &str,
    ) -> Result<&'a str, ExpressionError> {
        let names = self.names;
        match names.get_key_value(placeholder) {
            Some((key, name)) => {
                self.used_names.insert(key.as_str());
                Ok(name.as_str())
            }
            None => Err(ExpressionError::invalid(
                kind,
                format!(
                    "An expression attribute name used in the document path is not defined; \
                     attribute name: {placeholder}"
                ),
            )),
        }
    }

    /// The value `:placeholder` stands for, marking it used.
    pub(crate) fn value(
        &mut self,
        kind: ExpressionKind,
        placeholder: &str,
    ) -> Result<&'a AttributeValue, ExpressionError> {
        let values = self.values;
        match values.get_key_value(placeholder) {
            Some((key, value)) => {
                self.used_values.insert(key.as_str());
                Ok(value)
            }
            None => Err(ExpressionError::invalid(
                kind,
                format!(
                    "An expression attribute value used in expression is not defined; \
                     attribute value: {placeholder}"
                ),
            )),
        }
    }

    /// Fails if an entry of either map was used by none of the expressions
    /// parsed with this tracker. Names are reported before values, as
    /// DynamoDB does.
    pub fn check_unused(&self) -> Result<(), ExpressionError> {
        let unused_names: Vec<&str> = self
            .names
            .keys()
            .map(String::as_str)
            .filter(|key| !self.used_names.contains(key))
            .collect();
        if !unused_names.is_empty() {
            return Err(ExpressionError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused_names.join(", ")
            )));
        }
        let unused_values: Vec<&str> = self
            .values
            .keys()
            .map(String::as_str)
            .filter(|key| !self.used_values.contains(key))
            .collect();
        if !unused_values.is_empty() {
            return Err(ExpressionError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused_values.join(", ")
            )));
        }
        Ok(())
    }
}

/// Checks that every key is `prefix` followed by `[A-Za-z0-9_]+` and at
/// most [`MAX_PLACEHOLDER_BYTES`] long.
fn check_keys<'k>(
    parameter: &str,
    keys: impl Iterator<Item = &'k String>,
    prefix: char,
) -> Result<(), ExpressionError> {
    for key in keys {
        if key.len() > MAX_PLACEHOLDER_BYTES {
            return Err(ExpressionError::validation(format!(
                "{parameter} contains invalid key: The expression attribute map contains a key \
                 that is too long; size of key: {}",
                key.len()
            )));
        }
        let well_formed = key.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !well_formed {
            return Err(ExpressionError::validation(format!(
                "{parameter} contains invalid key: Syntax error; key: \"{key}\""
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn values(keys: &[&str]) -> BTreeMap<String, AttributeValue> {
        keys.iter()
            .map(|k| (k.to_string(), AttributeValue::from(1)))
            .collect()
    }

    #[test]
    fn resolves_and_tracks_use() {
        let names = names(&[("#a", "Artist"), ("#b", "Year")]);
        let values = values(&[":v", ":w"]);
        let mut tracker = Placeholders::new(&names, &values).unwrap();
        assert_eq!(
            tracker.name(ExpressionKind::Condition, "#a").unwrap(),
            "Artist"
        );
        assert_eq!(
            tracker.value(ExpressionKind::Condition, ":v").unwrap(),
            &AttributeValue::from(1)
        );
        assert_eq!(
            tracker.check_unused().unwrap_err().message(),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        tracker.name(ExpressionKind::Update, "#b").unwrap();
        assert_eq!(
            tracker.check_unused().unwrap_err().message(),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
        );
        tracker.value(ExpressionKind::Update, ":w").unwrap();
        tracker.check_unused().unwrap();
    }

    #[test]
    fn undefined_placeholders_name_the_expression() {
        let names = BTreeMap::new();
        let values = BTreeMap::new();
        let mut tracker = Placeholders::new(&names, &values).unwrap();
        assert_eq!(
            tracker
                .name(ExpressionKind::Update, "#n")
                .unwrap_err()
                .message(),
            "Invalid UpdateExpression: An expression attribute name used in the document path \
             is not defined; attribute name: #n"
        );
        assert_eq!(
            tracker
                .value(ExpressionKind::Condition, ":v")
                .unwrap_err()
                .message(),
            "Invalid ConditionExpression: An expression attribute value used in expression is \
             not defined; attribute value: :v"
        );
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let empty = BTreeMap::new();
        let no_names = BTreeMap::new();
        let bad = names(&[("a", "x")]);
        assert_eq!(
            Placeholders::new(&bad, &empty).unwrap_err().message(),
            "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
        );
        let bad = values(&[":a-b"]);
        assert_eq!(
            Placeholders::new(&no_names, &bad).unwrap_err().message(),
            "ExpressionAttributeValues contains invalid key: Syntax error; key: \":a-b\""
        );
        let long = names(&[(&format!("#{}", "a".repeat(255)), "x")]);
        assert_eq!(
            Placeholders::new(&long, &empty).unwrap_err().message(),
            "ExpressionAttributeNames contains invalid key: The expression attribute map \
             contains a key that is too long; size of key: 256"
        );
        let longest = names(&[(&format!("#{}", "a".repeat(254)), "x")]);
        Placeholders::new(&longest, &empty).unwrap();
    }

    #[test]
    fn invalid_values_are_rejected() {
        let empty: BTreeMap<String, String> = BTreeMap::new();
        let mut bad = BTreeMap::new();
        bad.insert(":s".to_string(), AttributeValue::Ss(BTreeSet::new()));
        let error = Placeholders::new(&empty, &bad).unwrap_err();
        assert_eq!(
            error.message(),
            "ExpressionAttributeValues contains invalid value: One or more parameter values \
             were invalid: An string set  may not be empty for key :s"
        );
    }
}
