//! The configuration language: a forgiving superset of JSON.
//!
//! Opticon's config files, probe output and HTTP request bodies are all read
//! by one parser ([`parse`]) into one tree type ([`Node`]). The syntax is the
//! original Opticon's "sloppy JSON" (optional outer braces, colons and
//! commas, unquoted strings, `#` comments) plus what it lacked: negative
//! numbers, `true`/`false`/`null` and `\uXXXX` escapes. Every strict JSON
//! document whose top level is an object is also a valid config document.
//! `man 5 opticon.conf` describes the syntax for users.

mod parse;
pub mod schema;
pub mod write;

pub use parse::{parse, parse_outlined, KeyAt, ParseError, ParseErrorKind, Segment, MAX_DEPTH};
pub use write::{write_json_f64, write_json_string};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One value of a parsed document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number without fraction or exponent that fits in 64 signed bits.
    Int(i64),
    /// A number with a fraction or exponent.
    Frac(f64),
    /// A quoted string, or an unquoted word that is not a number or keyword.
    Str(String),
    /// `[ ... ]`.
    Array(Vec<Node>),
    /// `{ ... }`, keeping the order in which keys first appeared.
    Dict(Dict),
}

/// An ordered map from key to node; repeated keys overwrite in place.
///
/// Order matters to users (table columns come from the first row's key
/// order) and to golden output; the side index keeps lookups O(1) so that a
/// hostile body with many keys cannot make parsing quadratic.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    entries: Vec<(String, Node)>,
    index: HashMap<String, usize>,
}

impl PartialEq for Dict {
    fn eq(&self, other: &Dict) -> bool {
        self.entries == other.entries
    }
}

impl Dict {
    /// An empty dict.
    pub fn new() -> Dict {
        Dict::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The node stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Mutable access to the node stored under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self.index.get(key) {
            Some(&i) => Some(&mut self.entries[i].1),
            None => None,
        }
    }

    /// Set `key`, replacing an existing value in its original position.
    pub fn insert(&mut self, key: impl Into<String>, value: Node) {
        let key = key.into();
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let i = self.index.remove(key)?;
        let (_, value) = self.entries.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(value)
    }

    /// Follow a slash-separated path of keys (`"network/port"`).
    pub fn path(&self, path: &str) -> Option<&Node> {
        let (first, rest) = path.split_once('/').unwrap_or((path, ""));
        self.get(first)?.path(rest)
    }

    /// Keys and values in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Merge `other` into `self`: dicts merge key by key, anything else
    /// (including arrays) replaces. This is how a second config file layers
    /// over the first.
    pub fn merge(&mut self, other: Dict) {
        for (key, value) in other.entries {
            match (self.get_mut(&key), value) {
                (Some(Node::Dict(mine)), Node::Dict(theirs)) => mine.merge(theirs),
                (_, value) => self.insert(key, value),
            }
        }
    }
}

impl Node {
    /// Follow a slash-separated path of dict keys (`"network/port"`).
    pub fn path(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match node {
                Node::Dict(d) => node = d.get(part)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer value, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Node::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The numeric value of an integer or fraction.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Node::Int(i) => Some(*i as f64),
            Node::Frac(f) => Some(*f),
            _ => None,
        }
    }

    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Node::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Int(_) => "integer",
            Node::Frac(_) => "fraction",
            Node::Str(_) => "string",
            Node::Array(_) => "array",
            Node::Dict(_) => "dict",
        }
    }

    /// Render as JSON; `pretty` indents with four spaces like the original.
    pub fn to_json(&self, pretty: bool) -> String {
        let mut out = String::new();
        write::write_node(&mut out, self, pretty, 0);
        out
    }
}

/// A config file that could not be read or parsed, naming the file.
#[derive(Debug)]
pub enum FileError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The file's text is not valid; the error carries line and column.
    Syntax(PathBuf, ParseError),
    /// The file holds keys its program does not know, or gives one twice.
    Keys(PathBuf, Vec<schema::KeyError>),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            FileError::Syntax(path, e) => {
                write!(f, "{}:{}:{}: {}", path.display(), e.line, e.column, e.kind)
            }
            FileError::Keys(path, errors) => {
                for (i, e) in errors.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "\n" };
                    write!(f, "{sep}{}:{e}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for FileError {}

/// A configuration value that is present but unusable: the key's path
/// (`network/port`) and why, so the message points at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// Slash-separated path of the key.
    pub key: String,
    /// What is wrong with its value.
    pub why: String,
}

impl ValueError {
    /// The value at `key` is unusable because of `why`.
    pub fn new(key: impl Into<String>, why: impl Into<String>) -> ValueError {
        ValueError {
            key: key.into(),
            why: why.into(),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

impl std::error::Error for ValueError {}

/// A positive number at `key` (default when absent): the daemons'
/// seconds, sizes and counts.
pub fn positive(doc: &Dict, key: &str, default: u64) -> Result<u64, ValueError> {
    match doc.path(key) {
        None => Ok(default),
        Some(Node::Int(n)) if *n > 0 => Ok(*n as u64),
        Some(other) => Err(ValueError::new(
            key,
            format!("{} is not a positive number", other.to_json(false)),
        )),
    }
}

/// The address a daemon listens on: `network/address` (`*` or absent:
/// every IPv4 and IPv6 address) and `network/port`.
pub fn listen_address(doc: &Dict, default_port: u16) -> Result<std::net::SocketAddr, ValueError> {
    let port = match doc.path("network/port") {
        None => default_port,
        Some(Node::Int(p)) if (1..=65535).contains(p) => *p as u16,
        Some(other) => {
            return Err(ValueError::new(
                "network/port",
                format!("{} is not a port", other.to_json(false)),
            ))
        }
    };
    let address = match doc.path("network/address").and_then(Node::as_str) {
        None | Some("*") => "::",
        Some(a) => a,
    };
    let ip: std::net::IpAddr = address.parse().map_err(|_| {
        ValueError::new("network/address", format!("{address:?} is not an address"))
    })?;
    Ok(std::net::SocketAddr::new(ip, port))
}

/// Read and parse one config file.
pub fn load_file(path: &Path) -> Result<Dict, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::Io(path.to_path_buf(), e))?;
    parse(&text).map_err(|e| FileError::Syntax(path.to_path_buf(), e))
}

/// Read several files and layer them in order (later files win).
pub fn load_layered(paths: &[&Path]) -> Result<Dict, FileError> {
    let mut tree = Dict::new();
    for path in paths {
        tree.merge(load_file(path)?);
    }
    Ok(tree)
}
