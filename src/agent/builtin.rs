//! The built-in Linux probes: the original agent's meters, read from
//! `/proc`, `/sys`, `/etc` and libc, without running external commands.
//!
//! Every file is read below a root directory (normally `/`), so tests run
//! the probes against fixture trees. Rate probes (net, io, top) report the
//! change since their previous run and emit nothing on their first.

use super::parse;
use crate::model::{Array, MeterValue, Scalar};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Meters one probe run produced: name and value.
pub type Readings = Vec<(String, MeterValue)>;

/// Round to two decimals, as the original printed fracs; the codec stores
/// such values in two or three bytes.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn int(v: i64) -> MeterValue {
    MeterValue::Scalar(Scalar::Int(v))
}

fn frac(v: f64) -> MeterValue {
    MeterValue::Scalar(Scalar::Frac(round2(v)))
}

fn text(v: impl Into<String>) -> MeterValue {
    let mut s: String = v.into();
    truncate_utf8(&mut s, crate::model::MAX_STRING_LEN);
    MeterValue::Scalar(Scalar::Str(s))
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

fn strings(v: Vec<String>) -> MeterValue {
    MeterValue::Array(Array::Str(
        v.into_iter()
            .map(|mut s| {
                truncate_utf8(&mut s, crate::model::MAX_STRING_LEN);
                s
            })
            .collect(),
    ))
}

/// Which built-in probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `hostname`.
    Hostname,
    /// `os/kernel`, `os/version`, `os/arch`, `os/hw`.
    Uname,
    /// `os/distro`.
    Distro,
    /// `uptime`, `agent/up`.
    Uptime,
    /// `agent/v`.
    Version,
    /// `loadavg`, `proc/run`, `proc/total`.
    Loadavg,
    /// `mem/total`, `mem/free`, `mem/swap` (only where there is swap).
    Meminfo,
    /// `net/in_kbs`, `net/out_kbs`, `net/in_pps`, `net/out_pps`.
    Net,
    /// `io/rdops`, `io/wrops`, `io/pwait`, `pcpu`.
    Io,
    /// Table `df`.
    Df,
    /// Table `top` and `proc/stuck`.
    Top,
    /// Table `cpu`.
    Cpu,
    /// Table `who`.
    Who,
    /// `agent/ip`.
    LocalIp,
}

/// Every built-in: id, `call` name in the config, default interval.
pub const BUILTINS: [(&str, &str, Kind, u64); 14] = [
    ("version", "probe_version", Kind::Version, 300),
    ("cpu", "probe_cpu", Kind::Cpu, 300),
    ("top", "probe_top", Kind::Top, 60),
    ("hostname", "probe_hostname", Kind::Hostname, 300),
    ("localip", "probe_localip", Kind::LocalIp, 300),
    ("uname", "probe_uname", Kind::Uname, 300),
    ("df", "probe_df", Kind::Df, 300),
    ("uptime", "probe_uptime", Kind::Uptime, 60),
    ("io", "probe_io", Kind::Io, 60),
    ("net", "probe_net", Kind::Net, 60),
    ("loadavg", "probe_loadavg", Kind::Loadavg, 60),
    ("meminfo", "probe_meminfo", Kind::Meminfo, 60),
    ("distro", "probe_distro", Kind::Distro, 300),
    ("who", "probe_who", Kind::Who, 300),
];

/// The built-in named by a config `call` (`probe_net`) or id (`net`).
pub fn by_call(call: &str) -> Option<Kind> {
    BUILTINS
        .iter()
        .find(|(id, c, _, _)| *c == call || *id == call)
        .map(|(_, _, k, _)| *k)
}

/// Where probes read from and what they were told.
#[derive(Debug, Clone)]
pub struct Context {
    /// Root of the file system to read (`/`, or a fixture tree).
    pub root: PathBuf,
    /// When the agent started, for `agent/up`.
    pub started: Instant,
    /// A configured source address, reported as `agent/ip`.
    pub bind: Option<String>,
}

impl Context {
    /// The live system.
    pub fn system() -> Context {
        Context {
            root: PathBuf::from("/"),
            started: Instant::now(),
            bind: None,
        }
    }

    /// A file below the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// A file's text, if it exists.
    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.path(rel)).ok()
    }

    fn first_line(&self, rel: &str) -> Option<String> {
        self.read(rel)
            .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
            .filter(|l| !l.is_empty())
    }
}

/// Counters a rate probe remembers between runs.
#[derive(Debug, Clone, Default)]
struct Previous {
    at: Option<Instant>,
    counters: Vec<u64>,
    cpu: parse::CpuTimes,
    per_pid: HashMap<u32, u64>,
}

/// One configured built-in probe with its state.
#[derive(Debug, Clone)]
pub struct Builtin {
    /// Which probe.
    pub kind: Kind,
    /// Glob list: only these interfaces, disks or devices (empty: all).
    pub matches: Vec<String>,
    /// Glob list: never these.
    pub skip: Vec<String>,
    prev: Previous,
}

impl Builtin {
    /// A probe with the original's default filters (`net` skips `lo`).
    pub fn new(kind: Kind) -> Builtin {
        let skip = if kind == Kind::Net {
            vec!["lo".to_string()]
        } else {
            Vec::new()
        };
        Builtin {
            kind,
            matches: Vec::new(),
            skip,
            prev: Previous::default(),
        }
    }

    /// Run once, appending what it measured to `out`.
    pub fn run(&mut self, ctx: &Context, out: &mut Readings) {
        self.run_at(ctx, out, Instant::now());
    }

    /// Run as if at instant `at` (rates are per second of `at` minus the
    /// previous run's instant); tests pass their own clock.
    pub fn run_at(&mut self, ctx: &Context, out: &mut Readings, at: Instant) {
        match self.kind {
            Kind::Hostname => {
                if let Some(h) = ctx.first_line("proc/sys/kernel/hostname") {
                    out.push(("hostname".into(), text(h)));
                }
            }
            Kind::Uname => uname(ctx, out),
            Kind::Distro => {
                if let Some(d) = distro(ctx) {
                    out.push(("os/distro".into(), text(d)));
                }
            }
            Kind::Uptime => {
                if let Some(u) = ctx.read("proc/uptime").and_then(|t| parse::uptime(&t)) {
                    out.push(("uptime".into(), int(u)));
                }
                out.push((
                    "agent/up".into(),
                    int(ctx.started.elapsed().as_secs() as i64),
                ));
            }
            Kind::Version => out.push(("agent/v".into(), text(env!("CARGO_PKG_VERSION")))),
            Kind::Loadavg => {
                if let Some((l, run, total)) =
                    ctx.read("proc/loadavg").and_then(|t| parse::loadavg(&t))
                {
                    out.push((
                        "loadavg".into(),
                        MeterValue::Array(Array::Frac(l.iter().map(|x| round2(*x)).collect())),
                    ));
                    out.push(("proc/run".into(), int(run)));
                    out.push(("proc/total".into(), int(total)));
                }
            }
            Kind::Meminfo => {
                if let Some((total, free, swap)) =
                    ctx.read("proc/meminfo").and_then(|t| parse::meminfo(&t))
                {
                    out.push(("mem/total".into(), int(total)));
                    out.push(("mem/free".into(), int(free)));
                    if let Some(swap) = swap {
                        out.push(("mem/swap".into(), int(swap)));
                    }
                }
            }
            Kind::Net => self.net(ctx, out, at),
            Kind::Io => self.io(ctx, out, at),
            Kind::Df => self.df(ctx, out),
            Kind::Top => self.top(ctx, out, at),
            Kind::Cpu => {
                let models = ctx
                    .read("proc/cpuinfo")
                    .map(|t| parse::cpu_models(&t))
                    .unwrap_or_default();
                if !models.is_empty() {
                    out.push((
                        "cpu/model".into(),
                        strings(models.iter().map(|m| m.0.clone()).collect()),
                    ));
                    out.push((
                        "cpu/count".into(),
                        MeterValue::Array(Array::Int(models.iter().map(|m| m.1).collect())),
                    ));
                }
            }
            Kind::Who => {
                let bytes = fs::read(ctx.path("run/utmp"))
                    .or_else(|_| fs::read(ctx.path("var/run/utmp")))
                    .unwrap_or_default();
                let sessions = parse::utmp_sessions(&bytes);
                if sessions.is_empty() {
                    out.push(("who".into(), MeterValue::Array(Array::Str(Vec::new()))));
                } else {
                    out.push((
                        "who/user".into(),
                        strings(sessions.iter().map(|s| s.0.clone()).collect()),
                    ));
                    out.push((
                        "who/tty".into(),
                        strings(sessions.iter().map(|s| s.1.clone()).collect()),
                    ));
                    out.push((
                        "who/remote".into(),
                        strings(sessions.iter().map(|s| s.2.clone()).collect()),
                    ));
                }
            }
            Kind::LocalIp => {
                let ip = ctx.bind.clone().or_else(|| {
                    let route = ctx.read("proc/net/route")?;
                    interface_address(&parse::default_route_iface(&route)?)
                });
                if let Some(ip) = ip {
                    out.push(("agent/ip".into(), text(ip)));
                }
            }
        }
    }

    /// Per-second rates of `now` against the previous counters; `None` on
    /// the first run or after a counter went backwards.
    fn rates(&mut self, now: Vec<u64>, at: Instant) -> Option<Vec<f64>> {
        let prev = std::mem::replace(&mut self.prev.counters, now.clone());
        let since = at
            .checked_duration_since(self.prev.at.replace(at)?)?
            .as_secs_f64();
        if prev.len() != now.len() || since <= 0.0 || now.iter().zip(&prev).any(|(n, p)| n < p) {
            return None;
        }
        Some(
            now.iter()
                .zip(&prev)
                .map(|(n, p)| (n - p) as f64 / since)
                .collect(),
        )
    }

    fn net(&mut self, ctx: &Context, out: &mut Readings, at: Instant) {
        let Some(text) = ctx.read("proc/net/dev") else {
            return;
        };
        let sums = parse::netdev(&text, &self.matches, &self.skip);
        if let Some(r) = self.rates(sums.to_vec(), at) {
            // Kb/s as the original: bytes / 128 per second.
            out.push(("net/in_kbs".into(), int((r[0] / 128.0) as i64)));
            out.push(("net/in_pps".into(), int(r[1] as i64)));
            out.push(("net/out_kbs".into(), int((r[2] / 128.0) as i64)));
            out.push(("net/out_pps".into(), int(r[3] as i64)));
        }
    }

    fn io(&mut self, ctx: &Context, out: &mut Readings, at: Instant) {
        let (Some(disk), Some(stat)) = (ctx.read("proc/diskstats"), ctx.read("proc/stat")) else {
            return;
        };
        let Some(cpu) = parse::cpu_times(&stat) else {
            return;
        };
        let ops = parse::diskstats(&disk, &self.matches, &self.skip);
        let prev_cpu = std::mem::replace(&mut self.prev.cpu, cpu);
        if let Some(r) = self.rates(ops.to_vec(), at) {
            out.push(("io/rdops".into(), int(r[0].round() as i64)));
            out.push(("io/wrops".into(), int(r[1].round() as i64)));
            let total = cpu.total.saturating_sub(prev_cpu.total);
            if total > 0 {
                let idle = cpu.idle.saturating_sub(prev_cpu.idle);
                let wait = cpu.iowait.saturating_sub(prev_cpu.iowait);
                let busy = total.saturating_sub(idle + wait);
                out.push(("pcpu".into(), frac(busy as f64 * 100.0 / total as f64)));
                out.push(("io/pwait".into(), frac(wait as f64 * 100.0 / total as f64)));
            }
        }
    }

    fn df(&mut self, ctx: &Context, out: &mut Readings) {
        let Some(text) = ctx.read("proc/mounts") else {
            return;
        };
        let mut rows = Vec::new();
        for (dev, mount, fs) in parse::mounts(&text, &self.matches, &self.skip) {
            if let Some((size_kb, pused)) = statvfs(&ctx.path(&mount)) {
                rows.push((dev, size_kb, pused, mount, fs));
            }
        }
        if rows.is_empty() {
            out.push(("df".into(), MeterValue::Array(Array::Str(Vec::new()))));
            return;
        }
        out.push((
            "df/device".into(),
            strings(rows.iter().map(|r| r.0.clone()).collect()),
        ));
        out.push((
            "df/size".into(),
            // MB, as the original's agent sent it (its clients divide
            // by 1024 and print GB).
            MeterValue::Array(Array::Int(rows.iter().map(|r| r.1 / 1024).collect())),
        ));
        out.push((
            "df/pused".into(),
            MeterValue::Array(Array::Frac(rows.iter().map(|r| round2(r.2)).collect())),
        ));
        out.push((
            "df/mount".into(),
            strings(rows.iter().map(|r| r.3.clone()).collect()),
        ));
        out.push((
            "df/fs".into(),
            strings(rows.iter().map(|r| r.4.clone()).collect()),
        ));
    }

    fn top(&mut self, ctx: &Context, out: &mut Readings, at: Instant) {
        let Ok(entries) = fs::read_dir(ctx.path("proc")) else {
            return;
        };
        let mem_total = ctx
            .read("proc/meminfo")
            .and_then(|t| parse::meminfo(&t))
            .map_or(0, |m| m.0);
        let users = ctx
            .read("etc/passwd")
            .map(|t| crate::svc::process::passwd_entries(&t))
            .unwrap_or_default();
        let page_kb = page_size() / 1024;
        let since = self
            .prev
            .at
            .and_then(|t| at.checked_duration_since(t))
            .map(|d| d.as_secs_f64());
        self.prev.at = Some(at);
        let mut stuck = 0;
        let mut seen = HashMap::new();
        let mut rows = Vec::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = format!("proc/{pid}");
            let Some((comm, state, jiffies, rss)) = ctx
                .read(&format!("{dir}/stat"))
                .and_then(|t| parse::pid_stat(&t))
            else {
                continue;
            };
            if state == 'D' {
                stuck += 1;
            }
            seen.insert(pid, jiffies);
            let pcpu = match (since, self.prev.per_pid.get(&pid)) {
                (Some(dt), Some(&before)) if dt > 0.0 && jiffies >= before => {
                    (jiffies - before) as f64 * 100.0 / (clock_ticks() * dt)
                }
                _ => 0.0,
            };
            let pmem = if mem_total > 0 {
                (rss * page_kb) as f64 * 100.0 / mem_total as f64
            } else {
                0.0
            };
            if pcpu <= 0.0 && pmem <= 5.0 {
                continue;
            }
            let uid = ctx
                .read(&format!("{dir}/status"))
                .and_then(|t| parse::status_uid(&t));
            let user = uid.map(|u| {
                users
                    .iter()
                    .find(|(_, id, _)| *id == u)
                    .map_or(u.to_string(), |(n, _, _)| n.clone())
            });
            let name = ctx
                .read(&format!("{dir}/cmdline"))
                .and_then(|c| {
                    c.split('\0')
                        .next()
                        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
                })
                .filter(|n| !n.is_empty())
                .unwrap_or(comm);
            let name: String = name.chars().take(47).collect();
            rows.push((
                3.0 * pcpu + pmem / 2.0,
                pid,
                user.unwrap_or_default(),
                pcpu,
                pmem,
                name,
            ));
        }
        self.prev.per_pid = seen;
        out.push(("proc/stuck".into(), int(stuck)));
        if since.is_none() {
            return;
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        rows.truncate(16);
        // No busy process: the same columns, empty (shown as "top": [] as
        // before), so that the meter names stay and the database stores a
        // delta rather than a full frame for the change.
        out.push((
            "top/pid".into(),
            MeterValue::Array(Array::Int(rows.iter().map(|r| i64::from(r.1)).collect())),
        ));
        out.push((
            "top/user".into(),
            strings(rows.iter().map(|r| r.2.clone()).collect()),
        ));
        out.push((
            "top/pcpu".into(),
            MeterValue::Array(Array::Frac(rows.iter().map(|r| round2(r.3)).collect())),
        ));
        out.push((
            "top/pmem".into(),
            MeterValue::Array(Array::Frac(rows.iter().map(|r| round2(r.4)).collect())),
        ));
        out.push((
            "top/name".into(),
            strings(rows.iter().map(|r| r.5.clone()).collect()),
        ));
    }
}

fn uname(ctx: &Context, out: &mut Readings) {
    if let Some(k) = ctx.first_line("proc/sys/kernel/ostype") {
        out.push(("os/kernel".into(), text(k)));
    }
    if let Some(v) = ctx.first_line("proc/sys/kernel/osrelease") {
        out.push(("os/version".into(), text(v)));
    }
    let arch = ctx.first_line("proc/sys/kernel/arch").or_else(machine);
    if let Some(a) = arch {
        out.push(("os/arch".into(), text(a)));
    }
    let vendor = ctx
        .first_line("sys/class/dmi/id/sys_vendor")
        .unwrap_or_default();
    let product = ctx
        .first_line("sys/class/dmi/id/product_name")
        .unwrap_or_default();
    let hw = parse::hardware(&vendor, &product);
    if !hw.is_empty() {
        out.push(("os/hw".into(), text(hw)));
    }
}

/// The distribution, from the files the original looked at, in its order.
fn distro(ctx: &Context) -> Option<String> {
    ctx.read("etc/lsb-release")
        .and_then(|t| parse::shell_var(&t, "DISTRIB_DESCRIPTION"))
        .or_else(|| ctx.first_line("etc/redhat-release"))
        .or_else(|| {
            ctx.read("etc/os-release")
                .and_then(|t| parse::shell_var(&t, "PRETTY_NAME"))
        })
        .or_else(|| {
            ctx.read("usr/lib/os-release")
                .and_then(|t| parse::shell_var(&t, "PRETTY_NAME"))
        })
}

/// The machine name from uname(2).
fn machine() -> Option<String> {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = u
        .machine
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

fn page_size() -> i64 {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as i64
    } else {
        4096
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as f64
    } else {
        100.0
    }
}

/// Size in KB and percent used of the file system at `path` (as df(1)
/// computes it: used over used plus available to users).
fn statvfs(path: &Path) -> Option<(i64, f64)> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 || s.f_blocks == 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    let used = (s.f_blocks - s.f_bfree) as u64;
    let denom = used + s.f_bavail as u64;
    let pused = if denom == 0 {
        0.0
    } else {
        used as f64 * 100.0 / denom as f64
    };
    Some(((s.f_blocks as u64 * frsize / 1024) as i64, pused))
}

/// The first IPv4 (else IPv6) address of an interface, via getifaddrs(3).
fn interface_address(iface: &str) -> Option<String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list that is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found: Option<String> = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy();
        if name != iface {
            continue;
        }
        // SAFETY: the family tells which sockaddr type ifa_addr points to.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            found = Some(ip.to_string());
            break;
        } else if family == libc::AF_INET6 && found.is_none() {
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            found = Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_string());
        }
    }
    // SAFETY: frees the list allocated above, once.
    unsafe { libc::freeifaddrs(list) };
    found
}
