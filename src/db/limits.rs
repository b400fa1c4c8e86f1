//! Per-tenant limits as stored: defaults under `limits` in the collector's
//! config, and a tenant's own in its metadata (`max_hosts`,
//! `max_new_hosts_per_minute`, `max_host_bytes_per_cycle`). The collector
//! enforces them; `opticon-db tenant-show` shows them.

use crate::conf::schema::Shape;
use crate::conf::{self, Dict, Node, ValueError};

/// The limits of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Hosts the collector keeps for the tenant at most.
    pub max_hosts: u64,
    /// New hosts admitted a minute (a burst of as many, then steadily).
    pub max_new_hosts_per_minute: u64,
    /// Payload bytes one host may send between two write cycles.
    pub max_host_bytes_per_cycle: u64,
}

/// The `limits { }` section of opticon-collector.conf, for strict loading.
pub const SHAPE: Shape = Shape::Keys(&[
    ("max_hosts", Shape::Value),
    ("max_new_hosts_per_minute", Shape::Value),
    ("max_host_bytes_per_cycle", Shape::Value),
]);

/// The metadata keys (and config keys under `limits`), in field order.
pub const LIMIT_KEYS: [&str; 3] = [
    "max_hosts",
    "max_new_hosts_per_minute",
    "max_host_bytes_per_cycle",
];

impl TenantLimits {
    /// The defaults: `limits { ... }` in the collector's config.
    pub fn from_dict(doc: &Dict) -> Result<TenantLimits, ValueError> {
        Ok(TenantLimits {
            max_hosts: conf::positive(doc, "limits/max_hosts", 100_000)?,
            max_new_hosts_per_minute: conf::positive(
                doc,
                "limits/max_new_hosts_per_minute",
                10_000,
            )?,
            max_host_bytes_per_cycle: conf::positive(
                doc,
                "limits/max_host_bytes_per_cycle",
                1 << 20,
            )?,
        })
    }

    /// These limits overlaid with a tenant's metadata (a positive number
    /// replaces the default; anything else is ignored, and said).
    pub fn overlaid(&self, metadata: Option<&Dict>) -> (TenantLimits, Vec<String>) {
        let mut out = *self;
        let mut problems = Vec::new();
        let Some(meta) = metadata else {
            return (out, problems);
        };
        for (key, field) in LIMIT_KEYS.into_iter().zip([
            &mut out.max_hosts,
            &mut out.max_new_hosts_per_minute,
            &mut out.max_host_bytes_per_cycle,
        ]) {
            match meta.get(key) {
                None => {}
                Some(Node::Int(n)) if *n > 0 => *field = *n as u64,
                Some(other) => problems.push(format!(
                    "metadata {key}: {} is not a positive number (the default applies)",
                    other.to_json(false)
                )),
            }
        }
        (out, problems)
    }
}
