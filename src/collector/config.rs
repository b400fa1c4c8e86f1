//! `opticon-collector.conf`: every setting the collector reads, with its
//! default, checked once at start and at each reload.

use super::notify;
use crate::conf::schema::{Schema, Shape};
use crate::conf::{self, Dict, Node, ValueError};
use crate::wire::DEFAULT_MAX_SKEW;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every key of `opticon-collector.conf` (documented in
/// opticon-collector(8)); anything else is an error.
pub static SCHEMA: Schema = Schema {
    keys: Shape::Keys(&[
        (
            "network",
            Shape::Keys(&[
                ("address", Shape::Value),
                ("port", Shape::Value),
                ("rcvbuf", Shape::Value),
                ("max_skew", Shape::Value),
                ("queue", Shape::Value),
                ("queue_bytes", Shape::Value),
                ("max_datagram", Shape::Value),
            ]),
        ),
        crate::db::DATABASE_SHAPE,
        (
            "interval",
            Shape::Keys(&[
                ("write", Shape::Value),
                ("stale", Shape::Value),
                ("meter_expiry", Shape::Value),
                ("tenant_refresh", Shape::Value),
                ("quota", Shape::Value),
                ("quota_walk", Shape::Value),
                ("forget", Shape::Value),
                ("purge", Shape::Value),
            ]),
        ),
        ("memory", Shape::Keys(&[("key_cache", Shape::Value)])),
        (
            "ping",
            Shape::Keys(&[("enabled", Shape::Value), ("interval", Shape::Value)]),
        ),
        (
            "notify",
            Shape::Keys(&[
                ("call", Shape::Value),
                ("debounce", Shape::Value),
                ("batch", Shape::Value),
                ("role", Shape::Value),
            ]),
        ),
        ("limits", crate::db::limits::SHAPE),
        crate::export::EXPORT_SHAPE,
    ]),
    // The original read watcher dumps, and meter, graph and summary
    // definitions from the same tree (meters come from opticon-meter.conf
    // here; graphs and summaries are built in).
    ignored: &["debug", "meter", "graph", "summary"],
};

/// The collector's settings (`opticon-collector.conf`).
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database root.
    pub db: PathBuf,
    /// Seconds between write cycles (records per host).
    pub write_interval: u64,
    /// Seconds without a datagram before a host is STALE.
    pub stale: u64,
    /// Seconds after which a meter not refreshed is dropped.
    pub meter_expiry: i64,
    /// Seconds between checks for changed tenants.
    pub tenant_refresh: u64,
    /// Tolerated clock difference of auth datagrams.
    pub max_skew: i64,
    /// Requested kernel receive buffer.
    pub rcvbuf: usize,
    /// Seconds between quota enforcement runs.
    pub quota_interval: u64,
    /// Seconds between walks of every host directory for the quota
    /// checks (the day files are measured at every check).
    pub quota_walk: u64,
    /// Notifications of status changes.
    pub notify: notify::NotifyConfig,
    /// Datagrams the receive queue holds before it drops.
    pub queue: usize,
    /// Bytes the receive queue holds before it drops (whatever the
    /// datagrams' count).
    pub queue_bytes: usize,
    /// Largest datagram accepted; larger ones are refused unread
    /// (`oversize`), before any key or MAC work.
    pub max_datagram: usize,
    /// Seconds of silence after which a host is dropped from memory (and
    /// gets no more STALE records).
    pub forget: u64,
    /// Seconds after its last record before a host is deleted from the
    /// database (0: never).
    pub purge: u64,
    /// Sessions whose derived keys stay cached (the others derive theirs
    /// again at their next datagram).
    pub key_cache: usize,
    /// Ping every host's source address (`link/rtt`, `link/loss`).
    pub ping: bool,
    /// Seconds between two echoes to the same host.
    pub ping_interval: u64,
    /// Per-tenant limits unless a tenant's metadata sets its own.
    pub limits: super::limits::TenantLimits,
    /// Engines every stored record is exported to.
    pub export: Vec<crate::export::TargetConfig>,
}

impl CollectorConfig {
    /// Read the settings from a parsed config document.
    pub fn from_dict(doc: &Dict) -> Result<CollectorConfig, ValueError> {
        Ok(CollectorConfig {
            listen: conf::listen_address(doc, 1047)?,
            db: PathBuf::from(
                doc.path("database/path")
                    .and_then(Node::as_str)
                    .unwrap_or(crate::db::DEFAULT_ROOT),
            ),
            write_interval: conf::positive(doc, "interval/write", 60)?,
            stale: conf::positive(doc, "interval/stale", 80)?,
            meter_expiry: conf::positive(doc, "interval/meter_expiry", 600)? as i64,
            tenant_refresh: conf::positive(doc, "interval/tenant_refresh", 5)?,
            max_skew: conf::positive(doc, "network/max_skew", DEFAULT_MAX_SKEW as u64)? as i64,
            rcvbuf: conf::positive(doc, "network/rcvbuf", 8 << 20)? as usize,
            quota_interval: conf::positive(doc, "interval/quota", 300)?,
            quota_walk: conf::positive(doc, "interval/quota_walk", 3600)?,
            notify: notify::NotifyConfig::from_dict(doc)?,
            queue: conf::positive(doc, "network/queue", 65536)? as usize,
            queue_bytes: conf::positive(doc, "network/queue_bytes", 32 << 20)? as usize,
            max_datagram: match conf::positive(doc, "network/max_datagram", 16384)? as usize {
                n if (crate::wire::MIN_DATAGRAM..=crate::wire::MAX_DATAGRAM).contains(&n) => n,
                n => {
                    return Err(ValueError::new(
                        "network/max_datagram",
                        format!(
                            "{n} is outside {}..={}",
                            crate::wire::MIN_DATAGRAM,
                            crate::wire::MAX_DATAGRAM
                        ),
                    ))
                }
            },
            forget: conf::positive(doc, "interval/forget", 3600)?,
            purge: match doc.path("interval/purge") {
                Some(Node::Int(0)) => 0,
                _ => conf::positive(doc, "interval/purge", 86_400)?,
            },
            key_cache: conf::positive(doc, "memory/key_cache", 4096)? as usize,
            ping: match doc.path("ping/enabled") {
                None | Some(Node::Bool(true)) => true,
                Some(Node::Bool(false)) => false,
                Some(other) => {
                    return Err(ValueError::new(
                        "ping/enabled",
                        format!("{} is not true or false", other.to_json(false)),
                    ))
                }
            },
            ping_interval: conf::positive(doc, "ping/interval", 10)?,
            limits: super::limits::TenantLimits::from_dict(doc)?,
            export: crate::export::targets_from_dict(doc)?,
        })
    }
}
