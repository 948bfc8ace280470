//! DynamoDB JSON: `{"S":"x"}`, `{"N":"1"}`, `{"B":"base64"}`,
//! `{"L":[...]}`, `{"M":{...}}`, `{"SS":[...]}`, ... in both directions.
//!
//! Deserialization rejects what DynamoDB rejects, with its messages: no type
//! or more than one type, numbers sent as JSON numbers, malformed numbers,
//! invalid base64, `{"NULL": false}`, empty sets and duplicate set elements.
//! [`AttributeValue::from_json`] and [`Item::from_json`] also apply the
//! item rules (nesting depth, names) and sort errors into `Validation` and
//! `Serialization` as DynamoDB does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::{AttributeType, AttributeValue, Item, Number, ValueError, validate};

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let name = self.attribute_type().name();
        match self {
            Self::S(s) => map.serialize_entry(name, s)?,
            Self::N(n) => map.serialize_entry(name, &n.to_string())?,
            Self::B(b) => map.serialize_entry(name, &BASE64.encode(b))?,
            Self::Bool(b) => map.serialize_entry(name, b)?,
            Self::Null => map.serialize_entry(name, &true)?,
            Self::L(l) => map.serialize_entry(name, l)?,
            Self::M(m) => map.serialize_entry(name, m)?,
            Self::Ss(set) => map.serialize_entry(name, set)?,
            Self::Ns(set) => map.serialize_entry(name, &DisplaySeq(set))?,
            Self::Bs(set) => map.serialize_entry(name, &Base64Seq(set))?,
        }
        map.end()
    }
}

/// Serializes numbers as their canonical strings.
struct DisplaySeq<'a>(&'a BTreeSet<Number>);

impl Serialize for DisplaySeq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for number in self.0 {
            seq.serialize_element(&number.to_string())?;
        }
        seq.end()
    }
}

/// Serializes binaries as base64 strings.
struct Base64Seq<'a>(&'a BTreeSet<Vec<u8>>);

impl Serialize for Base64Seq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for bytes in self.0 {
            seq.serialize_element(&BASE64.encode(bytes))?;
        }
        seq.end()
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttributeValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, AttributeValue>::deserialize(deserializer).map(Item::from)
    }
}

const EMPTY_VALUE: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MANY_TYPES: &str = "Supplied AttributeValue has more than one datatypes set, \
                          must contain exactly one of the supported datatypes";

struct AttributeValueVisitor;

impl<'de> Visitor<'de> for AttributeValueVisitor {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB AttributeValue object such as {\"S\": \"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(key) = map.next_key::<String>()? {
            let Some(attribute_type) = AttributeType::from_name(&key) else {
                // Unknown members are ignored, as the AWS SDKs ignore them.
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            let parsed = map.next_value_seed(TypedValue(attribute_type))?;
            if value.replace(parsed).is_some() {
                return Err(de::Error::custom(MANY_TYPES));
            }
        }
        value.ok_or_else(|| de::Error::custom(EMPTY_VALUE))
    }
}

/// Deserializes the JSON value of one type member (`"S": ...`).
struct TypedValue(AttributeType);

impl<'de> DeserializeSeed<'de> for TypedValue {
    type Value = AttributeValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Ok(match self.0 {
            AttributeType::S => AttributeValue::S(deserializer.deserialize_any(JsonString)?),
            AttributeType::N => {
                AttributeValue::N(parse_number(&deserializer.deserialize_any(JsonString)?)?)
            }
            AttributeType::B => {
                AttributeValue::B(decode_base64(&deserializer.deserialize_any(JsonString)?)?)
            }
            AttributeType::Bool => AttributeValue::Bool(bool::deserialize(deserializer)?),
            AttributeType::Null => {
                if !bool::deserialize(deserializer)? {
                    return Err(de::Error::custom(
                        "One or more parameter values were invalid: \
                         Null attribute value types must have the value of true",
                    ));
                }
                AttributeValue::Null
            }
            AttributeType::L => AttributeValue::L(Vec::deserialize(deserializer)?),
            AttributeType::M => AttributeValue::M(BTreeMap::deserialize(deserializer)?),
            AttributeType::Ss => {
                let elements = deserializer.deserialize_seq(StringList)?;
                AttributeValue::Ss(collect_set(elements.clone(), AttributeType::Ss, || {
                    format!("[{}]", elements.join(", "))
                })?)
            }
            AttributeType::Ns => {
                let elements = deserializer.deserialize_seq(StringList)?;
                let numbers = elements
                    .iter()
                    .map(|text| parse_number(text))
                    .collect::<Result<Vec<_>, _>>()?;
                AttributeValue::Ns(collect_set(numbers, AttributeType::Ns, String::new)?)
            }
            AttributeType::Bs => {
                let elements = deserializer.deserialize_seq(StringList)?;
                let binaries = elements
                    .iter()
                    .map(|text| decode_base64(text))
                    .collect::<Result<Vec<_>, _>>()?;
                AttributeValue::Bs(collect_set(binaries, AttributeType::Bs, || {
                    format!("[{}]", elements.join(", "))
                })?)
            }
        })
    }
}

/// Collects set elements, rejecting an empty set and duplicates with
/// DynamoDB's per-type messages.
fn collect_set<T: Ord, E: de::Error>(
    elements: Vec<T>,
    set_type: AttributeType,
    listing: impl FnOnce() -> String,
) -> Result<BTreeSet<T>, E> {
    let count = elements.len();
    let set: BTreeSet<T> = elements.into_iter().collect();
    if count == 0 {
        return Err(de::Error::custom(validate::empty_set_error(set_type)));
    }
    if set.len() != count {
        return Err(de::Error::custom(match set_type {
            AttributeType::Ss => format!(
                "One or more parameter values were invalid: Input collection {} contains duplicates.",
                listing()
            ),
            AttributeType::Ns => "Input collection contains duplicates".to_owned(),
            _ => format!(
                "One or more parameter values were invalid: Input collection {}of type BS contains duplicates.",
                listing()
            ),
        }));
    }
    Ok(set)
}

fn parse_number<E: de::Error>(text: &str) -> Result<Number, E> {
    text.parse::<Number>().map_err(de::Error::custom)
}

fn decode_base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    if !text.len().is_multiple_of(4) {
        return Err(de::Error::custom(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            text.len()
        )));
    }
    BASE64
        .decode(text)
        .map_err(|error| de::Error::custom(format!("Invalid Base64 value: {error}")))
}

/// A JSON string, with DynamoDB's messages for the other JSON types.
struct JsonString;

impl Visitor<'_> for JsonString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom("NUMBER_VALUE cannot be converted to String"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom("NUMBER_VALUE cannot be converted to String"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom("DECIMAL_VALUE cannot be converted to String"))
    }
}

/// A JSON array of strings.
struct StringList;

impl<'de> Visitor<'de> for StringList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(element) = seq.next_element_seed(StringSeed)? {
            elements.push(element);
        }
        Ok(elements)
    }
}

struct StringSeed;

impl<'de> DeserializeSeed<'de> for StringSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(JsonString)
    }
}

/// Messages that DynamoDB reports as `ValidationException`; everything else
/// that fails to parse is a `SerializationException`.
const VALIDATION_PREFIXES: &[&str] = &[
    "One or more parameter values",
    "Supplied AttributeValue",
    "Input collection",
    "The parameter cannot be converted",
    "Attempting to store",
    "Number overflow",
    "Number underflow",
    "Nesting Levels",
    "Empty attribute name",
    "Attribute name is too large",
];

/// Converts a serde_json error into DynamoDB's error class and message.
pub(crate) fn from_json_error(error: serde_json::Error) -> ValueError {
    let text = error.to_string();
    // serde_json appends the position; DynamoDB's messages carry none.
    let message = match text.rfind(" at line ") {
        Some(position) if error.line() != 0 => &text[..position],
        _ => text.as_str(),
    };
    if message.contains("recursion limit exceeded") {
        // Deeper than serde_json's guard (far deeper than DynamoDB allows).
        return validate::nesting_error();
    }
    if VALIDATION_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
    {
        ValueError::Validation(message.to_owned())
    } else {
        ValueError::Serialization(message.to_owned())
    }
}

impl AttributeValue {
    /// Parses one value from DynamoDB JSON (`{"S":"x"}`) and checks it
    /// against DynamoDB's value rules.
    pub fn from_json(json: &str) -> Result<Self, ValueError> {
        let value: AttributeValue = serde_json::from_str(json).map_err(from_json_error)?;
        validate::validate_value(&value, 1)?;
        Ok(value)
    }

    /// The value as DynamoDB JSON.
    pub fn to_json(&self) -> String {
        self.to_string()
    }
}

impl Item {
    /// Parses an item from DynamoDB JSON (`{"Name": {"S": "x"}, ...}`) and
    /// checks it against DynamoDB's item rules, the 400 KB limit included.
    pub fn from_json(json: &str) -> Result<Self, ValueError> {
        let item: Item = serde_json::from_str(json).map_err(from_json_error)?;
        validate::validate_item(&item)?;
        Ok(item)
    }

    /// The item as DynamoDB JSON.
    pub fn to_json(&self) -> String {
        self.to_string()
    }
}
