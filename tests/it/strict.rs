//! Strict configuration files: unknown and repeated keys are errors that
//! name file, line, column and key path; the original Opticon's keys load
//! with one warning; every daemon checks its files with `-t`; every key
//! is documented.

use crate::common::{Dir, PATIENCE};
use std::path::Path;
use std::process::{Command, Output};

fn bin(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_BIN_EXE_opticon-db"))
        .parent()
        .unwrap()
        .join(name)
}

fn run(name: &str, args: &[&str]) -> Output {
    let out = Command::new(bin(name)).args(args).output().unwrap();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The shipped configuration files pass `-t` as they are.
#[test]
fn shipped_configs_pass_the_check() {
    let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc");
    let meter = etc.join("opticon-meter.conf");
    for daemon in ["opticon-collector", "opticon-api", "opticon-agent"] {
        let conf = etc.join(format!("{daemon}.conf"));
        let mut args = vec!["-t", "-c", conf.to_str().unwrap()];
        if daemon != "opticon-agent" {
            args.extend(["-m", meter.to_str().unwrap()]);
        }
        let out = run(daemon, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{daemon}: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("{daemon}: {}: ok", conf.display())),
            "{daemon}: {stdout}"
        );
        if daemon != "opticon-agent" {
            assert!(
                stdout.contains(&format!("{}: ok", meter.display())),
                "{stdout}"
            );
        }
        assert!(
            !text(&out.stderr).contains("warning"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// A typo in each daemon's file: `-t` and a start both refuse it, naming
/// file, line, column, key path and the key meant; nothing is bound.
#[test]
fn a_typo_is_an_error_in_every_daemon() {
    let dir = Dir::new("strict-typo");
    let cases = [
        (
            "opticon-collector",
            "network { port 1048 adress 127.0.0.1 }\n",
            ":1:21: network/adress: unknown key (did you mean network/address?)",
        ),
        (
            "opticon-api",
            "network {\n  port 1888\n}\nauth { admin_tokn \"x\" }\n",
            ":4:8: auth/admin_tokn: unknown key (did you mean auth/admin_token?)",
        ),
        (
            "opticon-agent",
            "collector { address 127.0.0.1 tenant x key y }\nprobes { raid { type exec cal /bin/true frequency low } }\n",
            ":2:27: probes/raid/cal: unknown key (did you mean probes/raid/call?)",
        ),
        (
            "opticon-collector",
            "network { port 1048 }\nnetwork { address 127.0.0.1 }\n",
            ":2:1: network: given twice (first at 1:1)",
        ),
        (
            "opticon-collector",
            "port 1048\n",
            ":1:1: port: unknown key (did you mean network/port?)",
        ),
    ];
    for (i, (daemon, conf, needle)) in cases.iter().enumerate() {
        let path = dir.path(&format!("{i}.conf"));
        std::fs::write(&path, conf).unwrap();
        let p = path.to_str().unwrap();
        let pid = dir.path(&format!("{i}.pid"));
        for args in [
            vec!["-t", "-c", p],
            vec!["-f", "-l", "-", "-c", p, "-p", pid.to_str().unwrap()],
        ] {
            let out = run(daemon, &args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{daemon} {args:?}: {err}");
            let want = format!("{daemon}: {p}{needle}");
            assert!(
                err.contains(&want),
                "{daemon} {args:?}: {err}\nwanted {want}"
            );
            assert_eq!(
                err.matches(needle).count(),
                1,
                "{daemon} {args:?}: printed once: {err}"
            );
            assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        }
        assert!(!pid.exists(), "{daemon} wrote a pid file");
    }
    // Every wrong key at once, each on its own line.
    let path = dir.path("many.conf");
    std::fs::write(&path, "network { prot 1 }\ninterval { wrte 5 }\nzzz 1\n").unwrap();
    let out = run("opticon-collector", &["-t", "-c", path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(err.contains("network/prot: unknown key (did you mean network/port?)"));
    assert!(err.contains("interval/wrte: unknown key (did you mean interval/write?)"));
    assert!(err.contains("zzz: unknown key\n"), "{err}");
    // A bad value is placed at its line and column too.
    std::fs::write(
        &path,
        "database { path /x }\nnetwork {\n    port 70000\n}\n",
    )
    .unwrap();
    let out = run("opticon-collector", &["-t", "-c", path.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains(&format!(
            "{}:3:5: network/port: 70000 is not a port",
            path.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

/// The meter config is strict too, in both of its forms.
#[test]
fn the_meter_config_is_strict() {
    let dir = Dir::new("strict-meter");
    let conf = dir.path("c.conf");
    std::fs::write(&conf, "ping { enabled false }\n").unwrap();
    let meter = dir.path("m.conf");
    for (text_, needle) in [
        (
            "meter { mem/free { type integer warning { cmp lt vla 3 } } }",
            ":1:50: meter/mem/free/warning/vla: unknown key (did you mean meter/mem/free/warning/val?)",
        ),
        (
            "mem/free { type integer descripton x }",
            ":1:25: mem/free/descripton: unknown key (did you mean mem/free/description?)",
        ),
    ] {
        std::fs::write(&meter, text_).unwrap();
        let out = run(
            "opticon-collector",
            &["-t", "-c", conf.to_str().unwrap(), "-m", meter.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{}{needle}", meter.display())), "{err}");
    }
}

/// An original Opticon configuration starts, with one warning naming the
/// keys that are ignored; its `admin_host` is honoured.
#[test]
fn original_keys_load_with_one_warning() {
    let dir = Dir::new("strict-original");
    let cases = [
        (
            "opticon-collector",
            "network { port: 1047, address: 0.0.0.0 }\ndatabase { path: /var/opticon/db }\n\
             debug { dump: /tmp/dump packetdump: /tmp/pkts }\nnotify { call: /bin/true }\n\
             graph { pcpu { graph cpu datum usage } }\n",
            "ignoring keys of the original Opticon that this one does not use: debug (3:1), graph (5:1)",
        ),
        (
            "opticon-api",
            "network { port 1888 }\nauth { admin_token: \"a9f3c2d1-0000-4000-8000-0123456789ab\" \
             admin_host: 127.0.0.1 auth_method: internal }\ndatabase { path /var/opticon/db }\n\
             plugin { querytool /bin/true }\n",
            "ignoring keys of the original Opticon that this one does not use: plugin (4:1)",
        ),
        (
            "opticon-agent",
            "collector { address: 127.0.0.1 port: 1047 key: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\" \
             tenant: \"0296d893-8187-4f44-a31b-bf3b4c19fc10\" host: \"0296d893-8187-4f44-a31b-bf3b4c19fc11\" }\n\
             probes { }\nupdate { url: \"http://x/\" channel: stable enabled: false }\n",
            "ignoring keys of the original Opticon that this one does not use: update (3:1)",
        ),
    ];
    for (daemon, conf, needle) in cases {
        let path = dir.path(&format!("{daemon}.conf"));
        std::fs::write(&path, conf).unwrap();
        let out = run(daemon, &["-t", "-c", path.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{daemon}: {err}");
        assert_eq!(err.lines().count(), 1, "{daemon}: one warning: {err}");
        assert!(
            err.contains(&format!("{daemon}: warning: {}: {needle}", path.display())),
            "{daemon}: {err}"
        );
    }
    let doc = opticon::conf::parse(cases[1].1).unwrap();
    let cfg = opticon::api::config::ApiConfig::from_dict(&doc).unwrap();
    assert_eq!(cfg.admin_hosts.len(), 1);
}

/// The client's files are strict: a typo in `~/.opticonrc` stops it.
#[test]
fn the_client_config_is_strict() {
    let dir = Dir::new("strict-cli");
    std::fs::write(
        dir.path(".opticonrc"),
        "endpoints { opticon http://127.0.0.1:1 }\ndefaults { tennant x }\n",
    )
    .unwrap();
    let out = Command::new(bin("opticon"))
        .args(["tenant-list"])
        .env("HOME", dir.s(""))
        .env_remove("OPTICON_TOKEN")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            ".opticonrc:2:12: defaults/tennant: unknown key (did you mean defaults/tenant?)"
        ),
        "{err}"
    );
}

/// Every key of every schema appears in its program's man page.
#[test]
fn every_config_key_is_documented() {
    use opticon::conf::schema::Schema;
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages: [(&Schema, &str); 4] = [
        (&opticon::collector::config::SCHEMA, "opticon-collector.8"),
        (&opticon::api::config::SCHEMA, "opticon-api.8"),
        (&opticon::agent::config::SCHEMA, "opticon-agent.8"),
        (&opticon::cli::config::SCHEMA, "opticon.1"),
    ];
    for (schema, page) in pages {
        let roff = std::fs::read_to_string(man.join(page)).unwrap();
        let plain = roff
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
            .replace("\\fP", "");
        for path in schema.key_paths() {
            let leaf = path.rsplit('/').next().unwrap();
            assert!(
                plain
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == leaf),
                "{path} is not documented in man/{page}"
            );
        }
    }
    let _ = PATIENCE;
}
