//! Checking a tenant day file whole, and repairing it: what fsck does
//! for the tenant's days. Every record is verified and replayed along
//! its host's chain; the index must be the file's and agree with it.

use super::index::{self, DayIndex, HostDay};
use super::rewrite::{rewrite_day, Rewritten};
use super::scan::{Item, Scanner};
use super::writer::note;
use super::{data_path, index_path};
use crate::db::format::{check_header, generation, FRAME_KEY, HEADER_LEN, KIND_TENANT_DAY};
use crate::db::host::day::Replayer;
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// What checking one day file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayReport {
    /// The day file.
    pub path: PathBuf,
    /// Why its header is unusable, when it is.
    pub bad_header: Option<String>,
    /// Valid records.
    pub records: usize,
    /// Samples that decode.
    pub samples: usize,
    /// Hosts with records.
    pub hosts: usize,
    /// Byte ranges that are no record, with records after them.
    pub corrupt: Vec<(u64, u64)>,
    /// Where an incomplete last record starts.
    pub torn_tail: Option<u64>,
    /// Offsets of records that verify but cannot be decoded (their chain
    /// was broken before them).
    pub undecodable: Vec<u64>,
    /// What is wrong with the index, when something is.
    pub index: Option<String>,
}

impl DayReport {
    /// Nothing wrong.
    pub fn clean(&self) -> bool {
        self.bad_header.is_none()
            && self.corrupt.is_empty()
            && self.torn_tail.is_none()
            && self.undecodable.is_empty()
            && self.index.is_none()
    }
}

/// Check the day file of `date` in `days`.
pub fn check_day(days: &Path, date: Date) -> Result<DayReport, DbError> {
    let path = data_path(days, date);
    let file = io_at(&path, File::open(&path))?;
    let len = io_at(&path, file.metadata())?.len();
    let mut report = DayReport {
        path: path.clone(),
        ..DayReport::default()
    };
    let mut head = [0u8; HEADER_LEN];
    let mut gen = None;
    if len < HEADER_LEN as u64 {
        report.bad_header = Some("shorter than its header".into());
    } else {
        io_at(&path, file.read_exact_at(&mut head, 0))?;
        match check_header(&head, KIND_TENANT_DAY) {
            Ok(aux) if aux == date.start() => gen = Some(generation(&head)),
            Ok(aux) => report.bad_header = Some(format!("a file of another day ({aux})")),
            Err(e) => report.bad_header = Some(e.to_string()),
        }
    }
    let mut hosts: HashMap<Uuid, HostDay> = HashMap::new();
    // Per host: its replay and the offset of its last record.
    let mut chains: HashMap<Uuid, (Replayer, u64)> = HashMap::new();
    let mut scanner = Scanner::new(&file, HEADER_LEN as u64, len);
    while let Some(item) = io_at(&path, scanner.next_item())? {
        match item {
            Item::Record(r) => {
                report.records += 1;
                note(&mut hosts, r.host, r.offset, r.size, r.time);
                let (replay, last) = chains.entry(r.host).or_insert((Replayer::new(), 0));
                let follows = r.prev == *last || r.kind == FRAME_KEY;
                if replay
                    .feed_body(r.kind, follows, r.time, &r.payload)
                    .is_some()
                {
                    report.samples += 1;
                } else {
                    report.undecodable.push(r.offset);
                }
                *last = r.offset;
            }
            Item::Corrupt { from, to } => report.corrupt.push((from, to)),
            Item::TornTail { at } => report.torn_tail = Some(at),
        }
    }
    report.hosts = hosts.len();
    report.index = match (DayIndex::open(&index_path(days, date), date), gen) {
        (_, None) => None,
        (Ok(None), _) => Some("missing".into()),
        (Err(e), _) => Some(e.to_string()),
        (Ok(Some(ix)), Some(g)) if ix.generation != g => {
            Some("it indexes another version of the file".into())
        }
        (Ok(Some(ix)), _) if ix.committed > len => Some(format!(
            "it covers {} bytes of a {len}-byte file",
            ix.committed
        )),
        (Ok(Some(ix)), _) => match ix.all() {
            Err(e) => Some(e.to_string()),
            Ok(entries) => {
                let disagree = entries.iter().find(|(h, e)| {
                    hosts.get(h).is_none_or(|s| {
                        s.first_off != e.first_off
                            || s.first_time != e.first_time
                            || e.last_off > s.last_off
                    })
                });
                disagree.map(|(h, _)| format!("its entry of host {h} disagrees with the file"))
            }
        },
    };
    Ok(report)
}

/// Repair what [`check_day`] found (the caller holds the writer lock):
/// a torn tail alone is cut; damage, undecodable records or a bad header
/// rewrite the file from what verifies and decodes; an index that is not
/// the file's is rebuilt. Returns what was done, when anything was.
pub fn repair_day(days: &Path, date: Date, found: &DayReport) -> Result<Option<String>, DbError> {
    if found.clean() {
        return Ok(None);
    }
    let path = &found.path;
    let only_torn =
        found.bad_header.is_none() && found.corrupt.is_empty() && found.undecodable.is_empty();
    if only_torn {
        if let Some(at) = found.torn_tail {
            let f = io_at(path, OpenOptions::new().write(true).open(path))?;
            io_at(path, f.set_len(at))?;
            io_at(path, f.sync_all())?;
        }
        rebuild_index(days, date)?;
        return Ok(Some(match found.torn_tail {
            Some(at) => format!(
                "{}: cut torn tail at byte {at}, index rebuilt",
                path.display()
            ),
            None => format!("{}: index rebuilt", path.display()),
        }));
    }
    let bad: HashSet<u64> = found.undecodable.iter().copied().collect();
    let Rewritten { kept, dropped, .. } = rewrite_day(days, date, |r| !bad.contains(&r.offset))?;
    Ok(Some(match (&found.bad_header, dropped) {
        (Some(_), 0) => format!("{}: header rebuilt, {kept} records kept", path.display()),
        _ => format!(
            "{}: rebuilt from its {kept} usable records ({dropped} dropped)",
            path.display()
        ),
    }))
}

/// Write the index of a day file from the file itself.
fn rebuild_index(days: &Path, date: Date) -> Result<(), DbError> {
    let path = data_path(days, date);
    let file = io_at(&path, File::open(&path))?;
    let len = io_at(&path, file.metadata())?.len();
    let mut head = [0u8; HEADER_LEN];
    io_at(&path, file.read_exact_at(&mut head, 0))?;
    let mut hosts = HashMap::new();
    let mut end = HEADER_LEN as u64;
    let mut scanner = Scanner::new(&file, HEADER_LEN as u64, len);
    while let Some(item) = io_at(&path, scanner.next_item())? {
        if let Item::Record(r) = item {
            note(&mut hosts, r.host, r.offset, r.size, r.time);
            end = r.offset + r.size;
        }
    }
    let bytes = index::encode(date, generation(&head), end, hosts);
    crate::db::write_atomic(&index_path(days, date), &bytes)
}
