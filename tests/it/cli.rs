//! The `opticon` client against a real opticon-api and opticon-collector
//! on loopback: each subcommand's output, logins and the token cache,
//! and its errors.

use crate::common;

use common::{
    free_port, give_to_service_user, opticon_db as db, start_daemon, wait_for, Daemon, Dir,
    ADMIN_TOKEN as ADMIN, HOST, OTHER_TENANT as B, PATIENCE, TENANT as A,
};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

struct Setup {
    dir: Dir,
    url: String,
    key: String,
    udp: u16,
    _api: Daemon,
    _collector: Daemon,
}

fn setup(tag: &str) -> Setup {
    let dir = Dir::new(tag);
    let key = common::create_tenant(&dir, A, "alpha");
    db(&dir, &["tenant-create", "--tenant", B, "--name", "beta"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = now - now % 60 - 120;
    std::fs::write(
        dir.path("one.json"),
        format!("{{\"time\": {t}, \"meters\": {{\"hostname\": \"db-01\", \"pcpu\": 12.5, \"status\": \"OK\", \"loadavg\": [0.5, 0.25, 0.1], \"mem/total\": 4096000, \"mem/free\": 1024000, \"df\": [{{\"device\": \"/dev/vda1\", \"pused\": 41, \"mount\": \"/\"}}], \"top\": [{{\"pid\": 1, \"name\": \"init\", \"user\": \"root\"}}], \"extra/thing\": 7}}}}\n"),
    )
    .unwrap();
    db(
        &dir,
        &["-t", A, "-H", HOST, "host-import", &dir.s("one.json")],
    );
    give_to_service_user(&dir.path("db"));
    let port = common::free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN}\" }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let udp = free_port();
    std::fs::write(
        dir.path("collector.conf"),
        format!(
            "network {{ address 127.0.0.1 port {udp} }}\ndatabase {{ path {} }}\ninterval {{ write 1 }}\nping {{ enabled false }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    let collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "collector");
    assert!(wait_for(PATIENCE, || TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    Setup {
        url: format!("http://127.0.0.1:{port}"),
        dir,
        key,
        udp,
        _api: api,
        _collector: collector,
    }
}

/// Run `opticon` with `HOME` in the test directory and no inherited
/// token or tenant.
fn opticon(s: &Setup, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_opticon"));
    c.env("HOME", s.dir.path("home"))
        .env_remove("OPTICON_TOKEN")
        .env_remove("OPTICON_TENANT")
        .env("COLUMNS", "130")
        .args(["-c", &s.dir.s("none.conf"), "-A", &s.url])
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(s: &Setup, args: &[&str]) -> String {
    let out = opticon(s, &[("OPTICON_TOKEN", ADMIN), ("OPTICON_TENANT", A)], args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_subcommand_against_a_real_api() {
    let s = setup("cli");
    std::fs::create_dir_all(s.dir.path("home")).unwrap();
    std::fs::write(s.dir.path("none.conf"), "").unwrap();

    let out = ok(&s, &["tenant-list"]);
    assert!(
        out.starts_with("UUID") && out.contains("alpha") && out.contains(B),
        "{out}"
    );
    assert!(ok(&s, &["tenant-list", "--json"]).contains("\"hostcount\""));
    ok(&s, &["tenant-set-quota", "256"]);
    let out = ok(&s, &["tenant-get-quota"]);
    assert!(
        out.starts_with("Tenant storage quota: 256 MB\nCurrent usage: "),
        "{out}"
    );
    ok(&s, &["tenant-set-metadata", "owner", "ops"]);
    assert!(ok(&s, &["tenant-get-metadata"]).contains("\"owner\": \"ops\""));
    let created = ok(&s, &["tenant-create", "--name", "gamma"]);
    assert!(
        created.starts_with("Name:    gamma\nUUID:    ") && created.contains("AES Key: "),
        "{created}"
    );
    let gamma = created
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("UUID:")
        .trim()
        .to_string();
    ok(&s, &["tenant-delete", "--tenant", &gamma]);
    assert!(!ok(&s, &["tenant-list"]).contains(&gamma));

    ok(
        &s,
        &[
            "meter-create",
            "--meter",
            "extra/thing",
            "--type",
            "integer",
            "--description",
            "A thing",
            "--unit",
            "things",
        ],
    );
    let out = ok(&s, &["meter-list"]);
    assert!(
        out.contains("tenant") && out.contains("extra/thing") && out.contains("A thing"),
        "{out}"
    );
    ok(
        &s,
        &[
            "watcher-set",
            "--meter",
            "pcpu",
            "--level",
            "warning",
            "--match",
            "gt",
            "--value",
            "90",
        ],
    );
    let out = ok(&s, &["watcher-list"]);
    assert!(
        out.starts_with("From")
            && out
                .lines()
                .any(|l| l.starts_with("tenant") && l.contains("pcpu") && l.contains("warning")),
        "{out}"
    );
    ok(
        &s,
        &[
            "watcher-set",
            "--meter",
            "pcpu",
            "--level",
            "alert",
            "--value",
            "95",
            "--host",
            HOST,
        ],
    );
    assert!(ok(&s, &["watcher-list", "--host", HOST])
        .lines()
        .any(|l| l.starts_with("host")));
    ok(&s, &["watcher-delete", "--meter", "pcpu", "--host", HOST]);
    let out = ok(&s, &["watcher-list", "--host", HOST]);
    assert!(
        !out.lines()
            .any(|l| l.starts_with("host") && l.contains("pcpu")),
        "{out}"
    );
    ok(&s, &["watcher-delete", "--meter", "pcpu"]);
    assert!(!ok(&s, &["watcher-list"])
        .lines()
        .any(|l| l.starts_with("tenant") && l.contains("pcpu")));

    let out = ok(&s, &["host-list"]);
    assert!(out.starts_with("UUID") && out.contains(HOST), "{out}");
    let out = ok(&s, &["host-show", "--host", HOST]);
    for want in [
        "---- Host",
        "db-01",
        "---- Resources",
        "---- Process List",
        "init",
        "---- Storage",
        "/dev/vda1",
        "A thing",
        "7 things",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    let json = ok(&s, &["host-show", "--host", HOST, "--json"]);
    assert!(json.contains("\"hostname\": \"db-01\""), "{json}");
    assert!(ok(&s, &["host-show", "--host", HOST, "--time", "-1m"]).contains("db-01"));
    assert!(ok(&s, &["host-show", "--host", HOST, "--graphs"]).contains("CPU Usage (%"));

    // The collector fills the overview; sessions appear.
    let load = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args([
            "--tenant",
            A,
            "--key",
            &s.key,
            "--port",
            &s.udp.to_string(),
            "--hosts",
            "3",
            "--rate",
            "200",
            "--duration",
            "2",
            "--hostname",
            "web-01.example.net",
        ])
        .output()
        .unwrap();
    assert!(load.status.success());
    assert!(wait_for(Duration::from_secs(60), || ok(
        &s,
        &["host-overview"]
    )
    .contains("web-01.example.net")));
    let out = ok(&s, &["host-overview"]);
    assert!(
        out.starts_with("NAME") && out.contains("IP") && out.contains("["),
        "{out}"
    );
    // The session list is written after the overview in the same cycle:
    // wait for it rather than read it once.
    assert!(wait_for(Duration::from_secs(60), || ok(
        &s,
        &["session-list"]
    )
    .lines()
    .count()
        >= 4));
    let out = ok(&s, &["session-list"]);
    assert!(out.starts_with("ID") && out.lines().count() >= 4, "{out}");
    // The summary counts the hosts the collector judged.
    let summary = ok(&s, &["tenant-get-summary", "--json"]);
    let counted: i64 = ["ok", "warning", "alert", "critical", "stale"]
        .iter()
        .filter_map(|k| {
            opticon::conf::parse(&summary)
                .ok()?
                .get(k)
                .and_then(opticon::conf::Node::as_int)
        })
        .sum();
    assert!(counted >= 3, "{summary}");
    // --watch redraws (every --interval seconds) until stopped.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_opticon"))
        .env("HOME", s.dir.path("home"))
        .env("OPTICON_TOKEN", ADMIN)
        .env("OPTICON_TENANT", A)
        .args(["-c", &s.dir.s("none.conf"), "-A", &s.url])
        .args(["host-overview", "--watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut screen = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut seen = Vec::new();
        while let Ok(n) = std::io::Read::read(&mut screen, &mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let _ = tx.send(
                String::from_utf8_lossy(&seen)
                    .matches("\x1b[H\x1b[2J")
                    .count(),
            );
        }
    });
    let started = std::time::Instant::now();
    let mut screens = 0;
    while screens < 3 && started.elapsed() < Duration::from_secs(60) {
        if let Ok(n) = rx.recv_timeout(Duration::from_secs(1)) {
            screens = n;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(screens >= 3, "--watch drew {screens} screens");
    // Three hosts share a hostname: the UUID is needed.
    let out = opticon(
        &s,
        &[("OPTICON_TOKEN", ADMIN), ("OPTICON_TENANT", A)],
        &["host-show", "--host", "web-01.example.net"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use the UUID"));

    // A user of tenant B logs in once (token cached, 0600), then is
    // refused tenant A with a clear message.
    ok(
        &s,
        &[
            "user-create",
            "--username",
            "bob",
            "--password",
            "pw",
            "--tenant",
            B,
        ],
    );
    let out = opticon(
        &s,
        &[("OPTICON_TENANT", B)],
        &["--username", "bob", "--password", "pw", "tenant-list"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = s.dir.path("home/.opticon-token-cache");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = opticon(&s, &[("OPTICON_TENANT", B)], &["host-list"]);
    assert!(
        out.status.success(),
        "cached token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = opticon(&s, &[("OPTICON_TENANT", A)], &["host-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied (403)"));
    // A new password, and a move to tenant A.
    ok(
        &s,
        &[
            "user-set-password",
            "--username",
            "bob",
            "--password",
            "pw2",
        ],
    );
    ok(&s, &["user-set-tenant", "--username", "bob", "--tenant", A]);
    std::fs::remove_file(&cache).unwrap();
    let out = opticon(
        &s,
        &[("OPTICON_TENANT", A)],
        &["--username", "bob", "--password", "pw2", "host-list"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&s, &["user-delete", "--username", "bob"]);
    std::fs::remove_file(&cache).unwrap();
    let out = opticon(
        &s,
        &[("OPTICON_TENANT", A)],
        &["--username", "bob", "--password", "pw2", "host-list"],
    );
    assert_eq!(out.status.code(), Some(1), "a deleted user logged in");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong user name or password for bob (403)")
    );
    // An administrator (no tenant) sees every tenant.
    ok(
        &s,
        &[
            "user-create",
            "--username",
            "root2",
            "--password",
            "pw3",
            "--admin",
        ],
    );
    let out = opticon(
        &s,
        &[],
        &["--username", "root2", "--password", "pw3", "tenant-list"],
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains(A) && listed.contains(B),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&cache).unwrap();

    // Errors: unreachable API, unknown command, missing tenant.
    let mut c = Command::new(env!("CARGO_BIN_EXE_opticon"));
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = c
        .env("HOME", s.dir.path("home"))
        .args([
            "-c",
            &s.dir.s("none.conf"),
            "-A",
            &dead,
            "-O",
            ADMIN,
            "tenant-list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("cannot reach the API at {dead}"))
    );
    assert_eq!(
        opticon(&s, &[("OPTICON_TOKEN", ADMIN)], &["no-such-command"])
            .status
            .code(),
        Some(2)
    );
    let out = opticon(&s, &[("OPTICON_TOKEN", ADMIN)], &["host-list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant is required"));
    ok(&s, &["meter-delete", "--meter", "extra/thing"]);
    assert!(!ok(&s, &["meter-list"])
        .lines()
        .any(|l| l.starts_with("tenant") && l.contains("extra/thing")));
    ok(&s, &["host-delete", "--host", HOST]);
    assert!(!ok(&s, &["host-list"]).contains(HOST));
    assert!(ok(&s, &["dancing-bears"]).contains("(oo)"));
}
