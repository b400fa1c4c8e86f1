//! Day files: finding a host's files, reading one with its checksums,
//! and replaying its frames into samples.

use crate::db::delta;
use crate::db::format::{check_header, scan, Frame, Scan, FRAME_KEY, KIND_SAMPLES};
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use crate::model::binary::decode_sample;
use crate::model::HostMeters;
use std::fs;
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

pub(super) fn corrupt(path: &Path, what: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(path.to_path_buf(), what.to_string())
}

pub(super) fn read_checked(path: &Path) -> Result<Vec<u8>, DbError> {
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
pub(crate) struct Replayer {
    pub(crate) state: Option<HostMeters>,
}

impl Replayer {
    pub(crate) fn new() -> Replayer {
        Replayer { state: None }
    }

    /// Feed the next frame; the sample it completes, if decodable.
    pub(super) fn feed(&mut self, buf: &[u8], f: &Frame) -> Option<&HostMeters> {
        self.feed_body(f.kind, f.follows, f.time, &buf[f.body.0..f.body.1])
    }

    /// Feed the next frame given by its parts: `follows` is false when
    /// the frame before it is missing.
    pub(crate) fn feed_body(
        &mut self,
        kind: u8,
        follows: bool,
        time: i64,
        body: &[u8],
    ) -> Option<&HostMeters> {
        match kind {
            FRAME_KEY => {
                self.state = decode_sample(body).ok().map(|(_, mut m)| {
                    m.stamp(time);
                    m
                })
            }
            _ if !follows => self.state = None,
            _ => {
                if let Some(state) = &mut self.state {
                    if delta::apply(state, body, time).is_err() {
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
