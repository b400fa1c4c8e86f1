//! Tenants and their hosts on disk: the directory tree and its metadata.

use super::host;
use super::store::{self, HostAppender};
use super::time::{Date, DAY};
use super::{dir_bytes, dir_bytes_but, io_at, write_atomic, DbError};
use crate::conf::{self, Dict, Node};
use crate::crypto::random_key;
use crate::model::{Tenant, TenantKey, DEFAULT_QUOTA_MB};
use std::fs;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Tenant metadata file name.
pub const TENANT_FILE: &str = "tenant.conf";
/// In the root: marks the directory as an Opticon database.
pub const MARKER_FILE: &str = "opticon.db";
/// What the marker says: what the directory is, and its layout.
pub const MARKER_TEXT: &str = "Opticon database (see opticon-db(8))\nlayout: tenant day files\n";
/// The marker's line saying the samples are in tenant day files.
pub const LAYOUT_LINE: &str = "layout: tenant day files";
/// Host metadata file name.
pub const HOST_FILE: &str = "host.conf";
/// Host log file name.
pub const HOST_LOG: &str = "host.log";
/// In a tenant's directory: its modification time is when a tool last
/// changed a host's directory (replaced its `host.conf`, deleted it), so
/// that the collector looks at every host's directory only then, not
/// every cycle (one `stat` per host per minute at 100,000 hosts was 5 %
/// of its time).
pub const HOSTS_CHANGED_FILE: &str = "tenant.changed";

/// One line of a tenant listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    /// Tenant id.
    pub id: Uuid,
    /// Tenant name.
    pub name: String,
    /// Number of hosts with a directory.
    pub hosts: usize,
}

/// A database root directory.
#[derive(Debug, Clone)]
pub struct Db {
    root: PathBuf,
}

fn uuid_dirs(dir: &Path) -> Result<Vec<Uuid>, DbError> {
    let mut ids = Vec::new();
    for entry in io_at(dir, fs::read_dir(dir))? {
        let entry = io_at(dir, entry)?;
        if !io_at(&entry.path(), entry.file_type())?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Ok(id) = Uuid::parse_str(name) {
            if id.hyphenated().to_string() == name {
                ids.push(id);
            }
        }
    }
    ids.sort();
    Ok(ids)
}

fn read_doc(path: &Path) -> Result<Dict, DbError> {
    conf::load_file(path).map_err(|e| match e {
        conf::FileError::Io(p, err) => DbError::Io(p, err),
        conf::FileError::Syntax(p, err) => DbError::Corrupt(p, err.to_string()),
        keys @ conf::FileError::Keys(..) => DbError::Corrupt(path.to_path_buf(), keys.to_string()),
    })
}

fn write_doc(path: &Path, doc: &Dict) -> Result<(), DbError> {
    let mut text = Node::Dict(doc.clone()).to_json(true);
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

impl Db {
    /// A database rooted at `root` (nothing is touched yet).
    pub fn new(root: impl Into<PathBuf>) -> Db {
        Db { root: root.into() }
    }

    /// Whether the root holds a database: a directory with the marker
    /// that [`Db::init`] writes, or that is empty (as `make install`
    /// leaves it), or that holds a tenant or a published file (a database
    /// older than the marker).
    pub fn check_root(&self) -> Result<(), DbError> {
        let not = |why| Err(DbError::NotADatabase(self.root.clone(), why));
        match fs::metadata(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not("no such directory"),
            Err(e) => return Err(DbError::Io(self.root.clone(), e)),
            Ok(m) if !m.is_dir() => return not("not a directory"),
            Ok(_) => {}
        }
        if self.root.join(MARKER_FILE).exists() {
            return Ok(());
        }
        let mut entries = io_at(&self.root, fs::read_dir(&self.root))?.peekable();
        if entries.peek().is_none() || !uuid_dirs(&self.root)?.is_empty() {
            return Ok(());
        }
        let published = [
            crate::db::published::METRICS_FILE,
            crate::db::published::SESSIONS_FILE,
        ];
        if published.iter().any(|f| self.root.join(f).exists()) {
            return Ok(());
        }
        not("it holds neither tenants nor the database marker")
    }

    /// Create the database here if there is none: the root directory and
    /// its marker (`opticon-db --init`).
    pub fn init(&self) -> Result<(), DbError> {
        io_at(&self.root, fs::create_dir_all(&self.root))?;
        let marker = self.root.join(MARKER_FILE);
        if !marker.exists() {
            io_at(&marker, fs::write(&marker, MARKER_TEXT))?;
        }
        Ok(())
    }

    /// Whether the samples are in tenant day files, the layout this code
    /// reads and writes. The marker says so once known; a database
    /// without the mark is looked at (any host day file left means the
    /// older layout, [`DbError::OldLayout`]) and marked when it has none.
    pub fn check_layout(&self) -> Result<(), DbError> {
        let marker = self.root.join(MARKER_FILE);
        if fs::read_to_string(&marker).is_ok_and(|t| t.contains(LAYOUT_LINE)) {
            return Ok(());
        }
        if !self.root.is_dir() {
            return Ok(());
        }
        for t in self.tenant_ids()? {
            if super::migrate::needs_migration(&self.tenant_dir(t))? {
                return Err(DbError::OldLayout(self.root.clone()));
            }
        }
        self.mark_layout();
        Ok(())
    }

    /// Record in the marker that the layout is tenant day files (best
    /// effort: a read-only database is looked at again next time).
    pub fn mark_layout(&self) {
        let marker = self.root.join(MARKER_FILE);
        if fs::write(&marker, MARKER_TEXT).is_ok() {
            super::adopt_owner(&marker);
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make everything written under the root durable with one
    /// `syncfs(2)`: the batched fsync a writer issues once per write cycle
    /// instead of one fsync per host.
    pub fn sync(&self) -> Result<(), DbError> {
        let dir = io_at(&self.root, fs::File::open(&self.root))?;
        // SAFETY: syncfs on a descriptor this function owns.
        let rc = unsafe { libc::syncfs(std::os::unix::io::AsRawFd::as_raw_fd(&dir)) };
        if rc != 0 {
            return Err(DbError::Io(
                self.root.clone(),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// A tenant's directory.
    pub fn tenant_dir(&self, tenant: Uuid) -> PathBuf {
        self.under_root(&[tenant])
    }

    /// A host's directory.
    pub fn host_dir(&self, tenant: Uuid, host: Uuid) -> PathBuf {
        self.under_root(&[tenant, host])
    }

    /// The root joined with these ids, in one allocation (the write
    /// cycle makes a host's path every cycle).
    fn under_root(&self, ids: &[Uuid]) -> PathBuf {
        let len = self.root.as_os_str().len() + ids.len() * (1 + uuid::fmt::Hyphenated::LENGTH);
        let mut path = PathBuf::with_capacity(len);
        path.push(&self.root);
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        for id in ids {
            path.push(id.hyphenated().encode_lower(&mut text));
        }
        path
    }

    fn require_tenant(&self, tenant: Uuid) -> Result<PathBuf, DbError> {
        let dir = self.tenant_dir(tenant);
        if dir.join(TENANT_FILE).is_file() {
            Ok(dir)
        } else {
            Err(DbError::NotFound(format!("tenant {tenant}")))
        }
    }

    /// Create a tenant; a missing id or key is generated. Refuses an
    /// existing tenant.
    pub fn create_tenant(
        &self,
        id: Option<Uuid>,
        name: &str,
        key: Option<TenantKey>,
    ) -> Result<Tenant, DbError> {
        let id = match id {
            Some(id) => id,
            None => io_at(&self.root, crate::crypto::random_uuid())?,
        };
        let key = match key {
            Some(k) => k,
            None => TenantKey(io_at(&self.root, random_key())?),
        };
        let dir = self.tenant_dir(id);
        io_at(&self.root, fs::create_dir_all(&self.root))?;
        match fs::create_dir(&dir) {
            Ok(()) => super::adopt_owner(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(DbError::Exists(format!("tenant {id}")));
            }
            Err(e) => return Err(DbError::Io(dir, e)),
        }
        let mut doc = Dict::new();
        doc.insert("name", Node::Str(name.into()));
        doc.insert("key", Node::Str(key.to_base64()));
        doc.insert("quota", Node::Int(DEFAULT_QUOTA_MB as i64));
        doc.insert("metadata", Node::Dict(Dict::new()));
        doc.insert("meter", Node::Dict(Dict::new()));
        write_doc(&dir.join(TENANT_FILE), &doc)?;
        Ok(Tenant {
            id,
            name: name.into(),
            key,
            quota_mb: DEFAULT_QUOTA_MB,
        })
    }

    /// Every tenant id, sorted.
    pub fn tenant_ids(&self) -> Result<Vec<Uuid>, DbError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        Ok(uuid_dirs(&self.root)?
            .into_iter()
            .filter(|t| self.tenant_dir(*t).join(TENANT_FILE).is_file())
            .collect())
    }

    /// Id, name and host count of every tenant.
    pub fn list_tenants(&self) -> Result<Vec<TenantInfo>, DbError> {
        self.tenant_ids()?
            .into_iter()
            .map(|id| {
                Ok(TenantInfo {
                    id,
                    name: self.tenant(id)?.name,
                    hosts: self.hosts(id)?.len(),
                })
            })
            .collect()
    }

    /// A tenant's metadata document as stored.
    pub fn tenant_doc(&self, tenant: Uuid) -> Result<Dict, DbError> {
        read_doc(&self.require_tenant(tenant)?.join(TENANT_FILE))
    }

    /// Replace a tenant's metadata document (atomically).
    pub fn save_tenant_doc(&self, tenant: Uuid, doc: &Dict) -> Result<(), DbError> {
        write_doc(&self.require_tenant(tenant)?.join(TENANT_FILE), doc)
    }

    /// A tenant's typed fields.
    pub fn tenant(&self, tenant: Uuid) -> Result<Tenant, DbError> {
        let doc = self.tenant_doc(tenant)?;
        let path = self.tenant_dir(tenant).join(TENANT_FILE);
        let key_text = doc.get("key").and_then(Node::as_str).unwrap_or_default();
        let key = TenantKey::from_base64(key_text)
            .map_err(|e| DbError::Corrupt(path.clone(), e.to_string()))?;
        let quota_mb = match doc.get("quota") {
            None => DEFAULT_QUOTA_MB,
            Some(Node::Int(q)) if *q >= 0 => *q as u64,
            Some(_) => {
                return Err(DbError::Corrupt(
                    path,
                    "quota is not a whole number of megabytes".into(),
                ))
            }
        };
        Ok(Tenant {
            id: tenant,
            name: doc
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_string(),
            key,
            quota_mb,
        })
    }

    /// Change one top-level field of a tenant's document.
    pub fn set_tenant_field(&self, tenant: Uuid, key: &str, value: Node) -> Result<(), DbError> {
        let mut doc = self.tenant_doc(tenant)?;
        doc.insert(key, value);
        self.save_tenant_doc(tenant, &doc)
    }

    /// Delete a tenant and everything it holds.
    pub fn delete_tenant(&self, tenant: Uuid) -> Result<(), DbError> {
        let dir = self.require_tenant(tenant)?;
        io_at(&dir, fs::remove_dir_all(&dir))
    }

    /// A tenant's hosts (every host directory), sorted.
    pub fn hosts(&self, tenant: Uuid) -> Result<Vec<Uuid>, DbError> {
        uuid_dirs(&self.require_tenant(tenant)?)
    }

    /// The directory of an existing host.
    pub fn require_host(&self, tenant: Uuid, host: Uuid) -> Result<PathBuf, DbError> {
        self.require_tenant(tenant)?;
        let dir = self.host_dir(tenant, host);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(DbError::NotFound(format!("host {host} of tenant {tenant}")))
        }
    }

    /// Resolve a host given as a UUID or as a hostname (the `hostname`
    /// meter of its latest sample, compared without case; must be unique).
    pub fn find_host(&self, tenant: Uuid, text: &str) -> Result<Uuid, DbError> {
        if let Ok(id) = Uuid::parse_str(text) {
            self.require_host(tenant, id)?;
            return Ok(id);
        }
        let mut found = Vec::new();
        for h in self.hosts(tenant)? {
            if let Some((_, m)) = host::latest(&self.host_dir(tenant, h))? {
                let name = m.get("hostname").and_then(|m| m.value.element(0));
                if let Some(crate::model::ScalarRef::Str(n)) = name {
                    if n.eq_ignore_ascii_case(text) {
                        found.push(h);
                    }
                }
            }
        }
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(DbError::NotFound(format!(
                "host named {text:?} in tenant {tenant}"
            ))),
            _ => Err(DbError::Invalid(format!(
                "hostname {text:?} matches {} hosts; give the UUID",
                found.len()
            ))),
        }
    }

    /// A writer of one host (creating its directory), holding the
    /// tenant's writer lock while it lives.
    pub fn writer(&self, tenant: Uuid, host: Uuid) -> Result<HostAppender, DbError> {
        HostAppender::open(&self.require_tenant(tenant)?, host)
    }

    /// The document holding meter definitions and watchers: the host's
    /// with `Some(host)`, else the tenant's.
    pub fn meter_doc(&self, tenant: Uuid, host: Option<Uuid>) -> Result<Dict, DbError> {
        match host {
            Some(h) => self.host_doc(tenant, h),
            None => self.tenant_doc(tenant),
        }
    }

    /// Save what [`Db::meter_doc`] gave.
    pub fn save_meter_doc(
        &self,
        tenant: Uuid,
        host: Option<Uuid>,
        doc: &Dict,
    ) -> Result<(), DbError> {
        match host {
            Some(h) => self.save_host_doc(tenant, h, doc),
            None => self.save_tenant_doc(tenant, doc),
        }
    }

    /// Delete a host and its data: its directory (it is gone for every
    /// reader and writer), then its records, rewriting the tenant's day
    /// files that hold any, all under the tenant's writer lock.
    pub fn delete_host(&self, tenant: Uuid, host: Uuid) -> Result<(), DbError> {
        let dir = self.require_host(tenant, host)?;
        let tenant_dir = self.tenant_dir(tenant);
        let days = store::days_dir(&tenant_dir);
        // Under the lock, so no write cycle stores the host in between.
        let _lock = match days.exists() {
            true => Some(store::lock_days(&days)?),
            false => None,
        };
        io_at(&dir, fs::remove_dir_all(&dir))?;
        if days.exists() {
            store::rewrite::remove_hosts_locked(&tenant_dir, &[host])?;
        }
        self.mark_hosts_changed(tenant)
    }

    /// Say that a host directory of `tenant` changed by other hands than
    /// the collector's (its `host.conf` replaced, the host deleted): the
    /// collector looks at every host directory of the tenant at its next
    /// write cycle ([`HOSTS_CHANGED_FILE`]).
    pub fn mark_hosts_changed(&self, tenant: Uuid) -> Result<(), DbError> {
        use std::os::unix::io::AsRawFd;
        let path = self.tenant_dir(tenant).join(HOSTS_CHANGED_FILE);
        let fresh = !path.exists();
        let file = io_at(
            &path,
            fs::OpenOptions::new().create(true).append(true).open(&path),
        )?;
        if fresh {
            super::adopt_owner(&path);
        }
        // Now, by the file system's clock (write permission suffices).
        // SAFETY: a valid descriptor; null asks for the current time.
        if unsafe { libc::futimens(file.as_raw_fd(), std::ptr::null()) } != 0 {
            return Err(DbError::Io(path, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// When a host directory of `tenant` was last marked changed
    /// ([`Db::mark_hosts_changed`]); `None` when never.
    pub fn hosts_changed(&self, tenant: Uuid) -> Option<std::time::SystemTime> {
        fs::metadata(self.tenant_dir(tenant).join(HOSTS_CHANGED_FILE))
            .and_then(|m| m.modified())
            .ok()
    }

    /// A host's metadata document (empty when it has none).
    pub fn host_doc(&self, tenant: Uuid, host: Uuid) -> Result<Dict, DbError> {
        let path = self.require_host(tenant, host)?.join(HOST_FILE);
        if path.exists() {
            read_doc(&path)
        } else {
            Ok(Dict::new())
        }
    }

    /// Replace a host's metadata document (atomically).
    pub fn save_host_doc(&self, tenant: Uuid, host: Uuid, doc: &Dict) -> Result<(), DbError> {
        write_doc(&self.require_host(tenant, host)?.join(HOST_FILE), doc)?;
        self.mark_hosts_changed(tenant)
    }

    /// Bytes of every file of a tenant.
    pub fn tenant_bytes(&self, tenant: Uuid) -> Result<u64, DbError> {
        Ok(self.tenant_rest_bytes(tenant)? + self.tenant_day_bytes(tenant)?)
    }

    /// Bytes of a tenant's day files (a few files: quick to measure).
    pub fn tenant_day_bytes(&self, tenant: Uuid) -> Result<u64, DbError> {
        let days = store::days_dir(&self.require_tenant(tenant)?);
        match days.is_dir() {
            true => dir_bytes(&days),
            false => Ok(0),
        }
    }

    /// Bytes of a tenant's files but its day files: its own files and
    /// every host's directory (configurations, logs). A walk of every
    /// host: at a million hosts it takes minutes, so the collector
    /// measures it off its main thread.
    pub fn tenant_rest_bytes(&self, tenant: Uuid) -> Result<u64, DbError> {
        dir_bytes_but(&self.require_tenant(tenant)?, Some(store::DAYS_DIR))
    }

    /// Delete whole days, oldest first, until the tenant fits its quota
    /// (everything it occupies counts) or only the newest day is left.
    /// Returns the dates deleted, and why the tenant is still over its
    /// quota when it is.
    pub fn enforce_quota(&self, tenant: Uuid) -> Result<(Vec<Date>, Option<String>), DbError> {
        self.enforce_quota_beside(tenant, self.tenant_rest_bytes(tenant)?)
    }

    /// [`Db::enforce_quota`] given the bytes of the tenant's files but
    /// its day files ([`Db::tenant_rest_bytes`], measured before): only
    /// the day files are measured, again after each day deleted.
    pub fn enforce_quota_beside(
        &self,
        tenant: Uuid,
        rest: u64,
    ) -> Result<(Vec<Date>, Option<String>), DbError> {
        let quota = self.tenant(tenant)?.quota_mb.saturating_mul(1 << 20);
        let dir = self.tenant_dir(tenant);
        let mut deleted = Vec::new();
        let mut why = None;
        loop {
            let used = rest + self.tenant_day_bytes(tenant)?;
            if used <= quota {
                break;
            }
            let dates = store::reader::dates(&dir)?;
            let over = |what: &str| {
                Some(format!(
                    "still {:.1} MB over the {} MB quota: {what}",
                    (used - quota) as f64 / 1048576.0,
                    quota >> 20
                ))
            };
            let (Some(oldest), Some(newest)) = (dates.first(), dates.last()) else {
                why = over("no day file is left to delete (metadata, logs and directories remain)");
                break;
            };
            if oldest == newest {
                why = over("only the newest day is left, which is never deleted");
                break;
            }
            store::remove_day(&dir, *oldest)?;
            deleted.push(*oldest);
        }
        Ok((deleted, why))
    }

    /// Delete every day file whose whole day ended before `cutoff`;
    /// returns how many.
    pub fn purge_before(&self, tenant: Uuid, cutoff: i64) -> Result<usize, DbError> {
        let dir = self.require_tenant(tenant)?;
        let mut n = 0;
        for date in store::reader::dates(&dir)? {
            if date.start() + DAY <= cutoff {
                store::remove_day(&dir, date)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Delete hosts whose last sample is older than `cutoff` (or that have
    /// none); returns their ids.
    pub fn purge_stale(&self, tenant: Uuid, cutoff: i64) -> Result<Vec<Uuid>, DbError> {
        let mut gone = Vec::new();
        let last = store::reader::last_time_by_host(&self.tenant_dir(tenant))?;
        for h in self.hosts(tenant)? {
            let dir = self.host_dir(tenant, h);
            if last.get(&h).is_none_or(|t| *t < cutoff) {
                io_at(&dir, fs::remove_dir_all(&dir))?;
                gone.push(h);
            }
        }
        if !gone.is_empty() {
            store::rewrite::remove_hosts(&self.tenant_dir(tenant), &gone)?;
            self.mark_hosts_changed(tenant)?;
        }
        Ok(gone)
    }
}
