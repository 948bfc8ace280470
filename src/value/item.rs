//! `Item`: a map from attribute names to values, and the `item!` macro.
//!
//! An item is copy-on-write: it shares its map behind an `Arc`, so a clone
//! is one reference-count increment (the accelerator hands out cached
//! items by cloning them), and the first mutation of a shared item copies
//! the map, leaving every other holder's view unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::AttributeValue;

/// An item: attribute name -> value, ordered by name.
///
/// It dereferences to its `BTreeMap`, so every map method is available.
/// Clones share the map until one of them is mutated (copy-on-write):
/// mutating a clone never changes the item it was cloned from.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Item(Arc<BTreeMap<String, AttributeValue>>);

impl Item {
    /// An item with no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` and returns the item, for chaining.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.insert(name.into(), value.into());
        self
    }

    /// The attributes as a map (moved out if this item is the map's only
    /// holder, copied otherwise).
    pub fn into_map(self) -> BTreeMap<String, AttributeValue> {
        Arc::unwrap_or_clone(self.0)
    }

    /// Whether `self` and `other` share one map (so they are equal without
    /// comparing attributes).
    pub fn shares_with(&self, other: &Item) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Reads the item's reference count (a plain load), so that a clone
    /// right after finds its cache line loaded: the locked increment of a
    /// clone starts only once the instructions before it are done, while
    /// a plain load starts as soon as the item's address is known and
    /// overlaps whatever runs in between (the accelerator's hit path calls
    /// this as soon as it finds a cached item, before checking its TTL).
    #[inline]
    pub(crate) fn prefetch(&self) {
        std::hint::black_box(Arc::strong_count(&self.0));
    }
}

impl Deref for Item {
    type Target = BTreeMap<String, AttributeValue>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Item {
    /// The map to mutate: copied first if another item shares it.
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.0)
    }
}

impl From<BTreeMap<String, AttributeValue>> for Item {
    fn from(map: BTreeMap<String, AttributeValue>) -> Self {
        Self(Arc::new(map))
    }
}

impl From<Item> for BTreeMap<String, AttributeValue> {
    fn from(item: Item) -> Self {
        item.into_map()
    }
}

impl From<Item> for AttributeValue {
    fn from(item: Item) -> Self {
        AttributeValue::M(item.into_map())
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> FromIterator<(K, V)> for Item {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<BTreeMap<_, _>>(),
        )
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> Extend<(K, V)> for Item {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.deref_mut()
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl IntoIterator for Item {
    type Item = (String, AttributeValue);
    type IntoIter = std::collections::btree_map::IntoIter<String, AttributeValue>;

    /// Moves the attributes out if this item is the map's only holder,
    /// iterates over a copy otherwise.
    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn song() -> Item {
        crate::item! { "Artist" => "Acme", "Plays" => 1, "Tags" => AttributeValue::L(vec!["a".into()]) }
    }

    #[test]
    fn a_clone_shares_the_map_until_one_side_is_mutated() {
        let original = song();
        let mut copy = original.clone();
        assert!(copy.shares_with(&original));
        copy.insert("Plays".to_owned(), 2.into());
        assert!(!copy.shares_with(&original));
        assert_eq!(original, song());
        assert_eq!(copy["Plays"], AttributeValue::from(2));
        // Mutating an unshared item copies nothing.
        let before: *const BTreeMap<String, AttributeValue> = &*copy;
        copy.remove("Tags");
        assert!(std::ptr::eq(before, &*copy));
    }

    #[test]
    fn every_mutating_path_leaves_the_other_clones_alone() {
        let original = song();
        let mut extended = original.clone();
        extended.extend([("New", 1)]);
        let mut cleared = original.clone();
        cleared.clear();
        let mut nested = original.clone();
        if let Some(AttributeValue::L(list)) = nested.get_mut("Tags") {
            list.push("b".into());
        }
        let with = original.clone().with("Artist", "Other");
        assert_eq!(original, song());
        assert_eq!(extended.len(), 4);
        assert!(cleared.is_empty());
        assert_eq!(
            nested["Tags"],
            AttributeValue::L(vec!["a".into(), "b".into()])
        );
        assert_eq!(with["Artist"], AttributeValue::from("Other"));
    }

    #[test]
    fn moving_out_of_a_shared_item_copies_and_of_a_sole_one_moves() {
        let original = song();
        let shared = original.clone();
        let map: BTreeMap<String, AttributeValue> = shared.into();
        assert_eq!(map, *original);
        let names: Vec<String> = original.clone().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["Artist", "Plays", "Tags"]);
        assert_eq!(
            AttributeValue::from(original.clone()),
            AttributeValue::M(map.clone())
        );
        assert_eq!(original.into_map(), map);
    }

    #[test]
    fn equality_hash_default_and_formatting_ignore_sharing() {
        use std::hash::{BuildHasher, RandomState};
        let a = song();
        let b: Item = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(!a.shares_with(&b));
        assert_eq!(a, b);
        let state = RandomState::new();
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(Item::default(), Item::new());
        assert_eq!(Item::new().len(), 0);
        assert_ne!(a, Item::new());
    }
}
