//! The host log: the last status changes of a host, in fixed records.
//!
//! A ring of [`LOG_SLOTS`] slots of [`SLOT_LEN`] bytes after the file
//! header. Each slot is written in place with one `pwrite`:
//!
//! ```text
//! seq:u64 time:i64 subsystem[16] message[216] sum:8
//! ```
//!
//! Entry `seq` (from 1) lives in slot `(seq - 1) % 64`; text is UTF-8
//! padded with NUL bytes; the checksum covers the first 248 bytes. A torn
//! or damaged slot fails its checksum and is skipped.

use super::format::{check_header, checksum, header, HEADER_LEN, KIND_LOG};
use super::{io_at, DbError};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Entries kept.
pub const LOG_SLOTS: usize = 64;
/// Bytes per entry.
pub const SLOT_LEN: usize = 256;
const SUBSYSTEM_LEN: usize = 16;
const MESSAGE_LEN: usize = 216;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Order of writing, from 1.
    pub seq: u64,
    /// Unix time.
    pub time: i64,
    /// What wrote it (e.g. `watcher`).
    pub subsystem: String,
    /// The text.
    pub message: String,
}

fn put_text(slot: &mut [u8], text: &str) {
    let mut end = text.len().min(slot.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    slot[..end].copy_from_slice(&text.as_bytes()[..end]);
}

/// One entry as stored, with its checksum.
fn slot(seq: u64, time: i64, subsystem: &str, message: &str) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[..8].copy_from_slice(&seq.to_be_bytes());
    slot[8..16].copy_from_slice(&time.to_be_bytes());
    put_text(&mut slot[16..16 + SUBSYSTEM_LEN], subsystem);
    put_text(&mut slot[32..32 + MESSAGE_LEN], message);
    let sum = checksum(&[&slot[..SLOT_LEN - 8]]);
    slot[SLOT_LEN - 8..].copy_from_slice(&sum);
    slot
}

/// Where entry `seq` lives in the ring.
fn slot_offset(seq: u64) -> usize {
    HEADER_LEN + ((seq.max(1) - 1) as usize % LOG_SLOTS) * SLOT_LEN
}

fn get_text(slot: &[u8]) -> String {
    let end = slot.iter().position(|&b| b == 0).unwrap_or(slot.len());
    String::from_utf8_lossy(&slot[..end]).into_owned()
}

fn parse_slot(slot: &[u8]) -> Option<LogEntry> {
    if checksum(&[&slot[..SLOT_LEN - 8]]) != slot[SLOT_LEN - 8..] {
        return None;
    }
    let seq = u64::from_be_bytes(slot[..8].try_into().ok()?);
    (seq > 0).then(|| LogEntry {
        seq,
        time: i64::from_be_bytes(slot[8..16].try_into().unwrap_or_default()),
        subsystem: get_text(&slot[16..16 + SUBSYSTEM_LEN]),
        message: get_text(&slot[32..32 + MESSAGE_LEN]),
    })
}

/// The entries, newest first; a missing log is empty. Every slot carries
/// its own checksum, so a damaged header (or garbage) costs only the
/// slots that do not verify, never the whole log.
pub fn read(path: &Path) -> Result<Vec<LogEntry>, DbError> {
    let buf = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DbError::Io(path.to_path_buf(), e)),
    };
    if buf.len() < HEADER_LEN {
        return Ok(Vec::new());
    }
    let mut entries: Vec<LogEntry> = buf[HEADER_LEN..]
        .chunks_exact(SLOT_LEN)
        .filter_map(parse_slot)
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
    Ok(entries)
}

/// What is wrong with a host log, if anything: a damaged header, or slots
/// that do not verify (a ring not yet full has zeroed slots, which are
/// fine).
pub fn damage(path: &Path) -> Result<Option<String>, DbError> {
    let buf = io_at(path, fs::read(path))?;
    if let Err(e) = check_header(&buf, KIND_LOG) {
        return Ok(Some(e.to_string()));
    }
    let bad = buf[HEADER_LEN..]
        .chunks(SLOT_LEN)
        .filter(|s| s.len() < SLOT_LEN || (parse_slot(s).is_none() && s.iter().any(|&b| b != 0)))
        .count();
    Ok((bad > 0).then(|| format!("{bad} damaged entries")))
}

/// Write the log again from its entries that verify; returns how many.
pub fn rebuild(path: &Path) -> Result<usize, DbError> {
    let mut entries = read(path)?;
    entries.sort_by_key(|e| e.seq);
    let mut out = header(KIND_LOG, 0).to_vec();
    for e in &entries {
        let at = slot_offset(e.seq);
        if out.len() < at + SLOT_LEN {
            out.resize(at + SLOT_LEN, 0);
        }
        out[at..at + SLOT_LEN].copy_from_slice(&slot(e.seq, e.time, &e.subsystem, &e.message));
    }
    super::write_atomic(path, &out)?;
    Ok(entries.len())
}

/// The newest entry's sequence number that verifies: slots are tried
/// newest first, so an append checks one checksum, not the whole ring.
fn newest_seq(buf: &[u8]) -> Option<u64> {
    let mut slots: Vec<(u64, &[u8])> = buf
        .get(HEADER_LEN..)?
        .chunks_exact(SLOT_LEN)
        .filter_map(|s| Some((u64::from_be_bytes(s[..8].try_into().ok()?), s)))
        .filter(|(seq, _)| *seq > 0)
        .collect();
    slots.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    slots
        .into_iter()
        .find(|(_, s)| parse_slot(s).is_some())
        .map(|(seq, _)| seq)
}

/// Append an entry, overwriting the oldest once the ring is full. One
/// open: the ring is read and written through the same descriptor.
pub fn append(path: &Path, time: i64, subsystem: &str, message: &str) -> Result<(), DbError> {
    append_as(path, None, time, subsystem, message).map(|_| ())
}

/// [`append`] as entry `seq` when the caller knows it (the one after the
/// entry it appended last: the collector is the log's only writer), so
/// that the ring is not read first; returns the entry's number.
pub fn append_as(
    path: &Path,
    seq: Option<u64>,
    time: i64,
    subsystem: &str,
    message: &str,
) -> Result<u64, DbError> {
    let f = io_at(
        path,
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path),
    )?;
    // A log removed or emptied meanwhile starts again with its header.
    let has_header = || f.metadata().is_ok_and(|m| m.len() >= HEADER_LEN as u64);
    let next = match seq {
        Some(seq) if has_header() => seq,
        _ => {
            let mut buf = Vec::new();
            io_at(path, std::io::Read::read_to_end(&mut &f, &mut buf))?;
            let damaged = buf
                .get(..HEADER_LEN)
                .is_none_or(|head| check_header(head, KIND_LOG).is_err());
            if damaged {
                // A fresh header; the slots that verify stay.
                io_at(path, f.write_all_at(&header(KIND_LOG, 0), 0))?;
                super::adopt_owner(path);
            }
            newest_seq(&buf).map_or(1, |seq| seq + 1)
        }
    };
    let slot = slot(next, time, subsystem, message);
    let at = slot_offset(next);
    // Durable with the next sync of the database: the collector syncs
    // once per write cycle, so a cycle that changes the status of
    // 100,000 hosts costs one sync, not 100,000.
    io_at(path, f.write_all_at(&slot, at as u64))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("opticon-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("host.log");
        for i in 0..70 {
            append(&path, 1000 + i, "watcher", &format!("Status change {i} é")).unwrap();
        }
        let entries = read(&path).unwrap();
        assert_eq!(entries.len(), LOG_SLOTS);
        assert_eq!(entries[0].message, "Status change 69 é");
        assert_eq!(entries[0].seq, 70);
        assert_eq!(entries.last().unwrap().seq, 7);
        // A damaged slot is skipped, not returned.
        let mut buf = fs::read(&path).unwrap();
        buf[HEADER_LEN + 40] ^= 1;
        fs::write(&path, &buf).unwrap();
        assert_eq!(read(&path).unwrap().len(), LOG_SLOTS - 1);
        // A damaged newest slot: the next entry follows the newest that
        // verifies, and takes the damaged one's place.
        let newest = slot_offset(70);
        buf[newest + 20] ^= 1;
        fs::write(&path, &buf).unwrap();
        append(&path, 2000, "watcher", "after damage").unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(
            (entries[0].seq, entries[0].message.as_str()),
            (70, "after damage")
        );
        assert_eq!(entries[1].seq, 69);
        // The writer that knows the next number writes without reading;
        // a log removed meanwhile starts again with its header.
        let next = append_as(&path, Some(71), 2001, "watcher", "known").unwrap();
        assert_eq!(next, 71);
        assert_eq!(read(&path).unwrap()[0].message, "known");
        fs::remove_file(&path).unwrap();
        assert_eq!(
            append_as(&path, Some(72), 2002, "watcher", "anew").unwrap(),
            1
        );
        let entries = read(&path).unwrap();
        assert_eq!((entries.len(), entries[0].seq), (1, 1));
        fs::remove_dir_all(&dir).unwrap();
    }
}
