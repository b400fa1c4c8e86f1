//! Verification and repair of a whole database.

use super::format::Damage;
use super::host::{self, day_files, read_day};
use super::log;
use super::tenant::{Db, HOST_FILE, HOST_LOG};
use super::{io_at, write_atomic, DbError};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Something fsck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A file that cannot be read at all (bad header, unparsable metadata).
    BadFile(PathBuf, String),
    /// Bytes that failed their checksum, with valid frames after them.
    Corrupt(PathBuf, usize, usize),
    /// An incomplete last frame (an interrupted append).
    TornTail(PathBuf, usize),
    /// Frames with valid checksums that cannot be decoded (their delta
    /// chain was broken by damage before them).
    Undecodable(PathBuf, usize),
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
                write!(f, "{}: {n} frames cannot be decoded", p.display())
            }
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

fn check_day(path: &Path, repair: bool, report: &mut Report) -> Result<(), DbError> {
    let day = match read_day(path) {
        Ok(d) => d,
        Err(DbError::Corrupt(_, what)) => {
            report
                .findings
                .push(Finding::BadFile(path.to_path_buf(), what));
            if repair {
                let aside = path.with_extension("osd.corrupt");
                io_at(path, fs::rename(path, &aside))?;
                report.repairs.push(format!(
                    "{}: moved aside to {}",
                    path.display(),
                    aside.display()
                ));
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut samples = Vec::new();
    day.replay(|t, m| {
        samples.push((t, m.clone()));
        true
    });
    report.samples += samples.len();
    let lost = day.scan.frames.len() - samples.len();
    let mut torn = None;
    let mut corrupt = false;
    for d in &day.scan.damage {
        match *d {
            Damage::TornTail { offset } => {
                torn = Some(offset);
                report
                    .findings
                    .push(Finding::TornTail(path.to_path_buf(), offset));
            }
            Damage::Corrupt { from, to } => {
                corrupt = true;
                report
                    .findings
                    .push(Finding::Corrupt(path.to_path_buf(), from, to));
            }
        }
    }
    if lost > 0 {
        report
            .findings
            .push(Finding::Undecodable(path.to_path_buf(), lost));
    }
    if !repair || (torn.is_none() && !corrupt && lost == 0) {
        return Ok(());
    }
    if !corrupt && lost == 0 {
        if let Some(offset) = torn {
            let f = io_at(path, fs::OpenOptions::new().write(true).open(path))?;
            io_at(path, f.set_len(offset as u64))?;
            io_at(path, f.sync_all())?;
            report.repairs.push(format!(
                "{}: cut torn tail at byte {offset}",
                path.display()
            ));
            return Ok(());
        }
    }
    let date = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(super::time::Date::from_stem)
        .ok_or_else(|| DbError::Corrupt(path.to_path_buf(), "not a day file name".into()))?;
    write_atomic(path, &host::encode_day(date, &samples))?;
    report.repairs.push(format!(
        "{}: rebuilt from its {} decodable samples",
        path.display(),
        samples.len()
    ));
    Ok(())
}

fn check_host(dir: &Path, repair: bool, report: &mut Report) -> Result<(), DbError> {
    // Repairs take the writer lock, so a running collector is never raced.
    let _lock = if repair { Some(host::lock(dir)?) } else { None };
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
        if let Err(DbError::Corrupt(p, what)) = log::read(&log_path) {
            report.findings.push(Finding::BadFile(p, what));
        }
    }
    for d in day_files(dir)? {
        report.files += 1;
        check_day(&d.path, repair, report)?;
    }
    Ok(())
}

/// Check every file of the tenants given (all when empty); with `repair`,
/// cut torn tails, rebuild damaged day files from their decodable samples
/// and move unreadable day files aside (`*.osd.corrupt`).
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
        for h in db.hosts(t)? {
            check_host(&db.host_dir(t, h), repair, &mut report)?;
        }
    }
    Ok(report)
}
