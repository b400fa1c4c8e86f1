//! Parsers for the Linux files the built-in probes read.
//!
//! Each takes the text (or bytes) of one file and returns plain numbers, so
//! probes can be tested against fixture files without a live system.

/// `/proc/loadavg`: the three load averages, running and total processes.
pub fn loadavg(text: &str) -> Option<([f64; 3], i64, i64)> {
    let mut f = text.split_whitespace();
    let l1 = f.next()?.parse().ok()?;
    let l5 = f.next()?.parse().ok()?;
    let l15 = f.next()?.parse().ok()?;
    let (run, total) = f.next()?.split_once('/')?;
    Some(([l1, l5, l15], run.parse().ok()?, total.parse().ok()?))
}

/// `/proc/meminfo` in KB: total, available, free swap. "Available" is
/// MemAvailable when the kernel reports it (3.14+), else
/// MemFree + Buffers + Cached as the original computed it. Free swap is
/// `None` on a host without swap (SwapTotal 0), so that no swap watcher
/// judges a VM that has none.
pub fn meminfo(text: &str) -> Option<(i64, i64, Option<i64>)> {
    let field = |name: &str| -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let total = field("MemTotal")?;
    let free = match field("MemAvailable") {
        Some(a) => a,
        None => field("MemFree")? + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0),
    };
    let swap = match field("SwapTotal") {
        Some(t) if t > 0 => Some(field("SwapFree").unwrap_or(0)),
        _ => None,
    };
    Some((total, free, swap))
}

/// CPU time from the first line of `/proc/stat`, in jiffies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// All time.
    pub total: u64,
    /// Idle time (not counting I/O wait).
    pub idle: u64,
    /// Time idle while waiting for I/O.
    pub iowait: u64,
}

/// The aggregate `cpu` line of `/proc/stat`.
pub fn cpu_times(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total = v.iter().take(8).sum();
    Some(CpuTimes {
        total,
        idle: v[3],
        iowait: v[4],
    })
}

/// Shell-style glob match supporting `*` and `?`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a device or interface passes `match` (if any) and `skip`.
pub fn selected(name: &str, matches: &[String], skip: &[String]) -> bool {
    (matches.is_empty() || matches.iter().any(|m| glob(m, name)))
        && !skip.iter().any(|s| glob(s, name))
}

/// Network totals from `/proc/net/dev`: bytes and packets in and out,
/// summed over the selected interfaces.
pub fn netdev(text: &str, matches: &[String], skip: &[String]) -> [u64; 4] {
    let mut sum = [0u64; 4];
    for line in text.lines().skip(2) {
        let Some((name, data)) = line.split_once(':') else {
            continue;
        };
        if !selected(name.trim(), matches, skip) {
            continue;
        }
        let v: Vec<u64> = data
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() >= 10 {
            sum[0] += v[0];
            sum[1] += v[1];
            sum[2] += v[8];
            sum[3] += v[9];
        }
    }
    sum
}

/// Devices whose I/O is counted elsewhere or not real disks.
const VIRTUAL_DISKS: [&str; 7] = ["loop*", "ram*", "zram*", "dm-*", "md*", "sr*", "fd*"];

/// Disk I/O from `/proc/diskstats`: reads and writes completed (real
/// operations, not sectors as the original counted), summed over whole
/// disks: partitions, stacked and virtual devices are left out.
pub fn diskstats(text: &str, matches: &[String], skip: &[String]) -> [u64; 2] {
    let rows: Vec<(&str, u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.get(2)?, f.get(3)?.parse().ok()?, f.get(7)?.parse().ok()?))
        })
        .collect();
    let is_partition = |name: &str| {
        rows.iter().any(|(other, _, _)| {
            name.len() > other.len()
                && name.starts_with(other)
                && name[other.len()..]
                    .trim_start_matches('p')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        })
    };
    let mut sum = [0u64; 2];
    for (name, reads, writes) in &rows {
        if VIRTUAL_DISKS.iter().any(|g| glob(g, name))
            || is_partition(name)
            || !selected(name, matches, skip)
        {
            continue;
        }
        sum[0] += reads;
        sum[1] += writes;
    }
    sum
}

/// File system types the df probe never reports (the original's list).
const SKIPPED_FS: [&str; 18] = [
    "rootfs",
    "proc",
    "tmpfs",
    "devtmpfs",
    "devfs",
    "usb*",
    "autofs",
    "nfs*",
    "sys*",
    "devpts",
    "binfmt_*",
    "rpc_*",
    "cgroup*",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "mqueue",
];

/// Undo the octal escapes of `/proc/mounts` (`\040` for a space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A device name as the original showed it: `/dev/mapper/vg-lv` becomes
/// `@vg/lv` (device-mapper doubles the dashes inside names).
pub fn device_name(dev: &str) -> String {
    let Some(dm) = dev.strip_prefix("/dev/mapper/") else {
        return dev.to_string();
    };
    let marker = dm.replace("--", "\u{0}");
    match marker.split_once('-') {
        Some((vg, lv)) => format!("@{}/{}", vg.replace('\u{0}', "-"), lv.replace('\u{0}', "-")),
        None => dev.to_string(),
    }
}

/// Writable, real mounts from `/proc/mounts`: (device, mount point, type).
pub fn mounts(text: &str, matches: &[String], skip: &[String]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dev, mount, fs, opts, ..] = f[..] else {
            continue;
        };
        let (dev, mount) = (unescape_mount(dev), unescape_mount(mount));
        let rw = opts.split(',').any(|o| o == "rw");
        let hidden = dev == "none"
            || SKIPPED_FS.iter().any(|g| glob(g, fs))
            || mount.starts_with("/sys")
            || mount.starts_with("/proc")
            || mount.starts_with("/run");
        if !rw || hidden || !selected(&dev, matches, skip) {
            continue;
        }
        // A device mounted twice (bind mounts) is reported once.
        if out.iter().any(|(d, _, _)| *d == device_name(&dev)) {
            continue;
        }
        out.push((device_name(&dev), mount, fs.to_string()));
    }
    out
}

/// `/proc/uptime`: whole seconds since boot.
pub fn uptime(text: &str) -> Option<i64> {
    text.split_whitespace()
        .next()?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// `KEY=value` files (`/etc/os-release`, `/etc/lsb-release`).
pub fn shell_var(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(unquote))
        .filter(|v| !v.is_empty())
}

/// CPU models and how many of each, from `/proc/cpuinfo`.
pub fn cpu_models(text: &str) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !matches!(key.trim(), "model name" | "cpu model" | "Model") {
            continue;
        }
        let model = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match out.iter_mut().find(|(m, _)| *m == model) {
            Some((_, n)) => *n += 1,
            None => out.push((model, 1)),
        }
    }
    out
}

/// One line of `/proc/<pid>/stat`: command, state, CPU jiffies, resident
/// pages.
pub fn pid_stat(text: &str) -> Option<(String, char, u64, i64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let rss: i64 = rest.get(21)?.parse().ok()?;
    Some((comm, state, utime + stime, rss))
}

/// The real uid from `/proc/<pid>/status`.
pub fn status_uid(text: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        l.strip_prefix("Uid:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The interface of the default IPv4 route in `/proc/net/route`.
pub fn default_route_iface(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000") && f.get(7) == Some(&"00000000")).then(|| f[0].to_string())
    })
}

/// Size of one glibc `struct utmp` record on Linux.
pub const UTMP_RECORD: usize = 384;
const USER_PROCESS: i16 = 7;

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Remote login sessions from a utmp file: (user, tty, remote host), read
/// directly instead of running `who`.
pub fn utmp_sessions(bytes: &[u8]) -> Vec<(String, String, String)> {
    bytes
        .chunks_exact(UTMP_RECORD)
        .filter_map(|r| {
            let kind = i16::from_ne_bytes([r[0], r[1]]);
            let (line, user, host) = (cstr(&r[8..40]), cstr(&r[44..76]), cstr(&r[76..332]));
            (kind == USER_PROCESS && !host.is_empty()).then_some((user, line, host))
        })
        .collect()
}

/// The original's friendlier names for some DMI vendor/product pairs.
pub fn hardware(vendor: &str, product: &str) -> String {
    let (vendor, product) = (vendor.trim(), product.trim());
    match (vendor, product) {
        ("Microsoft Corporation", "Virtual Machine") => "Microsoft Hyper-V".into(),
        (_, "To be filled by O.E.M.") | ("To be filled by O.E.M.", _) => "Prototype board".into(),
        ("", p) => p.into(),
        (v, "") => v.into(),
        (v, p) => format!("{v} {p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("eth*", "eth0"));
        assert!(glob("*", ""));
        assert!(glob("d?cker*", "docker0"));
        assert!(!glob("lo", "lo0"));
        assert!(selected("eth0", &[], &["lo".into()]));
        assert!(!selected("lo", &[], &["lo".into()]));
        assert!(!selected("wlan0", &["eth*".into()], &[]));
    }

    #[test]
    fn devices() {
        assert_eq!(device_name("/dev/mapper/vg0-data"), "@vg0/data");
        assert_eq!(device_name("/dev/mapper/my--vg-root--lv"), "@my-vg/root-lv");
        assert_eq!(device_name("/dev/sda1"), "/dev/sda1");
        assert_eq!(unescape_mount("/mnt/my\\040disk"), "/mnt/my disk");
        assert_eq!(
            hardware("Microsoft Corporation", "Virtual Machine"),
            "Microsoft Hyper-V"
        );
        assert_eq!(
            hardware("QEMU", "Standard PC (Q35 + ICH9, 2009)"),
            "QEMU Standard PC (Q35 + ICH9, 2009)"
        );
    }
}
