//! The file operations a [`super::HostWriter`] makes, behind one small
//! trait, so that a test can record every write and sync and rebuild what
//! a disk would hold after a power loss at any point (only what was
//! synced survives). [`Disk`] is the real thing and the default.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Where a host writer's bytes go. Every call either does the whole
/// operation or returns the error; the writer decides what is durable by
/// the order in which it calls them.
pub trait Storage: Send + Sync {
    /// Create the directory `path` and any missing parents.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Create `path` holding `contents`, atomically: a reader sees no
    /// file or all of it (written beside and renamed into place).
    fn create_file(&self, path: &Path, contents: &[u8]) -> io::Result<()>;
    /// Append `data` to `file` (the open `path`), now `offset` bytes long.
    fn append(&self, file: &mut File, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cut `file` (the open `path`) to `len` bytes.
    fn truncate(&self, file: &File, path: &Path, len: u64) -> io::Result<()>;
    /// Make the data of `file` (the open `path`) durable.
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()>;
    /// Make the entries of the directory `dir` durable (files created or
    /// renamed in it survive a crash).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl Storage for Disk {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        fs::write(&tmp, contents)?;
        fs::rename(&tmp, path)
    }

    fn append(&self, file: &mut File, _path: &Path, _offset: u64, data: &[u8]) -> io::Result<()> {
        file.write_all(data)
    }

    fn truncate(&self, file: &File, _path: &Path, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn sync_file(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OpenOptions::new().read(true).open(dir)?.sync_all()
    }
}
