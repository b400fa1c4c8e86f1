//! Host-log entries of a write cycle, written beside it by I/O threads.
//!
//! A status change writes one 256-byte slot of the host's `host.log`.
//! The page it lands in was usually last touched minutes before, and
//! where the kernel dropped it meanwhile the write waits for it to be
//! read back (measured at a million hosts: 60 s of one cycle's worker
//! time went to 485,000 status changes, 130 us each, nearly all of it
//! waiting for the disk). Waits for a disk overlap, so these writes go to
//! threads of their own, more than the cores, while the workers go on
//! judging hosts; the cycle waits for them before its sync, so an entry
//! is durable with its cycle's samples, as before.

use crate::db::log as hostlog;
use crate::svc;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Threads writing host logs: each mostly waits for a page read back,
/// so more than the cores (at a million hosts on this 2-core machine's
/// virtual disk, 8 threads made the writes of a cycle with 450,000
/// status changes take less than the cycle's judging).
pub const THREADS: usize = 8;

/// Entries handed over and not yet written, at most (about 200 bytes
/// each): the cycle waits for room beyond that.
const QUEUED: usize = 4096;

/// One entry to append to a host's log.
pub(super) struct Entry {
    /// The host (tenant, host), for the number of its next entry.
    pub(super) key: (Uuid, Uuid),
    /// Its `host.log`.
    pub(super) path: PathBuf,
    /// The entry's number, when the collector knows it (else the ring is
    /// read for it).
    pub(super) seq: Option<u64>,
    /// Unix time.
    pub(super) time: i64,
    /// What wrote it (`watcher`).
    pub(super) subsystem: &'static str,
    /// The text.
    pub(super) message: String,
}

impl Entry {
    /// The number of the host's entry after this one, as far as the
    /// worker can tell (the writer corrects it when the log said
    /// otherwise).
    pub(super) fn next_seq(&self) -> Option<u64> {
        self.seq.map(|s| s + 1)
    }

    /// Append it; the number of the host's next entry as the log has it
    /// (`None` after an error: the log is read again next time).
    fn write(&self) -> Option<u64> {
        match hostlog::append_as(
            &self.path,
            self.seq,
            self.time,
            self.subsystem,
            &self.message,
        ) {
            Ok(seq) => Some(seq + 1),
            Err(e) => {
                svc::log::warn(&e.to_string());
                None
            }
        }
    }
}

/// What the writers did in one cycle.
#[derive(Default)]
pub(super) struct Written {
    /// Hosts whose next entry number is not the one the workers
    /// assumed.
    pub(super) corrections: Vec<((Uuid, Uuid), Option<u64>)>,
    /// Entries written.
    pub(super) entries: usize,
    /// Time the writer threads spent writing, summed.
    pub(super) busy: Duration,
}

impl Written {
    fn absorb(&mut self, other: Written) {
        self.corrections.extend(other.corrections);
        self.entries += other.entries;
        self.busy += other.busy;
    }
}

/// The writer threads of one write cycle, started by its first entry.
pub(super) struct Writers {
    /// Threads were asked for (once a cycle, even when none started).
    started: bool,
    queue: Option<SyncSender<Entry>>,
    threads: Vec<JoinHandle<Written>>,
    /// What was written on the cycle's own thread (no writer thread
    /// could be started, or they stopped).
    inline: Written,
}

impl Writers {
    /// No threads yet: a cycle without status changes starts none.
    pub(super) fn new() -> Writers {
        Writers {
            started: false,
            queue: None,
            threads: Vec::new(),
            inline: Written::default(),
        }
    }

    /// Hand `entry` to a writer thread, or write it here when there is
    /// none; given back while [`QUEUED`] others wait (the caller reads
    /// its receive queue meanwhile and offers it again).
    pub(super) fn offer(&mut self, entry: Entry) -> Result<(), Entry> {
        if !self.started {
            self.started = true;
            self.start();
        }
        let entry = match &self.queue {
            Some(queue) => match queue.try_send(entry) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(entry)) => return Err(entry),
                // Every writer is gone: the rest are written here.
                Err(mpsc::TrySendError::Disconnected(entry)) => entry,
            },
            None => entry,
        };
        write_one(&entry, &mut self.inline);
        Ok(())
    }

    fn start(&mut self) {
        let (queue, entries) = mpsc::sync_channel(QUEUED);
        let entries = Arc::new(Mutex::new(entries));
        for i in 0..THREADS {
            let entries = Arc::clone(&entries);
            match std::thread::Builder::new()
                .name(format!("hostlog-{i}"))
                .spawn(move || {
                    // Below the collector's thread, which must keep reading
                    // the receive queue: a new fleet's first cycles write
                    // a log entry for each of its hosts, and eight writers
                    // at its priority took the cores from it (105,053
                    // datagrams dropped in one cycle at a million hosts).
                    svc::pool::lower_this_thread(svc::pool::BACKGROUND_NICE);
                    drain(&entries)
                }) {
                Ok(t) => self.threads.push(t),
                Err(e) => {
                    svc::log::warn(&format!("cannot start a host-log writer: {e}"));
                    break;
                }
            }
        }
        if !self.threads.is_empty() {
            self.queue = Some(queue);
        }
    }

    /// Wait until every entry handed over is written.
    pub(super) fn finish(mut self) -> Written {
        self.queue = None;
        let mut written = std::mem::take(&mut self.inline);
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(w) => written.absorb(w),
                Err(_) => svc::log::err("a host-log writer stopped"),
            }
        }
        written
    }
}

fn write_one(entry: &Entry, written: &mut Written) {
    let t = Instant::now();
    let next = entry.write();
    if next != entry.next_seq() {
        written.corrections.push((entry.key, next));
    }
    written.entries += 1;
    written.busy += t.elapsed();
}

/// A writer thread: entries until the queue closes.
fn drain(entries: &Mutex<Receiver<Entry>>) -> Written {
    let mut written = Written::default();
    loop {
        let next = match entries.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return written,
        };
        match next {
            Ok(entry) => write_one(&entry, &mut written),
            Err(_) => return written,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offer until taken, as the cycle does (without a queue to read).
    fn offer(writers: &mut Writers, mut entry: Entry) {
        while let Err(back) = writers.offer(entry) {
            entry = back;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn entries_are_written_and_numbers_corrected() {
        let dir = std::env::temp_dir().join(format!("opticon-hostlogs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = |h: u128| (Uuid::from_u128(1), Uuid::from_u128(h));
        let entry = |h: u128, seq: Option<u64>, text: &str| Entry {
            key: key(h),
            path: dir.join(format!("{h}.log")),
            seq,
            time: 1000,
            subsystem: "watcher",
            message: format!("{text} {h}"),
        };
        // New logs: every number is learnt from the log (1), whatever
        // the worker assumed.
        let mut writers = Writers::new();
        for h in 0..50 {
            offer(&mut writers, entry(h, (h % 2 == 0).then_some(7), "first"));
        }
        let written = writers.finish();
        assert_eq!((written.entries, written.corrections.len()), (50, 50));
        assert!(written.corrections.iter().all(|(_, next)| *next == Some(2)));
        // Known numbers are kept as given; unknown ones are read.
        let mut writers = Writers::new();
        for h in 0..50 {
            offer(&mut writers, entry(h, (h % 2 == 0).then_some(2), "second"));
        }
        let written = writers.finish();
        assert_eq!((written.entries, written.corrections.len()), (50, 25));
        for (k, next) in &written.corrections {
            assert_eq!((k.1.as_u128() % 2, *next), (1, Some(3)));
        }
        for h in 0..50 {
            let entries = hostlog::read(&dir.join(format!("{h}.log"))).unwrap();
            let texts: Vec<(u64, &str)> = entries
                .iter()
                .map(|e| (e.seq, e.message.as_str()))
                .collect();
            assert_eq!(
                texts,
                [
                    (2, format!("second {h}").as_str()),
                    (1, format!("first {h}").as_str())
                ]
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
