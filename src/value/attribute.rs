//! The ten DynamoDB attribute types and conversions from Rust values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::Number;

/// One attribute value: DynamoDB's `AttributeValue`.
///
/// Sets are ordered sets, so they hold no duplicates by construction and
/// compare equal regardless of the order their elements were given in
/// (DynamoDB does not preserve set order either). Number-set elements are
/// canonical numbers, so `1` and `1.0` are one element.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// `S`: a UTF-8 string.
    S(String),
    /// `N`: a number.
    N(Number),
    /// `B`: binary data.
    B(Vec<u8>),
    /// `BOOL`: a boolean.
    Bool(bool),
    /// `NULL`: the null value.
    Null,
    /// `L`: a list of values of any types.
    L(Vec<AttributeValue>),
    /// `M`: a map from attribute names to values.
    M(BTreeMap<String, AttributeValue>),
    /// `SS`: a non-empty set of strings.
    Ss(BTreeSet<String>),
    /// `NS`: a non-empty set of numbers.
    Ns(BTreeSet<Number>),
    /// `BS`: a non-empty set of binaries.
    Bs(BTreeSet<Vec<u8>>),
}

/// The type of an attribute value, named as in DynamoDB JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeType {
    /// `S`
    S,
    /// `N`
    N,
    /// `B`
    B,
    /// `BOOL`
    Bool,
    /// `NULL`
    Null,
    /// `L`
    L,
    /// `M`
    M,
    /// `SS`
    Ss,
    /// `NS`
    Ns,
    /// `BS`
    Bs,
}

impl AttributeType {
    /// Every type, in DynamoDB's documentation order.
    pub const ALL: [AttributeType; 10] = [
        Self::S,
        Self::N,
        Self::B,
        Self::Bool,
        Self::Null,
        Self::L,
        Self::M,
        Self::Ss,
        Self::Ns,
        Self::Bs,
    ];

    /// The type's name in DynamoDB JSON (`"S"`, `"BOOL"`, `"SS"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
            Self::Bool => "BOOL",
            Self::Null => "NULL",
            Self::L => "L",
            Self::M => "M",
            Self::Ss => "SS",
            Self::Ns => "NS",
            Self::Bs => "BS",
        }
    }

    /// The type named `name` in DynamoDB JSON.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether values of this type may be key attributes (S, N or B).
    pub fn is_scalar_key_type(self) -> bool {
        matches!(self, Self::S | Self::N | Self::B)
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AttributeValue {
    /// The value's type.
    pub fn attribute_type(&self) -> AttributeType {
        match self {
            Self::S(_) => AttributeType::S,
            Self::N(_) => AttributeType::N,
            Self::B(_) => AttributeType::B,
            Self::Bool(_) => AttributeType::Bool,
            Self::Null => AttributeType::Null,
            Self::L(_) => AttributeType::L,
            Self::M(_) => AttributeType::M,
            Self::Ss(_) => AttributeType::Ss,
            Self::Ns(_) => AttributeType::Ns,
            Self::Bs(_) => AttributeType::Bs,
        }
    }

    /// The string, if this is an `S`.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Self::S(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is an `N`.
    pub fn as_n(&self) -> Option<&Number> {
        match self {
            Self::N(n) => Some(n),
            _ => None,
        }
    }

    /// The bytes, if this is a `B`.
    pub fn as_b(&self) -> Option<&[u8]> {
        match self {
            Self::B(b) => Some(b),
            _ => None,
        }
    }

    /// The boolean, if this is a `BOOL`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The elements, if this is an `L`.
    pub fn as_l(&self) -> Option<&[AttributeValue]> {
        match self {
            Self::L(l) => Some(l),
            _ => None,
        }
    }

    /// The entries, if this is an `M`.
    pub fn as_m(&self) -> Option<&BTreeMap<String, AttributeValue>> {
        match self {
            Self::M(m) => Some(m),
            _ => None,
        }
    }

    /// A string set from any strings; duplicates collapse.
    pub fn string_set<I, S>(elements: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Ss(elements.into_iter().map(Into::into).collect())
    }

    /// A number set from any numbers; numerically equal elements collapse.
    pub fn number_set<I, N>(elements: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<Number>,
    {
        Self::Ns(elements.into_iter().map(Into::into).collect())
    }

    /// A binary set from any byte strings; duplicates collapse.
    pub fn binary_set<I, B>(elements: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Vec<u8>>,
    {
        Self::Bs(elements.into_iter().map(Into::into).collect())
    }
}

impl fmt::Debug for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::S(s) => write!(f, "S({s:?})"),
            Self::N(n) => write!(f, "N({n})"),
            Self::B(b) => write!(f, "B({b:?})"),
            Self::Bool(b) => write!(f, "BOOL({b})"),
            Self::Null => f.write_str("NULL"),
            Self::L(l) => f.debug_tuple("L").field(l).finish(),
            Self::M(m) => f.debug_tuple("M").field(m).finish(),
            Self::Ss(s) => f.debug_tuple("SS").field(s).finish(),
            Self::Ns(s) => f.debug_tuple("NS").field(s).finish(),
            Self::Bs(s) => f.debug_tuple("BS").field(s).finish(),
        }
    }
}

impl fmt::Display for AttributeValue {
    /// The value in DynamoDB JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => f.write_str(&json),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self::S(value)
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        Self::S(value.to_owned())
    }
}

impl From<&String> for AttributeValue {
    fn from(value: &String) -> Self {
        Self::S(value.clone())
    }
}

impl From<Number> for AttributeValue {
    fn from(value: Number) -> Self {
        Self::N(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<Vec<u8>> for AttributeValue {
    fn from(value: Vec<u8>) -> Self {
        Self::B(value)
    }
}

impl From<&[u8]> for AttributeValue {
    fn from(value: &[u8]) -> Self {
        Self::B(value.to_vec())
    }
}

impl From<Vec<AttributeValue>> for AttributeValue {
    fn from(value: Vec<AttributeValue>) -> Self {
        Self::L(value)
    }
}

impl From<BTreeMap<String, AttributeValue>> for AttributeValue {
    fn from(value: BTreeMap<String, AttributeValue>) -> Self {
        Self::M(value)
    }
}

impl<T: Into<AttributeValue>> From<Option<T>> for AttributeValue {
    /// `None` becomes `NULL`.
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for AttributeValue {
            fn from(value: $t) -> Self {
                Self::N(Number::from(value))
            }
        }
    )*};
}

from_integer!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
