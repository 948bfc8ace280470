//! Conversion between any serde type and attribute values, following the
//! conventions of the `serde_dynamo` crate so items written by either read
//! back the same way.
//!
//! | Rust (serde data model)                 | Attribute value            |
//! |-----------------------------------------|----------------------------|
//! | `bool`                                  | `BOOL`                     |
//! | integers, `f32`, `f64`                  | `N` (exact; NaN/inf fail)  |
//! | `char`, `str`, `String`                 | `S`                        |
//! | bytes (`serialize_bytes`)               | `B`                        |
//! | `None`, `()`, unit struct               | `NULL`                     |
//! | `Some(x)`, newtype struct               | the value of `x`           |
//! | sequence, tuple, tuple struct           | `L`                        |
//! | map, struct                             | `M`                        |
//! | unit variant                            | `S` (the variant name)     |
//! | newtype, tuple and struct variants      | `M` `{variant: value}`     |
//!
//! Rust sets (`HashSet`, `BTreeSet`) serialize as `L`, not `SS`/`NS`/`BS`:
//! serde does not tell a set from a sequence, and `serde_dynamo` makes the
//! same choice. Reading accepts the other direction too: an `SS`, `NS` or
//! `BS` deserializes into any sequence type. Map keys must be strings;
//! integer, `char`, `bool` and unit-variant keys are written in their string
//! form, as `serde_json` does, and parsed back.
//!
//! `AttributeValue` and `Item` themselves serialize as DynamoDB JSON, so a
//! field of those types converts to its tagged form (`{"S": "x"}` as an
//! `M`); store them directly instead.
//!
//! Every error is [`ValueError::Conversion`]; this module never validates
//! items against DynamoDB's limits (see [`validate_item`](super::validate_item)).

mod de;
mod ser;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AttributeValue, Item, ValueError};

/// Converts any serializable value to an attribute value.
///
/// ```
/// use nimbus::value::{AttributeValue, to_attribute_value};
/// let value = to_attribute_value(&("song", 3, Some(true))).unwrap();
/// assert_eq!(
///     value,
///     AttributeValue::L(vec!["song".into(), 3.into(), true.into()])
/// );
/// ```
pub fn to_attribute_value<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, ValueError> {
    Ok(value.serialize(ser::Serializer)?)
}

/// Converts a value that serializes to a map (a struct, a `HashMap`, ...)
/// to an item; anything else is an error.
///
/// ```
/// use nimbus::value::{AttributeValue, to_item};
/// #[derive(serde::Serialize)]
/// struct Song { artist: String, year: u16 }
/// let item = to_item(&Song { artist: "Acme Band".into(), year: 2020 }).unwrap();
/// assert_eq!(item["year"], AttributeValue::from(2020));
/// assert!(to_item(&[1, 2]).is_err());
/// ```
pub fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item, ValueError> {
    match to_attribute_value(value)? {
        AttributeValue::M(map) => Ok(Item::from(map)),
        other => Err(ValueError::Conversion(format!(
            "an item must serialize to a map or struct, not to {}",
            other.attribute_type()
        ))),
    }
}

/// Converts an attribute value to any deserializable type.
///
/// ```
/// use nimbus::value::{AttributeValue, from_attribute_value};
/// let value = AttributeValue::L(vec![1.into(), 2.into()]);
/// let numbers: Vec<u8> = from_attribute_value(value).unwrap();
/// assert_eq!(numbers, [1, 2]);
/// ```
pub fn from_attribute_value<T: DeserializeOwned>(value: AttributeValue) -> Result<T, ValueError> {
    Ok(T::deserialize(de::Deserializer::new(value))?)
}

/// Converts an item to any type that deserializes from a map.
///
/// ```
/// use nimbus::item;
/// use nimbus::value::from_item;
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Song { artist: String, year: u16, rating: Option<u8> }
/// let song: Song = from_item(item! { "artist" => "Acme Band", "year" => 2020 }).unwrap();
/// assert_eq!(song, Song { artist: "Acme Band".into(), year: 2020, rating: None });
/// ```
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, ValueError> {
    from_attribute_value(AttributeValue::M(item.into_map()))
}

/// The serde-facing error of both directions; it leaves this module as
/// [`ValueError::Conversion`].
#[derive(Debug)]
struct Error(String);

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }
}

impl From<Error> for ValueError {
    fn from(error: Error) -> Self {
        ValueError::Conversion(error.0)
    }
}
