//! Files the collector publishes for the API to read: named once here so
//! that the writer and the reader cannot disagree. Each is replaced whole
//! (written aside, then renamed), so a reader sees the old or the new
//! version, never a mix.

/// Per tenant: every host's latest overview entry, one JSON object.
pub const OVERVIEW_FILE: &str = "tenant.overview";
/// Per tenant: hosts by status and fleet-wide folds of a few meters.
pub const SUMMARY_FILE: &str = "tenant.summary";
/// In the database root: the collector's own counters (`/metrics`).
pub const METRICS_FILE: &str = "collector.metrics";
/// In the database root: the open agent sessions, without keys
/// (`/session`).
pub const SESSIONS_FILE: &str = "collector.sessions";

/// Published data older than this many of the collector's write cycles
/// is stale: the collector is stopped or stuck, and what the files say is
/// no longer the fleet's state.
pub const STALE_CYCLES: i64 = 2;

/// Seconds after which published data is stale whatever the interval: a
/// write cycle of one second (tests) must not flicker under load.
pub const MIN_STALE: i64 = 10;

/// Seconds after which data published by a collector writing every
/// `interval` seconds is stale.
pub fn stale_after(interval: i64) -> i64 {
    (STALE_CYCLES * interval).max(MIN_STALE)
}

/// The write interval the collector last published in its metrics
/// (`interval`), or the default 60 s when it never did.
pub fn write_interval(root: &std::path::Path) -> i64 {
    std::fs::read_to_string(root.join(METRICS_FILE))
        .ok()
        .and_then(|t| crate::conf::parse(&t).ok())
        .and_then(|d| d.get("interval").and_then(crate::conf::Node::as_int))
        .filter(|i| *i > 0)
        .unwrap_or(60)
}

/// When a file was last written (Unix seconds), if it exists.
pub fn written_at(path: &std::path::Path) -> Option<i64> {
    unix_seconds(std::fs::metadata(path).ok()?.modified().ok()?)
}

/// A file time as Unix seconds (before 1970: none).
pub fn unix_seconds(t: std::time::SystemTime) -> Option<i64> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(secs as i64)
}
