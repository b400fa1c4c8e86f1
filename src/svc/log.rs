//! Logging to a file, standard error or syslog, with the original's levels.
//!
//! File lines read `YYYY-mm-dd HH:MM:SS [LEVEL] message` (UTC). The target
//! `@syslog` sends to syslog(3) under the program's name; `-` writes to
//! standard error.

use std::fs::OpenOptions;
use std::io::Write;
use std::str::FromStr;
use std::sync::Mutex;

/// How important a message is; messages below the configured level are
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The service cannot go on.
    Crit,
    /// Something failed.
    Err,
    /// Something is wrong but handled.
    Warning,
    /// Normal operation worth a line.
    Info,
    /// Detail for debugging.
    Debug,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Crit => "CRIT",
            Level::Err => "ERR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    fn syslog_priority(self) -> libc::c_int {
        match self {
            Level::Crit => libc::LOG_CRIT,
            Level::Err => libc::LOG_ERR,
            Level::Warning => libc::LOG_WARNING,
            Level::Info => libc::LOG_INFO,
            Level::Debug => libc::LOG_DEBUG,
        }
    }
}

/// A level name that is not one of CRIT, ERR, WARNING, INFO, DEBUG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLevel(pub String);

impl std::fmt::Display for BadLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "log level {:?} is not CRIT, ERR, WARNING, INFO or DEBUG",
            self.0
        )
    }
}

impl std::error::Error for BadLevel {}

impl FromStr for Level {
    type Err = BadLevel;
    fn from_str(s: &str) -> Result<Level, BadLevel> {
        match s.to_ascii_uppercase().as_str() {
            "CRIT" => Ok(Level::Crit),
            "ERR" | "ERROR" => Ok(Level::Err),
            "WARNING" | "WARN" => Ok(Level::Warning),
            "INFO" => Ok(Level::Info),
            "DEBUG" => Ok(Level::Debug),
            _ => Err(BadLevel(s.to_string())),
        }
    }
}

enum Target {
    Stderr,
    Syslog,
    /// The path and the file open on it: a line is written through the
    /// open descriptor (a daemon out of descriptors can still log), and
    /// the file is opened again when the path names another file (after
    /// logrotate moved it), looked at once a second at most (when it
    /// was last looked at is the third field): a write cycle may log a
    /// line for each of thousands of hosts.
    File(
        std::path::PathBuf,
        Option<(std::fs::File, u64)>,
        Option<std::time::Instant>,
    ),
}

/// How often a log file's path is looked at for a rotation.
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The inode a path names now.
fn inode(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

fn open_log(path: &std::path::Path) -> Option<(std::fs::File, u64)> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()?;
    let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata().ok()?);
    Some((f, ino))
}

struct Logger {
    level: Level,
    target: Target,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Start logging to `target` (`@syslog`, `-`, or a file path) at `level`.
/// A file is checked for writability now, so a bad path fails at start.
pub fn init(program: &'static str, target: &str, level: Level) -> std::io::Result<()> {
    let target = match target {
        "@syslog" => {
            // SAFETY: openlog keeps the pointer; `program` is 'static and
            // NUL-terminated copies are leaked once per process.
            let ident = Box::leak(format!("{program}\0").into_boxed_str());
            unsafe { libc::openlog(ident.as_ptr().cast(), libc::LOG_PID, libc::LOG_DAEMON) };
            Target::Syslog
        }
        "-" => Target::Stderr,
        path => {
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata()?);
            Target::File(path.into(), Some((f, ino)), Some(std::time::Instant::now()))
        }
    };
    if let Ok(mut g) = LOGGER.lock() {
        *g = Some(Logger { level, target });
    }
    Ok(())
}

fn stamp() -> String {
    let now = crate::model::unix_now();
    let iso = crate::db::time::iso(now);
    iso[..19].replace('T', " ")
}

/// Whether messages go somewhere other than standard error (syslog or a
/// file): a daemon's last error is then logged as well as printed, and
/// printed only once when it logs to standard error.
pub fn elsewhere() -> bool {
    LOGGER.lock().is_ok_and(|g| {
        g.as_ref()
            .is_some_and(|l| !matches!(l.target, Target::Stderr))
    })
}

/// Log one message.
pub fn log(level: Level, msg: &str) {
    let Ok(mut guard) = LOGGER.lock() else { return };
    let Some(logger) = guard.as_mut() else {
        eprintln!("[{}] {msg}", level.name());
        return;
    };
    if level > logger.level {
        return;
    }
    match &mut logger.target {
        Target::Stderr => eprintln!("{} [{}] {msg}", stamp(), level.name()),
        Target::File(path, open, checked) => {
            let due = checked.is_none_or(|t| t.elapsed() >= ROTATION_CHECK);
            let moved = due
                && match (&*open, inode(path)) {
                    (Some((_, held)), Some(now)) => *held != now,
                    (Some(_), None) | (None, _) => true,
                };
            if due {
                *checked = Some(std::time::Instant::now());
            }
            if moved {
                if let Some(fresh) = open_log(path) {
                    *open = Some(fresh);
                }
            }
            if let Some((f, _)) = open.as_mut() {
                // One write per line: lines from several threads or
                // processes never interleave, and a line costs one call.
                let line = format!("{} [{}] {msg}\n", stamp(), level.name());
                let _ = f.write_all(line.as_bytes());
            }
        }
        Target::Syslog => {
            if let Ok(text) = std::ffi::CString::new(msg.replace('\0', " ")) {
                // SAFETY: a constant format string and a NUL-terminated argument.
                unsafe { libc::syslog(level.syslog_priority(), c"%s".as_ptr(), text.as_ptr()) };
            }
        }
    }
}

/// Log at INFO.
pub fn info(msg: &str) {
    log(Level::Info, msg);
}

/// Log at WARNING.
pub fn warn(msg: &str) {
    log(Level::Warning, msg);
}

/// Log at ERR.
pub fn err(msg: &str) {
    log(Level::Err, msg);
}

/// Log at DEBUG.
pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

/// Lines of one burst (a write cycle's status changes, a round of
/// notifications) logged one by one up to a limit, the rest counted in
/// one line: a fleet whose hosts change at once must not flood syslog
/// with a line per host.
pub struct Burst {
    limit: usize,
    logged: usize,
    more: usize,
}

impl Burst {
    /// A burst logging its first `limit` lines.
    pub fn new(limit: usize) -> Burst {
        Burst {
            limit,
            logged: 0,
            more: 0,
        }
    }

    /// True when the next line is to be logged; false (and counted)
    /// past the limit.
    pub fn admit(&mut self) -> bool {
        if self.logged == self.limit {
            self.more += 1;
            return false;
        }
        self.logged += 1;
        true
    }

    /// The line counting what was not logged ("N more `what`, not logged
    /// one by one"), if anything was not.
    pub fn finish(self, what: &str) -> Option<String> {
        (self.more > 0).then(|| format!("{} more {what}, not logged one by one", self.more))
    }
}

/// Hand a log file to the user the service drops to, so it can go on
/// appending to it.
pub fn chown(uid: u32, gid: u32) {
    if let Ok(g) = LOGGER.lock() {
        if let Some(Logger {
            target: Target::File(path, ..),
            ..
        }) = g.as_ref()
        {
            let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_its_first_lines_and_counts_the_rest() {
        let mut b = Burst::new(3);
        let admitted = (0..10).filter(|_| b.admit()).count();
        assert_eq!(admitted, 3);
        assert_eq!(
            b.finish("things").as_deref(),
            Some("7 more things, not logged one by one")
        );
        assert_eq!(Burst::new(3).finish("things"), None);
    }

    #[test]
    fn a_rotated_log_file_is_opened_again() {
        let dir = std::env::temp_dir().join(format!("opticon-svclog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.log");
        init("test", path.to_str().unwrap(), Level::Info).unwrap();
        info("before the rotation");
        std::fs::rename(&path, dir.join("daemon.log.0")).unwrap();
        // Within the check interval lines still reach the moved file;
        // after it, the path is opened again.
        info("just after");
        std::thread::sleep(ROTATION_CHECK + std::time::Duration::from_millis(100));
        info("after the rotation");
        let old = std::fs::read_to_string(dir.join("daemon.log.0")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains("before the rotation") && old.contains("just after"));
        assert!(new.contains("after the rotation") && !new.contains("before"));
        if let Ok(mut g) = LOGGER.lock() {
            *g = None;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
