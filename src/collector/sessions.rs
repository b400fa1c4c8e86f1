//! Tenants and sessions: tenant keys and meter definitions cached in
//! memory (no disk access on the rejection path, refreshed when
//! `tenant.conf` changes), sessions opened by auth datagrams, and meter
//! datagrams opened, verified and queued for their host.

use super::state::Collector;
use crate::conf::Node;
use crate::crypto::{SealKey, KEY_LEN};
use crate::db::meters::{self, MeterDef, Origin};
use crate::db::tenant::TENANT_FILE;
use crate::model::binary::validate_payload;
use crate::model::unix_now;
use crate::svc;
use crate::wire::{peek, AuthHeader, Datagram, MeterHeader, Rejection, ReplayWindow};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use uuid::Uuid;

/// What the collector knows of one tenant, kept in memory.
pub(super) struct TenantInfo {
    pub(super) key: SealKey,
    /// Shared by every host of the tenant without a `host.conf`.
    pub(super) defs: Arc<Vec<MeterDef>>,
    pub(super) modified: Option<SystemTime>,
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
