//! The one writer of a host: the block encoder, appends, syncs, parking
//! between write cycles, the writer lock and repairing a torn tail.

use super::day::{corrupt, day_files, day_path, read_day, KEYFRAME_INTERVAL, LOCK_FILE};
use crate::db::delta;
use crate::db::format::{
    self, check_header, put_frame, scan, Damage, FRAME_DELTA, FRAME_KEY, HEADER_LEN, KIND_SAMPLES,
};
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use crate::model::binary::put_sample;
use crate::model::HostMeters;
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::storage::{Disk, Storage};

/// What [`HostWriter::open`] repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The file cut.
    pub path: PathBuf,
    /// Its length before.
    pub from: u64,
    /// Its length after.
    pub to: u64,
}

/// Turns samples into frames: a full frame, then deltas, for at most
/// [`KEYFRAME_INTERVAL`] frames per block.
#[derive(Default)]
pub struct BlockEncoder {
    prev: Option<HostMeters>,
    since_key: usize,
    body: Vec<u8>,
}

impl BlockEncoder {
    /// Append the frame for `meters` at `time` to `out`.
    pub fn frame(&mut self, time: i64, meters: &HostMeters, out: &mut Vec<u8>) {
        let kind = self.encode(time, meters);
        put_frame(out, time, kind, &self.body);
    }

    /// Encode `meters` at `time` as the next frame body ([`Self::body`]);
    /// returns its kind.
    pub fn encode(&mut self, time: i64, meters: &HostMeters) -> u8 {
        let kind = encode_frame(
            self.prev.as_ref(),
            None,
            self.since_key,
            time,
            meters,
            &mut self.body,
        );
        self.since_key = frames_in_block(self.since_key, kind);
        match &mut self.prev {
            Some(prev) => prev.clone_from(meters),
            None => self.prev = Some(meters.clone()),
        }
        kind
    }

    /// The body of the frame [`Self::encode`] made last.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The last frame's body, to be encoded again as a full frame when
    /// its day cannot take a delta; [`Self::keyed`] says it was.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// The last frame was stored as a full one after all: it starts a
    /// block.
    pub fn keyed(&mut self) {
        self.since_key = 1;
    }

    /// Start a new block at the next frame (a new file).
    pub fn reset(&mut self) {
        self.prev = None;
        self.since_key = 0;
    }
}

/// Encode `meters` at `time` into `body` (cleared first) as the frame
/// after `prev`, the last sample stored, which was the `since_key`-th
/// frame of its block: a delta when it can be one, else a full frame;
/// returns the kind.
/// `known`, when given, are the changes of `meters` against `prev` but
/// in the meters it says (see [`delta::encode_known`]).
pub fn encode_frame(
    prev: Option<&HostMeters>,
    known: Option<&delta::Known<'_>>,
    since_key: usize,
    time: i64,
    meters: &HostMeters,
    body: &mut Vec<u8>,
) -> u8 {
    body.clear();
    match prev {
        Some(prev)
            if since_key > 0
                && since_key < KEYFRAME_INTERVAL
                && delta::encode_known(prev, meters, known, body) =>
        {
            FRAME_DELTA
        }
        // A delta that cannot be one wrote nothing.
        _ => {
            put_sample(body, time, meters);
            FRAME_KEY
        }
    }
}

/// How many frames a block holds after one of `kind` follows
/// `since_key` of them.
pub fn frames_in_block(since_key: usize, kind: u8) -> usize {
    if kind == FRAME_KEY {
        1
    } else {
        since_key + 1
    }
}

/// A whole day file holding `samples`, for rebuilding damaged files.
pub fn encode_day(date: Date, samples: &[(i64, HostMeters)]) -> Vec<u8> {
    let mut out = format::header(KIND_SAMPLES, date.start()).to_vec();
    let mut enc = BlockEncoder::default();
    for (t, m) in samples {
        enc.frame(*t, m, &mut out);
    }
    out
}

/// The only writer of one host directory (holds its lock while alive).
pub struct HostWriter {
    dir: PathBuf,
    _lock: File,
    storage: Arc<dyn Storage>,
    /// Directories whose new entries (this host's directory, a new day
    /// file) the next [`HostWriter::sync`] makes durable.
    unsynced_dirs: Vec<PathBuf>,
    /// Day files left for a newer one since the last sync: their last
    /// appends are made durable by the next sync too.
    unsynced_files: Vec<(PathBuf, File)>,
    /// The open day file.
    day: Option<OpenDay>,
    encoder: BlockEncoder,
    last_time: Option<i64>,
    frame: Vec<u8>,
    /// Torn tails cut off when the writer opened.
    pub repairs: Vec<Repair>,
    /// Damaged day files moved aside (`.corrupt`) when the writer opened:
    /// the host records on in a fresh file.
    pub moved_aside: Vec<PathBuf>,
}

/// The day file a writer appends to.
struct OpenDay {
    date: Date,
    file: File,
    /// Its length.
    len: u64,
}

/// Take the writer lock of a host directory without waiting for another
/// writer (a lock only held by a process that is forking and about to
/// exec gets a few milliseconds to go away).
pub fn lock(dir: &Path) -> Result<File, DbError> {
    lock_within(dir, std::time::Duration::from_millis(20))
}

/// [`lock`], waiting up to `patience` for another writer to let go (a
/// tool's rewrite waits out the collector's write cycle).
pub fn lock_within(dir: &Path, patience: std::time::Duration) -> Result<File, DbError> {
    let path = dir.join(LOCK_FILE);
    let f = io_at(
        &path,
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path),
    )?;
    super::super::adopt_owner(&path);
    let deadline = std::time::Instant::now() + patience;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(DbError::Io(path, err));
        }
        if std::time::Instant::now() >= deadline {
            return Err(DbError::Locked(dir.to_path_buf()));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Cut a day file back to its last valid frame if its tail is torn; a
/// file too short for its header is reset to an empty day.
fn repair_tail(storage: &dyn Storage, path: &Path) -> Result<Option<Repair>, DbError> {
    let buf = io_at(path, fs::read(path))?;
    let len = buf.len() as u64;
    let keep = if buf.len() < HEADER_LEN {
        0
    } else {
        check_header(&buf, KIND_SAMPLES).map_err(|e| corrupt(path, e))?;
        match scan(&buf).damage.last() {
            Some(Damage::TornTail { offset }) => *offset as u64,
            _ => len,
        }
    };
    if keep == len {
        return Ok(None);
    }
    let f = io_at(path, OpenOptions::new().write(true).open(path))?;
    io_at(path, storage.truncate(&f, path, keep))?;
    io_at(path, storage.sync_file(&f, path))?;
    Ok(Some(Repair {
        path: path.to_path_buf(),
        from: len,
        to: keep,
    }))
}

impl HostWriter {
    /// Take the host's writer lock (creating its directory), cut any torn
    /// tail left by a crash, and pick up where the last writer stopped.
    pub fn open(dir: &Path) -> Result<HostWriter, DbError> {
        HostWriter::open_with(dir, Arc::new(Disk))
    }

    /// [`HostWriter::open`] with every file operation going to `storage`
    /// (a test's recording storage; [`Disk`] otherwise).
    pub fn open_with(dir: &Path, storage: Arc<dyn Storage>) -> Result<HostWriter, DbError> {
        let mut unsynced_dirs = Vec::new();
        if !dir.exists() {
            // Every directory created, and the one holding the first of
            // them, gets a new entry to make durable.
            let mut missing = dir;
            while let Some(parent) = missing.parent() {
                unsynced_dirs.push(parent.to_path_buf());
                if parent.exists() {
                    break;
                }
                missing = parent;
            }
            io_at(dir, storage.create_dir(dir))?;
            super::super::adopt_owner(dir);
        }
        let lock = lock(dir)?;
        let mut w = HostWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            storage,
            unsynced_dirs,
            unsynced_files: Vec::new(),
            day: None,
            encoder: BlockEncoder::default(),
            last_time: None,
            frame: Vec::new(),
            repairs: Vec::new(),
            moved_aside: Vec::new(),
        };
        if let Some(newest) = day_files(dir)?.pop() {
            let repaired = match repair_tail(w.storage.as_ref(), &newest.path) {
                Err(DbError::Corrupt(..)) => {
                    // A damaged header: keep the bytes for fsck, record on.
                    let aside = crate::db::store::writer::corrupt_name(&newest.path);
                    io_at(&newest.path, fs::rename(&newest.path, &aside))?;
                    w.moved_aside.push(aside);
                    return Ok(w);
                }
                other => other?,
            };
            if let Some(r) = repaired {
                w.repairs.push(r);
            }
            let day = read_day(&newest.path)?;
            if let Some(last) = day.scan.frames.last() {
                w.last_time = Some(last.time);
                let file = io_at(
                    &newest.path,
                    OpenOptions::new().append(true).open(&newest.path),
                )?;
                let meta = io_at(&newest.path, file.metadata())?;
                w.day = Some(OpenDay {
                    date: newest.date,
                    file,
                    len: meta.len(),
                });
                let deltas = day
                    .scan
                    .frames
                    .iter()
                    .rev()
                    .take_while(|f| f.kind == FRAME_DELTA)
                    .count();
                w.encoder.since_key = deltas + 1;
                w.encoder.prev = day.sample(day.scan.frames.len() - 1).map(|(_, m)| m);
            }
        }
        Ok(w)
    }

    /// Time of the last sample stored.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }

    fn day_file(&mut self, date: Date) -> Result<&mut File, DbError> {
        if self.day.as_ref().map(|d| d.date) != Some(date) {
            let path = day_path(&self.dir, date);
            if !path.exists() {
                // Readers never see a day file without its header.
                let header = format::header(KIND_SAMPLES, date.start());
                io_at(&path, self.storage.create_file(&path, &header))?;
                super::super::adopt_owner(&path);
                if !self.unsynced_dirs.contains(&self.dir) {
                    self.unsynced_dirs.push(self.dir.clone());
                }
            }
            let mut f = io_at(
                &path,
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&path),
            )?;
            let meta = io_at(&path, f.metadata())?;
            let mut len = meta.len();
            if len == 0 {
                let header = format::header(KIND_SAMPLES, date.start());
                io_at(&path, self.storage.append(&mut f, &path, 0, &header))?;
                super::super::adopt_owner(&path);
                len = HEADER_LEN as u64;
            }
            // Blocks never span files: a new day starts with a full frame.
            self.encoder.reset();
            let open = OpenDay { date, file: f, len };
            if let Some(old) = self.day.replace(open) {
                self.unsynced_files
                    .push((day_path(&self.dir, old.date), old.file));
            }
        }
        match &mut self.day {
            Some(d) => Ok(&mut d.file),
            None => Err(DbError::Invalid("day file vanished".into())),
        }
    }

    /// Append one sample; returns the bytes written. Samples must come in
    /// increasing time order.
    pub fn append(&mut self, time: i64, meters: &HostMeters) -> Result<usize, DbError> {
        if let Some(last) = self.last_time {
            if time <= last {
                return Err(DbError::OutOfOrder {
                    path: self.dir.clone(),
                    last,
                    time,
                });
            }
        }
        let date = Date::of(time);
        self.day_file(date)?;
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        self.encoder.frame(time, meters, &mut frame);
        let path = day_path(&self.dir, date);
        let storage = Arc::clone(&self.storage);
        let offset = self.day.as_ref().map_or(0, |d| d.len);
        let written = self
            .day_file(date)
            .and_then(|f| io_at(&path, storage.append(f, &path, offset, &frame)));
        let n = frame.len();
        self.frame = frame;
        written?;
        if let Some(d) = &mut self.day {
            d.len += n as u64;
        }
        self.last_time = Some(time);
        Ok(n)
    }

    /// Make every appended sample durable: fdatasync of the open day
    /// file, then fsync of the directories that got new entries since the
    /// last sync (a new day file, a new host directory), without which a
    /// crash could lose a synced file whole.
    pub fn sync(&mut self) -> Result<(), DbError> {
        while let Some((path, f)) = self.unsynced_files.pop() {
            io_at(&path, self.storage.sync_file(&f, &path))?;
        }
        if let Some(d) = &self.day {
            let path = day_path(&self.dir, d.date);
            io_at(&path, self.storage.sync_file(&d.file, &path))?;
        }
        while let Some(dir) = self.unsynced_dirs.pop() {
            io_at(&dir, self.storage.sync_dir(&dir))?;
        }
        Ok(())
    }
}
