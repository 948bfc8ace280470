//! The parsed forms of every expression kind.
//!
//! Placeholders are resolved while parsing, so evaluation never looks at
//! the request's maps again; each node also keeps the placeholder it came
//! from, so `Display` prints the expression back in its source form and
//! parsing that text with the same maps gives an equal tree.

use std::fmt;

use crate::value::AttributeValue;

/// A document path: a top-level attribute, then map keys and list indexes
/// (`a.b[3].c`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub(crate) elements: Vec<PathElement>,
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElement {
    /// A top-level attribute or a map key.
    Name(Name),
    /// A list index.
    Index(usize),
}

/// An attribute name and, when it was written as `#placeholder`, the
/// placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    /// The attribute name the expression refers to.
    pub name: String,
    /// The `#placeholder` it was written as, if any.
    pub placeholder: Option<String>,
}

/// A `:placeholder` and the value it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Value {
    /// The placeholder, with its `:`.
    pub placeholder: String,
    /// The value from `ExpressionAttributeValues`.
    pub value: AttributeValue,
}

impl Path {
    /// A path of the given elements; the first must be a name.
    pub(crate) fn new(elements: Vec<PathElement>) -> Self {
        assert!(
            matches!(elements.first(), Some(PathElement::Name(_))),
            "a document path starts with an attribute name: {elements:?}"
        );
        Self { elements }
    }

    /// The steps of the path, the top-level attribute first.
    pub fn elements(&self) -> &[PathElement] {
        &self.elements
    }

    /// The top-level attribute the path starts at.
    pub fn top_level_name(&self) -> &str {
        match self.elements.first() {
            Some(PathElement::Name(name)) => &name.name,
            // `new` guarantees a leading name.
            _ => "",
        }
    }

    /// The path in DynamoDB's message notation: `[a, b, [3]]`.
    pub fn to_message_string(&self) -> String {
        let parts: Vec<String> = self
            .elements
            .iter()
            .map(|element| match element {
                PathElement::Name(name) => name.name.clone(),
                PathElement::Index(index) => format!("[{index}]"),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, element) in self.elements.iter().enumerate() {
            match element {
                PathElement::Name(name) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{name}")?;
                }
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.placeholder.as_deref().unwrap_or(&self.name))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placeholder)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// `=`
    Equal,
    /// `<>`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl Comparator {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "<>",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
        }
    }

    /// The operator with its operands swapped (`:v < a` is `a > :v`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Less => Self::Greater,
            Self::LessOrEqual => Self::GreaterOrEqual,
            Self::Greater => Self::Less,
            Self::GreaterOrEqual => Self::LessOrEqual,
            other => other,
        }
    }
}

/// An operand of a condition: a path, a value, or `size(...)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A document path into the item.
    Path(Path),
    /// A `:placeholder` value.
    Value(Value),
    /// `size(operand)`: the length of a string, binary, set, list or map.
    Size(Box<Operand>),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{path}"),
            Self::Value(value) => write!(f, "{value}"),
            Self::Size(inner) => write!(f, "size({inner})"),
        }
    }
}

/// A condition or filter expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// `left op right`.
    Compare {
        /// The operator.
        comparator: Comparator,
        /// The left operand.
        left: Operand,
        /// The right operand.
        right: Operand,
    },
    /// `operand BETWEEN lower AND upper` (inclusive).
    Between {
        /// The operand tested.
        operand: Operand,
        /// The lower bound.
        lower: Operand,
        /// The upper bound.
        upper: Operand,
    },
    /// `operand IN (candidates...)`.
    In {
        /// The operand tested.
        operand: Operand,
        /// The candidates (1 to 100).
        candidates: Vec<Operand>,
    },
    /// A boolean function.
    Function(Function),
    /// `NOT condition`.
    Not(Box<Condition>),
    /// `left AND right`.
    And(Box<Condition>, Box<Condition>),
    /// `left OR right`.
    Or(Box<Condition>, Box<Condition>),
}

/// The functions that are conditions by themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Function {
    /// `attribute_exists(path)`
    AttributeExists(Path),
    /// `attribute_not_exists(path)`
    AttributeNotExists(Path),
    /// `attribute_type(path, :type)`; the value is one of DynamoDB's type
    /// names (checked when parsing).
    AttributeType(Path, Value),
    /// `begins_with(operand, prefix)`
    BeginsWith(Operand, Operand),
    /// `contains(operand, element)`
    Contains(Operand, Operand),
}

impl Function {
    /// The function's name as written.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AttributeExists(_) => "attribute_exists",
            Self::AttributeNotExists(_) => "attribute_not_exists",
            Self::AttributeType(..) => "attribute_type",
            Self::BeginsWith(..) => "begins_with",
            Self::Contains(..) => "contains",
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Self::AttributeExists(path) | Self::AttributeNotExists(path) => {
                write!(f, "{name}({path})")
            }
            Self::AttributeType(path, value) => write!(f, "{name}({path}, {value})"),
            Self::BeginsWith(a, b) | Self::Contains(a, b) => write!(f, "{name}({a}, {b})"),
        }
    }
}

/// How tightly a condition binds, for printing the fewest parentheses that
/// parse back to the same tree.
fn precedence(condition: &Condition) -> u8 {
    match condition {
        Condition::Or(..) => 1,
        Condition::And(..) => 2,
        Condition::Not(_) => 3,
        _ => 4,
    }
}

impl Condition {
    /// Writes `child`, in parentheses when it binds looser than `minimum`.
    fn write_child(f: &mut fmt::Formatter<'_>, child: &Condition, minimum: u8) -> fmt::Result {
        if precedence(child) < minimum {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

impl fmt::Display for Condition {
    /// The condition in source form. `AND` and `OR` associate to the left,
    /// so a right operand of the same operator is parenthesised; `NOT` takes
    /// a comparison or function directly and anything else in parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare {
                comparator,
                left,
                right,
            } => write!(f, "{left} {} {right}", comparator.symbol()),
            Self::Between {
                operand,
                lower,
                upper,
            } => write!(f, "{operand} BETWEEN {lower} AND {upper}"),
            Self::In {
                operand,
                candidates,
            } => {
                write!(f, "{operand} IN (")?;
                for (position, candidate) in candidates.iter().enumerate() {
                    if position > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{candidate}")?;
                }
                f.write_str(")")
            }
            Self::Function(function) => write!(f, "{function}"),
            Self::Not(inner) => {
                f.write_str("NOT ")?;
                Self::write_child(f, inner, 4)
            }
            Self::And(left, right) => {
                Self::write_child(f, left, 2)?;
                f.write_str(" AND ")?;
                Self::write_child(f, right, 3)
            }
            Self::Or(left, right) => {
                Self::write_child(f, left, 1)?;
                f.write_str(" OR ")?;
                Self::write_child(f, right, 2)
            }
        }
    }
}

/// An operand on the right of `SET path = ...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpdateOperand {
    /// The current value at a path (read before any action is applied).
    Path(Path),
    /// A `:placeholder` value.
    Value(Value),
    /// `if_not_exists(path, fallback)`.
    IfNotExists(Path, Box<UpdateOperand>),
    /// `list_append(first, second)`.
    ListAppend(Box<UpdateOperand>, Box<UpdateOperand>),
}

impl fmt::Display for UpdateOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{path}"),
            Self::Value(value) => write!(f, "{value}"),
            Self::IfNotExists(path, fallback) => write!(f, "if_not_exists({path}, {fallback})"),
            Self::ListAppend(first, second) => write!(f, "list_append({first}, {second})"),
        }
    }
}

/// The value a `SET` action assigns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetValue {
    /// A single operand.
    Operand(UpdateOperand),
    /// `a + b` on numbers.
    Plus(UpdateOperand, UpdateOperand),
    /// `a - b` on numbers.
    Minus(UpdateOperand, UpdateOperand),
}

impl fmt::Display for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operand(operand) => write!(f, "{operand}"),
            Self::Plus(a, b) => write!(f, "{a} + {b}"),
            Self::Minus(a, b) => write!(f, "{a} - {b}"),
        }
    }
}

/// One `SET path = value` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetAction {
    /// Where the value goes.
    pub path: Path,
    /// What is assigned.
    pub value: SetValue,
}

/// One `ADD path :value` or `DELETE path :value` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueAction {
    /// The attribute changed.
    pub path: Path,
    /// The number or set added, or the set removed.
    pub value: Value,
}

/// An update expression: each clause at most once; the actions of all
/// clauses touch pairwise non-overlapping paths (checked when parsing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpdateExpression {
    pub(crate) set: Vec<SetAction>,
    pub(crate) remove: Vec<Path>,
    pub(crate) add: Vec<ValueAction>,
    pub(crate) delete: Vec<ValueAction>,
}

impl UpdateExpression {
    /// The `SET` actions, in the order written.
    pub fn set_actions(&self) -> &[SetAction] {
        &self.set
    }

    /// The `REMOVE` paths, in the order written.
    pub fn remove_actions(&self) -> &[Path] {
        &self.remove
    }

    /// The `ADD` actions, in the order written.
    pub fn add_actions(&self) -> &[ValueAction] {
        &self.add
    }

    /// The `DELETE` actions, in the order written.
    pub fn delete_actions(&self) -> &[ValueAction] {
        &self.delete
    }

    /// Every path an action writes, clause by clause.
    pub fn target_paths(&self) -> impl Iterator<Item = &Path> {
        self.set
            .iter()
            .map(|action| &action.path)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|action| &action.path))
            .chain(self.delete.iter().map(|action| &action.path))
    }
}

impl fmt::Display for UpdateExpression {
    /// The clauses in the order SET, REMOVE, ADD, DELETE (clause order does
    /// not change the meaning).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clauses: Vec<String> = Vec::new();
        if !self.set.is_empty() {
            let actions: Vec<String> = self
                .set
                .iter()
                .map(|action| format!("{} = {}", action.path, action.value))
                .collect();
            clauses.push(format!("SET {}", actions.join(", ")));
        }
        if !self.remove.is_empty() {
            let paths: Vec<String> = self.remove.iter().map(ToString::to_string).collect();
            clauses.push(format!("REMOVE {}", paths.join(", ")));
        }
        for (keyword, actions) in [("ADD", &self.add), ("DELETE", &self.delete)] {
            if !actions.is_empty() {
                let actions: Vec<String> = actions
                    .iter()
                    .map(|action| format!("{} {}", action.path, action.value))
                    .collect();
                clauses.push(format!("{keyword} {}", actions.join(", ")));
            }
        }
        f.write_str(&clauses.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> PathElement {
        PathElement::Name(Name {
            name: text.into(),
            placeholder: None,
        })
    }

    fn path(text: &str) -> Path {
        Path::new(vec![name(text)])
    }

    fn compare(left: &str) -> Condition {
        Condition::Compare {
            comparator: Comparator::Equal,
            left: Operand::Path(path(left)),
            right: Operand::Path(path("z")),
        }
    }

    #[test]
    fn paths_print_in_source_and_message_forms() {
        let path = Path::new(vec![
            PathElement::Name(Name {
                name: "a.b".into(),
                placeholder: Some("#n".into()),
            }),
            PathElement::Index(3),
            name("c"),
        ]);
        assert_eq!(path.to_string(), "#n[3].c");
        assert_eq!(path.to_message_string(), "[a.b, [3], c]");
        assert_eq!(path.top_level_name(), "a.b");
    }

    #[test]
    fn conditions_print_the_parentheses_precedence_needs() {
        let or = Condition::Or(Box::new(compare("a")), Box::new(compare("b")));
        let and = Condition::And(Box::new(or.clone()), Box::new(compare("c")));
        assert_eq!(and.to_string(), "(a = z OR b = z) AND c = z");
        let right_nested = Condition::And(Box::new(compare("a")), Box::new(and.clone()));
        assert_eq!(
            right_nested.to_string(),
            "a = z AND ((a = z OR b = z) AND c = z)"
        );
        assert_eq!(
            Condition::Not(Box::new(or)).to_string(),
            "NOT (a = z OR b = z)"
        );
        assert_eq!(
            Condition::Not(Box::new(compare("a"))).to_string(),
            "NOT a = z"
        );
    }

    #[test]
    fn comparators_flip_for_swapped_operands() {
        assert_eq!(Comparator::Less.flipped(), Comparator::Greater);
        assert_eq!(
            Comparator::GreaterOrEqual.flipped(),
            Comparator::LessOrEqual
        );
        assert_eq!(Comparator::Equal.flipped(), Comparator::Equal);
    }
}
