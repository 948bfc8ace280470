//! From items and key maps to engine row keys, with DynamoDB's key
//! validation: a `Key` names exactly the key attributes, of the schema's
//! types, non-empty, within the 2,048/1,024-byte limits.

use super::error::{Error, Result};
use super::schema::KeyDefinition;
use crate::partition::{KeyspaceId, row_key};
use crate::value::{AttributeValue, Item, KeyRole, encode_key_value, validate_key_value};

/// DynamoDB's message for a `Key` that does not fit the schema.
pub(crate) const KEY_MISMATCH: &str = "The provided key element does not match the schema";

/// The encoded key parts of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EncodedKey {
    pub(crate) partition: Vec<u8>,
    pub(crate) sort: Vec<u8>,
}

impl EncodedKey {
    /// The engine key of the item in `keyspace`.
    pub(crate) fn row_key(&self, keyspace: KeyspaceId) -> Vec<u8> {
        row_key(keyspace, &self.partition, &self.sort)
    }
}

/// Encodes one key attribute after checking its type and size.
fn encode_part(
    name: &str,
    role: KeyRole,
    key: &KeyDefinition,
    value: &AttributeValue,
) -> Result<Vec<u8>> {
    let expected = match role {
        KeyRole::Partition => key.partition_key.1,
        KeyRole::Sort => key
            .sort_key
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or(key.partition_key.1),
    };
    validate_key_value(name, role, expected, value)?;
    let mut out = Vec::new();
    encode_key_value(value, &mut out)?;
    Ok(out)
}

/// The key of a `Key` parameter: exactly the key attributes, else
/// "The provided key element does not match the schema".
pub(crate) fn key_from_key_map(key: &KeyDefinition, map: &Item) -> Result<EncodedKey> {
    let expected = 1 + usize::from(key.sort_key.is_some());
    if map.len() != expected {
        return Err(Error::validation(KEY_MISMATCH));
    }
    let part = |name: &str, role: KeyRole, scalar: crate::value::ScalarType| -> Result<Vec<u8>> {
        let value = map
            .get(name)
            .ok_or_else(|| Error::validation(KEY_MISMATCH))?;
        if value.attribute_type() != scalar.attribute_type() {
            return Err(Error::validation(KEY_MISMATCH));
        }
        encode_part(name, role, key, value)
    };
    let partition = part(
        &key.partition_key.0,
        KeyRole::Partition,
        key.partition_key.1,
    )?;
    let sort = match &key.sort_key {
        Some((name, scalar)) => part(name, KeyRole::Sort, *scalar)?,
        None => Vec::new(),
    };
    Ok(EncodedKey { partition, sort })
}

/// The key of a whole item (PutItem): every key attribute present, of the
/// right type.
pub(crate) fn key_of_item(key: &KeyDefinition, item: &Item) -> Result<EncodedKey> {
    let part = |name: &str, role: KeyRole| -> Result<Vec<u8>> {
        let value = item.get(name).ok_or_else(|| {
            Error::validation(format!(
                "One or more parameter values were invalid: Missing the key {name} in the item"
            ))
        })?;
        encode_part(name, role, key, value)
    };
    let partition = part(&key.partition_key.0, KeyRole::Partition)?;
    let sort = match &key.sort_key {
        Some((name, _)) => part(name, KeyRole::Sort)?,
        None => Vec::new(),
    };
    Ok(EncodedKey { partition, sort })
}

/// The key attributes of `item` as a key map (for `LastEvaluatedKey`).
pub(crate) fn key_map_of(key: &KeyDefinition, item: &Item) -> Item {
    key.names()
        .filter_map(|name| item.get(name).map(|v| (name.to_owned(), v.clone())))
        .collect()
}
