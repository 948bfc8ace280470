//! DynamoDB's `AttributeValue` model: the ten types, canonical numbers,
//! validation with DynamoDB's limits and messages, item size, DynamoDB JSON,
//! serde conversion of Rust types, and the order-preserving key encoding.
//!
//! This layer owns what a value *is*; it knows nothing of tables or storage.

mod attribute;
mod codec;
mod error;
mod item;
mod json;
mod key;
mod number;
mod serde_item;
mod size;
mod validate;

pub use attribute::{AttributeType, AttributeValue};
pub use codec::{decode_item, encode_item, fuzz_item_codec};
pub(crate) use codec::{encode_attributes, encoded_item_size};
pub use error::ValueError;
pub use item::Item;
pub(crate) use json::from_json_error;
pub use key::{MAX_ENCODED_NUMBER_BYTES, decode_key_value, encode_key_value, encode_number};
pub use number::{MAX_LEADING_EXPONENT, MAX_SIGNIFICANT_DIGITS, MIN_LEADING_EXPONENT, Number};
pub use serde_item::{from_attribute_value, from_item, to_attribute_value, to_item};
pub use size::{attribute_value_size, item_size, number_size};
pub use validate::{
    KeyRole, MAX_ATTRIBUTE_NAME_BYTES, MAX_ITEM_BYTES, MAX_NESTING_DEPTH, MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES, ScalarType, validate_attribute_name, validate_item, validate_key_value,
    validate_value,
};
