//! Queries over a host's day files: the latest sample, the sample at a
//! time, series of one meter (downsampled for graphs) and storage usage.

use super::day::{corrupt, day_files, read_checked, read_day, Day, Replayer, KEYFRAME_INTERVAL};
use crate::db::format::{self, check_header, scan, tail_chain, HEADER_LEN, KIND_SAMPLES};
use crate::db::time::Date;
use crate::db::{io_at, DbError};
use crate::model::{HostMeters, MeterValue};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A damaged day file reads as one without data: queries serve what the
/// other files hold (the writer moves a damaged file aside, fsck repairs
/// it); failures to read at all still count.
fn unless_damaged<T>(r: Result<Option<T>, DbError>) -> Result<Option<T>, DbError> {
    match r {
        Err(DbError::Corrupt(..)) => Ok(None),
        other => other,
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
        if let Some(found) = unless_damaged(latest_in(&day.path))? {
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
        let Some(read) = unless_damaged(read_day(&day.path).map(Some))? else {
            continue;
        };
        if let Some(found) = read.sample_at_or_before(t) {
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
    Ok(series_many(dir, &[meter], from, to)?
        .pop()
        .unwrap_or_default())
}

/// [`series`] of several meters in one pass over the day files (a host
/// view's graphs come from one request, one read).
pub fn series_many(
    dir: &Path,
    meters: &[&str],
    from: i64,
    to: i64,
) -> Result<Vec<Vec<(i64, f64)>>, DbError> {
    let mut out = vec![Vec::new(); meters.len()];
    let (first, last) = (Date::of(from), Date::of(to));
    for day in day_files(dir)?
        .iter()
        .filter(|d| d.date >= first && d.date <= last)
    {
        let Some(day) = unless_damaged(read_day(&day.path).map(Some))? else {
            continue;
        };
        day.replay(|t, m| {
            if t > to {
                return false;
            }
            if t >= from {
                for (meter, series) in meters.iter().zip(out.iter_mut()) {
                    if let Some(v) = m.get(meter).and_then(|m| numeric(&m.value)) {
                        series.push((t, v));
                    }
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
        bytes: super::super::dir_bytes(dir)?,
        ..Usage::default()
    };
    for d in &days {
        if let Some(t) = unless_damaged(first_time(&d.path))? {
            u.first = Some(t);
            break;
        }
    }
    for d in days.iter().rev() {
        if let Some(t) = unless_damaged(last_time(&d.path))? {
            u.last = Some(t);
            break;
        }
    }
    Ok(u)
}
