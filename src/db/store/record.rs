//! Records of a tenant day file: frames (as every DB file has them)
//! whose body starts with the host and the offset of that host's
//! previous record in the file.
//!
//! ```text
//! length:u32 time:i64 kind:u8 host:16 prev:u64 payload sum:8 length:u32
//! ```
//!
//! `length` counts host, prev and payload; `prev` is 0 for a host's first
//! record of the day, which is always a full frame. The checksum covers
//! everything before it, the host and the chain pointer included.

use crate::db::format::{checksum, frame_at, FRAME_OVERHEAD, MAX_BODY};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use uuid::Uuid;

/// Bytes before the payload in a record's body: host and prev.
pub const PREFIX: usize = 24;
/// Bytes read at once for a record whose length is not known yet: most
/// records fit, so one `pread` fetches one.
const PROBE: usize = 768;

/// One record, read and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the file.
    pub offset: u64,
    /// Its whole length on disk.
    pub size: u64,
    /// Sample time.
    pub time: i64,
    /// Full or delta frame.
    pub kind: u8,
    /// The host it belongs to.
    pub host: Uuid,
    /// Offset of the host's previous record; 0 when this is its first.
    pub prev: u64,
    /// The sample or delta.
    pub payload: Vec<u8>,
}

/// Append the record of `host` to `out`.
pub fn put(out: &mut Vec<u8>, time: i64, kind: u8, host: Uuid, prev: u64, payload: &[u8]) {
    let start = out.len();
    let len = ((PREFIX + payload.len()) as u32).to_be_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&time.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(&prev.to_be_bytes());
    out.extend_from_slice(payload);
    let sum = checksum(&[&out[start..]]);
    out.extend_from_slice(&sum);
    out.extend_from_slice(&len);
}

/// The bytes a record of `payload` takes.
pub fn size_of(payload: usize) -> u64 {
    (FRAME_OVERHEAD + PREFIX + payload) as u64
}

/// The record starting at `at` in `buf` (which starts at file offset
/// `base`), if a valid one does.
pub fn parse(buf: &[u8], at: usize, base: u64) -> Option<Record> {
    let f = frame_at(buf, at)?;
    let body = &buf[f.body.0..f.body.1];
    if body.len() < PREFIX {
        return None;
    }
    let host = Uuid::from_slice(&body[..16]).ok()?;
    let mut prev = [0u8; 8];
    prev.copy_from_slice(&body[16..24]);
    Some(Record {
        offset: base + at as u64,
        size: (f.body.1 + 12 - at) as u64,
        time: f.time,
        kind: f.kind,
        host,
        prev: u64::from_be_bytes(prev),
        payload: body[PREFIX..].to_vec(),
    })
}

/// The length a record header at the start of `head` announces, whole.
pub fn announced(head: &[u8]) -> Option<usize> {
    let b = head.get(..4)?;
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    (len <= MAX_BODY).then_some(FRAME_OVERHEAD + len)
}

/// Read the record at `offset` of `file`, which must end by `end`;
/// `None` when no valid record is there.
pub fn read_at(file: &File, offset: u64, end: u64) -> io::Result<Option<Record>> {
    let room = end.saturating_sub(offset) as usize;
    let mut buf = vec![0u8; PROBE.min(room)];
    file.read_exact_at(&mut buf, offset)?;
    let Some(size) = announced(&buf) else {
        return Ok(None);
    };
    if size > room {
        return Ok(None);
    }
    if size > buf.len() {
        let have = buf.len();
        buf.resize(size, 0);
        file.read_exact_at(&mut buf[have..], offset + have as u64)?;
    }
    Ok(parse(&buf[..size], 0, offset))
}
