//! A host's samples read from its tenant's day files: the index gives
//! where the host's chain of records ends, the chain is walked back as
//! far as the question needs (to the last full frame for the latest
//! sample), and the frames are replayed forward.

use super::index::{DayIndex, HostDay};
use super::record::{self, Record};
use super::scan::{Item, Scanner};
use super::{data_path, days_dir, index_path, DATA_EXT};
use crate::db::format::{check_header, generation, FRAME_KEY, HEADER_LEN, KIND_TENANT_DAY};
use crate::db::host::day::Replayer;
use crate::db::host::{numeric, Usage};
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use crate::model::HostMeters;
use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The dates a tenant has day files for, oldest first.
pub fn dates(tenant_dir: &Path) -> Result<Vec<Date>, DbError> {
    let days = days_dir(tenant_dir);
    let entries = match fs::read_dir(&days) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DbError::Io(days, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = io_at(&days, entry)?;
        let name = entry.file_name();
        let stem = name
            .to_str()
            .and_then(|n| n.strip_suffix(DATA_EXT))
            .and_then(|n| n.strip_suffix('.'));
        if let Some(date) = stem.and_then(Date::from_stem) {
            out.push(date);
        }
    }
    out.sort();
    Ok(out)
}

/// The date of `t`, clamped to years 1970 to 9999 (a question "up to
/// now" may be asked with the largest time there is).
fn date_within(t: i64) -> Date {
    Date::of(t.clamp(0, 253_402_300_799))
}

/// One host's part of one day file, open for reading.
struct HostDayReader {
    path: PathBuf,
    file: File,
    host: Uuid,
    entry: HostDay,
    /// The end of what the index covers: nothing after it is read.
    end: u64,
}

/// A damaged file reads as one without data: the writer moves it aside
/// or rewrites its index, fsck repairs it; failures to read still count.
fn unless_damaged<T>(r: Result<Option<T>, DbError>) -> Result<Option<T>, DbError> {
    match r {
        Err(DbError::Corrupt(..)) => Ok(None),
        other => other,
    }
}

fn open_host_day(days: &Path, date: Date, host: Uuid) -> Result<Option<HostDayReader>, DbError> {
    let path = data_path(days, date);
    // A day file rewritten (a host deleted, a repair) between opening
    // the index and the data: the generations differ; look again.
    for _ in 0..3 {
        let Some(ix) = DayIndex::open(&index_path(days, date), date)? else {
            return Ok(None);
        };
        let Some(entry) = ix.lookup(host)? else {
            return Ok(None);
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DbError::Io(path, e)),
        };
        let mut head = [0u8; HEADER_LEN];
        io_at(&path, file.read_exact_at(&mut head, 0))?;
        check_header(&head, KIND_TENANT_DAY)
            .map_err(|e| DbError::Corrupt(path.clone(), e.to_string()))?;
        if generation(&head) == ix.generation {
            return Ok(Some(HostDayReader {
                path,
                file,
                host,
                entry,
                end: ix.committed,
            }));
        }
    }
    Err(DbError::Corrupt(
        path,
        "its index belongs to another version of it".into(),
    ))
}

impl HostDayReader {
    /// The host's records walking back from its last one, newest first,
    /// while `more` says so of the record just read; stops at a damaged
    /// record (what is older is left to fsck).
    fn walk(&self, mut more: impl FnMut(&Record) -> bool) -> Result<Vec<Record>, DbError> {
        let mut out = Vec::new();
        let mut at = self.entry.last_off;
        let mut newer = i64::MAX;
        while at >= HEADER_LEN as u64 {
            let Some(r) = io_at(&self.path, record::read_at(&self.file, at, self.end))? else {
                return self.scan_for_host();
            };
            if r.host != self.host || r.time >= newer || (r.prev != 0 && r.prev >= r.offset) {
                return self.scan_for_host();
            }
            newer = r.time;
            at = r.prev;
            let go = more(&r);
            out.push(r);
            if !go || at == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// The host's records found by reading the whole file, newest first:
    /// when damage broke its chain, what verifies on either side of it.
    /// A delta whose predecessor is missing is dropped, so the replay
    /// restarts at the next full frame.
    fn scan_for_host(&self) -> Result<Vec<Record>, DbError> {
        let mut found: Vec<Record> = Vec::new();
        let mut scanner = Scanner::new(&self.file, HEADER_LEN as u64, self.end);
        while let Some(item) = io_at(&self.path, scanner.next_item())? {
            let Item::Record(r) = item else { continue };
            if r.host != self.host {
                continue;
            }
            let follows = found.last().is_some_and(|p| p.offset == r.prev);
            if r.kind == FRAME_KEY || follows {
                found.push(r);
            }
        }
        found.reverse();
        Ok(found)
    }
}

/// Replay `records` (newest first, as walked) oldest first.
fn replay(records: &[Record], mut visit: impl FnMut(i64, &HostMeters) -> bool) {
    let mut r = Replayer::new();
    for rec in records.iter().rev() {
        if let Some(m) = r.feed_body(rec.kind, true, rec.time, &rec.payload) {
            if !visit(rec.time, m) {
                return;
            }
        }
    }
}

/// The newest decodable sample of `records` at or before `t`.
fn newest_at_or_before(records: &[Record], t: i64) -> Option<(i64, HostMeters)> {
    let mut found = None;
    replay(records, |time, m| {
        if time <= t {
            found = Some((time, m.clone()));
        }
        time < t
    });
    found
}

/// The host's latest sample: at most one block of records read, from
/// the newest day that has a decodable one.
pub fn latest(tenant_dir: &Path, host: Uuid) -> Result<Option<(i64, HostMeters)>, DbError> {
    sample_at(tenant_dir, host, i64::MAX)
}

/// The host's newest sample at or before `t`, looking back across days.
pub fn sample_at(
    tenant_dir: &Path,
    host: Uuid,
    t: i64,
) -> Result<Option<(i64, HostMeters)>, DbError> {
    let days = days_dir(tenant_dir);
    let limit = date_within(t);
    for date in dates(tenant_dir)?.into_iter().rev().filter(|d| *d <= limit) {
        let Some(day) = unless_damaged(open_host_day(&days, date, host))? else {
            continue;
        };
        if day.entry.first_time > t {
            continue;
        }
        let records = day.walk(|r| r.time > t || r.kind != FRAME_KEY)?;
        if let Some(found) = newest_at_or_before(&records, t) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Every decodable sample of the host with `from <= time <= to`, oldest
/// first; `visit` returns false to stop.
pub fn replay_range(
    tenant_dir: &Path,
    host: Uuid,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, &HostMeters) -> bool,
) -> Result<(), DbError> {
    let days = days_dir(tenant_dir);
    let (first, last) = (date_within(from), date_within(to));
    for date in dates(tenant_dir)?
        .into_iter()
        .filter(|d| *d >= first && *d <= last)
    {
        let Some(day) = unless_damaged(open_host_day(&days, date, host))? else {
            continue;
        };
        if day.entry.first_time > to || day.entry.last_time < from {
            continue;
        }
        let records = day.walk(|r| r.time > from || r.kind != FRAME_KEY)?;
        let mut go = true;
        replay(&records, |t, m| {
            if t > to {
                return false;
            }
            if t >= from {
                go = visit(t, m);
            }
            go
        });
        if !go {
            break;
        }
    }
    Ok(())
}

/// The values of several numeric meters over `[from, to]`, in one pass.
pub fn series_many(
    tenant_dir: &Path,
    host: Uuid,
    meters: &[&str],
    from: i64,
    to: i64,
) -> Result<Vec<Vec<(i64, f64)>>, DbError> {
    let mut out = vec![Vec::new(); meters.len()];
    replay_range(tenant_dir, host, from, to, |t, m| {
        for (meter, series) in meters.iter().zip(out.iter_mut()) {
            if let Some(v) = m.get(meter).and_then(|m| numeric(&m.value)) {
                series.push((t, v));
            }
        }
        true
    })?;
    Ok(out)
}

/// The index of the day file of `date`; a damaged one reads as none
/// (the next writer rebuilds it).
fn readable_index(days: &Path, date: Date) -> Result<Option<DayIndex>, DbError> {
    unless_damaged(DayIndex::open(&index_path(days, date), date))
}

/// The host's entry in every day that has it, oldest first.
pub fn host_dates(tenant_dir: &Path, host: Uuid) -> Result<Vec<(Date, HostDay)>, DbError> {
    let days = days_dir(tenant_dir);
    let mut out = Vec::new();
    for date in dates(tenant_dir)? {
        let Some(ix) = readable_index(&days, date)? else {
            continue;
        };
        if let Some(entry) = unless_damaged(ix.lookup(host))? {
            out.push((date, entry));
        }
    }
    Ok(out)
}

/// Every host's entry in every day file of the tenant (but `except`),
/// oldest day first: one read of each day's index for all hosts at once,
/// where asking host by host costs a search of every day's index each.
fn each_day_entry(
    tenant_dir: &Path,
    except: Option<Date>,
    mut f: impl FnMut(Date, Uuid, HostDay),
) -> Result<(), DbError> {
    let days = days_dir(tenant_dir);
    for date in dates(tenant_dir)?
        .into_iter()
        .filter(|d| Some(*d) != except)
    {
        let Some(ix) = readable_index(&days, date)? else {
            continue;
        };
        for (host, entry) in unless_damaged(ix.all().map(Some))?.unwrap_or_default() {
            f(date, host, entry);
        }
    }
    Ok(())
}

/// The bytes of every host's records in the tenant's day files other
/// than `except`'s.
pub fn bytes_by_host_except(
    tenant_dir: &Path,
    except: Date,
) -> Result<HashMap<Uuid, u64>, DbError> {
    let mut bytes = HashMap::new();
    each_day_entry(tenant_dir, Some(except), |_, host, entry| {
        *bytes.entry(host).or_insert(0) += entry.bytes;
    })?;
    Ok(bytes)
}

/// The time of every host's newest record in the tenant's day files.
pub fn last_time_by_host(tenant_dir: &Path) -> Result<HashMap<Uuid, i64>, DbError> {
    let mut last = HashMap::new();
    each_day_entry(tenant_dir, None, |_, host, entry| {
        let t = last.entry(host).or_insert(entry.last_time);
        *t = (*t).max(entry.last_time);
    })?;
    Ok(last)
}

/// The bytes of the host's records and its first and last sample times.
pub fn usage(tenant_dir: &Path, host: Uuid) -> Result<Usage, DbError> {
    let all = host_dates(tenant_dir, host)?;
    Ok(Usage {
        bytes: all.iter().map(|(_, e)| e.bytes).sum(),
        first: all.first().map(|(_, e)| e.first_time),
        last: all.last().map(|(_, e)| e.last_time),
    })
}

/// Where the host's newest record is: its day, its offset, the day
/// file's generation and the record's time. It changes exactly when a
/// record is added (or the file rewritten), so a cache of the latest
/// sample can be keyed by it; one index lookup per day looked at.
pub fn newest(tenant_dir: &Path, host: Uuid) -> Result<Option<(Date, u64, u32, i64)>, DbError> {
    let days = days_dir(tenant_dir);
    for date in dates(tenant_dir)?.into_iter().rev() {
        let Some(ix) = readable_index(&days, date)? else {
            continue;
        };
        if let Some(e) = unless_damaged(ix.lookup(host))? {
            return Ok(Some((date, e.last_off, ix.generation, e.last_time)));
        }
    }
    Ok(None)
}

/// Every host's bytes of records and first and last sample time, from
/// each day's index read once (a listing of 10,000 hosts reads a few
/// files, not a lookup per host and day).
pub fn all_usage(tenant_dir: &Path) -> Result<std::collections::HashMap<Uuid, Usage>, DbError> {
    let days = days_dir(tenant_dir);
    let mut out: std::collections::HashMap<Uuid, Usage> = std::collections::HashMap::new();
    for date in dates(tenant_dir)? {
        let Some(ix) = readable_index(&days, date)? else {
            continue;
        };
        let Some(entries) = unless_damaged(ix.all().map(Some))? else {
            continue;
        };
        for (h, e) in entries {
            let u = out.entry(h).or_default();
            u.bytes += e.bytes;
            u.first.get_or_insert(e.first_time);
            u.last = Some(e.last_time);
        }
    }
    Ok(out)
}
