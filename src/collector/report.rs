//! What the collector publishes each write cycle for the API and for
//! operators: per-tenant overview and summary, and its own metrics.

use crate::conf::{Dict, Node};
use crate::model::json::value_node;
use crate::model::{HostMeters, MeterValue};

/// The original's overview entry of a host: every scalar meter keyed by
/// its full name, plus the first load average.
pub fn overview_entry(meters: &HostMeters) -> Node {
    let mut d = Dict::new();
    for (name, meter) in meters.iter() {
        match &meter.value {
            MeterValue::Scalar(_) => d.insert(name.as_str(), value_node(&meter.value)),
            MeterValue::Array(_) if name.as_str() == "loadavg" => {
                if let Some(first) = meter.value.element(0) {
                    d.insert("loadavg", value_node(&MeterValue::Scalar(first.to_owned())));
                }
            }
            _ => {}
        }
    }
    Node::Dict(d)
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

/// The tenant summary over its hosts' meters.
pub fn summary<'a>(hosts: impl Iterator<Item = &'a HostMeters> + Clone) -> Node {
    let number = |m: &HostMeters, name: &str| {
        m.get(name)
            .and_then(|x| x.value.element(0))
            .and_then(|e| e.as_f64())
    };
    let mut d = Dict::new();
    for (key, fold) in SUMMARY {
        let value = match fold {
            Fold::Avg(meter) => {
                let v: Vec<f64> = hosts.clone().filter_map(|m| number(m, meter)).collect();
                let avg = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
                Node::Frac((avg * 100.0).round() / 100.0)
            }
            Fold::Total(meter) => Node::Int(hosts.clone().filter_map(|m| number(m, meter)).sum::<f64>() as i64),
            Fold::Count(meter, want) => Node::Int(
                hosts
                    .clone()
                    .filter(|m| matches!(m.get(meter).and_then(|x| x.value.element(0)), Some(crate::model::ScalarRef::Str(s)) if s == want))
                    .count() as i64,
            ),
        };
        d.insert(key, value);
    }
    Node::Dict(d)
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
        let o = overview_entry(&hosts[0]);
        assert_eq!(o.path("loadavg"), Some(&Node::Frac(0.5)));
        assert_eq!(o.as_dict().unwrap().get("net/in_kbs"), Some(&Node::Int(10)));
    }
}
