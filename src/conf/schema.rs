//! Strict loading: every key a config file may hold, declared once per
//! file beside the code that reads it, so a typo is an error naming file,
//! line, column and key path (with the closest known key as a hint) rather
//! than a setting silently left at its default.
//!
//! Keys that the original Opticon accepted and this one does not use are
//! declared too: they load, with one warning naming them, so an original
//! configuration still starts.

use super::parse::{parse_outlined, KeyAt, Segment};
use super::{Dict, FileError, ValueError};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a key may hold.
#[derive(Debug)]
pub enum Shape {
    /// Any value; keys below it (if it is a dict) are not checked.
    Value,
    /// A dict with only these keys (or a list of such dicts).
    Keys(&'static [(&'static str, Shape)]),
    /// A dict whose keys are names the operator chooses (probes, meters),
    /// each holding this shape.
    Named(&'static Shape),
}

/// The keys of one kind of config file.
#[derive(Debug)]
pub struct Schema {
    /// The keys this program reads.
    pub keys: Shape,
    /// Key paths (`debug`, `auth/unithost_url`) the original Opticon
    /// accepted here that are loaded and ignored, with a warning.
    pub ignored: &'static [&'static str],
}

impl Schema {
    /// Every key path it declares (`network/port`; a name the operator
    /// chooses shows as `<name>`), for documentation checks.
    pub fn key_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        all_paths(&self.keys, "", &mut out);
        out
    }
}

/// What is wrong with one key of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// No such key here; the closest known key path, if one is close.
    Unknown(Option<String>),
    /// The key was given before, at this line and column (a second
    /// `network { }` block would silently replace the first).
    Repeated(usize, usize),
}

/// One key a file must not hold as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column of the key.
    pub column: usize,
    /// Slash-separated path of the key (`network/adress`).
    pub key: String,
    /// What is wrong with it.
    pub problem: KeyProblem,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.line, self.column, self.key)?;
        match &self.problem {
            KeyProblem::Unknown(Some(hint)) => write!(f, "unknown key (did you mean {hint}?)"),
            KeyProblem::Unknown(None) => f.write_str("unknown key"),
            KeyProblem::Repeated(line, column) => write!(
                f,
                "given twice (first at {line}:{column}); the second would replace the first"
            ),
        }
    }
}

/// A file read strictly: the tree, the original Opticon's keys it holds
/// that are ignored, and where each key was written (to place value
/// errors).
#[derive(Debug)]
pub struct Checked {
    /// The parsed document.
    pub doc: Dict,
    /// The file it came from.
    pub path: PathBuf,
    /// Paths and positions of ignored keys of the original Opticon.
    pub ignored: Vec<(String, usize, usize)>,
    positions: HashMap<String, (usize, usize)>,
}

impl Checked {
    /// One line naming the ignored keys of the original Opticon, if any.
    pub fn warning(&self) -> Option<String> {
        if self.ignored.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .ignored
            .iter()
            .map(|(k, line, col)| format!("{k} ({line}:{col})"))
            .collect();
        Some(format!(
            "{}: ignoring keys of the original Opticon that this one does not use: {}",
            self.path.display(),
            names.join(", ")
        ))
    }

    /// A value error of this file as `file:line:column: key: why` (the
    /// position of the key, or of the nearest enclosing key written).
    pub fn locate(&self, e: &ValueError) -> String {
        let mut key = e.key.as_str();
        loop {
            if let Some((line, col)) = self.positions.get(key) {
                return format!("{}:{line}:{col}: {e}", self.path.display());
            }
            match key.rsplit_once('/') {
                Some((parent, _)) => key = parent,
                None => return format!("{}: {e}", self.path.display()),
            }
        }
    }
}

fn joined(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Where a key's path leads in a schema.
enum Verdict {
    Known,
    /// Under an ignored key of the original (the ignored path).
    Ignored(String),
    /// Not a key of the schema: the depth of the first unknown segment
    /// and the names known at that level.
    Unknown(usize, &'static [(&'static str, Shape)]),
}

fn resolve(schema: &Schema, path: &[Segment]) -> Verdict {
    let mut shape = &schema.keys;
    let mut written = String::new();
    for (depth, segment) in path.iter().enumerate() {
        let Segment::Key(key) = segment else {
            continue;
        };
        if !written.is_empty() {
            written.push('/');
        }
        written.push_str(key);
        if schema.ignored.contains(&written.as_str()) {
            return Verdict::Ignored(written);
        }
        match shape {
            Shape::Value => return Verdict::Known,
            Shape::Named(inner) => shape = inner,
            Shape::Keys(fields) => match fields.iter().find(|(name, _)| name == key) {
                Some((_, inner)) => shape = inner,
                None => return Verdict::Unknown(depth, fields),
            },
        }
    }
    Verdict::Known
}

/// Edit distance of two short names (insertions, deletions,
/// substitutions, and swaps of neighbours).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// Every key path of a shape, for hints (`network/port`).
fn all_paths(shape: &Shape, prefix: &str, out: &mut Vec<String>) {
    match shape {
        Shape::Value => {}
        Shape::Named(inner) => all_paths(inner, &format!("{prefix}<name>/"), out),
        Shape::Keys(fields) => {
            for (name, inner) in fields.iter() {
                out.push(format!("{prefix}{name}"));
                all_paths(inner, &format!("{prefix}{name}/"), out);
            }
        }
    }
}

/// The closest known key to an unknown one: a sibling with a close
/// spelling, else the same name elsewhere in the schema.
fn hint(
    schema: &Schema,
    path: &[Segment],
    depth: usize,
    siblings: &[(&'static str, Shape)],
) -> Option<String> {
    let Segment::Key(wrong) = &path[depth] else {
        return None;
    };
    let parent = joined(&path[..depth]);
    let prefix = if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    };
    let lower = wrong.to_ascii_lowercase();
    let close = siblings
        .iter()
        .map(|(name, _)| (distance(&lower, name), *name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 3) && *d < name.len())
        .min();
    // A one-letter slip beside it, else the same key in another section
    // (`port` at the top: `network/port`), else a wider slip beside it.
    if let Some((1, name)) = close {
        return Some(format!("{prefix}{name}"));
    }
    let mut everywhere = Vec::new();
    all_paths(&schema.keys, "", &mut everywhere);
    everywhere
        .into_iter()
        .find(|p| p.rsplit('/').next() == Some(lower.as_str()))
        .or_else(|| close.map(|(_, name)| format!("{prefix}{name}")))
}

/// Check a file's outline against a schema: the unknown and repeated keys
/// (each reported once, at the outermost wrong key), and the ignored keys
/// of the original Opticon.
pub fn check(schema: &Schema, keys: &[KeyAt]) -> (Vec<KeyError>, Vec<(String, usize, usize)>) {
    let mut errors = Vec::new();
    let mut ignored = Vec::new();
    let mut seen: HashMap<&[Segment], (usize, usize)> = HashMap::new();
    let mut reported: Vec<&[Segment]> = Vec::new();
    for k in keys {
        if reported.iter().any(|r| k.path.starts_with(r)) {
            continue;
        }
        if let Some(&(line, column)) = seen.get(k.path.as_slice()) {
            errors.push(KeyError {
                line: k.line,
                column: k.column,
                key: joined(&k.path),
                problem: KeyProblem::Repeated(line, column),
            });
            reported.push(&k.path);
            continue;
        }
        seen.insert(&k.path, (k.line, k.column));
        match resolve(schema, &k.path) {
            Verdict::Known => {}
            Verdict::Ignored(what) => {
                if joined(&k.path) == what {
                    ignored.push((what, k.line, k.column));
                }
            }
            Verdict::Unknown(depth, siblings) => {
                if depth + 1 == k.path.len() {
                    errors.push(KeyError {
                        line: k.line,
                        column: k.column,
                        key: joined(&k.path),
                        problem: KeyProblem::Unknown(hint(schema, &k.path, depth, siblings)),
                    });
                    reported.push(&k.path);
                }
            }
        }
    }
    (errors, ignored)
}

/// Read, parse and check a config file against its schema.
pub fn load_checked(path: &Path, schema: &Schema) -> Result<Checked, FileError> {
    load_checked_by(path, |_| schema)
}

/// As [`load_checked`], for a file of two forms: `pick` chooses the
/// schema from the parsed document.
pub fn load_checked_by<'s>(
    path: &Path,
    pick: impl Fn(&Dict) -> &'s Schema,
) -> Result<Checked, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::Io(path.to_path_buf(), e))?;
    check_text_by(&text, path, pick)
}

/// Parse and check a config document read from `path`.
pub fn check_text(text: &str, path: &Path, schema: &Schema) -> Result<Checked, FileError> {
    check_text_by(text, path, |_| schema)
}

fn check_text_by<'s>(
    text: &str,
    path: &Path,
    pick: impl Fn(&Dict) -> &'s Schema,
) -> Result<Checked, FileError> {
    let (doc, keys) = parse_outlined(text).map_err(|e| FileError::Syntax(path.to_path_buf(), e))?;
    let (errors, ignored) = check(pick(&doc), &keys);
    if !errors.is_empty() {
        return Err(FileError::Keys(path.to_path_buf(), errors));
    }
    let positions = keys
        .iter()
        .map(|k| (joined(&k.path), (k.line, k.column)))
        .collect();
    Ok(Checked {
        doc,
        path: path.to_path_buf(),
        ignored,
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    static SCHEMA: Schema = Schema {
        keys: Shape::Keys(&[
            (
                "network",
                Shape::Keys(&[("port", Shape::Value), ("address", Shape::Value)]),
            ),
            (
                "probes",
                Shape::Named(&Shape::Keys(&[
                    ("call", Shape::Value),
                    ("options", Shape::Value),
                ])),
            ),
            ("collector", Shape::Keys(&[("address", Shape::Value)])),
        ]),
        ignored: &["debug", "auth/unithost_url"],
    };

    fn problems(text: &str) -> Vec<String> {
        match check_text(text, Path::new("x.conf"), &SCHEMA) {
            Ok(_) => Vec::new(),
            Err(FileError::Keys(_, errors)) => errors.iter().map(|e| e.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn a_typo_names_line_column_path_and_hint() {
        assert_eq!(
            problems("network { port 1048 adress 127.0.0.1 }"),
            ["1:21: network/adress: unknown key (did you mean network/address?)"]
        );
        assert_eq!(
            problems("port 1\nzzz { a 1 }"),
            [
                "1:1: port: unknown key (did you mean network/port?)",
                "2:1: zzz: unknown key"
            ]
        );
    }

    #[test]
    fn named_lists_and_free_values() {
        assert!(problems(
            "probes { raid { call x options { anything 1 } } }\n\
             collector [ { address a } { address b } ]"
        )
        .is_empty());
        assert_eq!(
            problems("probes { raid { cal x } }"),
            ["1:17: probes/raid/cal: unknown key (did you mean probes/raid/call?)"]
        );
        assert_eq!(
            problems("collector [ { address a } { adres b } ]"),
            ["1:29: collector[1]/adres: unknown key (did you mean collector[1]/address?)"]
        );
    }

    #[test]
    fn repeated_blocks_are_refused() {
        assert_eq!(
            problems("network { port 1 }\nnetwork { address a }"),
            ["2:1: network: given twice (first at 1:1); the second would replace the first"]
        );
    }

    #[test]
    fn original_keys_warn_once() {
        let c = check_text(
            "debug { dump /tmp/x }\nnetwork { port 1 }",
            Path::new("x.conf"),
            &SCHEMA,
        )
        .unwrap();
        assert_eq!(
            c.warning().unwrap(),
            "x.conf: ignoring keys of the original Opticon that this one does not use: debug (1:1)"
        );
        assert_eq!(
            c.locate(&ValueError::new("network/port", "bad")),
            "x.conf:2:11: network/port: bad"
        );
    }
}
