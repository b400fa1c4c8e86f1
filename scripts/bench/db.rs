//! Database benchmark: bytes per host-minute, append rate with batched
//! fsync, and query latencies, on a synthetic fleet of realistic samples.
//!
//! Run with `scripts/bench-db` (or `cargo bench --bench db`). Set
//! OPTICON_BENCH_DIR to choose the file system (default: the system temp
//! directory).

use opticon::db::host::{self, downsample};
use opticon::db::{Db, HostWriter};
use opticon::model::HostMeters;
use std::hint::black_box;
use std::time::{Duration, Instant};

use opticon::fleet::FakeHost;

/// 2023-11-14T00:00:00Z
const DAY0: i64 = 1_699_920_000;
const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";

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
