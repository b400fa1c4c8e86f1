//! A target's spool: request bodies written to disk before they are
//! sent, deleted when the engine acknowledged them, replayed after a
//! restart or an outage, and bounded in bytes (the oldest go first).
//!
//! A spool is a directory of segment files `<16 hex digits>.spool`,
//! oldest first, and a `cursor` file naming the first frame not yet
//! acknowledged (`<segment> <frame>`). A segment is a run of frames:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "OPX1"
//! 4       4     length of what follows the 20-byte head (LE)
//! 8       4     samples in the body (LE)
//! 12      8     SHA-256 of the rest, first 8 bytes
//! 20      2     route length R (LE): the tenant id of a path or
//!               header target, empty for label targets
//! 22      R     route
//! 22+R    ...   request body, as sent
//! ```
//!
//! A torn frame at a segment's end (a crash while appending) is cut off
//! when the spool is opened; a damaged frame ends its segment there.

use crate::db::format::checksum;
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 4] = b"OPX1";
const HEAD: usize = 20;
/// Largest frame accepted when reading a spool back.
const MAX_FRAME: usize = 64 << 20;
/// Name of the file holding the first unacknowledged frame.
pub const CURSOR_FILE: &str = "cursor";

/// Why the spool failed.
#[derive(Debug)]
pub enum SpoolError {
    /// The directory or a file in it could not be used.
    Io(PathBuf, io::Error),
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Io(p, e) => write!(f, "spool {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for SpoolError {}

/// One request waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its segment.
    pub segment: u64,
    /// Its place in the segment.
    pub index: usize,
    /// The tenant id it goes to (path and header targets).
    pub route: String,
    /// Samples it holds.
    pub samples: u64,
    /// The request body.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct FrameAt {
    offset: u64,
    len: u64,
    samples: u64,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    frames: Vec<FrameAt>,
    /// Frames acknowledged (or given up).
    done: usize,
    bytes: u64,
}

impl Segment {
    fn waiting_samples(&self) -> u64 {
        self.frames[self.done..].iter().map(|f| f.samples).sum()
    }
}

#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    /// The segment being appended to, open.
    writing: Option<(u64, File)>,
    next_seq: u64,
    bytes: u64,
    queued: u64,
    dropped: u64,
    closed: bool,
    cursor_saved: Instant,
}

/// What opening a spool found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Frames waiting from before.
    pub frames: usize,
    /// Samples in them.
    pub samples: u64,
    /// Torn or damaged tails cut off, by file.
    pub cut: Vec<PathBuf>,
}

/// A spool directory, shared by the collector (which appends) and the
/// target's sender (which sends and acknowledges).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    state: Mutex<State>,
    ready: Condvar,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |e| SpoolError::Io(path.to_path_buf(), e)
}

/// Read the frames of one segment; a torn or damaged tail is cut off.
fn scan(path: &Path) -> Result<(Vec<FrameAt>, bool), SpoolError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    let mut frames = Vec::new();
    let mut offset = 0u64;
    let mut head = [0u8; HEAD];
    let good = loop {
        if offset == size {
            break true;
        }
        f.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
        if f.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
            break false;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let samples = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64;
        if !(2..=MAX_FRAME).contains(&len) || offset + (HEAD + len) as u64 > size {
            break false;
        }
        let mut rest = vec![0u8; len];
        if f.read_exact(&mut rest).is_err() || checksum(&[&rest]) != head[12..20] {
            break false;
        }
        frames.push(FrameAt {
            offset,
            len: (HEAD + len) as u64,
            samples,
        });
        offset += (HEAD + len) as u64;
    };
    if !good {
        f.set_len(offset).map_err(io_err(path))?;
    }
    Ok((frames, !good))
}

impl Spool {
    /// Open (creating) the spool in `dir`, holding at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, Recovered), SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".spool")?;
                (stem.len() == 16).then(|| u64::from_str_radix(stem, 16).ok())?
            })
            .collect();
        seqs.sort_unstable();
        let cursor = fs::read_to_string(dir.join(CURSOR_FILE))
            .ok()
            .and_then(|t| {
                let (s, i) = t.trim().split_once(' ')?;
                Some((u64::from_str_radix(s, 16).ok()?, i.parse::<usize>().ok()?))
            })
            .unwrap_or((0, 0));
        let mut recovered = Recovered::default();
        let mut segments = VecDeque::new();
        let (mut bytes, mut queued) = (0, 0);
        for seq in &seqs {
            let path = dir.join(format!("{seq:016x}.spool"));
            if *seq < cursor.0 {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let (frames, cut) = scan(&path)?;
            if cut {
                recovered.cut.push(path.clone());
            }
            let done = if *seq == cursor.0 {
                cursor.1.min(frames.len())
            } else {
                0
            };
            let seg = Segment {
                seq: *seq,
                bytes: frames.iter().map(|f| f.len).sum(),
                frames,
                done,
            };
            recovered.frames += seg.frames.len() - seg.done;
            recovered.samples += seg.waiting_samples();
            bytes += seg.bytes;
            queued += seg.waiting_samples();
            segments.push_back(seg);
        }
        let next_seq = seqs.last().map_or(cursor.0, |s| s + 1).max(cursor.0);
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(1 << 16, 64 << 20),
            state: Mutex::new(State {
                segments,
                writing: None,
                next_seq,
                bytes,
                queued,
                dropped: 0,
                closed: false,
                cursor_saved: Instant::now(),
            }),
            ready: Condvar::new(),
        };
        spool.settle(&mut spool.lock());
        Ok((spool, recovered))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016x}.spool"))
    }

    /// Append one request body; returns the samples dropped (the oldest
    /// frames) to stay within the spool's bytes.
    pub fn push(&self, route: &str, samples: u64, body: &[u8]) -> Result<u64, SpoolError> {
        let route = &route.as_bytes()[..route.len().min(u16::MAX as usize)];
        let mut rest = Vec::with_capacity(2 + route.len() + body.len());
        rest.extend_from_slice(&(route.len() as u16).to_le_bytes());
        rest.extend_from_slice(route);
        rest.extend_from_slice(body);
        let mut frame = Vec::with_capacity(HEAD + rest.len());
        frame.extend_from_slice(MAGIC);
        frame.extend_from_slice(&(rest.len() as u32).to_le_bytes());
        frame.extend_from_slice(&(samples.min(u32::MAX as u64) as u32).to_le_bytes());
        frame.extend_from_slice(&checksum(&[&rest]));
        frame.extend_from_slice(&rest);
        let mut st = self.lock();
        if st.closed {
            return Ok(0);
        }
        let rotate = match (&st.writing, st.segments.back()) {
            (Some((seq, _)), Some(last)) => last.seq != *seq || last.bytes >= self.segment_bytes,
            _ => true,
        };
        if rotate {
            let seq = st.next_seq;
            let path = self.segment_path(seq);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            st.next_seq += 1;
            st.writing = Some((seq, file));
            st.segments.push_back(Segment {
                seq,
                frames: Vec::new(),
                done: 0,
                bytes: 0,
            });
        }
        let Some((seq, file)) = &mut st.writing else {
            return Ok(0);
        };
        let seq = *seq;
        if let Err(e) = file.write_all(&frame) {
            // Whatever part was written is cut when the spool reopens;
            // the next push starts a fresh segment.
            st.writing = None;
            return Err(SpoolError::Io(self.segment_path(seq), e));
        }
        let len = frame.len() as u64;
        if let Some(seg) = st.segments.back_mut() {
            let offset = seg.bytes;
            seg.frames.push(FrameAt {
                offset,
                len,
                samples,
            });
            seg.bytes += len;
        }
        st.bytes += len;
        st.queued += samples;
        let before = st.dropped;
        self.trim(&mut st);
        let dropped = st.dropped - before;
        drop(st);
        self.ready.notify_all();
        Ok(dropped)
    }

    /// Drop the oldest segments while over the spool's bytes.
    fn trim(&self, st: &mut State) {
        while st.bytes > self.max_bytes && st.segments.len() > 1 {
            let Some(seg) = st.segments.pop_front() else {
                break;
            };
            let waiting = seg.waiting_samples();
            st.dropped += waiting;
            st.queued -= waiting;
            st.bytes -= seg.bytes;
            let _ = fs::remove_file(self.segment_path(seg.seq));
        }
    }

    /// Make what was pushed durable and start the next push on a new
    /// segment (once a write cycle).
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut st = self.lock();
        if let Some((seq, file)) = st.writing.take() {
            file.sync_data()
                .map_err(|e| SpoolError::Io(self.segment_path(seq), e))?;
        }
        self.settle(&mut st);
        Ok(())
    }

    /// The oldest frame not yet acknowledged, waiting up to `wait` for
    /// one; `None` when there is none or the spool is closed.
    pub fn next(&self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        let mut st = self.lock();
        loop {
            if st.closed {
                return None;
            }
            if let Some(seg) = st.segments.iter().find(|s| s.done < s.frames.len()) {
                let at = seg.frames[seg.done];
                let (seq, index) = (seg.seq, seg.done);
                match self.read(seq, at) {
                    Ok(frame) => {
                        return Some(Frame {
                            segment: seq,
                            index,
                            ..frame
                        })
                    }
                    Err(e) => {
                        // Unreadable now (removed by hand, a disk error):
                        // given up as dropped, so the rest can go.
                        crate::svc::log::err(&e.to_string());
                        drop(st);
                        self.ack(seq, index);
                        st = self.lock();
                        st.dropped += at.samples;
                        continue;
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .ready
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn read(&self, seq: u64, at: FrameAt) -> Result<Frame, SpoolError> {
        let path = self.segment_path(seq);
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut raw = vec![0u8; at.len as usize];
        file.read_exact_at(&mut raw, at.offset)
            .map_err(io_err(&path))?;
        let damaged = || {
            SpoolError::Io(
                path.clone(),
                io::Error::new(io::ErrorKind::InvalidData, "damaged frame"),
            )
        };
        let rest = &raw[HEAD..];
        if checksum(&[rest]) != raw[12..20] || rest.len() < 2 {
            return Err(damaged());
        }
        let rlen = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let route = rest.get(2..2 + rlen).ok_or_else(damaged)?;
        Ok(Frame {
            segment: seq,
            index: 0,
            route: String::from_utf8_lossy(route).into_owned(),
            samples: at.samples,
            body: rest[2 + rlen..].to_vec(),
        })
    }

    /// The frame `index` of `segment` was delivered (or given up): the
    /// next one is due, and a segment all done is deleted. A frame the
    /// spool dropped meanwhile is ignored, and so is everything once the
    /// spool is closed (a sender still finishing a request).
    pub fn ack(&self, segment: u64, index: usize) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        let Some(pos) = st.segments.iter().position(|s| s.seq == segment) else {
            return;
        };
        let seg = &mut st.segments[pos];
        if seg.done != index || index >= seg.frames.len() {
            return;
        }
        let samples = seg.frames[index].samples;
        seg.done += 1;
        st.queued -= samples;
        self.settle(&mut st);
        if st.cursor_saved.elapsed() >= Duration::from_secs(1) {
            self.save_cursor(&mut st);
        }
    }

    /// Delete the leading segments that are all done and not written to.
    fn settle(&self, st: &mut State) {
        let writing = st.writing.as_ref().map(|(s, _)| *s);
        while let Some(seg) = st.segments.front() {
            if seg.done < seg.frames.len() || Some(seg.seq) == writing {
                break;
            }
            let seg = st.segments.pop_front();
            if let Some(seg) = seg {
                st.bytes -= seg.bytes;
                let _ = fs::remove_file(self.segment_path(seg.seq));
            }
        }
    }

    fn save_cursor(&self, st: &mut State) {
        st.cursor_saved = Instant::now();
        let (seq, done) = st
            .segments
            .front()
            .map_or((st.next_seq, 0), |s| (s.seq, s.done));
        let _ = crate::db::write_replace(
            &self.dir.join(CURSOR_FILE),
            format!("{seq:016x} {done}\n").as_bytes(),
        );
    }

    /// Whether the frame is still waiting (a full spool may have dropped
    /// it while its sender retried).
    pub fn holds(&self, segment: u64, index: usize) -> bool {
        let st = self.lock();
        st.segments
            .iter()
            .any(|s| s.seq == segment && s.done == index && index < s.frames.len())
    }

    /// Whether [`Spool::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Samples waiting, bytes on disk, and samples dropped (the oldest
    /// when full, or found unreadable) since the spool opened.
    pub fn usage(&self) -> (u64, u64, u64) {
        let st = self.lock();
        (st.queued, st.bytes, st.dropped)
    }

    /// Stop handing out frames (the sender ends), saving the cursor.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        if let Some((_, file)) = st.writing.take() {
            let _ = file.sync_data();
        }
        self.save_cursor(&mut st);
        drop(st);
        self.ready.notify_all();
    }

    /// Wake a sender waiting in [`Spool::next`] (to see a stop).
    pub fn wake(&self) {
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("opticon-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn frames_survive_reopen_and_acks_persist() {
        let d = dir("reopen");
        let (s, r) = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(r.frames, 0);
        for i in 0..3u8 {
            s.push("acct", 10, &[i; 100]).unwrap();
        }
        s.sync().unwrap();
        let f = s.next(Duration::ZERO).unwrap();
        assert_eq!((f.route.as_str(), f.samples, f.body[0]), ("acct", 10, 0));
        s.ack(f.segment, f.index);
        s.close();
        drop(s);
        let (s, r) = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!((r.frames, r.samples), (2, 20));
        assert_eq!(s.next(Duration::ZERO).unwrap().body[0], 1);
        // A torn tail is cut.
        let seg = d.join(format!("{:016x}.spool", 0));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"OPX1\x10\x00").unwrap();
        drop(s);
        let (_, r) = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!((r.frames, r.cut.len()), (2, 1));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn full_spool_drops_the_oldest() {
        let d = dir("full");
        let (s, _) = Spool::open(&d, 1 << 17).unwrap();
        let mut dropped = 0;
        for i in 0..40u32 {
            dropped += s.push("", 5, &vec![(i % 250) as u8; 10_000]).unwrap();
            if i % 4 == 3 {
                s.sync().unwrap();
            }
        }
        let (queued, bytes, total) = s.usage();
        assert!(bytes <= (1 << 17) + 50_000, "{bytes}");
        assert_eq!(dropped, total);
        assert_eq!(queued + dropped, 200);
        let first = s.next(Duration::ZERO).unwrap();
        assert!(first.body[0] > 0, "the oldest went first");
        fs::remove_dir_all(&d).unwrap();
    }
}
