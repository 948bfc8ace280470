//! DynamoDB's `AttributeValue` model: the ten types, canonical numbers,
//! validation, item size, DynamoDB JSON, serde conversion and the
//! order-preserving key encoding.
