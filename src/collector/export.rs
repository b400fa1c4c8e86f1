//! Each stored record to the configured engines (`export { ... }`):
//! once per new agent sample, at the agent's sample time, and a stale
//! host's status at the cycle's time. The spool and the senders are the
//! export service's; the receive path never waits on them.

use super::state::Collector;
use crate::export::{HostLabels, Target};
use crate::model::{HostMeters, MeterValue, Scalar, Status};
use crate::svc;
use uuid::Uuid;

impl Collector {
    /// Start every configured target, replaying what its spool holds.
    pub fn start_exports(&mut self) {
        for cfg in self.cfg.export.clone() {
            let name = cfg.name.clone();
            match Target::start(cfg, self.db.root()) {
                Ok((t, recovered)) => {
                    for cut in &recovered.cut {
                        svc::log::warn(&format!(
                            "export {name}: {}: cut a torn tail",
                            cut.display()
                        ));
                    }
                    svc::log::info(&format!(
                        "export {name}: to {}{}",
                        t.cfg.url,
                        if recovered.frames > 0 {
                            format!(
                                ", replaying {} requests ({} samples) from the spool",
                                recovered.frames, recovered.samples
                            )
                        } else {
                            String::new()
                        }
                    ));
                    self.exports.push(t);
                }
                Err(e) => svc::log::err(&format!("export {name}: not started: {e}")),
            }
        }
    }

    /// Stop every target; what is spooled goes after the next start.
    pub fn stop_exports(&mut self) {
        for t in &mut self.exports {
            t.stop();
        }
        self.exports.clear();
    }

    /// Export a host's record just judged, if its agent sent anything
    /// new since the last one exported (or its status, when stale).
    pub(super) fn export_host(&mut self, key: (Uuid, Uuid), meters: &HostMeters, now: i64) {
        if self.exports.is_empty() {
            return;
        }
        let Some(h) = self.hosts.get_mut(&key) else {
            return;
        };
        let (ms, status_only) = if h.status == Status::Stale {
            (now.saturating_mul(1000), true)
        } else if h.agent_time > h.exported {
            h.exported = h.agent_time;
            (h.agent_time.saturating_mul(1000), false)
        } else {
            return;
        };
        let hostname = match meters.get("hostname").map(|m| &m.value) {
            Some(MeterValue::Scalar(Scalar::Str(s))) => s.as_str(),
            _ => "",
        };
        let (tenant, host) = (key.0.to_string(), key.1.to_string());
        let labels = HostLabels {
            tenant: &tenant,
            host: &host,
            hostname,
        };
        let metadata = self.tenants.get(&key.0).and_then(|t| t.metadata.as_ref());
        for t in &mut self.exports {
            t.export(metadata, &labels, meters, ms, status_only);
        }
    }

    /// End of a write cycle: partial requests to the spools, made
    /// durable.
    pub(super) fn flush_exports(&mut self) {
        for t in &mut self.exports {
            t.flush();
        }
    }

    /// Every target's counts, for the metrics.
    pub(super) fn export_counts(&self) -> Vec<(String, crate::export::TargetCounts)> {
        self.exports
            .iter()
            .map(|t| (t.cfg.name.clone(), t.counts()))
            .collect()
    }
}
