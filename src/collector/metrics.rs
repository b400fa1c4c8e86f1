//! What the collector publishes about itself each write cycle: its
//! counters (`collector.metrics`, read by `/metrics` and `--metrics`) and
//! its open sessions without keys (`collector.sessions`, for `/session`).

use super::state::Collector;
use super::{receive, report};
use crate::conf::{Dict, Node};
use crate::db::published::{METRICS_FILE, SESSIONS_FILE};
use crate::model::{unix_now, Status};
use crate::svc;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

impl Collector {
    /// The sessions `ids` that are still open as `collector.sessions`
    /// lists them, added to `lines`: taken on the collector's thread (two
    /// look-ups each) so that [`write_sessions`] can format and write
    /// them on another (at a million hosts that is 250 MB, seconds in
    /// which the receive queue would go unread), and a slice of the
    /// sessions at a time, the queue read between slices (a million
    /// hosts' snapshot at once took 1.0-3.2 s and dropped up to 54,593
    /// datagrams).
    pub(super) fn session_lines(&self, ids: &[u64], now: i64, lines: &mut Vec<SessionLine>) {
        lines.extend(ids.iter().filter_map(|id| {
            let s = self.sessions.get(id)?;
            let h = self.hosts.get(&(s.tenant, s.host))?;
            Some(SessionLine {
                tenant: s.tenant,
                host: s.host,
                session: *id,
                seen: now - h.last_seen.elapsed().as_secs() as i64,
                serial: s.window.highest(),
                remote: h.remote,
            })
        }));
    }

    /// Datagrams received and rejected by reason, including those the
    /// receive thread refused before queueing.
    pub fn totals(&self) -> (u64, Vec<(&'static str, u64)>) {
        let mut rejected = self.counters.rejected.clone();
        let mut received = self.counters.received;
        if let Some(q) = &self.queue {
            for (reason, n) in receive::EARLY_REASONS.iter().zip(q.early.iter()) {
                let n = n.load(std::sync::atomic::Ordering::Relaxed);
                if n > 0 {
                    *rejected.entry(reason).or_default() += n;
                    received += n;
                }
            }
        }
        let mut reasons: Vec<_> = rejected.into_iter().collect();
        reasons.sort();
        (received, reasons)
    }

    /// Write the collector's own metrics, for the API and for
    /// `opticon-collector --metrics`.
    pub(super) fn publish_metrics(&self, cycle: Duration, by_status: &HashMap<&str, i64>) {
        let (received, reasons) = self.totals();
        let mut m = Dict::new();
        m.insert("time", Node::Int(unix_now()));
        // Readers judge the age of everything published by it.
        m.insert("interval", Node::Int(self.cfg.write_interval as i64));
        m.insert("received", Node::Int(received as i64));
        m.insert("accepted", Node::Int(self.counters.accepted as i64));
        let mut rejected = Dict::new();
        for (reason, n) in reasons {
            rejected.insert(reason, Node::Int(n as i64));
        }
        m.insert("rejected", Node::Dict(rejected));
        m.insert("sessions", Node::Int(self.sessions.len() as i64));
        let mut statuses = Dict::new();
        for st in Status::ALL.map(Status::as_str) {
            statuses.insert(st, Node::Int(by_status.get(st).copied().unwrap_or(0)));
        }
        m.insert("hosts", Node::Dict(statuses));
        m.insert(
            "write_cycle_ms",
            Node::Frac((cycle.as_secs_f64() * 1e6).round() / 1e3),
        );
        m.insert("rcvbuf", Node::Int(self.rcvbuf as i64));
        if let Some(q) = &self.queue {
            use std::sync::atomic::Ordering;
            m.insert(
                "queue_depth",
                Node::Int(q.depth.load(Ordering::Relaxed) as i64),
            );
            m.insert(
                "queue_drops",
                Node::Int(q.drops.load(Ordering::Relaxed) as i64),
            );
        }
        m.insert("auth_repeats", Node::Int(self.counters.auth_repeats as i64));
        // Each tenant's hosts and what its limits refused.
        let mut tenants = Dict::new();
        let mut ids: Vec<_> = self.usage.keys().copied().collect();
        ids.sort_unstable();
        for t in ids {
            let u = &self.usage[&t];
            let mut d = Dict::new();
            d.insert("hosts", Node::Int(u.hosts as i64));
            d.insert("refused_hosts", Node::Int(u.refused.hosts as i64));
            d.insert("refused_new_hosts", Node::Int(u.refused.new_hosts as i64));
            d.insert("refused_bytes", Node::Int(u.refused.bytes as i64));
            tenants.insert(t.to_string(), Node::Dict(d));
        }
        m.insert("tenants", Node::Dict(tenants));
        if let Some(q) = &self.queue {
            m.insert(
                "queue_bytes",
                Node::Int(q.bytes.load(std::sync::atomic::Ordering::Relaxed) as i64),
            );
        }
        // The whole machine's counter, not this socket's.
        if let Some(errors) = report::kernel_rcvbuf_errors() {
            m.insert("machine_udp_rcvbuf_errors", Node::Int(errors as i64));
        }
        let mut export = Dict::new();
        for (name, c) in self.export_counts() {
            let mut d = Dict::new();
            let ms = |v: f64| Node::Frac((v * 1e3).round() / 1e3);
            d.insert("queued", Node::Int(c.queued as i64));
            d.insert("waiting", Node::Int(c.waiting as i64));
            d.insert("sent", Node::Int(c.sent as i64));
            d.insert("requests", Node::Int(c.requests as i64));
            d.insert("retried", Node::Int(c.retried as i64));
            let mut dropped = Dict::new();
            for (reason, n) in &c.dropped {
                dropped.insert(*reason, Node::Int(*n as i64));
            }
            d.insert("dropped", Node::Dict(dropped));
            d.insert("spool_bytes", Node::Int(c.spool_bytes as i64));
            d.insert("last_success", Node::Int(c.last_success));
            d.insert("latency_ms", ms(c.latency_ms.0));
            d.insert("mean_latency_ms", ms(c.latency_ms.1));
            export.insert(name, Node::Dict(d));
        }
        if !export.is_empty() {
            m.insert("export", Node::Dict(export));
        }
        let path = self.db.root().join(METRICS_FILE);
        let text = Node::Dict(m).to_json(true) + "\n";
        if let Err(e) = crate::db::write_replace(&path, text.as_bytes()) {
            svc::log::warn(&e.to_string());
        }
    }
}

/// One open session as the sessions file lists it.
pub(super) struct SessionLine {
    tenant: Uuid,
    host: Uuid,
    session: u64,
    /// When its host was last heard (Unix time).
    seen: i64,
    /// The highest serial accepted.
    serial: u64,
    remote: SocketAddr,
}

/// Write `collector.sessions` under `root` (the database's root): the open
/// sessions without their keys, for the API's `/session`.
pub(super) fn write_sessions(root: &Path, lines: &[SessionLine]) -> Result<(), crate::db::DbError> {
    use std::fmt::Write;
    let path = root.join(SESSIONS_FILE);
    let mut out = crate::db::Replacement::create(&path)?;
    out.write(b"{\"session\": [")?;
    let mut line = String::new();
    for (i, s) in lines.iter().enumerate() {
        line.clear();
        // The original's client reads sessid and addr as integers (its
        // ID column is both in hex): the session id's low 32 bits and
        // the IPv4 address (0 for IPv6); `session` and `remote` carry
        // them whole.
        let addr = match s.remote.ip() {
            std::net::IpAddr::V4(v4) => u32::from(v4),
            std::net::IpAddr::V6(_) => 0,
        };
        let _ = write!(
            line,
            "{}\n{{\"tenantid\": \"{}\", \"hostid\": \"{}\", \"addr\": {addr}, \"sessid\": {}, \"session\": \"{:016x}\", \"lastcycle\": \"{}\", \"lastserial\": {}, \"remote\": \"{}\"}}",
            if i == 0 { "" } else { "," },
            s.tenant,
            s.host,
            s.session & 0xffff_ffff,
            s.session,
            crate::db::time::iso(s.seen),
            s.serial,
            s.remote
        );
        out.write(line.as_bytes())?;
    }
    out.write(b"\n]}\n")?;
    out.commit()
}
