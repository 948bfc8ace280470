//! Serde conversion between Rust types and attribute values, through the
//! public API: the shapes written, the round trips, and the errors.

// Helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use nimbus::value::{from_attribute_value, from_item, to_attribute_value, to_item};
use nimbus::{AttributeValue, Item, Number, ValueError};
use proptest::prelude::*;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Bytes that serialize through `serialize_bytes`, as `serde_bytes` does.
#[derive(Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl Visitor<'_> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Blob, E> {
                Ok(Blob(bytes.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(bytes))
            }
        }
        deserializer.deserialize_byte_buf(BlobVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Segment(i32, i32),
    Rectangle { width: u32, height: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CustomerId(u64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point(i16, i16);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    street: String,
    zip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    customer: CustomerId,
    quantity: u32,
    largest: u64,
    smallest: i64,
    price: f64,
    note: Option<String>,
    discount: Option<f64>,
    tags: Vec<String>,
    attributes: HashMap<String, i32>,
    by_position: BTreeMap<u32, String>,
    address: Address,
    shapes: Vec<Shape>,
    thumbnail: Blob,
    marker: Marker,
    origin: Point,
    pair: (i8, char),
    nothing: (),
    #[serde(skip)]
    cached_total: u32,
}

fn order() -> Order {
    Order {
        id: "order-1".into(),
        customer: CustomerId(42),
        quantity: 3,
        largest: u64::MAX,
        smallest: i64::MIN,
        price: 19.99,
        note: None,
        discount: Some(0.25),
        tags: vec!["gift".into(), "express".into()],
        attributes: HashMap::from([("weight".into(), 12), ("depth".into(), -4)]),
        by_position: BTreeMap::from([(1, "first".into()), (10, "tenth".into())]),
        address: Address {
            street: "1 Main St".into(),
            zip: Some("12345".into()),
        },
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Segment(-1, 2),
            Shape::Rectangle {
                width: 4,
                height: 5,
            },
        ],
        thumbnail: Blob(vec![0, 1, 255]),
        marker: Marker,
        origin: Point(-3, 7),
        pair: (-8, 'é'),
        nothing: (),
        cached_total: 0,
    }
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.parse().unwrap())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn m<const LEN: usize>(entries: [(&str, AttributeValue); LEN]) -> AttributeValue {
    AttributeValue::M(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn conversion_message(error: ValueError) -> String {
    match error {
        ValueError::Conversion(message) => message,
        other => panic!("expected a conversion error, got {other:?}"),
    }
}

#[test]
fn realistic_nested_struct_round_trips() {
    let order = order();
    let item = to_item(&order).unwrap();
    assert_eq!(from_item::<Order>(item).unwrap(), order);
}

#[test]
fn struct_fields_convert_to_their_attribute_types() {
    let item = to_item(&order()).unwrap();
    assert_eq!(item["customer"], n("42"));
    assert_eq!(item["largest"], n("18446744073709551615"));
    assert_eq!(item["smallest"], n("-9223372036854775808"));
    assert_eq!(item["price"], n("19.99"));
    assert_eq!(item["note"], AttributeValue::Null);
    assert_eq!(item["discount"], n("0.25"));
    assert_eq!(
        item["tags"],
        AttributeValue::L(vec![s("gift"), s("express")])
    );
    assert_eq!(
        item["attributes"],
        m([("depth", n("-4")), ("weight", n("12"))])
    );
    assert_eq!(
        item["by_position"],
        m([("1", s("first")), ("10", s("tenth"))])
    );
    assert_eq!(
        item["address"],
        m([("street", s("1 Main St")), ("zip", s("12345"))])
    );
    assert_eq!(item["thumbnail"], AttributeValue::B(vec![0, 1, 255]));
    assert_eq!(item["marker"], AttributeValue::Null);
    assert_eq!(item["origin"], AttributeValue::L(vec![n("-3"), n("7")]));
    assert_eq!(item["pair"], AttributeValue::L(vec![n("-8"), s("é")]));
    assert_eq!(item["nothing"], AttributeValue::Null);
}

#[test]
fn skipped_fields_are_not_written() {
    #[derive(Serialize)]
    struct Draft {
        title: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        subtitle: Option<&'static str>,
        #[serde(skip)]
        _scratch: u8,
    }
    let item = to_item(&Draft {
        title: "t",
        subtitle: None,
        _scratch: 1,
    })
    .unwrap();
    assert_eq!(item, Item::new().with("title", "t"));
    assert!(!to_item(&order()).unwrap().contains_key("cached_total"));
}

#[test]
fn enum_variants_are_externally_tagged() {
    let cases = [
        (Shape::Empty, s("Empty")),
        (Shape::Circle(1.5), m([("Circle", n("1.5"))])),
        (
            Shape::Segment(-1, 2),
            m([("Segment", AttributeValue::L(vec![n("-1"), n("2")]))]),
        ),
        (
            Shape::Rectangle {
                width: 4,
                height: 5,
            },
            m([("Rectangle", m([("height", n("5")), ("width", n("4"))]))]),
        ),
    ];
    for (shape, expected) in cases {
        assert_eq!(to_attribute_value(&shape).unwrap(), expected);
        assert_eq!(from_attribute_value::<Shape>(expected).unwrap(), shape);
    }
}

#[test]
fn scalars_convert_to_their_attribute_types() {
    assert_eq!(
        to_attribute_value(&true).unwrap(),
        AttributeValue::Bool(true)
    );
    assert_eq!(to_attribute_value(&-7i8).unwrap(), n("-7"));
    assert_eq!(to_attribute_value(&2.5f32).unwrap(), n("2.5"));
    assert_eq!(to_attribute_value(&0.1f64).unwrap(), n("0.1"));
    assert_eq!(to_attribute_value(&'x').unwrap(), s("x"));
    assert_eq!(to_attribute_value("text").unwrap(), s("text"));
    assert_eq!(to_attribute_value(&Some(3u8)).unwrap(), n("3"));
    assert_eq!(
        to_attribute_value(&None::<u8>).unwrap(),
        AttributeValue::Null
    );
    assert_eq!(to_attribute_value(&()).unwrap(), AttributeValue::Null);
    assert_eq!(
        to_attribute_value(&vec![1u8, 2]).unwrap(),
        AttributeValue::L(vec![n("1"), n("2")])
    );
}

#[test]
fn rust_sets_serialize_as_lists_not_dynamodb_sets() {
    let tags: HashSet<String> = ["a", "b", "c"].into_iter().map(String::from).collect();
    let value = to_attribute_value(&tags).unwrap();
    let AttributeValue::L(elements) = &value else {
        panic!("expected L, got {value:?}");
    };
    let mut elements = elements.clone();
    elements.sort_by_key(|element| element.as_s().map(String::from));
    assert_eq!(elements, [s("a"), s("b"), s("c")]);
    assert_eq!(
        from_attribute_value::<HashSet<String>>(value).unwrap(),
        tags
    );
}

#[test]
fn dynamodb_sets_deserialize_into_sequences() {
    let strings = AttributeValue::string_set(["b", "a"]);
    assert_eq!(
        from_attribute_value::<BTreeSet<String>>(strings).unwrap(),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
    let numbers = AttributeValue::number_set([3, 1, 2]);
    assert_eq!(
        from_attribute_value::<Vec<u32>>(numbers).unwrap(),
        [1, 2, 3]
    );
    let binaries = AttributeValue::binary_set([vec![2u8], vec![1]]);
    assert_eq!(
        from_attribute_value::<Vec<Blob>>(binaries).unwrap(),
        [Blob(vec![1]), Blob(vec![2])]
    );
}

#[test]
fn binary_reads_back_as_a_byte_vector() {
    let bytes: Vec<u8> = from_attribute_value(AttributeValue::B(vec![9, 8])).unwrap();
    assert_eq!(bytes, [9, 8]);
}

#[test]
fn binary_into_a_shorter_byte_array_is_an_error() {
    assert!(from_attribute_value::<[u8; 2]>(AttributeValue::B(vec![1, 2, 3])).is_err());
    assert_eq!(
        from_attribute_value::<[u8; 2]>(AttributeValue::B(vec![1, 2])).unwrap(),
        [1, 2]
    );
}

#[test]
fn non_string_map_keys_are_written_in_string_form() {
    let by_flag = HashMap::from([(true, 1u8), (false, 0)]);
    let value = to_attribute_value(&by_flag).unwrap();
    assert_eq!(value, m([("false", n("0")), ("true", n("1"))]));
    assert_eq!(
        from_attribute_value::<HashMap<bool, u8>>(value).unwrap(),
        by_flag
    );

    let by_letter = BTreeMap::from([('a', -1i64), ('b', 2)]);
    let value = to_attribute_value(&by_letter).unwrap();
    assert_eq!(value, m([("a", n("-1")), ("b", n("2"))]));
    assert_eq!(
        from_attribute_value::<BTreeMap<char, i64>>(value).unwrap(),
        by_letter
    );

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum Color {
        Red,
        Blue,
    }
    let by_color = BTreeMap::from([(Color::Red, 1u8), (Color::Blue, 2)]);
    let value = to_attribute_value(&by_color).unwrap();
    assert_eq!(value, m([("Blue", n("2")), ("Red", n("1"))]));
    assert_eq!(
        from_attribute_value::<BTreeMap<Color, u8>>(value).unwrap(),
        by_color
    );
}

#[test]
fn map_keys_that_are_not_scalars_are_errors() {
    let by_float = vec![(1.5f64, 1u8)];
    let error = to_attribute_value(&MapOf(by_float)).unwrap_err();
    assert!(conversion_message(error).contains("map key must be a string"));
    let by_pair = BTreeMap::from([((1, 2), 3)]);
    let error = to_attribute_value(&by_pair).unwrap_err();
    assert!(conversion_message(error).contains("not a tuple"));
}

/// Serializes pairs as a map, for key types `HashMap` cannot hold.
struct MapOf<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for MapOf<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[test]
fn map_key_that_does_not_parse_is_an_error() {
    let error = from_attribute_value::<HashMap<u8, u8>>(m([("x", n("1"))])).unwrap_err();
    assert_eq!(
        conversion_message(error),
        "invalid value: string \"x\", expected u8"
    );
}

#[test]
fn non_finite_floats_are_errors() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = to_attribute_value(&value).unwrap_err();
        assert!(conversion_message(error).contains("cannot convert f64"));
    }
    assert!(to_attribute_value(&f32::NAN).is_err());
    assert!(to_attribute_value(&vec![1.0, f64::NAN]).is_err());
}

#[test]
fn floats_outside_dynamodb_range_are_errors() {
    assert!(to_attribute_value(&1e200f64).is_err());
    assert!(to_attribute_value(&1e-200f64).is_err());
}

#[test]
fn u128_with_39_digits_is_an_error() {
    let error = to_attribute_value(&u128::MAX).unwrap_err();
    let message = conversion_message(error);
    assert!(
        message.contains("340282366920938463463374607431768211455"),
        "{message}"
    );
    assert!(message.contains("38 significant digits"), "{message}");
    assert!(to_attribute_value(&i128::MIN).is_err());
}

#[test]
fn wide_integers_that_fit_round_trip_exactly() {
    let largest_38_digits = 10u128.pow(38) - 1;
    let value = to_attribute_value(&largest_38_digits).unwrap();
    assert_eq!(value, n("99999999999999999999999999999999999999"));
    assert_eq!(
        from_attribute_value::<u128>(value).unwrap(),
        largest_38_digits
    );

    // Above i128::MAX, representable because of its trailing zeros.
    let beyond_i128 = 2 * 10u128.pow(38);
    let value = to_attribute_value(&beyond_i128).unwrap();
    assert_eq!(
        from_attribute_value::<u128>(value.clone()).unwrap(),
        beyond_i128
    );
    assert!(from_attribute_value::<i128>(value).is_err());

    let negative = -(10i128.pow(37)) - 7;
    let value = to_attribute_value(&negative).unwrap();
    assert_eq!(from_attribute_value::<i128>(value).unwrap(), negative);
}

#[test]
fn integers_out_of_range_or_fractional_are_errors() {
    let error = from_attribute_value::<u8>(n("300")).unwrap_err();
    assert_eq!(
        conversion_message(error),
        "invalid value: integer `300`, expected u8"
    );
    assert!(from_attribute_value::<u32>(n("-1")).is_err());
    assert!(from_attribute_value::<i32>(n("1.5")).is_err());
    assert!(from_attribute_value::<u64>(n("1e30")).is_err());
    assert!(from_attribute_value::<f32>(n("1e100")).is_err());
    assert_eq!(from_attribute_value::<i64>(n("1e3")).unwrap(), 1000);
    assert_eq!(from_attribute_value::<f64>(n("7")).unwrap(), 7.0);
}

#[test]
fn wrong_type_error_names_what_was_found_and_expected() {
    let error = from_attribute_value::<u32>(s("x")).unwrap_err();
    assert_eq!(
        conversion_message(error),
        "invalid type: string \"x\", expected u32"
    );
    let error = from_attribute_value::<Shape>(AttributeValue::Bool(true)).unwrap_err();
    assert_eq!(
        conversion_message(error),
        "invalid type: boolean `true`, expected enum Shape"
    );
}

#[test]
fn unit_variant_also_reads_from_a_map_to_null() {
    let value = m([("Empty", AttributeValue::Null)]);
    assert_eq!(from_attribute_value::<Shape>(value).unwrap(), Shape::Empty);
}

#[test]
fn enum_map_with_more_than_one_key_is_an_error() {
    let value = m([("Circle", n("1")), ("Empty", AttributeValue::Null)]);
    assert!(from_attribute_value::<Shape>(value).is_err());
    assert!(from_attribute_value::<Shape>(s("Hexagon")).is_err());
}

#[test]
fn to_item_of_a_non_map_is_an_error() {
    for value in [
        to_item(&5).unwrap_err(),
        to_item("text").unwrap_err(),
        to_item(&vec![1, 2]).unwrap_err(),
        to_item(&None::<Address>).unwrap_err(),
        to_item(&Shape::Empty).unwrap_err(),
    ] {
        assert!(conversion_message(value).contains("must serialize to a map or struct"));
    }
    let map = HashMap::from([("k", 1)]);
    assert_eq!(to_item(&map).unwrap(), Item::new().with("k", 1));
}

#[test]
fn missing_required_field_is_an_error_naming_it() {
    let item = Item::new().with("zip", "12345");
    let error = from_item::<Address>(item).unwrap_err();
    assert_eq!(conversion_message(error), "missing field `street`");
}

#[test]
fn missing_or_null_option_field_is_none() {
    let item = Item::new().with("street", "Elm");
    let address: Address = from_item(item).unwrap();
    assert_eq!(address.zip, None);
    let item = Item::new()
        .with("street", "Elm")
        .with("zip", AttributeValue::Null);
    assert_eq!(from_item::<Address>(item).unwrap().zip, None);
}

#[test]
fn unknown_attributes_are_ignored_unless_denied() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        _a: u8,
    }
    let item = Item::new().with("street", "Elm").with("extra", 1);
    assert!(from_item::<Address>(item.clone()).is_ok());
    assert!(from_item::<Strict>(item).is_err());
}

#[test]
fn tuple_with_extra_elements_is_an_error() {
    let value = AttributeValue::L(vec![n("1"), n("2"), n("3")]);
    assert!(from_attribute_value::<(u8, u8)>(value).is_err());
}

#[test]
fn self_describing_targets_see_the_narrowest_number() {
    let value = AttributeValue::L(vec![
        n("18446744073709551615"),
        n("-5"),
        n("1.5"),
        s("x"),
        AttributeValue::Null,
        AttributeValue::Bool(false),
    ]);
    let json: serde_json::Value = from_attribute_value(value).unwrap();
    assert_eq!(
        json,
        serde_json::json!([18446744073709551615u64, -5, 1.5, "x", null, false])
    );
}

#[test]
fn floats_keep_their_shortest_round_tripping_digits() {
    let sum = 0.1f64 + 0.2;
    let value = to_attribute_value(&sum).unwrap();
    assert_eq!(value, n("0.30000000000000004"));
    assert_eq!(value, AttributeValue::N(Number::try_from(sum).unwrap()));
    assert_eq!(from_attribute_value::<f64>(value).unwrap(), sum);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Random {
    name: String,
    signed: i64,
    unsigned: u64,
    small: Option<i16>,
    ratio: f64,
    flag: bool,
    readings: Vec<u32>,
    labels: BTreeMap<String, String>,
    shape: Shape,
    blob: Blob,
}

fn shape_strategy() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        (-1e100f64..1e100).prop_map(Shape::Circle),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Shape::Segment(a, b)),
        (any::<u32>(), any::<u32>()).prop_map(|(width, height)| Shape::Rectangle { width, height }),
    ]
}

fn random_strategy() -> impl Strategy<Value = Random> {
    (
        (".*", any::<i64>(), any::<u64>(), any::<Option<i16>>()),
        (
            -1e100f64..1e100,
            any::<bool>(),
            prop::collection::vec(any::<u32>(), 0..8),
        ),
        (
            prop::collection::btree_map(".*", ".*", 0..4),
            shape_strategy(),
            prop::collection::vec(any::<u8>(), 0..16),
        ),
    )
        .prop_map(
            |((name, signed, unsigned, small), (ratio, flag, readings), (labels, shape, blob))| {
                Random {
                    name,
                    signed,
                    unsigned,
                    small,
                    ratio,
                    flag,
                    readings,
                    labels,
                    shape,
                    blob: Blob(blob),
                }
            },
        )
}

proptest! {
    #[test]
    fn random_structs_round_trip(value in random_strategy()) {
        let item = to_item(&value).unwrap();
        prop_assert_eq!(from_item::<Random>(item).unwrap(), value);
    }
}
