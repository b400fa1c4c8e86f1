//! Plain-text output shared by `opticon` and `opticon-db`: aligned tables
//! and sizes as the original showed them.

/// Text safe to print on a terminal: control characters (C0, DEL and
/// C1, which start escape sequences such as `ESC[2J` or an OSC title) are
/// shown escaped (`\x1b`, `\u{9b}`), everything else as it is. Hostnames,
/// process names and messages come from agents and APIs nobody here wrote.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Print rows under a header, each column as wide as its widest cell
/// (every cell made [`printable`]).
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| printable(&c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Bytes as the original showed them: KB, or MB above 2048 KB.
pub fn size(bytes: u64) -> String {
    let kb = bytes.div_ceil(1024);
    if kb > 2048 {
        format!("{:.1} MB", bytes as f64 / 1048576.0)
    } else {
        format!("{kb} KB")
    }
}
