//! Hosts, meters and watchers, with their binary and JSON codecs.
//!
//! This is the original's `libopticon` data model without its limits: see
//! [`name::MAX_NAME_LEN`], [`value::MAX_STRING_LEN`], [`value::MAX_ARRAY_LEN`]
//! and [`host::MAX_METERS_PER_HOST`] for the ones that remain.

pub mod binary;
pub mod entity;
pub mod host;
pub mod json;
pub mod name;
pub mod value;
pub mod watch;

pub use entity::{Host, KeyError, Tenant, TenantKey, DEFAULT_QUOTA_MB};
pub use host::{HostError, HostMeters, Meter, MAX_METERS_PER_HOST};
pub use name::{MeterName, NameError, MAX_NAME_LEN};
pub use value::{
    Array, Kind, LimitError, MeterValue, Scalar, ScalarRef, MAX_ARRAY_LEN, MAX_STRING_LEN,
};
pub use watch::{Cmp, Level, Status, Watcher};

/// Now, in whole UNIX seconds: the clock of every sample time, record
/// time and session time in Opticon (a clock before 1970 reads as 0).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
