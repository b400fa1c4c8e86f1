//! Queries of one host, given by its directory: the latest sample, the
//! sample at a time, series of one meter (downsampled for graphs) and
//! storage usage, answered from the tenant's day files.

use crate::db::store;
use crate::db::DbError;
use crate::model::{HostMeters, MeterValue};
use std::path::Path;
use uuid::Uuid;

/// The tenant directory and host of a host directory
/// (`<root>/<tenant>/<host>`): where [`crate::db::store`] keeps its
/// samples, in the tenant's day files.
fn tenant_and_host(dir: &Path) -> Result<(&Path, Uuid), DbError> {
    let host = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| Uuid::parse_str(n).ok());
    match (dir.parent(), host) {
        (Some(tenant), Some(host)) => Ok((tenant, host)),
        _ => Err(DbError::Invalid(format!(
            "{}: not a host directory",
            dir.display()
        ))),
    }
}

/// The host's latest sample: one index lookup and at most one block of
/// records read.
pub fn latest(dir: &Path) -> Result<Option<(i64, HostMeters)>, DbError> {
    let (tenant, host) = tenant_and_host(dir)?;
    store::latest(tenant, host)
}

/// The newest sample at or before `t`, looking back across days (a day
/// without data yields the previous day's last sample).
pub fn at(dir: &Path, t: i64) -> Result<Option<(i64, HostMeters)>, DbError> {
    let (tenant, host) = tenant_and_host(dir)?;
    store::sample_at(tenant, host, t)
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

/// [`series`] of several meters in one pass over the host's records (a
/// host view's graphs come from one request, one read).
pub fn series_many(
    dir: &Path,
    meters: &[&str],
    from: i64,
    to: i64,
) -> Result<Vec<Vec<(i64, f64)>>, DbError> {
    let (tenant, host) = tenant_and_host(dir)?;
    store::series_many(tenant, host, meters, from, to)
}

/// Every decodable sample of the host with `from <= time <= to`, oldest
/// first; `visit` returns false to stop.
pub fn replay(
    dir: &Path,
    from: i64,
    to: i64,
    visit: impl FnMut(i64, &HostMeters) -> bool,
) -> Result<(), DbError> {
    let (tenant, host) = tenant_and_host(dir)?;
    store::reader::replay_range(tenant, host, from, to, visit)
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
    /// Bytes of its records and of every file in its directory.
    pub bytes: u64,
    /// Time of the first stored sample.
    pub first: Option<i64>,
    /// Time of the last stored sample.
    pub last: Option<i64>,
}

/// Bytes used and the first and last sample times of a host.
pub fn usage(dir: &Path) -> Result<Usage, DbError> {
    let (tenant, host) = tenant_and_host(dir)?;
    let mut u = store::usage(tenant, host)?;
    if dir.exists() {
        u.bytes += super::super::dir_bytes(dir)?;
    }
    Ok(u)
}
