//! The process side of becoming a daemon: pid files, detaching from the
//! terminal, finding the service user and dropping privileges to it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a daemon could not start.
#[derive(Debug)]
pub enum StartError {
    /// The pid file names a process that is still running.
    Running(PathBuf, i32),
    /// A system call failed (what, why).
    Sys(String, io::Error),
    /// Neither the `opticon` nor the `nobody` user exists.
    NoUser,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Running(p, pid) => {
                write!(f, "{}: already running as pid {pid}", p.display())
            }
            StartError::Sys(what, e) => write!(f, "{what}: {e}"),
            StartError::NoUser => write!(
                f,
                "neither user opticon nor nobody exists to drop privileges to"
            ),
        }
    }
}

impl std::error::Error for StartError {}

fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let what = what.into();
    move |e| StartError::Sys(what, e)
}

/// A pid file, removed when dropped.
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Write our pid to `path`, refusing when it names a live process.
    pub fn create(path: &Path) -> Result<Pidfile, StartError> {
        if let Some(pid) = live_pid(path).filter(|p| *p != std::process::id() as i32) {
            return Err(StartError::Running(path.to_path_buf(), pid));
        }
        fs::write(path, format!("{}\n", std::process::id()))
            .map_err(sys(path.display().to_string()))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }

    /// Rewrite with the current pid (after detaching forked a new process).
    pub fn refresh(&self) -> Result<(), StartError> {
        fs::write(&self.path, format!("{}\n", std::process::id()))
            .map_err(sys(self.path.display().to_string()))
    }

    /// Hand the file to a user (before dropping privileges to it).
    pub fn chown(&self, uid: u32, gid: u32) {
        let _ = std::os::unix::fs::chown(&self.path, Some(uid), Some(gid));
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Detach: fork twice, start a new session, stdio to `/dev/null`, cwd `/`.
pub fn detach() -> Result<(), StartError> {
    for step in 0..2 {
        // SAFETY: fork in a process that has not started threads yet.
        match unsafe { libc::fork() } {
            -1 => return Err(StartError::Sys("fork".into(), io::Error::last_os_error())),
            0 => {
                if step == 0 {
                    // SAFETY: the child becomes a session leader.
                    unsafe { libc::setsid() };
                }
            }
            // SAFETY: the parent leaves without running destructors twice.
            _ => unsafe { libc::_exit(0) },
        }
    }
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(sys("/dev/null"))?;
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(&null);
    for target in 0..3 {
        // SAFETY: duplicates an open descriptor onto stdin/stdout/stderr.
        unsafe { libc::dup2(fd, target) };
    }
    std::env::set_current_dir("/").map_err(sys("chdir /"))?;
    Ok(())
}

/// The uid and gid of `name` in a passwd(5) text.
pub fn passwd_entry(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd_entries(passwd)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, uid, gid)| (uid, gid))
}

/// Every well-formed line of a passwd(5) text: name, uid, gid. Parsed
/// here rather than through getpwnam(3), which static builds cannot use.
pub fn passwd_entries(passwd: &str) -> Vec<(String, u32, u32)> {
    passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// The uid and gid to run as when started as root: `opticon`, else
/// `nobody`. `None` when not running as root.
///
/// Read from `/etc/passwd` directly: getpwnam(3) goes through NSS, which a
/// statically linked binary cannot load safely (it crashes in
/// libnss_systemd).
pub fn service_user() -> Result<Option<(u32, u32)>, StartError> {
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(sys("/etc/passwd"))?;
    ["opticon", "nobody"]
        .iter()
        .find_map(|name| passwd_entry(&passwd, name))
        .map(Some)
        .ok_or(StartError::NoUser)
}

/// Whether `uid`/`gid` (without supplementary groups, as after
/// [`drop_to`]) may read `path`: the file's read bit and the search bit of
/// every directory above it. A daemon re-reads its files on SIGHUP after
/// the drop, so a file only root can read breaks every reload.
pub fn readable_by(path: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let allowed = |m: &fs::Metadata, bits: u32| {
        let mode = m.mode();
        if m.uid() == uid {
            mode & (bits << 6) != 0
        } else if m.gid() == gid {
            mode & (bits << 3) != 0
        } else {
            mode & bits != 0
        }
    };
    let Ok(abs) = fs::canonicalize(path) else {
        return false;
    };
    let file_ok = fs::metadata(&abs).is_ok_and(|m| allowed(&m, 0o4));
    file_ok
        && abs
            .ancestors()
            .skip(1)
            .all(|dir| fs::metadata(dir).is_ok_and(|m| allowed(&m, 0o1)))
}

/// The live process the pid file at `path` names, if any (one this user
/// may not signal counts as live).
pub fn live_pid(path: &Path) -> Option<i32> {
    let pid = fs::read_to_string(path)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

/// Become `uid`/`gid` for good (supplementary groups cleared).
pub fn drop_to(uid: u32, gid: u32) -> Result<(), StartError> {
    // SAFETY: plain credential system calls; order matters (groups and gid
    // while still root, uid last).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(StartError::Sys(
                "setgroups".into(),
                io::Error::last_os_error(),
            ));
        }
        if libc::setgid(gid) != 0 {
            return Err(StartError::Sys("setgid".into(), io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(StartError::Sys("setuid".into(), io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Raise the soft limit of open descriptors toward `wanted` (never above
/// the hard limit, never lowering it); returns the soft limit in force.
pub fn raise_nofile(wanted: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let text =
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n";
        assert_eq!(passwd_entry(text, "nobody"), Some((65534, 65534)));
        assert_eq!(passwd_entry(text, "opticon"), None);
        assert_eq!(passwd_entry("broken:x:zz:1\n", "broken"), None);
    }
}
