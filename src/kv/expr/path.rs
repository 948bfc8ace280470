//! Reading and locating document paths inside an item.
//!
//! Reading never fails: a path through a missing attribute, a non-map, a
//! non-list or past a list's end simply finds nothing. Writers use
//! [`parent_mut`] to reach the map or list that holds a path's last step.

use std::collections::BTreeMap;

use super::ast::{Path, PathElement};
use crate::value::{AttributeValue, Item};

/// The value at `path` in `item`, if there is one.
pub(crate) fn resolve<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let (first, rest) = path.elements().split_first()?;
    let PathElement::Name(name) = first else {
        return None;
    };
    let mut value = item.get(&name.name)?;
    for element in rest {
        value = step(value, element)?;
    }
    Some(value)
}

/// The child of `value` that `element` names.
fn step<'v>(value: &'v AttributeValue, element: &PathElement) -> Option<&'v AttributeValue> {
    match (value, element) {
        (AttributeValue::M(map), PathElement::Name(name)) => map.get(&name.name),
        (AttributeValue::L(list), PathElement::Index(index)) => list.get(*index),
        _ => None,
    }
}

fn step_mut<'v>(
    value: &'v mut AttributeValue,
    element: &PathElement,
) -> Option<&'v mut AttributeValue> {
    match (value, element) {
        (AttributeValue::M(map), PathElement::Name(name)) => map.get_mut(&name.name),
        (AttributeValue::L(list), PathElement::Index(index)) => list.get_mut(*index),
        _ => None,
    }
}

/// The container holding a path's last step.
pub(crate) enum Parent<'i> {
    /// The item itself, or a map: the last step is a name.
    Map(&'i mut BTreeMap<String, AttributeValue>, &'i str),
    /// A list: the last step is an index.
    List(&'i mut Vec<AttributeValue>, usize),
}

/// The map or list that holds the last step of `path`, or `None` when a
/// step before it is missing or of the wrong type for the next step.
pub(crate) fn parent_mut<'i>(item: &'i mut Item, path: &'i Path) -> Option<Parent<'i>> {
    let (last, init) = path.elements().split_last()?;
    let Some((first, middle)) = init.split_first() else {
        return match last {
            PathElement::Name(name) => Some(Parent::Map(item, &name.name)),
            PathElement::Index(_) => None,
        };
    };
    let PathElement::Name(name) = first else {
        return None;
    };
    let mut value = item.get_mut(&name.name)?;
    for element in middle {
        value = step_mut(value, element)?;
    }
    match (value, last) {
        (AttributeValue::M(map), PathElement::Name(name)) => Some(Parent::Map(map, &name.name)),
        (AttributeValue::L(list), PathElement::Index(index)) => Some(Parent::List(list, *index)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;
    use crate::kv::expr::ast::Name;

    fn path(elements: &[&str]) -> Path {
        Path::new(
            elements
                .iter()
                .map(|e| match e.parse::<usize>() {
                    Ok(index) => PathElement::Index(index),
                    Err(_) => PathElement::Name(Name {
                        name: (*e).into(),
                        placeholder: None,
                    }),
                })
                .collect(),
        )
    }

    fn sample() -> Item {
        let inner: BTreeMap<String, AttributeValue> =
            [("c".to_string(), AttributeValue::from("deep"))].into();
        item! {
            "a" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::M(inner)]),
            "s" => "text",
        }
    }

    #[test]
    fn resolves_nested_maps_and_lists() {
        let item = sample();
        assert_eq!(
            resolve(&item, &path(&["a", "1", "c"])),
            Some(&AttributeValue::from("deep"))
        );
        assert_eq!(
            resolve(&item, &path(&["a", "0"])),
            Some(&AttributeValue::from(1))
        );
    }

    #[test]
    fn missing_or_mistyped_steps_find_nothing() {
        let item = sample();
        for elements in [
            &["b"][..],
            &["a", "5"],
            &["a", "x"],
            &["s", "0"],
            &["a", "0", "c"],
        ] {
            assert_eq!(resolve(&item, &path(elements)), None, "{elements:?}");
        }
    }

    #[test]
    fn parents_are_found_only_through_existing_containers() {
        let mut item = sample();
        let top = path(&["new"]);
        assert!(matches!(
            parent_mut(&mut item, &top),
            Some(Parent::Map(_, "new"))
        ));
        let in_list = path(&["a", "7"]);
        assert!(matches!(
            parent_mut(&mut item, &in_list),
            Some(Parent::List(_, 7))
        ));
        let nested = path(&["a", "1", "d"]);
        assert!(matches!(
            parent_mut(&mut item, &nested),
            Some(Parent::Map(_, "d"))
        ));
        for elements in [
            &["missing", "x"][..],
            &["s", "x"],
            &["a", "x"],
            &["a", "1", "0"],
        ] {
            let p = path(elements);
            assert!(parent_mut(&mut item, &p).is_none(), "{elements:?}");
        }
    }
}
