//! Service toolkit shared by the daemons (the original's `libsvc`):
//! logging, pid files, detaching, signals and privilege dropping.

pub mod cli;
pub mod daemon;
pub mod log;
pub mod pool;
pub mod signals;
