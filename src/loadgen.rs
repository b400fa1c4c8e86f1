//! `opticon-loadgen`: simulate a fleet of agents against a collector on
//! this machine, for load tests and benchmarks.
//!
//! Each simulated host has its own session and sends a fresh sample each
//! round (from [`crate::fleet`]: counters grow, gauges drift, the process
//! table churns, meters come and go, as a real agent's do), split into
//! datagrams as an agent would; it opens its session with an auth
//! datagram, rotates its key every `--rotate` samples, and seals every
//! datagram afresh. `--constant` resends each host's first sample instead
//! (the collector then stores empty deltas: an optimistic load). The run is bounded by
//! `--duration` and `--count`, paced to `--rate` datagrams per second, and
//! only ever sent to a loopback address.
//!
//! With `--hostile RATE`, a second thread sends hostile datagrams for the
//! same duration: random bytes, meter datagrams of sessions that never
//! authenticated, auth datagrams of a tenant that does not exist and auth
//! datagrams of the real tenant sealed with a wrong key. Each kind is
//! counted, so that the collector's rejection counters can be checked.

use crate::crypto::SealKey;
use crate::fleet::FakeHost;
use crate::model::TenantKey;
use crate::svc;
use crate::wire::{split_records, split_sample, SenderSession};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How far ahead of its target rate the load generator may run before it
/// sleeps: datagrams go out in bursts this long, not one sleep each.
const PACE_SLACK: Duration = Duration::from_millis(2);

/// One simulated host. Only what its next sample follows from is kept
/// between rounds (a fresh sample is made and split when it is sent):
/// a million of them once held their last sample and its payloads too,
/// 10.7 GB that the collector under test lost to its page cache.
struct SimHost {
    id: Uuid,
    session: SenderSession,
    fake: FakeHost,
    /// Constant mode: the one sample sent every round.
    constant: Option<Constant>,
    samples: u64,
}

/// The unchanging sample of `--constant`, and its payloads as split at
/// `sealed_at` (split again when the second changes).
struct Constant {
    sample: crate::model::HostMeters,
    sealed_at: i64,
    payloads: Vec<Vec<u8>>,
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("t", "tenant", "tenant UUID (required)", "UUID");
    o.optopt("k", "key", "tenant key, base64 (required)", "BASE64");
    o.optopt(
        "a",
        "address",
        "collector address, loopback only (default 127.0.0.1)",
        "IP",
    );
    o.optopt("P", "port", "collector port (default 1047)", "PORT");
    o.optopt("n", "hosts", "simulated hosts (default 100)", "N");
    o.optopt("r", "rate", "datagrams per second (default 1000)", "N");
    o.optopt("d", "duration", "seconds to run (default 10)", "SECONDS");
    o.optopt("", "count", "stop after this many datagrams", "N");
    o.optopt(
        "",
        "rotate",
        "rotate a host's key every N samples (default 30)",
        "N",
    );
    o.optopt(
        "",
        "hostile",
        "also send hostile datagrams at this rate",
        "N",
    );
    o.optflag(
        "",
        "hostile-large",
        "hostile datagrams are large ones at a real host's session",
    );
    o.optopt(
        "",
        "hostname",
        "every simulated host reports NAME (default web-NNNNN.example.net)",
        "NAME",
    );
    o.optflag(
        "",
        "constant",
        "resend each host's first sample (no changes between samples)",
    );
    o.optopt(
        "",
        "full-disks",
        "hosts in a hundred with a disk nearly full (default 2; 100: the whole fleet changes status together)",
        "PERCENT",
    );
    o.optopt(
        "",
        "max-datagram",
        "largest datagram (default 1400)",
        "BYTES",
    );
    svc::cli::standard(&mut o);
    o
}

fn number(m: &getopts::Matches, name: &str, default: u64) -> Result<u64, String> {
    match m.opt_str(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name} {v:?} is not a number")),
    }
}

/// Run `opticon-loadgen`; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let m = match svc::cli::parse(
        "opticon-loadgen",
        &opts,
        args,
        "--tenant UUID --key BASE64 [options]",
        "",
    ) {
        Ok(m) => m,
        Err(status) => return status,
    };
    match generate(&m) {
        Ok(report) => {
            println!("{report}");
            0
        }
        Err(e) => svc::cli::usage_error("opticon-loadgen", &e),
    }
}

fn generate(m: &getopts::Matches) -> Result<String, String> {
    let tenant = m.opt_str("tenant").ok_or("--tenant is required")?;
    let tenant =
        Uuid::parse_str(&tenant).map_err(|_| format!("tenant {tenant:?} is not a UUID"))?;
    let key = TenantKey::from_base64(&m.opt_str("key").ok_or("--key is required")?)
        .map_err(|e| e.to_string())?;
    let ip: IpAddr = m
        .opt_str("address")
        .unwrap_or_else(|| "127.0.0.1".into())
        .parse()
        .map_err(|_| "--address is not an IP address")?;
    if !ip.is_loopback() {
        return Err(format!(
            "{ip} is not a loopback address: opticon-loadgen only loads this machine"
        ));
    }
    let port = u16::try_from(number(m, "port", 1047)?).map_err(|_| "--port is out of range")?;
    let (hosts, rate, duration) = (
        number(m, "hosts", 100)?.max(1),
        number(m, "rate", 1000)?.max(1),
        number(m, "duration", 10)?,
    );
    let count = number(m, "count", u64::MAX)?;
    let rotate = number(m, "rotate", 30)?.max(1);
    let max_datagram = number(m, "max-datagram", 1400)? as usize;
    let full_disks = number(m, "full-disks", crate::fleet::FULL_DISK_PERCENT)?;
    if full_disks > 100 {
        return Err(format!("--full-disks {full_disks} is more than 100"));
    }
    let to = SocketAddr::new(ip, port);
    let local: SocketAddr = if ip.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .map_err(|_| "bad local address")?;
    let sock = UdpSocket::bind(local).map_err(|e| format!("cannot open a socket: {e}"))?;
    let tenant_key = SealKey::new(&key.0);
    let now = crate::model::unix_now();

    let mut fleet = Vec::with_capacity(hosts as usize);
    for i in 0..hosts {
        let mut fake = FakeHost::in_fleet(i + 1, full_disks);
        if let Some(name) = m.opt_str("hostname") {
            fake.hostname = name;
        }
        let constant = if m.opt_present("constant") {
            let sample = fake.sample(now);
            let payloads = split_sample(now, &sample, max_datagram).map_err(|e| e.to_string())?;
            Some(Constant {
                sample,
                sealed_at: now,
                payloads,
            })
        } else {
            None
        };
        let session = SenderSession::new().map_err(|e| e.to_string())?;
        fleet.push(SimHost {
            id: Uuid::from_u64_pair(0x0b71_c0de_0000_0000 | i, i),
            session,
            fake,
            constant,
            samples: 0,
        });
    }

    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let hostile_rate = number(m, "hostile", 0)?;
    let hostile = (hostile_rate > 0)
        .then(|| {
            let sock = UdpSocket::bind(local).map_err(|e| format!("cannot open a socket: {e}"))?;
            let pool = if m.opt_present("hostile-large") {
                large_pool(&sock, to, &tenant_key, tenant, now)?
            } else {
                hostile_pool(tenant, now)?
            };
            Ok::<_, String>(std::thread::spawn(move || {
                send_hostile(&sock, to, &pool, hostile_rate, end)
            }))
        })
        .transpose()?;
    let constant = m.opt_present("constant");
    let (mut sent, mut auths, mut samples, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = Vec::with_capacity(max_datagram);
    let mut send = |d: &[u8], sent: &mut u64| {
        if sock.send_to(d, to).is_err() {
            errors += 1;
        }
        *sent += 1;
    };
    'run: loop {
        for h in &mut fleet {
            if Instant::now() >= end || sent >= count {
                break 'run;
            }
            if h.samples % rotate == 0 {
                if h.samples > 0 {
                    h.session.rotate_key().map_err(|e| e.to_string())?;
                }
                let d = h
                    .session
                    .auth_datagram(&tenant_key, tenant, h.id, now)
                    .map_err(|e| e.to_string())?;
                send(&d, &mut sent);
                auths += 1;
            }
            // A fresh sample each round; in constant mode the first one
            // again, with the time of now (the collector refuses sample
            // times far from its clock).
            let now = crate::model::unix_now();
            let fresh;
            let payloads = match &mut h.constant {
                Some(c) => {
                    if now != c.sealed_at {
                        c.payloads = split_sample(now, &c.sample, max_datagram)
                            .map_err(|e| e.to_string())?;
                        c.sealed_at = now;
                    }
                    &c.payloads
                }
                None => {
                    let sample = h.fake.sample_sorted();
                    let records = sample.iter().map(|(n, v)| (*n, v));
                    fresh = split_records(now, records, max_datagram).map_err(|e| e.to_string())?;
                    &fresh
                }
            };
            for p in payloads {
                h.session.seal_meter_into(p, &mut buf);
                send(&buf, &mut sent);
            }
            h.samples += 1;
            samples += 1;
            // Pace: never more than PACE_SLACK ahead of the target rate
            // (a sleep per datagram cost the load generator a fifth of
            // its CPU in context switches, on the box it measures).
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            let elapsed = start.elapsed();
            if due > elapsed + PACE_SLACK {
                std::thread::sleep(due - elapsed);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut report = format!(
        "sent {sent} datagrams ({auths} auth, {} meter) for {hosts} hosts, {samples} samples, in {secs:.2} s: {:.0}/s; {errors} send errors; {} samples",
        sent - auths,
        sent as f64 / secs,
        if constant { "constant" } else { "changing" }
    );
    if let Some(thread) = hostile {
        let counts = thread.join().map_err(|_| "the hostile sender failed")?;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        report.push_str(&format!("\nhostile: sent {total} datagrams"));
        for (reason, n) in counts {
            report.push_str(&format!(" {reason} {n}"));
        }
    }
    Ok(report)
}

/// Hostile datagrams, each labelled with the collector counter that
/// should count it.
fn hostile_pool(tenant: Uuid, now: i64) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let e = |e: std::io::Error| e.to_string();
    let mut noise = [0u8; 8];
    let mut pool = Vec::new();
    let wrong_key = SealKey::new(&crate::crypto::random_key().map_err(e)?);
    for i in 0..4096u32 {
        crate::crypto::random_bytes(&mut noise).map_err(e)?;
        let size =
            64 + (u32::from_le_bytes([noise[0], noise[1], noise[2], noise[3]]) % 961) as usize;
        let host = Uuid::from_u64_pair(0xbad, u64::from(i));
        let d = match i % 4 {
            0 => {
                let mut d = vec![0u8; size];
                crate::crypto::random_bytes(&mut d).map_err(e)?;
                d[0] = b'x';
                ("bad_magic", d)
            }
            1 => {
                let mut stranger = SenderSession::new().map_err(e)?;
                ("unknown_session", stranger.meter_datagram(&vec![0u8; size]))
            }
            2 => {
                let nobody = Uuid::from_u64_pair(0xdead, u64::from(i));
                let d = SenderSession::new()
                    .map_err(e)?
                    .auth_datagram(&wrong_key, nobody, host, now)
                    .map_err(e)?;
                ("unknown_tenant", d)
            }
            _ => {
                let d = SenderSession::new()
                    .map_err(e)?
                    .auth_datagram(&wrong_key, tenant, host, now)
                    .map_err(e)?;
                ("bad_mac", d)
            }
        };
        pool.push(d);
    }
    Ok(pool)
}

/// Large datagrams at the session of a real host (the tenant's key
/// opens it, as any customer's could): 64,000-byte ones, which a
/// collector refuses unread (`oversize`), and 15,000-byte ones within its
/// limit whose tags are broken (`bad_mac`, after the MAC work).
fn large_pool(
    sock: &UdpSocket,
    to: SocketAddr,
    tenant_key: &SealKey,
    tenant: Uuid,
    now: i64,
) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let e = |e: std::io::Error| e.to_string();
    let mut session = SenderSession::new().map_err(e)?;
    let host = Uuid::from_u64_pair(0x1a4e, 1);
    let auth = session
        .auth_datagram(tenant_key, tenant, host, now)
        .map_err(e)?;
    sock.send_to(&auth, to).map_err(e)?;
    let mut pool = Vec::new();
    for i in 0..64 {
        if i % 2 == 0 {
            pool.push(("oversize", session.meter_datagram(&vec![7u8; 64_000])));
        } else {
            let mut d = session.meter_datagram(&vec![7u8; 15_000]);
            let last = d.len() - 1;
            d[last] ^= 1;
            pool.push(("bad_mac", d));
        }
    }
    Ok(pool)
}

/// Send the pool round and round at `rate` until `end`; returns how many
/// of each kind went out.
fn send_hostile(
    sock: &UdpSocket,
    to: SocketAddr,
    pool: &[(&'static str, Vec<u8>)],
    rate: u64,
    end: Instant,
) -> Vec<(&'static str, u64)> {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    let start = Instant::now();
    let mut sent = 0u64;
    'run: loop {
        for (reason, d) in pool {
            if Instant::now() >= end {
                break 'run;
            }
            if sock.send_to(d, to).is_ok() {
                match counts.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((reason, 1)),
                }
            }
            sent += 1;
            if sent % 64 == 0 {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                let elapsed = start.elapsed();
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
            }
        }
    }
    counts
}
