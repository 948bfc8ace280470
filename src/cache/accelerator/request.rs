//! What the accelerator's request builders share: the expression attribute
//! maps as given (they take part in cache keys and are handed on to the
//! table's request unchanged), and the macros that give a builder the
//! same setters as the table's builder.

use std::collections::BTreeMap;
use std::fmt;

use crate::value::AttributeValue;

/// A request's `ExpressionAttributeNames` and `ExpressionAttributeValues`
/// exactly as given (`Some(empty)` stays distinct from `None`, because the
/// table refuses an empty map).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ExpressionAttributes {
    pub(super) names: Option<BTreeMap<String, String>>,
    pub(super) values: Option<BTreeMap<String, AttributeValue>>,
}

/// The longest table name a request keeps inline.
const INLINE_TABLE_NAME_BYTES: usize = 30;

/// A table name as a `get_item` request keeps it: inline when short (most
/// names), so a cache hit neither allocates nor frees a `String` for it
/// (that was a twentieth of a hit); on the heap otherwise.
#[derive(Clone)]
pub(super) enum TableName {
    Inline {
        length: u8,
        bytes: [u8; INLINE_TABLE_NAME_BYTES],
    },
    Heap(String),
}

impl TableName {
    pub(super) fn new(name: &str) -> Self {
        match u8::try_from(name.len()) {
            Ok(length) if name.len() <= INLINE_TABLE_NAME_BYTES => {
                let mut bytes = [0; INLINE_TABLE_NAME_BYTES];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                TableName::Inline { length, bytes }
            }
            _ => TableName::Heap(name.to_owned()),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied whole from a `str`, so they are UTF-8.
            TableName::Inline { length, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*length)]).unwrap_or_default()
            }
            TableName::Heap(name) => name,
        }
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

/// Implements `expression_attribute_names`, `expression_attribute_values`,
/// `name` and `value` on a builder with an `attributes:
/// ExpressionAttributes` field.
macro_rules! expression_attribute_setters {
    ($builder:ident) => {
        impl $builder {
            /// Sets `ExpressionAttributeNames` (`#placeholder` -> name).
            pub fn expression_attribute_names(
                mut self,
                names: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
            ) -> Self {
                let map = self.attributes.names.get_or_insert_with(Default::default);
                map.extend(names.into_iter().map(|(k, v)| (k.into(), v.into())));
                self
            }

            /// Sets `ExpressionAttributeValues` (`:placeholder` -> value).
            pub fn expression_attribute_values(
                mut self,
                values: impl IntoIterator<
                    Item = (impl Into<String>, impl Into<$crate::value::AttributeValue>),
                >,
            ) -> Self {
                let map = self.attributes.values.get_or_insert_with(Default::default);
                map.extend(values.into_iter().map(|(k, v)| (k.into(), v.into())));
                self
            }

            /// Adds one `#placeholder` -> attribute name.
            pub fn name(mut self, placeholder: impl Into<String>, name: impl Into<String>) -> Self {
                self.attributes
                    .names
                    .get_or_insert_with(Default::default)
                    .insert(placeholder.into(), name.into());
                self
            }

            /// Adds one `:placeholder` -> value.
            pub fn value(
                mut self,
                placeholder: impl Into<String>,
                value: impl Into<$crate::value::AttributeValue>,
            ) -> Self {
                self.attributes
                    .values
                    .get_or_insert_with(Default::default)
                    .insert(placeholder.into(), value.into());
                self
            }
        }
    };
}

/// Hands a builder's expression attribute maps on to the table's request.
macro_rules! with_attributes {
    ($request:expr, $attributes:expr) => {{
        let mut request = $request;
        if let Some(names) = &$attributes.names {
            request = request.expression_attribute_names(names.clone());
        }
        if let Some(values) = &$attributes.values {
            request = request.expression_attribute_values(values.clone());
        }
        request
    }};
}

/// Implements a setter per field that stores its argument as given.
macro_rules! field_setters {
    ($builder:ident { $($(#[$doc:meta])* $field:ident: $type:ty),* $(,)? }) => {
        impl $builder {
            $(
                $(#[$doc])*
                pub fn $field(mut self, $field: $type) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

/// Implements a setter per `Option<String>` field that stores `Some` of
/// its argument (an expression).
macro_rules! text_setters {
    ($builder:ident { $($(#[$doc:meta])* $field:ident),* $(,)? }) => {
        impl $builder {
            $(
                $(#[$doc])*
                pub fn $field(mut self, $field: impl Into<String>) -> Self {
                    self.$field = Some($field.into());
                    self
                }
            )*
        }
    };
}

pub(super) use {expression_attribute_setters, field_setters, text_setters, with_attributes};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_inline_or_on_the_heap_read_back_whole() {
        for name in [
            "",
            "T",
            "Music",
            "a-table_name.of-30-characters.",
            "a-table_name.of-31-characters.x",
            "ünïcödé-Täblé",
            &"x".repeat(255),
        ] {
            let kept = TableName::new(name);
            assert_eq!(kept.as_str(), name);
            assert_eq!(
                matches!(kept, TableName::Inline { .. }),
                name.len() <= INLINE_TABLE_NAME_BYTES,
                "{name}"
            );
            assert_eq!(format!("{kept:?}"), format!("{name:?}"));
        }
    }
}
