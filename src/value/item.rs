//! `Item`: a map from attribute names to values, and the `item!` macro.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::AttributeValue;

/// An item: attribute name -> value, ordered by name.
///
/// It dereferences to its `BTreeMap`, so every map method is available.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Item(BTreeMap<String, AttributeValue>);

impl Item {
    /// An item with no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` and returns the item, for chaining.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// The attributes as a map.
    pub fn into_map(self) -> BTreeMap<String, AttributeValue> {
        self.0
    }
}

impl Deref for Item {
    type Target = BTreeMap<String, AttributeValue>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Item {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<BTreeMap<String, AttributeValue>> for Item {
    fn from(map: BTreeMap<String, AttributeValue>) -> Self {
        Self(map)
    }
}

impl From<Item> for BTreeMap<String, AttributeValue> {
    fn from(item: Item) -> Self {
        item.0
    }
}

impl From<Item> for AttributeValue {
    fn from(item: Item) -> Self {
        AttributeValue::M(item.0)
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> FromIterator<(K, V)> for Item {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> Extend<(K, V)> for Item {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.0
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl IntoIterator for Item {
    type Item = (String, AttributeValue);
    type IntoIter = std::collections::btree_map::IntoIter<String, AttributeValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Item {
    type Item = (&'a String, &'a AttributeValue);
    type IntoIter = std::collections::btree_map::Iter<'a, String, AttributeValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl fmt::Display for Item {
    /// The item in DynamoDB JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => f.write_str(&json),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// Builds an [`Item`] from `name => value` pairs; each value goes through
/// `AttributeValue::from`.
///
/// ```
/// use nimbus::{item, AttributeValue};
/// let song = item! { "Artist" => "Acme Band", "Year" => 2020, "Live" => false };
/// assert_eq!(song["Year"], AttributeValue::from(2020));
/// ```
#[macro_export]
macro_rules! item {
    () => { $crate::Item::new() };
    ($($name:expr => $value:expr),+ $(,)?) => {{
        let mut item = $crate::Item::new();
        $(
            item.insert(
                ::std::string::String::from($name),
                $crate::AttributeValue::from($value),
            );
        )+
        item
    }};
}
