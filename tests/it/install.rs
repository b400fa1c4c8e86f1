//! `make install` into a temporary DESTDIR, the installed init scripts
//! run through start, status, reload and stop, and every program's
//! options documented in its man page.

use crate::common;

use common::{give_to_service_user, wait_for, Dir, PATIENCE, TENANT};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_opticon-db"))
        .parent()
        .unwrap()
}

fn init(script: &Path, dest: &Path, etc: &Path, run: &Path, action: &str, ssd: bool) -> Output {
    let mut c = Command::new("sh");
    c.arg(script)
        .arg(action)
        .env("OPTICON_SBIN", dest.join("usr/local/sbin"))
        .env("OPTICON_ETC", etc)
        .env("OPTICON_RUN", run)
        .env(
            "OPTICON_ARGS",
            format!(
                "-l {}",
                run.join(format!(
                    "{}.log",
                    script.file_name().unwrap().to_string_lossy()
                ))
                .display()
            ),
        );
    if !ssd {
        c.env("OPTICON_NO_SSD", "1");
    }
    c.output().unwrap()
}

#[test]
fn install_then_run_every_init_script() {
    let dir = Dir::new("install");
    let dest = dir.path("dest");
    let install = || {
        Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "--no-print-directory",
                "install",
                &format!("DESTDIR={}", dest.display()),
                &format!("BINDIR={}", bin_dir().display()),
            ])
            .output()
            .unwrap()
    };
    let out = install();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "usr/local/bin/opticon",
        "usr/local/bin/opticon-db",
        "usr/local/sbin/opticon-agent",
        "usr/local/sbin/opticon-collector",
        "usr/local/sbin/opticon-api",
        "usr/local/share/man/man1/opticon.1",
        "usr/local/share/man/man5/opticon.conf.5",
        "usr/local/share/man/man7/opticon-protocol.7",
        "usr/local/share/man/man8/opticon-agent.8",
        "usr/local/share/man/man8/opticon-collector.8",
        "usr/local/share/man/man8/opticon-api.8",
        "usr/local/share/man/man8/opticon-db.8",
        "etc/opticon/opticon-agent.conf",
        "etc/opticon/opticon-collector.conf",
        "etc/opticon/opticon-meter.conf",
        "etc/opticon/opticon-api.conf",
        "etc/opticon/opticon-cli.conf",
        "etc/init.d/opticon-agent",
        "etc/init.d/opticon-collector",
        "etc/init.d/opticon-api",
        "etc/systemd/system/opticon-agent.service",
        "etc/systemd/system/opticon-collector.service",
        "etc/systemd/system/opticon-api.service",
        "etc/cron.d/opticon-db",
        "var/lib/opticon/probes/raid.check",
        "var/lib/opticon/probes/updates.probe",
        "var/opticon/db",
    ] {
        assert!(dest.join(f).exists(), "{f} not installed");
    }
    let mode = |f: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dest.join("etc/opticon").join(f))
                .unwrap()
                .permissions(),
        ) & 0o777
    };
    assert_eq!(mode("opticon-agent.conf"), 0o640, "holds a tenant key");
    assert_eq!(mode("opticon-cli.conf"), 0o644, "read by every user");
    // A second install keeps edited configs.
    std::fs::write(dest.join("etc/opticon/opticon-api.conf"), "# mine\n").unwrap();
    assert!(install().status.success());
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/opticon/opticon-api.conf")).unwrap(),
        "# mine\n"
    );

    // Configs that work here, then each init script, with and without
    // start-stop-daemon.
    let key = common::create_tenant(&dir, TENANT, "install");
    give_to_service_user(&dir.path("db"));
    let etc = dir.path("etc");
    let run = dir.path("run");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    give_to_service_user(&run);
    let udp = common::free_port();
    let tcp = common::free_port();
    let db = dir.s("db");
    for (name, text) in [
        ("opticon-collector.conf", format!("network {{ address 127.0.0.1 port {udp} }}\ndatabase {{ path {db} }}\nping {{ enabled false }}\n")),
        ("opticon-api.conf", format!("network {{ address 127.0.0.1 port {tcp} }}\ndatabase {{ path {db} }}\n")),
        ("opticon-agent.conf", format!("collector {{ address 127.0.0.1 port {udp} tenant {TENANT} key \"{key}\" }}\n")),
    ] {
        std::fs::write(etc.join(name), text).unwrap();
    }
    for (i, daemon) in ["opticon-collector", "opticon-api", "opticon-agent"]
        .iter()
        .enumerate()
    {
        let script = dest.join("etc/init.d").join(daemon);
        let ssd = i != 1;
        let run_it = |action: &str| init(&script, &dest, &etc, &run, action, ssd);
        let started = run_it("start");
        assert!(
            started.status.success(),
            "{daemon} start: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        assert!(
            wait_for(PATIENCE, || run_it("status").status.code() == Some(0)),
            "{daemon} never reported running"
        );
        let pid: i32 = std::fs::read_to_string(run.join(format!("{daemon}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(run_it("reload").status.success(), "{daemon} reload");
        common::wait_for_log(&run.join(format!("{daemon}.log")), "reloaded");
        // SAFETY: kill with signal 0 only checks the process exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "{daemon} died on reload");
        // A typo: reload and restart refuse, say why on the terminal, exit
        // non-zero and leave the daemon running as it was.
        let conf = etc.join(format!("{daemon}.conf"));
        let good = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("{good}intervall {{ write 60 }}\n")).unwrap();
        for action in ["reload", "restart"] {
            let out = run_it(action);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{daemon} {action} with a typo succeeded"
            );
            assert!(
                err.contains("intervall: unknown key")
                    && err.contains("not ")
                    && err.contains("left as it is"),
                "{daemon} {action}: {err}"
            );
            // SAFETY: as above.
            assert_eq!(
                unsafe { libc::kill(pid, 0) },
                0,
                "{daemon} died on {action}"
            );
            assert_eq!(run_it("status").status.code(), Some(0), "{daemon} {action}");
        }
        let check = run_it("check");
        assert!(!check.status.success(), "{daemon} check with a typo");
        std::fs::write(&conf, good).unwrap();
        assert!(run_it("check").status.success(), "{daemon} check");
        assert!(run_it("stop").status.success(), "{daemon} stop");
        assert_eq!(
            run_it("status").status.code(),
            Some(3),
            "{daemon} still running"
        );
        // SAFETY: as above.
        assert_ne!(
            unsafe { libc::kill(pid, 0) },
            0,
            "{daemon} process still there"
        );
    }
    // make uninstall takes the programs, the cron file and the probes,
    // and leaves configs and data.
    let out = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--no-print-directory",
            "uninstall",
            &format!("DESTDIR={}", dest.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for gone in [
        "usr/local/sbin/opticon-collector",
        "etc/cron.d/opticon-db",
        "var/lib/opticon/probes/raid.check",
        "etc/init.d/opticon-api",
    ] {
        assert!(!dest.join(gone).exists(), "make uninstall left {gone}");
    }
    assert!(dest.join("etc/opticon/opticon-api.conf").exists());
    assert!(dest.join("var/opticon/db").exists());
}

/// The options a `--help` text lists: `-x` and `--long` of each line
/// whose first word is an option.
fn help_options(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
    {
        // The option column ends at the first run of two spaces.
        let column = line.split("  ").next().unwrap_or("");
        for word in column.split([',', ' ']) {
            if word.starts_with('-') && word.len() > 1 {
                out.insert(word.to_string());
            }
        }
    }
    out
}

/// The options a man page documents: `-x` and `--long` on the tag line
/// of each `.TP` item of its OPTIONS section.
fn man_options(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_options = false;
    let mut tag_next = false;
    for line in page.lines() {
        if line.starts_with(".SH") {
            in_options = line.trim() == ".SH OPTIONS";
            continue;
        }
        if !in_options {
            continue;
        }
        if line.starts_with(".TP") {
            tag_next = true;
            continue;
        }
        if tag_next {
            tag_next = false;
            let plain = line
                .replace("\\-", "-")
                .replace("\\fB", " ")
                .replace("\\fI", " ")
                .replace("\\fR", " ")
                .replace("\\fP", " ")
                .replace('"', " ");
            for word in plain.split([',', ' ', '[', ']', '=']) {
                if word.starts_with('-') && word.len() > 1 && word != "-" {
                    out.insert(word.to_string());
                }
            }
        }
    }
    out
}

/// Every option a program's --help prints is in its man page's OPTIONS,
/// and every option documented there exists.
#[test]
fn every_option_is_documented() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for (bin, page) in [
        ("opticon", "opticon.1"),
        ("opticon-db", "opticon-db.8"),
        ("opticon-agent", "opticon-agent.8"),
        ("opticon-collector", "opticon-collector.8"),
        ("opticon-api", "opticon-api.8"),
    ] {
        let help = Command::new(bin_dir().join(bin))
            .arg("--help")
            .output()
            .unwrap();
        let help = help_options(&String::from_utf8_lossy(&help.stdout));
        let documented = man_options(&std::fs::read_to_string(man.join(page)).unwrap());
        assert!(
            help.len() > 4,
            "{bin}: too few options read from --help: {help:?}"
        );
        let undocumented: Vec<_> = help.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "{bin}: {undocumented:?} are not in the OPTIONS of man/{page}"
        );
        let phantom: Vec<_> = documented.difference(&help).collect();
        assert!(
            phantom.is_empty(),
            "man/{page} documents {phantom:?}, which {bin} does not have"
        );
    }
}
