//! Plain-text output shared by `opticon` and `opticon-db`: aligned tables
//! and sizes as the original showed them.

/// Print rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
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
