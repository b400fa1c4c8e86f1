//! One host's samples: UTC day files of frames, one writer, any readers.
//!
//! A day file holds blocks of up to [`KEYFRAME_INTERVAL`] samples: a full
//! frame (the binary sample codec) followed by delta frames. A sample is
//! appended with a single `write(2)`, so a crash can only leave a torn
//! last frame; [`HostWriter::open`] cuts it off. Readers never return a
//! frame whose checksum fails, and skip deltas whose chain is broken.

use super::delta;
use super::format::{
    self, check_header, put_frame, scan, tail_chain, Damage, Frame, Scan, FRAME_DELTA, FRAME_KEY,
    HEADER_LEN, KIND_SAMPLES,
};
use super::time::Date;
use super::{io_at, DbError};
use crate::model::binary::{decode_sample, encode_sample};
use crate::model::{HostMeters, MeterValue};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Most frames in a block: a full frame, then deltas. Bounds the work to
/// rebuild any sample and the samples one damaged byte can cost.
pub const KEYFRAME_INTERVAL: usize = 60;
/// Extension of day files.
pub const DAY_EXT: &str = "osd";
/// Name of the writer lock file in a host directory.
pub const LOCK_FILE: &str = ".lock";

/// A day file of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFile {
    /// Its UTC date.
    pub date: Date,
    /// Its path.
    pub path: PathBuf,
}

/// The path of a host's day file.
pub fn day_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(format!("{}.{DAY_EXT}", date.stem()))
}

/// A host's day files, oldest first.
pub fn day_files(dir: &Path) -> Result<Vec<DayFile>, DbError> {
    let mut days = Vec::new();
    for entry in io_at(dir, fs::read_dir(dir))? {
        let entry = io_at(dir, entry)?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".osd")) else {
            continue;
        };
        if let Some(date) = Date::from_stem(stem) {
            days.push(DayFile {
                date,
                path: entry.path(),
            });
        }
    }
    days.sort_by_key(|d| d.date);
    Ok(days)
}

/// One day file read into memory and scanned.
pub struct Day {
    /// Its path, for messages.
    pub path: PathBuf,
    /// The whole file.
    pub buf: Vec<u8>,
    /// Its frames and damage.
    pub scan: Scan,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(path.to_path_buf(), what.to_string())
}

fn read_checked(path: &Path) -> Result<Vec<u8>, DbError> {
    let buf = io_at(path, fs::read(path))?;
    check_header(&buf, KIND_SAMPLES).map_err(|e| corrupt(path, e))?;
    Ok(buf)
}

/// Read and scan a day file.
pub fn read_day(path: &Path) -> Result<Day, DbError> {
    let buf = read_checked(path)?;
    let scan = scan(&buf);
    Ok(Day {
        path: path.to_path_buf(),
        buf,
        scan,
    })
}

/// Rebuild samples frame by frame.
struct Replayer {
    state: Option<HostMeters>,
}

impl Replayer {
    fn new() -> Replayer {
        Replayer { state: None }
    }

    /// Feed the next frame; the sample it completes, if decodable.
    fn feed(&mut self, buf: &[u8], f: &Frame) -> Option<&HostMeters> {
        let body = &buf[f.body.0..f.body.1];
        match f.kind {
            FRAME_KEY => {
                self.state = decode_sample(body).ok().map(|(_, mut m)| {
                    m.stamp(f.time);
                    m
                })
            }
            _ if !f.follows => self.state = None,
            _ => {
                if let Some(state) = &mut self.state {
                    if delta::apply(state, body, f.time).is_err() {
                        self.state = None;
                    }
                }
            }
        }
        self.state.as_ref()
    }
}

impl Day {
    /// Every decodable sample of the day in order; `visit` returns false to
    /// stop early.
    pub fn replay(&self, mut visit: impl FnMut(i64, &HostMeters) -> bool) {
        let mut r = Replayer::new();
        for f in &self.scan.frames {
            if let Some(m) = r.feed(&self.buf, f) {
                if !visit(f.time, m) {
                    return;
                }
            }
        }
    }

    /// The sample of frame `index`, rebuilt from its block's full frame.
    pub fn sample(&self, index: usize) -> Option<(i64, HostMeters)> {
        let frames = &self.scan.frames;
        let target = frames.get(index)?;
        let mut start = index;
        while frames[start].kind != FRAME_KEY {
            if !frames[start].follows || start == 0 {
                return None;
            }
            start -= 1;
        }
        let mut r = Replayer::new();
        for f in &frames[start..index] {
            r.feed(&self.buf, f)?;
        }
        r.feed(&self.buf, target).map(|m| (target.time, m.clone()))
    }

    /// The newest decodable sample at or before `t`.
    pub fn sample_at_or_before(&self, t: i64) -> Option<(i64, HostMeters)> {
        let upto = self.scan.frames.partition_point(|f| f.time <= t);
        (0..upto).rev().find_map(|i| self.sample(i))
    }
}

/// The latest sample in one day file, walking back from its end; falls
/// back to a full scan when the tail is damaged.
fn latest_in(path: &Path) -> Result<Option<(i64, HostMeters)>, DbError> {
    let buf = read_checked(path)?;
    if let Some(chain) = tail_chain(&buf, KEYFRAME_INTERVAL) {
        let mut r = Replayer::new();
        let mut decoded = false;
        for f in &chain {
            decoded = r.feed(&buf, f).is_some();
        }
        if let (true, Some(state), Some(f)) = (decoded, r.state, chain.last()) {
            return Ok(Some((f.time, state)));
        }
    }
    let day = Day {
        path: path.to_path_buf(),
        scan: scan(&buf),
        buf,
    };
    Ok((0..day.scan.frames.len()).rev().find_map(|i| day.sample(i)))
}

/// The host's latest sample: one read of its newest day file and at most
/// one block decoded.
pub fn latest(dir: &Path) -> Result<Option<(i64, HostMeters)>, DbError> {
    for day in day_files(dir)?.iter().rev() {
        if let Some(found) = latest_in(&day.path)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The newest sample at or before `t`, looking back across day files (a
/// day without data yields the previous day's last sample).
pub fn at(dir: &Path, t: i64) -> Result<Option<(i64, HostMeters)>, DbError> {
    let limit = Date::of(t);
    for day in day_files(dir)?.iter().rev().filter(|d| d.date <= limit) {
        if let Some(found) = read_day(&day.path)?.sample_at_or_before(t) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The numeric value of a meter: a scalar, or an array's first element.
pub fn numeric(value: &MeterValue) -> Option<f64> {
    value.element(0).and_then(|e| e.as_f64())
}

/// Every stored value of a numeric meter with `from <= time <= to`.
pub fn series(dir: &Path, meter: &str, from: i64, to: i64) -> Result<Vec<(i64, f64)>, DbError> {
    let mut out = Vec::new();
    let (first, last) = (Date::of(from), Date::of(to));
    for day in day_files(dir)?
        .iter()
        .filter(|d| d.date >= first && d.date <= last)
    {
        let day = read_day(&day.path)?;
        day.replay(|t, m| {
            if t > to {
                return false;
            }
            if t >= from {
                if let Some(v) = m.get(meter).and_then(|m| numeric(&m.value)) {
                    out.push((t, v));
                }
            }
            true
        });
    }
    Ok(out)
}

/// One point of a downsampled series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the bucket.
    pub time: i64,
    /// Mean of the samples in the bucket.
    pub avg: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Number of samples.
    pub count: usize,
}

/// Reduce a series over `[from, to]` to `points` equal buckets; empty
/// buckets are left out.
pub fn downsample(series: &[(i64, f64)], from: i64, to: i64, points: usize) -> Vec<Point> {
    let points = points.max(1);
    let span = (to - from).max(1) as f64;
    let mut buckets: Vec<Option<Point>> = vec![None; points];
    for &(t, v) in series {
        let i = (((t - from) as f64 / span) * points as f64) as usize;
        let i = i.min(points - 1);
        let start = from + (span * i as f64 / points as f64) as i64;
        let p = buckets[i].get_or_insert(Point {
            time: start,
            avg: 0.0,
            min: v,
            max: v,
            count: 0,
        });
        p.avg += v;
        p.min = p.min.min(v);
        p.max = p.max.max(v);
        p.count += 1;
    }
    buckets
        .into_iter()
        .flatten()
        .map(|mut p| {
            p.avg /= p.count as f64;
            p
        })
        .collect()
}

/// Disk use and time range of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes of every file in the host directory.
    pub bytes: u64,
    /// Time of the first stored sample.
    pub first: Option<i64>,
    /// Time of the last stored sample.
    pub last: Option<i64>,
}

/// The first frame time of a day file, reading only its start.
fn first_time(path: &Path) -> Result<Option<i64>, DbError> {
    let mut f = io_at(path, File::open(path))?;
    let mut head = vec![0u8; HEADER_LEN + 4096];
    let mut n = 0;
    while n < head.len() {
        match io_at(path, f.read(&mut head[n..]))? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    check_header(&head, KIND_SAMPLES).map_err(|e| corrupt(path, e))?;
    match scan(&head).frames.first() {
        Some(fr) => Ok(Some(fr.time)),
        // A first frame larger than the probe: read the whole file.
        None => Ok(read_day(path)?.scan.frames.first().map(|fr| fr.time)),
    }
}

/// The last frame time of a day file, reading only its end.
fn last_time(path: &Path) -> Result<Option<i64>, DbError> {
    let mut f = io_at(path, File::open(path))?;
    let len = io_at(path, f.metadata())?.len();
    let probe = len.min(64 * 1024);
    io_at(path, f.seek(SeekFrom::Start(len - probe)))?;
    let mut tail = vec![0u8; probe as usize];
    io_at(path, f.read_exact(&mut tail))?;
    // The probe may start mid-frame; frame_before only needs the tail.
    let offset = (len - probe) as usize;
    let mut padded = vec![0u8; offset.min(HEADER_LEN)];
    padded.extend_from_slice(&tail);
    if let Some(fr) = format::frame_before(&padded, padded.len()) {
        return Ok(Some(fr.time));
    }
    Ok(read_day(path)?.scan.frames.last().map(|fr| fr.time))
}

/// Bytes used and the first and last sample times of a host.
pub fn usage(dir: &Path) -> Result<Usage, DbError> {
    let days = day_files(dir)?;
    let mut u = Usage {
        bytes: super::dir_bytes(dir)?,
        ..Usage::default()
    };
    for d in &days {
        if let Some(t) = first_time(&d.path)? {
            u.first = Some(t);
            break;
        }
    }
    for d in days.iter().rev() {
        if let Some(t) = last_time(&d.path)? {
            u.last = Some(t);
            break;
        }
    }
    Ok(u)
}

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
        self.body.clear();
        let kind = match &self.prev {
            Some(prev)
                if self.since_key < KEYFRAME_INTERVAL
                    && delta::encode(prev, meters, &mut self.body) =>
            {
                FRAME_DELTA
            }
            _ => {
                self.body.clear();
                self.body.extend_from_slice(&encode_sample(time, meters));
                FRAME_KEY
            }
        };
        put_frame(out, time, kind, &self.body);
        self.since_key = if kind == FRAME_KEY {
            1
        } else {
            self.since_key + 1
        };
        match &mut self.prev {
            Some(prev) => prev.clone_from(meters),
            None => self.prev = Some(meters.clone()),
        }
    }

    /// Start a new block at the next frame (a new file).
    pub fn reset(&mut self) {
        self.prev = None;
        self.since_key = 0;
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
    /// The open day file and its length.
    day: Option<(Date, File, u64)>,
    encoder: BlockEncoder,
    last_time: Option<i64>,
    frame: Vec<u8>,
    /// Torn tails cut off when the writer opened.
    pub repairs: Vec<Repair>,
}

/// Where a parked writer stopped: the day file and its length then.
#[derive(Debug, Clone)]
struct WriterMark {
    date: Date,
    len: u64,
    since_key: usize,
}

/// A [`HostWriter`] without its files: about one encoded sample of memory
/// and no descriptors.
#[derive(Debug, Clone, Default)]
pub struct ParkedWriter {
    mark: Option<WriterMark>,
    last_time: Option<i64>,
    prev: Option<Vec<u8>>,
}

impl ParkedWriter {
    /// Time of the last sample stored.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }

    /// The last sample written, encoded as one payload (a base that
    /// other compact copies of the host's state can be deltas against).
    pub fn prev_encoded(&self) -> Option<&[u8]> {
        self.prev.as_deref()
    }
}

/// Take the writer lock of a host directory without waiting for another
/// writer (a lock only held by a process that is forking and about to
/// exec gets a few milliseconds to go away).
pub fn lock(dir: &Path) -> Result<File, DbError> {
    let path = dir.join(LOCK_FILE);
    let f = io_at(
        &path,
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path),
    )?;
    super::adopt_owner(&path);
    for attempt in 0..20 {
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(DbError::Io(path, err));
        }
        if attempt < 19 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    Err(DbError::Locked(dir.to_path_buf()))
}

/// Cut a day file back to its last valid frame if its tail is torn; a
/// file too short for its header is reset to an empty day.
fn repair_tail(path: &Path) -> Result<Option<Repair>, DbError> {
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
    io_at(path, f.set_len(keep))?;
    io_at(path, f.sync_all())?;
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
        if !dir.exists() {
            io_at(dir, fs::create_dir_all(dir))?;
            super::adopt_owner(dir);
        }
        let lock = lock(dir)?;
        let mut w = HostWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            day: None,
            encoder: BlockEncoder::default(),
            last_time: None,
            frame: Vec::new(),
            repairs: Vec::new(),
        };
        if let Some(newest) = day_files(dir)?.pop() {
            if let Some(r) = repair_tail(&newest.path)? {
                w.repairs.push(r);
            }
            let day = read_day(&newest.path)?;
            if let Some(last) = day.scan.frames.last() {
                w.last_time = Some(last.time);
                let file = io_at(
                    &newest.path,
                    OpenOptions::new().append(true).open(&newest.path),
                )?;
                let len = io_at(&newest.path, file.metadata())?.len();
                w.day = Some((newest.date, file, len));
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
        if self.day.as_ref().map(|(d, _, _)| *d) != Some(date) {
            let path = day_path(&self.dir, date);
            if !path.exists() {
                // Readers never see a day file without its header: it is
                // written beside and renamed into place.
                let tmp = self.dir.join(format!(".{}.tmp", date.stem()));
                let header = format::header(KIND_SAMPLES, date.start());
                io_at(&tmp, fs::write(&tmp, header))?;
                io_at(&path, fs::rename(&tmp, &path))?;
                super::adopt_owner(&path);
            }
            let mut f = io_at(
                &path,
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&path),
            )?;
            let mut len = io_at(&path, f.metadata())?.len();
            if len == 0 {
                io_at(
                    &path,
                    f.write_all(&format::header(KIND_SAMPLES, date.start())),
                )?;
                super::adopt_owner(&path);
                len = HEADER_LEN as u64;
            }
            // Blocks never span files: a new day starts with a full frame.
            self.encoder.reset();
            self.day = Some((date, f, len));
        }
        match &mut self.day {
            Some((_, f, _)) => Ok(f),
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
        let written = self
            .day_file(date)
            .and_then(|f| io_at(&path, f.write_all(&frame)));
        let n = frame.len();
        self.frame = frame;
        written?;
        if let Some((_, _, len)) = &mut self.day {
            *len += n as u64;
        }
        self.last_time = Some(time);
        Ok(n)
    }

    /// Close the files and release the lock, keeping what the next append
    /// needs in a compact form (the previous sample encoded): a process
    /// that writes many hosts holds descriptors only while it writes.
    pub fn park(self) -> ParkedWriter {
        ParkedWriter {
            mark: self.day.as_ref().map(|(date, _, len)| WriterMark {
                date: *date,
                len: *len,
                since_key: self.encoder.since_key,
            }),
            last_time: self.last_time,
            prev: self
                .encoder
                .prev
                .as_ref()
                .zip(self.last_time)
                .map(|(m, t)| {
                    let mut b = encode_sample(t, m);
                    b.shrink_to_fit();
                    b
                }),
        }
    }

    /// Take the lock again and continue from `parked`; when the day file
    /// changed meanwhile (another writer, a repair), start over as
    /// [`HostWriter::open`] does. `prev` is the parked previous sample
    /// when the caller has it decoded already (saves decoding it again).
    pub fn resume(
        dir: &Path,
        parked: &ParkedWriter,
        prev: Option<HostMeters>,
    ) -> Result<HostWriter, DbError> {
        let (Some(mark), Some(encoded)) = (&parked.mark, &parked.prev) else {
            return HostWriter::open(dir);
        };
        let path = day_path(dir, mark.date);
        let lock = lock(dir)?;
        let file = match OpenOptions::new().append(true).open(&path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.len() == mark.len) => f,
            _ => {
                drop(lock);
                return HostWriter::open(dir);
            }
        };
        let prev = match prev {
            Some(m) => m,
            None => match decode_sample(encoded) {
                Ok((_, m)) => m,
                Err(_) => {
                    drop((lock, file));
                    return HostWriter::open(dir);
                }
            },
        };
        Ok(HostWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            day: Some((mark.date, file, mark.len)),
            encoder: BlockEncoder {
                prev: Some(prev),
                since_key: mark.since_key,
                body: Vec::new(),
            },
            last_time: parked.last_time,
            frame: Vec::new(),
            repairs: Vec::new(),
        })
    }

    /// Make every appended sample durable (fdatasync of the open day file).
    pub fn sync(&mut self) -> Result<(), DbError> {
        if let Some((date, f, _)) = &self.day {
            let path = day_path(&self.dir, *date);
            io_at(&path, f.sync_data())?;
        }
        Ok(())
    }
}
