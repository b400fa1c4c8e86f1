//! Opticon: push-based server metering.
//!
//! The crate is one library shared by every Opticon program, laid out the way
//! the original C project split its code:
//!
//! * [`model`]: hosts, meters, watchers and their codecs (the original's
//!   `libopticon`): the binary sample codec and the host JSON codec.
//! * [`conf`]: the "sloppy JSON" configuration language, also used to read
//!   probe output and HTTP request bodies.
//! * [`crypto`]: key derivation and the AES-256-CTR + HMAC-SHA256 seal.
//! * [`wire`]: the datagram formats between agent and collector, the replay
//!   window and the splitting of large samples.
//!
//! Later modules add the database (`db`), the service toolkit (`svc`) and one
//! module per program.

pub mod agent;
pub mod api;
pub mod base64;
pub mod cli;
pub mod collector;
pub mod conf;
pub mod crypto;
pub mod db;
pub mod dbtool;
pub mod fleet;
pub mod loadgen;
pub mod model;
pub mod svc;
pub mod wire;
