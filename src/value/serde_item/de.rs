//! Attribute value -> Rust value: a `serde::Deserializer` that consumes an
//! owned [`AttributeValue`].
//!
//! Numbers convert exactly: an integer type accepts only an `N` that is an
//! integer in its range, never a rounded or truncated one.

use std::collections::{BTreeMap, btree_map};

use serde::de::value::{SeqDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};

use super::Error;
use crate::value::{AttributeValue, Number};

/// Deserializes a Rust value from one attribute value.
pub(super) struct Deserializer {
    value: AttributeValue,
}

impl Deserializer {
    pub(super) fn new(value: AttributeValue) -> Self {
        Self { value }
    }

    /// The number, or a type error naming what `expected` wanted.
    fn into_number(self, expected: &dyn Expected) -> Result<Number, Error> {
        match self.value {
            AttributeValue::N(number) => Ok(number),
            other => Err(invalid_type(&other, expected)),
        }
    }
}

/// How serde's error messages describe `value`.
fn unexpected(value: &AttributeValue) -> Unexpected<'_> {
    match value {
        AttributeValue::S(s) => Unexpected::Str(s),
        AttributeValue::N(number) => unexpected_number(number),
        AttributeValue::B(bytes) => Unexpected::Bytes(bytes),
        AttributeValue::Bool(b) => Unexpected::Bool(*b),
        AttributeValue::Null => Unexpected::Unit,
        AttributeValue::L(_) => Unexpected::Seq,
        AttributeValue::M(_) => Unexpected::Map,
        AttributeValue::Ss(_) => Unexpected::Other("string set"),
        AttributeValue::Ns(_) => Unexpected::Other("number set"),
        AttributeValue::Bs(_) => Unexpected::Other("binary set"),
    }
}

fn unexpected_number(number: &Number) -> Unexpected<'static> {
    if let Some(value) = number.to_u64() {
        Unexpected::Unsigned(value)
    } else if let Some(value) = number.to_i64() {
        Unexpected::Signed(value)
    } else {
        Unexpected::Float(number.to_f64())
    }
}

fn invalid_type(value: &AttributeValue, expected: &dyn Expected) -> Error {
    de::Error::invalid_type(unexpected(value), expected)
}

/// The absolute value, if the number is an integer that fits a `u128`.
fn integer_magnitude(number: &Number) -> Option<u128> {
    // Canonical numbers carry no trailing zeros, so a negative exponent
    // always means a fractional part.
    let exponent = u32::try_from(number.exponent()).ok()?;
    10u128
        .checked_pow(exponent)?
        .checked_mul(number.significand())
}

fn to_u128(number: &Number) -> Option<u128> {
    if number.is_negative() {
        return None;
    }
    integer_magnitude(number)
}

fn to_i128(number: &Number) -> Option<i128> {
    let magnitude = i128::try_from(integer_magnitude(number)?).ok()?;
    Some(if number.is_negative() {
        -magnitude
    } else {
        magnitude
    })
}

/// `deserialize_any` for numbers: the narrowest exact visit, `f64` last.
fn visit_number<'de, V: Visitor<'de>>(number: &Number, visitor: V) -> Result<V::Value, Error> {
    if let Some(value) = number.to_u64() {
        visitor.visit_u64(value)
    } else if let Some(value) = number.to_i64() {
        visitor.visit_i64(value)
    } else {
        visitor.visit_f64(number.to_f64())
    }
}

/// Visits `elements` as a sequence that the visitor must consume whole.
fn visit_list<'de, V: Visitor<'de>>(
    elements: Vec<AttributeValue>,
    visitor: V,
) -> Result<V::Value, Error> {
    let len = elements.len();
    let mut access = ListAccess {
        elements: elements.into_iter(),
    };
    let value = visitor.visit_seq(&mut access)?;
    if access.elements.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(
            len,
            &"fewer elements in the list",
        ))
    }
}

/// Visits `entries` as a map that the visitor must consume whole.
fn visit_map<'de, V: Visitor<'de>>(
    entries: BTreeMap<String, AttributeValue>,
    visitor: V,
) -> Result<V::Value, Error> {
    let len = entries.len();
    let mut access = MapAccess {
        entries: entries.into_iter(),
        value: None,
    };
    let value = visitor.visit_map(&mut access)?;
    if access.entries.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer entries in the map"))
    }
}

/// A set's elements as list elements; sets read back as any sequence.
fn set_elements(value: AttributeValue) -> Result<Vec<AttributeValue>, AttributeValue> {
    match value {
        AttributeValue::L(elements) => Ok(elements),
        AttributeValue::Ss(set) => Ok(set.into_iter().map(AttributeValue::S).collect()),
        AttributeValue::Ns(set) => Ok(set.into_iter().map(AttributeValue::N).collect()),
        AttributeValue::Bs(set) => Ok(set.into_iter().map(AttributeValue::B).collect()),
        other => Err(other),
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident($ty:ty) via $widen:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let number = self.into_number(&visitor)?;
            match $widen(&number).and_then(|wide| <$ty>::try_from(wide).ok()) {
                Some(value) => visitor.$visit(value),
                None => Err(de::Error::invalid_value(unexpected_number(&number), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            AttributeValue::S(s) => visitor.visit_string(s),
            AttributeValue::N(number) => visit_number(&number, visitor),
            AttributeValue::B(bytes) => visitor.visit_byte_buf(bytes),
            AttributeValue::Bool(b) => visitor.visit_bool(b),
            AttributeValue::Null => visitor.visit_unit(),
            AttributeValue::M(entries) => visit_map(entries, visitor),
            list_or_set => match set_elements(list_or_set) {
                Ok(elements) => visit_list(elements, visitor),
                Err(other) => Err(invalid_type(&other, &visitor)),
            },
        }
    }

    deserialize_integer!(
        deserialize_i8 => visit_i8(i8) via to_i128,
        deserialize_i16 => visit_i16(i16) via to_i128,
        deserialize_i32 => visit_i32(i32) via to_i128,
        deserialize_i64 => visit_i64(i64) via to_i128,
        deserialize_i128 => visit_i128(i128) via to_i128,
        deserialize_u8 => visit_u8(u8) via to_u128,
        deserialize_u16 => visit_u16(u16) via to_u128,
        deserialize_u32 => visit_u32(u32) via to_u128,
        deserialize_u64 => visit_u64(u64) via to_u128,
        deserialize_u128 => visit_u128(u128) via to_u128,
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let number = self.into_number(&visitor)?;
        let value = number.to_f64() as f32;
        if value.is_finite() {
            visitor.visit_f32(value)
        } else {
            Err(de::Error::invalid_value(
                unexpected_number(&number),
                &visitor,
            ))
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let number = self.into_number(&visitor)?;
        visitor.visit_f64(number.to_f64())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            AttributeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            AttributeValue::Null => visitor.visit_unit(),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match set_elements(self.value) {
            Ok(elements) => visit_list(elements, visitor),
            // A `Vec<u8>` field written as `B` by another writer reads back.
            Err(AttributeValue::B(bytes)) => {
                let mut access = SeqDeserializer::<_, Error>::new(bytes.into_iter());
                let value = visitor.visit_seq(&mut access)?;
                access.end()?;
                Ok(value)
            }
            Err(other) => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            AttributeValue::M(entries) => visit_map(entries, visitor),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            AttributeValue::S(variant) => visitor.visit_enum(StringDeserializer::new(variant)),
            AttributeValue::M(entries) => {
                let mut entries = entries.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((name, value)), None) => visitor.visit_enum(Variant { name, value }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with exactly one key, the variant name",
                    )),
                }
            }
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf identifier
    }
}

/// The elements of an `L` (or a set), one deserializer each.
struct ListAccess {
    elements: std::vec::IntoIter<AttributeValue>,
}

impl<'de> de::SeqAccess<'de> for ListAccess {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.elements
            .next()
            .map(|element| seed.deserialize(Deserializer::new(element)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// The entries of an `M`: keys through [`KeyDeserializer`], values through
/// [`Deserializer`].
struct MapAccess {
    entries: btree_map::IntoIter<String, AttributeValue>,
    /// The value of the key just returned, waiting for `next_value_seed`.
    value: Option<AttributeValue>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(KeyDeserializer { key }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error::new("map value requested before its key"))?;
        seed.deserialize(Deserializer::new(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A non-unit enum variant: the single entry of `{variant: value}`.
struct Variant {
    name: String,
    value: AttributeValue,
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Deserializer;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Deserializer), Error> {
        let variant = seed.deserialize(StringDeserializer::<Error>::new(self.name))?;
        Ok((variant, Deserializer::new(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for Deserializer {
    type Error = Error;

    /// `{variant: NULL}` is accepted as a unit variant, as `serde_json`
    /// accepts `{"variant": null}`.
    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            AttributeValue::Null => Ok(()),
            other => Err(invalid_type(&other, &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

/// Deserializes an `M` key, parsing it when the target is an integer or
/// `bool` (the keys the serializer writes in string form).
struct KeyDeserializer {
    key: String,
}

macro_rules! deserialize_parsed {
    ($($method:ident => $visit:ident($ty:ty)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.key.parse::<$ty>() {
                Ok(value) => visitor.$visit(value),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&self.key), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.key)
    }

    deserialize_parsed!(
        deserialize_bool => visit_bool(bool),
        deserialize_i8 => visit_i8(i8),
        deserialize_i16 => visit_i16(i16),
        deserialize_i32 => visit_i32(i32),
        deserialize_i64 => visit_i64(i64),
        deserialize_i128 => visit_i128(i128),
        deserialize_u8 => visit_u8(u8),
        deserialize_u16 => visit_u16(u16),
        deserialize_u32 => visit_u32(u32),
        deserialize_u64 => visit_u64(u64),
        deserialize_u128 => visit_u128(u128),
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(StringDeserializer::new(self.key))
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
