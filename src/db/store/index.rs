//! The index of a tenant day file: which hosts it holds, where each
//! host's chain of records ends, and how far the file was complete when
//! the index was written. Replaced whole (written beside, renamed) after
//! each sync; a reader looks a host up with a binary search.
//!
//! ```text
//! offset  size  field
//! 0       32    file header, kind "TI", aux = the day's midnight,
//!               reserved = generation of the day file it indexes
//! 32      8     committed: every record indexed ends by this offset
//! 40      4     number of hosts N
//! 44      4     zero
//! 48      8     checksum of bytes 0..48
//! 56      64*N  per host, by UUID: host (16), first and last record
//!               offset (u64), first and last record time (i64), record
//!               bytes (u64), checksum of the 56 bytes before (8)
//! ```

use crate::db::format::{check_header, checksum, generation, header_with, KIND_DAY_INDEX};
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Bytes before the host records.
pub const HEAD: usize = 56;
/// Bytes per host record.
pub const RECORD: usize = 64;

/// One host's part of a day file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDay {
    /// Offset of its first record.
    pub first_off: u64,
    /// Offset of its last record (where its chain starts).
    pub last_off: u64,
    /// Time of its first record.
    pub first_time: i64,
    /// Time of its last record.
    pub last_time: i64,
    /// Bytes of its records.
    pub bytes: u64,
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// The index of `hosts` (in any order; stored by host) for a day file of
/// `date` and `generation`, complete up to `committed`.
pub fn encode(
    date: Date,
    generation: u32,
    committed: u64,
    hosts: impl IntoIterator<Item = (Uuid, HostDay)>,
) -> Vec<u8> {
    let mut entries: Vec<(Uuid, HostDay)> = hosts.into_iter().collect();
    entries.sort_unstable_by_key(|(h, _)| *h);
    let mut out = Vec::with_capacity(HEAD + RECORD * entries.len());
    out.extend_from_slice(&header_with(KIND_DAY_INDEX, generation, date.start()));
    out.extend_from_slice(&committed.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    let sum = checksum(&[&out[..48]]);
    out.extend_from_slice(&sum);
    for (host, d) in &entries {
        let start = out.len();
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(&d.first_off.to_be_bytes());
        out.extend_from_slice(&d.last_off.to_be_bytes());
        out.extend_from_slice(&d.first_time.to_be_bytes());
        out.extend_from_slice(&d.last_time.to_be_bytes());
        out.extend_from_slice(&d.bytes.to_be_bytes());
        let sum = checksum(&[&out[start..]]);
        out.extend_from_slice(&sum);
    }
    out
}

fn decode_record(path: &Path, r: &[u8]) -> Result<(Uuid, HostDay), DbError> {
    if checksum(&[&r[..56]]) != r[56..64] {
        return Err(DbError::Corrupt(
            path.to_path_buf(),
            "host record checksum mismatch".into(),
        ));
    }
    let host = Uuid::from_slice(&r[..16]).unwrap_or_default();
    Ok((
        host,
        HostDay {
            first_off: be64(&r[16..]),
            last_off: be64(&r[24..]),
            first_time: be64(&r[32..]) as i64,
            last_time: be64(&r[40..]) as i64,
            bytes: be64(&r[48..]),
        },
    ))
}

/// An open index file: its head read and checked, its records read on
/// demand (the file stays the version opened, even when replaced).
pub struct DayIndex {
    path: PathBuf,
    file: File,
    /// Generation of the day file it indexes.
    pub generation: u32,
    /// Every record indexed ends by this offset.
    pub committed: u64,
    /// Hosts in it.
    pub hosts: usize,
}

impl DayIndex {
    /// Open the index at `path` of a day file of `date`; `None` when
    /// there is none.
    pub fn open(path: &Path, date: Date) -> Result<Option<DayIndex>, DbError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DbError::Io(path.to_path_buf(), e)),
        };
        let corrupt = |what: String| DbError::Corrupt(path.to_path_buf(), what);
        let len = io_at(path, file.metadata())?.len();
        let mut head = [0u8; HEAD];
        if len < HEAD as u64 {
            return Err(corrupt("shorter than its header".into()));
        }
        io_at(path, file.read_exact_at(&mut head, 0))?;
        let aux = check_header(&head, KIND_DAY_INDEX).map_err(|e| corrupt(e.to_string()))?;
        if aux != date.start() {
            return Err(corrupt(format!("an index of another day ({aux})")));
        }
        if checksum(&[&head[..48]]) != head[48..56] {
            return Err(corrupt("head checksum mismatch".into()));
        }
        let hosts = u32::from_be_bytes([head[40], head[41], head[42], head[43]]) as usize;
        if len != (HEAD + RECORD * hosts) as u64 {
            return Err(corrupt(format!("{len} bytes for {hosts} hosts")));
        }
        Ok(Some(DayIndex {
            path: path.to_path_buf(),
            file,
            generation: generation(&head),
            committed: be64(&head[32..]),
            hosts,
        }))
    }

    fn record(&self, i: usize) -> Result<(Uuid, HostDay), DbError> {
        let mut r = [0u8; RECORD];
        io_at(
            &self.path,
            self.file.read_exact_at(&mut r, (HEAD + RECORD * i) as u64),
        )?;
        decode_record(&self.path, &r)
    }

    /// The entry of `host`: a binary search, one read per step.
    pub fn lookup(&self, host: Uuid) -> Result<Option<HostDay>, DbError> {
        let (mut lo, mut hi) = (0, self.hosts);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (h, d) = self.record(mid)?;
            match h.cmp(&host) {
                std::cmp::Ordering::Equal => return Ok(Some(d)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Every entry, by host.
    pub fn all(&self) -> Result<Vec<(Uuid, HostDay)>, DbError> {
        let mut raw = vec![0u8; RECORD * self.hosts];
        io_at(&self.path, self.file.read_exact_at(&mut raw, HEAD as u64))?;
        raw.chunks_exact(RECORD)
            .map(|r| decode_record(&self.path, r))
            .collect()
    }
}
