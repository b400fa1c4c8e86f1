//! The collector's state: the tenants and sessions it knows, the hosts it
//! hears from, and what arrived. Each concern's methods live in the file
//! named after it ([`super::sessions`], [`super::hosts`],
//! [`super::cycle`], [`super::metrics`]).

use super::config::CollectorConfig;
use super::hosts::HostState;
use super::sessions::{Session, TenantInfo};
use super::{notify, ping, receive};
use crate::db::meters::MeterDef;
use crate::db::Db;
use crate::svc;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Counters of what arrived, by outcome.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams read from the socket.
    pub received: u64,
    /// Datagrams accepted.
    pub accepted: u64,
    /// Rejections by reason (the names of `Rejection::counter`).
    pub rejected: HashMap<&'static str, u64>,
    /// Auth datagrams an agent sent again for its live session (on
    /// purpose: not counted as rejections).
    pub auth_repeats: u64,
}

/// Most samples the hosts' last samples are kept as changes against:
/// one per set of meter names (a fleet has a few: agent versions, hosts
/// with and without a probe), each about 10 KB decoded.
const REFERENCES: usize = 16;

/// The collector's whole state.
pub struct Collector {
    pub(super) cfg: CollectorConfig,
    pub(super) db: Db,
    /// Shared with a write cycle's worker threads, which run while the
    /// collector's thread goes on receiving (so are the tenants, the
    /// references and the pinger).
    pub(super) global: Arc<Vec<MeterDef>>,
    pub(super) tenants: Arc<HashMap<Uuid, TenantInfo>>,
    pub(super) sessions: HashMap<u64, Session>,
    pub(super) hosts: HashMap<(Uuid, Uuid), Box<HostState>>,
    /// Sessions whose derived key is cached, oldest first.
    pub(super) keyed: VecDeque<u64>,
    /// What arrived so far.
    pub counters: Counters,
    pub(super) plain: Vec<u8>,
    /// Granted kernel receive buffer, for the metrics.
    pub rcvbuf: usize,
    /// The receive queue's counters, when one runs.
    pub queue: Option<receive::QueueStats>,
    pub(super) last_quota: Instant,
    /// When each tenant's hosts were last marked changed by a tool, as
    /// the last cycle saw it (`Db::hosts_changed`).
    pub(super) host_marks: HashMap<Uuid, Option<std::time::SystemTime>>,
    /// The walk measuring each tenant's files but its day files for the
    /// quota check, on its own thread while the collector goes on.
    pub(super) quota_walk: Option<super::upkeep::QuotaWalk>,
    /// A purge deleted hosts since the last walk began: the next quota
    /// check walks again.
    pub(super) walk_stale: bool,
    /// The purge and quota check after the last write cycle, under way.
    pub(super) upkeep: Option<super::upkeep::Upkeep>,
    /// What the last walk measured per tenant, and when it started: the
    /// checks until the next walk use it.
    pub(super) walked: (HashMap<Uuid, u64>, Option<Instant>),
    pub(super) notifier: notify::Notifier,
    /// The pinger, when enabled and a socket could be opened.
    pub pinger: Option<Arc<ping::Pinger>>,
    /// Each tenant's use of its limits.
    pub(super) usage: HashMap<Uuid, super::limits::TenantUse>,
    /// When a refusal was last logged, per source address and tenant.
    pub(super) refusal_logged: HashMap<(std::net::IpAddr, Uuid), Instant>,
    /// The running export targets.
    pub(super) exports: Vec<crate::export::Target>,
    /// Each tenant's host index.
    pub(super) indexes: HashMap<Uuid, super::index::TenantIndex>,
    /// Each tenant's day files being written, locked for each cycle.
    pub(super) stores: HashMap<Uuid, std::sync::Mutex<crate::db::TenantStore>>,
    /// The write cycle's workers' buffers.
    pub(super) scratch: Vec<super::hosts::Scratch>,
    /// Samples the hosts' last samples are kept as changes against.
    pub(super) references: Arc<crate::db::References>,
    /// The buffers a payload is merged into its host with on arrival.
    pub(super) arrival: super::hosts::Scratch,
    /// Write cycles run so far.
    pub(super) cycles: u64,
    /// Hosts out on a write cycle's worker threads: their payloads wait in
    /// `parked` until the hosts are back.
    pub(super) in_flight: HashSet<(Uuid, Uuid)>,
    /// Hosts first heard since the last write cycle, logged one by one
    /// up to [`super::cycle::NEW_HOST_LINES_PER_CYCLE`] (a new fleet of
    /// a million hosts once logged a million lines in its first minute).
    pub(super) new_host_lines: svc::log::Burst,
    /// Verified payloads of hosts in flight, in arrival order.
    pub(super) parked: Vec<super::sessions::ParkedPayload>,
    /// Their payloads' bytes (bounded by the receive queue's).
    pub(super) parked_bytes: usize,
}

impl Collector {
    /// A collector over `cfg.db` with the global meter definitions
    /// (defaults overlaid with `opticon-meter.conf`).
    pub fn new(cfg: CollectorConfig, global: Vec<MeterDef>) -> Collector {
        let db = Db::new(&cfg.db);
        let notify_cfg = cfg.notify.clone();
        let mut c = Collector {
            cfg,
            db,
            global: Arc::new(global),
            tenants: Arc::new(HashMap::new()),
            sessions: HashMap::new(),
            hosts: HashMap::new(),
            keyed: VecDeque::new(),
            counters: Counters::default(),
            plain: Vec::with_capacity(65536),
            rcvbuf: 0,
            queue: None,
            last_quota: Instant::now(),
            quota_walk: None,
            walk_stale: false,
            upkeep: None,
            walked: (HashMap::new(), None),
            host_marks: HashMap::new(),
            notifier: notify::Notifier::new(notify_cfg),
            pinger: None,
            refusal_logged: HashMap::new(),
            usage: HashMap::new(),
            exports: Vec::new(),
            indexes: HashMap::new(),
            stores: HashMap::new(),
            scratch: Vec::new(),
            references: Arc::new(crate::db::References::new(REFERENCES)),
            arrival: Default::default(),
            cycles: 0,
            in_flight: HashSet::new(),
            new_host_lines: svc::log::Burst::new(super::cycle::NEW_HOST_LINES_PER_CYCLE),
            parked: Vec::new(),
            parked_bytes: 0,
        };
        c.refresh_tenants();
        c
    }

    /// Apply a reloaded configuration. The listening address and the
    /// database path stay as they are until a restart (and say so).
    pub fn reconfigure(&mut self, cfg: CollectorConfig, global: Vec<MeterDef>) {
        if cfg.listen != self.cfg.listen
            || cfg.db != self.cfg.db
            || (cfg.ping, cfg.ping_interval) != (self.cfg.ping, self.cfg.ping_interval)
        {
            svc::log::warn(
                "network/address, network/port, database/path and ping change only with a restart",
            );
        }
        let (listen, db) = (self.cfg.listen, self.cfg.db.clone());
        if cfg.notify != self.cfg.notify {
            self.notifier = notify::Notifier::new(cfg.notify.clone());
        }
        let restart_exports = cfg.export != self.cfg.export;
        if restart_exports {
            self.stop_exports();
        }
        self.cfg = CollectorConfig { listen, db, ..cfg };
        if restart_exports {
            self.start_exports();
        }
        self.global = Arc::new(global);
        Arc::make_mut(&mut self.tenants).clear();
        for h in self.hosts.values_mut() {
            h.defs = None;
        }
        self.refresh_tenants();
    }
}
