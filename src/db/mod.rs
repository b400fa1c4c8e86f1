//! The metering database: tenants, hosts and their samples on disk.
//!
//! This is the original's `libopticondb`, rebuilt so that it never lies:
//! portable big-endian files with a versioned header, a checksum on every
//! record, appends ordered so a crash leaves at worst a torn tail (cut off
//! on the next open), metadata replaced atomically, one writer per host
//! enforced with a lock, and any number of concurrent readers. The layout
//! and every file format are described in `man 8 opticon-db`.
//!
//! ```text
//! <root>/<tenant-uuid>/tenant.conf          name, key, quota, metadata, meters
//! <root>/<tenant-uuid>/<host-uuid>/host.conf     host meter and watcher overrides
//! <root>/<tenant-uuid>/<host-uuid>/host.log      status changes (fixed records)
//! <root>/<tenant-uuid>/days/YYYYMMDD.otd         every host's samples of one UTC day
//! <root>/<tenant-uuid>/days/YYYYMMDD.oti         its host index
//! ```
//!
//! [`store`] writes and reads the day files; [`host`] answers one host's
//! questions through it (and still reads the per-host day files of the
//! layout before, for [`migrate`]).

pub mod delta;
pub mod format;
pub mod fsck;
pub mod host;
pub mod index;
pub mod limits;
pub mod log;
pub mod meters;
pub mod migrate;
pub mod published;
pub mod store;
pub mod tenant;
pub mod time;
pub mod views;

/// Where the database lives unless a config or `--path` says otherwise.
pub const DEFAULT_ROOT: &str = "/var/opticon/db";

/// The `database { path }` section of the collector's and the API's
/// configs, for strict loading.
pub const DATABASE_SHAPE: (&str, crate::conf::schema::Shape) = (
    "database",
    crate::conf::schema::Shape::Keys(&[("path", crate::conf::schema::Shape::Value)]),
);

pub use host::{HostWriter, Usage};
pub use store::{ParkedWriter, References, TenantStore};
pub use tenant::{Db, TenantInfo};

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a database operation failed. Every variant names what it is about,
/// so a tool can print it as one clear line.
#[derive(Debug)]
pub enum DbError {
    /// A file system call failed on this path.
    Io(PathBuf, io::Error),
    /// A tenant or host that does not exist.
    NotFound(String),
    /// A tenant or host that already exists.
    Exists(String),
    /// A file whose contents are damaged or not an Opticon file.
    Corrupt(PathBuf, String),
    /// Another process holds the host's writer lock.
    Locked(PathBuf),
    /// A sample not newer than the last one stored.
    OutOfOrder {
        /// Host directory.
        path: PathBuf,
        /// Time of the last stored sample.
        last: i64,
        /// Time offered.
        time: i64,
    },
    /// Input that cannot be stored (bad name, type, value ...).
    Invalid(String),
    /// A database whose samples are still in day files per host (the
    /// layout before tenant day files): `opticon-db migrate` converts it.
    OldLayout(PathBuf),
    /// The root is not an Opticon database (missing, a file, or a
    /// directory of other things): a mistyped `--path` must not read as
    /// an empty database, nor be created silently.
    NotADatabase(PathBuf, &'static str),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::NotADatabase(path, why) => write!(
                f,
                "{} is not an Opticon database ({why}): give the right --path, or create one there with --init",
                path.display()
            ),
            DbError::OldLayout(root) => write!(
                f,
                "{}: samples are stored in day files per host, the layout before tenant day files: stop the collector and run `opticon-db --path {} migrate`",
                root.display(),
                root.display()
            ),
            DbError::Io(path, e) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    write!(f, "{}: permission denied", path.display())
                } else {
                    write!(f, "{}: {e}", path.display())
                }
            }
            DbError::NotFound(what) => write!(f, "{what} does not exist"),
            DbError::Exists(what) => write!(f, "{what} already exists"),
            DbError::Corrupt(path, what) => write!(f, "{}: corrupt: {what}", path.display()),
            DbError::Locked(path) => write!(f, "{}: locked by another writer", path.display()),
            DbError::OutOfOrder { path, last, time } => write!(
                f,
                "{}: sample at {} is not newer than the last one stored ({})",
                path.display(),
                time::iso(*time),
                time::iso(*last)
            ),
            DbError::Invalid(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for DbError {}

/// Attach a path to an I/O error.
pub(crate) fn io_at<T>(path: &Path, r: io::Result<T>) -> Result<T, DbError> {
    r.map_err(|e| DbError::Io(path.to_path_buf(), e))
}

/// Give a file or directory just created under the database the owner of
/// the directory holding it, when running as root: an administrator
/// running `opticon-db` as root must not leave files the service user
/// (which owns the database) cannot read or replace.
pub fn adopt_owner(path: &Path) {
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    if let Some(parent) = path.parent() {
        if let Ok(meta) = fs::metadata(parent) {
            let (uid, gid) = (
                std::os::unix::fs::MetadataExt::uid(&meta),
                std::os::unix::fs::MetadataExt::gid(&meta),
            );
            let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
        }
    }
}

/// Replace `path` with `data` atomically and durably: write a temporary
/// file beside it, fsync it, rename it over the old one, fsync the
/// directory. Readers see the old or the new contents, never a mix.
///
/// The file is readable by its owner only (0600): metadata holds tenant
/// keys.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), DbError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(&tmp)?;
        adopt_owner(&tmp);
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    io_at(path, result)
}

/// Replace `path` with `data` atomically but without fsync: for derived
/// files rebuilt every cycle (overview, summary, metrics), where losing
/// the last version in a power cut costs nothing.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<(), DbError> {
    let mut r = Replacement::create(path)?;
    r.write(data)?;
    r.commit()
}

/// A file's new contents written piece by piece beside it, then renamed
/// over it (no fsync, as [`write_replace`]); dropped without
/// [`Replacement::commit`], the old file stays and the piece is removed.
pub struct Replacement {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<io::BufWriter<File>>,
}

impl Replacement {
    /// Start the new contents of `path`.
    pub fn create(path: &Path) -> Result<Replacement, DbError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let f = io_at(&tmp, File::create(&tmp))?;
        adopt_owner(&tmp);
        Ok(Replacement {
            path: path.to_path_buf(),
            tmp,
            out: Some(io::BufWriter::with_capacity(64 << 10, f)),
        })
    }

    /// Append `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), DbError> {
        match &mut self.out {
            Some(out) => io_at(&self.tmp, out.write_all(data)),
            None => Ok(()),
        }
    }

    /// Put the new contents in place.
    pub fn commit(mut self) -> Result<(), DbError> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let result = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|_| fs::rename(&self.tmp, &self.path));
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        io_at(&self.path, result)
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// What `dir` really occupies on disk, recursively: the blocks allocated
/// to every file and directory in it and to itself (`st_blocks * 512`),
/// so that metadata, logs, locks and allocation slack count too.
pub fn dir_bytes(dir: &Path) -> Result<u64, DbError> {
    dir_bytes_but(dir, None)
}

/// [`dir_bytes`] leaving out the entry `skip` of `dir` itself (a
/// tenant's day files, counted apart).
pub fn dir_bytes_but(dir: &Path, skip: Option<&str>) -> Result<u64, DbError> {
    use std::os::unix::fs::MetadataExt;
    let mut total = io_at(dir, fs::metadata(dir))?.blocks() * 512;
    for entry in io_at(dir, fs::read_dir(dir))? {
        let entry = io_at(dir, entry)?;
        if skip.is_some_and(|s| entry.file_name() == s) {
            continue;
        }
        let meta = io_at(&entry.path(), entry.metadata())?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}
