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
    // Most fracs a collector writes are rounded to thousandths: written
    // as such, digit by digit, without the general shortest-digits
    // search (a fifth of the cost of a host's overview entry). The same
    // text: the thousandths are the shortest decimal that reads back as
    // `f` when `f` is the double nearest to them.
    let thousandths = (f * 1000.0).round();
    if thousandths.abs() < 1e12 && thousandths / 1000.0 == f {
        if f.is_sign_negative() {
            out.push('-');
        }
        let n = thousandths.abs() as u64;
        write_json_u64(out, n / 1000);
        out.push('.');
        let frac = n % 1000;
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let keep = match (digits[1], digits[2]) {
            (_, d) if d != 0 => 3,
            (d, _) if d != 0 => 2,
            _ => 1,
        };
        for d in &digits[..keep] {
            out.push(char::from(b'0' + *d as u8));
        }
        return;
    }
    // Debug formatting is the shortest text that round-trips and always
    // carries a fraction or an exponent ("1.0", "1e300", "1e-7").
    let _ = write!(out, "{f:?}");
}

/// Append an integer in decimal (as `{i}` writes it, without the
/// formatting machinery: a host's overview entry writes dozens).
pub fn write_json_i64(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    write_json_u64(out, i.unsigned_abs());
}

fn write_json_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
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
        Node::Int(i) => write_json_i64(out, *i),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit paths write what the formatting machinery
    /// writes, for thousandths, other fractions and every integer kind.
    #[test]
    fn numbers_are_written_as_the_formatter_writes_them() {
        let mut rng = crate::fleet::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next_u64();
        let mut fracs = vec![
            0.0,
            -0.0,
            0.001,
            -0.001,
            0.5,
            1.0,
            0.3,
            1e9,
            1e9 - 0.001,
            1e15,
        ];
        fracs.extend([1e16, 1e-7, 123.456_7, f64::MIN_POSITIVE, f64::MAX, -2.5e-4]);
        let mut ints = vec![0, 1, -1, 9, 10, i64::MAX, i64::MIN, 1_000_000, -99];
        for _ in 0..100_000 {
            let r = next();
            let scale = [1.0, 10.0, 100.0, 1000.0, 1e4, 1e6][(r % 6) as usize];
            let n = (r >> 8) as i64 % 1_000_000_000_000;
            let sign = if r & 0x80 == 0 { 1.0 } else { -1.0 };
            fracs.push(sign * n as f64 / scale);
            fracs.push(f64::from_bits(next()));
            ints.push(next() as i64 >> (r % 64));
        }
        for f in fracs.into_iter().filter(|f| f.is_finite()) {
            let mut out = String::new();
            write_json_f64(&mut out, f);
            assert_eq!(out, format!("{f:?}"), "bits {:x}", f.to_bits());
        }
        for i in ints {
            let mut out = String::new();
            write_json_i64(&mut out, i);
            assert_eq!(out, i.to_string());
        }
    }
}
