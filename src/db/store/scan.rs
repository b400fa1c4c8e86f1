//! Walking a tenant day file forward from an offset, record by record,
//! through a window that is read a megabyte at a time: how a writer
//! recovers what its index does not cover yet, and how fsck checks a
//! whole file of any size.

use super::record::{announced, parse, Record, PREFIX};
use crate::db::format::{FRAME_DELTA, FRAME_KEY, FRAME_OVERHEAD};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read per window.
const WINDOW: usize = 1 << 20;

/// What the scanner found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A valid record.
    Record(Record),
    /// Bytes `from..to` that are no record, with a valid one at `to`.
    Corrupt {
        /// First bad byte.
        from: u64,
        /// The next valid record.
        to: u64,
    },
    /// No valid record from `at` to the end: an interrupted append.
    TornTail {
        /// Where the torn part starts.
        at: u64,
    },
}

/// A forward walk over `file` from one offset to `end`.
pub struct Scanner<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> Scanner<'a> {
    /// Walk `file` from `pos` (a record boundary) to `end`.
    pub fn new(file: &'a File, pos: u64, end: u64) -> Scanner<'a> {
        Scanner {
            file,
            pos,
            end,
            buf: Vec::new(),
            buf_start: pos,
        }
    }

    /// Bytes `at..at + n` (fewer at the end of the file).
    fn load(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let n = n.min(self.end.saturating_sub(at) as usize);
        let inside =
            at >= self.buf_start && at + n as u64 <= self.buf_start + self.buf.len() as u64;
        if !inside {
            let want = n.max(WINDOW).min(self.end.saturating_sub(at) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.buf_start = at;
        }
        let from = (at - self.buf_start) as usize;
        Ok(&self.buf[from..from + n])
    }

    /// The valid record at `at`, if one starts there.
    fn record_at(&mut self, at: u64) -> io::Result<Option<Record>> {
        // Cheap refusals first: resyncing tries every byte offset.
        let head = self.load(at, 13)?;
        if head.len() < 13 || !matches!(head[12], FRAME_KEY | FRAME_DELTA) {
            return Ok(None);
        }
        let Some(size) = announced(head) else {
            return Ok(None);
        };
        if size < FRAME_OVERHEAD + PREFIX || at + size as u64 > self.end {
            return Ok(None);
        }
        let bytes = self.load(at, size)?;
        Ok(parse(bytes, 0, at))
    }

    /// The next record or damage; `None` at the end.
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if let Some(r) = self.record_at(self.pos)? {
            self.pos += r.size;
            return Ok(Some(Item::Record(r)));
        }
        let from = self.pos;
        let mut at = from + 1;
        while at < self.end {
            if self.record_at(at)?.is_some() {
                self.pos = at;
                return Ok(Some(Item::Corrupt { from, to: at }));
            }
            at += 1;
        }
        self.pos = self.end;
        Ok(Some(Item::TornTail { at: from }))
    }
}
