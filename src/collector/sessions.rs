//! Tenants and sessions: tenant keys and meter definitions cached in
//! memory (no disk access on the rejection path, refreshed when
//! `tenant.conf` changes), sessions opened by auth datagrams, and meter
//! datagrams opened, verified and queued for their host.

use super::limits::TenantLimits;
use super::state::Collector;
use crate::conf::Node;
use crate::crypto::{SealKey, KEY_LEN};
use crate::db::meters::{self, MeterDef, Origin};
use crate::db::tenant::TENANT_FILE;
use crate::model::binary::{validate_payload, PayloadReader};
use crate::model::unix_now;
use crate::svc;
use crate::wire::{peek, AuthHeader, Datagram, MeterHeader, Rejection, ReplayWindow};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use uuid::Uuid;

/// How often a refusal from one address for one tenant is logged.
pub const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(600);
/// Address and tenant pairs remembered for that, at most.
const REFUSAL_LOG_KEYS: usize = 4096;

/// What the collector knows of one tenant, kept in memory.
#[derive(Clone)]
pub(super) struct TenantInfo {
    pub(super) key: SealKey,
    /// Shared by every host of the tenant without a `host.conf`.
    pub(super) defs: Arc<Vec<MeterDef>>,
    pub(super) modified: Option<SystemTime>,
    /// Its limits: the config's, overlaid with its metadata.
    pub(super) limits: TenantLimits,
    /// Its metadata (export targets read the tenant's ids there).
    pub(super) metadata: Option<crate::conf::Dict>,
}

/// A verified payload that arrived while its host was out on a write
/// cycle's worker thread.
pub(super) struct ParkedPayload {
    pub(super) host: (Uuid, Uuid),
    pub(super) payload: Vec<u8>,
    pub(super) from: SocketAddr,
    /// Receive time.
    pub(super) now: i64,
    /// The agent's sample time.
    pub(super) sent: i64,
}

/// One open session.
pub(super) struct Session {
    pub(super) tenant: Uuid,
    pub(super) host: Uuid,
    /// The session key as the agent sent it.
    pub(super) secret: [u8; KEY_LEN],
    /// The derived key (624 bytes), while in the key cache.
    pub(super) key: Option<Box<SealKey>>,
    pub(super) window: ReplayWindow,
}

/// A meter datagram's plaintext and whether its MAC verified, from a
/// worker thread.
type Unsealed = (Vec<u8>, Result<(), Rejection>);

/// Batches smaller than this are opened on the collector's own thread:
/// starting the workers costs about a tenth more CPU per datagram, worth
/// it only when a backlog waits (a batch this large means the queue holds
/// more than the thread alone keeps up with).
const PARALLEL_BATCH: usize = 256;

/// When a file was last changed (`None` when it is absent).
pub(super) fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Collector {
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
        Arc::make_mut(&mut self.tenants).retain(|id, _| ids.contains(id));
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
                    let mut defs = self.global.as_ref().clone();
                    if let Some(Node::Dict(md)) = doc.get("meter") {
                        if let Err(e) = meters::overlay(&mut defs, md, Origin::Tenant) {
                            svc::log::warn(&format!("tenant {id}: {e}"));
                        }
                    }
                    let (limits, problems) = self
                        .cfg
                        .limits
                        .overlaid(doc.get("metadata").and_then(Node::as_dict));
                    for p in problems {
                        svc::log::warn(&format!("tenant {id}: {p}"));
                    }
                    Arc::make_mut(&mut self.tenants).insert(
                        id,
                        TenantInfo {
                            key: SealKey::new(&tenant.key.0),
                            defs: Arc::new(defs),
                            modified,
                            limits,
                            metadata: doc.get("metadata").and_then(Node::as_dict).cloned(),
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
        let r = self.open(d, from);
        self.count(d, from, r);
    }

    /// Count (and log, where it means a misconfigured agent) what became
    /// of a datagram.
    fn count(&mut self, d: &[u8], from: SocketAddr, r: Result<(), Rejection>) {
        match r {
            Ok(()) => self.counters.accepted += 1,
            // An agent resends its auth datagram on purpose (UDP may lose
            // it): a repeat of a live session's is no attack.
            Err(Rejection::Replay) if self.is_auth_of_live_session(d) => {
                self.counters.auth_repeats += 1;
            }
            Err(r) => {
                self.note_refusal(d, from, &r);
                self.reject(&r);
            }
        }
    }

    fn is_auth_of_live_session(&self, d: &[u8]) -> bool {
        matches!(peek(d), Ok(Datagram::Auth(a))
            if self.sessions.get(&a.session).is_some_and(|s| s.tenant == a.tenant))
    }

    /// Log a refusal that means a misconfigured agent (a wrong tenant key,
    /// an unknown tenant), once per source address and tenant per
    /// [`REFUSAL_LOG_EVERY`]; every refusal is counted regardless.
    fn note_refusal(&mut self, d: &[u8], from: SocketAddr, r: &Rejection) {
        let (tenant, what) = match (peek(d), r) {
            (Ok(Datagram::Auth(a)), Rejection::BadMac) => (a.tenant, "bad MAC"),
            (Ok(Datagram::Auth(a)), Rejection::UnknownTenant) => (a.tenant, "auth datagram"),
            (Ok(Datagram::Meter(m)), Rejection::BadMac) => match self.sessions.get(&m.session) {
                Some(s) => (s.tenant, "bad MAC"),
                None => return,
            },
            _ => return,
        };
        let key = (from.ip(), tenant);
        let now = std::time::Instant::now();
        if self
            .refusal_logged
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < REFUSAL_LOG_EVERY)
        {
            return;
        }
        if self.refusal_logged.len() >= REFUSAL_LOG_KEYS {
            self.refusal_logged
                .retain(|_, t| now.duration_since(*t) < REFUSAL_LOG_EVERY);
            if self.refusal_logged.len() >= REFUSAL_LOG_KEYS {
                return;
            }
        }
        self.refusal_logged.insert(key, now);
        let why = match r {
            Rejection::UnknownTenant => "unknown tenant",
            _ => "wrong key?",
        };
        svc::log::warn(&format!(
            "{what} from {} for tenant {tenant} ({why})",
            from.ip()
        ));
    }

    fn open(&mut self, d: &[u8], from: SocketAddr) -> Result<(), Rejection> {
        if d.len() > self.cfg.max_datagram {
            return Err(Rejection::Oversize(d.len()));
        }
        match peek(d)? {
            Datagram::Auth(a) => self.open_auth(&a, from),
            Datagram::Meter(m) => self.open_meter(&m, from),
        }
    }

    /// An auth datagram: open a session, or re-key one of the same host.
    fn open_auth(&mut self, a: &AuthHeader, from: SocketAddr) -> Result<(), Rejection> {
        let tenant = self
            .tenants
            .get(&a.tenant)
            .ok_or(Rejection::UnknownTenant)?;
        let now = unix_now();
        match self.sessions.get_mut(&a.session) {
            Some(s) if s.tenant == a.tenant => {
                let body = a.open(&tenant.key, Some(&mut s.window), now, self.cfg.max_skew)?;
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
                let body = a.open(&tenant.key, Some(&mut window), now, self.cfg.max_skew)?;
                if body.host.is_nil() || body.host == Uuid::max() {
                    return Err(Rejection::Malformed);
                }
                // A host new to the collector counts against its tenant's
                // limits (a known host opening a new session does not).
                let limits = tenant.limits;
                // Only a host the database has never seen is new: after a
                // restart every known host comes back at once.
                if !self.hosts.contains_key(&(a.tenant, body.host)) && {
                    let unknown = !self.db.host_dir(a.tenant, body.host).exists();
                    !self
                        .usage
                        .entry(a.tenant)
                        .or_default()
                        .admit_host(&limits, unknown)
                } {
                    return Err(Rejection::OverLimit);
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

    /// A meter datagram of an open session: opened, verified, and its
    /// payload validated and queued for the host's next write cycle.
    fn open_meter(&mut self, m: &MeterHeader, from: SocketAddr) -> Result<(), Rejection> {
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
        let kept = result.and_then(|host| self.keep_meter(host, &plain, from));
        self.plain = plain;
        kept
    }

    /// A meter datagram unsealed ahead by a worker thread: its replay
    /// window is checked and moved here, in arrival order.
    fn open_unsealed(
        &mut self,
        m: &MeterHeader,
        from: SocketAddr,
        unsealed: Result<&[u8], Rejection>,
    ) -> Result<(), Rejection> {
        let s = self
            .sessions
            .get_mut(&m.session)
            .ok_or(Rejection::UnknownSession)?;
        s.window.check(m.serial)?;
        let plain = unsealed?;
        s.window.accept(m.serial);
        let host = (s.tenant, s.host);
        self.keep_meter(host, plain, from)
    }

    /// A verified payload: checked, stamped with the receive time, and
    /// queued for its host within the tenant's limits.
    fn keep_meter(
        &mut self,
        host: (Uuid, Uuid),
        plain: &[u8],
        from: SocketAddr,
    ) -> Result<(), Rejection> {
        let max_skew = self.cfg.max_skew;
        validate_payload(plain).map_err(Rejection::BadPayload)?;
        // A sample time far from the collector's clock is refused as
        // an auth datagram's would be; what is kept is stamped with
        // the collector's receive time, by which its meters expire.
        let now = unix_now();
        let sent = PayloadReader::new(plain)
            .map_err(Rejection::BadPayload)?
            .time();
        let skew = sent.saturating_sub(now);
        if skew.abs() > max_skew {
            return Err(Rejection::ClockSkew(skew));
        }
        if self.in_flight.contains(&host) {
            // Its state is out on a worker thread: kept as received until
            // it is back (then limited and merged as below), within the
            // receive queue's bytes.
            if self.parked_bytes + plain.len() > self.cfg.queue_bytes {
                self.usage.entry(host.0).or_default().refused.bytes += 1;
                return Err(Rejection::OverLimit);
            }
            self.parked_bytes += plain.len();
            self.parked.push(ParkedPayload {
                host,
                payload: plain.to_vec(),
                from,
                now,
                sent,
            });
            return Ok(());
        }
        self.keep_for_host(host, plain, from, now, sent)
    }

    /// Keep the payloads that waited for their hosts to come back from a
    /// write cycle's worker threads, in arrival order.
    pub(super) fn unpark(&mut self) {
        self.parked_bytes = 0;
        for p in std::mem::take(&mut self.parked) {
            if let Err(r) = self.keep_for_host(p.host, &p.payload, p.from, p.now, p.sent) {
                // Counted as accepted on arrival: refused after all.
                self.counters.accepted = self.counters.accepted.saturating_sub(1);
                self.reject(&r);
            }
        }
    }

    /// A verified payload kept for its host (created when new) within its
    /// tenant's bytes per cycle; `now` is its receive time, `sent` the
    /// agent's.
    pub(super) fn keep_for_host(
        &mut self,
        host: (Uuid, Uuid),
        plain: &[u8],
        from: SocketAddr,
        now: i64,
        sent: i64,
    ) -> Result<(), Rejection> {
        self.touch(host, from);
        let limit = self
            .tenants
            .get(&host.0)
            .map_or(u64::MAX, |t| t.limits.max_host_bytes_per_cycle);
        let h = self.hosts.get_mut(&host).ok_or(Rejection::UnknownSession)?;
        if h.cycle_bytes + plain.len() as u64 > limit {
            self.usage.entry(host.0).or_default().refused.bytes += 1;
            return Err(Rejection::OverLimit);
        }
        h.cycle_bytes += plain.len() as u64;
        // Exported samples carry the agent's time: both collectors of
        // a pair export the same timestamps, which engines deduplicate.
        h.agent_time = h.agent_time.max(sent);
        h.queue_payload(plain, now, &mut self.arrival);
        Ok(())
    }

    /// Handle a batch of datagrams in arrival order, with the meter
    /// datagrams' MACs and decryption (most of the work) spread over
    /// `workers` threads first when the batch is large enough to pay for
    /// them. Sessions are only read meanwhile; replay windows, hosts and
    /// counters change afterwards, in order, as [`Collector::handle`]
    /// would change them.
    pub fn handle_batch(&mut self, batch: &[super::receive::Received], workers: usize) {
        if workers < 2 || batch.len() < PARALLEL_BATCH {
            for (d, from) in batch {
                self.handle(d, *from);
            }
            return;
        }
        // Keys first, derived on the threads too (at a million hosts
        // hardly any is still in the cache); cached in arrival order
        // (deriving one may evict another from the cache: a datagram
        // whose key is gone by the end is handled in turn).
        let mut wanted: Vec<(u64, [u8; KEY_LEN])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (d, _) in batch {
            if let Ok(Datagram::Meter(m)) = peek(d) {
                if let Some(s) = self.sessions.get(&m.session) {
                    if s.key.is_none() && seen.insert(m.session) {
                        wanted.push((m.session, s.secret));
                    }
                }
            }
        }
        let derived = svc::pool::map_scoped(&mut wanted, workers, |(session, secret)| {
            (*session, Box::new(SealKey::new(secret)))
        });
        for (session, key) in derived {
            if let Some(s) = self.sessions.get_mut(&session) {
                s.key = Some(key);
                self.cache_key(session);
            }
        }
        let mut jobs: Vec<(usize, MeterHeader<'_>, &SealKey)> = batch
            .iter()
            .enumerate()
            .filter(|(_, (d, _))| d.len() <= self.cfg.max_datagram)
            .filter_map(|(i, (d, _))| match peek(d) {
                Ok(Datagram::Meter(m)) => {
                    let key = self.sessions.get(&m.session)?.key.as_deref()?;
                    Some((i, m, key))
                }
                _ => None,
            })
            .collect();
        let mut results: Vec<Option<Unsealed>> = (0..batch.len()).map(|_| None).collect();
        let unsealed = svc::pool::map_scoped(&mut jobs, workers, |(i, m, key)| {
            let mut plain = Vec::new();
            let r = m.unseal(key, &mut plain);
            (*i, plain, r)
        });
        for (i, plain, r) in unsealed {
            results[i] = Some((plain, r));
        }
        // In order; a session re-keyed by an auth datagram earlier in the
        // batch has its later datagrams opened again with the new key.
        let mut rekeyed = std::collections::HashSet::new();
        for ((d, from), unsealed) in batch.iter().zip(results) {
            let meter = match peek(d) {
                Ok(Datagram::Meter(m)) => Some(m),
                Ok(Datagram::Auth(a)) => {
                    rekeyed.insert(a.session);
                    None
                }
                Err(_) => None,
            };
            match (meter, unsealed) {
                (Some(m), Some((plain, r))) if !rekeyed.contains(&m.session) => {
                    self.counters.received += 1;
                    let r = self.open_unsealed(&m, *from, r.map(|()| plain.as_slice()));
                    self.count(d, *from, r);
                }
                _ => self.handle(d, *from),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session per host: at a million hosts each byte of it is about a
    /// megabyte twice over (the table keeps up to half its slots free).
    #[test]
    fn a_session_stays_small() {
        assert!(
            std::mem::size_of::<(u64, Session)>() <= 104,
            "{} bytes",
            std::mem::size_of::<(u64, Session)>()
        );
    }
}
