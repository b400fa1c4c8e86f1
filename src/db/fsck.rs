//! Verification and repair of a whole database.

use super::format::{header, scan, Damage, HEADER_LEN, KIND_SAMPLES};
use super::host::{self, day_files, read_day};
use super::log;
use super::tenant::{Db, HOST_FILE, HOST_LOG};
use super::{io_at, write_atomic, DbError};
use crate::model::HostMeters;
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

/// The samples of a day file whose header is damaged: a header rebuilt
/// from the file name, and every frame that verifies after it.
fn salvage(path: &Path, date: super::time::Date) -> Result<Vec<(i64, HostMeters)>, DbError> {
    let mut buf = io_at(path, fs::read(path))?;
    if buf.len() < HEADER_LEN {
        return Ok(Vec::new());
    }
    buf[..HEADER_LEN].copy_from_slice(&header(KIND_SAMPLES, date.start()));
    let day = host::Day {
        path: path.to_path_buf(),
        scan: scan(&buf),
        buf,
    };
    let mut samples = Vec::new();
    day.replay(|t, m| {
        samples.push((t, m.clone()));
        true
    });
    Ok(samples)
}

/// The date a day file's name says.
fn date_of(path: &Path) -> Option<super::time::Date> {
    let name = path.file_name()?.to_str()?;
    super::time::Date::from_stem(name.split('.').next()?)
}

fn check_day(path: &Path, repair: bool, report: &mut Report) -> Result<(), DbError> {
    let day = match read_day(path) {
        Ok(d) => d,
        Err(DbError::Corrupt(_, what)) => {
            report
                .findings
                .push(Finding::BadFile(path.to_path_buf(), what));
            if repair {
                let date = date_of(path);
                let samples = match date {
                    Some(date) => salvage(path, date)?,
                    None => Vec::new(),
                };
                match date {
                    Some(date) if !samples.is_empty() => {
                        write_atomic(path, &host::encode_day(date, &samples))?;
                        report.repairs.push(format!(
                            "{}: header rebuilt, {} samples kept",
                            path.display(),
                            samples.len()
                        ));
                    }
                    _ => {
                        let aside = path.with_extension("osd.corrupt");
                        io_at(path, fs::rename(path, &aside))?;
                        report.repairs.push(format!(
                            "{}: nothing readable, moved aside to {}",
                            path.display(),
                            aside.display()
                        ));
                    }
                }
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
    for d in day_files(dir)? {
        report.files += 1;
        check_day(&d.path, repair, report)?;
    }
    // Day files the writer moved aside (a damaged header): their samples
    // go back into the day's file.
    for entry in io_at(dir, fs::read_dir(dir))?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains(".osd.corrupt") {
            continue;
        }
        let Some(date) = date_of(&path) else {
            continue;
        };
        report.files += 1;
        report.findings.push(Finding::BadFile(
            path.clone(),
            "a damaged day file moved aside".into(),
        ));
        if !repair {
            continue;
        }
        let mut samples = salvage(&path, date)?;
        let current = host::day_path(dir, date);
        if current.exists() {
            if let Ok(day) = read_day(&current) {
                day.replay(|t, m| {
                    samples.push((t, m.clone()));
                    true
                });
            }
        }
        samples.sort_by_key(|(t, _)| *t);
        samples.dedup_by_key(|(t, _)| *t);
        let n = samples.len();
        if n > 0 {
            write_atomic(&current, &host::encode_day(date, &samples))?;
        }
        io_at(&path, fs::remove_file(&path))?;
        report.repairs.push(format!(
            "{}: {n} samples merged into {}",
            path.display(),
            current.display()
        ));
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
