//! `/metrics`: the collector's counters and the hosts by tenant and
//! status in the Prometheus text format.

use super::error::ApiError;
use super::input::read_json;
use super::routes::Api;
use crate::conf::Node;
use crate::db::published::{METRICS_FILE, SUMMARY_FILE};

impl Api {
    /// The collector's metrics and the hosts by status per tenant, in the
    /// Prometheus text format.
    pub(super) fn prometheus(&self) -> Result<String, ApiError> {
        use std::fmt::Write;
        let mut out = String::new();
        let metrics = read_json(&self.db.root().join(METRICS_FILE))?;
        let int = |key: &str| metrics.path(key).and_then(Node::as_int);
        let counters = [
            (
                "received",
                "opticon_collector_received_total",
                "counter",
                "Datagrams received.",
            ),
            (
                "accepted",
                "opticon_collector_accepted_total",
                "counter",
                "Datagrams accepted.",
            ),
            (
                "queue_drops",
                "opticon_collector_queue_drops_total",
                "counter",
                "Datagrams dropped at the full receive queue.",
            ),
            (
                "machine_udp_rcvbuf_errors",
                "opticon_kernel_udp_rcvbuf_errors_total",
                "counter",
                "UDP receive-buffer overflows on the whole machine (every socket), counted by the kernel.",
            ),
            (
                "auth_repeats",
                "opticon_collector_auth_repeats_total",
                "counter",
                "Auth datagrams agents sent again for a live session (not rejections).",
            ),
            (
                "queue_bytes",
                "opticon_collector_queue_bytes",
                "gauge",
                "Bytes waiting in the receive queue.",
            ),
            (
                "queue_depth",
                "opticon_collector_queue_depth",
                "gauge",
                "Datagrams waiting in the receive queue.",
            ),
            (
                "sessions",
                "opticon_collector_sessions",
                "gauge",
                "Open agent sessions.",
            ),
        ];
        for (key, name, kind, help) in counters {
            if let Some(v) = int(key) {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
                );
            }
        }
        if let Some(age) = self.collector_age() {
            let up = u8::from(age <= self.stale_after());
            let _ = write!(
                out,
                "# HELP opticon_collector_metrics_age_seconds Seconds since the collector last published (each write cycle).\n\
                 # TYPE opticon_collector_metrics_age_seconds gauge\nopticon_collector_metrics_age_seconds {age}\n\
                 # HELP opticon_collector_up 1 while the collector publishes at least every two write cycles, else 0 (its data is stale).\n\
                 # TYPE opticon_collector_up gauge\nopticon_collector_up {up}\n"
            );
        }
        if let Some(ks) = &self.keystone {
            use std::sync::atomic::Ordering::Relaxed;
            for (name, help, v) in [
                (
                    "validations",
                    "Tokens validated at Keystone.",
                    &ks.stats.validations,
                ),
                (
                    "cache_hits",
                    "Keystone tokens answered from the cache.",
                    &ks.stats.cache_hits,
                ),
                ("refused", "Keystone tokens refused.", &ks.stats.refused),
                (
                    "unavailable",
                    "Calls that found Keystone unreachable or failing.",
                    &ks.stats.unavailable,
                ),
            ] {
                let _ = write!(
                    out,
                    "# HELP opticon_api_keystone_{name}_total {help}\n# TYPE opticon_api_keystone_{name}_total counter\nopticon_api_keystone_{name}_total {}\n",
                    v.load(Relaxed)
                );
            }
        }
        if let Some(Node::Dict(reasons)) = metrics.path("rejected") {
            out.push_str("# HELP opticon_collector_rejected_total Datagrams rejected, by reason.\n# TYPE opticon_collector_rejected_total counter\n");
            for (reason, n) in reasons.iter() {
                let _ = writeln!(
                    out,
                    "opticon_collector_rejected_total{{reason=\"{reason}\"}} {}",
                    n.as_int().unwrap_or(0)
                );
            }
        }
        if let Some(Node::Dict(tenants)) = metrics.path("tenants") {
            out.push_str("# HELP opticon_collector_tenant_refused_total Datagrams refused over a tenant's limits, by limit.\n# TYPE opticon_collector_tenant_refused_total counter\n");
            for (t, u) in tenants.iter() {
                for (key, limit) in [
                    ("refused_hosts", "hosts"),
                    ("refused_new_hosts", "new_hosts"),
                    ("refused_bytes", "bytes"),
                ] {
                    let n = u.path(key).and_then(Node::as_int).unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "opticon_collector_tenant_refused_total{{tenant=\"{t}\",limit=\"{limit}\"}} {n}"
                    );
                }
            }
        }
        if let Some(Node::Dict(targets)) = metrics.path("export") {
            export_metrics(&mut out, targets);
        }
        if let Some(ms) = metrics.path("write_cycle_ms").and_then(Node::as_f64) {
            let _ = write!(out, "# HELP opticon_collector_write_cycle_seconds Duration of the last write cycle.\n# TYPE opticon_collector_write_cycle_seconds gauge\nopticon_collector_write_cycle_seconds {}\n", ms / 1e3);
        }
        // The API's own counters.
        let st = &self.shared.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (name, kind, help, v) in [
            (
                "opticon_api_requests_total",
                "counter",
                "Requests answered.",
                load(&st.requests),
            ),
            (
                "opticon_api_connections",
                "gauge",
                "Open connections.",
                load(&st.open),
            ),
            (
                "opticon_api_refused_connections_total",
                "counter",
                "Connections refused over the connection limits.",
                load(&st.refused),
            ),
            (
                "opticon_api_timeouts_total",
                "counter",
                "Requests or responses that missed their deadline.",
                load(&st.timeouts),
            ),
            (
                "opticon_api_accept_failures_total",
                "counter",
                "Failed accepts (most often: no descriptor left).",
                load(&st.accept_failures),
            ),
            (
                "opticon_api_login_refused_total",
                "counter",
                "Logins refused by the failed-login limit.",
                load(&self.shared.logins.refused),
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        }
        out.push_str(
            "# HELP opticon_hosts Hosts by tenant and status.\n# TYPE opticon_hosts gauge\n",
        );
        for t in self.db.tenant_ids()? {
            let summary = read_json(&self.db.tenant_dir(t).join(SUMMARY_FILE))?;
            for (key, status) in [
                ("ok", "OK"),
                ("warning", "WARN"),
                ("alert", "ALERT"),
                ("critical", "CRIT"),
                ("stale", "STALE"),
            ] {
                let n = summary.path(key).and_then(Node::as_int).unwrap_or(0);
                let _ = writeln!(
                    out,
                    "opticon_hosts{{tenant=\"{t}\",status=\"{status}\"}} {n}"
                );
            }
        }
        Ok(out)
    }
}

/// Each export target's counters, as the collector published them.
fn export_metrics(out: &mut String, targets: &crate::conf::Dict) {
    use std::fmt::Write;
    let families: [(&str, &str, &str, &str, f64); 9] = [
        (
            "queued",
            "opticon_export_samples_queued_total",
            "counter",
            "Samples written to the target's spool.",
            1.0,
        ),
        (
            "waiting",
            "opticon_export_samples_waiting",
            "gauge",
            "Samples in the spool, not yet delivered.",
            1.0,
        ),
        (
            "sent",
            "opticon_export_samples_sent_total",
            "counter",
            "Samples the engine acknowledged.",
            1.0,
        ),
        (
            "requests",
            "opticon_export_requests_total",
            "counter",
            "Requests sent (retries included).",
            1.0,
        ),
        (
            "retried",
            "opticon_export_requests_retried_total",
            "counter",
            "Requests retried after a 5xx, a 429 or no answer.",
            1.0,
        ),
        (
            "spool_bytes",
            "opticon_export_spool_bytes",
            "gauge",
            "Bytes of the target's spool on disk.",
            1.0,
        ),
        (
            "last_success",
            "opticon_export_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last delivered request (0: none yet).",
            1.0,
        ),
        (
            "latency_ms",
            "opticon_export_request_seconds",
            "gauge",
            "Duration of the last answered request.",
            1e-3,
        ),
        (
            "mean_latency_ms",
            "opticon_export_request_mean_seconds",
            "gauge",
            "Mean duration of answered requests.",
            1e-3,
        ),
    ];
    for (key, name, kind, help, scale) in families {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (target, t) in targets.iter() {
            let v = t.path(key).and_then(Node::as_f64).unwrap_or(0.0) * scale;
            let _ = writeln!(out, "{name}{{target=\"{target}\"}} {v}");
        }
    }
    out.push_str("# HELP opticon_export_samples_dropped_total Samples not delivered, by reason.\n# TYPE opticon_export_samples_dropped_total counter\n");
    for (target, t) in targets.iter() {
        if let Some(Node::Dict(reasons)) = t.path("dropped") {
            for (reason, n) in reasons.iter() {
                let _ = writeln!(
                    out,
                    "opticon_export_samples_dropped_total{{target=\"{target}\",reason=\"{reason}\"}} {}",
                    n.as_int().unwrap_or(0)
                );
            }
        }
    }
}
