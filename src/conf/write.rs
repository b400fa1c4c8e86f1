//! JSON text output shared by the config tree and the host JSON codec.

use super::Node;
use std::fmt::Write;

/// Append `s` as a JSON string literal, escaping every control character so
/// that the output is valid RFC 8259 JSON whatever the input holds.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    // Most strings (meter names, host names, states) need no escape.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            // C1 controls too: JSON allows them raw, but a terminal
            // showing the document may take U+009B as an escape.
            c if c.is_control() => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append a fraction so that it reads back as the same `f64` and as a
/// fraction (always with a `.` or exponent); non-finite values become `null`.
pub fn write_json_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    // Debug formatting is the shortest text that round-trips and always
    // carries a fraction or an exponent ("1.0", "1e300", "1e-7").
    let _ = write!(out, "{f:?}");
}

fn newline(out: &mut String, pretty: bool, depth: usize) {
    if pretty {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    }
}

pub(super) fn write_node(out: &mut String, node: &Node, pretty: bool, depth: usize) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Node::Frac(f) => write_json_f64(out, *f),
        Node::Str(s) => write_json_string(out, s),
        Node::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                write_node(out, item, pretty, depth + 1);
            }
            if !items.is_empty() {
                newline(out, pretty, depth);
            }
            out.push(']');
        }
        Node::Dict(dict) => {
            out.push('{');
            for (n, (key, value)) in dict.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                write_json_string(out, key);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_node(out, value, pretty, depth + 1);
            }
            if !dict.is_empty() {
                newline(out, pretty, depth);
            }
            out.push('}');
        }
    }
}
