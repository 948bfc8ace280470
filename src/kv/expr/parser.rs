//! The machinery every expression grammar shares: a backtracking cursor
//! over the tokens, DynamoDB's syntax-error message, document paths,
//! placeholders, and the deferred semantic errors.
//!
//! DynamoDB reports a syntax error before any semantic one, so semantic
//! problems found while parsing (a reserved word, an undefined placeholder,
//! a wrong operand type) are deferred: the first of the highest-priority
//! kind is returned once the whole text has parsed.

use super::ast::{Name, Path, PathElement, Value};
use super::error::{ExpressionError, ExpressionKind};
use super::lexer::{Token, TokenKind, tokenize};
use super::placeholders::Placeholders;
use super::reserved::is_reserved;
use crate::value::{AttributeValue, MAX_NESTING_DEPTH};

/// The longest expression string, in bytes (DynamoDB's 4 KB).
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// The most operators and functions one expression may use.
pub const MAX_OPERATORS: usize = 300;

/// The deepest nesting of parentheses and function calls the parser
/// follows. DynamoDB documents no such limit; this bound keeps recursion
/// off the end of the stack (a 4 KB expression could nest 2,000 deep), and
/// deeper input is reported as a syntax error at the token that exceeds it.
pub const MAX_NESTING_LEVELS: usize = 100;

/// The functions of condition, filter and key condition expressions.
pub(crate) const CONDITION_FUNCTIONS: &[&str] = &[
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
];

/// The functions of update expressions.
pub(crate) const UPDATE_FUNCTIONS: &[&str] = &["if_not_exists", "list_append"];

/// The parse failed; the failing token index is in `Parser::furthest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxFailure;

/// The result of one grammar rule.
pub(crate) type Parse<T> = Result<T, SyntaxFailure>;

/// Which deferred error wins when several are found; lower ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// `((a < b))`.
    Parentheses,
    /// A function name that does not exist.
    UnknownFunction,
    /// A function used where it may not be.
    MisusedFunction,
    /// A bare reserved word as an attribute name.
    Reserved,
    /// A clause keyword used twice in an update.
    Section,
    /// An undefined `#name` or `:value`.
    Placeholder,
    /// Everything else: operand counts and types, nesting, distinctness.
    Operand,
}

/// A parser's state to go back to when an alternative fails.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    position: usize,
    operators: usize,
    deferred: Option<(Rank, ExpressionError)>,
}

/// A cursor over one expression's tokens.
pub(crate) struct Parser<'s, 'p, 'a> {
    source: &'s str,
    tokens: Vec<Token>,
    position: usize,
    /// Which parameter the expression came from, for messages.
    pub(crate) kind: ExpressionKind,
    placeholders: &'p mut Placeholders<'a>,
    /// Words that are keywords of this grammar and never attribute names.
    keywords: &'static [&'static str],
    /// The furthest token index any rule failed at: where the syntax error is.
    furthest: usize,
    deferred: Option<(Rank, ExpressionError)>,
    /// Operators and functions seen so far.
    operators: usize,
    /// Parentheses and calls open at the current position.
    depth: usize,
}

impl<'s, 'p, 'a> Parser<'s, 'p, 'a> {
    /// A parser over `source`, after DynamoDB's emptiness and size checks.
    pub(crate) fn new(
        source: &'s str,
        kind: ExpressionKind,
        placeholders: &'p mut Placeholders<'a>,
        keywords: &'static [&'static str],
    ) -> Result<Self, ExpressionError> {
        if source.is_empty() {
            return Err(ExpressionError::invalid(
                kind,
                "The expression can not be empty;",
            ));
        }
        if source.len() > MAX_EXPRESSION_BYTES {
            return Err(ExpressionError::invalid(
                kind,
                format!(
                    "Expression size has exceeded the maximum allowed size; expression size: {}",
                    source.len()
                ),
            ));
        }
        Ok(Self {
            source,
            tokens: tokenize(source),
            position: 0,
            kind,
            placeholders,
            keywords,
            furthest: 0,
            deferred: None,
            operators: 0,
            depth: 0,
        })
    }

    /// The token `offset` places ahead, if any.
    pub(crate) fn peek_at(&self, offset: usize) -> Option<Token> {
        self.tokens.get(self.position + offset).copied()
    }

    /// Whether the next token is of `kind`.
    pub(crate) fn at(&self, kind: TokenKind) -> bool {
        self.peek_at(0).is_some_and(|token| token.kind == kind)
    }

    /// Whether the next token is the keyword `keyword`.
    pub(crate) fn at_keyword(&self, keyword: &str) -> bool {
        self.peek_at(0)
            .is_some_and(|token| token.is_keyword(self.source, keyword))
    }

    /// Whether every token has been consumed.
    pub(crate) fn at_end(&self) -> bool {
        self.position >= self.tokens.len()
    }

    /// The text of `token`.
    pub(crate) fn text(&self, token: Token) -> &'s str {
        token.text(self.source)
    }

    /// Fails the current rule at the current token.
    pub(crate) fn fail<T>(&mut self) -> Parse<T> {
        self.furthest = self.furthest.max(self.position);
        Err(SyntaxFailure)
    }

    /// Consumes the next token if it is of `kind`.
    pub(crate) fn eat(&mut self, kind: TokenKind) -> bool {
        if self.at(kind) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the keyword `keyword` if it is next.
    pub(crate) fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.at_keyword(keyword) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    /// Consumes a token of `kind`, or fails.
    pub(crate) fn expect(&mut self, kind: TokenKind) -> Parse<Token> {
        match self.peek_at(0) {
            Some(token) if token.kind == kind => {
                self.position += 1;
                Ok(token)
            }
            _ => self.fail(),
        }
    }

    /// Consumes the keyword `keyword`, or fails.
    pub(crate) fn expect_keyword(&mut self, keyword: &str) -> Parse<()> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            self.fail()
        }
    }

    /// Where to come back to if the next alternative fails.
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            position: self.position,
            operators: self.operators,
            deferred: self.deferred.clone(),
        }
    }

    /// Undoes everything since `checkpoint` (but remembers how far the
    /// failed alternative got, for the syntax error).
    pub(crate) fn restore(&mut self, checkpoint: Checkpoint) {
        self.position = checkpoint.position;
        self.operators = checkpoint.operators;
        self.deferred = checkpoint.deferred;
    }

    /// Runs `rule` one nesting level deeper, failing past
    /// [`MAX_NESTING_LEVELS`].
    pub(crate) fn nested<T>(&mut self, rule: impl FnOnce(&mut Self) -> Parse<T>) -> Parse<T> {
        if self.depth >= MAX_NESTING_LEVELS {
            return self.fail();
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        result
    }

    /// Counts one operator or function toward [`MAX_OPERATORS`].
    pub(crate) fn count_operator(&mut self) {
        self.operators += 1;
    }

    /// Records a semantic error `detail` (prefixed with the expression kind)
    /// to report if the text parses.
    pub(crate) fn defer(&mut self, rank: Rank, detail: impl std::fmt::Display) {
        let error = ExpressionError::invalid(self.kind, detail);
        self.defer_error(rank, error);
    }

    /// Records an already-formed semantic error.
    pub(crate) fn defer_error(&mut self, rank: Rank, error: ExpressionError) {
        if self.deferred.as_ref().is_none_or(|(held, _)| rank < *held) {
            self.deferred = Some((rank, error));
        }
    }

    /// The result of the whole parse: the syntax error if the rule failed
    /// or left tokens over, else the operator limit, else the first deferred
    /// error, else the value.
    pub(crate) fn finish<T>(mut self, result: Parse<T>) -> Result<T, ExpressionError> {
        let value = match result {
            Ok(value) if self.at_end() => value,
            Ok(_) => {
                self.furthest = self.furthest.max(self.position);
                return Err(self.syntax_error());
            }
            Err(SyntaxFailure) => return Err(self.syntax_error()),
        };
        if self.operators > MAX_OPERATORS {
            return Err(ExpressionError::invalid(
                self.kind,
                format!(
                    "The expression contains too many operators; operator count: {}",
                    self.operators
                ),
            ));
        }
        match self.deferred {
            Some((_, error)) => Err(error),
            None => Ok(value),
        }
    }

    /// DynamoDB's syntax error at the furthest failure: the offending token
    /// and the text from the token before it to the token after it.
    fn syntax_error(&self) -> ExpressionError {
        let index = self.furthest.min(self.tokens.len());
        let token = self.tokens.get(index);
        let previous = index.checked_sub(1).and_then(|i| self.tokens.get(i));
        let next = self.tokens.get(index + 1);
        let text = token.map_or("<EOF>", |token| token.text(self.source));
        let start = previous.or(token).map_or(0, |t| t.start);
        let end = next.or(token).or(previous).map_or(0, |t| t.end);
        let near = self.source.get(start..end).unwrap_or("");
        ExpressionError::invalid(
            self.kind,
            format!("Syntax error; token: \"{text}\", near: \"{near}\""),
        )
    }

    /// Whether the next token can start a document path.
    pub(crate) fn at_path(&self) -> bool {
        match self.peek_at(0) {
            Some(token) if token.kind == TokenKind::NamePlaceholder => true,
            Some(token) if token.kind == TokenKind::Word => !self.is_grammar_keyword(token),
            _ => false,
        }
    }

    fn is_grammar_keyword(&self, token: Token) -> bool {
        self.keywords
            .iter()
            .any(|keyword| token.is_keyword(self.source, keyword))
    }

    /// `name ( '.' name | '[' digits ']' )*`, names resolved and checked.
    pub(crate) fn parse_path(&mut self) -> Parse<Path> {
        let mut elements = vec![PathElement::Name(self.parse_name()?)];
        loop {
            if self.eat(TokenKind::Dot) {
                elements.push(PathElement::Name(self.parse_name()?));
            } else if self.eat(TokenKind::OpenBracket) {
                let digits = self.expect(TokenKind::Digits)?;
                let Ok(index) = self.text(digits).parse::<usize>() else {
                    self.position -= 1;
                    return self.fail();
                };
                self.expect(TokenKind::CloseBracket)?;
                elements.push(PathElement::Index(index));
            } else {
                break;
            }
        }
        if elements.len() > MAX_NESTING_DEPTH {
            let depth = elements.len();
            self.defer(
                Rank::Operand,
                format!("The document path has too many nesting levels; nesting levels: {depth}"),
            );
        }
        Ok(Path::new(elements))
    }

    /// An attribute name: a bare word (not reserved) or a `#placeholder`.
    fn parse_name(&mut self) -> Parse<Name> {
        if !self.at_path() {
            return self.fail();
        }
        let Some(token) = self.peek_at(0) else {
            return self.fail();
        };
        self.position += 1;
        let text = self.text(token);
        if token.kind == TokenKind::Word {
            if is_reserved(text) {
                self.defer(
                    Rank::Reserved,
                    format!("Attribute name is a reserved keyword; reserved keyword: {text}"),
                );
            }
            return Ok(Name {
                name: text.to_owned(),
                placeholder: None,
            });
        }
        let name = match self.placeholders.name(self.kind, text) {
            Ok(name) => name.to_owned(),
            Err(error) => {
                self.defer_error(Rank::Placeholder, error);
                text.to_owned()
            }
        };
        Ok(Name {
            name,
            placeholder: Some(text.to_owned()),
        })
    }

    /// A `:placeholder`, resolved.
    pub(crate) fn parse_value(&mut self) -> Parse<Value> {
        let token = self.expect(TokenKind::ValuePlaceholder)?;
        let placeholder = self.text(token);
        let value = match self.placeholders.value(self.kind, placeholder) {
            Ok(value) => value.clone(),
            Err(error) => {
                self.defer_error(Rank::Placeholder, error);
                AttributeValue::Null
            }
        };
        Ok(Value {
            placeholder: placeholder.to_owned(),
            value,
        })
    }

    /// If a function call starts here (`word (`), consumes the name and the
    /// parenthesis and returns the name.
    pub(crate) fn eat_call_head(&mut self) -> Option<&'s str> {
        let name = self.peek_at(0)?;
        let open = self.peek_at(1)?;
        if name.kind != TokenKind::Word || open.kind != TokenKind::OpenParen {
            return None;
        }
        self.position += 2;
        Some(self.text(name))
    }
}

/// DynamoDB's name for a value's type in operand-type messages.
pub(crate) fn type_name(value: &AttributeValue) -> &'static str {
    value.attribute_type().name()
}

/// The "operand type" error DynamoDB gives for a function or operator.
pub(crate) fn incorrect_operand_type(function: &str, operand_type: &str) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {function}, \
         operand type: {operand_type}"
    )
}

/// The error for a function given the wrong number of operands.
pub(crate) fn incorrect_operand_count(function: &str, count: usize) -> String {
    format!(
        "Incorrect number of operands for operator or function; operator or function: \
         {function}, number of operands: {count}"
    )
}

/// The error for a function whose first operand must be a path.
pub(crate) fn requires_document_path(function: &str) -> String {
    format!("Operator or function requires a document path; operator or function: {function}")
}

/// The error for a function used where it may not be.
pub(crate) fn misused_function(function: &str) -> String {
    format!(
        "The function is not allowed to be used this way in an expression; function: {function}"
    )
}

/// The error for a function DynamoDB knows but refuses in this kind of
/// expression (`size` in an update, `if_not_exists` in a condition);
/// `expression` names the kind as the message does ("an update expression").
pub(crate) fn function_not_allowed(expression: &str, function: &str) -> String {
    format!("The function is not allowed in {expression}; function: {function}")
}

/// The error for a function name that does not exist in any grammar.
pub(crate) fn unknown_function(function: &str) -> String {
    format!("Invalid function name; function: {function}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parse_path(source: &str) -> Result<Path, ExpressionError> {
        let names = BTreeMap::from([("#n".to_string(), "a.b".to_string())]);
        let values = BTreeMap::new();
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        let mut parser = Parser::new(source, ExpressionKind::Projection, &mut placeholders, &[])?;
        let path = parser.parse_path();
        parser.finish(path)
    }

    #[test]
    fn paths_resolve_names_and_indexes() {
        let path = parse_path("#n[2].c").unwrap();
        assert_eq!(path.to_message_string(), "[a.b, [2], c]");
        assert_eq!(path.to_string(), "#n[2].c");
    }

    #[test]
    fn syntax_errors_quote_the_token_and_its_neighbours() {
        assert_eq!(
            parse_path("a[-1]").unwrap_err().message(),
            "Invalid ProjectionExpression: Syntax error; token: \"-\", near: \"[-1\""
        );
        assert_eq!(
            parse_path("a.").unwrap_err().message(),
            "Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \".\""
        );
        assert_eq!(
            parse_path("a b").unwrap_err().message(),
            "Invalid ProjectionExpression: Syntax error; token: \"b\", near: \"a b\""
        );
    }

    #[test]
    fn reserved_words_and_undefined_names_are_deferred_errors() {
        assert_eq!(
            parse_path("Status.x").unwrap_err().message(),
            "Invalid ProjectionExpression: Attribute name is a reserved keyword; \
             reserved keyword: Status"
        );
        assert_eq!(
            parse_path("#m").unwrap_err().message(),
            "Invalid ProjectionExpression: An expression attribute name used in the document \
             path is not defined; attribute name: #m"
        );
        // A syntax error wins over a deferred one.
        assert!(
            parse_path("status[")
                .unwrap_err()
                .message()
                .contains("Syntax error")
        );
    }

    #[test]
    fn paths_deeper_than_32_levels_are_rejected() {
        let deepest = format!("a{}", ".b".repeat(31));
        parse_path(&deepest).unwrap();
        assert_eq!(
            parse_path(&format!("{deepest}.b")).unwrap_err().message(),
            "Invalid ProjectionExpression: The document path has too many nesting levels; \
             nesting levels: 33"
        );
    }

    #[test]
    fn empty_and_oversized_expressions_are_rejected() {
        assert_eq!(
            parse_path("").unwrap_err().message(),
            "Invalid ProjectionExpression: The expression can not be empty;"
        );
        let longest = format!("a{}", "b".repeat(MAX_EXPRESSION_BYTES - 1));
        parse_path(&longest).unwrap();
        assert_eq!(
            parse_path(&format!("{longest}b")).unwrap_err().message(),
            "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed \
             size; expression size: 4097"
        );
    }
}
