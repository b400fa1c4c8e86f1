//! opticon-api speaks HTTP/1.1 as real clients and attackers do: curl's
//! chunked uploads with `Expect: 100-continue` on every write route,
//! request smuggling patterns, pipelines ended by a half-close, slow
//! readers of large responses, descriptor exhaustion, the failed-login
//! limit, and refused writes that change nothing.

use crate::api::{call, json, setup, start, start_with};
use crate::common::{
    self, wait_for_log, Daemon, ADMIN_TOKEN as ADMIN, HOST, OTHER_TENANT as B, PATIENCE,
    TENANT as A,
};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `curl` with a chunked body and `Expect: 100-continue`, as libcurl
/// sends an upload of unknown length; returns status, body and seconds.
fn curl_chunked(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String, f64) {
    let dir = std::env::temp_dir().join(format!(
        "opticon-curl-{}-{}",
        std::process::id(),
        path.len() + body.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-S", "-X", method])
        .args(["-H", "Transfer-Encoding: chunked"])
        .args(["-H", "Expect: 100-continue"])
        .args(["-H", "Content-Type: application/json"])
        .args(["-H", &format!("X-Opticon-Token: {token}")])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .args(["-w", "\n%{http_code} %{time_total}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut t = tail.split(' ');
    let status = t.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs = t.next().and_then(|s| s.parse().ok()).unwrap_or(99.0);
    (status, body.to_string(), secs)
}

/// Send `bytes` on a fresh connection, half-close, read to the end.
fn exchange(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(bytes).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn status_of(out: &str) -> &str {
    out.split(' ').nth(1).unwrap_or("")
}

#[test]
fn curl_uploads_chunked_with_expect_on_every_write_route() {
    let dir = setup("http-curl");
    let api = start(&dir, "");
    let p = api.port;
    let t = "5a1c0c1e-0000-4000-8000-00000000c0de";
    for (method, path, body) in [
        (
            "PUT",
            "/user/carol".to_string(),
            format!("{{\"password\": \"pw-carol\", \"tenant\": \"{A}\"}}"),
        ),
        (
            "POST",
            "/login".to_string(),
            r#"{"username": "carol", "password": "pw-carol"}"#.to_string(),
        ),
        (
            "POST",
            format!("/{t}"),
            r#"{"tenant": {"name": "curled"}}"#.to_string(),
        ),
        (
            "PUT",
            format!("/{A}"),
            r#"{"tenant": {"name": "alpha2"}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{A}/meta"),
            r#"{"metadata": {"owner": "ops"}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{A}/meter/extra/thing"),
            r#"{"meter": {"type": "integer", "description": "A thing"}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{A}/watcher/pcpu"),
            r#"{"watcher": {"warning": {"cmp": "gt", "val": 90}}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{A}/host/{HOST}/watcher/pcpu"),
            r#"{"watcher": {"alert": {"val": 95}}}"#.to_string(),
        ),
    ] {
        let (status, reply, secs) = curl_chunked(p, method, &path, ADMIN, &body);
        assert_eq!(status, 200, "{method} {path}: {reply}");
        // curl waits a second for a 100 Continue that never comes.
        assert!(
            secs < 0.9,
            "{method} {path} took {secs} s: no 100 Continue?"
        );
    }
    // What the uploads said is stored.
    let (_, meta) = call(p, "GET", &format!("/{A}/meta"), Some(ADMIN), "");
    assert!(meta.contains("\"owner\": \"ops\""), "{meta}");
    let (_, tenant) = call(p, "GET", &format!("/{t}"), Some(ADMIN), "");
    assert!(tenant.contains("curled"), "{tenant}");
}

#[test]
fn expect_continue_and_ambiguous_framing() {
    let dir = setup("http-frame");
    let api = start(&dir, "");
    let p = api.port;
    // Refused whatever the body: the final status at once, no body read.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(
        format!("POST /{A}/meta HTTP/1.1\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut first = [0u8; 512];
    let n = s.read(&mut first).unwrap();
    let first = String::from_utf8_lossy(&first[..n]).to_string();
    assert_eq!(status_of(&first), "401", "{first}");
    // Allowed: 100 Continue, then the body, then the answer.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = r#"{"metadata": {"a": 1}}"#;
    s.write_all(
        format!(
            "POST /{A}/meta HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut interim = [0u8; 64];
    let n = s.read(&mut interim).unwrap();
    assert_eq!(&interim[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert_eq!(status_of(&rest), "200", "{rest}");
    // Another tenant's route, with a valid user's token: 403 at once.
    let (s_, reply) = call(
        p,
        "PUT",
        "/user/dora",
        Some(ADMIN),
        &format!("{{\"password\": \"pw-dora\", \"tenant\": \"{B}\"}}"),
    );
    assert_eq!(s_, 200, "{reply}");
    let (_, login) = call(
        p,
        "POST",
        "/login",
        None,
        r#"{"username": "dora", "password": "pw-dora"}"#,
    );
    let dora = json(&login)
        .path("token")
        .and_then(|t| t.as_str())
        .unwrap()
        .to_string();
    let out = exchange(
        p,
        format!("POST /{A}/meta HTTP/1.1\r\nX-Opticon-Token: {dora}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&out), "403", "{out}");

    // The request-smuggling patterns a proxy could read differently.
    for (bytes, want) in [
        ("POST /login HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        ("POST /login HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400"),
        ("POST /login HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", "400"),
        ("POST /login HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", "400"),
        ("POST /login HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", "400"),
        ("POST /login HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", "400"),
        ("POST /login HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
        ("POST /login HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "501"),
        ("POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
        ("POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", "413"),
    ] {
        let out = exchange(p, bytes.as_bytes());
        assert_eq!(status_of(&out), want, "{bytes:?} -> {out}");
    }

    // A pipeline ended by the client's FIN: every request answered.
    let one = format!("GET /{A}/quota HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\n\r\n");
    let out = exchange(p, format!("{one}{one}{one}").as_bytes());
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
    // A chunked body in a pipeline, trailers and extensions included.
    let chunked = format!(
        "POST /{A}/meta HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{{\"met\r\n11\r\nadata\": {{\"b\": 2}}}}\r\n0\r\nX-Checksum: none\r\n\r\n{one}"
    );
    let out = exchange(p, chunked.as_bytes());
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("\"b\": 2"), "{out}");
}

#[test]
fn slow_readers_never_hold_a_worker() {
    let dir = setup("http-slow");
    // A large overview (about 9 MB), as 10,000 hosts make.
    let mut overview = String::from("{\"overview\": {");
    for i in 0..10_000 {
        if i > 0 {
            overview.push(',');
        }
        overview.push_str(&format!(
            "\n\"{:08x}-0000-4000-8000-000000000000\": {{\"hostname\": \"{}\"}}",
            i,
            "h".repeat(880)
        ));
    }
    overview.push_str("\n}}\n");
    std::fs::write(dir.path("db").join(A).join("tenant.overview"), &overview).unwrap();
    common::give_to_service_user(&dir.path("db"));
    let api = start_with(&dir, "", "workers 8");
    let p = api.port;
    let request = format!("GET /{A}/host/overview HTTP/1.1\r\nX-Opticon-Token: {ADMIN}\r\n\r\n");
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s
        })
        .collect();
    // Each slow reader takes 512 bytes now and then; meanwhile others are
    // answered at once (the old server held every worker until its write
    // timeout).
    let mut worst = Duration::ZERO;
    for _ in 0..6 {
        for s in &mut slow {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
        }
        let started = Instant::now();
        let (status, _) = call(p, "GET", &format!("/{A}/quota"), Some(ADMIN), "");
        assert_eq!(status, 200);
        worst = worst.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        worst < Duration::from_secs(1),
        "a request took {worst:?} beside slow readers"
    );
    // The slow readers miss the whole-response deadline (2 s): closed.
    for mut s in slow {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut sink = Vec::new();
        let started = Instant::now();
        let r = s.read_to_end(&mut sink);
        assert!(
            r.is_ok() || started.elapsed() < PATIENCE,
            "a slow reader was never closed"
        );
        assert!(
            sink.len() < overview.len(),
            "a slow reader got the whole response"
        );
    }
    let (_, metrics) = call(p, "GET", "/metrics", Some(ADMIN), "");
    let timeouts: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("opticon_api_timeouts_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(timeouts >= 8, "{metrics}");
}

#[test]
fn out_of_descriptors_the_api_rests_and_recovers() {
    let dir = setup("http-fds");
    let port = common::free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} timeout 20 connections 1024 per_address 1024 }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN}\" }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let daemon = Daemon(
        Command::new("prlimit")
            .args(["--nofile=256:256", "--"])
            .arg(env!("CARGO_BIN_EXE_opticon-api"))
            .args([
                "-f",
                "-c",
                &dir.s("api.conf"),
                "-l",
                &dir.s("api.log"),
                "-p",
                &dir.s("api.pid"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = dir.path("api.log");
    wait_for_log(&log, "listening on");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("descriptor limit 256"));
    let pid = std::fs::read_to_string(dir.path("api.pid"))
        .unwrap()
        .trim()
        .to_string();
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
    };
    // 300 connections against 256 descriptors.
    let held: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    wait_for_log(&log, "accept:");
    // Resting, not spinning: far less than a core over two seconds.
    let before = cpu();
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu() - before;
    assert!(
        ticks < 100,
        "{ticks} clock ticks in 2 s: the poll loop spins"
    );
    drop(held);
    // Descriptors free again: served as before, the failures counted.
    let mut answered = false;
    let end = Instant::now() + PATIENCE;
    while !answered && Instant::now() < end {
        answered = call(port, "GET", &format!("/{A}/quota"), Some(ADMIN), "").0 == 200;
    }
    assert!(answered, "the API did not recover");
    let (_, metrics) = call(port, "GET", "/metrics", Some(ADMIN), "");
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("opticon_api_accept_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(failures > 0, "{metrics}");
    drop(daemon);
}

#[test]
fn failed_logins_are_limited_and_refused_writes_change_nothing() {
    let dir = setup("http-login");
    let api = start(&dir, "");
    let p = api.port;
    let (s, r) = call(
        p,
        "PUT",
        "/user/erin",
        Some(ADMIN),
        &format!("{{\"password\": \"pw-erin\", \"tenant\": \"{A}\"}}"),
    );
    assert_eq!((s, r.as_str()), (200, "{\n    \"result\": \"ok\"\n}\n"));
    // A user of tenant A, logged in before the failures below.
    call(
        p,
        "PUT",
        "/user/fred",
        Some(ADMIN),
        &format!("{{\"password\": \"pw-fred\", \"tenant\": \"{A}\"}}"),
    );
    let (_, login) = call(
        p,
        "POST",
        "/login",
        None,
        r#"{"username": "fred", "password": "pw-fred"}"#,
    );
    let fred = json(&login)
        .path("token")
        .and_then(|t| t.as_str())
        .unwrap()
        .to_string();
    for i in 0..10 {
        let (s, _) = call(
            p,
            "POST",
            "/login",
            None,
            r#"{"username": "erin", "password": "wrong"}"#,
        );
        assert_eq!(s, 403, "failed login {i}");
    }
    // The burst is spent: refused before any password is checked, even
    // the right one, with the time to wait.
    let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = r#"{"username": "erin", "password": "pw-erin"}"#;
    c.write_all(
        format!(
            "POST /login HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert_eq!(status_of(&out), "429", "{out}");
    assert!(out.contains("Retry-After: "), "{out}");
    let (_, metrics) = call(p, "GET", "/metrics", Some(ADMIN), "");
    assert!(
        metrics.contains("opticon_api_login_refused_total 1"),
        "{metrics}"
    );

    // Its token: writes it may not make change nothing on disk.
    let tenant_a = dir.path("db").join(A).join("tenant.conf");
    let tenant_b = dir.path("db").join(B).join("tenant.conf");
    let before = (
        std::fs::read(&tenant_a).unwrap(),
        std::fs::read(&tenant_b).unwrap(),
    );
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (method, path, body) in [
        (
            "PUT",
            format!("/{A}"),
            format!("{{\"tenant\": {{\"key\": \"{key}\", \"name\": \"evil\"}}}}"),
        ),
        (
            "PUT",
            format!("/{A}"),
            format!("{{\"tenant\": {{\"key\": \"{key}\", \"quota\": 1}}}}"),
        ),
        (
            "POST",
            format!("/{B}/meta"),
            r#"{"metadata": {"x": 1}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{B}/meter/x"),
            r#"{"meter": {"type": "integer"}}"#.to_string(),
        ),
        (
            "POST",
            format!("/{B}/watcher/pcpu"),
            r#"{"watcher": {"warning": {"val": 1}}}"#.to_string(),
        ),
        ("DELETE", format!("/{B}"), String::new()),
        (
            "POST",
            format!("/{B}"),
            r#"{"tenant": {"name": "x"}}"#.to_string(),
        ),
        (
            "PUT",
            "/user/fred".to_string(),
            r#"{"password": "x", "level": "ADMIN"}"#.to_string(),
        ),
    ] {
        let (s, reply) = call(p, method, &path, Some(&fred), &body);
        assert_eq!(s, 403, "{method} {path}: {reply}");
    }
    let after = (
        std::fs::read(&tenant_a).unwrap(),
        std::fs::read(&tenant_b).unwrap(),
    );
    assert!(before == after, "a refused request changed a tenant");
}

#[test]
fn sighup_reloads_meters_and_keeps_the_last_good_config() {
    let dir = setup("http-reload");
    let port = common::free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN}\" }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    std::fs::write(dir.path("meter.conf"), "meter { x/one { type integer } }\n").unwrap();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_opticon-api"))
            .args(["-f", "-c", &dir.s("api.conf"), "-m", &dir.s("meter.conf")])
            .args(["-l", &dir.s("api.log"), "-p", &dir.s("api.pid")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = dir.path("api.log");
    wait_for_log(&log, "listening on");
    let meters = || call(port, "GET", &format!("/{A}/meter"), Some(ADMIN), "").1;
    assert!(meters().contains("x/one"));
    let hup = || {
        // SAFETY: signals the daemon this test started.
        unsafe { libc::kill(daemon.0.id() as i32, libc::SIGHUP) };
    };
    std::fs::write(dir.path("meter.conf"), "meter { x/two { type integer } }\n").unwrap();
    hup();
    wait_for_log(&log, "configuration reloaded");
    let now = meters();
    assert!(now.contains("x/two") && !now.contains("x/one"), "{now}");
    // A broken file: the last good configuration stays, not the first.
    std::fs::write(dir.path("meter.conf"), "meter { x/three { type integer ").unwrap();
    hup();
    wait_for_log(&log, "reload failed, keeping the running configuration");
    let mut served = String::new();
    let end = Instant::now() + PATIENCE;
    while !served.contains("\"meter\"") && Instant::now() < end {
        served = meters();
    }
    assert!(
        served.contains("x/two") && !served.contains("x/three"),
        "{served}"
    );
}
