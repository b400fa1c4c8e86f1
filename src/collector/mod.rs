//! `opticon-collector`: receives, verifies and stores every host's
//! samples, and judges each host's status. See `man 8 opticon-collector`.
//!
//! A datagram travels through these files in order:
//!
//! * [`receive`]: a thread reads the socket in `recvmmsg` batches into a
//!   bounded queue, refusing datagrams that need no key to refuse.
//! * [`sessions`]: tenants (keys, meter definitions) cached in memory;
//!   auth datagrams open sessions, meter datagrams are opened, verified
//!   and queued for their host.
//! * [`hosts`]: each host's live state, kept [`packed`] between write
//!   cycles, restored from its latest record when first heard.
//! * [`cycle`]: every interval, each host is [`judge`]d and [`store`]d
//!   (on worker threads, a chunk of hosts at a time), with one sync;
//!   [`hostlogs`] writes status changes to the host logs beside them,
//!   [`report`] writes each tenant's overview and summary, and
//!   [`notify`] runs the notification command for status changes.
//! * [`upkeep`]: after a cycle, now and then, silent hosts purged and
//!   each tenant kept within its quota, on a thread of its own.
//! * [`index`]: each tenant's host index (first and last record, bytes)
//!   for the API's host list.
//! * [`limits`]: what one tenant may use (hosts, new hosts a minute,
//!   bytes per host per cycle), so it cannot crowd out the others.
//! * [`metrics`]: the collector's own counters and open sessions.
//! * [`export`]: each stored record to the configured time-series
//!   engines (through the export service's spools).
//! * [`ping`]: ICMP echoes to every host (`link/rtt`, `link/loss`).
//!
//! [`config`] reads `opticon-collector.conf`, [`state`] holds the state
//! the files above share, and [`daemon`] is the program around it all.

pub mod config;
pub mod cycle;
pub mod daemon;
pub mod export;
pub mod hostlogs;
pub mod hosts;
pub mod index;
pub mod judge;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod packed;
pub mod ping;
pub mod receive;
pub mod report;
pub mod sessions;
pub mod state;
pub mod store;
pub mod upkeep;

pub use config::CollectorConfig;
pub use daemon::run;
pub use state::{Collector, Counters};
