//! One host's samples: UTC day files of frames, one writer, any readers.
//!
//! A day file holds blocks of up to [`KEYFRAME_INTERVAL`] samples: a full
//! frame (the binary sample codec) followed by delta frames. A sample is
//! appended with a single `write(2)`, so a crash can only leave a torn
//! last frame; [`HostWriter::open`] cuts it off. Readers never return a
//! frame whose checksum fails, and skip deltas whose chain is broken.
//!
//! [`day`] reads day files, [`query`] answers questions over them and
//! [`writer`] appends to them, through [`storage`].

pub mod day;
pub mod query;
pub mod storage;
pub mod writer;

pub use day::*;
pub use query::*;
pub use storage::{Disk, Storage};
pub use writer::*;
