//! What an operator sees must be true, and the client must not be fooled:
//! a stopped collector is seen as stopped (by `--metrics`, the API and the
//! client), IPv4 peers read as IPv4, missing data is `-`, hostile strings
//! are escaped, explicit credentials win, a hostile API cannot hold or
//! balloon the client, and `opticon-db` refuses a path that is no
//! database.

use crate::common;

use common::{
    free_port, give_to_service_user, opticon_db, start_daemon, wait_for, Dir, ADMIN_TOKEN, HOST,
    OTHER_TENANT, PATIENCE, TENANT,
};
use opticon::conf::{self, Node};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `opticon` with HOME in the test directory, no inherited token.
fn client(dir: &Dir, url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    std::fs::create_dir_all(dir.path("home")).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_opticon"));
    c.env("HOME", dir.path("home"))
        .env_remove("OPTICON_TOKEN")
        .env_remove("OPTICON_TENANT")
        .env("COLUMNS", "130")
        .args(["-c", &dir.s("none.conf"), "-A", url])
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn admin(dir: &Dir, url: &str, args: &[&str]) -> String {
    let out = client(
        dir,
        url,
        &[("OPTICON_TOKEN", ADMIN_TOKEN), ("OPTICON_TENANT", TENANT)],
        args,
    );
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// An API on a free port over the test's database.
fn start_api(dir: &Dir) -> (common::Daemon, String) {
    let port = free_port();
    common::write_api_conf(dir, port);
    std::fs::write(dir.path("none.conf"), "").unwrap();
    let api = start_daemon(dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    (api, format!("http://127.0.0.1:{port}"))
}

/// A collector on `address` writing every second over the test's
/// database; returns it and its UDP port.
fn start_collector(dir: &Dir, address: &str) -> (common::Daemon, u16) {
    let udp = free_port();
    std::fs::write(
        dir.path("collector.conf"),
        format!(
            "network {{ address {address} port {udp} }}\ndatabase {{ path {} }}\ninterval {{ write 1 }}\nping {{ enabled false }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let collector = start_daemon(dir, env!("CARGO_BIN_EXE_opticon-collector"), "collector");
    (collector, udp)
}

fn set_mtime(path: &std::path::Path, ago: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

/// A collector on every address (`*`, a dual-stack socket) fed over IPv4;
/// then stopped: `--metrics`, the API, `/metrics` and the client all say
/// so instead of showing frozen data as live.
#[test]
fn a_stopped_collector_is_seen_as_stopped() {
    let dir = Dir::new("op-stopped");
    let key = common::create_tenant(&dir, TENANT, "stopped");
    give_to_service_user(&dir.path("db"));
    let (collector, udp) = start_collector(&dir, "\"*\"");
    let (_api, url) = start_api(&dir);
    let load = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args([
            "--address",
            "127.0.0.1",
            "--port",
            &udp.to_string(),
            "--tenant",
            TENANT,
            "--key",
            &key,
            "--hosts",
            "2",
            "--duration",
            "3",
            "--rate",
            "20",
        ])
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", text(&load.stderr));
    let overview = || {
        let out = admin(&dir, &url, &["host-overview", "--json"]);
        Node::Dict(conf::parse(&out).unwrap())
    };
    assert!(
        wait_for(
            PATIENCE,
            || matches!(overview().path("overview"), Some(Node::Dict(d)) if d.len() == 2)
        ),
        "hosts never appeared"
    );
    let doc = overview();
    assert_eq!(
        doc.path("stale"),
        Some(&Node::Bool(false)),
        "{}",
        doc.to_json(false)
    );
    // IPv4 peers read as IPv4 in records, sessions and logs.
    let Some(Node::Dict(hosts)) = doc.path("overview") else {
        panic!()
    };
    for (_, h) in hosts.iter() {
        assert_eq!(
            h.as_dict()
                .and_then(|d| d.get("link/ip"))
                .and_then(Node::as_str),
            Some("127.0.0.1"),
            "{}",
            doc.to_json(false)
        );
    }
    let sessions = std::fs::read_to_string(dir.path("db/collector.sessions")).unwrap();
    assert!(sessions.contains("\"remote\": \"127.0.0.1:"), "{sessions}");
    let metrics_cmd = || {
        Command::new(env!("CARGO_BIN_EXE_opticon-collector"))
            .args([
                "--metrics",
                "-c",
                &dir.s("collector.conf"),
                "-p",
                &dir.s("collector.pid"),
            ])
            .output()
            .unwrap()
    };
    let live = metrics_cmd();
    assert_eq!(live.status.code(), Some(0), "{}", text(&live.stderr));
    assert!(text(&live.stdout).ends_with("}\n"), "ends with a newline");
    let prom = client_metrics(&url);
    assert!(prom.contains("\nopticon_collector_up 1\n"), "{prom}");

    // SIGTERM: the collector flushes and exits.
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(collector.0.id() as i32, libc::SIGTERM) };
    let mut collector = collector;
    let _ = collector.0.wait();
    let log = std::fs::read_to_string(dir.path("collector.log")).unwrap();
    assert!(!log.contains("::ffff:"), "{log}");
    assert!(
        log.contains("exiting on signal: received=") && log.contains(" accepted="),
        "{log}"
    );
    let stopped = metrics_cmd();
    assert_eq!(stopped.status.code(), Some(1));
    assert!(
        text(&stopped.stderr).contains("collector not running (")
            && text(&stopped.stderr).contains("last metrics from "),
        "{}",
        text(&stopped.stderr)
    );
    // Two write cycles (at least 10 s) later the data is stale: make the
    // published files that old rather than wait.
    for f in [
        "db/collector.metrics",
        &format!("db/{TENANT}/tenant.overview"),
    ] {
        set_mtime(&dir.path(f), Duration::from_secs(120));
    }
    let doc = overview();
    assert_eq!(
        doc.path("stale"),
        Some(&Node::Bool(true)),
        "{}",
        doc.to_json(false)
    );
    assert!(doc.path("age").and_then(Node::as_int).unwrap() >= 120);
    let Some(Node::Dict(hosts)) = doc.path("overview") else {
        panic!()
    };
    for (_, h) in hosts.iter() {
        assert_eq!(h.path("status").and_then(Node::as_str), Some("STALE"));
        assert!(h.path("stored_status").is_some());
    }
    let out = client(
        &dir,
        &url,
        &[("OPTICON_TOKEN", ADMIN_TOKEN), ("OPTICON_TENANT", TENANT)],
        &["host-overview"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert_eq!(table.matches(" STALE ").count(), 2, "{table}");
    assert!(
        text(&out.stderr).contains("collector has published nothing for"),
        "{}",
        text(&out.stderr)
    );
    let prom = client_metrics(&url);
    assert!(prom.contains("\nopticon_collector_up 0\n"), "{prom}");
    assert!(
        prom.contains("\nopticon_collector_metrics_age_seconds 1"),
        "{prom}"
    );
}

/// `/metrics` from the admin host, with curl.
fn client_metrics(url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-H",
            &format!("X-Opticon-Token: {ADMIN_TOKEN}"),
            &format!("{url}/metrics"),
        ])
        .output();
    match out {
        Ok(o) => text(&o.stdout),
        Err(_) => {
            common::unavailable("curl");
            String::new()
        }
    }
}

/// A host whose hostname carries escape sequences, on its first cycle
/// (no rates yet): the client escapes the one and shows `-` for the other.
#[test]
fn hostile_strings_are_escaped_and_missing_data_is_a_dash() {
    let dir = Dir::new("op-escape");
    opticon_db(&dir, &["tenant-create", "--tenant", TENANT]);
    let now = opticon::model::unix_now();
    std::fs::write(
        dir.path("evil.json"),
        format!(
            "{{\"time\": {now}, \"meters\": {{\"hostname\": \"evil\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\", \"status\": \"OK\", \"top\": [{{\"pid\": 1, \"name\": \"x\\u001b[1m\", \"user\": \"root\"}}]}}}}\n"
        ),
    )
    .unwrap();
    opticon_db(
        &dir,
        &["-t", TENANT, "-H", HOST, "host-import", &dir.s("evil.json")],
    );
    // The overview the collector would publish for this host.
    std::fs::write(
        dir.path(&format!("db/{TENANT}/tenant.overview")),
        format!("{{\"overview\":{{\"{HOST}\":{{\"hostname\":\"evil\\u001b[2J\\u001b]0;pwned\\u0007\",\"status\":\"OK\"}}}}}}\n"),
    )
    .unwrap();
    give_to_service_user(&dir.path("db"));
    let (_api, url) = start_api(&dir);
    for args in [
        vec!["host-overview"],
        vec!["host-show", "--host", HOST],
        vec!["host-list"],
        vec!["host-show", "--host", HOST, "--json"],
    ] {
        let out = client(
            &dir,
            &url,
            &[("OPTICON_TOKEN", ADMIN_TOKEN), ("OPTICON_TENANT", TENANT)],
            &args,
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
            "{args:?} printed raw control bytes: {:?}",
            text(&out.stdout)
        );
        assert!(!text(&out.stdout).contains('\u{9b}'), "{args:?}: raw CSI");
        if args.len() < 4 && args[0] != "host-list" {
            assert!(
                text(&out.stdout).contains("evil\\x1b[2J\\x1b]0;pwned"),
                "{args:?}: {}",
                text(&out.stdout)
            );
        }
    }
    let overview = admin(&dir, &url, &["host-overview"]);
    let line = overview.lines().nth(1).unwrap();
    assert!(
        line.contains("OK          -") && line.trim_end().ends_with('-'),
        "LOAD and CPU missing: {line:?}"
    );
    assert!(
        !line.contains("0.00") && !line.contains("0.0 %"),
        "{line:?}"
    );
    let show = admin(&dir, &url, &["host-show", "--host", HOST]);
    assert!(
        show.contains("RAM               : - total, - free"),
        "{show}"
    );
}

/// Explicit credentials win over a cached session of another user; a
/// wrong password fails; nothing logs in silently as someone else.
#[test]
fn explicit_credentials_win() {
    let dir = Dir::new("op-creds");
    opticon_db(&dir, &["tenant-create", "--tenant", TENANT]);
    opticon_db(&dir, &["tenant-create", "--tenant", OTHER_TENANT]);
    give_to_service_user(&dir.path("db"));
    let (_api, url) = start_api(&dir);
    for (user, tenant) in [("ann", TENANT), ("bob", OTHER_TENANT)] {
        let out = admin(
            &dir,
            &url,
            &[
                "user-create",
                "--username",
                user,
                "--password",
                "pw",
                "--tenant",
                tenant,
            ],
        );
        assert_eq!(out, format!("created user {user} of tenant {tenant}\n"));
    }
    let run = |env: &[(&str, &str)], args: &[&str]| client(&dir, &url, env, args);
    // ann logs in; her session is cached.
    let out = run(
        &[("OPTICON_TENANT", TENANT)],
        &["--username", "ann", "--password", "pw", "host-list"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // bob with a wrong password: refused, not ann's session.
    let out = run(
        &[("OPTICON_TENANT", OTHER_TENANT)],
        &["--username", "bob", "--password", "wrong", "host-list"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("wrong user name or password for bob"),
        "{}",
        text(&out.stderr)
    );
    // Nor with OPTICON_TOKEN set: explicit credentials win over it too.
    let out = run(
        &[
            ("OPTICON_TENANT", OTHER_TENANT),
            ("OPTICON_TOKEN", ADMIN_TOKEN),
        ],
        &["--username", "bob", "--password", "wrong", "tenant-list"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the admin token was used: {}",
        text(&out.stdout)
    );
    // bob with his password acts as bob (tenant B is his, A is not).
    let out = run(
        &[("OPTICON_TENANT", OTHER_TENANT)],
        &["--username", "bob", "--password", "pw", "host-list"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &[("OPTICON_TENANT", TENANT)],
        &["--username", "bob", "--password", "pw", "host-list"],
    );
    assert!(
        text(&out.stderr).contains("permission denied (403)"),
        "{}",
        text(&out.stderr)
    );
    // The cache now holds bob: ann without a password (and no terminal)
    // is not logged in as bob.
    let out = run(
        &[("OPTICON_TENANT", TENANT)],
        &["--username", "ann", "host-list"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not logged in"),
        "{}",
        text(&out.stderr)
    );
    // bob without a password reuses his own session.
    let out = run(
        &[("OPTICON_TENANT", OTHER_TENANT)],
        &["--username", "bob", "host-list"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Messages say what happened.
    let out = admin(
        &dir,
        &url,
        &[
            "watcher-set",
            "--meter",
            "pcpu",
            "--level",
            "warning",
            "--value",
            "80",
            "--weight",
            "2.5",
        ],
    );
    assert_eq!(
        out,
        format!("{TENANT}: pcpu warning when gt 80, weight 2.50\n")
    );
    let out = admin(
        &dir,
        &url,
        &[
            "watcher-set",
            "--meter",
            "pcpu",
            "--level",
            "warning",
            "--value",
            "90",
        ],
    );
    assert_eq!(out, format!("{TENANT}: pcpu warning when gt 90\n"));
    let list = admin(&dir, &url, &["watcher-list"]);
    assert!(
        list.lines().any(|l| l.contains("pcpu")
            && l.contains("warning")
            && l.contains("90")
            && l.contains("2.5")),
        "the weight stayed: {list}"
    );
    let summary = admin(&dir, &url, &["tenant-get-summary"]);
    assert!(
        summary.starts_with("Summary") && summary.contains("Hosts OK"),
        "{summary}"
    );
    let gone = client(
        &dir,
        "http://127.0.0.1:1",
        &[("OPTICON_TENANT", TENANT)],
        &["host-list"],
    );
    assert!(
        text(&gone.stderr).contains("cannot reach the API at http://127.0.0.1:1"),
        "{}",
        text(&gone.stderr)
    );
}

/// An API that sends a huge body, or a byte every two seconds: the
/// client refuses the one and gives up on the other within its timeout.
#[test]
fn a_hostile_api_cannot_hold_the_client() {
    let dir = Dir::new("op-hostile");
    std::fs::write(dir.path("none.conf"), "").unwrap();
    let serve = |slow: bool| -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                if slow {
                    for b in b"HTTP/1.1 200 OK\r\n\r\n{}".iter().cycle().take(200) {
                        if s.write_all(&[*b]).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(2));
                    }
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 400000000\r\n\r\n");
                    let chunk = vec![b' '; 1 << 20];
                    for _ in 0..400 {
                        if s.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        format!("http://127.0.0.1:{port}")
    };
    let env = [("OPTICON_TOKEN", ADMIN_TOKEN), ("OPTICON_TENANT", TENANT)];
    let url = serve(false);
    let started = Instant::now();
    let out = client(&dir, &url, &env, &["tenant-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("larger than 128 MB"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < PATIENCE);
    let url = serve(true);
    let started = Instant::now();
    let out = client(&dir, &url, &env, &["--timeout", "3", "tenant-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("did not answer in full within 3 s"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let _ = TcpStream::connect("127.0.0.1:1");
}

/// `opticon-db` on a path that is no database says so; `--init` makes one.
#[test]
fn opticon_db_refuses_a_path_that_is_no_database() {
    let dir = Dir::new("op-notdb");
    let db = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_opticon-db"))
            .args(args)
            .output()
            .unwrap()
    };
    let missing = dir.s("typo/db");
    for args in [
        vec!["-p", &missing, "tenant-list"],
        vec!["-p", &missing, "tenant-create"],
    ] {
        let out = db(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(&format!(
                "{missing} is not an Opticon database (no such directory)"
            )),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!dir.path("typo").exists(), "nothing was created");
    let etc = dir.path("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "x").unwrap();
    let out = db(&["-p", etc.to_str().unwrap(), "tenant-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("holds neither tenants nor the database marker"));
    let out = db(&["--init", "-p", &missing, "tenant-create", "--name", "x"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path("typo/db/opticon.db").exists());
    let out = db(&["-p", &missing, "tenant-list"]);
    assert!(
        out.status.success() && text(&out.stdout).contains(" x"),
        "{}",
        text(&out.stdout)
    );
}

/// The host list comes from the index the collector keeps
/// (`tenant.hosts`), agrees with the files (`opticon-db host-list --json`
/// walks them), and follows a host deleted between two cycles.
#[test]
fn the_host_list_reads_the_collectors_index() {
    let dir = Dir::new("op-index");
    let key = common::create_tenant(&dir, TENANT, "indexed");
    give_to_service_user(&dir.path("db"));
    let (_collector, udp) = start_collector(&dir, "127.0.0.1");
    let (_api, url) = start_api(&dir);
    let load = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args([
            "--port",
            &udp.to_string(),
            "--tenant",
            TENANT,
            "--key",
            &key,
        ])
        .args(["--hosts", "3", "--duration", "3", "--rate", "6"])
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", text(&load.stderr));
    let index = dir.path(&format!("db/{TENANT}/tenant.hosts"));
    let list = || -> Vec<(String, Node)> {
        let out = admin(&dir, &url, &["host-list", "--json"]);
        let doc = conf::parse(&out).unwrap();
        let Some(Node::Array(hosts)) = doc.get("host") else {
            panic!("{out}")
        };
        let mut v: Vec<(String, Node)> = hosts
            .iter()
            .map(|h| {
                (
                    h.path("id").unwrap().as_str().unwrap().to_string(),
                    h.clone(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert!(wait_for(PATIENCE, || index.exists() && list().len() == 3));
    // Quiet now: the index and the files agree on every host's records.
    std::thread::sleep(Duration::from_secs(2));
    let walked = opticon_db(&dir, &["host-list", "--tenant", TENANT, "--json"]);
    let walked = conf::parse(&walked).unwrap();
    let Some(Node::Array(walked)) = walked.get("host") else {
        panic!()
    };
    let served = list();
    for w in walked {
        let id = w.path("id").unwrap().as_str().unwrap();
        let (_, s) = served.iter().find(|(h, _)| h == id).unwrap();
        for k in ["start", "end"] {
            assert_eq!(s.path(k), w.path(k), "{id} {k}");
        }
        let (a, b) = (
            s.path("usage").and_then(Node::as_int).unwrap(),
            w.path("usage").and_then(Node::as_int).unwrap(),
        );
        assert!((a - b).abs() * 10 <= b, "{id}: index {a} bytes, files {b}");
    }
    // Deleted between two cycles: gone from the list at once.
    let gone = served[0].0.clone();
    opticon_db(&dir, &["host-delete", "--tenant", TENANT, "--host", &gone]);
    let now = list();
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|(h, _)| *h != gone));
}
