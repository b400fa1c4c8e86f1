//! `opticon-agent` as a process against a real UDP socket on 127.0.0.1.

use crate::common;

use common::{Dir, PATIENCE};
use opticon::crypto::SealKey;
use opticon::model::binary::apply_payload;
use opticon::model::{HostMeters, MeterValue};
use opticon::wire::{peek, Datagram, Rejection, ReplayWindow, DEFAULT_MAX_SKEW};
use std::collections::{HashMap, HashSet};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";
const KEY: &str = "hKRiT9XyhcysW520abAnANt+0sjPFzIfd0v/OxGdAKU=";

/// A minimal collector: opens sessions and merges samples.
struct Receiver {
    sock: UdpSocket,
    key: SealKey,
    sessions: HashMap<u64, (SealKey, ReplayWindow)>,
    session_keys: HashSet<[u8; 32]>,
    hosts: HashMap<u64, HostMeters>,
    seen_auth: HashSet<Vec<u8>>,
    resends: usize,
    meters_ok: usize,
    rejected: Vec<Rejection>,
    largest: usize,
}

impl Receiver {
    fn new() -> Receiver {
        Receiver::on("127.0.0.1:0")
    }

    fn on(addr: &str) -> Receiver {
        let sock = UdpSocket::bind(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let key: [u8; 32] = opticon::base64::decode(KEY).unwrap().try_into().unwrap();
        Receiver {
            sock,
            key: SealKey::new(&key),
            sessions: HashMap::new(),
            session_keys: HashSet::new(),
            hosts: HashMap::new(),
            seen_auth: HashSet::new(),
            resends: 0,
            meters_ok: 0,
            rejected: Vec::new(),
            largest: 0,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn handle(&mut self, d: &[u8]) {
        self.largest = self.largest.max(d.len());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        match peek(d) {
            Ok(Datagram::Auth(a)) => {
                if !self.seen_auth.insert(d.to_vec()) {
                    self.resends += 1;
                }
                let mut fresh = ReplayWindow::new();
                let window = match self.sessions.get_mut(&a.session) {
                    Some((_, w)) => w,
                    None => &mut fresh,
                };
                match a.open(&self.key, Some(window), now, DEFAULT_MAX_SKEW) {
                    Ok(body) => {
                        let w = window.clone();
                        self.session_keys.insert(body.session_key);
                        self.sessions
                            .insert(a.session, (SealKey::new(&body.session_key), w));
                    }
                    Err(e) => self.rejected.push(e),
                }
            }
            Ok(Datagram::Meter(m)) => {
                let Some((key, window)) = self.sessions.get_mut(&m.session) else {
                    self.rejected.push(Rejection::UnknownSession);
                    return;
                };
                let mut plain = Vec::new();
                match m.open(key, window, &mut plain) {
                    Ok(p) => {
                        apply_payload(self.hosts.entry(m.session).or_default(), p).unwrap();
                        self.meters_ok += 1;
                    }
                    Err(e) => self.rejected.push(e),
                }
            }
            Err(e) => self.rejected.push(e),
        }
    }

    fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        let mut buf = [0u8; 65536];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let data = buf[..n].to_vec();
                self.handle(&data);
            }
        }
    }

    /// Receive until `done` holds (checked after every datagram and
    /// every read timeout), failing after [`PATIENCE`] with `what`.
    fn pump_until(&mut self, what: &str, mut done: impl FnMut(&Receiver) -> bool) {
        let end = Instant::now() + PATIENCE;
        let mut buf = [0u8; 65536];
        while !done(self) {
            assert!(
                Instant::now() < end,
                "{what}: not within {PATIENCE:?}; {} samples, rejected {:?}",
                self.meters_ok,
                self.rejected
            );
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let data = buf[..n].to_vec();
                self.handle(&data);
            }
        }
    }

    fn merged(&self) -> HostMeters {
        let mut all = HostMeters::new();
        for h in self.hosts.values() {
            for (n, m) in h.iter() {
                all.set(n.clone(), m.value.clone(), 0).unwrap();
            }
        }
        all
    }
}

fn config(port: u16, extra: &str) -> String {
    format!(
        "collector {{ address 127.0.0.1 port {port} tenant {TENANT} key \"{KEY}\" }}\n\
         interval {{ fast 1 slow 2 key_rotation 2 auth_resend 1 auth_resend_chance 100 }}\n{extra}"
    )
}

/// A running agent, killed when the test ends (passed or not), so no
/// orphan outlives a failed test.
struct Agent(Child);

impl std::ops::Deref for Agent {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Agent {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(dir: &Dir, conf: &str, args: &[&str]) -> Agent {
    std::fs::write(dir.path("agent.conf"), conf).unwrap();
    let conf = dir.path("agent.conf");
    let log = dir.path("agent.log");
    let pid = dir.path("agent.pid");
    let mut all = vec![
        "-c",
        conf.to_str().unwrap(),
        "-l",
        log.to_str().unwrap(),
        "-p",
        pid.to_str().unwrap(),
        "-L",
        "DEBUG",
    ];
    all.extend_from_slice(args);
    let child = Command::new(env!("CARGO_BIN_EXE_opticon-agent"))
        .args(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Agent(child)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals a child process of this test.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn agent_pushes_sealed_samples_and_recovers_from_a_collector_restart() {
    let dir = Dir::new("agent-push");
    let mut rx = Receiver::new();
    // A probe that hangs must not hold up the others or the sends.
    let probes = r#"probes { slow { type exec call "sleep 20" interval 1 }
                  hello { type exec call "echo '{\"hello\": 42}'" frequency high } }"#;
    let dump = dir.path("dump");
    let mut child = agent(
        &dir,
        &config(rx.port(), probes),
        &["-f", "-D", dump.to_str().unwrap()],
    );
    let wanted = [
        "hello",
        "hostname",
        "os/kernel",
        "mem/total",
        "loadavg",
        "df/mount",
        "uptime",
        "agent/v",
        "pcpu",
        "net/in_kbs",
    ];
    rx.pump_until("4 samples, 2 session keys, a resend, every meter", |rx| {
        let all = rx.merged();
        rx.meters_ok >= 4
            && rx.session_keys.len() >= 2
            && rx.resends >= 1
            && wanted.iter().all(|m| all.get(m).is_some())
    });

    assert!(
        !rx.sessions.is_empty(),
        "no auth datagram opened; rejected: {:?}",
        rx.rejected
    );
    assert!(
        rx.meters_ok >= 4,
        "{} meter datagrams; rejected {:?}",
        rx.meters_ok,
        rx.rejected
    );
    // A resent auth datagram whose original arrived is refused as a
    // replay, exactly as a collector counts it; nothing else is refused.
    let replays = rx
        .rejected
        .iter()
        .filter(|r| **r == Rejection::Replay)
        .count();
    assert_eq!(replays, rx.resends, "{:?}", rx.rejected);
    assert_eq!(rx.rejected.len(), replays, "{:?}", rx.rejected);
    assert!(rx.largest <= 1400, "datagram of {} bytes", rx.largest);
    let all = rx.merged();
    for meter in wanted {
        assert!(
            all.get(meter).is_some(),
            "{meter} missing from {:?}",
            all.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        );
    }
    match &all.get("loadavg").unwrap().value {
        MeterValue::Array(a) => assert_eq!(a.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(
        rx.session_keys.len() >= 2,
        "the session key was never rotated"
    );
    // Both lanes were dumped (the slow lane every 2 s).
    rx.pump_until("both lanes in the dump", |_| {
        std::fs::read_to_string(&dump)
            .is_ok_and(|d| d.contains("--- Fast ---") && d.contains("--- Slow ---"))
    });
    let dumped = std::fs::read_to_string(&dump).unwrap();
    assert!(
        dumped.contains("--- Fast ---") && dumped.contains("--- Slow ---"),
        "{dumped}"
    );
    assert!(dumped.contains("\"hello\": 42"), "{dumped}");
    assert!(rx.resends >= 1, "no auth datagram was resent");

    // The collector restarts: it forgets every session. The next fast
    // round starts with an auth datagram, so samples flow again within
    // one fast interval.
    rx.sessions.clear();
    rx.rejected.clear();
    let before = rx.meters_ok;
    rx.pump_until("samples resuming after the restart", |rx| {
        rx.meters_ok > before
    });

    // SIGHUP reloads; SIGTERM exits cleanly and removes the pid file.
    signal(&child, libc::SIGHUP);
    let log_path = dir.path("agent.log");
    rx.pump_until("the reload logged", |_| {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("configuration reloaded"))
    });
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, PATIENCE).expect("agent did not exit on SIGTERM");
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(dir.path("agent.log")).unwrap();
    assert!(
        log.contains("[INFO] opticon-agent") && log.contains("configuration reloaded"),
        "{log}"
    );
    assert!(log.contains("exiting on signal"), "{log}");
    assert!(!dir.path("agent.pid").exists(), "pid file left behind");
}

#[test]
fn bad_configs_and_a_live_pidfile_are_refused() {
    let dir = Dir::new("agent-bad");
    let cases: &[(&str, &str)] = &[
        ("probes { }", "no collector configured"),
        (
            "collector { address 127.0.0.1 tenant x key y }",
            "collector/tenant",
        ),
        ("collector {", "agent.conf:1:"),
    ];
    for (conf, needle) in cases {
        let mut child = agent(&dir, conf, &["-f"]);
        let status = wait_exit(&mut child, PATIENCE).expect("agent did not exit");
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{conf}: {err}");
        assert!(
            err.starts_with("opticon-agent: ") && err.contains(needle),
            "{conf}: {err}"
        );
    }
    // A pid file naming a live process (this test) is refused.
    std::fs::write(dir.path("agent.pid"), format!("{}\n", std::process::id())).unwrap();
    let rx = Receiver::new();
    let mut child = agent(&dir, &config(rx.port(), ""), &["-f"]);
    let status = wait_exit(&mut child, PATIENCE).expect("agent did not exit");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("already running as pid"), "{err}");
    let usage = Command::new(env!("CARGO_BIN_EXE_opticon-agent"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn cloud_init_reads_the_collector_from_the_metadata_service() {
    let dir = Dir::new("agent-cloud");
    let mut rx = Receiver::new();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    let body = format!(
        "{{\"uuid\": \"x\", \"meta\": {{\"opticon_collector_address\": \"127.0.0.1\", \"opticon_collector_port\": \"{}\", \
         \"opticon_tenant_key\": \"{KEY}\", \"opticon_tenant_id\": \"{TENANT}\", \
         \"opticon_host_id\": \"11111111-2222-3333-4444-555555555555\"}}}}",
        rx.port()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        // Serve the metadata document to every request until the test
        // has what it needs.
        http.set_nonblocking(true).unwrap();
        let mut served = Vec::new();
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((mut s, _)) = http.accept() {
                s.set_nonblocking(false).unwrap();
                // Read the request up to its blank line, whatever the
                // segments it arrives in.
                let mut req = Vec::new();
                let mut chunk = [0u8; 512];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match std::io::Read::read(&mut s, &mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&chunk[..n]),
                    }
                }
                served.push(
                    String::from_utf8_lossy(&req)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
                let reply =
                    format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}");
                let _ = std::io::Write::write_all(&mut s, reply.as_bytes());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        served
    });
    let conf = format!("config cloud-init\nmetadata {{ url \"http://127.0.0.1:{http_port}/openstack/latest/meta_data.json\" }}\ninterval {{ fast 1 slow 2 }}\n");
    let mut child = agent(&dir, &conf, &["-f"]);
    rx.pump_until("a sample sent where the metadata said", |rx| {
        rx.meters_ok >= 1
    });
    signal(&child, libc::SIGTERM);
    wait_exit(&mut child, PATIENCE).expect("agent did not exit");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = server.join().unwrap();
    assert_eq!(
        served.first().map(String::as_str),
        Some("GET /openstack/latest/meta_data.json HTTP/1.0")
    );
    assert!(
        rx.meters_ok >= 1,
        "{} samples, {:?}",
        rx.meters_ok,
        rx.rejected
    );
    assert!(
        rx.rejected.iter().all(|r| *r == Rejection::Replay),
        "{:?}",
        rx.rejected
    );
    // A metadata service that answers 404 stops the agent with a clear
    // line naming the URL and the status.
    let missing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let missing_port = missing.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let (mut s, _) = missing.accept().unwrap();
        let mut req = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut req);
        let _ = std::io::Write::write_all(&mut s, b"HTTP/1.0 404 Not Found\r\n\r\nnothing here");
    });
    let err = opticon::agent::cloud::http_get(
        &format!("http://127.0.0.1:{missing_port}/x"),
        Duration::from_secs(10),
    )
    .unwrap_err();
    answer.join().unwrap();
    let err = err.to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{missing_port}/x")) && err.contains("404 Not Found"),
        "{err}"
    );
    // And one that refuses the connection says so.
    let refused = opticon::agent::cloud::http_get(
        &format!("http://127.0.0.1:{}/x", common::free_port()),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(refused.to_string().contains("127.0.0.1"), "{refused}");
    assert!(
        opticon::agent::cloud::collector_from_metadata("{\"meta\": {}}")
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
}

#[test]
fn several_collectors_ipv4_and_ipv6_each_get_their_own_session() {
    let dir = Dir::new("agent-multi");
    let mut v4 = Receiver::new();
    let Ok(sock6) = UdpSocket::bind("[::1]:0") else {
        common::unavailable("sending to an IPv6 collector (no ::1 here)");
        return;
    };
    drop(sock6);
    let mut v6 = Receiver::on("[::1]:0");
    let conf = format!(
        "collector [ {{ address 127.0.0.1 port {} tenant {TENANT} key \"{KEY}\" }}\n\
                     {{ address \"::1\" port {} tenant {TENANT} key \"{KEY}\" }} ]\n\
         interval {{ fast 1 slow 2 }}\n",
        v4.port(),
        v6.port()
    );
    let mut child = agent(&dir, &conf, &["-f"]);
    let end = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < end {
        v4.pump(Duration::from_millis(100));
        v6.pump(Duration::from_millis(100));
    }
    signal(&child, libc::SIGTERM);
    wait_exit(&mut child, PATIENCE).expect("agent did not exit");
    for (name, rx) in [("IPv4", &v4), ("IPv6", &v6)] {
        assert!(rx.meters_ok >= 1, "{name}: no samples; {:?}", rx.rejected);
        assert!(rx.merged().get("hostname").is_some(), "{name}: no hostname");
    }
    let s4: HashSet<u64> = v4.sessions.keys().copied().collect();
    let s6: HashSet<u64> = v6.sessions.keys().copied().collect();
    assert!(s4.is_disjoint(&s6), "each collector has its own session");
}

#[test]
fn detaches_into_the_background_with_a_pid_file() {
    let dir = Dir::new("agent-detach");
    let mut rx = Receiver::new();
    let mut parent = agent(&dir, &config(rx.port(), ""), &[]);
    let status = wait_exit(&mut parent, PATIENCE).expect("the starting process did not return");
    assert!(status.success(), "{status:?}");
    rx.pump_until("a sample from the detached agent", |rx| rx.meters_ok >= 1);
    let pid: i32 = std::fs::read_to_string(dir.path("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(
        pid,
        parent.id() as i32,
        "the pid file names the daemon, not the starter"
    );
    // SAFETY: signals the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let end = Instant::now() + PATIENCE;
    while dir.path("agent.pid").exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !dir.path("agent.pid").exists(),
        "pid file left after SIGTERM"
    );
    // Gone, or a zombie nobody reaps yet (its parent is this container's
    // init after the double fork): either way it no longer runs.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    != Some("Z")
            })
            .unwrap_or(false)
    };
    let end = Instant::now() + PATIENCE;
    while running() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(), "daemon still running");
}
