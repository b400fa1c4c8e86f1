//! Wire benchmark: seal and open+verify+decode of ~1 KB meter datagrams on
//! one core, against the floor of a bare AES-256-CTR + HMAC-SHA256 pass
//! over the same bytes. Prints medians of repeated timed runs.
//!
//! Run with `scripts/bench-wire` (or `cargo bench --bench wire`).

use opticon::crypto::{random_key, SealKey};
use opticon::model::binary::{apply_payload, encode_sample, PayloadReader};
use opticon::model::{Array, HostMeters, MeterName, MeterValue, Scalar};
use opticon::wire::{peek, Datagram, OpenedAuth, ReplayWindow, SenderSession, DEFAULT_MAX_SKEW};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 7;
const RUN_TIME: Duration = Duration::from_millis(400);

/// A realistic agent sample of about 1 KB: ~40 scalars, a 5-row df table
/// and a 10-row top table.
fn sample(time: i64) -> HostMeters {
    let mut h = HostMeters::new();
    let mut set = |n: &str, v: MeterValue| h.set(MeterName::new(n).unwrap(), v, time).unwrap();
    let s = |x: &str| MeterValue::Scalar(Scalar::Str(x.to_string()));
    let i = |x: i64| MeterValue::Scalar(Scalar::Int(x));
    let f = |x: f64| MeterValue::Scalar(Scalar::Frac(x));
    set("hostname", s("web-01.example.net"));
    set("os/kernel", s("Linux"));
    set("os/version", s("#1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1"));
    set("os/arch", s("x86_64"));
    set("os/distro", s("Debian GNU/Linux 12 (bookworm)"));
    set("os/hw", s("QEMU Standard PC (Q35 + ICH9, 2009)"));
    set("agent/v", s("0.1.0"));
    set("agent/ip", s("10.1.2.3"));
    set("agent/up", i(123456));
    set("uptime", i(9876543));
    set(
        "loadavg",
        MeterValue::Array(Array::Frac(vec![0.52, 0.61, 0.7])),
    );
    set("pcpu", f(12.34));
    set("io/pwait", f(0.25));
    set("io/rdops", i(120));
    set("io/wrops", i(345));
    for (n, v) in [("total", 16316412), ("free", 8123456), ("swap", 2097148)] {
        set(&format!("mem/{n}"), i(v));
    }
    for (n, v) in [
        ("in_kbs", 1234),
        ("out_kbs", 5678),
        ("in_pps", 910),
        ("out_pps", 1112),
    ] {
        set(&format!("net/{n}"), i(v));
    }
    for (n, v) in [("total", 213), ("run", 2), ("stuck", 0)] {
        set(&format!("proc/{n}"), i(v));
    }
    for k in 0..12 {
        set(&format!("extra/m{k}"), i(1000 + k * 37));
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
            20511356, 51200000, 104857600, 10485760, 209715200,
        ])),
    );
    set(
        "df/pused",
        MeterValue::Array(Array::Frac(vec![41.5, 12.25, 97.0, 55.5, 3.75])),
    );
    let names = [
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
    ];
    set("top/name", strs(&names));
    set(
        "top/user",
        strs(&[
            "www-data", "postgres", "root", "root", "syslog", "root", "app", "app", "app",
            "opticon",
        ]),
    );
    set(
        "top/pid",
        MeterValue::Array(Array::Int((0..10).map(|k| 1000 + k * 97).collect())),
    );
    set(
        "top/pcpu",
        MeterValue::Array(Array::Frac(
            (0..10).map(|k| 40.0 - k as f64 * 3.5).collect(),
        )),
    );
    set(
        "top/pmem",
        MeterValue::Array(Array::Frac((0..10).map(|k| 0.1 + k as f64 * 0.4).collect())),
    );
    h
}

/// Open the benchmark datagram as if for the first time: its serial is
/// forgotten, so the replay window accepts it again (the window check is a
/// few instructions either way).
fn open_again<'p>(
    session: &mut OpenedAuth,
    template: &ReplayWindow,
    datagram: &[u8],
    plain: &'p mut Vec<u8>,
) -> &'p [u8] {
    session.window = template.clone();
    let Ok(Datagram::Meter(m)) = peek(black_box(datagram)) else {
        panic!("benchmark datagram does not parse")
    };
    m.open(&session.key, &mut session.window, plain)
        .expect("benchmark datagram opens")
}

/// Median operations per second of `op` over [`RUNS`] timed runs.
fn rate(mut op: impl FnMut()) -> f64 {
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < RUN_TIME {
            for _ in 0..256 {
                op();
            }
            n += 256;
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn line(what: &str, per_sec: f64, floor: f64) {
    println!(
        "{what:<34} {:>10.0} /s  {:>6.3} us  {:>5.2}x floor",
        per_sec,
        1e6 / per_sec,
        floor / per_sec
    );
}

fn main() {
    let now = 1_700_000_000;
    let payload = encode_sample(now, &sample(now));
    let tenant_key = SealKey::new(&random_key().unwrap());
    let tenant = opticon::crypto::random_uuid().unwrap();
    let mut sender = SenderSession::new().unwrap();
    let auth = sender
        .auth_datagram(&tenant_key, tenant, tenant, now)
        .unwrap();
    let Ok(Datagram::Auth(h)) = peek(&auth) else {
        panic!("auth")
    };
    let mut session = OpenedAuth::open_new(&h, &tenant_key, now, DEFAULT_MAX_SKEW).unwrap();
    let datagram = sender.meter_datagram(&payload);
    println!(
        "payload {} bytes, datagram {} bytes, one core, median of {RUNS} runs",
        payload.len(),
        datagram.len()
    );

    // Floor: one CTR pass and one HMAC pass over the datagram's bytes.
    let raw = SealKey::new(&random_key().unwrap());
    let mut buf = datagram.clone();
    let floor = rate(|| {
        raw.apply_keystream(&[0u8; 12], &mut buf);
        black_box(raw.tag(&[&buf]));
    });
    line("floor: AES-256-CTR + HMAC-SHA256", floor, floor);

    let mut out = Vec::with_capacity(2048);
    let seal = rate(|| {
        sender.seal_meter_into(black_box(&payload), &mut out);
        black_box(&out);
    });
    line("seal", seal, floor);

    // Sealing a fresh datagram for each open would add sealing to the
    // figure, so the same one is opened again (see open_again).
    let mut plain = Vec::with_capacity(2048);
    let template = session.window.clone();
    let open = rate(|| {
        black_box(open_again(&mut session, &template, &datagram, &mut plain));
    });
    line("open (verify + decrypt)", open, floor);

    let decode_all = |p: &[u8]| {
        let mut r = PayloadReader::new(p).unwrap();
        let mut n = 0usize;
        while let Some(head) = r.next_record().unwrap() {
            for _ in 0..head.shape.values() {
                black_box(r.next_value().unwrap());
                n += 1;
            }
        }
        n
    };
    let decode = rate(|| {
        black_box(decode_all(black_box(&payload)));
    });
    line("decode (every value, zero-copy)", decode, floor);
    let open_decode = rate(|| {
        let p = open_again(&mut session, &template, &datagram, &mut plain);
        black_box(decode_all(p));
    });
    line("open + verify + decode", open_decode, floor);

    let mut host = HostMeters::new();
    apply_payload(&mut host, &payload).unwrap();
    let merge = rate(|| {
        black_box(apply_payload(&mut host, black_box(&payload)).unwrap());
    });
    line("decode + merge into host state", merge, floor);

    let full = rate(|| {
        let p = open_again(&mut session, &template, &datagram, &mut plain);
        black_box(apply_payload(&mut host, p).unwrap());
    });
    line("open + verify + decode + merge", full, floor);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal open+verify+decode >= 500000/s: {}; within 1.5x of the floor: {}",
        verdict(open_decode >= 500_000.0),
        verdict(floor / open_decode <= 1.5)
    );
}
