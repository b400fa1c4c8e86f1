//! `opticon-agent`: measures a host and pushes its samples to collectors.
//! See `man 8 opticon-agent`.
//!
//! * [`config`]: `opticon-agent.conf` (collectors, probes, intervals).
//! * [`builtin`]: the built-in probes, reading `/proc`, `/sys` and `/etc`
//!   ([`parse`] holds their parsers); [`exec`]: external probes and
//!   Nagios plugins.
//! * [`sampler`]: runs each probe on its interval and assembles samples.
//! * [`send`]: one link per collector: sessions, key rotation, sealing
//!   and splitting datagrams.
//! * [`cloud`]: collector settings from a cloud's metadata service.
//! * [`running`]: the agent built from its configuration; [`daemon`]: the
//!   program around it.

pub mod builtin;
pub mod cloud;
pub mod config;
pub mod daemon;
pub mod exec;
pub mod parse;
pub mod running;
pub mod sampler;
pub mod send;

pub use daemon::run;
