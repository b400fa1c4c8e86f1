//! Each tenant's host index (`tenant.hosts`, see `db::index`): the first
//! and last record time and the bytes of every host, kept as the cycle
//! stores records and published once a cycle, so that the API's host list
//! reads one file instead of every host's day files.

use super::state::Collector;
use crate::db::host::Usage;
use crate::db::time::Date;
use crate::db::{index, views};
use crate::svc;
use std::collections::HashMap;
use uuid::Uuid;

/// One host as the index keeps it: its usage, and how its bytes split
/// into the day file being written and everything else. Absent values
/// are sentinels, not `Option`s: at a million hosts each of these is a
/// table slot, and the tags and padding made it 80 bytes instead of 48.
#[derive(Debug, Clone, Copy)]
struct Kept {
    /// Bytes of its records and files (as [`Usage::bytes`]).
    bytes: u64,
    /// First and last record times ([`NO_TIME`]: none).
    first: i64,
    last: i64,
    /// Bytes of all but the current day file, once measured this run
    /// ([`UNMEASURED`] before).
    rest: u64,
    /// The current day file's bytes.
    day_bytes: u64,
    /// The current day (Unix days; [`NO_DAY`]: none yet).
    day: i32,
}

/// [`Kept::first`] and [`Kept::last`] of a host with no record.
const NO_TIME: i64 = i64::MIN;
/// [`Kept::rest`] not measured yet.
const UNMEASURED: u64 = u64::MAX;
/// [`Kept::day`] not known yet.
const NO_DAY: i32 = i32::MIN;

impl Default for Kept {
    fn default() -> Kept {
        Kept::of(Usage::default())
    }
}

impl Kept {
    /// A host as the published index has it, nothing measured yet.
    fn of(usage: Usage) -> Kept {
        Kept {
            bytes: usage.bytes,
            first: usage.first.unwrap_or(NO_TIME),
            last: usage.last.unwrap_or(NO_TIME),
            rest: UNMEASURED,
            day_bytes: 0,
            day: NO_DAY,
        }
    }

    /// Its usage, as the index file and the host list give it.
    fn usage(&self) -> Usage {
        let time = |t: i64| (t != NO_TIME).then_some(t);
        Usage {
            bytes: self.bytes,
            first: time(self.first),
            last: time(self.last),
        }
    }
}

/// One tenant's index in memory.
#[derive(Debug, Default)]
pub(super) struct TenantIndex {
    hosts: HashMap<Uuid, Kept>,
    changed: bool,
    /// Its hosts' bytes in other days than today's, read once for all of
    /// them when a host first needs its own (the first cycle of a run);
    /// dropped after a cycle that needed none.
    past: Option<PastBytes>,
    /// Every host with records is in it: rebuilt from the files, or
    /// read from an index published after the last day index was
    /// written and after the last change a tool made to the tenant's
    /// hosts (see [`published_is_current`]), and no tool changed them
    /// since.
    complete: bool,
}

/// Whether the published index of a tenant (`tenant_dir`) is newer than
/// every day index of its days and than the last change a tool made to
/// its hosts: then it holds every host with records.
fn published_is_current(tenant_dir: &std::path::Path) -> bool {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(published) = modified(&tenant_dir.join(index::HOSTS_FILE)) else {
        return false;
    };
    let tool = modified(&tenant_dir.join(crate::db::tenant::HOSTS_CHANGED_FILE));
    if tool.is_some_and(|t| t > published) {
        return false;
    }
    let days = crate::db::store::days_dir(tenant_dir);
    let Ok(entries) = std::fs::read_dir(&days) else {
        // No days: no records anywhere.
        return !days.exists();
    };
    entries.into_iter().all(|e| {
        let Ok(e) = e else { return false };
        let path = e.path();
        path.extension().and_then(|x| x.to_str()) != Some(crate::db::store::INDEX_EXT)
            || modified(&path).is_some_and(|day| day <= published)
    })
}

/// Every host's bytes in a tenant's day files but one day's.
#[derive(Debug)]
struct PastBytes {
    except: Date,
    bytes: HashMap<Uuid, u64>,
    used: bool,
}

/// The bytes of the files in a host's directory `dir` (its log and
/// configuration; none without a directory). A walk of the directory:
/// the cycle does it for many hosts on threads of its own (see
/// [`Collector::index_append`]).
pub(super) fn host_files_bytes(dir: &std::path::Path) -> Result<u64, crate::db::DbError> {
    match dir.exists() {
        true => crate::db::dir_bytes(dir),
        false => Ok(0),
    }
}

/// Bytes of a host but for its records of `date` (what a writer adds that
/// day's bytes to): its other days (read for the whole tenant into
/// `past`) and its directory's files (`files`, when measured already).
fn measure_rest(
    db: &crate::db::Db,
    key: (Uuid, Uuid),
    date: Date,
    past: &mut Option<PastBytes>,
    files: Option<u64>,
) -> Result<u64, crate::db::DbError> {
    let past = match past {
        Some(p) if p.except == date => p,
        _ => past.insert(PastBytes {
            except: date,
            bytes: crate::db::store::reader::bytes_by_host_except(&db.tenant_dir(key.0), date)?,
            used: false,
        }),
    };
    past.used = true;
    let days = past.bytes.get(&key.1).copied().unwrap_or(0);
    let files = match files {
        Some(f) => f,
        None => host_files_bytes(&db.host_dir(key.0, key.1))?,
    };
    Ok(days + files)
}

/// The UTC day of a time, as day files are named (Unix days fit an
/// `i32` for five million years).
fn day(t: i64) -> i32 {
    i32::try_from(t.div_euclid(86_400)).unwrap_or(NO_DAY)
}

impl Collector {
    /// The tenant's index: as published last (or rebuilt from its files
    /// when there is none, or after a quota run deleted some of them).
    fn tenant_index(&mut self, tenant: Uuid) -> Option<&mut TenantIndex> {
        if !self.indexes.contains_key(&tenant) {
            let dir = self.db.tenant_dir(tenant);
            let (hosts, complete) = match index::read(&dir) {
                Some(h) => (h, published_is_current(&dir)),
                None => match views::hosts_usage(&self.db, tenant) {
                    Ok(h) => (h, true),
                    Err(e) => {
                        svc::log::warn(&format!("tenant {tenant}: host index: {e}"));
                        return None;
                    }
                },
            };
            let idx = TenantIndex {
                hosts: hosts
                    .into_iter()
                    .map(|(h, usage)| (h, Kept::of(usage)))
                    .collect(),
                changed: true,
                past: None,
                complete,
            };
            self.indexes.insert(tenant, idx);
        }
        self.indexes.get_mut(&tenant)
    }

    /// Whether a host may have records stored: false only when its
    /// tenant's index holds every host with records, and not this one
    /// (a new fleet's hosts are then not looked for in the day files,
    /// a dozen reads each on the collector's thread).
    pub(super) fn index_may_have_records(&mut self, key: (Uuid, Uuid)) -> bool {
        match self.tenant_index(key.0) {
            Some(idx) if idx.complete => idx.hosts.get(&key.1).is_some_and(|k| k.last != NO_TIME),
            _ => true,
        }
    }

    /// The tenant's index may miss hosts with records (a tool changed
    /// its hosts): every new host is looked for in the day files again.
    pub(super) fn index_incomplete(&mut self, tenant: Uuid) {
        if let Some(idx) = self.indexes.get_mut(&tenant) {
            idx.complete = false;
        }
    }

    /// Whether the index measured a host's other files (its log and
    /// configuration) in this run: it does so at the host's first
    /// record.
    pub(super) fn index_knows_rest(&self, key: (Uuid, Uuid)) -> bool {
        self.indexes
            .get(&key.0)
            .and_then(|i| i.hosts.get(&key.1))
            .is_some_and(|k| k.rest != UNMEASURED)
    }

    /// A record was appended for a host at `time`, its day file now
    /// taking `disk` bytes; `fresh`: the host starts anew (deleted).
    /// The rest of the host's bytes are measured once a run, so the
    /// index says what `opticon-db host-list` counts on disk: its
    /// directory's files are `files` when the caller measured them
    /// ([`host_files_bytes`]), else walked here.
    pub(super) fn index_append(
        &mut self,
        key: (Uuid, Uuid),
        time: i64,
        disk: u64,
        fresh: bool,
        files: Option<u64>,
    ) {
        if self.tenant_index(key.0).is_none() {
            return;
        }
        let Some(TenantIndex {
            hosts,
            changed,
            past,
            ..
        }) = self.indexes.get_mut(&key.0)
        else {
            return;
        };
        let k = hosts.entry(key.1).or_default();
        if fresh {
            // Deleted and started anew: its old days are gone.
            *k = Kept::default();
            if let Some(p) = past {
                p.bytes.remove(&key.1);
            }
        }
        let today = day(time);
        let rest = if k.rest == UNMEASURED {
            measure_rest(&self.db, key, Date::of(time), past, files)
                .unwrap_or_else(|_| k.bytes.saturating_sub(disk))
        } else if k.day != NO_DAY && k.day != today {
            k.rest + k.day_bytes
        } else {
            k.rest
        };
        k.rest = rest;
        k.day = today;
        k.day_bytes = disk;
        k.bytes = rest + disk;
        if k.first == NO_TIME {
            k.first = time;
        }
        k.last = time;
        *changed = true;
    }

    /// Forget a tenant's index (its files changed under it: a quota run,
    /// a purge); the next cycle rebuilds it from the files.
    pub(super) fn index_rebuild(&mut self, tenant: Uuid) {
        self.indexes.remove(&tenant);
        let _ = std::fs::remove_file(self.db.tenant_dir(tenant).join(index::HOSTS_FILE));
    }

    /// Write every changed index.
    pub(super) fn publish_indexes(&mut self) {
        let tenants: Vec<Uuid> = self.tenants.keys().copied().collect();
        self.indexes.retain(|t, _| tenants.contains(t));
        for t in tenants {
            let dir = self.db.tenant_dir(t);
            let Some(idx) = self.tenant_index(t) else {
                continue;
            };
            // The hosts' other days stay read while hosts new to this
            // run keep coming.
            match &mut idx.past {
                Some(p) if p.used => p.used = false,
                _ => idx.past = None,
            }
            if !idx.changed {
                continue;
            }
            let mut hosts: Vec<(Uuid, Usage)> =
                idx.hosts.iter().map(|(h, k)| (*h, k.usage())).collect();
            idx.changed = false;
            if let Err(e) = index::write(&dir, &mut hosts) {
                svc::log::warn(&format!("tenant {t}: host index: {e}"));
            }
        }
    }
}
