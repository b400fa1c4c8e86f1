//! End to end with real processes: opticon-db creates a tenant, a
//! collector and an agent run on loopback, opticon-db reads the result.

use crate::common;

use common::{
    free_port, give_to_service_user, start_daemon, wait_for, Daemon, Dir, PATIENCE, TENANT,
};
use opticon::conf::{self, Node};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn db(dir: &Dir, args: &[&str]) -> (bool, String, String) {
    let root = dir.s("db");
    let mut all = vec!["--init", "-p", root.as_str()];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_opticon-db"))
        .args(&all)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The host's latest record as seen by opticon-db, if any.
fn record(dir: &Dir, host: &str) -> Option<Node> {
    let (ok, out, _) = db(dir, &["-t", TENANT, "-H", host, "host-show"]);
    ok.then(|| Node::Dict(conf::parse(&out).unwrap()))
}

fn status(dir: &Dir, host: &str) -> Option<String> {
    record(dir, host)?
        .path("status")
        .and_then(Node::as_str)
        .map(String::from)
}

#[test]
fn agent_to_collector_to_database() {
    let dir = Dir::new("e2e-flow");
    let notify = format!(
        "notify {{ call \"cat >> {}\" debounce 1 batch 1 }}",
        dir.s("notified")
    );
    let (key, port) = tenant_and_collector(
        &dir,
        &format!(
            "interval {{ write 1 stale 3 tenant_refresh 1 }}\nping {{ interval 1 }}\n{notify}"
        ),
    );
    // An explicit meter config that does not exist stops the collector
    // with one clear line.
    let out = Command::new(env!("CARGO_BIN_EXE_opticon-collector"))
        .args([
            "-f",
            "-c",
            &dir.s("collector.conf"),
            "-m",
            &dir.s("none.conf"),
            "-l",
            "-",
            "-p",
            &dir.s("x.pid"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.conf"));
    // A busy test machine must not turn the host WARN by itself: the
    // default CPU and load watchers are moved out of reach.
    std::fs::write(
        dir.path("meter.conf"),
        "meter { pcpu { type frac warning { cmp gt val 1000 } alert { cmp gt val 1000 } critical { cmp gt val 1000 } }
         loadavg { type frac warning { cmp gt val 1000 } alert { cmp gt val 1000 } critical { cmp gt val 1000 } } }",
    )
    .unwrap();
    let mut collector = Daemon(
        Command::new(env!("CARGO_BIN_EXE_opticon-collector"))
            .args([
                "-f",
                "-c",
                &dir.s("collector.conf"),
                "-m",
                &dir.s("meter.conf"),
                "-l",
                &dir.s("collector.log"),
                "-p",
                &dir.s("collector.pid"),
                "-L",
                "DEBUG",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let host = "11111111-2222-3333-4444-555555555555";
    std::fs::write(
        dir.path("agent.conf"),
        format!("collector {{ address 127.0.0.1 port {port} tenant {TENANT} key \"{key}\" host {host} }}\ninterval {{ fast 1 slow 2 }}\n"),
    )
    .unwrap();
    let agent = start_agent(&dir);

    // Within seconds the host is stored, OK, with the agent's meters.
    let complete = || {
        record(&dir, host).is_some_and(|r| {
            r.path("status").and_then(Node::as_str) == Some("OK") && r.path("mem/total").is_some()
        })
    };
    assert!(
        wait_for(PATIENCE, complete),
        "no complete OK record; log:\n{}",
        std::fs::read_to_string(dir.path("collector.log")).unwrap_or_default()
    );
    let rec = record(&dir, host).unwrap();
    assert!(
        rec.path("hostname").is_some() && rec.path("mem/total").is_some(),
        "{}",
        rec.to_json(false)
    );
    assert_eq!(
        rec.path("link/ip").and_then(Node::as_str),
        Some("127.0.0.1")
    );
    // Pings of the agent's address, where this machine allows ICMP
    // sockets (root, or net.ipv4.ping_group_range).
    let log = std::fs::read_to_string(dir.path("collector.log")).unwrap_or_default();
    if log.contains("ping: IPv4 raw socket") || log.contains("ping: IPv4 unprivileged") {
        let pinged = || {
            record(&dir, host).is_some_and(|r| {
                r.path("link/rtt")
                    .and_then(Node::as_f64)
                    .is_some_and(|ms| ms < 100.0)
                    && r.path("link/loss").and_then(Node::as_f64) == Some(0.0)
            })
        };
        assert!(
            wait_for(PATIENCE, pinged),
            "no link/rtt and link/loss: {}",
            record(&dir, host).unwrap().to_json(false)
        );
    } else {
        common::unavailable(&format!("ping (no ICMP socket: {log})"));
    }

    // Garbage and forged datagrams are counted, never stored.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [
        &b"hello"[..],
        &b"OPT\x09M123456789012345678901234567890"[..],
    ] {
        junk.send_to(d, ("127.0.0.1", port)).unwrap();
    }

    // A watcher below the current value: WARN after enough cycles; back
    // to OK after it is removed.
    warn_on_mem_total(&dir, &[]);
    assert!(
        wait_for(Duration::from_secs(20), || status(&dir, host).as_deref()
            == Some("WARN")),
        "never WARN"
    );
    // Other default watchers may fire too on a busy machine (pcpu).
    let problems = record(&dir, host)
        .unwrap()
        .path("problems")
        .map(|p| p.to_json(false))
        .unwrap_or_default();
    assert!(problems.contains("\"mem/total\""), "{problems}");
    // WARN lasts past the notification debounce (1 s here) before the
    // watcher goes: until its notification was sent.
    let notified = |new: &str| {
        wait_for(PATIENCE, || {
            std::fs::read_to_string(dir.path("notified")).is_ok_and(|t| {
                t.lines().any(|l| {
                    conf::parse(l).is_ok_and(|d| d.get("new").and_then(Node::as_str) == Some(new))
                })
            })
        })
    };
    assert!(notified("WARN"), "no notification of WARN");
    let (ok, _, err) = db(
        &dir,
        &[
            "-t",
            TENANT,
            "watcher-delete",
            "--meter",
            "mem/total",
            "--level",
            "warning",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        wait_for(Duration::from_secs(20), || status(&dir, host).as_deref()
            == Some("OK")),
        "never back to OK"
    );
    // The host's own watcher (host.conf, replaced by opticon-db: seen at
    // the next cycle), then host.conf edited in place by hand (seen
    // within 16 cycles, 16 s here).
    warn_on_mem_total(&dir, &["-H", host]);
    assert!(
        wait_for(Duration::from_secs(20), || status(&dir, host).as_deref()
            == Some("WARN")),
        "never WARN by the host's watcher"
    );
    let host_conf = dir.path("db").join(TENANT).join(host).join("host.conf");
    let edited = std::fs::read_to_string(&host_conf)
        .unwrap()
        .replace("\"gt\"", "\"lt\"");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&host_conf)
        .and_then(|mut f| std::io::Write::write_all(&mut f, edited.as_bytes()))
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(40), || status(&dir, host).as_deref()
            == Some("OK")),
        "host.conf edited in place never applied"
    );

    // The agent stops: the host goes STALE.
    drop(agent);
    assert!(
        wait_for(PATIENCE, || status(&dir, host).as_deref() == Some("STALE")),
        "never STALE"
    );
    assert!(notified("STALE"), "no notification of STALE");

    // SIGHUP reloads both files.
    // SAFETY: signals the collector this test started.
    unsafe { libc::kill(collector.0.id() as i32, libc::SIGHUP) };
    assert!(
        wait_for(PATIENCE, || std::fs::read_to_string(
            dir.path("collector.log")
        )
        .unwrap_or_default()
        .contains("configuration reloaded")),
        "no reload"
    );

    // SIGTERM: a last write cycle, a clean exit, a clean database.
    // SAFETY: signals the collector this test started.
    unsafe { libc::kill(collector.0.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + PATIENCE;
    let mut code = None;
    while code.is_none() && Instant::now() < end {
        code = collector.0.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(code.is_some_and(|c| c.success()), "{code:?}");
    let log = std::fs::read_to_string(dir.path("collector.log")).unwrap();
    assert!(
        log.contains("bad_magic") && log.contains("bad_version"),
        "{log}"
    );
    assert!(log.contains("Status change OK -> WARN"), "{log}");
    // What the collector published for the API and operators.
    let tenant_dir = dir.path("db").join(TENANT);
    let read = |f: &str| {
        Node::Dict(conf::parse(&std::fs::read_to_string(tenant_dir.join(f)).unwrap()).unwrap())
    };
    let overview = read("tenant.overview");
    let entry = overview
        .path("overview")
        .and_then(|o| o.as_dict())
        .and_then(|o| o.get(host))
        .expect("host in overview");
    assert_eq!(
        entry
            .as_dict()
            .unwrap()
            .get("status")
            .and_then(Node::as_str),
        Some("STALE")
    );
    assert_eq!(read("tenant.summary").path("stale"), Some(&Node::Int(1)));
    let metrics = collector_metrics(&dir).expect("metrics");
    assert!(
        metrics.path("accepted").and_then(Node::as_int).unwrap() > 5,
        "{}",
        metrics.to_json(false)
    );
    assert_eq!(metrics.path("rejected/bad_magic"), Some(&Node::Int(1)));
    assert_eq!(metrics.path("hosts/STALE"), Some(&Node::Int(1)));
    assert!(metrics.path("rcvbuf").and_then(Node::as_int).unwrap() > 0);
    // The open sessions, for the API, without keys.
    let sessions = std::fs::read_to_string(dir.path("db/collector.sessions")).unwrap();
    let doc = conf::parse(&sessions).unwrap();
    let Some(Node::Array(list)) = doc.get("session") else {
        panic!("{sessions}")
    };
    assert!(
        list.iter()
            .any(|s| s.path("hostid").and_then(Node::as_str) == Some(host)),
        "{sessions}"
    );
    assert!(!sessions.contains("key"), "{sessions}");
    // The notification command got a JSON document per lasting change.
    let notified = std::fs::read_to_string(dir.path("notified")).unwrap_or_default();
    let changes: Vec<Node> = notified
        .lines()
        .map(|l| Node::Dict(conf::parse(l).unwrap()))
        .collect();
    let pairs: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            (
                c.path("old").and_then(Node::as_str).unwrap().into(),
                c.path("new").and_then(Node::as_str).unwrap().into(),
            )
        })
        .collect();
    assert!(
        pairs.contains(&("OK".into(), "WARN".into())),
        "{notified}\n{log}"
    );
    assert!(pairs.iter().any(|(_, new)| new == "STALE"), "{notified}");
    let warn = changes
        .iter()
        .find(|c| c.path("new").and_then(Node::as_str) == Some("WARN"))
        .unwrap();
    assert_eq!(warn.path("host").and_then(Node::as_str), Some(host));
    assert_eq!(
        warn.path("problems").map(|p| p.to_json(false)).as_deref(),
        Some("[\"mem/total\"]")
    );
    assert!(warn
        .path("hostname")
        .and_then(Node::as_str)
        .is_some_and(|h| !h.is_empty()));
    let (ok, out, _) = db(&dir, &["-t", TENANT, "fsck"]);
    assert!(ok && out.ends_with("0 problems\n"), "{out}");
    let (_, hostlog, _) = db(&dir, &["-t", TENANT, "-H", host, "host-log"]);
    assert!(
        hostlog.contains("Status change WARN -> OK") && hostlog.contains("-> STALE"),
        "{hostlog}"
    );
}

/// A tenant in a fresh database owned by the service user (as installed:
/// the collector drops to that user, and this test may run as root), and
/// a collector config on a free port with `extra` appended; returns the
/// tenant key and the port.
/// A warning watcher that any host fires (`mem/total` over 1), set for
/// the tenant or, with `scope` `["-H", host]`, for one host.
fn warn_on_mem_total(dir: &Dir, scope: &[&str]) {
    let mut args = vec!["-t", TENANT];
    args.extend_from_slice(scope);
    args.extend_from_slice(&[
        "watcher-set",
        "--meter",
        "mem/total",
        "--level",
        "warning",
        "--match",
        "gt",
        "--value",
        "1",
    ]);
    let (ok, _, err) = db(dir, &args);
    assert!(ok, "{err}");
}

fn tenant_and_collector(dir: &Dir, extra: &str) -> (String, u16) {
    tenant_and_collector_net(dir, "", extra)
}

/// [`tenant_and_collector`] with more keys in the network section.
fn tenant_and_collector_net(dir: &Dir, network: &str, extra: &str) -> (String, u16) {
    let (ok, out, err) = db(dir, &["tenant-create", "--tenant", TENANT]);
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("AES Key: "))
        .unwrap()
        .to_string();
    give_to_service_user(&dir.path("db"));
    let port = free_port();
    std::fs::write(
        dir.path("collector.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} {network} }}
database {{ path {} }}
{extra}
",
            dir.s("db")
        ),
    )
    .unwrap();
    (key, port)
}

fn start_agent(dir: &Dir) -> Daemon {
    start_daemon(dir, env!("CARGO_BIN_EXE_opticon-agent"), "agent")
}

fn start_collector(dir: &Dir) -> Daemon {
    start_daemon(dir, env!("CARGO_BIN_EXE_opticon-collector"), "collector")
}

/// Time of the host's last stored record, from opticon-db host-list.
fn last_record(dir: &Dir) -> Option<String> {
    let (ok, out, _) = db(dir, &["-t", TENANT, "host-list", "--json"]);
    if !ok {
        return None;
    }
    let doc = Node::Dict(conf::parse(&out).ok()?);
    let Some(Node::Array(hosts)) = doc.path("host") else {
        return None;
    };
    hosts
        .first()?
        .path("end")
        .and_then(Node::as_str)
        .map(String::from)
}

/// A collector storing every second and an agent sending to it every
/// second, on a new tenant in `dir`.
fn collector_with_fast_agent(dir: &Dir) -> (Daemon, Daemon) {
    let (key, port) = tenant_and_collector(dir, "interval { write 1 stale 5 }");
    std::fs::write(
        dir.path("agent.conf"),
        format!("collector {{ address 127.0.0.1 port {port} tenant {TENANT} key \"{key}\" }}\ninterval {{ fast 1 slow 2 }}\n"),
    )
    .unwrap();
    (start_collector(dir), start_agent(dir))
}

#[test]
fn a_killed_collector_restarts_and_data_flow_resumes() {
    let dir = Dir::new("e2e-restart");
    let (collector, _agent) = collector_with_fast_agent(&dir);
    assert!(
        wait_for(PATIENCE, || last_record(&dir).is_some()),
        "no record before the kill"
    );
    // SIGKILL: no shutdown work at all, sessions lost (dropping the
    // daemon waits for it, so its socket is closed).
    drop(collector);
    let before = last_record(&dir).unwrap();
    let _collector = start_collector(&dir);
    // The agent opens its session again with its next send: records
    // continue, from the same host, and the store stays clean.
    assert!(
        wait_for(PATIENCE, || last_record(&dir).is_some_and(|t| t > before)),
        "no record after the restart (last {before}); log:\n{}",
        std::fs::read_to_string(dir.path("collector.log")).unwrap_or_default()
    );
    let (_, hosts, _) = db(&dir, &["-t", TENANT, "host-list"]);
    assert_eq!(
        hosts.lines().count(),
        2,
        "one host, not a new one per session: {hosts}"
    );
    let (ok, out, _) = db(&dir, &["-t", TENANT, "fsck"]);
    assert!(ok && out.ends_with("0 problems\n"), "{out}");
}

/// Every `host.log` under `dir`, read as text.
fn host_logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push_str(&host_logs(&path));
        } else if path.file_name().is_some_and(|n| n == "host.log") {
            // Fixed records: the messages are text among binary fields.
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_default(),
            ));
        }
    }
    out
}

/// A host's state is restored at a restart, not taken for a new host's,
/// even when the tenant's published host index does not hold it but is
/// stale: `make_stale` puts an index without the host in place and says
/// why it is stale. The collector looks in the day files for hosts that
/// index does not hold unless it is current.
fn restart_restores_the_host_behind(make_stale: impl Fn(&std::path::Path)) {
    let dir = Dir::new("e2e-stale-index");
    let (collector, agent) = collector_with_fast_agent(&dir);
    let tenant_dir = dir.path("db").join(TENANT);
    let published = tenant_dir.join("tenant.hosts");
    assert!(
        wait_for(PATIENCE, || last_record(&dir).is_some()
            && published.exists()),
        "no record and host index before the kill"
    );
    drop(agent);
    drop(collector);
    let before = last_record(&dir).unwrap();
    let unset = |logs: &str| logs.matches("Status change UNSET").count();
    assert_eq!(
        unset(&host_logs(&tenant_dir)),
        1,
        "{}",
        host_logs(&tenant_dir)
    );
    opticon::db::index::write(&tenant_dir, &mut []).unwrap();
    make_stale(&tenant_dir);
    let _collector = start_collector(&dir);
    let _agent = start_agent(&dir);
    assert!(
        wait_for(PATIENCE, || last_record(&dir).is_some_and(|t| t > before)),
        "no record after the restart (last {before})"
    );
    // Restored: its status went on from the stored one, not from UNSET.
    let logs = host_logs(&tenant_dir);
    assert_eq!(unset(&logs), 1, "{logs}");
}

/// Set a file's modification time.
fn set_mtime(path: &std::path::Path, time: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap();
}

/// The index is older than the day files, as a collector killed between
/// writing a day index and publishing the host index leaves it.
#[test]
fn a_restart_behind_a_stale_host_index_still_restores_the_host() {
    restart_restores_the_host_behind(|tenant_dir| {
        let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        set_mtime(&tenant_dir.join("tenant.hosts"), old);
    });
}

/// The index is newer than the day files, but a tool changed the
/// tenant's hosts after it (`tenant.changed`).
#[test]
fn a_restart_after_a_tool_changed_hosts_still_restores_the_host() {
    restart_restores_the_host_behind(|tenant_dir| {
        let later = std::time::SystemTime::now() + Duration::from_secs(10);
        set_mtime(&tenant_dir.join("tenant.changed"), later);
    });
}

#[test]
fn the_load_generator_feeds_a_real_collector() {
    let dir = Dir::new("e2e-load");
    let (key, port) = tenant_and_collector(&dir, "interval { write 1 }");
    let collector = start_collector(&dir);
    let refused = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args(["--tenant", TENANT, "--key", &key, "--address", "192.0.2.1"])
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(2),
        "only loopback may be loaded"
    );
    let load = loadgen(
        &key,
        port,
        &[
            "--hosts",
            "50",
            "--rate",
            "2000",
            // Exactly 3,000 datagrams, however slow a loaded machine is.
            "--count",
            "3000",
            "--duration",
            "60",
        ],
    );
    assert!(load.status.success());
    let report = String::from_utf8_lossy(&load.stdout).to_string();
    let sent: u64 = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(sent, 3000, "{report}");
    let metrics = || collector_metrics(&dir);
    assert!(
        wait_for(PATIENCE, || metrics()
            .and_then(|m| m.path("accepted").and_then(Node::as_int))
            == Some(sent as i64)),
        "sent {sent}, metrics {:?}",
        metrics().map(|m| m.to_json(false))
    );
    // All 50 judged (the synthetic fleet's 97 % full disk soon makes them
    // WARN or worse, as it should).
    let judged = |m: &Node| {
        ["OK", "WARN", "ALERT", "CRIT"]
            .iter()
            .filter_map(|s| m.path(&format!("hosts/{s}"))?.as_int())
            .sum::<i64>()
    };
    assert!(wait_for(PATIENCE, || metrics().is_some_and(|m| judged(&m) == 50)));
    let (_, hosts, _) = db(&dir, &["-t", TENANT, "host-list"]);
    assert_eq!(hosts.lines().count(), 51, "{hosts}");
    drop(collector);
}

/// Run opticon-loadgen against the test's collector and tenant.
fn loadgen(key: &str, port: u16, args: &[&str]) -> std::process::Output {
    let port = port.to_string();
    let mut all = vec!["--tenant", TENANT, "--key", key, "--port", &port];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args(&all)
        .output()
        .unwrap()
}

/// What the running collector last published (`--metrics`).
fn collector_metrics(dir: &Dir) -> Option<Node> {
    let out = Command::new(env!("CARGO_BIN_EXE_opticon-collector"))
        .args(["--metrics", "-c", &dir.s("collector.conf")])
        .output()
        .ok()?;
    conf::parse(&String::from_utf8_lossy(&out.stdout))
        .ok()
        .map(Node::Dict)
}

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A tenant's key holder floods the collector with large datagrams at a
/// real session (garbage tags): memory stays within the queue's byte
/// bound, datagrams above network/max_datagram are refused unread, and
/// the legitimate samples are stored all the same.
#[test]
fn a_flood_of_large_datagrams_is_bounded_in_bytes() {
    use opticon::crypto::SealKey;
    use opticon::model::TenantKey;
    use opticon::wire::{split_sample, SenderSession};
    let dir = Dir::new("e2e-oversize");
    let (key, port) = tenant_and_collector_net(
        &dir,
        "queue_bytes 4194304 max_datagram 16384",
        "interval { write 1 }\nping { enabled false }",
    );
    let collector = start_collector(&dir);
    let pid = collector.0.id();
    let base = rss_kb(pid);
    let tenant: uuid::Uuid = TENANT.parse().unwrap();
    let host = uuid::Uuid::from_u128(0x5eed);
    let tenant_key = SealKey::new(&TenantKey::from_base64(&key).unwrap().0);
    let mut agent = SenderSession::new().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", port);
    let now = opticon::model::unix_now();
    sock.send_to(
        &agent.auth_datagram(&tenant_key, tenant, host, now).unwrap(),
        to,
    )
    .unwrap();
    // Within the size limit, sealed for the real session, tag broken.
    let mut big = agent.meter_datagram(&vec![7u8; 15_000]);
    let last = big.len() - 1;
    big[last] ^= 1;
    let huge = agent.meter_datagram(&vec![7u8; 60_000]);
    let mut peak = base;
    for i in 0..6000 {
        let _ = sock.send_to(&big, to);
        if i % 10 == 0 {
            let _ = sock.send_to(&huge, to);
        }
        if i % 500 == 0 {
            peak = peak.max(rss_kb(pid));
        }
    }
    // Legitimate samples still go through.
    let mut sample = common::representative_host();
    sample
        .set(
            opticon::model::MeterName::new("after/flood").unwrap(),
            opticon::model::MeterValue::Scalar(opticon::model::Scalar::Int(1)),
            now,
        )
        .unwrap();
    let metrics = || collector_metrics(&dir);
    let stored =
        || record(&dir, &host.to_string()).is_some_and(|r| r.path("after/flood").is_some());
    assert!(
        wait_for(PATIENCE, || {
            for p in split_sample(opticon::model::unix_now(), &sample, 1400).unwrap() {
                let _ = sock.send_to(&agent.meter_datagram(&p), to);
            }
            peak = peak.max(rss_kb(pid));
            std::thread::sleep(Duration::from_millis(200));
            stored()
        }),
        "the legitimate sample was not stored: {:?}",
        metrics().map(|m| m.to_json(false))
    );
    // Every datagram of the flood is accounted for, as it is published.
    let count = |m: &Node, k: &str| m.path(k).and_then(Node::as_int).unwrap_or(0);
    let counted = |m: &Node| {
        count(m, "rejected/oversize") > 0
            && count(m, "rejected/bad_mac") + count(m, "queue_drops") >= 1000
    };
    // On a loaded machine the kernel drops most of a burst before the
    // collector reads it: the flood goes on until a thousand are counted.
    assert!(
        wait_for(PATIENCE, || {
            if metrics().is_some_and(|m| counted(&m)) {
                return true;
            }
            for i in 0..500 {
                let _ = sock.send_to(&big, to);
                if i % 10 == 0 {
                    let _ = sock.send_to(&huge, to);
                }
            }
            peak = peak.max(rss_kb(pid));
            false
        }),
        "{:?}",
        metrics().map(|m| m.to_json(false))
    );
    // 4 MB of queue, plus 20 MB for everything else the flood touches.
    assert!(
        peak < base + 4096 + 20 * 1024,
        "RSS grew from {base} kB to {peak} kB"
    );
}

/// A host deleted while its agent still sends comes back as a new host
/// within a cycle or two, without an error per cycle.
#[test]
fn a_host_deleted_while_sending_starts_afresh() {
    let dir = Dir::new("e2e-delete");
    let (key, port) = tenant_and_collector(&dir, "interval { write 1 }\nping { enabled false }");
    let host = "22222222-3333-4444-5555-666666666666";
    std::fs::write(
        dir.path("agent.conf"),
        format!("collector {{ address 127.0.0.1 port {port} tenant {TENANT} key \"{key}\" host {host} }}\ninterval {{ fast 1 slow 2 }}\n"),
    )
    .unwrap();
    let _collector = start_collector(&dir);
    let _agent = start_agent(&dir);
    assert!(
        wait_for(PATIENCE, || record(&dir, host).is_some()),
        "no record"
    );
    let (ok, _, err) = db(&dir, &["-t", TENANT, "-H", host, "host-delete"]);
    assert!(ok, "{err}");
    let deleted = opticon::model::unix_now();
    // The deletion marks the tenant's hosts changed: the collector looks
    // at every host directory of the tenant at its next cycle.
    let mark = dir.path("db").join(TENANT).join("tenant.changed");
    assert!(mark.exists(), "host-delete left no {}", mark.display());
    // Back, with records only from after the deletion.
    assert!(
        wait_for(PATIENCE, || {
            let (ok, out, _) = db(&dir, &["-t", TENANT, "host-list", "--json"]);
            ok && out.contains(host)
                && record(&dir, host).is_some_and(|r| r.path("hostname").is_some())
        }),
        "the host never came back"
    );
    let (_, export, _) = db(&dir, &["-t", TENANT, "-H", host, "host-export"]);
    let first: i64 = export
        .lines()
        .next()
        .and_then(|l| conf::parse(l).ok())
        .and_then(|d| d.get("time").and_then(Node::as_int))
        .unwrap_or(0);
    assert!(
        first >= deleted,
        "a record from before the deletion survived"
    );
    let log = std::fs::read_to_string(dir.path("collector.log")).unwrap();
    assert!(!log.contains("No such file"), "{log}");
    assert!(log.contains("was deleted: recording it afresh"), "{log}");
}

/// SIGTERM during a write cycle makes that cycle the last: the collector
/// exits after it without another one. A tool holding the tenant's day
/// files makes every cycle wait a second for them (and skip the tenant,
/// with one warning), so the signal lands in a cycle or just before one;
/// either way exactly one cycle follows it.
#[test]
fn sigterm_during_a_write_cycle_ends_with_that_cycle() {
    let dir = Dir::new("e2e-term-cycle");
    let (key, port) = tenant_and_collector(&dir, "interval { write 2 }\nping { enabled false }");
    let collector = start_collector(&dir);
    let load = loadgen(
        &key,
        port,
        &["--hosts", "20", "--count", "100", "--duration", "60"],
    );
    assert!(load.status.success());
    assert!(
        wait_for(PATIENCE, || last_record(&dir).is_some()),
        "no record"
    );
    let mut tool = opticon::db::TenantStore::new(&dir.path("db").join(TENANT));
    tool.lock().unwrap();
    let skipped = "records not stored this cycle";
    let log = || std::fs::read_to_string(dir.path("collector.log")).unwrap_or_default();
    common::wait_for_log(&dir.path("collector.log"), skipped);
    // Into the next cycle: they start on even seconds and last one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_nanos((now.as_nanos() % 2_000_000_000) as u64);
    std::thread::sleep(Duration::from_secs(2) - into + Duration::from_millis(500));
    let before = log().matches(skipped).count();
    // SAFETY: signals the collector this test started.
    unsafe { libc::kill(collector.0.id() as i32, libc::SIGTERM) };
    let mut collector = collector;
    let end = Instant::now() + PATIENCE;
    let mut code = None;
    while code.is_none() && Instant::now() < end {
        code = collector.0.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(code.is_some_and(|c| c.success()), "{code:?}: {}", log());
    let after = log().matches(skipped).count();
    assert_eq!(after - before, 1, "one cycle after the signal: {}", log());
    assert!(log().contains("exiting on signal"), "{}", log());
}

/// One tenant cannot crowd out the others: new hosts past its limit are
/// refused, counted per tenant, logged, and shown by opticon-db; a
/// tenant's metadata sets its own limits.
#[test]
fn a_tenant_is_held_to_its_limits() {
    let dir = Dir::new("e2e-limits");
    let (key, port) = tenant_and_collector(
        &dir,
        "interval { write 1 tenant_refresh 1 }\nping { enabled false }\nlimits { max_hosts 5 max_host_bytes_per_cycle 100000 }",
    );
    let _collector = start_collector(&dir);
    let load = |hosts: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
            .args([
                "--tenant",
                TENANT,
                "--key",
                &key,
                "--port",
                &port.to_string(),
            ])
            .args([
                "--hosts",
                hosts,
                "--rate",
                "1000",
                "--count",
                "400",
                "--duration",
                "60",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    load("12");
    let tenant_figure = |k: &str| {
        collector_metrics(&dir)
            .and_then(|m| {
                m.path(&format!("tenants/{TENANT}/{k}"))
                    .and_then(Node::as_int)
            })
            .unwrap_or(0)
    };
    assert!(
        wait_for(PATIENCE, || tenant_figure("hosts") == 5
            && tenant_figure("refused_hosts") > 0),
        "hosts {} refused {}",
        tenant_figure("hosts"),
        tenant_figure("refused_hosts")
    );
    let (_, hosts, _) = db(&dir, &["-t", TENANT, "host-list"]);
    assert!(
        wait_for(PATIENCE, || db(&dir, &["-t", TENANT, "host-list"])
            .1
            .lines()
            .count()
            == 6),
        "{hosts}"
    );
    let (ok, shown, _) = db(&dir, &["-t", TENANT, "tenant-show"]);
    assert!(
        ok && shown.contains("5 hosts") && shown.contains("max_hosts: the collector's default"),
        "{shown}"
    );
    let log = std::fs::read_to_string(dir.path("collector.log")).unwrap();
    assert!(log.contains("over its limits"), "{log}");
    // The tenant's own, smaller byte budget: its hosts' payloads refused.
    let (ok, _, err) = db(
        &dir,
        &[
            "-t",
            TENANT,
            "tenant-set-metadata",
            "max_host_bytes_per_cycle",
            "600",
        ],
    );
    assert!(ok, "{err}");
    let before = tenant_figure("refused_bytes");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        wait_for(PATIENCE, || {
            load("5");
            tenant_figure("refused_bytes") > before
        }),
        "no payload refused over max_host_bytes_per_cycle"
    );
    let (_, shown, _) = db(&dir, &["-t", TENANT, "tenant-show"]);
    assert!(shown.contains("max_host_bytes_per_cycle: 600"), "{shown}");
}
