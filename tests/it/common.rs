//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use opticon::model::{json, HostMeters};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tenant most tests create.
pub const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";
/// A second tenant, for isolation tests.
pub const OTHER_TENANT: &str = "7c1e0a33-5b9d-4c1f-9a6e-2d8f3b4a5c6d";
/// A host id tests import records for.
pub const HOST: &str = "11111111-2222-3333-4444-555555555555";
/// The admin token the API tests configure.
pub const ADMIN_TOKEN: &str = "a9f3c2d1-0000-4000-8000-0123456789ab";

/// How long a test waits for an event (a socket bound, a record written,
/// a counter reached) before it fails: generous, since a loaded CI
/// machine is slow, and free, since waits end as soon as the event comes.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A small deterministic PRNG (xorshift64*) so fuzz and load tests are
/// repeatable from their seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The probe output of a representative Linux host, as an agent would
/// produce it.
pub const HOST_JSON: &str = r#"{
    "hostname": "web-01.example.net",
    "uptime": 86400,
    "loadavg": [0.5, 0.25, 0.125],
    "pcpu": 12.34,
    "os": {"kernel": "Linux", "version": "6.1.0-26-amd64", "arch": "x86_64"},
    "mem": {"total": 16316412, "free": 8123456, "swap": 0},
    "df": [
        {"device": "/dev/vda1", "size": 20511356, "pused": 41.5, "mount": "/", "fs": "ext4"},
        {"device": "@vg/data", "size": 104857600, "pused": 97.25, "mount": "/srv", "fs": "xfs"}
    ],
    "top": [
        {"pid": 1234, "user": "www-data", "pcpu": 35.5, "pmem": 2.1, "name": "nginx"},
        {"pid": 99, "user": "root", "pcpu": 1.0, "pmem": 0.3, "name": "sshd"}
    ],
    "chkwarn": [],
    "note": null
}"#;

/// [`HOST_JSON`] as meters at time 1_700_000_000.
pub fn representative_host() -> HostMeters {
    let mut host = HostMeters::new();
    json::merge_json(&mut host, HOST_JSON, 1_700_000_000).expect("fixture parses");
    host
}

/// A scratch directory for a test's files, removed on drop. World-writable,
/// because daemons started as root drop to another user and must write
/// their logs and pid files here.
pub struct Dir(pub std::path::PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "opticon-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        Dir(d)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    pub fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child daemon, killed when dropped.
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll until `f` holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

pub fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A check this machine cannot run: a note on a developer's machine, a
/// failure in CI (`CI=true`), so that CI cannot drift into skipping it.
pub fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must run this check: {what}");
    }
    eprintln!("not checked here: {what}");
}

/// Hand a test tree to the user a daemon started as root drops to; as
/// root, that user must exist (the daemons would refuse to start).
pub fn give_to_service_user(path: &std::path::Path) {
    match opticon::svc::process::service_user() {
        Ok(Some((uid, gid))) => chown_tree(path, uid, gid),
        Ok(None) => {}
        Err(e) => panic!("running as root without a service user: {e}"),
    }
}

/// A port free for both TCP and UDP on 127.0.0.1, for a daemon to bind.
///
/// Taken below the kernel's ephemeral range (32768 and up), where no
/// socket bound to port 0 (a load generator's, a client's) can take it
/// between this check and the daemon's bind, and from a starting point
/// that differs per process and per call, so that two test runs at once
/// do not pick the same ports.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = (std::process::id() as u64) << 20 ^ nanos ^ NEXT.fetch_add(7919, Ordering::Relaxed);
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// Wait until the daemon writing `log` says `needle` (a daemon logs
/// "listening on" once its socket is bound).
pub fn wait_for_log(log: &std::path::Path, needle: &str) {
    assert!(
        wait_for(PATIENCE, || std::fs::read_to_string(log)
            .is_ok_and(|t| t.contains(needle))),
        "{} never said {needle:?}: {}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Start `bin` (an Opticon daemon) in the foreground with `<name>.conf`,
/// `<name>.log` and `<name>.pid` in the test directory.
pub fn start_daemon(dir: &Dir, bin: &str, name: &str) -> Daemon {
    let (conf, log, pid) = (
        dir.s(&format!("{name}.conf")),
        dir.s(&format!("{name}.log")),
        dir.s(&format!("{name}.pid")),
    );
    let daemon = Daemon(
        Command::new(bin)
            .args(["-f", "-c", &conf, "-l", &log, "-p", &pid])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The collector and the API are ready once their socket is bound.
    if bin.ends_with("opticon-collector") || bin.ends_with("opticon-api") {
        wait_for_log(std::path::Path::new(&log), "listening on");
    }
    daemon
}

/// Run opticon-db on the test's database; panics on failure, returns
/// standard output.
pub fn opticon_db(dir: &Dir, args: &[&str]) -> String {
    let root = dir.s("db");
    let mut all = vec!["--init", "-p", root.as_str()];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_opticon-db"))
        .args(&all)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Create tenant `id` in the test's database; returns its key.
pub fn create_tenant(dir: &Dir, id: &str, name: &str) -> String {
    let out = opticon_db(dir, &["tenant-create", "--tenant", id, "--name", name]);
    out.lines()
        .find_map(|l| l.strip_prefix("AES Key: "))
        .expect("tenant-create prints the key")
        .to_string()
}

/// `api.conf` for an API on 127.0.0.1:`port` over the test's database,
/// with the admin token.
pub fn write_api_conf(dir: &Dir, port: u16) {
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN_TOKEN}\" }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
}
