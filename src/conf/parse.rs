//! Recursive-descent parser for the sloppy-JSON config language.

use super::{Dict, Node};
use std::fmt;

/// Deepest nesting of dicts and arrays accepted; bounds recursion on
/// hostile input.
pub const MAX_DEPTH: usize = 32;

/// What went wrong, without the position.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseErrorKind {
    /// A key was expected here but this character was found.
    ExpectedKey(char),
    /// A value was expected here but this character was found.
    ExpectedValue(char),
    /// The text ended inside a dict, array or string.
    UnexpectedEnd(&'static str),
    /// A string was opened but never closed.
    UnterminatedString,
    /// A `\u` escape that is not four hex digits or not a valid code point.
    BadEscape,
    /// An integer that does not fit in 64 signed bits.
    IntegerOutOfRange(String),
    /// A number too large to represent.
    NumberOutOfRange(String),
    /// Dicts and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Text after the closing brace of the document.
    TrailingText(char),
}

/// A syntax error with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::ExpectedKey(c) => write!(f, "expected a key, found {c:?}"),
            ParseErrorKind::ExpectedValue(c) => write!(f, "expected a value, found {c:?}"),
            ParseErrorKind::UnexpectedEnd(what) => write!(f, "text ends inside {what}"),
            ParseErrorKind::UnterminatedString => write!(f, "string is never closed"),
            ParseErrorKind::BadEscape => write!(f, "invalid \\u escape"),
            ParseErrorKind::IntegerOutOfRange(t) => {
                write!(f, "integer {t} does not fit in 64 signed bits")
            }
            ParseErrorKind::NumberOutOfRange(t) => write!(f, "number {t} is out of range"),
            ParseErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            ParseErrorKind::TrailingText(c) => {
                write!(f, "unexpected {c:?} after the end of the document")
            }
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl std::error::Error for ParseError {}

/// Parse a document whose top level is a dict (outer braces optional).
///
/// ```
/// use opticon::conf::{parse, Node};
///
/// let doc = Node::Dict(parse("network { port 1047 address 0.0.0.0 } # comment").unwrap());
/// assert_eq!(doc.path("network/port"), Some(&Node::Int(1047)));
/// assert_eq!(doc.path("network/address").and_then(Node::as_str), Some("0.0.0.0"));
///
/// let err = parse("a 1\nb <").unwrap_err();
/// assert_eq!(err.to_string(), "line 2, column 3: expected a value, found '<'");
/// ```
pub fn parse(text: &str) -> Result<Dict, ParseError> {
    Parser::new(text, false).document()
}

/// One step of a key's path in a document: a dict key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A key of a dict.
    Key(String),
    /// The position of an element in an array.
    Index(usize),
}

/// Where a key was written: its full path and its 1-based line and column.
/// Strict config loading checks these against a schema (unknown and
/// repeated keys), which the parsed tree alone cannot show.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAt {
    /// The path from the top of the document to this key.
    pub path: Vec<Segment>,
    /// 1-based line of the key's first character.
    pub line: usize,
    /// 1-based column of the key's first character.
    pub column: usize,
}

/// Parse like [`parse`], also listing every key written, in order,
/// repeated ones included.
///
/// ```
/// use opticon::conf::{parse_outlined, Segment};
///
/// let (_, keys) = parse_outlined("network {\n  port 1 }").unwrap();
/// assert_eq!(keys[1].path, vec![Segment::Key("network".into()), Segment::Key("port".into())]);
/// assert_eq!((keys[1].line, keys[1].column), (2, 3));
/// ```
pub fn parse_outlined(text: &str) -> Result<(Dict, Vec<KeyAt>), ParseError> {
    let mut p = Parser::new(text, true);
    let doc = p.document()?;
    Ok((doc, p.outline.map(|o| o.keys).unwrap_or_default()))
}

/// The keys seen so far and the path being parsed.
struct Outline {
    keys: Vec<KeyAt>,
    path: Vec<Segment>,
    /// A byte offset already located, its line and the offset that line
    /// starts at: keys come in order, so locating each is incremental.
    cursor: (usize, usize, usize),
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, outlined: bool) -> Parser<'a> {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            outline: outlined.then(|| Outline {
                keys: Vec::new(),
                path: Vec::new(),
                cursor: (0, 1, 0),
            }),
        }
    }

    /// The whole text as a dict, outer braces optional.
    fn document(&mut self) -> Result<Dict, ParseError> {
        if self.text.starts_with('\u{feff}') {
            self.pos = 3;
        }
        self.skip_space();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            let dict = self.dict_body(Some(b'}'), 1)?;
            self.skip_space();
            if let Some(c) = self.peek_char() {
                return Err(self.error(ParseErrorKind::TrailingText(c)));
            }
            Ok(dict)
        } else {
            self.dict_body(None, 1)
        }
    }

    /// Note a key starting at byte `start`, and enter it.
    fn enter(&mut self, segment: Segment, start: usize) {
        let Some(o) = &mut self.outline else {
            return;
        };
        o.path.push(segment);
        if matches!(o.path.last(), Some(Segment::Index(_))) {
            return;
        }
        let (mut at, mut line, mut line_start) = o.cursor;
        for (i, b) in self.bytes[at..start].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = at + i + 1;
            }
        }
        at = start;
        o.cursor = (at, line, line_start);
        let column = self.text[line_start..start].chars().count() + 1;
        o.keys.push(KeyAt {
            path: o.path.clone(),
            line,
            column,
        });
    }

    /// Leave the key or element entered last.
    fn leave(&mut self) {
        if let Some(o) = &mut self.outline {
            o.path.pop();
        }
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b'/' | b'@')
}

fn is_word_byte(b: u8) -> bool {
    is_key_byte(b) || matches!(b, b':' | b'%' | b'+')
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Kept only by [`parse_outlined`].
    outline: Option<Outline>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        self.error_at(self.pos, kind)
    }

    fn error_at(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        let before = &self.text[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ParseError { line, column, kind }
    }

    /// Skip white space and `#` comments.
    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn dict_body(&mut self, close: Option<u8>, depth: usize) -> Result<Dict, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(ParseErrorKind::TooDeep));
        }
        let mut dict = Dict::new();
        loop {
            self.skip_space();
            match (self.peek(), close) {
                (None, None) => return Ok(dict),
                (None, Some(_)) => return Err(self.error(ParseErrorKind::UnexpectedEnd("a dict"))),
                (Some(b), Some(c)) if b == c => {
                    self.pos += 1;
                    return Ok(dict);
                }
                _ => {}
            }
            let start = self.pos;
            let key = self.key()?;
            self.skip_space();
            if matches!(self.peek(), Some(b':') | Some(b'=')) {
                self.pos += 1;
                self.skip_space();
            }
            if self.outline.is_some() {
                self.enter(Segment::Key(key.clone()), start);
            }
            let value = self.value(depth)?;
            self.leave();
            dict.insert(key, value);
            self.skip_space();
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
    }

    fn array_body(&mut self, depth: usize) -> Result<Vec<Node>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(ParseErrorKind::TooDeep));
        }
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return Err(self.error(ParseErrorKind::UnexpectedEnd("an array"))),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {}
            }
            self.enter(Segment::Index(items.len()), self.pos);
            items.push(self.value(depth)?);
            self.leave();
            self.skip_space();
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
    }

    fn key(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b) if is_key_byte(b) => Ok(self.run(is_key_byte).to_string()),
            _ => Err(self.error(ParseErrorKind::ExpectedKey(self.peek_char().unwrap_or(' ')))),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(Node::Dict(self.dict_body(Some(b'}'), depth + 1)?))
            }
            Some(b'[') => {
                self.pos += 1;
                Ok(Node::Array(self.array_body(depth + 1)?))
            }
            Some(b'"') => Ok(Node::Str(self.quoted()?)),
            Some(b) if is_word_byte(b) => {
                let start = self.pos;
                let word = self.run(is_word_byte);
                self.word(word, start)
            }
            Some(_) => Err(self.error(ParseErrorKind::ExpectedValue(
                self.peek_char().unwrap_or(' '),
            ))),
            None => Err(self.error(ParseErrorKind::UnexpectedEnd("a value"))),
        }
    }

    fn run(&mut self, accept: fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(accept) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Type an unquoted word: keyword, integer, fraction or string.
    fn word(&self, word: &str, start: usize) -> Result<Node, ParseError> {
        match word {
            "true" => return Ok(Node::Bool(true)),
            "false" => return Ok(Node::Bool(false)),
            "null" => return Ok(Node::Null),
            _ => {}
        }
        match classify_number(word) {
            NumberShape::Integer => word.parse::<i64>().map(Node::Int).map_err(|_| {
                self.error_at(start, ParseErrorKind::IntegerOutOfRange(word.to_string()))
            }),
            NumberShape::Fraction => match word.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Node::Frac(f)),
                _ => Err(self.error_at(start, ParseErrorKind::NumberOutOfRange(word.to_string()))),
            },
            NumberShape::NotANumber => Ok(Node::Str(word.to_string())),
        }
    }

    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(stop) = rest.find(['"', '\\']) else {
                return Err(self.error_at(open, ParseErrorKind::UnterminatedString));
            };
            out.push_str(&rest[..stop]);
            self.pos += stop;
            if self.bytes[self.pos] == b'"' {
                self.pos += 1;
                return Ok(out);
            }
            self.pos += 1;
            let Some(c) = self.peek_char() else {
                return Err(self.error_at(open, ParseErrorKind::UnterminatedString));
            };
            self.pos += c.len_utf8();
            match c {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => out.push(self.unicode_escape()?),
                other => out.push(other),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self.text.get(self.pos..self.pos + 4);
        match digits.and_then(|d| {
            d.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(d, 16).ok())
                .flatten()
        }) {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => Err(self.error(ParseErrorKind::BadEscape)),
        }
    }

    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) {
            if !self.text[self.pos..].starts_with("\\u") {
                return Err(self.error(ParseErrorKind::BadEscape));
            }
            self.pos += 2;
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err(self.error(ParseErrorKind::BadEscape));
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error(ParseErrorKind::BadEscape))
    }
}

enum NumberShape {
    Integer,
    Fraction,
    NotANumber,
}

/// `-?digits` is an integer; `-?digits.digits` (either side may be empty
/// but not both) with an optional exponent, or `-?digits` with an exponent,
/// is a fraction; anything else is a plain word.
fn classify_number(word: &str) -> NumberShape {
    let body = word.strip_prefix('-').unwrap_or(word).as_bytes();
    let (mantissa, exponent) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let mantissa_ok = digits(int_part)
        && frac_part.is_none_or(digits)
        && int_part.len() + frac_part.map_or(0, <[u8]>::len) > 0;
    if !mantissa_ok {
        return NumberShape::NotANumber;
    }
    match exponent {
        Some(e) => {
            let e = e
                .strip_prefix(b"+")
                .or_else(|| e.strip_prefix(b"-"))
                .unwrap_or(e);
            if !e.is_empty() && digits(e) {
                NumberShape::Fraction
            } else {
                NumberShape::NotANumber
            }
        }
        None if frac_part.is_some() => NumberShape::Fraction,
        None => NumberShape::Integer,
    }
}
