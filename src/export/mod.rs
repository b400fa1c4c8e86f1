//! Export: every stored record also goes to an existing time-series
//! engine, so that fleet-wide queries, long retention and Grafana come
//! from there. See `export` in opticon-collector(8).
//!
//! A record travels through these files in order:
//!
//! * [`series`]: which meters become which series, under which labels.
//! * [`encode`]: request bodies, Prometheus remote write 1.0 (protobuf
//!   by hand, [`snappy`] compressed) or InfluxDB line protocol.
//! * [`target`]: one target's requests per tenant route, into its
//!   [`spool`] on disk before anything is sent.
//! * [`sender`]: a thread per target posting the spool's oldest request,
//!   retrying by the remote-write rules.
//!
//! [`config`] reads the `export` section.

pub mod config;
pub mod encode;
pub mod sender;
pub mod series;
pub mod snappy;
pub mod spool;
pub mod target;

pub use config::{targets_from_dict, TargetConfig, EXPORT_SHAPE};
pub use encode::HostLabels;
pub use target::{Target, TargetCounts};
