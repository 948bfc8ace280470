//! Projection expressions: parsing the list of paths and cutting an item
//! down to them.
//!
//! The result keeps the document structure: projecting `a.b` gives
//! `{a: {b: ..}}`, and projecting `l[1]` and `l[3]` gives `{l: [l1, l3]}`
//! (the selected elements, in index order). Missing paths are left out.

use std::collections::BTreeMap;
use std::fmt;

use super::ast::{Path, PathElement};
use super::error::{ExpressionError, ExpressionKind};
use super::lexer::TokenKind;
use super::parser::Parser;
use super::path::resolve;
use super::placeholders::Placeholders;
use super::update_parser::check_pair;
use crate::value::{AttributeValue, Item};

/// A parsed projection expression: pairwise non-overlapping paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Projection {
    paths: Vec<Path>,
}

/// Parses a projection expression, resolving placeholders through
/// `placeholders`.
pub(crate) fn parse_projection(
    source: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<Projection, ExpressionError> {
    let kind = ExpressionKind::Projection;
    let mut parser = Parser::new(source, kind, placeholders, &[])?;
    let mut paths = Vec::new();
    let result = loop {
        match parser.parse_path() {
            Ok(path) => paths.push(path),
            Err(failure) => break Err(failure),
        }
        if !parser.eat(TokenKind::Comma) {
            break Ok(());
        }
    };
    parser.finish(result)?;
    for (position, second) in paths.iter().enumerate() {
        for first in &paths[..position] {
            check_pair(kind, first, second)?;
        }
    }
    Ok(Projection { paths })
}

impl Projection {
    /// A projection of `paths` that the caller knows do not overlap as
    /// written (an update's target paths, for `UPDATED_OLD`/`UPDATED_NEW`).
    pub(crate) fn from_paths(paths: Vec<Path>) -> Self {
        Self { paths }
    }

    /// The projected paths, in the order written.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The parts of `item` the projection selects.
    pub fn apply(&self, item: &Item) -> Item {
        let mut root: BTreeMap<String, Selection> = BTreeMap::new();
        for path in &self.paths {
            let Some(value) = resolve(item, path) else {
                continue;
            };
            let (top, rest) = match path.elements().split_first() {
                Some((PathElement::Name(name), rest)) => (name.name.as_str(), rest),
                _ => continue,
            };
            let slot = root.entry(top.to_owned()).or_insert(Selection::Empty);
            slot.insert(rest, value);
        }
        root.into_iter()
            .map(|(name, selection)| (name, selection.into_value()))
            .collect()
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, path) in self.paths.iter().enumerate() {
            if position > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{path}")?;
        }
        Ok(())
    }
}

/// What has been selected under one attribute so far.
enum Selection {
    /// Nothing yet (only while inserting).
    Empty,
    /// A whole value.
    Whole(AttributeValue),
    /// Some keys of a map.
    Map(BTreeMap<String, Selection>),
    /// Some elements of a list, by original index.
    List(BTreeMap<usize, Selection>),
}

impl Selection {
    /// Records `value`, found at `rest` below this selection's position.
    /// Paths never overlap, so a whole value is never refined further.
    fn insert(&mut self, rest: &[PathElement], value: &AttributeValue) {
        let Some((first, rest)) = rest.split_first() else {
            *self = Selection::Whole(value.clone());
            return;
        };
        match first {
            PathElement::Name(name) => {
                if !matches!(self, Selection::Map(_)) {
                    *self = Selection::Map(BTreeMap::new());
                }
                if let Selection::Map(map) = self {
                    map.entry(name.name.clone())
                        .or_insert(Selection::Empty)
                        .insert(rest, value);
                }
            }
            PathElement::Index(index) => {
                if !matches!(self, Selection::List(_)) {
                    *self = Selection::List(BTreeMap::new());
                }
                if let Selection::List(list) = self {
                    list.entry(*index)
                        .or_insert(Selection::Empty)
                        .insert(rest, value);
                }
            }
        }
    }

    fn into_value(self) -> AttributeValue {
        match self {
            Selection::Empty => AttributeValue::Null,
            Selection::Whole(value) => value,
            Selection::Map(map) => AttributeValue::M(
                map.into_iter()
                    .map(|(name, selection)| (name, selection.into_value()))
                    .collect(),
            ),
            Selection::List(list) => {
                AttributeValue::L(list.into_values().map(Selection::into_value).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;

    fn project(source: &str, item: &Item) -> Item {
        let names = BTreeMap::new();
        let values = BTreeMap::new();
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        parse_projection(source, &mut placeholders)
            .unwrap()
            .apply(item)
    }

    #[test]
    fn nested_selections_merge_under_one_attribute() {
        let inner = |pairs: &[(&str, i64)]| {
            AttributeValue::M(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), AttributeValue::from(*v)))
                    .collect(),
            )
        };
        let item = item! {
            "m" => inner(&[("a", 1), ("b", 2), ("c", 3)]),
            "l" => AttributeValue::L(vec![inner(&[("x", 1), ("y", 2)]), AttributeValue::from(9)]),
        };
        let projected = project("m.a, m.c, l[0].y, l[1]", &item);
        assert_eq!(projected["m"], inner(&[("a", 1), ("c", 3)]));
        assert_eq!(
            projected["l"],
            AttributeValue::L(vec![inner(&[("y", 2)]), AttributeValue::from(9)])
        );
    }

    #[test]
    fn projections_print_in_source_form() {
        let names = BTreeMap::new();
        let values = BTreeMap::new();
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        let parsed = parse_projection("a.b[2] ,c", &mut placeholders).unwrap();
        assert_eq!(parsed.to_string(), "a.b[2], c");
        assert_eq!(parsed.paths().len(), 2);
    }
}
