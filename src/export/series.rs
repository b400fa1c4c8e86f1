//! The series model every export target shares: which meters of a
//! record become which series, under which labels.
//!
//! A numeric meter `g/leaf` is the series `opticon_g_leaf`; a meter
//! without a group is `opticon_leaf`. Arrays of a group are a table:
//! each row is one series per numeric column, labelled by the group's
//! string columns (`df`: `device`, `mount`) or, without any, by `index`.
//! String scalars are the labels of one `opticon_host_info` series; the
//! collector's `status` is `opticon_status{status="WARN"} 1` and
//! `opticon_status_code`.

use crate::model::{Array, HostMeters, MeterValue, Scalar, Status};
use std::borrow::Cow;
use std::collections::HashMap;

/// Groups left out unless a target's `include` names them: process and
/// user names churn into series without bound.
pub const OFF_BY_DEFAULT: [&str; 2] = ["top", "who"];

/// Labels every series of a host carries; a table column of the same
/// name is exported as `meter_<name>` instead.
pub const HOST_LABELS: [&str; 3] = ["host", "hostname", "tenant"];

/// The numeric value of a status, for `opticon_status_code`.
pub fn status_code(status: Status) -> f64 {
    match status {
        Status::Ok => 0.0,
        Status::Warn => 1.0,
        Status::Alert => 2.0,
        Status::Crit => 3.0,
        Status::Stale => 4.0,
        Status::Unset => -1.0,
    }
}

/// Which meters a target exports and how its tables are labelled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesRules {
    /// Meters or groups exported (empty: all but [`OFF_BY_DEFAULT`]).
    pub include: Vec<String>,
    /// Meters or groups never exported.
    pub exclude: Vec<String>,
    /// A group's label columns, where its string columns are not right
    /// (an empty list labels rows by index).
    pub rows: HashMap<String, Vec<String>>,
}

fn names(list: &[String], meter: &str) -> bool {
    let group = meter.split_once('/').map_or(meter, |(g, _)| g);
    list.iter().any(|n| n == meter || n == group)
}

impl SeriesRules {
    /// Whether the meter called `meter` is exported.
    pub fn wants(&self, meter: &str) -> bool {
        let included = if self.include.is_empty() {
            let group = meter.split_once('/').map_or(meter, |(g, _)| g);
            !OFF_BY_DEFAULT.contains(&group)
        } else {
            names(&self.include, meter)
        };
        included && !names(&self.exclude, meter)
    }
}

/// A meter name's part as a Prometheus name: `.`, `-` and `@` become
/// `_`, and a leading digit gets a `_` before it.
pub fn sanitize(part: &str) -> Cow<'_, str> {
    let clean = part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        || (part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !part.starts_with(|c: char| c.is_ascii_digit()));
    if clean {
        return Cow::Borrowed(part);
    }
    let mut s = String::with_capacity(part.len() + 1);
    if part.starts_with(|c: char| c.is_ascii_digit()) {
        s.push('_');
    }
    s.extend(
        part.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    Cow::Owned(s)
}

/// The metric name of `group` and `leaf` (`opticon_df_pused`).
pub fn metric_name(group: &str, leaf: &str) -> String {
    let mut s = String::with_capacity(9 + group.len() + leaf.len());
    s.push_str("opticon_");
    if !group.is_empty() {
        s.push_str(&sanitize(group));
        s.push('_');
    }
    s.push_str(&sanitize(leaf));
    s
}

/// One row of a record: its group (the measurement), the labels it adds
/// to the host's, and its numeric fields (the leaves).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// The group (`df`), `""` for meters without one.
    pub group: &'a str,
    /// Labels beyond the host's, sorted by name.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Leaf names and values.
    pub fields: Vec<(&'a str, f64)>,
}

fn label_name(leaf: &str) -> Cow<'_, str> {
    let name = sanitize(leaf);
    if HOST_LABELS.contains(&name.as_ref()) || name == "index" || name.starts_with("__") {
        Cow::Owned(format!("meter_{name}"))
    } else {
        name
    }
}

/// The rows of one record, in name order, then the host's info row.
pub fn rows<'a>(meters: &'a HostMeters, rules: &SeriesRules, out: &mut Vec<Row<'a>>) {
    let mut info: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    let entries: Vec<(&'a str, &'a MeterValue)> = meters
        .iter()
        .map(|(n, m)| (n.as_str(), &m.value))
        .filter(|(n, _)| rules.wants(n))
        .collect();
    let mut i = 0;
    while i < entries.len() {
        let group = entries[i].0.split_once('/').map_or("", |(g, _)| g);
        let mut end = i + 1;
        while end < entries.len()
            && !group.is_empty()
            && entries[end].0.split_once('/').map(|(g, _)| g) == Some(group)
        {
            end += 1;
        }
        group_rows(group, &entries[i..end], rules, &mut info, out);
        i = end;
    }
    if !info.is_empty() {
        info.sort();
        out.push(Row {
            group: "host",
            labels: info,
            fields: vec![("info", 1.0)],
        });
    }
}

fn leaf(name: &str) -> &str {
    name.split_once('/').map_or(name, |(_, l)| l)
}

fn group_rows<'a>(
    group: &'a str,
    entries: &[(&'a str, &'a MeterValue)],
    rules: &SeriesRules,
    info: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    out: &mut Vec<Row<'a>>,
) {
    let mut scalars = Row {
        group,
        labels: Vec::new(),
        fields: Vec::new(),
    };
    let mut columns: Vec<(&'a str, &'a [String])> = Vec::new();
    let mut numeric: Vec<(&'a str, &'a Array)> = Vec::new();
    for (name, value) in entries {
        match value {
            MeterValue::Scalar(Scalar::Int(v)) => scalars.fields.push((leaf(name), *v as f64)),
            MeterValue::Scalar(Scalar::Frac(v)) => scalars.fields.push((leaf(name), *v)),
            MeterValue::Scalar(Scalar::Str(s)) if *name == "status" => {
                out.push(Row {
                    group: "",
                    labels: vec![(Cow::Borrowed("status"), Cow::Borrowed(s.as_str()))],
                    fields: vec![("status", 1.0)],
                });
                out.push(Row {
                    group: "status",
                    labels: Vec::new(),
                    fields: vec![("code", status_code(Status::parse(s)))],
                });
            }
            // The hostname is a label of every series already.
            MeterValue::Scalar(Scalar::Str(_)) if *name == "hostname" => {}
            MeterValue::Scalar(Scalar::Str(s)) => {
                let label = match group {
                    "" => sanitize(name),
                    g => Cow::Owned(format!("{}_{}", sanitize(g), sanitize(leaf(name)))),
                };
                info.push((label, Cow::Borrowed(s.as_str())));
            }
            MeterValue::Array(Array::Str(s)) => columns.push((leaf(name), s)),
            MeterValue::Array(a) => numeric.push((leaf(name), a)),
            MeterValue::Null => {}
        }
    }
    if !scalars.fields.is_empty() {
        out.push(scalars);
    }
    if numeric.is_empty() {
        return;
    }
    if let Some(chosen) = rules.rows.get(group) {
        columns.retain(|(leaf, _)| chosen.iter().any(|c| c == leaf));
    }
    let len = numeric.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
    for row in 0..len {
        let mut labels: Vec<(Cow<'a, str>, Cow<'a, str>)> = if columns.is_empty() {
            vec![(Cow::Borrowed("index"), Cow::Owned(row.to_string()))]
        } else {
            columns
                .iter()
                .map(|(leaf, values)| {
                    let v = values.get(row).map_or("", String::as_str);
                    (label_name(leaf), Cow::Borrowed(v))
                })
                .collect()
        };
        labels.sort();
        let fields = numeric
            .iter()
            .filter_map(|(leaf, a)| a.get(row).and_then(|v| v.as_f64()).map(|v| (*leaf, v)))
            .collect();
        out.push(Row {
            group,
            labels,
            fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MeterName;

    fn host() -> HostMeters {
        let mut m = HostMeters::new();
        let mut set = |n: &str, v: MeterValue| m.set(MeterName::new(n).unwrap(), v, 1).unwrap();
        set("hostname", MeterValue::Scalar(Scalar::Str("web1".into())));
        set("pcpu", MeterValue::Scalar(Scalar::Frac(12.5)));
        set("status", MeterValue::Scalar(Scalar::Str("WARN".into())));
        set("os/kernel", MeterValue::Scalar(Scalar::Str("Linux".into())));
        set(
            "df/device",
            MeterValue::Array(Array::Str(vec!["/dev/sda1".into(), "/dev/sdb".into()])),
        );
        set(
            "df/mount",
            MeterValue::Array(Array::Str(vec!["/".into(), "/srv".into()])),
        );
        set("df/pused", MeterValue::Array(Array::Frac(vec![40.0, 90.5])));
        set("df/size", MeterValue::Array(Array::Int(vec![100, 2000])));
        set("top/pid", MeterValue::Array(Array::Int(vec![1, 2])));
        set("io/rdops", MeterValue::Array(Array::Int(vec![3])));
        m
    }

    #[test]
    fn tables_rows_info_and_status() {
        let m = host();
        let mut out = Vec::new();
        rows(&m, &SeriesRules::default(), &mut out);
        let names: Vec<String> = out
            .iter()
            .flat_map(|r| r.fields.iter().map(|(l, _)| metric_name(r.group, l)))
            .collect();
        assert_eq!(
            names,
            [
                "opticon_df_pused",
                "opticon_df_size",
                "opticon_df_pused",
                "opticon_df_size",
                "opticon_io_rdops",
                "opticon_pcpu",
                "opticon_status",
                "opticon_status_code",
                "opticon_host_info"
            ]
        );
        assert_eq!(
            out[1].labels,
            [
                (Cow::Borrowed("device"), Cow::Borrowed("/dev/sdb")),
                (Cow::Borrowed("mount"), Cow::Borrowed("/srv"))
            ]
        );
        assert_eq!(out[1].fields, [("pused", 90.5), ("size", 2000.0)]);
        assert_eq!(out[2].labels[0].0, "index");
        assert_eq!(out[5].fields, [("code", 1.0)]);
        assert_eq!(out[6].labels[0].1, "Linux");
    }

    #[test]
    fn include_exclude_and_row_labels() {
        let m = host();
        let rules = SeriesRules {
            include: vec!["top".into(), "df/pused".into(), "df/mount".into()],
            exclude: vec![],
            rows: HashMap::from([("top".to_string(), vec![])]),
        };
        let mut out = Vec::new();
        rows(&m, &rules, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].labels.len(), 1);
        assert_eq!(out[0].labels[0].0, "mount");
        assert_eq!(out[2].group, "top");
        assert!(SeriesRules::default().wants("df/pused"));
        assert!(!SeriesRules::default().wants("who/user"));
        assert_eq!(sanitize("9a.b-c"), "_9a_b_c");
    }
}
