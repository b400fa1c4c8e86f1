//! Database benchmark: bytes per host-minute, append rate with batched
//! fsync, and query latencies, on a synthetic fleet of realistic samples.
//!
//! Run with `scripts/bench-db` (or `cargo bench --bench db`). Set
//! OPTICON_BENCH_DIR to choose the file system (default: the system temp
//! directory).

use opticon::db::host::{self, downsample, BlockEncoder};
use opticon::db::store::{self, TenantStore};
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
    let hosts: u64 = std::env::var("OPTICON_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let cycles = 30;
    let mut fleet: Vec<(FakeHost, HostWriter)> = (0..hosts)
        .map(|i| {
            let dir = db.host_dir(tenant, host_id(i));
            (FakeHost::new(i + 1), HostWriter::open(&dir).unwrap())
        })
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

    // 1b. The same fleet on tenant day files (db::store, not yet what
    //     the collector writes): one lock, appends to one file, one
    //     syncfs and one index per cycle.
    let store_dir = root.join("store-tenant");
    let mut store = TenantStore::new(&store_dir);
    let mut fleet: Vec<(FakeHost, BlockEncoder)> = (0..hosts)
        .map(|i| (FakeHost::new(i + 1), BlockEncoder::default()))
        .collect();
    let store_cycle = |store: &mut TenantStore, fleet: &mut [(FakeHost, BlockEncoder)], t: i64| {
        let samples: Vec<HostMeters> = fleet.iter_mut().map(|(f, _)| f.sample(t)).collect();
        let start = Instant::now();
        store.lock().unwrap();
        for (i, ((_, enc), s)) in fleet.iter_mut().zip(&samples).enumerate() {
            store.append_sample(host_id(i as u64), t, s, enc).unwrap();
        }
        let appended = start.elapsed();
        db.sync().unwrap();
        store.write_indexes(true).unwrap();
        store.unlock();
        (appended, start.elapsed())
    };
    let (mut store_append, mut store_total, mut store_first) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for c in 0..cycles {
        let (a, total) = store_cycle(&mut store, &mut fleet, DAY0 + c * 60);
        if c == 0 {
            store_first = total;
        } else {
            store_append += a;
            store_total += total;
        }
    }
    println!(
        "tenant day file: first cycle of a day {:.0} ms; steady state {:.0} appends/s ({:.2} us each); with syncfs and index: {:.0} records/s",
        store_first.as_secs_f64() * 1e3,
        n / store_append.as_secs_f64(),
        store_append.as_secs_f64() * 1e6 / n,
        n / store_total.as_secs_f64()
    );
    // With OPTICON_BENCH_IDLE=seconds, cycles of both layouts after that
    // long idle: what a machine that pages out idle file pages costs.
    if let Some(idle) = std::env::var("OPTICON_BENCH_IDLE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        for round in 0..3 {
            std::thread::sleep(Duration::from_secs(idle));
            let t = DAY0 + (cycles + round) * 60;
            let (_, tenant_file) = store_cycle(&mut store, &mut fleet, t);
            println!(
                "after {idle} s idle: tenant day file {:.0} ms",
                tenant_file.as_secs_f64() * 1e3
            );
        }
    }
    drop((store, fleet));

    // 2. Bytes per host-minute: one host, a full day of samples.
    let one = host_id(1_000_000);
    let mut fake = FakeHost::new(77);
    let mut w = db.writer(tenant, one).unwrap();
    for m in 0..1440 {
        w.append(DAY0 + m * 60, &fake.sample(DAY0 + m * 60))
            .unwrap();
    }
    w.sync().unwrap();
    let bytes = store::host_dates(&db.tenant_dir(tenant), one).unwrap()[0]
        .1
        .bytes;
    let full = opticon::model::binary::encode_sample(DAY0, &fake.sample(DAY0)).len();
    println!(
        "storage: {:.0} bytes per host-minute, lossless (a full sample is {full} bytes; goal <= 250)",
        bytes as f64 / 1440.0
    );

    // 2b. Bytes per host-minute of a real agent: samples the shipped
    //     agent sent on the development machine (`opticon-agent -D`),
    //     merged as the collector merges them, with its own meters.
    let recorded = std::env::var_os("OPTICON_BENCH_AGENT_SAMPLES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "scripts/bench/agent-samples.txt".into());
    match std::fs::read_to_string(&recorded) {
        Ok(text) => agent_storage(&db, host_id(1_000_001), &text),
        Err(e) => println!("real agent: {}: {e}", recorded.display()),
    }

    // 2c. The collector's copy of each host's last sample (what the next
    //     delta is made against), alone or as changes against a sample
    //     shared by the hosts with the same meter names.
    keep_last_samples();

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

    // 3b. The same thirty days in a tenant day store, beside 99 other
    //     hosts' records (the chains interleave as in a real tenant).
    let shared = root.join("store-queries");
    let mut store = TenantStore::new(&shared);
    store.lock().unwrap();
    let mut fake = FakeHost::new(77);
    let mut enc = BlockEncoder::default();
    let mut others: Vec<(FakeHost, BlockEncoder)> = (0..99)
        .map(|i| (FakeHost::new(500 + i), BlockEncoder::default()))
        .collect();
    for d in 0..30 {
        for m in 0..1440 {
            let t = DAY0 + d * 86_400 + m * 60;
            store
                .append_sample(one, t, &fake.sample(t), &mut enc)
                .unwrap();
            for (i, (f, e)) in others.iter_mut().enumerate() {
                store
                    .append_sample(host_id(2_000_000 + i as u64), t, &f.sample(t), e)
                    .unwrap();
            }
        }
        store.commit().unwrap();
    }
    drop((store, others));
    report(
        "tenant day file: latest record",
        time(&mut || drop(black_box(store::latest(&shared, one).unwrap()))),
        Duration::from_millis(1),
    );
    report(
        "tenant day file: record at time T",
        time(&mut || {
            drop(black_box(
                store::sample_at(&shared, one, DAY0 + 15 * 86_400 + 43_210).unwrap(),
            ))
        }),
        Duration::from_millis(2),
    );
    report(
        "tenant day file: 24 h series of one meter",
        time(&mut || {
            drop(black_box(
                store::series_many(&shared, one, &["pcpu"], end - 86_400, end).unwrap(),
            ))
        }),
        Duration::from_millis(5),
    );
    report(
        "tenant day file: 30-day series, 500 points",
        time(&mut || {
            let s = store::series_many(&shared, one, &["pcpu"], DAY0, end).unwrap();
            black_box(downsample(&s[0], DAY0, end, 500));
        }),
        Duration::from_millis(50),
    );

    // 4. host-list over 10,000 hosts (two days of a few samples each).
    let many: u64 = 10_000;
    for i in 0..many.saturating_sub(hosts) {
        let mut w = db.writer(tenant, host_id(hosts + i)).unwrap();
        let mut fake = FakeHost::new(i + 9);
        for t in [DAY0, DAY0 + 60, DAY0 + 86_400] {
            w.append(t, &fake.sample(t)).unwrap();
        }
    }
    // What opticon-db host-list (and the API without a collector) does.
    let list = time(&mut || {
        black_box(opticon::db::views::hosts_usage(&db, tenant).unwrap());
    });
    report(
        &format!("host-list over {} hosts", db.hosts(tenant).unwrap().len()),
        list,
        Duration::from_secs(1),
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Store the samples an agent dumped (`--- Fast ---` or `--- Slow ---`,
/// then the sample's JSON) one minute apart, the lanes merged and the
/// collector's own meters added as the collector does, and print the
/// bytes per record. Whole blocks of 60 are stored (a block starts with
/// a full frame), so the figure is a day's.
fn agent_storage(db: &Db, host: uuid::Uuid, text: &str) {
    use opticon::model::{json, Array, MeterName, MeterValue, Scalar};
    // A tenant of its own: the fleet's writer holds the other's lock.
    let tenant = uuid::Uuid::from_u128(0xa9e7);
    db.create_tenant(Some(tenant), "agent", None).unwrap();
    let mut sections: Vec<(bool, String)> = Vec::new();
    for line in text.lines() {
        match line.trim() {
            "--- Fast ---" => sections.push((true, String::new())),
            "--- Slow ---" => sections.push((false, String::new())),
            _ => {
                if let Some((_, body)) = sections.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    let fast = sections.iter().filter(|(f, _)| *f).count();
    let keep = if fast >= 60 { fast / 60 * 60 } else { fast };
    let mut state = HostMeters::new();
    let mut w = db.writer(tenant, host).unwrap();
    let (mut stored, mut full) = (0, 0);
    // Where a delta's bytes go: each meter's change alone, summed.
    let mut by_meter: std::collections::BTreeMap<String, usize> = Default::default();
    let mut last: Option<HostMeters> = None;
    let own = |state: &mut HostMeters, t: i64| {
        let mut set = |n: &str, v: MeterValue| state.set(MeterName::new(n).unwrap(), v, t).unwrap();
        set("status", MeterValue::Scalar(Scalar::Str("OK".into())));
        set("badness", MeterValue::Scalar(Scalar::Frac(0.0)));
        set("problems", MeterValue::Array(Array::Str(Vec::new())));
        set(
            "link/ip",
            MeterValue::Scalar(Scalar::Str("192.0.2.2".into())),
        );
    };
    for (is_fast, body) in &sections {
        if stored == keep {
            break;
        }
        let t = DAY0 + stored as i64 * 60;
        json::merge_json(&mut state, body, t).unwrap();
        if *is_fast {
            own(&mut state, t);
            w.append(t, &state).unwrap();
            if let Some(prev) = &last {
                for (name, m) in state.iter() {
                    let (mut a, mut b) = (HostMeters::new(), HostMeters::new());
                    if let Some(p) = prev.get(name.as_str()) {
                        a.set(name.clone(), p.value.clone(), t).unwrap();
                        b.set(name.clone(), m.value.clone(), t).unwrap();
                        let mut body = Vec::new();
                        if opticon::db::delta::encode(&a, &b, &mut body) {
                            // Less the count and bitmap of a one-meter delta.
                            *by_meter.entry(name.as_str().to_string()).or_default() +=
                                body.len() - 2;
                        }
                    }
                }
            }
            last = Some(state.clone());
            full = full.max(opticon::model::binary::encode_sample(t, &state).len());
            stored += 1;
        }
    }
    w.sync().unwrap();
    let bytes = store::host_dates(&db.tenant_dir(tenant), host).unwrap()[0]
        .1
        .bytes;
    println!(
        "storage, real agent: {:.0} bytes per host-minute over {stored} recorded samples, {} meters (a full sample is {full} bytes; goal < 250)",
        bytes as f64 / stored.max(1) as f64,
        state.len(),
    );
    let mut costly: Vec<(usize, String)> = by_meter.into_iter().map(|(n, b)| (b, n)).collect();
    costly.sort_unstable_by(|a, b| b.cmp(a));
    let per = |b: usize| b as f64 / (stored.max(2) - 1) as f64;
    let top: Vec<String> = costly
        .iter()
        .take(8)
        .map(|(b, n)| format!("{n} {:.0}", per(*b)))
        .collect();
    println!(
        "  its delta bytes per minute by meter: {} (all meters {:.0})",
        top.join(", "),
        per(costly.iter().map(|(b, _)| b).sum())
    );
}

/// Bytes and time of keeping 10,000 hosts' last samples between write
/// cycles, and of decoding them back in the next cycle.
fn keep_last_samples() {
    use opticon::db::format::FRAME_DELTA;
    use opticon::db::{ParkedWriter, References};
    let samples: Vec<HostMeters> = (0..10_000u64)
        .map(|i| {
            let mut h = FakeHost::new(i + 1);
            h.sample(DAY0);
            h.sample(DAY0 + 60)
        })
        .collect();
    let refs = References::new(16);
    for shared in [false, true] {
        // Medians of five rounds: this figure is a few microseconds.
        let (mut keep, mut restore) = (Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let kept: Vec<ParkedWriter> = samples
                .iter()
                .map(|m| {
                    let r = shared.then_some(&refs);
                    ParkedWriter::default().after(DAY0 + 60, m, FRAME_DELTA, &[], r)
                })
                .collect();
            keep.push(start.elapsed());
            let start = Instant::now();
            let mut base = HostMeters::new();
            for k in &kept {
                assert!(k.prev_into(&mut base));
                black_box(&base);
            }
            restore.push(start.elapsed());
            bytes = kept.iter().map(ParkedWriter::prev_bytes).sum::<usize>();
        }
        let per_host = |d: Duration| d.as_secs_f64() * 1e6 / samples.len() as f64;
        println!(
            "last samples kept {}: {} bytes per host, {:.2} us to keep, {:.2} us to decode",
            if shared {
                "against shared references"
            } else {
                "alone"
            },
            bytes / samples.len(),
            per_host(median(keep)),
            per_host(median(restore)),
        );
    }
}
