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
