//! Rust value -> attribute value: a `serde::Serializer` whose output is an
//! [`AttributeValue`].

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::Error;
use crate::value::{AttributeValue, Number, ValueError};

/// Serializes one value to an attribute value.
pub(super) struct Serializer;

/// The error for an integer or float that is not a DynamoDB number.
fn not_a_number(kind: &str, value: impl Display, error: ValueError) -> Error {
    Error::new(format!(
        "cannot convert {kind} {value} to a number: {}",
        error.message()
    ))
}

/// `{variant: value}`: the externally tagged form of a non-unit variant.
fn tagged(variant: &'static str, value: AttributeValue) -> AttributeValue {
    AttributeValue::M(BTreeMap::from([(variant.to_owned(), value)]))
}

macro_rules! serialize_exact_integers {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, value: $ty) -> Result<AttributeValue, Error> {
            Ok(AttributeValue::N(Number::from(value)))
        }
    )*};
}

macro_rules! serialize_checked_numbers {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, value: $ty) -> Result<AttributeValue, Error> {
            Number::try_from(value)
                .map(AttributeValue::N)
                .map_err(|error| not_a_number(stringify!($ty), value, error))
        }
    )*};
}

impl ser::Serializer for Serializer {
    type Ok = AttributeValue;
    type Error = Error;
    type SerializeSeq = ListSerializer;
    type SerializeTuple = ListSerializer;
    type SerializeTupleStruct = ListSerializer;
    type SerializeTupleVariant = TupleVariantSerializer;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = StructVariantSerializer;

    serialize_exact_integers!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
    );

    serialize_checked_numbers!(
        serialize_i128(i128),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
    );

    fn serialize_bool(self, value: bool) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Bool(value))
    }

    fn serialize_char(self, value: char) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(value.to_string()))
    }

    fn serialize_str(self, value: &str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(value.to_owned()))
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::B(value.to_vec()))
    }

    fn serialize_none(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<AttributeValue, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<AttributeValue, Error> {
        Ok(AttributeValue::S(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<AttributeValue, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<AttributeValue, Error> {
        Ok(tagged(variant, value.serialize(self)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ListSerializer, Error> {
        Ok(ListSerializer::with_capacity(len.unwrap_or(0)))
    }

    fn serialize_tuple(self, len: usize) -> Result<ListSerializer, Error> {
        Ok(ListSerializer::with_capacity(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<ListSerializer, Error> {
        Ok(ListSerializer::with_capacity(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleVariantSerializer, Error> {
        Ok(TupleVariantSerializer {
            variant,
            list: ListSerializer::with_capacity(len),
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer, Error> {
        Ok(MapSerializer::default())
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSerializer, Error> {
        Ok(MapSerializer::default())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<StructVariantSerializer, Error> {
        Ok(StructVariantSerializer {
            variant,
            map: MapSerializer::default(),
        })
    }
}

/// Collects the elements of a sequence, tuple or tuple struct into an `L`.
pub(super) struct ListSerializer {
    elements: Vec<AttributeValue>,
}

impl ListSerializer {
    fn with_capacity(len: usize) -> Self {
        // The length comes from the value being serialized; a bound keeps a
        // lying `size_hint` from reserving unbounded memory up front.
        const PREALLOCATED_ELEMENTS_MAX: usize = 4096;
        Self {
            elements: Vec::with_capacity(len.min(PREALLOCATED_ELEMENTS_MAX)),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.elements.push(value.serialize(Serializer)?);
        Ok(())
    }

    fn finish(self) -> AttributeValue {
        AttributeValue::L(self.elements)
    }
}

impl ser::SerializeSeq for ListSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for ListSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for ListSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(self.finish())
    }
}

/// A tuple variant: `{variant: L[...]}`.
pub(super) struct TupleVariantSerializer {
    variant: &'static str,
    list: ListSerializer,
}

impl ser::SerializeTupleVariant for TupleVariantSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.list.push(value)
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(tagged(self.variant, self.list.finish()))
    }
}

/// Collects the entries of a map or the fields of a struct into an `M`.
#[derive(Default)]
pub(super) struct MapSerializer {
    entries: BTreeMap<String, AttributeValue>,
    /// The key given to `serialize_key`, waiting for its value.
    pending_key: Option<String>,
}

impl MapSerializer {
    fn finish(self) -> AttributeValue {
        AttributeValue::M(self.entries)
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.pending_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| Error::new("map value serialized before its key"))?;
        self.entries.insert(key, value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.entries
            .insert(name.to_owned(), value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(self.finish())
    }
}

/// A struct variant: `{variant: M{...}}`.
pub(super) struct StructVariantSerializer {
    variant: &'static str,
    map: MapSerializer,
}

impl ser::SerializeStructVariant for StructVariantSerializer {
    type Ok = AttributeValue;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.map, name, value)
    }

    fn end(self) -> Result<AttributeValue, Error> {
        Ok(tagged(self.variant, self.map.finish()))
    }
}

/// Serializes a map key to the string an `M` is keyed by.
struct KeySerializer;

fn key_must_be_a_string(found: &str) -> Error {
    Error::new(format!(
        "a map key must be a string, integer, char or bool, not {found}"
    ))
}

macro_rules! key_to_string {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, value: $ty) -> Result<String, Error> {
            Ok(value.to_string())
        }
    )*};
}

macro_rules! key_rejected {
    ($($method:ident($($ty:ty),*) -> $output:ty = $found:literal),* $(,)?) => {$(
        fn $method(self, $(_: $ty),*) -> Result<$output, Error> {
            Err(key_must_be_a_string($found))
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    key_to_string!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
    );

    key_rejected!(
        serialize_f32(f32) -> String = "a float",
        serialize_f64(f64) -> String = "a float",
        serialize_bytes(&[u8]) -> String = "bytes",
        serialize_none() -> String = "None",
        serialize_unit() -> String = "unit",
        serialize_unit_struct(&'static str) -> String = "a unit struct",
        serialize_seq(Option<usize>) -> Self::SerializeSeq = "a sequence",
        serialize_tuple(usize) -> Self::SerializeTuple = "a tuple",
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct = "a tuple struct",
        serialize_tuple_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeTupleVariant = "a tuple variant",
        serialize_map(Option<usize>) -> Self::SerializeMap = "a map",
        serialize_struct(&'static str, usize) -> Self::SerializeStruct = "a struct",
        serialize_struct_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeStructVariant = "a struct variant",
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_must_be_a_string("an Option"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_must_be_a_string("a newtype variant"))
    }
}
