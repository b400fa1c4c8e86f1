//! Service toolkit shared by the programs (the original's `libsvc`).
//!
//! * [`cli`]: the command-line conventions of every program (`-h`, `-v`,
//!   usage errors with exit 2).
//! * [`daemon`]: the skeleton of the three daemons (common options,
//!   configuration loading, logging, becoming the service, last error).
//! * [`process`]: pid files, detaching, the service user and dropping to it.
//! * [`signals`]: SIGTERM/SIGINT and SIGHUP as flags the main loops poll.
//! * [`log`]: syslog, a log file or standard error, with the original's
//!   levels.
//! * [`exec`]: running a shell command with input, a deadline and bounded
//!   output (agent probes, collector notifications).
//! * [`pool`]: a fixed pool of worker threads.
//! * [`text`]: aligned tables and sizes for `opticon` and `opticon-db`.
//! * [`httpc`]: a bounded HTTP/1.1 client (the API for `opticon`,
//!   Keystone for `opticon` and `opticon-api`).
//! * [`net`]: IPv4 addresses mapped into IPv6 shown as IPv4.
//! * [`keystone`]: a Keystone v3 password login.

pub mod cli;
pub mod daemon;
pub mod exec;
pub mod httpc;
pub mod keystone;
pub mod log;
pub mod net;
pub mod pool;
pub mod process;
pub mod signals;
pub mod text;
