//! The collector's receive path in-process: legitimate traffic mixed with
//! forged, tampered, replayed, wrong-tenant and random datagrams.

use crate::common;

use common::Rng;
use opticon::collector::{Collector, CollectorConfig};
use opticon::crypto::SealKey;
use opticon::db::{host, meters, Db};
use opticon::model::{HostMeters, MeterName, MeterValue, Scalar, TenantKey};
use opticon::wire::{split_sample, SenderSession};
use std::net::SocketAddr;
use uuid::Uuid;

/// A fresh database under the temp dir with one tenant, and an
/// in-process collector over it configured with `conf` (beside the
/// database path).
fn in_process(
    tag: &str,
    tenant: Uuid,
    key: [u8; 32],
    conf: &str,
) -> (std::path::PathBuf, Db, Collector) {
    let root = std::env::temp_dir().join(format!("opticon-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let db = Db::new(&root);
    db.create_tenant(Some(tenant), tag, Some(TenantKey(key)))
        .unwrap();
    let doc = opticon::conf::parse(&format!(
        "database {{ path \"{}\" }} {conf}",
        root.display()
    ))
    .unwrap();
    let c = Collector::new(
        CollectorConfig::from_dict(&doc).unwrap(),
        meters::defaults(),
    );
    (root, db, c)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn every_hostile_datagram_is_counted_every_legitimate_sample_stored() {
    hostile_traffic(false);
}

/// The same traffic in batches opened on two threads: the same counts,
/// the same record.
#[test]
fn batches_opened_in_parallel_count_and_store_the_same() {
    hostile_traffic(true);
}

fn hostile_traffic(batched: bool) {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [42u8; 32];
    let tag = if batched {
        "traffic-batched"
    } else {
        "traffic"
    };
    let (root, _, mut c) = in_process(tag, tenant, key, "");
    let mut feed: Vec<Vec<u8>> = Vec::new();
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let host_id = Uuid::from_u128(7);
    let tenant_key = SealKey::new(&key);
    let mut rng = Rng::new(99);

    // The legitimate agent: one session, 30 samples.
    let mut agent = SenderSession::new().unwrap();
    let mut legit = vec![agent
        .auth_datagram(&tenant_key, tenant, host_id, now())
        .unwrap()];
    // The oldest serial, held back until the window has moved past it:
    // then it is too old (not a replay, it was never seen).
    let mut tiny = HostMeters::new();
    tiny.set(
        MeterName::new("burn").unwrap(),
        MeterValue::Scalar(Scalar::Int(1)),
        now(),
    )
    .unwrap();
    let tiny = split_sample(now(), &tiny, 512).unwrap().remove(0);
    let held_back = agent.meter_datagram(&tiny);
    for _ in 0..opticon::wire::REPLAY_WINDOW + 2 {
        legit.push(agent.meter_datagram(&tiny));
    }
    let mut last = HostMeters::new();
    for i in 0..30 {
        let mut sample = common::representative_host();
        sample
            .set(
                MeterName::new("seq").unwrap(),
                MeterValue::Scalar(Scalar::Int(i)),
                now(),
            )
            .unwrap();
        for p in split_sample(now(), &sample, 512).unwrap() {
            legit.push(agent.meter_datagram(&p));
        }
        last = sample;
    }

    // Hostile traffic, sent around the legitimate datagrams.
    let mut expected: Vec<(&str, u64)> = Vec::new();
    let mut hostile: Vec<Vec<u8>> = Vec::new();
    for _ in 0..50 {
        let n = 1 + rng.below(200);
        let mut d = rng.bytes(n);
        d[0] = b'x';
        hostile.push(d);
    }
    expected.push(("bad_magic", 50));
    hostile.push(b"OPT\x09Mxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec());
    // Too short for a header, but the version is told all the same.
    hostile.push(b"OPT\x09".to_vec());
    expected.push(("bad_version", 2));
    let stranger = Uuid::from_u128(0xdead);
    hostile.push(
        SenderSession::new()
            .unwrap()
            .auth_datagram(&tenant_key, stranger, host_id, now())
            .unwrap(),
    );
    expected.push(("unknown_tenant", 1));
    let wrong_key = SealKey::new(&[1u8; 32]);
    hostile.push(
        SenderSession::new()
            .unwrap()
            .auth_datagram(&wrong_key, tenant, host_id, now())
            .unwrap(),
    );
    let mut unauthed = SenderSession::new().unwrap();
    hostile.push(unauthed.meter_datagram(b"\x01\x00"));
    expected.push(("unknown_session", 1));
    let stale_auth = SenderSession::new()
        .unwrap()
        .auth_datagram(&tenant_key, tenant, host_id, now() - 3600)
        .unwrap();
    hostile.push(stale_auth);
    expected.push(("clock_skew", 1));
    // A well-formed header of the wrong length.
    let mut short_auth = SenderSession::new()
        .unwrap()
        .auth_datagram(&tenant_key, tenant, host_id, now())
        .unwrap();
    short_auth.pop();
    hostile.push(short_auth);
    expected.push(("malformed", 1));

    // Interleave: each legitimate datagram preceded by a tampered copy of
    // itself (bad MAC) every third time, and followed by a replay every
    // fifth time.
    let (mut tampered, mut replayed) = (0u64, 0u64);
    let mut hostile_iter = hostile.into_iter();
    for (i, d) in legit.iter().enumerate() {
        if i % 3 == 1 {
            let mut t = d.clone();
            // In the tag: a flip elsewhere in the header would (rightly)
            // count as another reason, e.g. an unknown session id.
            let at = t.len() - 1 - rng.below(16);
            t[at] ^= 1 << rng.below(8);
            feed.push(t.clone());
            tampered += 1;
        }
        feed.push(d.clone());
        if i == 0 {
            feed.push(d.clone());
        }
        if i % 5 == 2 {
            feed.push(d.clone());
            replayed += 1;
        }
        if let Some(h) = hostile_iter.next() {
            feed.push(h.clone());
        }
    }
    for h in hostile_iter {
        feed.push(h.clone());
    }
    feed.push(held_back.clone());
    expected.push(("too_old", 1));
    // Sealed by the real session, but not a payload the model accepts.
    feed.push(agent.meter_datagram(&[0xff; 24]));
    expected.push(("bad_payload", 1));
    // Larger than network/max_datagram (16384): refused unopened.
    feed.push(agent.meter_datagram(&vec![0u8; 20_000]));
    expected.push(("oversize", 1));
    if batched {
        // Batches large enough for the threads (and one small one).
        let all: Vec<_> = feed.into_iter().map(|d| (d, from)).collect();
        for part in all.chunks(300) {
            c.handle_batch(part, 2);
        }
    } else {
        for d in &feed {
            c.handle(d, from);
        }
    }
    // The agent's deliberate resend of its auth datagram (sent again
    // right after the first, in the loop above): no rejection.
    assert_eq!(c.counters.auth_repeats, 1);
    expected.push(("bad_mac", tampered + 1));
    expected.push(("replay", replayed));
    // Every reason a datagram can be refused for is exercised.
    let mut reasons: Vec<&str> = expected.iter().map(|(r, _)| *r).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "bad_mac",
            "bad_magic",
            "bad_payload",
            "bad_version",
            "clock_skew",
            "malformed",
            "oversize",
            "replay",
            "too_old",
            "unknown_session",
            "unknown_tenant"
        ]
    );

    assert_eq!(
        c.counters.accepted,
        legit.len() as u64,
        "rejected: {:?}",
        c.counters.rejected
    );
    for (reason, n) in &expected {
        assert_eq!(
            c.counters.rejected.get(reason).copied().unwrap_or(0),
            *n,
            "{reason}: {:?}",
            c.counters.rejected
        );
    }
    let total: u64 = c.counters.rejected.values().sum();
    assert_eq!(
        total,
        expected.iter().map(|(_, n)| n).sum::<u64>(),
        "{:?}",
        c.counters.rejected
    );

    // One write cycle stores the host with the last sample's meters.
    c.write_cycle();
    let (_, stored) = host::latest(&Db::new(&root).host_dir(tenant, host_id))
        .unwrap()
        .expect("a record");
    assert_eq!(
        stored.get("seq").map(|m| &m.value),
        Some(&MeterValue::Scalar(Scalar::Int(29)))
    );
    for (name, meter) in last.iter() {
        assert_eq!(
            stored.get(name.as_str()).map(|m| &m.value),
            Some(&meter.value),
            "{name}"
        );
    }
    assert_eq!(
        stored.get("status").map(|m| &m.value),
        Some(&MeterValue::Scalar(Scalar::Str("OK".into())))
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Many hosts' samples in batches large enough for the threads: each
/// host's payloads are merged in order on one thread (a sample split over
/// datagrams, a later sample over an earlier one, a meter that only the
/// first sample has), and every host stores what one-by-one handling
/// stores.
#[test]
fn many_hosts_merged_in_parallel_store_what_one_by_one_stores() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [42u8; 32];
    let tenant_key = SealKey::new(&key);
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let hosts: Vec<Uuid> = (1..=100u128).map(Uuid::from_u128).collect();
    let mut feed: Vec<Vec<u8>> = Vec::new();
    let mut agents: Vec<SenderSession> = hosts
        .iter()
        .map(|_| SenderSession::new().unwrap())
        .collect();
    for (agent, host) in agents.iter_mut().zip(&hosts) {
        feed.push(
            agent
                .auth_datagram(&tenant_key, tenant, *host, now())
                .unwrap(),
        );
    }
    // Four rounds, the hosts' datagrams interleaved.
    for round in 0..4i64 {
        let mut rounds: Vec<Vec<Vec<u8>>> = Vec::new();
        for (i, agent) in agents.iter_mut().enumerate() {
            let mut sample = common::representative_host();
            let mut set = |name: &str, v: i64| {
                sample
                    .set(
                        MeterName::new(name).unwrap(),
                        MeterValue::Scalar(Scalar::Int(v)),
                        now(),
                    )
                    .unwrap()
            };
            set("seq", round * 100 + i as i64);
            if round == 0 {
                set("first/only", i as i64);
            }
            let parts = split_sample(now(), &sample, 512).unwrap();
            rounds.push(parts.iter().map(|p| agent.meter_datagram(p)).collect());
        }
        let longest = rounds.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            for r in &rounds {
                if let Some(d) = r.get(k) {
                    feed.push(d.clone());
                }
            }
        }
    }
    assert!(feed.len() >= 500, "{} datagrams", feed.len());
    let stored = |batched: bool| {
        let tag = if batched {
            "merge-batched"
        } else {
            "merge-single"
        };
        let (root, db, mut c) = in_process(tag, tenant, key, "");
        if batched {
            let all: Vec<_> = feed.iter().map(|d| (d.clone(), from)).collect();
            // One batch: every host's payloads merged on the threads.
            c.handle_batch(&all, 2);
        } else {
            for d in &feed {
                c.handle(d, from);
            }
        }
        assert_eq!(c.counters.accepted, feed.len() as u64);
        c.write_cycle();
        let records: Vec<HostMeters> = hosts
            .iter()
            .map(|h| {
                let (_, mut m) = host::latest(&db.host_dir(tenant, *h))
                    .unwrap()
                    .expect("a record");
                m.stamp(0);
                m
            })
            .collect();
        let _ = std::fs::remove_dir_all(&root);
        records
    };
    let (batched, single) = (stored(true), stored(false));
    for (i, (b, s)) in batched.iter().zip(&single).enumerate() {
        assert_eq!(
            b.get("seq").map(|m| &m.value),
            Some(&MeterValue::Scalar(Scalar::Int(300 + i as i64)))
        );
        assert_eq!(
            b.get("first/only").map(|m| &m.value),
            Some(&MeterValue::Scalar(Scalar::Int(i as i64)))
        );
        let names = |m: &HostMeters| m.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(b), names(s), "host {i}");
        for (name, meter) in s.iter() {
            if name.as_str().starts_with("link/") {
                continue;
            }
            assert_eq!(
                b.get(name.as_str()).map(|m| &m.value),
                Some(&meter.value),
                "host {i}: {name}"
            );
        }
    }
}

#[test]
fn the_example_configs_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/etc");
    let doc = opticon::conf::load_file(std::path::Path::new(&format!(
        "{dir}/opticon-collector.conf"
    )))
    .unwrap();
    let cfg = CollectorConfig::from_dict(&doc).unwrap();
    assert_eq!(
        (cfg.listen.port(), cfg.write_interval, cfg.stale),
        (1047, 60, 80)
    );
    assert_eq!((cfg.notify.debounce, cfg.notify.batch), (290, 120));
    let meters_doc =
        opticon::conf::load_file(std::path::Path::new(&format!("{dir}/opticon-meter.conf")))
            .unwrap();
    let mut defs = meters::defaults();
    let Some(opticon::conf::Node::Dict(md)) = meters_doc.get("meter") else {
        panic!("no meter section")
    };
    meters::overlay(&mut defs, md, meters::Origin::Default).unwrap();
    assert_eq!(
        defs.iter()
            .find(|d| d.id == "mem/swap")
            .unwrap()
            .watchers
            .len(),
        2
    );
}

#[test]
fn silent_hosts_are_forgotten_then_purged() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [7u8; 32];
    let (root, db, mut c) = in_process(
        "purge",
        tenant,
        key,
        "interval { forget 1 purge 4 quota 1 stale 1 }",
    );
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut agent = SenderSession::new().unwrap();
    let host_id = Uuid::from_u128(9);
    c.handle(
        &agent
            .auth_datagram(&SealKey::new(&key), tenant, host_id, now())
            .unwrap(),
        from,
    );
    for p in split_sample(now(), &common::representative_host(), 1400).unwrap() {
        c.handle(&agent.meter_datagram(&p), from);
    }
    // Silence counts from here (a first cycle slowed by a loaded machine
    // may take part of it).
    let heard = std::time::Instant::now();
    c.write_cycle();
    assert!(db.hosts(tenant).unwrap().contains(&host_id), "host stored");
    // Silent past `forget` (1 s): dropped from memory, no more records.
    // Cycles run until one stores nothing; each cycle falls in a later
    // second than the one before, or it would store nothing anyway.
    let last_record = || host::usage(&db.host_dir(tenant, host_id)).unwrap().last;
    let cycle_in_next_second = |c: &mut opticon::collector::Collector| {
        let second = now();
        while now() == second {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        c.write_cycle();
    };
    let began = std::time::Instant::now();
    let mut last = last_record();
    loop {
        cycle_in_next_second(&mut c);
        let now_last = last_record();
        if now_last == last {
            break;
        }
        last = now_last;
        assert!(began.elapsed() < common::PATIENCE, "never forgotten");
    }
    assert!(
        heard.elapsed() >= std::time::Duration::from_secs(1),
        "forgotten before interval/forget"
    );
    cycle_in_next_second(&mut c);
    assert_eq!(last_record(), last, "no records once forgotten");
    assert!(
        db.hosts(tenant).unwrap().contains(&host_id),
        "kept on disk until the purge age"
    );
    // Past `purge` (4 s) since its last record: deleted from the
    // database, and not before.
    let last_time = last.unwrap();
    while db.hosts(tenant).unwrap().contains(&host_id) {
        assert!(began.elapsed() < common::PATIENCE, "never purged");
        cycle_in_next_second(&mut c);
    }
    assert!(now() - last_time >= 4, "purged before interval/purge");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_collector_keeps_a_tenant_within_its_quota_oldest_days_first() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc11);
    let key = [7u8; 32];
    let (root, db, mut c) = in_process("quota", tenant, key, "interval { quota 1 }");
    db.set_tenant_field(tenant, "quota", opticon::conf::Node::Int(0))
        .unwrap();
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut agent = SenderSession::new().unwrap();
    let send = |c: &mut Collector, agent: &mut SenderSession| {
        for p in split_sample(now(), &common::representative_host(), 1400).unwrap() {
            c.handle(&agent.meter_datagram(&p), from);
        }
    };
    c.handle(
        &agent
            .auth_datagram(&SealKey::new(&key), tenant, Uuid::from_u128(9), now())
            .unwrap(),
        from,
    );
    send(&mut c, &mut agent);
    c.write_cycle();
    // Two older days beside today's (only their names matter here).
    let days = root.join(tenant.to_string()).join("days");
    for old in ["20200101", "20200102"] {
        for ext in ["otd", "oti"] {
            std::fs::write(days.join(format!("{old}.{ext}")), vec![1u8; 65536]).unwrap();
        }
    }
    let day_files = || {
        let mut v: Vec<String> = std::fs::read_dir(&days)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".otd"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(day_files().len(), 3);
    // Over a quota of 0: the walk of the tenant's other files runs beside
    // the cycles, then the old days go, oldest first, today's stays.
    let began = std::time::Instant::now();
    while day_files().len() > 1 {
        assert!(began.elapsed() < common::PATIENCE, "never trimmed");
        std::thread::sleep(std::time::Duration::from_millis(200));
        send(&mut c, &mut agent);
        c.write_cycle();
    }
    let today = opticon::db::time::Date::of(now()).stem();
    assert_eq!(day_files(), vec![format!("{today}.otd")]);
    assert!(!days.join("20200101.oti").exists());
    // Until the next walk (interval/quota_walk, an hour), the checks
    // count the last walk's figure and measure only the day files.
    std::fs::write(days.join("20200103.otd"), vec![1u8; 65536]).unwrap();
    while day_files().len() > 1 {
        assert!(began.elapsed() < common::PATIENCE, "never trimmed again");
        std::thread::sleep(std::time::Duration::from_millis(200));
        send(&mut c, &mut agent);
        c.write_cycle();
    }
    assert_eq!(day_files(), vec![format!("{today}.otd")]);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn packed_hosts_with_queued_payloads_store_exactly_what_they_sent() {
    let tenant = Uuid::from_u128(0x11);
    let key = [7u8; 32];
    // One cached session key: every datagram of another host derives its
    // key again. Payloads wait, packed hosts unpack once per cycle.
    let (root, db, mut c) = in_process("packed", tenant, key, "memory { key_cache 1 }");
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let tenant_key = SealKey::new(&key);
    let mut fleet: Vec<(Uuid, SenderSession, opticon::fleet::FakeHost)> = (0..12)
        .map(|i| {
            let mut s = SenderSession::new().unwrap();
            let id = Uuid::from_u128(0x100 + i);
            let auth = s.auth_datagram(&tenant_key, tenant, id, now()).unwrap();
            c.handle(&auth, from);
            (id, s, opticon::fleet::FakeHost::new(i as u64 + 1))
        })
        .collect();
    // Round 0: one sample per host per cycle. Round 1: 25 samples (more
    // than the pending limit, so they are merged before the cycle).
    for (round, samples) in [(0, 1), (1, 25)] {
        let t = now();
        let mut queues: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut sent = Vec::new();
        for (_, session, fake) in &mut fleet {
            let mut queue = Vec::new();
            let mut sample = HostMeters::new();
            for k in 0..samples {
                sample = fake.sample(t - samples + 1 + k);
                let parts = split_sample(t - samples + 1 + k, &sample, 512).unwrap();
                assert!(parts.len() > 1, "split into several datagrams");
                queue.extend(parts.iter().map(|p| session.meter_datagram(p)));
            }
            queues.push(queue);
            sent.push(sample);
        }
        // Round robin over the hosts' datagrams.
        let longest = queues.iter().map(Vec::len).max().unwrap();
        for i in 0..longest {
            for q in &queues {
                if let Some(d) = q.get(i) {
                    c.handle(d, from);
                }
            }
        }
        c.write_cycle();
        for ((id, _, _), sample) in fleet.iter().zip(&sent) {
            let (_, stored) = host::latest(&db.host_dir(tenant, *id))
                .unwrap()
                .expect("a record");
            // The collector sets its own status meters.
            let own = ["status", "badness", "problems", "link/ip"];
            for (name, meter) in sample.iter().filter(|(n, _)| !own.contains(&n.as_str())) {
                assert_eq!(
                    stored.get(name.as_str()).map(|m| &m.value),
                    Some(&meter.value),
                    "round {round}, host {id}, {name}"
                );
            }
        }
        // The next cycle must fall in a later second.
        let second = now();
        while now() == second {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert_eq!(c.counters.rejected.values().sum::<u64>(), 0);
    let _ = std::fs::remove_dir_all(&root);
}

/// A host at the model's meter limit keeps the collector's own meters
/// (status, badness, problems, link/ip) and is told what was not stored.
#[test]
fn a_host_at_the_meter_limit_keeps_the_collectors_meters() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [9u8; 32];
    let (root, db, mut c) = in_process("limit", tenant, key, "");
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut agent = SenderSession::new().unwrap();
    let host_id = Uuid::from_u128(0x4096);
    c.handle(
        &agent
            .auth_datagram(&SealKey::new(&key), tenant, host_id, now())
            .unwrap(),
        from,
    );
    let mut sample = HostMeters::new();
    for i in 0..opticon::model::MAX_METERS_PER_HOST {
        sample
            .set(
                MeterName::new(&format!("x/m{i:04}")).unwrap(),
                MeterValue::Scalar(Scalar::Int(i as i64)),
                now(),
            )
            .unwrap();
    }
    for p in split_sample(now(), &sample, 1400).unwrap() {
        c.handle(&agent.meter_datagram(&p), from);
    }
    c.write_cycle();
    let (_, stored) = host::latest(&db.host_dir(tenant, host_id))
        .unwrap()
        .expect("a record");
    for own in ["status", "badness", "problems", "link/ip"] {
        assert!(stored.get(own).is_some(), "{own} missing");
    }
    assert!(stored.len() <= opticon::model::MAX_METERS_PER_HOST);
    let problems = match stored.get("problems").map(|m| &m.value) {
        Some(MeterValue::Array(opticon::model::Array::Str(p))) => p.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("meters: over the limit")),
        "{problems:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A sample stamped far from the collector's clock is refused (counted
/// as clock_skew): its meters would never expire, or expire at once.
#[test]
fn sample_times_far_from_the_collectors_clock_are_refused() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [5u8; 32];
    let (root, _, mut c) = in_process("skew", tenant, key, "");
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut agent = SenderSession::new().unwrap();
    let host_id = Uuid::from_u128(0x5c3);
    c.handle(
        &agent
            .auth_datagram(&SealKey::new(&key), tenant, host_id, now())
            .unwrap(),
        from,
    );
    let sample = common::representative_host();
    for t in [1 << 62, now() - 86_400, now() + 3600] {
        for p in split_sample(t, &sample, 1400).unwrap() {
            c.handle(&agent.meter_datagram(&p), from);
        }
    }
    assert!(
        c.counters.rejected.get("clock_skew").copied().unwrap_or(0) >= 3,
        "{:?}",
        c.counters.rejected
    );
    for p in split_sample(now(), &sample, 1400).unwrap() {
        c.handle(&agent.meter_datagram(&p), from);
    }
    assert!(c.counters.accepted >= 2, "{:?}", c.counters);
    let _ = std::fs::remove_dir_all(&root);
}

/// A write cycle's hosts are on the worker threads while the collector's
/// thread handles the datagrams that arrive: a payload of a host out
/// there waits for it (it neither makes a second state nor is lost) and is
/// stored with the next cycle; a payload of a host already back is merged
/// at once.
#[test]
fn payloads_of_hosts_on_the_worker_threads_wait_for_them() {
    let tenant = Uuid::from_u128(0x0296d893_8187_4f44_a31b_bf3b4c19fc10);
    let key = [42u8; 32];
    let tenant_key = SealKey::new(&key);
    let (root, db, mut c) = in_process("in-flight", tenant, key, "");
    let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    // More hosts than a chunk: the first chunk is out while the first
    // datagrams are handled, the last ones while the second is out.
    let hosts: Vec<Uuid> = (1..=600u128).map(Uuid::from_u128).collect();
    let mut agents: Vec<SenderSession> = hosts
        .iter()
        .map(|_| SenderSession::new().unwrap())
        .collect();
    let sample = |seq: i64| {
        let mut s = common::representative_host();
        s.set(
            MeterName::new("seq").unwrap(),
            MeterValue::Scalar(Scalar::Int(seq)),
            now(),
        )
        .unwrap();
        split_sample(now(), &s, 16_000).unwrap().remove(0)
    };
    for (agent, host) in agents.iter_mut().zip(&hosts) {
        let auth = agent
            .auth_datagram(&tenant_key, tenant, *host, now())
            .unwrap();
        c.handle(&auth, from);
        c.handle(&agent.meter_datagram(&sample(1)), from);
    }
    c.write_cycle();
    // The next cycle: every host's second sample arrives at the first
    // look at the queue, while the first chunk is on the threads.
    let mut second: Vec<Vec<u8>> = agents
        .iter_mut()
        .map(|a| a.meter_datagram(&sample(2)))
        .collect();
    let mut looks = 0;
    c.write_cycle_with(&mut |c| {
        looks += 1;
        for d in second.drain(..) {
            c.handle(&d, from);
        }
    });
    assert!(looks >= 2, "one look per chunk: {looks}");
    assert_eq!(c.counters.accepted, 3 * hosts.len() as u64);
    assert!(c.counters.rejected.is_empty(), "{:?}", c.counters.rejected);
    // A host's records need increasing times (whole seconds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    c.write_cycle();
    for host in &hosts {
        let (_, stored) = host::latest(&db.host_dir(tenant, *host))
            .unwrap()
            .expect("a record");
        assert_eq!(
            stored.get("seq").map(|m| &m.value),
            Some(&MeterValue::Scalar(Scalar::Int(2))),
            "host {host}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
