//! Tenant day files: every host of a tenant appends its frames to one
//! file per UTC day, beside a fixed-record index of the hosts in it.
//!
//! One append stream per tenant keeps the page being written in memory
//! and the disk writing in sequence, where a file per host dirtied a
//! page per host per minute and read it back once the kernel had paged
//! it out. Each record names its host and the offset of the host's
//! previous record of the day, so a host's frames form a chain walked
//! back from the index; the index is rewritten after each sync and tells
//! readers how far the file is complete.
//!
//! ```text
//! <tenant>/days/YYYYMMDD.otd   header, then records (frames) of every host
//! <tenant>/days/YYYYMMDD.oti   per host: first and last record, times, bytes
//! <tenant>/days/.lock          the writer lock of the tenant's days
//! ```
//!
//! [`record`] encodes and reads records, [`index`] the index files,
//! [`scan`] walks a day file from an offset (recovery and checks),
//! [`writer`] appends under the lock, [`reader`] answers a host's
//! queries from the chains, [`rewrite`] removes records (a deleted
//! host's, damaged ones) and [`check`] verifies and repairs a day file.

pub mod check;
pub mod index;
pub mod reader;
pub mod record;
pub mod rewrite;
pub mod scan;
pub mod writer;

pub use index::{DayIndex, HostDay};
pub use reader::{host_dates, latest, sample_at, series_many, usage};
pub use record::Record;
pub use writer::{Appended, HostAppender, ParkedWriter, References, TenantStore};

use crate::db::time::Date;
use std::path::{Path, PathBuf};

/// The directory of a tenant's day files.
pub const DAYS_DIR: &str = "days";
/// Extension of tenant day files.
pub const DATA_EXT: &str = "otd";
/// Extension of their indexes.
pub const INDEX_EXT: &str = "oti";
/// The writer lock in the days directory.
pub const LOCK_FILE: &str = ".lock";

/// Where a tenant's day files live.
pub fn days_dir(tenant_dir: &Path) -> PathBuf {
    tenant_dir.join(DAYS_DIR)
}

/// The day file of `date`.
pub fn data_path(days: &Path, date: Date) -> PathBuf {
    days.join(format!("{}.{DATA_EXT}", date.stem()))
}

/// How long a tool waits for the tenant's writer lock: longer than any
/// write cycle holds it.
pub const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Take the writer lock of a tenant's days directory, waiting up to
/// [`LOCK_PATIENCE`] for the collector's cycle to end.
pub fn lock_days(days: &Path) -> Result<std::fs::File, crate::db::DbError> {
    crate::db::host::lock_within(days, LOCK_PATIENCE)
}

/// Delete a tenant's day of samples (quota, retention), under the
/// writer lock: its index first, so that no reader pairs a file with an
/// index it outlived.
pub fn remove_day(tenant_dir: &Path, date: Date) -> Result<(), crate::db::DbError> {
    let days = days_dir(tenant_dir);
    let _lock = lock_days(&days)?;
    for path in [index_path(&days, date), data_path(&days, date)] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(crate::db::DbError::Io(path, e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The index of the day file of `date`.
pub fn index_path(days: &Path, date: Date) -> PathBuf {
    days.join(format!("{}.{INDEX_EXT}", date.stem()))
}
