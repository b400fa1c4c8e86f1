//! One export target as the collector drives it: records become rows,
//! rows fill request bodies per tenant route, full bodies go to the
//! spool, and the target's sender posts them from there.

use super::config::{Placement, TargetConfig};
use super::encode::{Batch, HostLabels};
use super::sender::{Sender, SenderStats};
use super::series::{rows, Row};
use super::spool::{Recovered, Spool, SpoolError};
use crate::conf::{Dict, Node};
use crate::model::HostMeters;
use crate::svc;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a target's spool lives under the database root.
pub fn spool_dir(root: &Path, name: &str) -> PathBuf {
    root.join("export").join(name)
}

/// Counts of one target, for the collector's metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetCounts {
    /// Samples queued since the start (written to the spool).
    pub queued: u64,
    /// Samples waiting in the spool.
    pub waiting: u64,
    /// Bytes of the spool.
    pub spool_bytes: u64,
    /// Samples dropped, by reason.
    pub dropped: Vec<(&'static str, u64)>,
    /// Samples delivered.
    pub sent: u64,
    /// Requests sent, and retried.
    pub requests: u64,
    /// Requests retried.
    pub retried: u64,
    /// Unix time of the last delivery (0: none).
    pub last_success: i64,
    /// The last answered request's duration, and the mean, in ms.
    pub latency_ms: (f64, f64),
}

/// A running target.
pub struct Target {
    /// Its configuration.
    pub cfg: TargetConfig,
    spool: Arc<Spool>,
    stats: Arc<SenderStats>,
    sender: Sender,
    batches: HashMap<String, Batch>,
    queued: u64,
    no_id: u64,
    spool_errors: u64,
    missing_logged: HashSet<String>,
    error_logged: Option<Instant>,
}

impl Target {
    /// Open the target's spool under `root` (replaying what it holds)
    /// and start its sender.
    pub fn start(cfg: TargetConfig, root: &Path) -> Result<(Target, Recovered), SpoolError> {
        let (spool, recovered) = Spool::open(&spool_dir(root, &cfg.name), cfg.spool_bytes)?;
        let spool = Arc::new(spool);
        let stats = Arc::new(SenderStats::default());
        let sender = Sender::start(cfg.clone(), Arc::clone(&spool), Arc::clone(&stats));
        Ok((
            Target {
                cfg,
                spool,
                stats,
                sender,
                batches: HashMap::new(),
                queued: 0,
                no_id: 0,
                spool_errors: 0,
                missing_logged: HashSet::new(),
                error_logged: None,
            },
            recovered,
        ))
    }

    /// The route of a tenant's requests: its id at this target (from its
    /// metadata), `""` for a label target, `None` when it has no id.
    fn route(&mut self, tenant: &str, metadata: Option<&Dict>) -> Option<String> {
        if self.cfg.placement == Placement::Label {
            return Some(String::new());
        }
        let id = match metadata.and_then(|m| m.get(&self.cfg.tenant_key)) {
            Some(Node::Str(s)) if !s.is_empty() => Some(s.clone()),
            Some(Node::Int(n)) => Some(n.to_string()),
            _ => None,
        };
        if id.is_none() && self.missing_logged.insert(tenant.to_string()) {
            svc::log::warn(&format!(
                "export {}: tenant {tenant} has no metadata {} (its id at this target): not exported there",
                self.cfg.name, self.cfg.tenant_key
            ));
        }
        id
    }

    /// Export one host's record at `ms` (only its status rows when
    /// `status_only`: a stale host has nothing new).
    pub fn export(
        &mut self,
        metadata: Option<&Dict>,
        host: &HostLabels<'_>,
        meters: &HostMeters,
        ms: i64,
        status_only: bool,
    ) {
        let mut out: Vec<Row<'_>> = Vec::new();
        rows(meters, &self.cfg.rules, &mut out);
        if status_only {
            out.retain(|r| r.group == "status" || r.fields.iter().any(|f| f.0 == "status"));
        }
        let Some(route) = self.route(host.tenant, metadata) else {
            self.no_id += out.iter().map(|r| r.fields.len() as u64).sum::<u64>();
            return;
        };
        let format = self.cfg.format;
        let max = self.cfg.batch;
        if !self.batches.contains_key(&route) {
            self.batches.insert(route.clone(), Batch::new(format));
        }
        for row in &out {
            let mut fields = &row.fields[..];
            while !fields.is_empty() {
                let Some(batch) = self.batches.get_mut(&route) else {
                    return;
                };
                let room = max.saturating_sub(batch.samples()).max(1);
                let (now, later) = fields.split_at(room.min(fields.len()));
                batch.add(host, row, now, ms);
                fields = later;
                if batch.samples() >= max {
                    self.seal(&route);
                }
            }
        }
    }

    fn seal(&mut self, route: &str) {
        let Some(batch) = self.batches.get_mut(route) else {
            return;
        };
        let samples = batch.samples() as u64;
        if samples == 0 {
            return;
        }
        let body = batch.finish();
        match self.spool.push(route, samples, &body) {
            Ok(_) => self.queued += samples,
            Err(e) => {
                self.spool_errors += samples;
                if self
                    .error_logged
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    self.error_logged = Some(Instant::now());
                    svc::log::err(&format!(
                        "export {}: {e}; {samples} samples dropped",
                        self.cfg.name
                    ));
                }
            }
        }
    }

    /// End of a write cycle: every partial request to the spool, and the
    /// spool made durable.
    pub fn flush(&mut self) {
        let routes: Vec<String> = self.batches.keys().cloned().collect();
        for r in routes {
            self.seal(&r);
        }
        self.batches.retain(|_, b| b.samples() > 0);
        if let Err(e) = self.spool.sync() {
            svc::log::err(&format!("export {}: {e}", self.cfg.name));
        }
    }

    /// Stop the sender and close the spool (what waits is sent after the
    /// next start).
    pub fn stop(&mut self) {
        self.flush();
        self.sender.stop();
        self.spool.close();
    }

    /// What the target did so far.
    pub fn counts(&self) -> TargetCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.stats;
        let (waiting, spool_bytes, full) = self.spool.usage();
        let answered = s.answered.load(Relaxed).max(1) as f64;
        TargetCounts {
            queued: self.queued,
            waiting,
            spool_bytes,
            dropped: vec![
                ("spool_full", full),
                ("rejected", s.rejected.load(Relaxed)),
                ("no_tenant_id", self.no_id),
                ("spool_error", self.spool_errors),
            ],
            sent: s.sent.load(Relaxed),
            requests: s.requests.load(Relaxed),
            retried: s.retried.load(Relaxed),
            last_success: s.last_success.load(Relaxed),
            latency_ms: (
                s.last_latency_us.load(Relaxed) as f64 / 1e3,
                s.latency_us.load(Relaxed) as f64 / 1e3 / answered,
            ),
        }
    }
}
