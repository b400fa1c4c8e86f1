//! `opticon-collector`: receives, verifies and stores every host's
//! samples, and judges each host's status. See `man 8 opticon-collector`.
//!
//! This is the collector's core: the receive path with a counted reason
//! for every rejected datagram, tenant keys cached in memory (no disk
//! access on the rejection path, refreshed when `tenant.conf` changes),
//! sessions that never touch the disk, per-host state restored from the
//! latest record after a restart, and aligned write cycles that judge
//! every host and append one record each, with one batched sync.

pub mod judge;
pub mod notify;
pub mod packed;
pub mod ping;
pub mod receive;
pub mod report;

use crate::conf::{self, Dict, Node};
use crate::crypto::{SealKey, KEY_LEN};
use crate::db::meters::{self, MeterDef, Origin};
use crate::db::tenant::{HOST_FILE, HOST_LOG, TENANT_FILE};
use crate::db::{host, log as hostlog, Db, HostWriter, ParkedWriter};
use crate::model::binary::{
    apply_payload, decode_sample, put_varint, validate_payload, PayloadReader,
};
use crate::model::{Array, HostMeters, MeterName, MeterValue, Scalar, Status};
use crate::svc;
use crate::wire::{peek, Datagram, Rejection, ReplayWindow, DEFAULT_MAX_SKEW};
use packed::Packed;
pub use report::{OVERVIEW_FILE, SUMMARY_FILE};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

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
    /// Notifications of status changes.
    pub notify: notify::NotifyConfig,
    /// Datagrams the receive queue holds before it drops.
    pub queue: usize,
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
}

impl CollectorConfig {
    /// Read the settings from a parsed config document.
    pub fn from_dict(doc: &Dict) -> Result<CollectorConfig, String> {
        Ok(CollectorConfig {
            listen: conf::listen_address(doc, 1047)?,
            db: PathBuf::from(
                doc.path("database/path")
                    .and_then(Node::as_str)
                    .unwrap_or("/var/opticon/db"),
            ),
            write_interval: conf::positive(doc, "interval/write", 60)?,
            stale: conf::positive(doc, "interval/stale", 80)?,
            meter_expiry: conf::positive(doc, "interval/meter_expiry", 600)? as i64,
            tenant_refresh: conf::positive(doc, "interval/tenant_refresh", 5)?,
            max_skew: conf::positive(doc, "network/max_skew", DEFAULT_MAX_SKEW as u64)? as i64,
            rcvbuf: conf::positive(doc, "network/rcvbuf", 8 << 20)? as usize,
            quota_interval: conf::positive(doc, "interval/quota", 300)?,
            notify: notify::NotifyConfig::from_dict(doc)?,
            queue: conf::positive(doc, "network/queue", 65536)? as usize,
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
                    return Err(format!(
                        "ping/enabled: {} is not true or false",
                        other.to_json(false)
                    ))
                }
            },
            ping_interval: conf::positive(doc, "ping/interval", 10)?,
        })
    }
}

/// What the collector knows of one tenant, kept in memory.
struct TenantInfo {
    key: SealKey,
    /// Shared by every host of the tenant without a `host.conf`.
    defs: Arc<Vec<MeterDef>>,
    modified: Option<SystemTime>,
}

/// One open session.
struct Session {
    tenant: Uuid,
    host: Uuid,
    /// The session key as the agent sent it.
    secret: [u8; KEY_LEN],
    /// The derived key (624 bytes), while in the key cache.
    key: Option<Box<SealKey>>,
    window: ReplayWindow,
}

/// Modification times of `tenant.conf` and `host.conf` that a host's
/// definitions were built from.
type DefsStamp = (Option<SystemTime>, Option<SystemTime>);

/// Payloads that arrived for a host since its last write cycle, kept as
/// received (length-prefixed) until the cycle merges them; a host that
/// sends more than this between cycles is busy: it stays decoded until
/// the cycle and its payloads merge as they arrive.
const PENDING_LIMIT: usize = 16 << 10;

/// One host's live state.
///
/// Between write cycles a host costs its packed meters (changes against
/// the last record, which the parked writer keeps encoded) plus the
/// payloads received since: decoding happens once per host per cycle, in
/// the cycle, not per datagram.
struct HostState {
    packed: Packed,
    pending: Vec<u8>,
    /// A busy host's current meters (`packed` and `pending` are then
    /// out of date).
    busy: Option<Box<HostMeters>>,
    badness: f64,
    status: Status,
    last_seen: Instant,
    remote: SocketAddr,
    /// The host's writer between write cycles (no open descriptors).
    writer: ParkedWriter,
    /// Definitions, with the tenant's and the host's file times they
    /// were built from.
    defs: Option<(DefsStamp, Arc<Vec<MeterDef>>)>,
}

impl HostState {
    /// The last stored record, which packed meters are a delta against.
    fn base(&self) -> Option<HostMeters> {
        let encoded = self.writer.prev_encoded()?;
        decode_sample(encoded).ok().map(|(_, m)| m)
    }

    /// The current meters: unpacked, with the pending payloads merged;
    /// returns them with their base (the caller packs them again).
    fn unpack(&mut self) -> (HostMeters, Option<HostMeters>) {
        let base = self.base();
        if let Some(meters) = self.busy.take() {
            return (*meters, base);
        }
        let mut meters = self.packed.unpack(base.as_ref()).unwrap_or_else(|e| {
            svc::log::err(&format!("cannot unpack a host's meters: {e}"));
            HostMeters::new()
        });
        let mut r = PayloadReader::bare(&self.pending);
        while let Ok(n) = r.read_varint() {
            match r.read_bytes(n as usize) {
                // Validated on arrival.
                Ok(payload) => drop(apply_payload(&mut meters, payload)),
                Err(_) => break,
            }
        }
        self.pending = Vec::new();
        (meters, base)
    }

    /// Keep a payload (validated) for the next write cycle.
    fn queue_payload(&mut self, payload: &[u8]) {
        if self.busy.is_none() && self.pending.len() + payload.len() > PENDING_LIMIT {
            let (meters, _) = self.unpack();
            self.busy = Some(Box::new(meters));
        }
        if let Some(meters) = &mut self.busy {
            let _ = apply_payload(meters, payload);
            return;
        }
        self.pending.reserve_exact(payload.len() + 3);
        put_varint(&mut self.pending, payload.len() as u64);
        self.pending.extend_from_slice(payload);
    }
}

/// Counters of what arrived, by outcome.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams read from the socket.
    pub received: u64,
    /// Datagrams accepted.
    pub accepted: u64,
    /// Rejections by reason (the names of `Rejection::counter`).
    pub rejected: HashMap<&'static str, u64>,
}

/// The collector's whole state.
pub struct Collector {
    cfg: CollectorConfig,
    db: Db,
    global: Vec<MeterDef>,
    tenants: HashMap<Uuid, TenantInfo>,
    sessions: HashMap<u64, Session>,
    hosts: HashMap<(Uuid, Uuid), HostState>,
    /// Sessions whose derived key is cached, oldest first.
    keyed: VecDeque<u64>,
    /// What arrived so far.
    pub counters: Counters,
    plain: Vec<u8>,
    /// Granted kernel receive buffer, for the metrics.
    pub rcvbuf: usize,
    /// The receive queue's counters, when one runs.
    pub queue: Option<receive::QueueStats>,
    last_quota: Instant,
    notifier: notify::Notifier,
    /// The pinger, when enabled and a socket could be opened.
    pub pinger: Option<ping::Pinger>,
}

/// Name of the self-metrics file in the database root.
pub const METRICS_FILE: &str = "collector.metrics";
/// Name of the open sessions file in the database root (no keys).
pub const SESSIONS_FILE: &str = "collector.sessions";

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn set(meters: &mut HostMeters, name: &str, value: MeterValue, time: i64) {
    if let Ok(n) = MeterName::new(name) {
        let _ = meters.set(n, value, time);
    }
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
            global,
            tenants: HashMap::new(),
            sessions: HashMap::new(),
            hosts: HashMap::new(),
            keyed: VecDeque::new(),
            counters: Counters::default(),
            plain: Vec::with_capacity(65536),
            rcvbuf: 0,
            queue: None,
            last_quota: Instant::now(),
            notifier: notify::Notifier::new(notify_cfg),
            pinger: None,
        };
        c.refresh_tenants();
        c
    }

    /// Load new or changed tenants (key, meter definitions) and forget
    /// deleted ones; unchanged tenants cost one stat.
    pub fn refresh_tenants(&mut self) {
        let ids = match self.db.tenant_ids() {
            Ok(ids) => ids,
            Err(e) => {
                svc::log::err(&format!("cannot list tenants: {e}"));
                return;
            }
        };
        self.tenants.retain(|id, _| ids.contains(id));
        for id in ids {
            let modified = mtime(&self.db.tenant_dir(id).join(TENANT_FILE));
            if self
                .tenants
                .get(&id)
                .is_some_and(|t| t.modified == modified)
            {
                continue;
            }
            let loaded = self
                .db
                .tenant(id)
                .and_then(|t| Ok((t, self.db.tenant_doc(id)?)));
            match loaded {
                Ok((tenant, doc)) => {
                    let mut defs = self.global.clone();
                    if let Some(Node::Dict(md)) = doc.get("meter") {
                        if let Err(e) = meters::overlay(&mut defs, md, Origin::Tenant) {
                            svc::log::warn(&format!("tenant {id}: {e}"));
                        }
                    }
                    self.tenants.insert(
                        id,
                        TenantInfo {
                            key: SealKey::new(&tenant.key.0),
                            defs: Arc::new(defs),
                            modified,
                        },
                    );
                }
                Err(e) => svc::log::warn(&format!("tenant {id}: {e}")),
            }
        }
    }

    fn reject(&mut self, r: &Rejection) {
        *self.counters.rejected.entry(r.counter()).or_default() += 1;
    }

    /// Handle one datagram from `from`.
    pub fn handle(&mut self, d: &[u8], from: SocketAddr) {
        self.counters.received += 1;
        match self.open(d, from) {
            Ok(()) => self.counters.accepted += 1,
            Err(r) => self.reject(&r),
        }
    }

    fn open(&mut self, d: &[u8], from: SocketAddr) -> Result<(), Rejection> {
        match peek(d)? {
            Datagram::Auth(a) => {
                let tenant = self
                    .tenants
                    .get(&a.tenant)
                    .ok_or(Rejection::UnknownTenant)?;
                let now = unix_now();
                match self.sessions.get_mut(&a.session) {
                    Some(s) if s.tenant == a.tenant => {
                        let body =
                            a.open(&tenant.key, Some(&mut s.window), now, self.cfg.max_skew)?;
                        if body.host != s.host {
                            return Err(Rejection::Malformed);
                        }
                        s.secret = body.session_key;
                        s.key = None;
                    }
                    // A session id taken by another tenant is not reused.
                    Some(_) => return Err(Rejection::Malformed),
                    None => {
                        let mut window = ReplayWindow::new();
                        let body =
                            a.open(&tenant.key, Some(&mut window), now, self.cfg.max_skew)?;
                        if body.host.is_nil() || body.host == Uuid::max() {
                            return Err(Rejection::Malformed);
                        }
                        self.sessions.insert(
                            a.session,
                            Session {
                                tenant: a.tenant,
                                host: body.host,
                                secret: body.session_key,
                                key: None,
                                window,
                            },
                        );
                    }
                }
                let (tenant, host) = (a.tenant, self.sessions[&a.session].host);
                self.touch((tenant, host), from);
                Ok(())
            }
            Datagram::Meter(m) => {
                let Session {
                    tenant,
                    host,
                    secret,
                    key,
                    window,
                } = self
                    .sessions
                    .get_mut(&m.session)
                    .ok_or(Rejection::UnknownSession)?;
                let derived = key.is_none();
                let key = key.get_or_insert_with(|| Box::new(SealKey::new(secret)));
                // The buffer is reused across datagrams; moved out while
                // the payload it holds is kept.
                let mut plain = std::mem::take(&mut self.plain);
                let result = m.open(key, window, &mut plain).map(|_| (*tenant, *host));
                if derived {
                    self.cache_key(m.session);
                }
                let kept = result.and_then(|host| {
                    validate_payload(&plain).map_err(Rejection::BadPayload)?;
                    self.touch(host, from);
                    let h = self.hosts.get_mut(&host).ok_or(Rejection::UnknownSession)?;
                    h.queue_payload(&plain);
                    Ok(())
                });
                self.plain = plain;
                kept
            }
        }
    }

    /// Note a session's newly derived key in the cache, dropping the
    /// oldest cached keys beyond `memory/key_cache`.
    fn cache_key(&mut self, session: u64) {
        self.keyed.push_back(session);
        while self.keyed.len() > self.cfg.key_cache.max(1) {
            if let Some(old) = self.keyed.pop_front() {
                if let Some(s) = self.sessions.get_mut(&old) {
                    s.key = None;
                }
            }
        }
    }

    /// Pack a host just judged; when its record was stored, the meters
    /// are their own base.
    fn settle(&mut self, key: (Uuid, Uuid), meters: HostMeters, stored: bool) {
        let Some(h) = self.hosts.get_mut(&key) else {
            return;
        };
        h.packed = if stored {
            Packed::pack(&meters, Some(&meters))
        } else {
            Packed::pack(&meters, h.base().as_ref())
        };
    }

    /// Note that a host was heard from, creating its state (restored from
    /// its latest stored record: meters, badness and status survive a
    /// collector restart).
    fn touch(&mut self, key: (Uuid, Uuid), from: SocketAddr) {
        let now = Instant::now();
        if let Some(h) = self.hosts.get_mut(&key) {
            h.last_seen = now;
            h.remote = from;
            return;
        }
        let (tenant, host) = key;
        let dir = self.db.host_dir(tenant, host);
        let mut state = HostState {
            packed: Packed::pack(&HostMeters::new(), None),
            pending: Vec::new(),
            busy: None,
            badness: 0.0,
            status: Status::Unset,
            last_seen: now,
            remote: from,
            writer: ParkedWriter::default(),
            defs: None,
        };
        if let Ok(Some((_, mut meters))) = host::latest(&dir) {
            if let Some(MeterValue::Scalar(Scalar::Frac(b))) =
                meters.get("badness").map(|m| &m.value)
            {
                state.badness = *b;
            }
            if let Some(MeterValue::Scalar(Scalar::Str(s))) = meters.get("status").map(|m| &m.value)
            {
                state.status = parse_status(s);
            }
            meters.stamp(unix_now());
            state.packed = Packed::pack(&meters, None);
        }
        svc::log::info(&format!(
            "host {host} of tenant {tenant} seen from {}",
            from.ip()
        ));
        self.hosts.insert(key, state);
    }

    /// The definitions that apply to a host: the tenant's (shared, not
    /// copied), or a copy overlaid with the host's `host.conf` when it has
    /// one (rebuilt only when either file changes).
    fn host_defs(&mut self, tenant: Uuid, host: Uuid) -> Arc<Vec<MeterDef>> {
        let (base, tenant_modified) = match self.tenants.get(&tenant) {
            Some(t) => (Arc::clone(&t.defs), t.modified),
            None => (Arc::new(self.global.clone()), None),
        };
        let path = self.db.host_dir(tenant, host).join(HOST_FILE);
        let modified = mtime(&path);
        let stamp = (tenant_modified, modified);
        let Some(state) = self.hosts.get_mut(&(tenant, host)) else {
            return base;
        };
        if let Some((m, defs)) = &state.defs {
            if *m == stamp {
                return Arc::clone(defs);
            }
        }
        let defs = match modified.and_then(|_| conf::load_file(&path).ok()) {
            Some(doc) => match doc.get("meter") {
                Some(Node::Dict(md)) => {
                    let mut own = base.as_ref().clone();
                    let _ = meters::overlay(&mut own, md, Origin::Host);
                    Arc::new(own)
                }
                _ => base,
            },
            None => base,
        };
        state.defs = Some((stamp, Arc::clone(&defs)));
        defs
    }

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
        for (n, key) in keys.into_iter().enumerate() {
            if n % 16 == 15 {
                between(self);
            }
            if report.as_ref().map(|r| r.0) != Some(key.0) {
                self.finish_report(report.take());
                reported.insert(key.0);
                report = self.start_report(key.0);
            }
            let Some((meters, stored)) = self.judge_and_store(key, now) else {
                continue;
            };
            written += usize::from(stored);
            if let Some(h) = self.hosts.get(&key) {
                *by_status.entry(h.status.as_str()).or_default() += 1;
            }
            if let Some((_, r)) = &mut report {
                if let Err(e) = r.add(key.1, &meters) {
                    svc::log::warn(&e.to_string());
                }
            }
            self.settle(key, meters, stored);
        }
        self.finish_report(report);
        let idle: Vec<Uuid> = self
            .tenants
            .keys()
            .filter(|t| !reported.contains(*t))
            .copied()
            .collect();
        for t in idle {
            let r = self.start_report(t);
            self.finish_report(r);
        }
        if written > 0 {
            if let Err(e) = self.db.sync() {
                svc::log::err(&format!("sync: {e}"));
            }
        }
        self.notifier.send_due();
        release_free_memory();
        self.publish_metrics(started.elapsed(), &by_status);
        if let Err(e) = self.publish_sessions(now) {
            svc::log::warn(&e.to_string());
        }
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
        let (mut meters, base) = h.unpack();
        let old = h.status;
        if h.last_seen.elapsed() > stale {
            h.status = Status::Stale;
            meters.stamp(now);
        } else {
            meters.expire(now, self.cfg.meter_expiry);
            let v = judge::judge(&meters, &defs, h.badness);
            h.badness = v.badness;
            h.status = v.status;
            let problems = MeterValue::Array(Array::Str(v.problems));
            set(&mut meters, "problems", problems, now);
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
        h.writer = writer.park();
        Some((meters, stored))
    }

    fn start_report(&self, tenant: Uuid) -> Option<(Uuid, report::TenantReport)> {
        match report::TenantReport::start(&self.db.tenant_dir(tenant)) {
            Ok(r) => Some((tenant, r)),
            Err(e) => {
                svc::log::warn(&e.to_string());
                None
            }
        }
    }

    fn finish_report(&self, report: Option<(Uuid, report::TenantReport)>) {
        if let Some((_, r)) = report {
            if let Err(e) = r.finish() {
                svc::log::warn(&e.to_string());
            }
        }
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
        self.cfg = CollectorConfig { listen, db, ..cfg };
        self.global = global;
        self.tenants.clear();
        for h in self.hosts.values_mut() {
            h.defs = None;
        }
        self.refresh_tenants();
    }

    /// Drop hosts silent for `interval/forget` from memory, with their
    /// sessions; their stored data stays until purged.
    fn forget_silent(&mut self) {
        let limit = Duration::from_secs(self.cfg.forget);
        let gone: Vec<(Uuid, Uuid)> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.last_seen.elapsed() > limit)
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            self.hosts.remove(&key);
            self.sessions.retain(|_, s| (s.tenant, s.host) != key);
            svc::log::info(&format!(
                "host {} silent for {} s: forgotten",
                key.1, self.cfg.forget
            ));
        }
    }

    /// Delete hosts whose last record is older than `interval/purge`.
    fn purge_silent(&self) {
        if self.cfg.purge == 0 {
            return;
        }
        let cutoff = unix_now() - self.cfg.purge as i64;
        for t in self.tenants.keys() {
            match self.db.purge_stale(*t, cutoff) {
                Ok(hosts) => {
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
    }

    /// Keep every tenant within its storage quota (oldest days first).
    fn enforce_quotas(&self) {
        for t in self.tenants.keys() {
            match self.db.enforce_quota(*t) {
                Ok(days) => {
                    for d in days {
                        svc::log::info(&format!("tenant {t}: over quota, deleted {}", d.stem()));
                    }
                }
                Err(e) => svc::log::warn(&format!("tenant {t}: quota: {e}")),
            }
        }
    }

    /// The open sessions, without their keys, for the API's `/session`.
    fn publish_sessions(&self, now: i64) -> Result<(), crate::db::DbError> {
        use std::fmt::Write;
        let path = self.db.root().join(SESSIONS_FILE);
        let mut out = crate::db::Replacement::create(&path)?;
        out.write(b"{\"session\": [")?;
        let mut line = String::new();
        let mut first = true;
        for (id, s) in &self.sessions {
            let Some(h) = self.hosts.get(&(s.tenant, s.host)) else {
                continue;
            };
            line.clear();
            let seen = now - h.last_seen.elapsed().as_secs() as i64;
            let _ = write!(
                line,
                "{}\n{{\"tenantid\": \"{}\", \"hostid\": \"{}\", \"addr\": \"{}\", \"sessid\": \"{id:016x}\", \"lastcycle\": \"{}\", \"lastserial\": {}, \"remote\": \"{}\"}}",
                if first { "" } else { "," },
                s.tenant,
                s.host,
                h.remote.ip(),
                crate::db::time::iso(seen),
                s.window.highest(),
                h.remote
            );
            out.write(line.as_bytes())?;
            first = false;
        }
        out.write(b"\n]}\n")?;
        out.commit()
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
    fn publish_metrics(&self, cycle: Duration, by_status: &HashMap<&str, i64>) {
        let (received, reasons) = self.totals();
        let mut m = Dict::new();
        m.insert("time", Node::Int(unix_now()));
        m.insert("received", Node::Int(received as i64));
        m.insert("accepted", Node::Int(self.counters.accepted as i64));
        let mut rejected = Dict::new();
        for (reason, n) in reasons {
            rejected.insert(reason, Node::Int(n as i64));
        }
        m.insert("rejected", Node::Dict(rejected));
        m.insert("sessions", Node::Int(self.sessions.len() as i64));
        let mut statuses = Dict::new();
        for st in ["OK", "WARN", "ALERT", "CRIT", "STALE", "UNSET"] {
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
        if let Some(errors) = report::kernel_rcvbuf_errors() {
            m.insert("kernel_rcvbuf_errors", Node::Int(errors as i64));
        }
        let path = self.db.root().join(METRICS_FILE);
        if let Err(e) = crate::db::write_replace(&path, Node::Dict(m).to_json(true).as_bytes()) {
            svc::log::warn(&e.to_string());
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

fn parse_status(s: &str) -> Status {
    match s {
        "OK" => Status::Ok,
        "WARN" => Status::Warn,
        "ALERT" => Status::Alert,
        "CRIT" => Status::Crit,
        "STALE" => Status::Stale,
        _ => Status::Unset,
    }
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    svc::cli::daemon_options(&mut o, "opticon-collector");
    o.optopt(
        "m",
        "meter-config-path",
        "meter definitions (default /etc/opticon/opticon-meter.conf)",
        "FILE",
    );
    o.optflag(
        "",
        "metrics",
        "print the running collector's metrics and exit",
    );
    svc::cli::standard(&mut o);
    o
}

/// Run `opticon-collector` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let m = match svc::cli::parse("opticon-collector", &opts, args, "[options]", "") {
        Ok(m) => m,
        Err(status) => return status,
    };
    if let Err(status) = svc::cli::no_arguments("opticon-collector", &m) {
        return status;
    }
    if m.opt_present("metrics") {
        let text = load(&m).and_then(|(cfg, _)| {
            let path = cfg.db.join(METRICS_FILE);
            std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e} (is the collector running?)", path.display()))
        });
        return match text {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("opticon-collector: {e}");
                1
            }
        };
    }
    match serve(&m) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("opticon-collector: {e}");
            svc::log::err(&e);
            1
        }
    }
}

fn load(m: &getopts::Matches) -> Result<(CollectorConfig, Vec<MeterDef>), String> {
    svc::cli::daemon_config("opticon-collector", m, CollectorConfig::from_dict)
}

fn serve(m: &getopts::Matches) -> Result<(), String> {
    svc::daemon::start_logging("opticon-collector", m)?;
    let (cfg, defs) = load(m)?;
    let sock =
        UdpSocket::bind(cfg.listen).map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let rcvbuf = set_rcvbuf(&sock, cfg.rcvbuf);
    // Raw ICMP sockets need root: opened before privileges are dropped.
    let ping_sockets = cfg.ping.then(ping::Sockets::open);
    let pidfile = svc::daemon::become_service("opticon-collector", m)?;
    svc::log::info(&format!(
        "opticon-collector {} listening on {} (receive buffer {rcvbuf} bytes), database {}",
        env!("CARGO_PKG_VERSION"),
        cfg.listen,
        cfg.db.display()
    ));
    let mut collector = Collector::new(cfg, defs);
    collector.rcvbuf = rcvbuf;
    let mut next_write = next_boundary(Duration::from_secs(collector.cfg.write_interval));
    let mut next_refresh = Instant::now();
    // After detaching: threads do not survive the fork.
    let queue_size = collector.cfg.queue;
    let mut queue = receive::start(sock, queue_size)
        .map_err(|e| format!("cannot start the receive thread: {e}"))?;
    collector.queue = Some(queue.stats());
    let ping_every = Duration::from_secs(collector.cfg.ping_interval);
    collector.pinger = ping_sockets.and_then(|s| ping::Pinger::start(s, ping_every));
    while !svc::signals::terminating() {
        if svc::signals::take_reload() {
            match load(m) {
                Ok((cfg, defs)) => {
                    collector.reconfigure(cfg, defs);
                    svc::log::info("configuration reloaded");
                }
                Err(e) => svc::log::err(&format!(
                    "reload failed, keeping the running configuration: {e}"
                )),
            }
        }
        // Work through a burst before looking at the clocks again.
        let mut handled = 0;
        while handled < 1024 {
            match queue.try_next() {
                Some((d, from)) => collector.handle(&d, from),
                None => break,
            }
            handled += 1;
        }
        if handled == 0 {
            std::thread::sleep(receive::NAP);
        }
        let now = Instant::now();
        if now >= next_refresh {
            collector.refresh_tenants();
            next_refresh = now + Duration::from_secs(collector.cfg.tenant_refresh);
        }
        if now >= next_write {
            // Everything waiting, every few hosts: a cycle that creates
            // files for new hosts must not leave the queue to fill.
            collector.write_cycle_with(&mut |c| {
                for _ in 0..queue_size {
                    match queue.try_next() {
                        Some((d, from)) => c.handle(&d, from),
                        None => break,
                    }
                }
            });
            next_write += Duration::from_secs(collector.cfg.write_interval);
        }
    }
    collector.write_cycle();
    let (received, rejected) = collector.totals();
    svc::log::info(&format!(
        "opticon-collector exiting on signal: {received} received, {} accepted, rejected {rejected:?}",
        collector.counters.accepted
    ));
    drop(pidfile);
    Ok(())
}

/// The next instant aligned to a multiple of `every` in wall-clock time
/// (records land on whole minutes with the default interval).
fn next_boundary(every: Duration) -> Instant {
    let secs = every.as_secs().max(1);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let into = Duration::from_nanos((now.as_nanos() % (u128::from(secs) * 1_000_000_000)) as u64);
    Instant::now() + (every - into.min(every))
}

/// Ask for a large kernel receive buffer; returns the size granted.
fn set_rcvbuf(sock: &UdpSocket, bytes: usize) -> usize {
    use std::os::unix::io::AsRawFd;
    let fd = sock.as_raw_fd();
    let want = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt/getsockopt on a socket this function borrows.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&want as *const libc::c_int).cast(),
            4,
        );
        let mut got: libc::c_int = 0;
        let mut len: libc::socklen_t = 4;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
        got.max(0) as usize
    }
}
