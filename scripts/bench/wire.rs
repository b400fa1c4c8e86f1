//! Wire benchmark: seal and open+verify+decode of ~1 KB meter datagrams on
//! one core, against the floor of a bare AES-256-CTR + HMAC-SHA256 pass
//! over the same bytes. Prints medians of repeated timed runs.
//!
//! Run with `scripts/bench-wire` (or `cargo bench --bench wire`).

use opticon::collector::packed::Packed;
use opticon::crypto::{random_key, SealKey};
use opticon::db::format::FRAME_KEY;
use opticon::db::{ParkedWriter, References};
use opticon::model::binary::{apply_payload, apply_payload_at, encode_sample, PayloadReader};
use opticon::model::HostMeters;

use opticon::wire::{peek, Datagram, OpenedAuth, ReplayWindow, SenderSession, DEFAULT_MAX_SKEW};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 7;
const RUN_TIME: Duration = Duration::from_millis(400);

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
    let payload = encode_sample(now, &opticon::fleet::FakeHost::new(1).sample(now));
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
    arrival(floor);
    arrival_fleet(floor);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal open+verify+decode >= 500000/s: {}; within 1.5x of the floor: {}",
        verdict(open_decode >= 500_000.0),
        verdict(floor / open_decode <= 1.5)
    );
}

/// One arrival as the collector merges it: the host's last record
/// decoded into `base`, its packed meters unpacked against it into
/// `meters`, the payload merged, and the meters packed again.
fn merge_arrival(
    writer: &ParkedWriter,
    packed: &Packed,
    payload: &[u8],
    time: i64,
    base: &mut HostMeters,
    meters: &mut HostMeters,
) -> Packed {
    writer.prev_into(base);
    let _ = packed.unpack_into(Some(base), meters);
    let _ = apply_payload_at(meters, payload, time);
    Packed::pack(meters, Some(base))
}

/// The collector's work on a fleet host's one datagram a minute, beyond
/// opening it: the host's last record decoded (kept as changes against
/// a reference sample the fleet shares), the payload merged into the
/// host's packed meters (the record as stored at the last write cycle),
/// and the meters packed again as changes against the record.
fn arrival(floor: f64) {
    let t0 = 1_700_000_000;
    let references = References::new(4);
    // Another host of the fleet made the reference.
    let other = opticon::fleet::FakeHost::new(2).sample(t0);
    let _ = references.for_meters(&other);
    let mut fake = opticon::fleet::FakeHost::new(1);
    let stored = fake.sample(t0);
    let writer = ParkedWriter::default().after(t0, &stored, FRAME_KEY, &[], Some(&references));
    let packed = Packed::as_base(&stored);
    let payload = encode_sample(t0 + 60, &fake.sample(t0 + 60));
    let (mut base, mut meters) = (HostMeters::new(), HostMeters::new());
    let record = rate(|| {
        black_box(writer.prev_into(&mut base));
    });
    line("packed host: last record decoded", record, floor);
    let whole = rate(|| {
        let p = merge_arrival(&writer, &packed, &payload, t0 + 61, &mut base, &mut meters);
        black_box(p);
    });
    line("packed host: decode + merge + pack", whole, floor);
}

/// [`arrival`] over a fleet, each host's datagram in turn in a shuffled
/// order, as they arrive at the collector: every host's state is its
/// own (out of the caches by its turn), and hosts differ in their meters
/// (optional ones come and go).
fn arrival_fleet(floor: f64) {
    const HOSTS: u64 = 100_000;
    let t0 = 1_700_000_000;
    let references = References::new(16);
    let mut hosts = Vec::new();
    let mut payloads = Vec::new();
    for seed in 1..=HOSTS {
        let mut fake = opticon::fleet::FakeHost::new(seed);
        let stored = fake.sample(t0);
        let writer = ParkedWriter::default().after(t0, &stored, FRAME_KEY, &[], Some(&references));
        hosts.push((writer, Packed::as_base(&stored)));
        payloads.push(encode_sample(t0 + 60, &fake.sample(t0 + 60)));
    }
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    let mut rng = opticon::fleet::Rng::new(7);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let (mut base, mut meters) = (HostMeters::new(), HostMeters::new());
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        for &i in &order {
            let (writer, packed) = &mut hosts[i];
            *packed = merge_arrival(
                writer,
                packed,
                &payloads[i],
                t0 + 61,
                &mut base,
                &mut meters,
            );
        }
        rates.push(hosts.len() as f64 / start.elapsed().as_secs_f64());
        // Back to the record alone for the next run.
        for (writer, packed) in &mut hosts {
            writer.prev_into(&mut base);
            *packed = Packed::as_base(&base);
        }
    }
    rates.sort_by(f64::total_cmp);
    line(
        &format!("packed fleet of {HOSTS}: the same"),
        rates[RUNS / 2],
        floor,
    );
}
