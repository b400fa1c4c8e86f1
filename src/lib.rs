//! Opticon: push-based server metering.
//!
//! One library serves every Opticon program. It is built in three layers;
//! each layer uses only the layers below it, and **programs never import
//! programs**: what two programs share moves down into a service.
//!
//! Foundation (no I/O policy, no knowledge of programs):
//!
//! * [`model`]: hosts, meters, watchers and statuses, with the binary
//!   sample codec and the host JSON codec (the original's `libopticon`).
//! * [`conf`]: the "sloppy JSON" configuration language, also used to read
//!   probe output and HTTP request bodies, and its typed errors.
//! * [`crypto`]: key derivation and the AES-256-CTR + HMAC-SHA256 seal.
//! * [`base64`]: tenant keys as text.
//! * [`wire`]: the datagram formats between agent and collector, the
//!   replay window and the splitting of large samples.
//!
//! Services:
//!
//! * [`db`]: the date-partitioned database (tenants, hosts, day files,
//!   host logs, meter definitions, the files the collector publishes, and
//!   the JSON views the API and `opticon-db --json` share).
//! * [`export`]: records to a time-series engine (Prometheus remote
//!   write, InfluxDB line protocol) through a spool on disk.
//! * [`svc`]: the daemon skeleton, logging, signals, pid files, privilege
//!   dropping, running commands, worker pools and text tables.
//!
//! Programs, one module each (a `mod.rs` that is a table of contents):
//!
//! * [`agent`]: `opticon-agent`, measures a host and pushes samples.
//! * [`collector`]: `opticon-collector`, verifies, stores and judges them.
//! * [`api`]: `opticon-api`, the HTTP JSON API over the database.
//! * [`cli`]: `opticon`, the command-line client of the API.
//! * [`dbtool`]: `opticon-db`, the database tool for shells and cron.
//! * [`loadgen`]: `opticon-loadgen`, a simulated fleet for benchmarks.
//!
//! [`fleet`] is test and benchmark support: a synthetic fleet whose
//! samples move the way real hosts' do, used by the load generator, the
//! benchmarks and the tests.

pub mod agent;
pub mod api;
pub mod base64;
pub mod cli;
pub mod collector;
pub mod conf;
pub mod crypto;
pub mod db;
pub mod dbtool;
pub mod export;
pub mod fleet;
pub mod loadgen;
pub mod model;
pub mod svc;
pub mod wire;
