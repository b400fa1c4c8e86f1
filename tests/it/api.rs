//! opticon-api as a real process over a database made with opticon-db:
//! routes and their JSON shapes, logins, tenant isolation on every
//! tenant route, the admin token only from admin hosts, and hostile HTTP.

use crate::common;

use common::{
    give_to_service_user, opticon_db as db, start_daemon, wait_for, Daemon, Dir,
    ADMIN_TOKEN as ADMIN, HOST, OTHER_TENANT as B, PATIENCE, TENANT as A,
};
use opticon::conf::{self, Node};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

pub(crate) struct Api {
    pub(crate) port: u16,
    pub(crate) _daemon: Daemon,
}

/// One request on a fresh connection; returns status and body.
pub(crate) fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("X-Opticon-Token: {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

pub(crate) fn json(body: &str) -> Node {
    Node::Dict(conf::parse(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

/// Start the API; `auth` goes into its auth section, `more` into its
/// network section.
pub(crate) fn start_with(dir: &Dir, auth: &str, more: &str) -> Api {
    let port = common::free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} timeout 2 {more} }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN}\" {auth} }}\ncors {{ origins [\"https://dash.example\"] }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let daemon = start_daemon(dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    assert!(
        wait_for(PATIENCE, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "the API never listened"
    );
    Api {
        port,
        _daemon: daemon,
    }
}

pub(crate) fn start(dir: &Dir, auth: &str) -> Api {
    start_with(dir, auth, "")
}

pub(crate) fn setup(tag: &str) -> Dir {
    let dir = Dir::new(tag);
    db(&dir, &["tenant-create", "--tenant", A, "--name", "alpha"]);
    db(&dir, &["tenant-create", "--tenant", B, "--name", "beta"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - now % 60 - 600;
    let mut lines = String::new();
    for i in 0..10 {
        lines.push_str(&format!(
            "{{\"time\": {}, \"meters\": {{\"hostname\": \"web-01\", \"pcpu\": {}.5, \"status\": \"OK\", \"loadavg\": [0.5, 0.25, 0.1], \"df\": [{{\"device\": \"/dev/vda1\", \"pused\": 41}}]}}}}\n",
            start + i * 60,
            10 + i
        ));
    }
    std::fs::write(dir.path("samples.json"), lines).unwrap();
    db(
        &dir,
        &["-t", A, "-H", HOST, "host-import", &dir.s("samples.json")],
    );
    give_to_service_user(&dir.path("db"));
    dir
}

#[test]
fn routes_logins_and_tenant_isolation() {
    let dir = setup("api-routes");
    let api = start(&dir, "");
    let p = api.port;
    let admin = Some(ADMIN);

    // No token: 401; a wrong token: 401; the admin token: everything.
    assert_eq!(call(p, "GET", "/", None, "").0, 401);
    assert_eq!(call(p, "GET", "/", Some(B), "").0, 401);
    let (s, body) = call(p, "GET", "/", admin, "");
    assert_eq!(s, 200, "{body}");
    let list = json(&body);
    let Some(Node::Array(tenants)) = list.path("tenant") else {
        panic!("{body}")
    };
    assert_eq!(tenants.len(), 2);

    // Users: one per tenant, logins that give tokens.
    for (name, tenant) in [("ann", A), ("bob", B)] {
        let (s, body) = call(
            p,
            "PUT",
            &format!("/user/{name}"),
            admin,
            &format!("{{\"password\": \"pw-{name}\", \"tenant\": \"{tenant}\"}}"),
        );
        assert_eq!(s, 200, "{body}");
    }
    let users = std::fs::read_to_string(dir.path("db/api.users")).unwrap();
    assert!(users.contains("pbkdf2-sha256$") && !users.contains("pw-ann"));
    assert_eq!(
        call(
            p,
            "POST",
            "/login",
            None,
            r#"{"username": "ann", "password": "wrong"}"#
        )
        .0,
        403,
        "a failed login answers 403, as the original"
    );
    let login = |user: &str| {
        let (s, body) = call(
            p,
            "POST",
            "/login",
            None,
            &format!("{{\"username\": \"{user}\", \"password\": \"pw-{user}\"}}"),
        );
        assert_eq!(s, 200, "{body}");
        json(&body)
            .path("token")
            .and_then(Node::as_str)
            .unwrap()
            .to_string()
    };
    let ann = login("ann");
    let bob = login("bob");

    // Ann sees her tenant and its host.
    let (s, body) = call(p, "GET", "/", Some(&ann), "");
    assert_eq!(s, 200);
    assert!(body.contains(A) && !body.contains(B), "{body}");
    let (s, body) = call(p, "GET", "/token", Some(&ann), "");
    assert_eq!(
        (
            s,
            json(&body).path("token/userlevel").and_then(Node::as_str)
        ),
        (200, Some("AUTH_USER"))
    );
    let (s, body) = call(p, "GET", &format!("/{A}/host/{HOST}"), Some(&ann), "");
    assert_eq!(s, 200, "{body}");
    let rec = json(&body);
    assert_eq!(rec.path("hostname").and_then(Node::as_str), Some("web-01"));
    assert_eq!(rec.path("pcpu").and_then(Node::as_f64), Some(19.5));
    // A new record replaces the cached one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        dir.path("next.json"),
        format!("{{\"time\": {now}, \"meters\": {{\"hostname\": \"web-01\", \"pcpu\": 77.5}}}}\n"),
    )
    .unwrap();
    db(
        &dir,
        &["-t", A, "-H", HOST, "host-import", &dir.s("next.json")],
    );
    give_to_service_user(&dir.path("db"));
    let (_, body) = call(p, "GET", &format!("/{A}/host/{HOST}"), Some(&ann), "");
    assert_eq!(
        json(&body).path("pcpu").and_then(Node::as_f64),
        Some(77.5),
        "{body}"
    );
    let (s, body) = call(p, "GET", &format!("/{A}/host"), Some(&ann), "");
    assert_eq!(s, 200);
    assert!(json(&body).path("host").is_some(), "{body}");
    let (s, body) = call(
        p,
        "GET",
        &format!("/{A}/host/{HOST}/range/-1d/now?meter=pcpu"),
        Some(&ann),
        "",
    );
    assert_eq!(s, 200, "{body}");
    let Some(Node::Array(points)) = json(&body).path("range/series/pcpu").cloned() else {
        panic!("{body}")
    };
    assert_eq!(points.len(), 11);
    let (s, body) = call(p, "GET", &format!("/{A}/meter"), Some(&ann), "");
    assert_eq!(s, 200);
    assert!(json(&body).path("meter").is_some());
    let (s, body) = call(
        p,
        "POST",
        &format!("/{A}/watcher/pcpu"),
        Some(&ann),
        r#"{"watcher": {"warning": {"cmp": "gt", "val": 5, "weight": 1}}}"#,
    );
    assert_eq!(s, 200, "{body}");
    let (_, body) = call(p, "GET", &format!("/{A}/watcher"), Some(&ann), "");
    assert_eq!(
        json(&body)
            .path("watcher/pcpu/warning/origin")
            .and_then(Node::as_str),
        Some("tenant"),
        "{body}"
    );
    let (s, body) = call(p, "GET", &format!("/{A}/quota"), Some(&ann), "");
    assert_eq!(s, 200);
    assert_eq!(json(&body).path("quota").and_then(Node::as_int), Some(128));

    // Bob, of tenant B, gets 403 on every route of tenant A.
    let routes = [
        ("GET", format!("/{A}")),
        ("PUT", format!("/{A}")),
        ("GET", format!("/{A}/summary")),
        ("GET", format!("/{A}/quota")),
        ("GET", format!("/{A}/meta")),
        ("POST", format!("/{A}/meta")),
        ("GET", format!("/{A}/meter")),
        ("POST", format!("/{A}/meter/x/y")),
        ("DELETE", format!("/{A}/meter/x/y")),
        ("GET", format!("/{A}/watcher")),
        ("POST", format!("/{A}/watcher/pcpu")),
        ("DELETE", format!("/{A}/watcher/pcpu")),
        ("GET", format!("/{A}/host")),
        ("GET", format!("/{A}/host/overview")),
        ("GET", format!("/{A}/host/{HOST}")),
        ("DELETE", format!("/{A}/host/{HOST}")),
        ("GET", format!("/{A}/host/{HOST}/log")),
        ("GET", format!("/{A}/host/{HOST}/time/now")),
        ("GET", format!("/{A}/host/{HOST}/range/now/now")),
        ("GET", format!("/{A}/host/{HOST}/watcher")),
        ("POST", format!("/{A}/host/{HOST}/watcher/pcpu")),
        ("DELETE", format!("/{A}/host/{HOST}/watcher/pcpu")),
        ("DELETE", format!("/{A}")),
        ("POST", format!("/{A}")),
        ("GET", "/any/host/overview".to_string()),
        ("PUT", "/user/eve".to_string()),
        ("GET", "/session".to_string()),
    ];
    for (method, path) in &routes {
        let (s, body) = call(p, method, path, Some(&bob), "{}");
        assert!(
            s == 403 || (s == 404 && path == "/session"),
            "bob {method} {path}: {s} {body}"
        );
    }
    // Still there after all of Bob's attempts.
    assert_eq!(
        call(p, "GET", &format!("/{A}/host/{HOST}"), Some(&ann), "").0,
        200
    );

    // Sessions survive a restart of the API.
    drop(api);
    let api = start(&dir, "");
    assert_eq!(
        call(api.port, "GET", &format!("/{A}/quota"), Some(&ann), "").0,
        200
    );

    // Prometheus text for the admin hosts (loopback here).
    let (s, body) = call(api.port, "GET", "/metrics", None, "");
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("opticon_hosts{tenant="), "{body}");
}

#[test]
fn the_admin_token_only_counts_from_admin_hosts() {
    let dir = setup("api-admin-hosts");
    let api = start(&dir, "admin_hosts [\"192.0.2.0/24\"]");
    let (s, _) = call(api.port, "GET", "/", Some(ADMIN), "");
    assert_eq!(s, 401, "admin token from a non-admin address");
    assert_eq!(call(api.port, "GET", "/metrics", None, "").0, 403);
    // X-Forwarded-For is not believed from a client that is no proxy.
    let forwarded = |port: u16| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET / HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\nX-Forwarded-For: 203.0.113.9, 192.0.2.7\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(forwarded(api.port).contains(" 401 "));
    // SIGHUP: loopback becomes an admin host.
    std::fs::write(
        dir.path("api.conf"),
        std::fs::read_to_string(dir.path("api.conf"))
            .unwrap()
            .replace("192.0.2.0/24", "127.0.0.1"),
    )
    .unwrap();
    let pid = std::fs::read_to_string(dir.path("api.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_for(PATIENCE, || call(api.port, "GET", "/", Some(ADMIN), "").0
            == 200),
        "SIGHUP did not reload"
    );
    drop(api);
    // Behind a configured proxy, the last X-Forwarded-For entry is the
    // client: 192.0.2.7 is an admin host, the proxy itself is not.
    let api = start_with(
        &dir,
        "admin_hosts [\"192.0.2.0/24\"]",
        "proxies [\"127.0.0.1\"]",
    );
    assert!(
        forwarded(api.port).contains(" 200 "),
        "{}",
        forwarded(api.port)
    );
    assert_eq!(call(api.port, "GET", "/", Some(ADMIN), "").0, 401);
    // CORS only for the configured origin.
    let cors = |origin: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", api.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!("OPTIONS / HTTP/1.1\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let ok = cors("https://dash.example");
    assert!(
        ok.contains(" 200 ") && ok.contains("Access-Control-Allow-Origin: https://dash.example"),
        "{ok}"
    );
    assert!(!cors("https://evil.example").contains("Access-Control-Allow-Origin"));
}

#[test]
fn hostile_http_gets_4xx_and_never_a_stuck_server() {
    let dir = setup("api-hostile");
    let api = start(&dir, "");
    let p = api.port;
    let raw = |bytes: &[u8]| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let status = |out: &str| out.split(' ').nth(1).unwrap_or("").to_string();
    // Slow clients first: they must not hold the workers.
    let slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
            s
        })
        .collect();
    let huge_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    for (bytes, want) in [
        (b"BLAH\r\n\r\n".to_vec(), "400"),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), "505"),
        (huge_header.into_bytes(), "431"),
        (
            b"POST /login HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n".to_vec(),
            "413",
        ),
        (
            b"POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            b"POST /login HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            "501",
        ),
        (
            b"POST /login HTTP/1.1\r\nContent-Length: 5\r\n\r\n{{{{{".to_vec(),
            "400",
        ),
        (
            format!("GET /{A}/host/..%2F..%2Fetc/log HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\n\r\n")
                .into_bytes(),
            "404",
        ),
        (
            format!("GET /../../etc/passwd HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\n\r\n")
                .into_bytes(),
            "404",
        ),
    ] {
        let out = raw(&bytes);
        assert_eq!(
            status(&out),
            want,
            "{:?} -> {out}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
        assert!(out.contains("\"error\""), "{out}");
    }
    // The slow clients time out (408 or closed); meanwhile the server
    // answered everyone else.
    let (s, _) = call(p, "GET", "/", Some(ADMIN), "");
    assert_eq!(s, 200);
    // network/timeout is 2 s: each slow client is answered 408 or closed
    // well before 15 s, and a server that never closes fails here.
    let started = std::time::Instant::now();
    for mut s in slow {
        let left = Duration::from_secs(15).saturating_sub(started.elapsed());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut out = String::new();
        let closed = s.read_to_string(&mut out);
        assert!(
            closed.is_ok(),
            "a slow client was still connected after {:?}: {closed:?}",
            started.elapsed()
        );
        assert!(out.is_empty() || out.contains(" 408 "), "{out}");
    }
    // Keep-alive: two requests on one connection.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let one = format!("GET /{A}/quota HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\n\r\n");
    s.write_all(format!("{one}{one}").as_bytes()).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("HTTP/1.1 200").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// As the original: `origin` marks each watcher level that was set, and
/// a level goes back to the defaults (no mark) when deleted.
#[test]
fn watcher_origins_are_per_level() {
    let dir = setup("api-origins");
    let api = start(&dir, "");
    let p = api.port;
    let level_origin = |path: &str, level: &str| {
        let (_, body) = call(p, "GET", path, Some(ADMIN), "");
        json(&body)
            .path(&format!("watcher/pcpu/{level}/origin"))
            .and_then(Node::as_str)
            .map(String::from)
    };
    let watchers = format!("/{A}/watcher");
    assert_eq!(level_origin(&watchers, "alert"), None);
    let (s, body) = call(
        p,
        "POST",
        &format!("/{A}/watcher/pcpu"),
        Some(ADMIN),
        r#"{"watcher": {"alert": {"cmp": "gt", "val": 97}}}"#,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(level_origin(&watchers, "alert").as_deref(), Some("tenant"));
    assert_eq!(
        level_origin(&watchers, "warning"),
        None,
        "only alert was set"
    );
    // A host's own level over the tenant's.
    let host_watchers = format!("/{A}/host/{HOST}/watcher");
    call(
        p,
        "POST",
        &format!("/{A}/host/{HOST}/watcher/pcpu"),
        Some(ADMIN),
        r#"{"watcher": {"critical": {"val": 99}}}"#,
    );
    assert_eq!(
        level_origin(&host_watchers, "critical").as_deref(),
        Some("host")
    );
    assert_eq!(
        level_origin(&host_watchers, "alert").as_deref(),
        Some("tenant")
    );
    // Deleted: back to the defaults, and the meter is not the tenant's.
    let (s, body) = call(p, "DELETE", &format!("/{A}/watcher/pcpu"), Some(ADMIN), "");
    assert_eq!(
        (s, body.contains("\"deleted\": \"pcpu\"")),
        (200, true),
        "{body}"
    );
    assert!(body.contains("\"watcher\""), "{body}");
    assert_eq!(level_origin(&watchers, "alert"), None);
    let (_, meters) = call(p, "GET", &format!("/{A}/meter"), Some(ADMIN), "");
    assert_eq!(json(&meters).path("meter/pcpu/origin"), None, "{meters}");
    // Graph definitions carry max as the original does (a whole number).
    let (_, graphs) = call(
        p,
        "GET",
        &format!("/{A}/host/{HOST}/graph"),
        Some(ADMIN),
        "",
    );
    assert_eq!(
        json(&graphs).path("graph/cpu/usage/max"),
        Some(&Node::Int(10)),
        "{graphs}"
    );
}

/// A tenant day file with a zeroed header never makes a tenant route
/// answer 500: the listing and the host's routes serve what is readable.
#[test]
fn damaged_day_files_never_answer_500() {
    let dir = setup("api-damaged");
    let host_dir = dir.path("db").join(A).join(HOST);
    let days_dir = dir.path("db").join(A).join("days");
    for entry in std::fs::read_dir(&days_dir).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "otd") {
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[..32].fill(0);
            std::fs::write(&p, bytes).unwrap();
        }
    }
    std::fs::write(host_dir.join("host.log"), vec![0x33; 300]).unwrap();
    let api = start(&dir, "");
    let p = api.port;
    for path in [
        format!("/{A}/host"),
        format!("/{A}/host/{HOST}/log"),
        format!("/{A}/host/{HOST}/range/-1d/now"),
        format!("/{A}/host/{HOST}/graph/cpu/usage/3600/10"),
        format!("/{A}/host/overview"),
    ] {
        let (s, body) = call(p, "GET", &path, Some(ADMIN), "");
        assert_eq!(s, 200, "{path}: {body}");
    }
    let (s, body) = call(p, "GET", &format!("/{A}/host/{HOST}"), Some(ADMIN), "");
    assert_eq!(s, 404, "no readable record: {body}");
    let (_, list) = call(p, "GET", &format!("/{A}/host"), Some(ADMIN), "");
    assert!(list.contains(HOST), "{list}");
}
