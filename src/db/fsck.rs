//! Verification and repair of a whole database.

use super::log;
use super::store::{self, check};
use super::tenant::{Db, HOST_FILE, HOST_LOG};
use super::{io_at, DbError};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Something fsck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A file that cannot be read at all (bad header, unparsable metadata).
    BadFile(PathBuf, String),
    /// Bytes that failed their checksum, with valid records after them.
    Corrupt(PathBuf, u64, u64),
    /// An incomplete last record (an interrupted append).
    TornTail(PathBuf, u64),
    /// Records with valid checksums that cannot be decoded (their delta
    /// chain was broken by damage before them).
    Undecodable(PathBuf, usize),
    /// A day file's index that is missing, damaged or not the file's.
    Index(PathBuf, String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::BadFile(p, what) => write!(f, "{}: unreadable: {what}", p.display()),
            Finding::Corrupt(p, from, to) => {
                write!(f, "{}: bytes {from}..{to} fail their checksum", p.display())
            }
            Finding::TornTail(p, at) => write!(f, "{}: torn tail from byte {at}", p.display()),
            Finding::Undecodable(p, n) => {
                write!(f, "{}: {n} records cannot be decoded", p.display())
            }
            Finding::Index(p, what) => write!(f, "{}: index: {what}", p.display()),
        }
    }
}

/// What a run of fsck saw and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Files checked.
    pub files: usize,
    /// Samples that decode.
    pub samples: usize,
    /// Damage found.
    pub findings: Vec<Finding>,
    /// Repairs made (with `repair`).
    pub repairs: Vec<String>,
}

fn check_host(dir: &Path, repair: bool, report: &mut Report) -> Result<(), DbError> {
    let meta = dir.join(HOST_FILE);
    if meta.exists() {
        report.files += 1;
        if let Err(e) = crate::conf::load_file(&meta) {
            report.findings.push(Finding::BadFile(meta, e.to_string()));
        }
    }
    let log_path = dir.join(HOST_LOG);
    if log_path.exists() {
        report.files += 1;
        if let Some(what) = log::damage(&log_path)? {
            report
                .findings
                .push(Finding::BadFile(log_path.clone(), what));
            if repair {
                let kept = log::rebuild(&log_path)?;
                report.repairs.push(format!(
                    "{}: rebuilt with its {kept} readable entries",
                    log_path.display()
                ));
            }
        }
    }
    // Host day files of the old layout that `opticon-db migrate` found
    // damaged and moved aside: kept for whoever wants them, not read.
    for entry in io_at(dir, fs::read_dir(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".osd.corrupt") {
            report.files += 1;
            report.findings.push(Finding::BadFile(
                entry.path(),
                "a damaged day file of the old layout, not converted (delete it when done)".into(),
            ));
        }
    }
    Ok(())
}

fn check_days(tenant_dir: &Path, repair: bool, report: &mut Report) -> Result<(), DbError> {
    let days = store::days_dir(tenant_dir);
    // Repairs take the writer lock, so a running collector is never raced.
    let _lock = match repair && days.exists() {
        true => Some(store::lock_days(&days)?),
        false => None,
    };
    for date in store::reader::dates(tenant_dir)? {
        report.files += 1;
        let found = check::check_day(&days, date)?;
        report.samples += found.samples;
        let path = &found.path;
        if let Some(why) = &found.bad_header {
            report
                .findings
                .push(Finding::BadFile(path.clone(), why.clone()));
        }
        for (from, to) in &found.corrupt {
            report
                .findings
                .push(Finding::Corrupt(path.clone(), *from, *to));
        }
        if let Some(at) = found.torn_tail {
            report.findings.push(Finding::TornTail(path.clone(), at));
        }
        if !found.undecodable.is_empty() {
            report
                .findings
                .push(Finding::Undecodable(path.clone(), found.undecodable.len()));
        }
        if let Some(why) = &found.index {
            report
                .findings
                .push(Finding::Index(path.clone(), why.clone()));
        }
        if repair {
            if let Some(done) = check::repair_day(&days, date, &found)? {
                report.repairs.push(done);
            }
        }
    }
    Ok(())
}

/// Check every file of the tenants given (all when empty); with `repair`,
/// cut torn tails, rebuild damaged day files from their usable records
/// and rebuild indexes that are not their file's.
pub fn fsck(db: &Db, tenants: &[uuid::Uuid], repair: bool) -> Result<Report, DbError> {
    let mut report = Report::default();
    let all = if tenants.is_empty() {
        db.tenant_ids()?
    } else {
        tenants.to_vec()
    };
    for t in all {
        report.files += 1;
        if let Err(e) = db.tenant(t) {
            report.findings.push(Finding::BadFile(
                db.tenant_dir(t).join(super::tenant::TENANT_FILE),
                e.to_string(),
            ));
            continue;
        }
        check_days(&db.tenant_dir(t), repair, &mut report)?;
        for h in db.hosts(t)? {
            check_host(&db.host_dir(t, h), repair, &mut report)?;
        }
    }
    Ok(report)
}
