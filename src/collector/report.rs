//! What the collector publishes each write cycle for the API and for
//! operators: per-tenant overview and summary, and its own metrics.

use crate::conf::write::write_json_string;
use crate::conf::{Dict, Node};
use crate::db::published::{OVERVIEW_FILE, SUMMARY_FILE};
use crate::db::{DbError, Replacement};
use crate::model::json::write_scalar;
use crate::model::{HostMeters, MeterValue, ScalarRef};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The original's overview entry of a host, as JSON text: every scalar
/// meter keyed by its full name, plus the first load average and the
/// list of problems, and `seen`: the last time the agent's own meters
/// were updated (what a dashboard shows as "last seen"). Written
/// straight from the meters (no document tree): the collector writes one
/// per host per cycle.
pub fn overview_entry(meters: &HostMeters, out: &mut String) {
    out.push('{');
    let mut first = true;
    for (name, meter) in meters.iter() {
        // The problems too (a dashboard searches them), as their list.
        if name.as_str() == "problems" && matches!(meter.value, MeterValue::Array(_)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str("\"problems\":");
            out.push_str(&crate::model::json::value_node(&meter.value).to_json(false));
            continue;
        }
        let value = match &meter.value {
            MeterValue::Scalar(s) => s.as_ref(),
            MeterValue::Array(_) if name.as_str() == "loadavg" => match meter.value.element(0) {
                Some(v) => v,
                None => continue,
            },
            _ => continue,
        };
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(out, name.as_str());
        out.push(':');
        write_scalar(out, value);
    }
    let seen = meters
        .iter()
        .filter(|(n, _)| !super::store::OWN_METERS.contains(&n.as_str()))
        .map(|(_, m)| m.updated)
        .max();
    if let Some(seen) = seen {
        out.push_str(if first { "\"seen\":" } else { ",\"seen\":" });
        crate::conf::write::write_json_i64(out, seen);
    }
    out.push('}');
}

/// How a summary entry folds one meter over a tenant's hosts.
enum Fold {
    Avg(&'static str),
    Total(&'static str),
    Count(&'static str, &'static str),
}

/// The original's default summary (`defsummary.rsrc`).
const SUMMARY: [(&str, Fold); 9] = [
    ("cpu", Fold::Avg("pcpu")),
    ("warning", Fold::Count("status", "WARN")),
    ("alert", Fold::Count("status", "ALERT")),
    ("critical", Fold::Count("status", "CRIT")),
    ("stale", Fold::Count("status", "STALE")),
    ("ok", Fold::Count("status", "OK")),
    ("netin", Fold::Total("net/in_kbs")),
    ("netout", Fold::Total("net/out_kbs")),
    ("updates", Fold::Total("pkgm/inq")),
];

/// A tenant's summary, folded one host at a time.
#[derive(Default)]
pub struct Summary {
    /// Per [`SUMMARY`] entry: the sum and the number of hosts that had it.
    folds: [(f64, usize); SUMMARY.len()],
}

impl Summary {
    /// One host's part of a summary.
    pub fn of(meters: &HostMeters) -> Summary {
        let mut s = Summary::default();
        s.add(meters);
        s
    }

    /// Fold in another summary's hosts.
    pub fn merge(&mut self, other: &Summary) {
        for ((sum, n), (other_sum, other_n)) in self.folds.iter_mut().zip(&other.folds) {
            *sum += other_sum;
            *n += other_n;
        }
    }

    /// Fold one host's meters in.
    pub fn add(&mut self, meters: &HostMeters) {
        for ((_, fold), (sum, n)) in SUMMARY.iter().zip(self.folds.iter_mut()) {
            let (meter, want) = match fold {
                Fold::Avg(m) | Fold::Total(m) => (*m, None),
                Fold::Count(m, w) => (*m, Some(*w)),
            };
            let element = meters.get(meter).and_then(|x| x.value.element(0));
            match (element, want) {
                (Some(ScalarRef::Str(s)), Some(want)) if s == want => *n += 1,
                (Some(e), None) => {
                    if let Some(v) = e.as_f64() {
                        *sum += v;
                        *n += 1;
                    }
                }
                _ => {}
            }
        }
    }

    /// The summary document, in the original's shape.
    pub fn to_node(&self) -> Node {
        let mut d = Dict::new();
        for ((key, fold), (sum, n)) in SUMMARY.iter().zip(self.folds.iter()) {
            let value = match fold {
                Fold::Avg(_) => {
                    let avg = if *n == 0 { 0.0 } else { sum / *n as f64 };
                    Node::Frac((avg * 100.0).round() / 100.0)
                }
                Fold::Total(_) => Node::Int(*sum as i64),
                Fold::Count(..) => Node::Int(*n as i64),
            };
            d.insert(*key, value);
        }
        Node::Dict(d)
    }
}

/// The tenant summary over its hosts' meters.
pub fn summary<'a>(hosts: impl Iterator<Item = &'a HostMeters>) -> Node {
    let mut s = Summary::default();
    hosts.for_each(|m| s.add(m));
    s.to_node()
}

/// A tenant's overview and summary files, written one host at a time so
/// that a tenant of 100,000 hosts never needs its overview in memory.
pub struct TenantReport {
    overview: Replacement,
    /// One host's entry, reused.
    line: String,
    hosts: usize,
    summary: Summary,
    dir: PathBuf,
}

impl TenantReport {
    /// Start the files of the tenant whose directory is `dir`.
    pub fn start(dir: &Path) -> Result<TenantReport, DbError> {
        let mut overview = Replacement::create(&dir.join(OVERVIEW_FILE))?;
        overview.write(b"{\"overview\":{")?;
        Ok(TenantReport {
            overview,
            line: String::new(),
            hosts: 0,
            summary: Summary::default(),
            dir: dir.to_path_buf(),
        })
    }

    /// Add one host: its [`overview_entry`] and its [`Summary::of`]
    /// (made where its meters are).
    pub fn add(&mut self, host: Uuid, entry: &str, summary: &Summary) -> Result<(), DbError> {
        self.summary.merge(summary);
        let sep = if self.hosts == 0 { "" } else { "," };
        self.hosts += 1;
        self.line.clear();
        let _ = write!(self.line, "{sep}\n\"{host}\":");
        self.line.push_str(entry);
        self.overview.write(self.line.as_bytes())
    }

    /// Replace the old files with the new ones.
    pub fn finish(mut self) -> Result<(), DbError> {
        self.overview.write(b"\n}}\n")?;
        self.overview.commit()?;
        crate::db::write_replace(
            &self.dir.join(SUMMARY_FILE),
            self.summary.to_node().to_json(true).as_bytes(),
        )
    }
}

/// Receive-buffer overflows the kernel counted for UDP (`/proc/net/snmp`).
pub fn kernel_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let i = names.iter().position(|n| *n == "RcvbufErrors")?;
    values.get(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MeterName, Scalar};

    fn host(pcpu: f64, status: &str, netin: i64) -> HostMeters {
        let mut h = HostMeters::new();
        let mut set = |n: &str, v| h.set(MeterName::new(n).unwrap(), v, 0).unwrap();
        set("pcpu", MeterValue::Scalar(Scalar::Frac(pcpu)));
        set("status", MeterValue::Scalar(Scalar::Str(status.into())));
        set("net/in_kbs", MeterValue::Scalar(Scalar::Int(netin)));
        set(
            "loadavg",
            MeterValue::Array(crate::model::Array::Frac(vec![0.5, 0.2, 0.1])),
        );
        h
    }

    #[test]
    fn summary_and_overview() {
        let hosts = [
            host(80.0, "OK", 10),
            host(60.0, "ERROR", 5),
            host(40.0, "WARN", 0),
            host(60.0, "OK", 1),
        ];
        let s = summary(hosts.iter());
        assert_eq!(s.path("cpu"), Some(&Node::Frac(60.0)));
        assert_eq!(s.path("ok"), Some(&Node::Int(2)));
        assert_eq!(s.path("warning"), Some(&Node::Int(1)));
        assert_eq!(s.path("netin"), Some(&Node::Int(16)));
        let mut text = String::new();
        overview_entry(&hosts[0], &mut text);
        let o = crate::conf::parse(&text).unwrap();
        assert_eq!(o.get("loadavg"), Some(&Node::Frac(0.5)));
        assert_eq!(o.get("net/in_kbs"), Some(&Node::Int(10)));
    }
}
