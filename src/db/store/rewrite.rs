//! Rewriting a day file without some of its records: a deleted host's,
//! or the ones a repair cannot use. The records kept are copied in order
//! with their chains pointed at their new offsets, into a file of a new
//! generation written beside the old one; its index is renamed into
//! place first, then the file, so that a crash in between leaves an
//! index the writer sees is not the file's and rebuilds.

use super::index::{self, HostDay};
use super::record::{self, Record};
use super::scan::{Item, Scanner};
use super::writer::{new_generation, note};
use super::{data_path, index_path};
use crate::db::format::{header_with, FRAME_DELTA, HEADER_LEN, KIND_TENANT_DAY};
use crate::db::time::Date;
use crate::db::{adopt_owner, io_at, DbError};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// What a rewrite kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Records copied.
    pub kept: usize,
    /// Records left out (refused, or deltas whose predecessor was).
    pub dropped: usize,
    /// Bytes that were no record (damage), left out.
    pub damaged_bytes: u64,
}

fn durable_file(path: &Path, bytes: &[u8]) -> Result<(), DbError> {
    let mut f = io_at(path, File::create(path))?;
    adopt_owner(path);
    io_at(path, f.write_all(bytes))?;
    io_at(path, f.sync_all())
}

/// Rewrite the day file of `date` in `days` with only the records `keep`
/// accepts (the caller holds the tenant's writer lock). A delta whose
/// predecessor is not kept is dropped too, and so the rest of its block.
pub fn rewrite_day(
    days: &Path,
    date: Date,
    mut keep: impl FnMut(&Record) -> bool,
) -> Result<Rewritten, DbError> {
    let path = data_path(days, date);
    let ipath = index_path(days, date);
    let tmp = days.join(format!(".{}.rewrite", date.stem()));
    let itmp = days.join(format!(".{}.rewrite-index", date.stem()));
    let old = io_at(&path, File::open(&path))?;
    let len = io_at(&path, old.metadata())?.len();
    let generation = new_generation();
    let mut out = BufWriter::with_capacity(1 << 20, io_at(&tmp, File::create(&tmp))?);
    adopt_owner(&tmp);
    io_at(
        &tmp,
        out.write_all(&header_with(KIND_TENANT_DAY, generation, date.start())),
    )?;
    let mut done = Rewritten::default();
    let mut hosts: HashMap<Uuid, HostDay> = HashMap::new();
    // Per host: the old and new offset of its last record kept.
    let mut last: HashMap<Uuid, (u64, u64)> = HashMap::new();
    let mut at = HEADER_LEN as u64;
    let mut buf = Vec::new();
    let mut scanner = Scanner::new(&old, HEADER_LEN as u64, len);
    while let Some(item) = io_at(&path, scanner.next_item())? {
        let r = match item {
            Item::Record(r) => r,
            Item::Corrupt { from, to } => {
                done.damaged_bytes += to - from;
                continue;
            }
            Item::TornTail { at } => {
                done.damaged_bytes += len - at;
                continue;
            }
        };
        // A delta needs the record before it kept; a full frame after a
        // gap chains to the host's last record kept, so that the records
        // before the gap stay reachable.
        let (prev, follows) = match last.get(&r.host) {
            Some((old_off, new_off)) => (*new_off, *old_off == r.prev),
            None => (0, r.prev == 0),
        };
        if !keep(&r) || (r.kind == FRAME_DELTA && !follows) {
            done.dropped += 1;
            continue;
        }
        buf.clear();
        record::put(&mut buf, r.time, r.kind, r.host, prev, &r.payload);
        io_at(&tmp, out.write_all(&buf))?;
        note(&mut hosts, r.host, at, buf.len() as u64, r.time);
        last.insert(r.host, (r.offset, at));
        at += buf.len() as u64;
        done.kept += 1;
    }
    let file = io_at(&tmp, out.into_inner().map_err(|e| e.into_error()))?;
    io_at(&tmp, file.sync_all())?;
    durable_file(&itmp, &index::encode(date, generation, at, hosts))?;
    io_at(&ipath, fs::rename(&itmp, &ipath))?;
    io_at(&path, fs::rename(&tmp, &path))?;
    io_at(days, File::open(days).and_then(|d| d.sync_all()))?;
    Ok(done)
}

/// The dates whose day file holds any of `hosts` (by its index; a day
/// without a readable index counts, as it may).
pub fn days_with(tenant_dir: &Path, hosts: &[Uuid]) -> Result<Vec<Date>, DbError> {
    let days = super::days_dir(tenant_dir);
    let mut out = Vec::new();
    for date in super::reader::dates(tenant_dir)? {
        let holds = match index::DayIndex::open(&index_path(&days, date), date) {
            Ok(Some(ix)) => {
                let mut any = false;
                for h in hosts {
                    if !matches!(ix.lookup(*h), Ok(None)) {
                        any = true;
                        break;
                    }
                }
                any
            }
            Ok(None) | Err(DbError::Corrupt(..)) => true,
            Err(e) => return Err(e),
        };
        if holds {
            out.push(date);
        }
    }
    Ok(out)
}

/// Remove every record of `hosts` from the tenant's day files, taking
/// the writer lock (waiting out a write cycle); returns the day files
/// rewritten.
pub fn remove_hosts(tenant_dir: &Path, hosts: &[Uuid]) -> Result<Vec<PathBuf>, DbError> {
    let days = super::days_dir(tenant_dir);
    if !days.exists() {
        return Ok(Vec::new());
    }
    let _lock = super::lock_days(&days)?;
    remove_hosts_locked(tenant_dir, hosts)
}

/// [`remove_hosts`] by a caller that holds the writer lock.
pub fn remove_hosts_locked(tenant_dir: &Path, hosts: &[Uuid]) -> Result<Vec<PathBuf>, DbError> {
    let days = super::days_dir(tenant_dir);
    let mut rewritten = Vec::new();
    for date in days_with(tenant_dir, hosts)? {
        rewrite_day(&days, date, |r| !hosts.contains(&r.host))?;
        rewritten.push(data_path(&days, date));
    }
    Ok(rewritten)
}
