//! DynamoDB's rules for values, items and key attributes, with its limits
//! and its error messages.

use super::{AttributeType, AttributeValue, Item, ValueError, item_size};

/// The largest item, in bytes as DynamoDB counts them (400 KB).
pub const MAX_ITEM_BYTES: usize = 409_600;
/// The deepest nesting of lists and maps; a top-level attribute is level 1.
pub const MAX_NESTING_DEPTH: usize = 32;
/// The longest partition key value, in bytes (UTF-8 for S, raw for B).
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// The longest sort key value, in bytes (UTF-8 for S, raw for B).
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// The longest attribute name, in UTF-8 bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65_535;

/// The role an attribute plays in a table's or index's key schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The partition (HASH) key.
    Partition,
    /// The sort (RANGE) key.
    Sort,
}

/// The type of a key attribute: DynamoDB's `ScalarAttributeType`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScalarType {
    /// A string key.
    S,
    /// A number key.
    N,
    /// A binary key.
    B,
}

impl ScalarType {
    /// The matching attribute type.
    pub fn attribute_type(self) -> AttributeType {
        match self {
            Self::S => AttributeType::S,
            Self::N => AttributeType::N,
            Self::B => AttributeType::B,
        }
    }
}

impl std::fmt::Display for ScalarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.attribute_type().name())
    }
}

/// Checks an attribute name: non-empty and at most 64 KB.
pub fn validate_attribute_name(name: &str) -> Result<(), ValueError> {
    if name.is_empty() {
        return Err(ValueError::validation("Empty attribute name"));
    }
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(ValueError::validation(
            "Attribute name is too large, must be less than 65536 bytes",
        ));
    }
    Ok(())
}

/// Checks one value: no empty sets, nesting at most 32 levels deep, valid
/// names inside maps. `depth` is the level of `value` (1 for a top-level
/// attribute). Numbers, and set uniqueness, hold by construction.
pub fn validate_value(value: &AttributeValue, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_NESTING_DEPTH {
        return Err(nesting_error());
    }
    match value {
        AttributeValue::Ss(set) if set.is_empty() => Err(empty_set_error(AttributeType::Ss)),
        AttributeValue::Ns(set) if set.is_empty() => Err(empty_set_error(AttributeType::Ns)),
        AttributeValue::Bs(set) if set.is_empty() => Err(empty_set_error(AttributeType::Bs)),
        AttributeValue::L(list) => list
            .iter()
            .try_for_each(|element| validate_value(element, depth + 1)),
        AttributeValue::M(map) => map.iter().try_for_each(|(name, element)| {
            validate_attribute_name(name)?;
            validate_value(element, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// DynamoDB's error for values nested deeper than [`MAX_NESTING_DEPTH`].
pub(crate) fn nesting_error() -> ValueError {
    ValueError::validation(
        "Nesting Levels have exceeded supported limits: \
         Attributes in the item have nested levels beyond supported limit",
    )
}

/// DynamoDB's error for an empty set of `set_type` (its odd wording included).
pub(crate) fn empty_set_error(set_type: AttributeType) -> ValueError {
    ValueError::invalid_parameter(match set_type {
        AttributeType::Ss => "An string set  may not be empty",
        AttributeType::Ns => "An number set  may not be empty",
        _ => "Binary sets should not be empty",
    })
}

/// Checks a whole item: names, values, and the 400 KB size limit.
pub fn validate_item(item: &Item) -> Result<(), ValueError> {
    for (name, value) in item {
        validate_attribute_name(name)?;
        validate_value(value, 1)?;
    }
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(ValueError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(())
}

/// Checks a key attribute's value: of the schema's scalar type, non-empty,
/// and within the key size limit of its role.
pub fn validate_key_value(
    name: &str,
    role: KeyRole,
    expected: ScalarType,
    value: &AttributeValue,
) -> Result<(), ValueError> {
    if value.attribute_type() != expected.attribute_type() {
        return Err(ValueError::invalid_parameter(format!(
            "Type mismatch for key {name} expected: {expected} actual: {}",
            value.attribute_type()
        )));
    }
    let length = match value {
        AttributeValue::S(s) if s.is_empty() => {
            return Err(ValueError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key \
                 attribute cannot contain an empty string value. Key: {name}"
            )));
        }
        AttributeValue::B(b) if b.is_empty() => {
            return Err(ValueError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key \
                 attribute cannot contain an empty binary value. Key: {name}"
            )));
        }
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        // A number is at most 21 bytes in DynamoDB's accounting.
        _ => 0,
    };
    match role {
        // DynamoDB's message really has no space in "of2048".
        KeyRole::Partition if length > MAX_PARTITION_KEY_BYTES => {
            Err(ValueError::invalid_parameter(
                "Size of hashkey has exceeded the maximum size limit of2048 bytes",
            ))
        }
        KeyRole::Sort if length > MAX_SORT_KEY_BYTES => Err(ValueError::invalid_parameter(
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        )),
        _ => Ok(()),
    }
}
