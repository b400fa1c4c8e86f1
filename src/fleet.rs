//! A synthetic fleet for benchmarks and load generation: realistic host
//! samples that move from minute to minute the way real ones do.

use crate::model::{Array, HostMeters, MeterName, MeterValue, Scalar};
use std::sync::OnceLock;

/// xorshift64, repeatable from its seed (the synthetic fleet's, and
/// seeded tests' in the library).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero, which xorshift never leaves, is
    /// taken as one).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// A value rounded to two decimals, as probes report them.
    fn frac(&mut self, max: f64) -> f64 {
        (self.below((max * 100.0) as u64) as f64) / 100.0
    }
}

const PROCS: [&str; 16] = [
    "nginx",
    "postgres",
    "sshd",
    "systemd",
    "rsyslogd",
    "cron",
    "python3",
    "node",
    "java",
    "opticon-agent",
    "redis-server",
    "dockerd",
    "containerd",
    "kworker/0:1",
    "bash",
    "memcached",
];
/// The per-core CPU counters' names (no `format!` a sample).
const CPU_NAMES: [&str; 10] = [
    "cpu/c0", "cpu/c1", "cpu/c2", "cpu/c3", "cpu/c4", "cpu/c5", "cpu/c6", "cpu/c7", "cpu/c8",
    "cpu/c9",
];

/// The order that sorts a sample's meters by name from the order they are
/// made in, without and with the optional meters (a sample's only two sets
/// of names), found once rather than by comparing names every sample.
static SORTED: [OnceLock<Vec<u8>>; 2] = [OnceLock::new(), OnceLock::new()];

const USERS: [&str; 5] = ["root", "www-data", "postgres", "app", "opticon"];

/// Hosts in a hundred with a disk nearly full, by default: they go to
/// WARN and then ALERT in their first minutes and stay there, while the
/// rest stay OK. A fleet where every host has one (100) changes status
/// all together, twice in its first ten minutes: a mass event, not a
/// steady state.
pub const FULL_DISK_PERCENT: u64 = 2;

/// One host's agent, producing a sample a minute with values that move
/// the way real ones do: counters climb, gauges and rates wander, the
/// process table reorders and churns, disks fill slowly, a meter now and
/// then appears or vanishes (a mount, a probe that times out), static
/// facts stay. Everything follows from the seed, so runs repeat.
pub struct FakeHost {
    rng: Rng,
    minute: i64,
    top: Vec<(i64, usize, usize)>,
    /// The name it reports (`web-NNNNN.example.net` from the seed).
    pub hostname: String,
    /// Counters that only grow (CPU jiffies per core, bytes per NIC).
    counters: [i64; 12],
    /// Slowly drifting gauges: free memory, disk use per filesystem.
    free_kb: i64,
    pused: [f64; 5],
    /// Minutes left of the optional meters' current state.
    optional_for: i64,
    optional_on: bool,
}

impl FakeHost {
    /// A host whose values follow from `seed`, in a fleet with
    /// [`FULL_DISK_PERCENT`] hosts in a hundred near a full disk.
    pub fn new(seed: u64) -> FakeHost {
        FakeHost::in_fleet(seed, FULL_DISK_PERCENT)
    }

    /// A host whose values follow from `seed`, in a fleet where
    /// `full_disk_percent` hosts in a hundred have a disk nearly full
    /// (which ones follows from the seed too).
    pub fn in_fleet(seed: u64, full_disk_percent: u64) -> FakeHost {
        let full = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 100 < full_disk_percent;
        let mut rng = Rng(seed | 1);
        let top = (0..10)
            .map(|i| (1000 + rng.below(30000) as i64, i, rng.below(5) as usize))
            .collect();
        let mut counters = [0i64; 12];
        for c in &mut counters {
            *c = rng.below(1 << 40) as i64;
        }
        let third = if full { 97.0 } else { 71.0 };
        let pused = [41.5, 12.25, third, 55.5, 3.75].map(|p| p + rng.frac(2.0));
        FakeHost {
            free_kb: 8_000_000 + rng.below(1_000_000) as i64,
            optional_for: 1 + rng.below(120) as i64,
            optional_on: rng.below(2) == 0,
            rng,
            hostname: format!("web-{seed:05}.example.net"),
            minute: 0,
            top,
            counters,
            pused,
        }
    }

    /// The next minute's sample, stamped `time`.
    pub fn sample(&mut self, time: i64) -> HostMeters {
        let mut h = HostMeters::new();
        let mut w = h.writer();
        // Names are fixed and valid, and well under the meter limit; in
        // name order, each meter is appended.
        for (n, v) in self.sample_sorted() {
            if let Ok(name) = MeterName::new(n) {
                let _ = w.set(name, v, time);
            }
        }
        h
    }

    /// The next minute's sample as its meters in name order, the order a
    /// [`HostMeters`] holds and encodes them in: what a load generator
    /// encodes without building one (a third of its CPU went to that, on
    /// the box whose collector it measures).
    pub fn sample_sorted(&mut self) -> Vec<(&'static str, MeterValue)> {
        self.minute += 1;
        let r = &mut self.rng;
        // Made in a readable order, stored in name order below.
        let mut made: Vec<(&'static str, MeterValue)> = Vec::with_capacity(64);
        let mut set = |n: &'static str, v: MeterValue| made.push((n, v));
        let s = |x: &str| MeterValue::Scalar(Scalar::Str(x.into()));
        let i = |x: i64| MeterValue::Scalar(Scalar::Int(x));
        let f = |x: f64| MeterValue::Scalar(Scalar::Frac(x));
        set("hostname", s(&self.hostname));
        set("os/kernel", s("Linux"));
        set(
            "os/version",
            s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1 (2024-09-30)"),
        );
        set("os/arch", s("x86_64"));
        set("os/distro", s("Debian GNU/Linux 12 (bookworm)"));
        set("os/hw", s("QEMU Standard PC (Q35 + ICH9, 2009)"));
        set("agent/v", s("0.1.0"));
        set("agent/ip", s("10.1.2.3"));
        set("link/ip", s("192.0.2.17"));
        set("status", s("OK"));
        set("agent/up", i(86_400 + self.minute * 60));
        set("uptime", i(8_640_000 + self.minute * 60));
        set(
            "loadavg",
            MeterValue::Array(Array::Frac(vec![r.frac(4.0), r.frac(3.0), r.frac(2.0)])),
        );
        set("pcpu", f(r.frac(100.0)));
        set("io/pwait", f(r.frac(5.0)));
        set("badness", f(0.0));
        set("io/rdops", i(r.below(500) as i64));
        set("io/wrops", i(r.below(900) as i64));
        set("mem/total", i(16_316_412));
        self.free_kb =
            (self.free_kb + r.below(200_001) as i64 - 100_000).clamp(500_000, 16_000_000);
        set("mem/free", i(self.free_kb));
        set("mem/swap", i(2_097_148));
        set("net/in_kbs", i(r.below(5000) as i64));
        set("net/out_kbs", i(r.below(9000) as i64));
        set("net/in_pps", i(r.below(2000) as i64));
        set("net/out_pps", i(r.below(3000) as i64));
        set("proc/total", i(200 + r.below(20) as i64));
        set("proc/run", i(1 + r.below(4) as i64));
        set("proc/stuck", i(0));
        set("link/rtt", f(r.frac(2.0)));
        set("link/loss", f(0.0));
        for (k, c) in self.counters.iter_mut().enumerate() {
            *c += 1 + r.below(6000) as i64;
            if let Some(name) = CPU_NAMES.get(k) {
                set(name, i(*c));
            }
        }
        set("net/in_bytes", i(self.counters[10]));
        set("net/out_bytes", i(self.counters[11]));
        let strs =
            |v: &[&str]| MeterValue::Array(Array::Str(v.iter().map(|x| x.to_string()).collect()));
        set(
            "df/device",
            strs(&["/dev/vda1", "/dev/vdb1", "@vg/data", "@vg/logs", "/dev/vdc"]),
        );
        set(
            "df/mount",
            strs(&["/", "/home", "/srv", "/var/log", "/backup"]),
        );
        set("df/fs", strs(&["ext4", "ext4", "xfs", "xfs", "btrfs"]));
        set(
            "df/size",
            MeterValue::Array(Array::Int(vec![20_030, 50_000, 102_400, 10_240, 204_800])),
        );
        // Disks fill slowly (a few change each minute) and are now and
        // then cleaned up.
        for p in &mut self.pused {
            if r.below(4) == 0 {
                *p = (*p + r.frac(0.05)).min(99.99);
            }
            if r.below(2000) == 0 {
                *p = (*p * 0.5).max(1.0);
            }
        }
        set(
            "df/pused",
            MeterValue::Array(Array::Frac(
                self.pused
                    .iter()
                    .map(|p| (p * 100.0).round() / 100.0)
                    .collect(),
            )),
        );
        // Meters that come and go: a probe that sometimes reports and
        // sometimes times out.
        self.optional_for -= 1;
        if self.optional_for <= 0 {
            self.optional_on = !self.optional_on;
            self.optional_for = 1 + r.below(120) as i64;
        }
        if self.optional_on {
            set("mysql/queries", i(self.counters[0] / 7));
            set("mysql/threads", i(1 + r.below(40) as i64));
            set("raid/state", s("clean"));
        }
        // The process table: two neighbours swap places, and now and then
        // a process is replaced.
        let a = r.below(9) as usize;
        self.top.swap(a, a + 1);
        if r.below(4) == 0 {
            let k = r.below(10) as usize;
            self.top[k] = (
                1000 + r.below(30000) as i64,
                r.below(16) as usize,
                r.below(5) as usize,
            );
        }
        set(
            "top/pid",
            MeterValue::Array(Array::Int(self.top.iter().map(|t| t.0).collect())),
        );
        set(
            "top/name",
            strs(&self.top.iter().map(|t| PROCS[t.1]).collect::<Vec<_>>()),
        );
        set(
            "top/user",
            strs(&self.top.iter().map(|t| USERS[t.2]).collect::<Vec<_>>()),
        );
        set(
            "top/pcpu",
            MeterValue::Array(Array::Frac((0..10).map(|_| r.frac(50.0)).collect())),
        );
        set(
            "top/pmem",
            MeterValue::Array(Array::Frac((0..10).map(|_| r.frac(10.0)).collect())),
        );
        let order = SORTED[usize::from(self.optional_on)].get_or_init(|| {
            let mut order: Vec<u8> = (0..made.len() as u8).collect();
            order.sort_by_key(|&k| made[usize::from(k)].0);
            order
        });
        if order.len() != made.len() {
            made.sort_unstable_by_key(|m| m.0);
            return made;
        }
        order
            .iter()
            .map(|&k| std::mem::replace(&mut made[usize::from(k)], ("", MeterValue::Null)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::FakeHost;
    use crate::model::binary::encode_sample;
    use crate::wire::{split_records, split_sample};

    /// The sorted list is in name order with the optional meters on and
    /// off, and encodes to the same payloads as the sample built from it.
    #[test]
    fn sorted_samples_encode_as_their_host_meters() {
        let mut optional = [false, false];
        for seed in 1..=20 {
            let mut by_list = FakeHost::in_fleet(seed, 50);
            let mut by_meters = FakeHost::in_fleet(seed, 50);
            for minute in 0..150 {
                let time = 1_700_000_000 + minute * 60;
                let list = by_list.sample_sorted();
                optional[usize::from(by_list.optional_on)] = true;
                assert!(list.windows(2).all(|w| w[0].0 < w[1].0), "{list:?}");
                let meters = by_meters.sample(time);
                let names: Vec<&str> = meters.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, list.iter().map(|(n, _)| *n).collect::<Vec<_>>());
                let records = || list.iter().map(|(n, v)| (*n, v));
                for max in [512, 1400] {
                    let split = split_records(time, records(), max);
                    assert_eq!(split, split_sample(time, &meters, max));
                }
                let whole = split_records(time, records(), 65_507).map(|mut p| p.remove(0));
                assert_eq!(whole, Ok(encode_sample(time, &meters)));
            }
        }
        assert_eq!(optional, [true, true], "both sets of names were seen");
    }
}
