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
        let pid = dir.path(&format!("demo/{daemon}.pid"));
        assert!(!pid.exists(), "{daemon} left its pid file: still running?");
    }
}
