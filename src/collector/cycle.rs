//! The write cycle: every interval, judge every host, append one record
//! each with one batched sync, write each tenant's overview as it goes,
//! send due notifications, publish the metrics, and now and then purge
//! silent hosts and enforce quotas.

use super::state::Collector;
use super::{judge, report};
use crate::db::tenant::HOST_LOG;
use crate::db::{log as hostlog, HostWriter, ParkedWriter};
use crate::model::{
    unix_now, Array, HostMeters, MeterName, MeterValue, Scalar, Status, MAX_METERS_PER_HOST,
};
use crate::svc;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The meters the collector adds to every record.
pub const OWN_METERS: [&str; 6] = [
    "status",
    "badness",
    "problems",
    "link/ip",
    "link/rtt",
    "link/loss",
];

/// Drop agent meters (the last ones) until the collector's own fit under
/// the model's limit; returns how many were dropped.
fn make_room(meters: &mut HostMeters) -> usize {
    let missing = OWN_METERS
        .iter()
        .filter(|n| meters.get(n).is_none())
        .count();
    let over = (meters.len() + missing).saturating_sub(MAX_METERS_PER_HOST);
    if over == 0 {
        return 0;
    }
    let mut names: Vec<String> = meters
        .iter()
        .map(|(n, _)| n.as_str().to_string())
        .filter(|n| !OWN_METERS.contains(&n.as_str()))
        .collect();
    let victims = names.split_off(names.len().saturating_sub(over));
    for v in &victims {
        meters.remove(v);
    }
    victims.len()
}

fn set(meters: &mut HostMeters, name: &str, value: MeterValue, time: i64) {
    if let Ok(n) = MeterName::new(name) {
        let _ = meters.set(n, value, time);
    }
}

impl Collector {
    /// One write cycle: judge every host and store one record each, then
    /// make the cycle durable with one sync. Hosts are visited tenant by
    /// tenant, so that each tenant's overview is written as it goes; every
    /// host is packed afterwards.
    pub fn write_cycle(&mut self) {
        self.write_cycle_with(&mut |_| {});
    }

    /// A write cycle that calls `between` every few hosts, so that the
    /// caller keeps receiving datagrams during a long cycle (the first one
    /// of a large fleet creates a directory and files per host).
    pub fn write_cycle_with(&mut self, between: &mut dyn FnMut(&mut Collector)) {
        let started = Instant::now();
        let now = unix_now();
        self.forget_silent();
        let tenants = &self.tenants;
        self.hosts.retain(|key, _| tenants.contains_key(&key.0));
        let mut keys: Vec<(Uuid, Uuid)> = self.hosts.keys().copied().collect();
        keys.sort_unstable();
        let mut written = 0;
        let mut by_status: HashMap<&'static str, i64> = HashMap::new();
        let mut reported = HashSet::new();
        let mut report: Option<(Uuid, report::TenantReport)> = None;
        // Report files that cannot be written (a full disk): one line per
        // cycle with the first error and a count, not one per host.
        let mut failed: (usize, Option<String>) = (0, None);
        let mut fail = |e: String| {
            failed.0 += 1;
            failed.1.get_or_insert(e);
        };
        for (n, key) in keys.into_iter().enumerate() {
            if n % 16 == 15 {
                between(self);
            }
            if report.as_ref().map(|r| r.0) != Some(key.0) {
                if let Err(e) = self.finish_report(report.take()) {
                    fail(e);
                }
                reported.insert(key.0);
                report = self.start_report(key.0).map_err(&mut fail).ok();
            }
            let Some((meters, stored)) = self.judge_and_store(key, now) else {
                continue;
            };
            written += usize::from(stored);
            self.export_host(key, &meters, now);
            if let Some(h) = self.hosts.get(&key) {
                *by_status.entry(h.status.as_str()).or_default() += 1;
            }
            if let Some((_, r)) = &mut report {
                if let Err(e) = r.add(key.1, &meters) {
                    // This tenant's overview is lost for the cycle.
                    fail(e.to_string());
                    report = None;
                }
            }
            self.settle(key, meters, stored);
        }
        if let Err(e) = self.finish_report(report) {
            fail(e);
        }
        let idle: Vec<Uuid> = self
            .tenants
            .keys()
            .filter(|t| !reported.contains(*t))
            .copied()
            .collect();
        for t in idle {
            match self.start_report(t) {
                Ok(r) => {
                    if let Err(e) = self.finish_report(Some(r)) {
                        fail(e);
                    }
                }
                Err(e) => fail(e),
            }
        }
        if let (n, Some(first)) = failed {
            svc::log::warn(&format!(
                "tenant reports not written this cycle: {first}{}",
                if n > 1 {
                    format!(" ({} more failures)", n - 1)
                } else {
                    String::new()
                }
            ));
        }
        if written > 0 {
            if let Err(e) = self.db.sync() {
                svc::log::err(&format!("sync: {e}"));
            }
        }
        self.flush_exports();
        self.notifier.send_due();
        let tenants = &self.tenants;
        self.usage.retain(|t, _| tenants.contains_key(t));
        for (t, u) in &mut self.usage {
            if let Some(line) = u.log_line(t) {
                svc::log::warn(&line);
            }
        }
        release_free_memory();
        self.publish_metrics(started.elapsed(), &by_status);
        if let Err(e) = self.publish_sessions(now) {
            svc::log::warn(&e.to_string());
        }
        self.publish_indexes();
        if self.last_quota.elapsed() >= Duration::from_secs(self.cfg.quota_interval) {
            self.last_quota = Instant::now();
            self.purge_silent();
            self.enforce_quotas();
        }
        svc::log::debug(&format!(
            "write cycle: {written} records, {} sessions, {:.1} ms",
            self.sessions.len(),
            started.elapsed().as_secs_f64() * 1e3
        ));
    }

    /// Judge one host, add the collector's meters, log and notify a status
    /// change, and append its record. Returns the host's meters and whether
    /// a record was stored.
    fn judge_and_store(&mut self, key: (Uuid, Uuid), now: i64) -> Option<(HostMeters, bool)> {
        let defs = self.host_defs(key.0, key.1);
        let stale = Duration::from_secs(self.cfg.stale);
        let dir = self.db.host_dir(key.0, key.1);
        let h = self.hosts.get_mut(&key)?;
        let (mut meters, mut base) = h.unpack();
        let mut fresh = false;
        h.cycle_bytes = 0;
        // Deleted (opticon-db host-delete, DELETE /{T}/host/{H}) while its
        // agent still sends: the host starts afresh, as a new one.
        if h.writer.last_time().is_some() && !dir.exists() {
            svc::log::info(&format!(
                "host {} of tenant {} was deleted: recording it afresh",
                key.1, key.0
            ));
            h.writer = ParkedWriter::default();
            h.badness = 0.0;
            h.status = Status::Unset;
            base = None;
            fresh = true;
        }
        let old = h.status;
        // The collector's own meters always have room: a host at the
        // meter limit loses some of its own meters instead, and says so.
        let trimmed = make_room(&mut meters);
        if h.last_seen.elapsed() > stale {
            h.status = Status::Stale;
            meters.stamp(now);
        } else {
            meters.expire(now, self.cfg.meter_expiry);
            let v = judge::judge(&meters, &defs, h.badness);
            h.badness = v.badness;
            h.status = v.status;
            let mut problems = v.problems;
            if trimmed > 0 {
                problems.push(format!("meters: over the limit, {trimmed} not stored"));
            }
            set(
                &mut meters,
                "problems",
                MeterValue::Array(Array::Str(problems)),
                now,
            );
        }
        let status = MeterValue::Scalar(Scalar::Str(h.status.as_str().into()));
        set(&mut meters, "status", status, now);
        let badness = (h.badness * 1000.0).round() / 1000.0;
        set(
            &mut meters,
            "badness",
            MeterValue::Scalar(Scalar::Frac(badness)),
            now,
        );
        let ip = MeterValue::Scalar(Scalar::Str(h.remote.ip().to_string()));
        set(&mut meters, "link/ip", ip, now);
        if let Some(link) = self.pinger.as_ref().and_then(|p| p.link(h.remote.ip())) {
            let round = |x: f64| MeterValue::Scalar(Scalar::Frac((x * 1000.0).round() / 1000.0));
            set(&mut meters, "link/rtt", round(link.rtt_ms), now);
            set(&mut meters, "link/loss", round(link.loss_pct), now);
        }
        // The writer creates the host directory, which the host log below
        // needs; it holds descriptors only for this append.
        let mut writer = match HostWriter::resume(&dir, &h.writer, base) {
            Ok(w) => w,
            Err(e) => {
                svc::log::err(&format!("host {}: {e}", key.1));
                return Some((meters, false));
            }
        };
        for r in &writer.repairs {
            svc::log::warn(&format!(
                "{}: cut torn tail ({} -> {} bytes)",
                r.path.display(),
                r.from,
                r.to
            ));
        }
        for aside in &writer.moved_aside {
            svc::log::warn(&format!(
                "{}: damaged header, moved aside (opticon-db fsck --repair merges its samples back); recording on in a fresh file",
                aside.display()
            ));
        }
        if old != h.status {
            let msg = format!("Status change {} -> {}", old.as_str(), h.status.as_str());
            svc::log::info(&format!("host {}: {msg}", key.1));
            if let Err(e) = hostlog::append(&dir.join(HOST_LOG), now, "watcher", &msg) {
                svc::log::warn(&e.to_string());
            }
            let hostname = match meters.get("hostname").and_then(|m| m.value.element(0)) {
                Some(crate::model::ScalarRef::Str(n)) => n.to_string(),
                _ => String::new(),
            };
            let problems: Vec<String> = match meters.get("problems").map(|m| &m.value) {
                Some(MeterValue::Array(Array::Str(p))) => p.clone(),
                _ => Vec::new(),
            };
            self.notifier
                .change(key.0, key.1, &hostname, old, h.status, &problems, now);
        }
        // A cycle in the same second as the last one (the final cycle at
        // shutdown) has nothing new to store.
        let stored = if writer.last_time().is_some_and(|t| t >= now) {
            false
        } else {
            match writer.append(now, &meters) {
                Ok(_) => true,
                Err(e) => {
                    svc::log::err(&format!("host {}: {e}", key.1));
                    false
                }
            }
        };
        let disk = writer.day_disk_bytes().unwrap_or(0);
        h.writer = writer.park();
        if stored {
            self.index_append(key, now, disk, fresh);
        }
        Some((meters, stored))
    }

    fn start_report(&self, tenant: Uuid) -> Result<(Uuid, report::TenantReport), String> {
        report::TenantReport::start(&self.db.tenant_dir(tenant))
            .map(|r| (tenant, r))
            .map_err(|e| e.to_string())
    }

    fn finish_report(&self, report: Option<(Uuid, report::TenantReport)>) -> Result<(), String> {
        match report {
            Some((_, r)) => r.finish().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Delete hosts whose last record is older than `interval/purge`.
    fn purge_silent(&mut self) {
        if self.cfg.purge == 0 {
            return;
        }
        let cutoff = unix_now() - self.cfg.purge as i64;
        let mut purged = Vec::new();
        for t in self.tenants.keys() {
            match self.db.purge_stale(*t, cutoff) {
                Ok(hosts) => {
                    if !hosts.is_empty() {
                        purged.push(*t);
                    }
                    for h in hosts {
                        svc::log::info(&format!(
                            "tenant {t}: purged host {h}, silent since before {}",
                            crate::db::time::iso(cutoff)
                        ));
                    }
                }
                Err(e) => svc::log::warn(&format!("tenant {t}: purge: {e}")),
            }
        }
        for t in purged {
            self.index_rebuild(t);
        }
    }

    /// Keep every tenant within its storage quota (oldest days first).
    fn enforce_quotas(&mut self) {
        let mut trimmed = Vec::new();
        for t in self.tenants.keys() {
            match self.db.enforce_quota(*t) {
                Ok((days, why)) => {
                    if !days.is_empty() {
                        trimmed.push(*t);
                    }
                    for d in days {
                        svc::log::info(&format!("tenant {t}: over quota, deleted {}", d.stem()));
                    }
                    if let Some(why) = why {
                        svc::log::warn(&format!("tenant {t}: {why}"));
                    }
                }
                Err(e) => svc::log::warn(&format!("tenant {t}: quota: {e}")),
            }
        }
        for t in trimmed {
            self.index_rebuild(t);
        }
    }
}

/// Give the pages freed by a write cycle back to the kernel: the cycle
/// decodes every host in turn, and the heap it leaves behind is full of
/// holes between the packed hosts that stay.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
