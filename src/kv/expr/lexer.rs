//! Splits expression text into tokens with their byte spans.
//!
//! The lexer never fails: a character no token can start with becomes an
//! [`TokenKind::Invalid`] token, so the parser reports it as DynamoDB does —
//! a syntax error naming the token and the text around it.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A bare word: `[A-Za-z][A-Za-z0-9_]*` (an attribute name, a function
    /// name or a keyword; keywords are recognised by the parser).
    Word,
    /// `#` followed by `[A-Za-z0-9_]+`.
    NamePlaceholder,
    /// `:` followed by `[A-Za-z0-9_]+`.
    ValuePlaceholder,
    /// `[0-9]+`: only meaningful as a list index.
    Digits,
    /// `(`
    OpenParen,
    /// `)`
    CloseParen,
    /// `[`
    OpenBracket,
    /// `]`
    CloseBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
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
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// One character that starts no token.
    Invalid,
}

/// A token: its kind and where it is in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    /// What the token is.
    pub(crate) kind: TokenKind,
    /// Byte offset of the first byte.
    pub(crate) start: usize,
    /// Byte offset one past the last byte.
    pub(crate) end: usize,
}

impl Token {
    /// The token's text within `source`.
    pub(crate) fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start..self.end).unwrap_or("")
    }

    /// Whether this is the word `keyword`, ignoring ASCII case (DynamoDB's
    /// keywords are case-insensitive).
    pub(crate) fn is_keyword(&self, source: &str, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text(source).eq_ignore_ascii_case(keyword)
    }
}

/// The tokens of `source`, whitespace dropped.
pub(crate) fn tokenize(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        let start = position;
        let (kind, end) = match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {
                position += 1;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' => (TokenKind::Word, scan_name(bytes, start + 1)),
            b'0'..=b'9' => (TokenKind::Digits, scan_digits(bytes, start + 1)),
            b'#' | b':' => {
                let end = scan_name(bytes, start + 1);
                if end == start + 1 {
                    (TokenKind::Invalid, end)
                } else if byte == b'#' {
                    (TokenKind::NamePlaceholder, end)
                } else {
                    (TokenKind::ValuePlaceholder, end)
                }
            }
            b'<' => match bytes.get(start + 1) {
                Some(b'>') => (TokenKind::NotEqual, start + 2),
                Some(b'=') => (TokenKind::LessOrEqual, start + 2),
                _ => (TokenKind::Less, start + 1),
            },
            b'>' => match bytes.get(start + 1) {
                Some(b'=') => (TokenKind::GreaterOrEqual, start + 2),
                _ => (TokenKind::Greater, start + 1),
            },
            b'(' => (TokenKind::OpenParen, start + 1),
            b')' => (TokenKind::CloseParen, start + 1),
            b'[' => (TokenKind::OpenBracket, start + 1),
            b']' => (TokenKind::CloseBracket, start + 1),
            b',' => (TokenKind::Comma, start + 1),
            b'.' => (TokenKind::Dot, start + 1),
            b'=' => (TokenKind::Equal, start + 1),
            b'+' => (TokenKind::Plus, start + 1),
            b'-' => (TokenKind::Minus, start + 1),
            _ => (TokenKind::Invalid, start + utf8_width(byte)),
        };
        let end = end.min(bytes.len());
        tokens.push(Token { kind, start, end });
        position = end;
    }
    tokens
}

/// The end of a run of `[A-Za-z0-9_]` starting at `position`.
fn scan_name(bytes: &[u8], mut position: usize) -> usize {
    while bytes
        .get(position)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        position += 1;
    }
    position
}

/// The end of a run of ASCII digits starting at `position`.
fn scan_digits(bytes: &[u8], mut position: usize) -> usize {
    while bytes.get(position).is_some_and(u8::is_ascii_digit) {
        position += 1;
    }
    position
}

/// How many bytes the UTF-8 character starting with `first` takes, so an
/// invalid token is a whole character (its text slices cleanly).
fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn operators_take_the_longest_match() {
        use TokenKind::*;
        assert_eq!(
            kinds("a<>b<=c>=d<e>f=g"),
            [
                Word,
                NotEqual,
                Word,
                LessOrEqual,
                Word,
                GreaterOrEqual,
                Word,
                Less,
                Word,
                Greater,
                Word,
                Equal,
                Word
            ]
        );
    }

    #[test]
    fn placeholders_and_paths() {
        use TokenKind::*;
        let source = "#n.a[12] = :v_1";
        let tokens = tokenize(source);
        assert_eq!(
            tokens.iter().map(|t| t.kind).collect::<Vec<_>>(),
            [
                NamePlaceholder,
                Dot,
                Word,
                OpenBracket,
                Digits,
                CloseBracket,
                Equal,
                ValuePlaceholder
            ]
        );
        assert_eq!(tokens[0].text(source), "#n");
        assert_eq!(tokens[4].text(source), "12");
        assert_eq!(tokens[7].text(source), ":v_1");
    }

    #[test]
    fn names_cannot_start_with_an_underscore() {
        use TokenKind::*;
        assert_eq!(kinds("SET _123"), [Word, Invalid, Digits]);
        assert_eq!(kinds("a_1"), [Word]);
    }

    #[test]
    fn bare_hash_and_colon_are_invalid() {
        assert_eq!(kinds("# :"), [TokenKind::Invalid, TokenKind::Invalid]);
    }

    #[test]
    fn multibyte_characters_are_one_invalid_token() {
        let source = "a é b";
        let tokens = tokenize(source);
        assert_eq!(tokens[1].kind, TokenKind::Invalid);
        assert_eq!(tokens[1].text(source), "é");
    }

    #[test]
    fn keywords_ignore_case() {
        let source = "BeTwEeN";
        assert!(tokenize(source)[0].is_keyword(source, "BETWEEN"));
    }
}
