//! How `opticon` lays out hosts for a terminal: the overview table and
//! `host-show`'s sections, in the original's order, fitted to the width.

use crate::conf::{Dict, Node};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Columns of the terminal (`$COLUMNS`, the tty, else 80).
pub fn width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return c;
    }
    // SAFETY: TIOCGWINSZ fills a winsize for a terminal descriptor.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return usize::from(ws.ws_col);
        }
    }
    80
}

/// A node as short text, safe for a terminal: strings come from agents
/// and APIs, so control characters and escape sequences are shown
/// escaped, never sent raw.
pub fn text(n: Option<&Node>) -> String {
    match n {
        None | Some(Node::Null) => "-".into(),
        Some(Node::Str(s)) => crate::svc::text::printable(s).into_owned(),
        Some(Node::Int(i)) => i.to_string(),
        Some(Node::Frac(f)) => format!("{f:.2}"),
        Some(Node::Bool(b)) => b.to_string(),
        Some(other) => other.to_json(false),
    }
}

/// A field of an overview entry, whose keys are full meter names.
fn field<'a>(h: &'a Node, key: &str) -> Option<&'a Node> {
    h.as_dict().and_then(|d| d.get(key)).or_else(|| h.path(key))
}

fn num(n: Option<&Node>) -> f64 {
    n.and_then(Node::as_f64).unwrap_or(0.0)
}

/// A number with `precision` decimals in `width` columns, or `-` when
/// the meter is missing (a host's first cycle has no rates): missing is
/// never shown as 0.
fn number(n: Option<&Node>, precision: usize, width: usize) -> String {
    match n.and_then(Node::as_f64) {
        Some(v) => format!("{v:>width$.precision$}"),
        None => format!("{:>width$}", "-"),
    }
}

/// The sum of two meters, or `-` when both are missing.
fn sum(a: Option<&Node>, b: Option<&Node>, width: usize) -> String {
    match (a.and_then(Node::as_f64), b.and_then(Node::as_f64)) {
        (None, None) => format!("{:>width$}", "-"),
        (x, y) => format!("{:>width$.0}", x.unwrap_or(0.0) + y.unwrap_or(0.0)),
    }
}

/// A percentage with its bar, or `-` when missing.
fn percent_bar(n: Option<&Node>, cells: usize) -> String {
    match n.and_then(Node::as_f64) {
        Some(v) => format!("{v:>5.1} % {}", bar(v, cells)),
        None => format!("{:>5}", "-"),
    }
}

/// A bar of `cells` characters filled to `pct` percent.
pub fn bar(pct: f64, cells: usize) -> String {
    let filled = ((pct.clamp(0.0, 100.0) / 100.0) * cells as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(cells - filled))
}

/// The `host-overview` table: NAME, \[IP\], STATUS, LOAD, \[DISK I/O\], NET
/// I/O, CPU with a bar; IP above 120 columns, disk i/o above 100.
pub fn overview(doc: &Node, cols: usize) -> String {
    let mut rows: Vec<(String, &Node)> = match doc.path("overview") {
        Some(Node::Dict(d)) => d
            .iter()
            .map(|(_, h)| (text(field(h, "hostname")), h))
            .collect(),
        _ => Vec::new(),
    };
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let (ip, disk) = (cols > 120, cols > 100);
    let mut out = String::new();
    let mut header = format!("{:<24}", "NAME");
    if ip {
        header.push_str(&format!(" {:<16}", "IP"));
    }
    header.push_str(&format!(" {:<6} {:>6}", "STATUS", "LOAD"));
    if disk {
        header.push_str(&format!(" {:>12}", "DISK I/O"));
    }
    header.push_str(&format!(" {:>14}  CPU", "NET I/O Kb/s"));
    let _ = writeln!(out, "{}", header.trim_end());
    for (name, h) in rows {
        let mut line = format!("{:<24}", truncate(&name, 24));
        if ip {
            line.push_str(&format!(" {:<16}", text(field(h, "link/ip"))));
        }
        line.push_str(&format!(
            " {:<6} {}",
            text(field(h, "status")),
            number(field(h, "loadavg"), 2, 6)
        ));
        if disk {
            let io = sum(field(h, "io/rdops"), field(h, "io/wrops"), 12);
            line.push_str(&format!(" {io}"));
        }
        let net = sum(field(h, "net/in_kbs"), field(h, "net/out_kbs"), 14);
        line.push_str(&format!(" {net}  {}", percent_bar(field(h, "pcpu"), 12)));
        let _ = writeln!(out, "{line}");
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Meter descriptions and units from the API's `/meter` document.
pub struct Descriptions(Dict);

impl Descriptions {
    /// From `{"meter": {...}}`.
    pub fn new(doc: &Node) -> Descriptions {
        Descriptions(
            doc.path("meter")
                .and_then(Node::as_dict)
                .cloned()
                .unwrap_or_default(),
        )
    }

    fn label(&self, meter: &str) -> (String, String) {
        let d = self.0.get(meter);
        let desc = d.and_then(|d| d.path("description")).and_then(Node::as_str);
        let unit = d
            .and_then(|d| d.path("unit"))
            .and_then(Node::as_str)
            .unwrap_or("");
        (desc.unwrap_or(meter).to_string(), unit.to_string())
    }
}

/// Flatten the host JSON back to meter names: `{"df": [...]}` tables and
/// `{"os": {"kernel": ...}}` groups.
fn flatten(host: &Node) -> Vec<(String, Node)> {
    let mut out = Vec::new();
    if let Node::Dict(d) = host {
        for (k, v) in d.iter() {
            match v {
                Node::Dict(g) => {
                    for (c, x) in g.iter() {
                        out.push((format!("{k}/{c}"), x.clone()));
                    }
                }
                other => out.push((k.to_string(), other.clone())),
            }
        }
    }
    out
}

fn section(out: &mut String, title: &str, rows: &[(&str, String)]) {
    let rows: Vec<&(&str, String)> = rows.iter().filter(|(_, v)| v != "-").collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "---- {title} {}",
        "-".repeat(60usize.saturating_sub(title.len()))
    );
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<18}: {v}");
    }
    out.push('\n');
}

/// A table (array of rows) with the given columns, when present.
fn table(out: &mut String, title: &str, rows: Option<&Node>, columns: &[&str], cols: usize) {
    let Some(Node::Array(rows)) = rows else {
        return;
    };
    if rows.is_empty() {
        return;
    }
    let columns: Vec<String> = if columns.is_empty() {
        let mut all = BTreeSet::new();
        for r in rows {
            if let Node::Dict(d) = r {
                all.extend(d.iter().map(|(k, _)| k.to_string()));
            }
        }
        all.into_iter().collect()
    } else {
        columns.iter().map(|c| c.to_string()).collect()
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match (title, c.as_str()) {
                    ("Storage", "size") => megabytes(r.path(c)),
                    _ => text(r.path(c)),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let _ = writeln!(
        out,
        "---- {title} {}",
        "-".repeat(60usize.saturating_sub(title.len()))
    );
    let line = |cells: Vec<String>| -> String {
        let l: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        truncate(l.join("  ").trim_end(), cols)
    };
    let _ = writeln!(
        out,
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    );
    for row in cells {
        let _ = writeln!(out, "{}", line(row));
    }
    out.push('\n');
}

/// A size in MB (the original's `df/size`) in human units.
fn megabytes(n: Option<&Node>) -> String {
    match n.and_then(Node::as_f64) {
        Some(mb) if mb >= 1024.0 * 1024.0 => format!("{:.1} TB", mb / 1048576.0),
        Some(mb) if mb >= 1024.0 => format!("{:.1} GB", mb / 1024.0),
        Some(mb) => format!("{mb:.0} MB"),
        None => "-".into(),
    }
}

/// The elements of an array as text, separated by `sep`.
fn joined(items: &[Node], sep: &str) -> String {
    items
        .iter()
        .map(|x| text(Some(x)))
        .collect::<Vec<_>>()
        .join(sep)
}

fn duration(secs: f64) -> String {
    let s = secs as i64;
    format!(
        "{}d {:02}:{:02}",
        s / 86400,
        s % 86400 / 3600,
        s % 3600 / 60
    )
}

/// `host-show`: host, resources, process list, storage, other tables and
/// every other meter with its description and unit.
pub fn host(id: &str, h: &Node, desc: &Descriptions, cols: usize) -> String {
    let mut out = String::new();
    let get = |k: &str| h.path(k);
    let address = format!(
        "{} (rtt {} ms, loss {} %)",
        text(get("link/ip")),
        text(get("link/rtt")),
        text(get("link/loss"))
    );
    let cpu = match (get("cpu/count"), get("cpu/model")) {
        (Some(n), Some(Node::Array(m))) => format!("{} x {}", text(Some(n)), text(m.first())),
        (Some(n), m) => format!("{} x {}", text(Some(n)), text(m)),
        _ => "-".into(),
    };
    let problems = match get("problems") {
        Some(Node::Array(p)) if !p.is_empty() => joined(p, ", "),
        _ => "-".into(),
    };
    section(
        &mut out,
        "Host",
        &[
            ("UUID", id.to_string()),
            ("Hostname", text(get("hostname"))),
            ("Address", address),
            ("Agent version", text(get("agent/v"))),
            ("Status", text(get("status"))),
            ("Problems", problems),
            (
                "Uptime",
                get("uptime").map_or("-".into(), |u| duration(num(Some(u)))),
            ),
            ("Hardware", text(get("os/hw"))),
            ("CPU", cpu),
            (
                "OS/Arch",
                format!(
                    "{} {} / {}",
                    text(get("os/kernel")),
                    text(get("os/version")),
                    text(get("os/arch"))
                ),
            ),
            ("Distribution", text(get("os/distro"))),
        ],
    );
    let load = match get("loadavg") {
        Some(Node::Array(l)) => joined(l, " "),
        _ => "-".into(),
    };
    let megabytes = |k: &str| match get(k).and_then(Node::as_f64) {
        Some(kb) => format!("{:.0} MB", kb / 1024.0),
        None => "-".into(),
    };
    section(
        &mut out,
        "Resources",
        &[
            (
                "Processes",
                format!(
                    "{} total, {} running, {} stuck",
                    text(get("proc/total")),
                    text(get("proc/run")),
                    text(get("proc/stuck"))
                ),
            ),
            ("Load average", load),
            ("CPU", percent_bar(get("pcpu"), 30)),
            (
                "CPU iowait",
                match get("io/pwait").and_then(Node::as_f64) {
                    Some(w) => format!("{w:.1} %"),
                    None => "-".into(),
                },
            ),
            (
                "RAM",
                format!(
                    "{} total, {} free",
                    megabytes("mem/total"),
                    megabytes("mem/free")
                ),
            ),
            (
                "Network",
                format!(
                    "in {} Kb/s ({} pps), out {} Kb/s ({} pps)",
                    text(get("net/in_kbs")),
                    text(get("net/in_pps")),
                    text(get("net/out_kbs")),
                    text(get("net/out_pps"))
                ),
            ),
            (
                "Disk i/o",
                format!(
                    "{} rdops, {} wrops",
                    text(get("io/rdops")),
                    text(get("io/wrops"))
                ),
            ),
        ],
    );
    table(
        &mut out,
        "Process List",
        get("top"),
        &["user", "pid", "pcpu", "pmem", "name"],
        cols,
    );
    table(
        &mut out,
        "Storage",
        get("df"),
        &["device", "size", "fs", "pused", "mount"],
        cols,
    );
    let shown: BTreeSet<&str> = [
        "hostname", "link", "agent", "status", "problems", "uptime", "os", "cpu", "loadavg",
        "pcpu", "io", "mem", "net", "proc", "top", "df", "badness",
    ]
    .into_iter()
    .collect();
    if let Node::Dict(d) = h {
        for (k, v) in d.iter() {
            if !shown.contains(k)
                && matches!(v, Node::Array(rows) if rows.iter().all(|r| matches!(r, Node::Dict(_))))
            {
                table(&mut out, k, Some(v), &[], cols);
            }
        }
    }
    let mut misc = Vec::new();
    for (name, v) in flatten(h) {
        let top = name.split('/').next().unwrap_or("");
        if shown.contains(top)
            || matches!(v, Node::Array(ref rows) if rows.iter().any(|r| matches!(r, Node::Dict(_))))
        {
            continue;
        }
        let (label, unit) = desc.label(&name);
        misc.push((
            label,
            format!("{} {unit}", text(Some(&v))).trim_end().to_string(),
        ));
    }
    if !misc.is_empty() {
        let _ = writeln!(out, "---- Misc {}", "-".repeat(56));
        for (k, v) in misc {
            let _ = writeln!(out, "{:<30}: {v}", truncate(&k, 30));
        }
        out.push('\n');
    }
    out
}

/// A terminal graph of `data` (left to right, oldest first), `height`
/// rows high, with its title and scale.
pub fn graph(title: &str, unit: &str, data: &[f64], max: f64, height: usize) -> String {
    let max = if max > 0.0 { max } else { 1.0 };
    let mut out = format!("{title} ({unit}, max {max:.1})\n");
    for row in (0..height).rev() {
        let level = max * (row as f64 + 0.5) / height as f64;
        let line: String = data
            .iter()
            .map(|v| if *v >= level { '#' } else { ' ' })
            .collect();
        let _ = writeln!(out, "|{}", line.trim_end());
    }
    let _ = writeln!(out, "+{}", "-".repeat(data.len()));
    out
}
