//! The web dashboard in a real browser: a collector, an API and an agent
//! (with the load generator's fleet beside it) on loopback, and Debian's
//! headless Chromium driven over the DevTools protocol by
//! tests/browser/dashboard.py. Also its files and headers over HTTP.

use crate::common;

use common::{
    create_tenant, free_port, give_to_service_user, start_daemon, wait_for, Dir, ADMIN_TOKEN,
    OTHER_TENANT, PATIENCE, TENANT,
};
use opticon::conf::{self, Node};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

const AGENT_HOST: &str = "5eed0000-0000-4000-8000-00000000d0a5";

fn client(dir: &Dir, url: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_opticon"))
        .env("HOME", dir.path(""))
        .env("OPTICON_TOKEN", ADMIN_TOKEN)
        .args(["-c", &dir.s("none.conf"), "-A", url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One raw request; the response head and body.
fn get(port: u16, path: &str, headers: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..at]).into_owned(),
        raw[at + 4..].to_vec(),
    )
}

struct Stack {
    dir: Dir,
    url: String,
    port: u16,
    api: common::Daemon,
    _collector: common::Daemon,
    _agent: common::Daemon,
}

fn stack(tag: &str, fleet: usize) -> Stack {
    let dir = Dir::new(tag);
    let key = create_tenant(&dir, TENANT, "alpha");
    create_tenant(&dir, OTHER_TENANT, "beta");
    give_to_service_user(&dir.path("db"));
    std::fs::write(dir.path("none.conf"), "").unwrap();
    let udp = free_port();
    let port = free_port();
    std::fs::write(
        dir.path("collector.conf"),
        format!(
            "network {{ address 127.0.0.1 port {udp} }}\ndatabase {{ path {} }}\ninterval {{ write 1 }}\nping {{ enabled false }}\nlimits {{ max_new_hosts_per_minute 100000 }}\n",
            dir.s("db")
        ),
    )
    .unwrap();
    common::write_api_conf(&dir, port);
    std::fs::write(
        dir.path("agent.conf"),
        format!(
            "collector {{ address 127.0.0.1 port {udp} tenant {TENANT} key \"{key}\" host \"{AGENT_HOST}\" }}\ninterval {{ fast 1 slow 2 }}\n"
        ),
    )
    .unwrap();
    let collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "collector");
    let api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    let agent = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-agent"), "agent");
    if fleet > 0 {
        let load = Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
            .args([
                "--port",
                &udp.to_string(),
                "--tenant",
                TENANT,
                "--key",
                &key,
                "--hosts",
                &fleet.to_string(),
                "--rate",
                &(fleet * 2).to_string(),
                "--duration",
                "3",
            ])
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
    }
    Stack {
        url: format!("http://127.0.0.1:{port}"),
        port,
        dir,
        api,
        _collector: collector,
        _agent: agent,
    }
}

/// The agent's host as the overview shows it, once it has two records.
fn agent_hostname(s: &Stack) -> String {
    let path = s.dir.path(&format!("db/{TENANT}/tenant.overview"));
    let mut name = String::new();
    assert!(
        wait_for(PATIENCE, || {
            let Ok(text) = std::fs::read_to_string(&path) else {
                return false;
            };
            let Ok(doc) = conf::parse(&text) else {
                return false;
            };
            let Some(Node::Dict(h)) = Node::Dict(doc)
                .path(&format!("overview/{AGENT_HOST}"))
                .cloned()
            else {
                return false;
            };
            name = h
                .get("hostname")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            !name.is_empty() && h.get("mem/total").is_some()
        }),
        "the agent's host never reached the overview"
    );
    name
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .any(|c| Command::new(c).arg("--version").output().is_ok());
    if !chromium {
        common::unavailable("chromium");
        return;
    }
    let s = stack("dashboard", 300);
    client(
        &s.dir,
        &s.url,
        &[
            "user-create",
            "--username",
            "ann",
            "--password",
            "pw-ann",
            "--tenant",
            TENANT,
        ],
    );
    client(
        &s.dir,
        &s.url,
        &[
            "user-create",
            "--username",
            "bob",
            "--password",
            "pw-bob",
            "--tenant",
            OTHER_TENANT,
        ],
    );
    let hostname = agent_hostname(&s);
    // A few records for the graphs.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let shots = s.dir.path("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/dashboard.py"
        ))
        .args([
            "--url",
            &s.url,
            "--tenant",
            TENANT,
            "--host",
            AGENT_HOST,
            "--hostname",
            &hostname,
            "--user",
            "ann",
            "--password",
            "pw-ann",
            "--other-user",
            "bob",
            "--other-password",
            "pw-bob",
            "--fleet",
            "300",
            "--api-pid",
            &s.api.0.id().to_string(),
            "--shots",
            shots.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}\n(screenshots in {})",
        String::from_utf8_lossy(&out.stderr),
        shots.display()
    );
    eprintln!("dashboard figures: {said}");
    for shot in ["fleet", "host", "warn", "unreachable"] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "no {shot} screenshot"
        );
    }
    if let Ok(keep) = std::env::var("OPTICON_KEEP_SHOTS") {
        for e in std::fs::read_dir(&shots).unwrap() {
            let e = e.unwrap();
            let _ = std::fs::copy(e.path(), std::path::Path::new(&keep).join(e.file_name()));
        }
    }
}

/// What a browser and curl get: the redirect for HTML clients only, the
/// page and hashed assets with strict headers, revalidation by ETag, and
/// nothing with `network/ui false`.
#[test]
fn the_dashboard_files_and_headers() {
    let s = stack("dashboard-http", 0);
    let (head, _) = get(
        s.port,
        "/",
        "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 302") && head.contains("Location: /ui/"),
        "{head}"
    );
    let (head, body) = get(s.port, "/", "Accept: */*\r\n");
    assert!(
        head.starts_with("HTTP/1.1 401"),
        "JSON clients of / get what they got: {head}"
    );
    assert!(String::from_utf8_lossy(&body).contains("error"));
    let (head, page) = get(s.port, "/ui/", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for h in [
        "Content-Security-Policy: default-src 'none'; script-src 'self'",
        "frame-ancestors 'none'",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "Cache-Control: no-cache",
        "Content-Type: text/html",
    ] {
        assert!(head.contains(h), "{h} missing: {head}");
    }
    let page = String::from_utf8(page).unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .to_string();
    let (again, body) = get(s.port, "/ui/", &format!("If-None-Match: {etag}\r\n"));
    assert!(
        again.starts_with("HTTP/1.1 304") && body.is_empty(),
        "{again}"
    );
    let mut total = page.len();
    for asset in page
        .split('"')
        .filter(|p| p.ends_with(".js") || p.ends_with(".css"))
    {
        let (head, body) = get(s.port, &format!("/ui/{asset}"), "");
        assert!(head.starts_with("HTTP/1.1 200"), "{asset}: {head}");
        assert!(
            head.contains("immutable") && head.contains("nosniff"),
            "{asset}: {head}"
        );
        assert!(
            asset.split('.').nth(1).is_some_and(|h| h.len() == 12),
            "{asset}: a content hash in the name"
        );
        total += body.len();
    }
    assert!(total < 150 * 1024, "the dashboard is {total} bytes");
    let (head, _) = get(s.port, "/ui/app.js", "");
    assert!(
        head.starts_with("HTTP/1.1 404"),
        "unhashed names are not served: {head}"
    );
    drop(s.api);
    // network/ui false: no dashboard.
    let port = free_port();
    std::fs::write(
        s.dir.path("api2.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} ui false }}\ndatabase {{ path {} }}\n",
            s.dir.s("db")
        ),
    )
    .unwrap();
    let _api2 = start_daemon(&s.dir, env!("CARGO_BIN_EXE_opticon-api"), "api2");
    let (head, _) = get(port, "/ui/", "");
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) = get(port, "/", "Accept: text/html\r\n");
    assert!(!head.starts_with("HTTP/1.1 302"), "{head}");
}
