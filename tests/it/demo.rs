//! A smoke test of `make demo` (scripts/demo): the whole system on
//! loopback as the README's first command shows it, with this build's
//! binaries, stopped after a moment.

use crate::common;

use common::{free_port, Dir};
use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_shows_a_host_and_stops_cleanly() {
    let dir = Dir::new("demo");
    let bin = Path::new(env!("CARGO_BIN_EXE_opticon-db"))
        .parent()
        .unwrap();
    let api_port = common::free_port();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
        .env("DEMO_DIR", dir.path("demo"))
        .env("BIN", bin)
        .env("SKIP_BUILD", "1")
        .env("DURATION", "1")
        .env("UDP_PORT", free_port().to_string())
        .env("API_PORT", api_port.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    for want in [
        "demo: started on loopback",
        "$ opticon host-overview",
        "NAME",
        "---- Host",
        "---- Resources",
        "opticon-cli.conf",
        "demo: the dashboard: http://127.0.0.1:",
        "(user demo, password ",
        "demo: stopped",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}\n{err}");
    }
    // This machine's own status, whatever its load makes it.
    assert!(
        ["OK", "WARN", "ALERT", "CRIT"]
            .iter()
            .any(|s| text.contains(s)),
        "no status in the overview:\n{text}"
    );
    for daemon in ["opticon-collector", "opticon-api", "opticon-agent"] {
        let pid = dir.path(&format!("demo/run/{daemon}.pid"));
        assert!(!pid.exists(), "{daemon} left its pid file: still running?");
    }
}

/// Ctrl-C (SIGINT to the script) stops everything, the script's own
/// background sleep included; as root, only the database is handed to
/// the service user.
#[test]
fn ctrl_c_leaves_nothing_behind() {
    use std::io::{BufRead, BufReader};
    let dir = Dir::new("demo-int");
    let bin = Path::new(env!("CARGO_BIN_EXE_opticon-db"))
        .parent()
        .unwrap();
    let mut child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
        .env("DEMO_DIR", dir.path("demo"))
        .env("BIN", bin)
        .env("SKIP_BUILD", "1")
        .env("DURATION", "0")
        .env("UDP_PORT", free_port().to_string())
        .env("API_PORT", free_port().to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    assert!(seen.contains("press Ctrl-C"), "{seen}");
    // The script's children now: the three daemons and its sleep.
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let mut before = Vec::new();
    assert!(
        common::wait_for(common::PATIENCE, || {
            before = children(pid);
            before.len() >= 4
        }),
        "{before:?}"
    );
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // Read the rest aside: a process left holding the pipe must fail the
    // test below, not hang it.
    let rest = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&rest);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    assert!(
        common::wait_for(common::PATIENCE, || rest
            .lock()
            .unwrap()
            .contains("demo: stopped")),
        "{}",
        rest.lock().unwrap()
    );
    for p in before {
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(p as i32, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {p} outlived the demo");
    }
    // SAFETY: geteuid has no effects.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(dir.path("demo")).unwrap().uid();
        assert_eq!(owner, 0, "the demo directory stays root's");
    }
}
