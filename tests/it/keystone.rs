//! `auth_method both` against a fake Keystone (identity v3 shapes) on
//! loopback: valid, reader, admin, expired, unscoped, foreign project,
//! revoked, slow and down tokens; the cache (no second validation inside
//! the TTL), the negative cache, failing closed, tenant isolation, the
//! login through the API and the counters in `/metrics`.

use crate::common;

use common::{
    create_tenant, free_port, give_to_service_user, start_daemon, Dir, ADMIN_TOKEN, OTHER_TENANT,
    TENANT,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FOREIGN: &str = "99999999-9999-4999-8999-999999999999";

/// The fake: answers `GET /v3/auth/tokens` by the subject token, and a
/// password login; counts validations per token.
struct FakeKeystone {
    port: u16,
    seen: Arc<Mutex<HashMap<String, usize>>>,
    down: Arc<AtomicBool>,
}

fn token_doc(project: Option<&str>, roles: &[&str], expires: &str) -> String {
    let roles: Vec<String> = roles
        .iter()
        .map(|r| format!("{{\"id\": \"r-{r}\", \"name\": \"{r}\"}}"))
        .collect();
    let project = project
        .map(|p| format!(", \"project\": {{\"id\": \"{}\", \"name\": \"p\", \"domain\": {{\"id\": \"default\", \"name\": \"Default\"}}}}", p.replace('-', "")))
        .unwrap_or_default();
    format!(
        "{{\"token\": {{\"methods\": [\"password\"], \"user\": {{\"id\": \"u1\", \"name\": \"ann\", \"domain\": {{\"id\": \"default\", \"name\": \"Default\"}}}}, \"expires_at\": \"{expires}\", \"issued_at\": \"2026-01-01T00:00:00.000000Z\", \"roles\": [{}]{project}}}}}",
        roles.join(", ")
    )
}

fn serve(mut s: TcpStream, seen: &Mutex<HashMap<String, usize>>, down: &AtomicBool) {
    if down.load(Ordering::SeqCst) {
        return;
    }
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    let future = "2099-01-01T00:00:00.000000Z";
    let (status, extra, doc) = if line.starts_with("GET /v3/auth/projects") {
        let me = headers.get("x-auth-token").cloned().unwrap_or_default();
        if me == "tok-a" {
            let ids = [TENANT, OTHER_TENANT, FOREIGN].map(|t| t.replace('-', ""));
            (
                200,
                "",
                format!(
                    "{{\"projects\": [{{\"id\": \"{}\"}}, {{\"id\": \"{}\"}}, {{\"id\": \"{}\"}}]}}",
                    ids[0], ids[1], ids[2]
                ),
            )
        } else {
            (401, "", "{}".into())
        }
    } else if line.starts_with("POST /v3/auth/tokens") {
        if String::from_utf8_lossy(&body)
            .replace(" ", "")
            .contains("\"password\":\"pw\"")
        {
            (
                201,
                "X-Subject-Token: tok-a\r\n",
                token_doc(Some(TENANT), &["member"], future),
            )
        } else {
            (401, "", "{\"error\": {\"code\": 401}}".into())
        }
    } else {
        let subject = headers.get("x-subject-token").cloned().unwrap_or_default();
        *seen.lock().unwrap().entry(subject.clone()).or_default() += 1;
        match subject.as_str() {
            "tok-a" | "tok-fresh" => (
                200,
                "",
                token_doc(Some(TENANT), &["reader", "member"], future),
            ),
            "tok-reader" => (200, "", token_doc(Some(TENANT), &["reader"], future)),
            "tok-admin" => (
                200,
                "",
                token_doc(Some(OTHER_TENANT), &["admin", "member", "reader"], future),
            ),
            "tok-expired" => (
                200,
                "",
                token_doc(Some(TENANT), &["member"], "2020-01-01T00:00:00.000000Z"),
            ),
            "tok-unscoped" => (200, "", token_doc(None, &[], future)),
            "tok-foreign" => (200, "", token_doc(Some(FOREIGN), &["member"], future)),
            "tok-slow" => {
                std::thread::sleep(Duration::from_secs(4));
                (200, "", token_doc(Some(TENANT), &["member"], future))
            }
            _ => (
                404,
                "",
                "{\"error\": {\"code\": 404, \"message\": \"Could not find token\"}}".into(),
            ),
        }
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{doc}",
        doc.len()
    );
}

impl FakeKeystone {
    fn start() -> FakeKeystone {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (s2, d2) = (Arc::clone(&seen), Arc::clone(&down));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s3, d3) = (Arc::clone(&s2), Arc::clone(&d2));
                std::thread::spawn(move || serve(conn, &s3, &d3));
            }
        });
        FakeKeystone { port, seen, down }
    }

    fn validations(&self, token: &str) -> usize {
        self.seen.lock().unwrap().get(token).copied().unwrap_or(0)
    }
}

/// One request; status and body.
fn call(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn keystone_tokens_are_validated_cached_and_fail_closed() {
    let ks = FakeKeystone::start();
    let dir = Dir::new("keystone");
    create_tenant(&dir, TENANT, "alpha");
    create_tenant(&dir, OTHER_TENANT, "beta");
    give_to_service_user(&dir.path("db"));
    let port = free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\n\
             auth {{ admin_token \"{ADMIN_TOKEN}\" auth_method both keystone_url \"http://127.0.0.1:{}\"\n\
             cache_ttl 300 negative_ttl 30 timeout 1 admin_projects [\"{OTHER_TENANT}\"]\n\
             roles {{ admin [admin] edit [member] view [reader] }} }}\n",
            dir.s("db"),
            ks.port
        ),
    )
    .unwrap();
    let _api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    let get = |path: &str, token: &str| call(port, "GET", path, &[("X-Auth-Token", token)], "");
    let a = format!("/{TENANT}/host/overview");
    let b = format!("/{OTHER_TENANT}/host/overview");

    // A valid member token: its project is its tenant, and only that.
    assert_eq!(get(&a, "tok-a").0, 200);
    let (status, who) = get("/token", "tok-a");
    assert_eq!(status, 200);
    assert!(who.contains("AUTH_USER") && who.contains(TENANT), "{who}");
    // Its other projects that are tenants, when asked.
    let (status, mine) = get("/token?projects=1", "tok-a");
    assert_eq!(status, 200, "{mine}");
    let doc = opticon::conf::Node::Dict(opticon::conf::parse(&mine).unwrap());
    let Some(opticon::conf::Node::Array(projects)) = doc.path("token/projects") else {
        panic!("{mine}")
    };
    assert_eq!(
        projects.len(),
        2,
        "the foreign project is no tenant: {mine}"
    );
    for path in [
        b.clone(),
        format!("/{OTHER_TENANT}/meter"),
        format!("/{OTHER_TENANT}/summary"),
        "/session".into(),
        "/any/host/overview".into(),
    ] {
        assert_eq!(get(&path, "tok-a").0, 403, "{path}");
    }
    assert_eq!(
        call(
            port,
            "DELETE",
            &format!("/{OTHER_TENANT}"),
            &[("X-Auth-Token", "tok-a")],
            ""
        )
        .0,
        403
    );
    // Cached: many requests, one validation.
    for _ in 0..5 {
        assert_eq!(get(&a, "tok-a").0, 200);
    }
    assert_eq!(ks.validations("tok-a"), 1, "validated once inside the TTL");
    // A reader reads and may not write.
    assert_eq!(get(&a, "tok-reader").0, 200);
    let set = call(
        port,
        "POST",
        &format!("/{TENANT}/watcher/pcpu"),
        &[("X-Auth-Token", "tok-reader")],
        "{\"watcher\": {\"warning\": {\"cmp\": \"gt\", \"val\": 90}}}",
    );
    assert_eq!(set.0, 403, "{}", set.1);
    let set = call(
        port,
        "POST",
        &format!("/{TENANT}/watcher/pcpu"),
        &[("X-Auth-Token", "tok-a")],
        "{\"watcher\": {\"warning\": {\"cmp\": \"gt\", \"val\": 90}}}",
    );
    assert_eq!(set.0, 200, "{}", set.1);
    // An admin-role token of an admin project administers.
    let (status, list) = get("/", "tok-admin");
    assert!(
        status == 200 && list.contains(TENANT) && list.contains(OTHER_TENANT),
        "{status} {list}"
    );
    // Refusals, each saying why, and remembered.
    let (status, why) = get(&a, "tok-expired");
    assert_eq!(status, 401, "{why}");
    let (status, why) = get(&a, "tok-unscoped");
    assert!(
        status == 403 && why.contains("not scoped to a project"),
        "{status} {why}"
    );
    let (status, why) = get(&a, "tok-foreign");
    assert!(
        status == 403 && why.contains("is no Opticon tenant"),
        "{status} {why}"
    );
    let (status, _) = get(&a, "tok-revoked");
    assert_eq!(status, 401);
    assert_eq!(get(&a, "tok-revoked").0, 401);
    assert_eq!(ks.validations("tok-revoked"), 1, "refusals are cached");
    // Slow Keystone: 503 within the timeout, not a hang.
    let started = std::time::Instant::now();
    let (status, why) = get(&a, "tok-slow");
    assert!(
        status == 503 && why.contains("Keystone cannot be reached"),
        "{status} {why}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // Down: cached tokens still served, others refused (fail closed).
    ks.down.store(true, Ordering::SeqCst);
    assert_eq!(get(&a, "tok-a").0, 200, "a cached token survives an outage");
    assert_eq!(
        get(&a, "tok-fresh").0,
        503,
        "an unknown token is refused while Keystone is down"
    );
    ks.down.store(false, Ordering::SeqCst);
    assert_eq!(get(&a, "tok-fresh").0, 200, "an outage is not cached");
    // Internal users keep working beside Keystone (auth_method both).
    let (status, methods) = call(port, "GET", "/auth/methods", &[], "");
    assert!(
        status == 200 && methods.contains("internal") && methods.contains("openstack"),
        "{methods}"
    );
    // The dashboard's login through the API.
    let (status, body) = call(
        port,
        "POST",
        "/login/keystone",
        &[],
        &format!("{{\"username\": \"ann\", \"password\": \"pw\", \"project\": \"{TENANT}\"}}"),
    );
    assert!(status == 200 && body.contains("tok-a"), "{status} {body}");
    let (status, _) = call(
        port,
        "POST",
        "/login/keystone",
        &[],
        &format!("{{\"username\": \"ann\", \"password\": \"no\", \"project\": \"{TENANT}\"}}"),
    );
    assert_eq!(status, 401);
    // The counters.
    let (_, metrics) = call(
        port,
        "GET",
        "/metrics",
        &[("X-Opticon-Token", ADMIN_TOKEN)],
        "",
    );
    for name in ["validations", "cache_hits", "refused", "unavailable"] {
        assert!(
            metrics.contains(&format!("opticon_api_keystone_{name}_total ")),
            "{name}: {metrics}"
        );
    }
    assert!(
        !metrics.contains("opticon_api_keystone_unavailable_total 0\n"),
        "{metrics}"
    );

    // The dashboard's Keystone login, in headless Chromium.
    let chromium = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok();
    if chromium {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/browser/keystone_login.py"
            ))
            .args([&format!("http://127.0.0.1:{port}"), TENANT, "ann", "pw"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        common::unavailable("chromium");
    }

    // The client logs in at Keystone, caches the token (0600) and sends
    // it as X-Auth-Token.
    let client = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_opticon"))
            .env("HOME", dir.path(""))
            .env_remove("OPTICON_TOKEN")
            .args(["-c", "/dev/null", "-A", &format!("http://127.0.0.1:{port}")])
            .args([
                "-X",
                &format!("http://127.0.0.1:{}", ks.port),
                "--tenant",
                TENANT,
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = client(&["--username", "ann", "--password", "pw", "host-list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = dir.path(".opticon-token-cache");
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(
        text.contains("\"kind\": \"keystone\"") && text.contains("tok-a"),
        "{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = client(&["host-list"]);
    assert!(
        out.status.success(),
        "the cached Keystone token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = client(&["--username", "ann", "--password", "bad", "host-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused ann"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real Keystone (Debian's python3-keystone under uwsgi, started by
/// tests/keystone/run), since a fake only knows what its author read:
/// the client's login, the API's validation of a member token, the admin
/// project's admin, and a revoked and a garbage token.
#[test]
fn a_real_keystone() {
    let have = ["keystone-manage", "uwsgi"].iter().all(|b| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !have {
        common::unavailable("a real Keystone (python3-keystone, uwsgi-core, uwsgi-plugin-python3)");
        return;
    }
    let dir = Dir::new("keystone-real");
    let ks_port = free_port();
    let mut ks =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keystone/run"))
            .arg(dir.path("keystone"))
            .arg(ks_port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
    /// Keystone's whole process group, killed and reaped at the end.
    struct Group(std::process::Child);
    impl Drop for Group {
        fn drop(&mut self) {
            // SAFETY: kill(2) of the Keystone process group we started.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
    let stdout = ks.stdout.take().unwrap();
    let _group = Group(ks);
    let mut ids = String::new();
    BufReader::new(stdout).read_line(&mut ids).unwrap();
    let ids = opticon::conf::parse(&ids).unwrap_or_else(|e| panic!("{e}: {ids}"));
    let id = |k: &str| {
        ids.get(k)
            .and_then(opticon::conf::Node::as_str)
            .unwrap()
            .to_string()
    };
    let (admin_project, alpha) = (id("admin_project"), id("alpha"));
    let alpha_tenant = uuid::Uuid::parse_str(&alpha).unwrap().to_string();
    let admin_tenant = uuid::Uuid::parse_str(&admin_project).unwrap().to_string();
    create_tenant(&dir, &alpha_tenant, "alpha");
    create_tenant(&dir, &admin_tenant, "ops");
    give_to_service_user(&dir.path("db"));
    let port = free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\n\
             auth {{ auth_method openstack keystone_url \"http://127.0.0.1:{ks_port}\" timeout 30 admin_projects [\"{admin_project}\"] }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    let _api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    let client = |user: &str, password: &str, project: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_opticon"))
            .env("HOME", dir.path(""))
            .env_remove("OPTICON_TOKEN")
            .args(["-c", "/dev/null", "-A", &format!("http://127.0.0.1:{port}")])
            .args([
                "-X",
                &format!("http://127.0.0.1:{ks_port}/v3"),
                "--project",
                project,
            ])
            .args(["--username", user, "--password", password])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // ann, a member of alpha, logs in with the client and reads her tenant.
    let out = client(
        "ann",
        "pw-ann",
        "alpha",
        &["--tenant", &alpha_tenant, "host-list"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = std::fs::read_to_string(dir.path(".opticon-token-cache")).unwrap();
    let token = opticon::conf::parse(&cache)
        .unwrap()
        .get("token")
        .and_then(opticon::conf::Node::as_str)
        .unwrap()
        .to_string();
    let (status, who) = call(port, "GET", "/token", &[("X-Auth-Token", &token)], "");
    assert!(
        status == 200 && who.contains("AUTH_USER") && who.contains(&alpha_tenant),
        "{status} {who}"
    );
    assert_eq!(
        call(
            port,
            "GET",
            &format!("/{admin_tenant}/host/overview"),
            &[("X-Auth-Token", &token)],
            ""
        )
        .0,
        403
    );
    // The admin of the admin project is Opticon's administrator.
    let out = client("admin", "secret", "admin", &["tenant-list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listed.contains(&alpha_tenant),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Internal logins are off with auth_method openstack.
    assert_eq!(
        call(
            port,
            "POST",
            "/login",
            &[],
            "{\"username\": \"x\", \"password\": \"y\"}"
        )
        .0,
        404
    );
    // A garbage token, then ann's token revoked at Keystone (after the
    // cache forgot it: a new API).
    assert_eq!(
        call(port, "GET", "/token", &[("X-Auth-Token", "garbage")], "").0,
        401
    );
    let revoked = call(
        ks_port,
        "DELETE",
        "/v3/auth/tokens",
        &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
        "",
    );
    assert_eq!(revoked.0, 204, "{}", revoked.1);
    drop(_api);
    std::fs::copy(dir.path("api.conf"), dir.path("api2.conf")).unwrap();
    let _api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api2");
    assert_eq!(
        call(port, "GET", "/token", &[("X-Auth-Token", &token)], "").0,
        401,
        "a revoked token"
    );
}
