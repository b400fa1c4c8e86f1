//! Database benchmark: bytes per host-minute, append rate with batched
//! fsync, and query latencies, on a synthetic fleet of realistic samples.
//!
//! Run with `scripts/bench-db` (or `cargo bench --bench db`). Set
//! OPTICON_BENCH_DIR to choose the file system (default: the system temp
//! directory).

use opticon::db::host::{self, downsample};
use opticon::db::{Db, HostWriter};
use opticon::model::{Array, HostMeters, MeterName, MeterValue, Scalar};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// 2023-11-14T00:00:00Z
const DAY0: i64 = 1_699_920_000;
const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
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
const USERS: [&str; 5] = ["root", "www-data", "postgres", "app", "opticon"];

/// One host's agent, producing a sample a minute with values that move
/// the way real ones do: counters climb, rates wander, the process table
/// reorders, static facts stay.
struct FakeHost {
    rng: Rng,
    minute: i64,
    top: Vec<(i64, usize, usize)>,
}

impl FakeHost {
    fn new(seed: u64) -> FakeHost {
        let mut rng = Rng(seed | 1);
        let top = (0..10)
            .map(|i| (1000 + rng.below(30000) as i64, i, rng.below(5) as usize))
            .collect();
        FakeHost {
            rng,
            minute: 0,
            top,
        }
    }

    fn sample(&mut self, time: i64) -> HostMeters {
        self.minute += 1;
        let r = &mut self.rng;
        let mut h = HostMeters::new();
        let mut set = |n: &str, v: MeterValue| h.set(MeterName::new(n).unwrap(), v, time).unwrap();
        let s = |x: &str| MeterValue::Scalar(Scalar::Str(x.into()));
        let i = |x: i64| MeterValue::Scalar(Scalar::Int(x));
        let f = |x: f64| MeterValue::Scalar(Scalar::Frac(x));
        set("hostname", s("web-01.example.net"));
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
        set("mem/free", i(8_000_000 + r.below(100_000) as i64));
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
        for k in 0..10 {
            set(&format!("cpu/c{k}"), i(3_000_000 + k));
        }
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
            MeterValue::Array(Array::Int(vec![
                20_511_356,
                51_200_000,
                104_857_600,
                10_485_760,
                209_715_200,
            ])),
        );
        let drift = (self.minute / 30) as f64 * 0.01;
        set(
            "df/pused",
            MeterValue::Array(Array::Frac(vec![
                41.5 + drift,
                12.25,
                97.0,
                55.5 + drift,
                3.75,
            ])),
        );
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
        h
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(what: &str, d: Duration, goal: Duration) {
    let ok = if d <= goal { "met" } else { "NOT met" };
    println!(
        "{what:<44} {:>10.3} ms   goal < {:>7.1} ms: {ok}",
        d.as_secs_f64() * 1e3,
        goal.as_secs_f64() * 1e3
    );
}

fn main() {
    let base = std::env::var_os("OPTICON_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!("opticon-bench-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let db = Db::new(&root);
    let tenant = uuid::Uuid::parse_str(TENANT).unwrap();
    db.create_tenant(Some(tenant), "bench", None).unwrap();
    let host_id = |i: u64| uuid::Uuid::from_u64_pair(0x0b71_c000_0000_0000 | i, i);

    // 1. Append rate: a fleet of 2,000 hosts, 30 write cycles, one syncfs
    //    per cycle (the collector's policy).
    let hosts = 2_000;
    let cycles = 30;
    let mut fleet: Vec<(FakeHost, HostWriter)> = (0..hosts)
        .map(|i| (FakeHost::new(i + 1), db.writer(tenant, host_id(i)).unwrap()))
        .collect();
    let mut samples: Vec<HostMeters> = Vec::with_capacity(hosts as usize);
    let mut append_time = Duration::ZERO;
    let mut sync_time = Duration::ZERO;
    let mut first_cycle = Duration::ZERO;
    for c in 0..cycles {
        let t = DAY0 + c * 60;
        samples.clear();
        samples.extend(fleet.iter_mut().map(|(fake, _)| fake.sample(t)));
        let start = Instant::now();
        for ((_, w), s) in fleet.iter_mut().zip(&samples) {
            w.append(t, s).unwrap();
        }
        let appended = start.elapsed();
        let start = Instant::now();
        db.sync().unwrap();
        // The first cycle of a day creates every host's day file; the
        // steady state appends to open files.
        if c == 0 {
            first_cycle = appended + start.elapsed();
        } else {
            append_time += appended;
            sync_time += start.elapsed();
        }
    }
    drop(fleet);
    let n = (hosts * (cycles as u64 - 1)) as f64;
    println!("fleet: {hosts} hosts x {cycles} write cycles, one syncfs per cycle");
    println!(
        "first cycle of a day (creates {hosts} day files): {:.0} ms, {:.0} records/s",
        first_cycle.as_secs_f64() * 1e3,
        hosts as f64 / first_cycle.as_secs_f64()
    );
    println!(
        "steady state: {:.0} appends/s on one core ({:.2} us each); with syncfs: {:.0} records/s (goal >= 100000)",
        n / append_time.as_secs_f64(),
        append_time.as_secs_f64() * 1e6 / n,
        n / (append_time + sync_time).as_secs_f64()
    );

    // 2. Bytes per host-minute: one host, a full day of samples.
    let one = host_id(1_000_000);
    let mut fake = FakeHost::new(77);
    let mut w = db.writer(tenant, one).unwrap();
    for m in 0..1440 {
        w.append(DAY0 + m * 60, &fake.sample(DAY0 + m * 60))
            .unwrap();
    }
    w.sync().unwrap();
    let day = host::day_path(&db.host_dir(tenant, one), opticon::db::time::Date::of(DAY0));
    let bytes = std::fs::metadata(&day).unwrap().len();
    let full = opticon::model::binary::encode_sample(DAY0, &fake.sample(DAY0)).len();
    println!(
        "storage: {:.0} bytes per host-minute, lossless (a full sample is {full} bytes; goal <= 250)",
        bytes as f64 / 1440.0
    );

    // 3. Thirty days for one host, then query latencies.
    for d in 1..30 {
        for m in 0..1440 {
            let t = DAY0 + d * 86_400 + m * 60;
            w.append(t, &fake.sample(t)).unwrap();
        }
    }
    w.sync().unwrap();
    drop(w);
    let dir = db.host_dir(tenant, one);
    let end = DAY0 + 30 * 86_400 - 60;
    let time = |f: &mut dyn FnMut()| {
        let runs = (0..9)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed()
            })
            .collect();
        median(runs)
    };
    report(
        "latest record",
        time(&mut || drop(black_box(host::latest(&dir).unwrap()))),
        Duration::from_millis(1),
    );
    report(
        "record at time T (mid-day)",
        time(&mut || {
            drop(black_box(
                host::at(&dir, DAY0 + 15 * 86_400 + 43_210).unwrap(),
            ))
        }),
        Duration::from_millis(2),
    );
    report(
        "24 h series of one meter (1440 points)",
        time(&mut || {
            drop(black_box(
                host::series(&dir, "pcpu", end - 86_400, end).unwrap(),
            ))
        }),
        Duration::from_millis(5),
    );
    report(
        "30-day series downsampled to 500 points",
        time(&mut || {
            let s = host::series(&dir, "pcpu", DAY0, end).unwrap();
            black_box(downsample(&s, DAY0, end, 500));
        }),
        Duration::from_millis(50),
    );

    // 4. host-list over 10,000 hosts (two days of a few samples each).
    let many = 10_000;
    for i in 0..many - hosts {
        let mut w = db.writer(tenant, host_id(hosts + i)).unwrap();
        let mut fake = FakeHost::new(i + 9);
        for t in [DAY0, DAY0 + 60, DAY0 + 86_400] {
            w.append(t, &fake.sample(t)).unwrap();
        }
    }
    let list = time(&mut || {
        for h in db.hosts(tenant).unwrap() {
            black_box(host::usage(&db.host_dir(tenant, h)).unwrap());
        }
    });
    report(
        &format!("host-list over {} hosts", db.hosts(tenant).unwrap().len()),
        list,
        Duration::from_secs(1),
    );
    let _ = std::fs::remove_dir_all(&root);
}
