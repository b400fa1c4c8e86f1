//! The host JSON codec: the "two-level illusion" in both directions.
//!
//! Meters are stored flat (`df/pused`); users see JSON in the original
//! Opticon's shape: `prefix/child` meters become `{"prefix": {...}}` when
//! they are scalars, or a table `[{...}, {...}]` when they are all arrays.
//! Output is always valid JSON: ragged tables fill short columns with
//! `null`, strings escape every control character.

use super::host::{HostError, HostMeters, MAX_METERS_PER_HOST};
use super::name::{MeterName, NameError};
use super::value::{Array, Kind, LimitError, MeterValue, Scalar, ScalarRef};
use crate::conf::{self, Dict, Node, ParseError};
use std::fmt;

fn element_node(v: ScalarRef<'_>) -> Node {
    match v {
        ScalarRef::Int(i) => Node::Int(i),
        ScalarRef::Frac(f) => Node::Frac(f),
        ScalarRef::Str(s) => Node::Str(s.to_string()),
    }
}

/// Append one element as JSON text (the same text its node would give).
pub fn write_scalar(out: &mut String, v: ScalarRef<'_>) {
    match v {
        ScalarRef::Int(i) => conf::write::write_json_i64(out, i),
        ScalarRef::Frac(f) => conf::write::write_json_f64(out, f),
        ScalarRef::Str(s) => conf::write::write_json_string(out, s),
    }
}

/// The JSON node for one meter value.
pub fn value_node(value: &MeterValue) -> Node {
    match value {
        MeterValue::Null => Node::Null,
        MeterValue::Scalar(s) => element_node(s.as_ref()),
        MeterValue::Array(a) => Node::Array(
            (0..a.len())
                .filter_map(|i| a.get(i))
                .map(element_node)
                .collect(),
        ),
    }
}

fn group_node(members: &[(&str, &MeterValue)]) -> Node {
    let all_arrays = members
        .iter()
        .all(|(_, v)| matches!(v, MeterValue::Array(_)));
    if !all_arrays {
        let mut dict = Dict::new();
        for (leaf, value) in members {
            dict.insert(*leaf, value_node(value));
        }
        return Node::Dict(dict);
    }
    let rows = members
        .iter()
        .map(|(_, v)| v.element_count())
        .max()
        .unwrap_or(0);
    let table = (0..rows)
        .map(|row| {
            let mut dict = Dict::new();
            for (leaf, value) in members {
                dict.insert(*leaf, value.element(row).map_or(Node::Null, element_node));
            }
            Node::Dict(dict)
        })
        .collect();
    Node::Array(table)
}

/// The host as a JSON tree in the original's shape.
pub fn host_node(meters: &HostMeters) -> Node {
    let mut out = Dict::new();
    let mut iter = meters.iter().peekable();
    while let Some((name, meter)) = iter.next() {
        let Some((prefix, leaf)) = name.as_str().split_once('/') else {
            out.insert(name.as_str(), value_node(&meter.value));
            continue;
        };
        let mut members = vec![(leaf, &meter.value)];
        while let Some((next, m)) = iter.peek() {
            match next.as_str().split_once('/') {
                Some((p, l)) if p == prefix => {
                    members.push((l, &m.value));
                    iter.next();
                }
                _ => break,
            }
        }
        out.insert(prefix, group_node(&members));
    }
    Node::Dict(out)
}

/// The host as JSON text; `pretty` indents four spaces like the original API.
pub fn encode_host(meters: &HostMeters, pretty: bool) -> String {
    host_node(meters).to_json(pretty)
}

// ---------------------------------------------------------------- decoding

/// Why a JSON document cannot become meters.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonError {
    /// The text is not valid JSON (or config syntax).
    Syntax(ParseError),
    /// A key is not a valid meter name.
    BadName(String, NameError),
    /// A value exceeds the model's limits.
    Limit(String, LimitError),
    /// A structure the two-level model cannot hold (what, where).
    Unsupported(String, &'static str),
    /// Strings mixed with numbers in one array or table column.
    MixedTypes(String),
    /// More meters than one host may hold.
    TooManyMeters(usize),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(e) => e.fmt(f),
            JsonError::BadName(key, e) => write!(f, "key {key:?}: {e}"),
            JsonError::Limit(key, e) => write!(f, "meter {key}: {e}"),
            JsonError::Unsupported(key, what) => write!(f, "meter {key}: {what}"),
            JsonError::MixedTypes(key) => write!(f, "meter {key}: strings mixed with numbers"),
            JsonError::TooManyMeters(n) => {
                write!(
                    f,
                    "{n} meters is more than a host may hold ({})",
                    super::host::MAX_METERS_PER_HOST
                )
            }
        }
    }
}

impl std::error::Error for JsonError {}

fn scalar_of(node: &Node) -> Option<Option<Scalar>> {
    match node {
        Node::Null => Some(None),
        Node::Bool(b) => Some(Some(Scalar::Int(i64::from(*b)))),
        Node::Int(i) => Some(Some(Scalar::Int(*i))),
        Node::Frac(f) => Some(Some(Scalar::Frac(*f))),
        Node::Str(s) => Some(Some(Scalar::Str(s.clone()))),
        Node::Array(_) | Node::Dict(_) => None,
    }
}

/// Build a typed array from cells; ints and fracs mix into fracs, absent
/// cells (`None`) become zero values.
fn typed_array(name: &str, cells: &[Option<Scalar>]) -> Result<Array, JsonError> {
    let mut kind: Option<Kind> = None;
    for cell in cells.iter().flatten() {
        kind = Some(match (kind, cell.kind()) {
            (None, k) => k,
            (Some(Kind::Int), Kind::Frac) | (Some(Kind::Frac), Kind::Int) => Kind::Frac,
            (Some(a), b) if a == b => a,
            _ => return Err(JsonError::MixedTypes(name.to_string())),
        });
    }
    let kind = kind.unwrap_or(Kind::Int);
    let mut array = Array::zeroed(kind, cells.len());
    for (i, cell) in cells.iter().enumerate() {
        match (cell, &mut array) {
            (Some(Scalar::Int(v)), Array::Frac(a)) => a[i] = *v as f64,
            (Some(s), a) => {
                a.set(i, s.as_ref());
            }
            (None, _) => {}
        }
    }
    Ok(array)
}

fn checked(name: MeterName, value: MeterValue) -> Result<(MeterName, MeterValue), JsonError> {
    value
        .check_limits()
        .map_err(|e| JsonError::Limit(name.to_string(), e))?;
    Ok((name, value))
}

fn meter_name(key: &str) -> Result<MeterName, JsonError> {
    MeterName::new(key).map_err(|e| JsonError::BadName(key.to_string(), e))
}

fn child_name(prefix: &str, child: &str) -> Result<MeterName, JsonError> {
    let joined = format!("{prefix}/{child}");
    MeterName::join(prefix, child).map_err(|e| JsonError::BadName(joined, e))
}

fn scalar_array(name: &str, items: &[Node]) -> Result<MeterValue, JsonError> {
    let mut cells = Vec::with_capacity(items.len());
    for item in items {
        match scalar_of(item) {
            Some(Some(s)) => cells.push(Some(s)),
            Some(None) => cells.push(None),
            None => {
                return Err(JsonError::Unsupported(
                    name.to_string(),
                    "arrays may hold only scalars",
                ))
            }
        }
    }
    Ok(MeterValue::Array(typed_array(name, &cells)?))
}

/// Most cells (rows times columns) one table may span.
pub const MAX_TABLE_CELLS: usize = 65_536;

fn table(
    prefix: &str,
    rows: &[Node],
    out: &mut Vec<(MeterName, MeterValue)>,
) -> Result<(), JsonError> {
    if rows.len() > super::value::MAX_ARRAY_LEN {
        return Err(JsonError::Limit(
            prefix.to_string(),
            LimitError::ArrayTooLong(rows.len()),
        ));
    }
    // Missing cells are zero-filled, so bound the table's area: a small
    // document must not expand into a huge one.
    let mut area = 0usize;
    let mut columns: Vec<(String, Vec<Option<Scalar>>)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let Node::Dict(cells) = row else {
            return Err(JsonError::Unsupported(
                prefix.to_string(),
                "a table mixes dict rows with other values",
            ));
        };
        for (key, cell) in cells.iter() {
            let Some(value) = scalar_of(cell) else {
                return Err(JsonError::Unsupported(
                    format!("{prefix}/{key}"),
                    "table cells must be scalars",
                ));
            };
            let column = match columns.iter().position(|(k, _)| k == key) {
                Some(i) => i,
                None => {
                    if columns.len() >= MAX_METERS_PER_HOST {
                        return Err(JsonError::TooManyMeters(columns.len() + 1));
                    }
                    area += rows.len();
                    if area > MAX_TABLE_CELLS {
                        return Err(JsonError::Unsupported(
                            prefix.to_string(),
                            "table has more than 65536 cells",
                        ));
                    }
                    columns.push((key.to_string(), vec![None; rows.len()]));
                    columns.len() - 1
                }
            };
            columns[column].1[r] = value;
        }
    }
    for (key, cells) in columns {
        let name = child_name(prefix, &key)?;
        let array = typed_array(name.as_str(), &cells)?;
        out.push(checked(name, MeterValue::Array(array))?);
    }
    Ok(())
}

fn plain(name: MeterName, node: &Node) -> Result<(MeterName, MeterValue), JsonError> {
    let value = match node {
        Node::Array(items) => scalar_array(name.as_str(), items)?,
        other => match scalar_of(other) {
            Some(Some(s)) => MeterValue::Scalar(s),
            Some(None) => MeterValue::Null,
            None => {
                return Err(JsonError::Unsupported(
                    name.to_string(),
                    "nested deeper than two levels",
                ))
            }
        },
    };
    checked(name, value)
}

/// Turn a parsed document into meters with the original's rules:
/// scalars and scalar arrays become one meter each; `{"k": {"a": ..}}`
/// becomes `k/a`; `{"k": [{"a": ..}, ..]}` (a table) becomes one array
/// meter per column, missing cells zero. Anything deeper is an error.
pub fn meters_from_dict(doc: &Dict) -> Result<Vec<(MeterName, MeterValue)>, JsonError> {
    let mut out = Vec::new();
    for (key, node) in doc.iter() {
        match node {
            Node::Dict(children) => {
                for (child, value) in children.iter() {
                    if matches!(value, Node::Dict(_)) {
                        return Err(JsonError::Unsupported(
                            format!("{key}/{child}"),
                            "nested deeper than two levels",
                        ));
                    }
                    if let Node::Array(items) = value {
                        if items
                            .iter()
                            .any(|i| matches!(i, Node::Dict(_) | Node::Array(_)))
                        {
                            return Err(JsonError::Unsupported(
                                format!("{key}/{child}"),
                                "nested deeper than two levels",
                            ));
                        }
                    }
                    out.push(plain(child_name(key, child)?, value)?);
                }
            }
            Node::Array(rows) if rows.first().is_some_and(|r| matches!(r, Node::Dict(_))) => {
                table(key, rows, &mut out)?;
            }
            _ => out.push(plain(meter_name(key)?, node)?),
        }
        if out.len() > MAX_METERS_PER_HOST {
            return Err(JsonError::TooManyMeters(out.len()));
        }
    }
    Ok(out)
}

/// Parse JSON (or config syntax) text into meters.
pub fn meters_from_json(text: &str) -> Result<Vec<(MeterName, MeterValue)>, JsonError> {
    let doc = conf::parse(text).map_err(JsonError::Syntax)?;
    meters_from_dict(&doc)
}

/// Parse JSON text and store its meters into `host` at `time`.
///
/// ```
/// use opticon::model::{binary, json, HostMeters};
///
/// let mut host = HostMeters::new();
/// json::merge_json(&mut host, r#"{"pcpu": 12.5, "df": [{"mount": "/", "pused": 41.5}]}"#, 60).unwrap();
/// assert!(host.get("df/pused").is_some());
///
/// // Through the binary codec and back, losslessly, in the original's shape.
/// let (time, back) = binary::decode_sample(&binary::encode_sample(60, &host)).unwrap();
/// assert_eq!((time, &back), (60, &host));
/// assert_eq!(json::encode_host(&back, false), r#"{"df":[{"mount":"/","pused":41.5}],"pcpu":12.5}"#);
/// ```
pub fn merge_json(host: &mut HostMeters, text: &str, time: i64) -> Result<usize, JsonError> {
    let meters = meters_from_json(text)?;
    let n = meters.len();
    for (name, value) in meters {
        host.set(name, value, time).map_err(|e| match e {
            HostError::Full(_) => JsonError::TooManyMeters(host.len() + 1),
            HostError::BadName(err) => JsonError::BadName(String::new(), err),
        })?;
    }
    Ok(n)
}
