//! Converting a database from day files per host (`<tenant>/<host>/
//! YYYYMMDD.osd`) to day files per tenant (`<tenant>/days/`), in place
//! and resumable: each date is built whole in a staging directory, its
//! index then its file renamed into place, and only then are the host
//! files of that date deleted. A conversion stopped anywhere runs again
//! from where it was: a date whose tenant file exists is done.

use super::host::{self, day_files, BlockEncoder};
use super::store::{self, TenantStore};
use super::time::Date;
use super::{io_at, DbError};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The staging directory inside a tenant's directory.
pub const STAGING_DIR: &str = ".migrate";

/// What converting one tenant did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Dates converted.
    pub days: usize,
    /// Host day files converted (and deleted).
    pub files: usize,
    /// Samples copied.
    pub samples: usize,
    /// Damaged host day files moved aside (`.corrupt`), with why: their
    /// samples are not converted.
    pub left: Vec<String>,
}

/// The host day files of a tenant by date: (host, file).
fn old_files(tenant_dir: &Path) -> Result<BTreeMap<Date, Vec<(Uuid, PathBuf)>>, DbError> {
    let mut by_date: BTreeMap<Date, Vec<(Uuid, PathBuf)>> = BTreeMap::new();
    for entry in io_at(tenant_dir, fs::read_dir(tenant_dir))? {
        let entry = io_at(tenant_dir, entry)?;
        let Some(host) = entry
            .file_name()
            .to_str()
            .and_then(|n| Uuid::parse_str(n).ok())
        else {
            continue;
        };
        if !io_at(&entry.path(), entry.file_type())?.is_dir() {
            continue;
        }
        for d in day_files(&entry.path())? {
            by_date.entry(d.date).or_default().push((host, d.path));
        }
    }
    for files in by_date.values_mut() {
        files.sort();
    }
    Ok(by_date)
}

/// Whether a tenant still has day files per host (asked until the
/// database's marker records the layout, so a walk of its hosts is paid
/// once).
pub fn needs_migration(tenant_dir: &Path) -> Result<bool, DbError> {
    Ok(!old_files(tenant_dir)?.is_empty())
}

/// Convert one tenant; `progress` hears of each date done.
pub fn migrate_tenant(
    tenant_dir: &Path,
    mut progress: impl FnMut(Date, usize),
) -> Result<Migrated, DbError> {
    let days = store::days_dir(tenant_dir);
    if !days.exists() {
        io_at(&days, fs::create_dir_all(&days))?;
        super::adopt_owner(&days);
    }
    let _lock = store::lock_days(&days)?;
    let staging = tenant_dir.join(STAGING_DIR);
    let mut done = Migrated::default();
    for (date, files) in old_files(tenant_dir)? {
        let target = store::data_path(&days, date);
        if !target.exists() {
            if staging.exists() {
                io_at(&staging, fs::remove_dir_all(&staging))?;
            }
            io_at(&staging, fs::create_dir_all(&staging))?;
            let mut s = TenantStore::new(&staging);
            s.lock()?;
            for (h, path) in &files {
                let day = match host::read_day(path) {
                    Ok(day) => day,
                    Err(e @ DbError::Corrupt(..)) => {
                        // Kept for whoever wants to look, out of the way.
                        let aside = store::writer::corrupt_name(path);
                        io_at(path, fs::rename(path, &aside))?;
                        done.left
                            .push(format!("{e}: moved aside to {}", aside.display()));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut enc = BlockEncoder::default();
                let mut failed = None;
                day.replay(|t, m| match s.append_sample(*h, t, m, &mut enc) {
                    Ok(_) => {
                        done.samples += 1;
                        true
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            s.commit()?;
            drop(s);
            let staged = store::days_dir(&staging);
            let (sdata, sindex) = (
                store::data_path(&staged, date),
                store::index_path(&staged, date),
            );
            if sdata.exists() {
                // The index first: a stop between the two renames leaves
                // no tenant file, so the date is converted again.
                let index = store::index_path(&days, date);
                io_at(&index, fs::rename(&sindex, &index))?;
                io_at(&target, fs::rename(&sdata, &target))?;
                io_at(&days, fs::File::open(&days).and_then(|d| d.sync_all()))?;
            }
        }
        for (_, path) in files.iter().filter(|(_, p)| p.exists()) {
            io_at(path, fs::remove_file(path))?;
            done.files += 1;
        }
        done.days += 1;
        progress(date, files.len());
    }
    if staging.exists() {
        io_at(&staging, fs::remove_dir_all(&staging))?;
    }
    Ok(done)
}
