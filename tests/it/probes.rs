//! The agent's probes against fixture /proc, /sys and /etc trees, the exec
//! probe contract, the agent config, and a live run on this machine.

use opticon::agent::builtin::{Builtin, Context, Kind, Readings};
use opticon::agent::config::{self, AgentConfig, ProbeKind};
use opticon::agent::exec::{self, ExecError, Verdict};
use opticon::agent::parse;
use opticon::model::{Array, MeterValue, Scalar};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linux");

fn ctx(root: &Path) -> Context {
    Context {
        root: root.to_path_buf(),
        started: Instant::now(),
        bind: None,
    }
}

fn run(kind: Kind, root: &Path) -> Readings {
    let mut out = Vec::new();
    Builtin::new(kind).run(&ctx(root), &mut out);
    out
}

fn get<'a>(r: &'a Readings, name: &str) -> &'a MeterValue {
    &r.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .1
}

fn int(v: i64) -> MeterValue {
    MeterValue::Scalar(Scalar::Int(v))
}

fn frac(v: f64) -> MeterValue {
    MeterValue::Scalar(Scalar::Frac(v))
}

fn strs(v: &[&str]) -> MeterValue {
    MeterValue::Array(Array::Str(v.iter().map(|s| s.to_string()).collect()))
}

fn s(v: &str) -> MeterValue {
    MeterValue::Scalar(Scalar::Str(v.into()))
}

/// A writable copy of the fixture tree.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("opticon-probes-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_tree(Path::new(FIXTURE), &dir);
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn static_probes_read_the_fixture() {
    let root = Path::new(FIXTURE);
    assert_eq!(
        run(Kind::Hostname, root),
        vec![("hostname".into(), s("web-01"))]
    );
    let uname = run(Kind::Uname, root);
    assert_eq!(get(&uname, "os/kernel"), &s("Linux"));
    assert_eq!(get(&uname, "os/version"), &s("6.1.0-26-amd64"));
    assert_eq!(get(&uname, "os/arch"), &s("x86_64"));
    assert_eq!(
        get(&uname, "os/hw"),
        &s("QEMU Standard PC (Q35 + ICH9, 2009)")
    );
    assert_eq!(
        get(&run(Kind::Distro, root), "os/distro"),
        &s("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(get(&run(Kind::Uptime, root), "uptime"), &int(86400));
    let load = run(Kind::Loadavg, root);
    assert_eq!(
        get(&load, "loadavg"),
        &MeterValue::Array(Array::Frac(vec![1.25, 0.75, 0.5]))
    );
    assert_eq!(
        (get(&load, "proc/run"), get(&load, "proc/total")),
        (&int(3), &int(212))
    );
    let mem = run(Kind::Meminfo, root);
    assert_eq!(get(&mem, "mem/total"), &int(16_316_412));
    assert_eq!(
        get(&mem, "mem/free"),
        &int(8_123_456),
        "MemAvailable is used when present"
    );
    assert_eq!(get(&mem, "mem/swap"), &int(2_000_000));
    let cpu = run(Kind::Cpu, root);
    assert_eq!(
        get(&cpu, "cpu/model"),
        &strs(&[
            "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
            "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"
        ])
    );
    assert_eq!(
        get(&cpu, "cpu/count"),
        &MeterValue::Array(Array::Int(vec![2, 1]))
    );
    assert_eq!(
        get(&run(Kind::Version, root), "agent/v"),
        &s(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        get(&run(Kind::Who, root), "who"),
        &strs(&[]),
        "no utmp: an empty table"
    );
}

#[test]
fn meminfo_without_memavailable_uses_the_original_sum() {
    assert_eq!(
        parse::meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n"),
        Some((100, 35, None)),
        "no swap: no mem/swap"
    );
    assert_eq!(
        parse::meminfo("MemTotal: 100 kB\nMemAvailable: 50 kB\nSwapTotal: 64 kB\nSwapFree: 0 kB\n"),
        Some((100, 50, Some(0))),
        "swap, all used"
    );
}

#[test]
fn mounts_and_disks_are_filtered_like_the_original() {
    let text = std::fs::read_to_string(format!("{FIXTURE}/proc/mounts")).unwrap();
    let m = parse::mounts(&text, &[], &[]);
    let got: Vec<(&str, &str, &str)> = m
        .iter()
        .map(|(d, p, f)| (d.as_str(), p.as_str(), f.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/dev/sda1", "/", "ext4"),
            ("@vg0/data", "/srv", "xfs"),
            ("/dev/sdb1", "/mnt/with space", "ext4")
        ],
        "rw only; no pseudo, tmpfs, nfs or bind duplicates; @vg/lv naming; octal escapes"
    );
    assert_eq!(parse::mounts(&text, &[], &["/dev/sd*".into()]).len(), 1);
    let disks = std::fs::read_to_string(format!("{FIXTURE}/proc/diskstats")).unwrap();
    assert_eq!(
        parse::diskstats(&disks, &[], &[]),
        [120_000, 60_000],
        "sda + nvme0n1 only"
    );
    // The df probe reports the fixture root's real file system for "/".
    let df = run(Kind::Df, Path::new(FIXTURE));
    assert_eq!(get(&df, "df/device"), &strs(&["/dev/sda1"]));
    assert_eq!(get(&df, "df/mount"), &strs(&["/"]));
    match get(&df, "df/size") {
        MeterValue::Array(Array::Int(v)) => assert!(v[0] > 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_probes_report_per_second_changes() {
    let t = Scratch::new("rates");
    let c = ctx(&t.0);
    let t0 = Instant::now();
    let (mut net, mut io, mut top) = (
        Builtin::new(Kind::Net),
        Builtin::new(Kind::Io),
        Builtin::new(Kind::Top),
    );
    let mut first = Vec::new();
    net.run_at(&c, &mut first, t0);
    io.run_at(&c, &mut first, t0);
    top.run_at(&c, &mut first, t0);
    assert_eq!(
        first,
        vec![("proc/stuck".to_string(), int(1))],
        "first run: no rates, only the D-state count"
    );

    // Ten seconds later: eth0 +12.8 MB and +1000 packets in; sda +500
    // reads, +200 writes; CPU 40 % busy, 10 % I/O wait; nginx 3 s of CPU.
    let dev = std::fs::read_to_string(t.0.join("proc/net/dev")).unwrap();
    t.write(
        "proc/net/dev",
        &dev.replace("1000000000 2000000", "1012800000 2001000"),
    );
    let disk = std::fs::read_to_string(t.0.join("proc/diskstats")).unwrap();
    t.write(
        "proc/diskstats",
        &disk.replace(
            "sda 100000 500 8000000 30000 50000",
            "sda 100500 500 8000000 30000 50200",
        ),
    );
    t.write(
        "proc/stat",
        "cpu  10300 500 3100 80500 1100 100 200 300 0 0\n",
    );
    t.write("proc/1234/stat", "1234 (nginx) S 1 1234 1234 0 -1 4194560 500 0 0 0 800 500 0 0 20 0 1 0 100 104857600 25600 18446744073709551615\n");
    let t1 = t0 + Duration::from_secs(10);
    let mut out = Vec::new();
    net.run_at(&c, &mut out, t1);
    io.run_at(&c, &mut out, t1);
    top.run_at(&c, &mut out, t1);
    assert_eq!(get(&out, "net/in_kbs"), &int(10_000));
    assert_eq!(get(&out, "net/in_pps"), &int(100));
    assert_eq!(get(&out, "net/out_kbs"), &int(0));
    assert_eq!(get(&out, "io/rdops"), &int(50));
    assert_eq!(get(&out, "io/wrops"), &int(20));
    assert_eq!(get(&out, "pcpu"), &frac(40.0));
    assert_eq!(get(&out, "io/pwait"), &frac(10.0));
    assert_eq!(
        get(&out, "top/pid"),
        &MeterValue::Array(Array::Int(vec![1234]))
    );
    assert_eq!(get(&out, "top/user"), &strs(&["www-data"]));
    assert_eq!(get(&out, "top/name"), &strs(&["nginx"]));
    assert_eq!(
        get(&out, "top/pcpu"),
        &MeterValue::Array(Array::Frac(vec![30.0]))
    );
    assert_eq!(
        get(&out, "top/pmem"),
        &MeterValue::Array(Array::Frac(vec![0.63]))
    );
    // Ten seconds of no process running: the same columns, empty (the
    // meter names stay, so the database stores a delta, not a full frame).
    let mut idle = Vec::new();
    top.run_at(&c, &mut idle, t1 + Duration::from_secs(10));
    assert_eq!(
        get(&idle, "top/pid"),
        &MeterValue::Array(Array::Int(vec![]))
    );
    assert_eq!(get(&idle, "top/name"), &strs(&[]));
    assert!(idle.iter().all(|(n, _)| n != "top"), "{idle:?}");
    // A counter that went backwards (reboot, wrap) gives no rate, not a lie.
    t.write("proc/net/dev", &dev);
    let mut again = Vec::new();
    net.run_at(&c, &mut again, t1 + Duration::from_secs(10));
    assert!(again.is_empty(), "{again:?}");
}

fn utmp_record(kind: i16, line: &str, user: &str, host: &str) -> Vec<u8> {
    let mut r = vec![0u8; parse::UTMP_RECORD];
    r[..2].copy_from_slice(&kind.to_ne_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r
}

#[test]
fn who_reads_utmp_remote_sessions() {
    let t = Scratch::new("who");
    let mut bytes = utmp_record(7, "pts/0", "alice", "203.0.113.9");
    bytes.extend(utmp_record(7, "tty1", "root", ""));
    bytes.extend(utmp_record(8, "pts/1", "bob", "198.51.100.1"));
    std::fs::create_dir_all(t.0.join("run")).unwrap();
    std::fs::write(t.0.join("run/utmp"), bytes).unwrap();
    let who = run(Kind::Who, &t.0);
    assert_eq!(get(&who, "who/user"), &strs(&["alice"]));
    assert_eq!(get(&who, "who/tty"), &strs(&["pts/0"]));
    assert_eq!(get(&who, "who/remote"), &strs(&["203.0.113.9"]));
}

#[test]
fn host_identity() {
    let fixture = Path::new(FIXTURE);
    let dmi = config::host_id(fixture, None).unwrap();
    assert_eq!(dmi.to_string(), "4c4c4544-0042-3510-8051-b4c04f4a4d32");
    let t = Scratch::new("hostid");
    std::fs::remove_file(t.0.join("sys/class/dmi/id/product_uuid")).unwrap();
    let derived = config::host_id(&t.0, None).unwrap();
    assert_eq!(
        config::host_id(&t.0, None),
        Some(derived),
        "stable across runs"
    );
    assert_ne!(
        derived.simple().to_string(),
        "3d1219c7c4c5404aaa1f6d2a48adfda4",
        "machine-id is not exposed"
    );
    std::fs::remove_file(t.0.join("etc/machine-id")).unwrap();
    assert_eq!(config::host_id(&t.0, None), None);
    let given = uuid::Uuid::from_u128(7);
    assert_eq!(config::host_id(&t.0, Some(given)), Some(given));
    assert_eq!(
        parse::default_route_iface(
            &std::fs::read_to_string(format!("{FIXTURE}/proc/net/route")).unwrap()
        ),
        Some("eth0".into())
    );
}

const KEY: &str = "hKRiT9XyhcysW520abAnANt+0sjPFzIfd0v/OxGdAKU=";
const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";

fn agent_config(text: &str) -> Result<AgentConfig, String> {
    let doc = opticon::conf::parse(text).map_err(|e| e.to_string())?;
    AgentConfig::from_dict(&doc).map_err(|e| e.to_string())
}

#[test]
fn config_merges_defaults_and_reports_errors() {
    let cfg = agent_config(&format!(
        "collector {{ address 127.0.0.1 port 2000 tenant {TENANT} key \"{KEY}\" }}\n\
         probes {{ net {{ options {{ match [\"eth*\"] }} }}\n\
                  raid {{ type exec call /bin/true frequency low options {{ device md0 }} }}\n\
                  disk {{ type nagios call /bin/false interval 120 }}\n\
                  win {{ type exec call x frequency low platform windows }} }}"
    ))
    .unwrap();
    assert_eq!(cfg.collectors[0].port, 2000);
    assert_eq!(
        cfg.probes.len(),
        14 + 2,
        "defaults, plus raid and disk; the windows probe is left out"
    );
    let net = cfg.probes.iter().find(|p| p.id == "net").unwrap();
    assert_eq!(
        (net.matches.clone(), net.skip.clone(), net.interval),
        (vec!["eth*".to_string()], vec!["lo".to_string()], 60)
    );
    let raid = cfg.probes.iter().find(|p| p.id == "raid").unwrap();
    assert_eq!(
        (raid.interval, &raid.kind),
        (300, &ProbeKind::Exec("/bin/true".into()))
    );
    assert_eq!(
        raid.options,
        vec![("device".to_string(), "md0".to_string())]
    );

    let cases = [
        ("probes { }", "no collector configured"),
        (&format!("collector {{ address x tenant nope key \"{KEY}\" }}") as &str, "collector/tenant: \"nope\" is not a UUID"),
        (&format!("collector {{ address x tenant {TENANT} key short }}"), "collector/key"),
        (&format!("collector {{ address x tenant {TENANT} key \"{KEY}\" port 70000 }}"), "collector/port"),
        (&format!("collector {{ tenant {TENANT} key \"{KEY}\" }}"), "collector/address: missing"),
        (&format!("collector {{ address x tenant {TENANT} key \"{KEY}\" }} probes {{ p {{ call probe_nope interval 5 }} }}"), "no built-in probe"),
        (&format!("collector {{ address x tenant {TENANT} key \"{KEY}\" }} probes {{ p {{ type exec call x }} }}"), "needs an interval or a frequency"),
        (&format!("collector {{ address x tenant {TENANT} key \"{KEY}\" }} probes {{ p {{ type ssh call x interval 5 }} }}"), "is not built-in, exec or nagios"),
        (&format!("collector {{ address x tenant {TENANT} key \"{KEY}\" }} network {{ max_datagram 100 }}"), "network/max_datagram"),
    ];
    for (text, needle) in cases {
        let err = agent_config(text).unwrap_err();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn exec_probes_follow_the_contract() {
    let none: Vec<(String, String)> = Vec::new();
    let t = Duration::from_secs(30);
    // Options become OPT_ variables on top of the inherited environment.
    let opts = vec![("answer".to_string(), "fourtytwo".to_string())];
    let done = exec::run_command(
        "printf '%s %s' \"$OPT_ANSWER\" \"${PATH:+has-path}\"",
        &opts,
        t,
    )
    .unwrap();
    assert_eq!(done.stdout, "fourtytwo has-path");
    // JSON output becomes meters; the exit status is ignored.
    let mut out = Vec::new();
    exec::run_exec(
        "echo '{\"raid\": [{\"dev\": \"md0\", \"fail\": 0}], \"x\": 1.5}'; exit 3",
        &none,
        t,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.len(), 3);
    // Garbage, oversize, timeout: a clear error each, nothing else.
    let garbage = exec::run_exec("echo 'not json <'", &none, t, &mut Vec::new()).unwrap_err();
    assert!(matches!(garbage, ExecError::BadOutput(_)), "{garbage}");
    let big = exec::run_exec(
        "head -c 20000 /dev/zero | tr '\\0' a",
        &none,
        t,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(big, ExecError::TooMuchOutput), "{big}");
    let started = Instant::now();
    let slow =
        exec::run_command("sleep 30 & sleep 30", &none, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(slow, ExecError::Timeout(_)), "{slow}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the whole process group is killed"
    );
    // stdin is /dev/null: a probe that reads it does not hang.
    assert_eq!(
        exec::run_command("cat; echo done", &none, t)
            .unwrap()
            .stdout,
        "done\n"
    );
    // Nagios plugins: 0 OK, 1 warning, anything else alert.
    for (code, want) in [
        (0, Verdict::Ok),
        (1, Verdict::Warning),
        (2, Verdict::Alert),
        (3, Verdict::Alert),
    ] {
        let (v, first) =
            exec::run_nagios(&format!("echo 'CHECK {code}'; exit {code}"), &none, t).unwrap();
        assert_eq!((v, first), (want, format!("CHECK {code}")));
    }
}

#[test]
fn sampler_lanes_checks_and_nagios_meters() {
    use opticon::agent::sampler::Sampler;
    let cfg = agent_config(&format!(
        "collector {{ address 127.0.0.1 tenant {TENANT} key \"{KEY}\" }}\n\
         probes {{ ok {{ type nagios call true interval 60 }}\n\
                  warn {{ type nagios call \"exit 1\" interval 60 }}\n\
                  bad {{ type nagios call \"exit 2\" interval 300 }}\n\
                  gone {{ type exec call true interval 60 check false }}\n\
                  missing {{ type exec call true interval 60 check /nonexistent/raid.check }}\n\
                  fails {{ type exec call \"echo nope\" interval 60 }} }}"
    ))
    .unwrap();
    let mut log = Vec::new();
    let mut sampler = Sampler::new(&cfg, ctx(Path::new(FIXTURE)), &mut log);
    assert!(
        log.iter()
            .any(|l| l.contains("probe gone: check false exited 1, probe disabled")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains(
            "probe missing: check /nonexistent/raid.check: not found (exit 127), probe disabled"
        )),
        "{log:?}"
    );
    assert!(!sampler.probe_ids().contains(&"gone"));
    sampler.run_all(&mut log);
    assert!(
        log.iter()
            .any(|l| l.starts_with("probe fails: output is not usable JSON")),
        "{log:?}"
    );
    let fast = sampler.take(Some(true), 1);
    assert_eq!(fast.get("chkwarn").unwrap().value, strs(&["warn"]));
    assert_eq!(fast.get("chkalert").unwrap().value, strs(&[]));
    assert!(
        fast.get("hostname").is_none(),
        "hostname is a slow-lane probe"
    );
    let slow = sampler.take(Some(false), 1);
    assert_eq!(slow.get("chkalert").unwrap().value, strs(&["bad"]));
    assert_eq!(slow.get("hostname").unwrap().value, s("web-01"));
    assert!(sampler.take(None, 1).is_empty(), "results are sent once");
}

#[test]
fn live_once_on_this_machine() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opticon-agent"))
        .args(["--once", "--json", "-c", "/nonexistent/opticon-agent.conf"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an explicit missing config is an error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/opticon-agent.conf"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opticon-agent"))
        .args(["--once", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = opticon::conf::Node::Dict(
        opticon::conf::parse(&String::from_utf8(out.stdout).unwrap()).unwrap(),
    );
    assert!(doc.path("mem/total").and_then(|n| n.as_int()).unwrap() > 0);
    let Some(opticon::conf::Node::Array(load)) = doc.path("loadavg") else {
        panic!("no loadavg")
    };
    assert_eq!(load.len(), 3);
    let Some(opticon::conf::Node::Array(df)) = doc.path("df") else {
        panic!("no df table")
    };
    assert!(
        df.iter()
            .any(|row| row.path("mount").and_then(|m| m.as_str()) == Some("/")),
        "df has /"
    );
    assert!(
        doc.path("hostname").is_some()
            && doc.path("os/kernel").is_some()
            && doc.path("pcpu").is_some()
    );
}

#[test]
fn shipped_probe_scripts_print_usable_json() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/probes");
    let t = Duration::from_secs(30);
    let mdstat = vec![(
        "mdstat".to_string(),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mdstat/degraded"
        )
        .to_string(),
    )];
    let mut raid = Vec::new();
    exec::run_exec(&format!("{dir}/raid.probe"), &mdstat, t, &mut raid).unwrap();
    assert_eq!(get(&raid, "raid/dev"), &strs(&["md0", "md1", "md2"]));
    assert_eq!(
        get(&raid, "raid/state"),
        &strs(&["ok", "degraded", "recovering"])
    );
    assert_eq!(
        get(&raid, "raid/fail"),
        &MeterValue::Array(Array::Int(vec![0, 1, 1]))
    );
    let missing = vec![("mdstat".to_string(), "/nonexistent".to_string())];
    let mut none = Vec::new();
    exec::run_exec(&format!("{dir}/raid.probe"), &missing, t, &mut none).unwrap();
    assert_eq!(
        none,
        vec![("raid".to_string(), MeterValue::Array(Array::Int(vec![])))]
    );
    assert!(
        exec::run_command(&format!("{dir}/raid.check"), &missing, t)
            .unwrap()
            .code
            != 0
    );
    // Docker, whether this machine has it or not: a stand-in client with
    // two containers, then no client at all.
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker");
    let mut docker = Vec::new();
    exec::run_exec(
        &format!("PATH={fake}:$PATH {dir}/docker.probe"),
        &[],
        t,
        &mut docker,
    )
    .unwrap();
    assert_eq!(
        get(&docker, "cntr/name"),
        &strs(&["web", "db"]),
        "{docker:?}"
    );
    assert_eq!(
        get(&docker, "cntr/image"),
        &strs(&["nginx:1.25", "postgres:16"])
    );
    assert_eq!(
        get(&docker, "cntr/size"),
        &MeterValue::Array(Array::Int(vec![12, 1500]))
    );
    let mut without = Vec::new();
    exec::run_exec(
        &format!("PATH=/nonexistent {dir}/docker.probe"),
        &[],
        t,
        &mut without,
    )
    .unwrap();
    assert_eq!(
        without,
        vec![("cntr".to_string(), MeterValue::Array(Array::Int(vec![])))]
    );
    // Whatever this machine's package manager says, valid meters.
    let mut updates = Vec::new();
    exec::run_exec(&format!("{dir}/updates.probe"), &[], t, &mut updates).unwrap();
    assert!(updates.iter().any(|(n, _)| n == "pkgm/inq"), "{updates:?}");
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/opticon-agent.conf"
    ));
    let cfg = AgentConfig::load(path).unwrap();
    assert_eq!(cfg.collectors[0].port, 1047);
    assert_eq!(
        (
            cfg.fast_interval,
            cfg.slow_interval,
            cfg.key_rotation,
            cfg.max_datagram
        ),
        (60, 300, 1800, 1400)
    );
    assert!(cfg
        .probes
        .iter()
        .any(|p| p.id == "raid" && p.check.is_some()));
}

/// A VM without swap, sampled by the real agent and judged with the
/// shipped meter config over the defaults: healthy, no swap problem (the
/// shipped `mem/swap lt 65536` watcher fired on every swapless VM).
#[test]
fn a_swapless_host_is_healthy_under_the_shipped_watchers() {
    let s = Scratch::new("swapless");
    let meminfo = std::fs::read_to_string(s.0.join("proc/meminfo")).unwrap();
    let swapless: String = meminfo
        .lines()
        .map(|l| match l.split(':').next() {
            Some("SwapTotal") => "SwapTotal:             0 kB".to_string(),
            Some("SwapFree") => "SwapFree:              0 kB".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    s.write("proc/meminfo", &swapless);
    let agent = Path::new(env!("CARGO_BIN_EXE_opticon-agent"));
    let out = std::process::Command::new(agent)
        .args(["--once", "--json", "--root"])
        .arg(&s.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sample = String::from_utf8(out.stdout).unwrap();
    let mut host = opticon::model::HostMeters::default();
    opticon::model::json::merge_json(&mut host, &sample, 0).unwrap();
    assert!(
        host.iter().any(|(n, _)| n.as_str() == "mem/free"),
        "{sample}"
    );
    assert!(
        !host.iter().any(|(n, _)| n.as_str() == "mem/swap"),
        "no swap, no mem/swap: {sample}"
    );
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/opticon-meter.conf");
    let defs = opticon::db::meters::global_definitions(&shipped, true).unwrap();
    let mut badness = 0.0;
    for _ in 0..10 {
        let v = opticon::collector::judge::judge(&host, &defs, badness);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.status, opticon::model::Status::Ok);
        badness = v.badness;
    }
    // The same host with swap running out is judged.
    s.write(
        "proc/meminfo",
        &meminfo.replace("SwapFree:        2000000", "SwapFree:           1000"),
    );
    let out = std::process::Command::new(agent)
        .args(["--once", "--json", "--root"])
        .arg(&s.0)
        .output()
        .unwrap();
    let mut host = opticon::model::HostMeters::default();
    opticon::model::json::merge_json(&mut host, &String::from_utf8(out.stdout).unwrap(), 0)
        .unwrap();
    let v = opticon::collector::judge::judge(&host, &defs, 0.0);
    assert_eq!(v.problems, ["mem/swap"]);
}

/// The original's optional probes, each against a stand-in of the tool
/// it calls (tests/fixtures/stubs on the PATH) or a fixture tree: their
/// meters as the agent reads them, rates from a state file.
#[test]
fn optional_probes_read_their_tools() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/probes");
    let stubs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stubs");
    let t = Duration::from_secs(30);
    let state = std::env::temp_dir().join(format!("opticon-probe-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let run_with = |env: &str, probe: &str, options: &[(&str, String)]| {
        let options: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mut out = Vec::new();
        exec::run_exec(
            &format!("{env} PATH={stubs}:$PATH {dir}/{probe}"),
            &options,
            t,
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{probe}: {e}"));
        out
    };
    let run = |probe: &str, options: &[(&str, String)]| run_with("", probe, options);
    let num = |r: &Readings, name: &str| match get(r, name) {
        MeterValue::Scalar(s) => s.as_ref().as_f64().unwrap(),
        other => panic!("{name}: {other:?}"),
    };
    let now = opticon::model::unix_now();
    // MySQL: a replica, rates over the ten seconds since the last run.
    let mysql_state = state.join("mysql.state");
    std::fs::write(&mysql_state, format!("{} 1000 100 5\n", now - 10)).unwrap();
    let m = run(
        "mysql.probe",
        &[("state", mysql_state.display().to_string())],
    );
    assert_eq!(
        get(&m, "mysql/conf"),
        &MeterValue::Scalar(opticon::model::Scalar::Str("SLAVE".into()))
    );
    assert!((90.0..=101.0).contains(&num(&m, "mysql/qps")), "{m:?}");
    assert!((4.5..=5.1).contains(&num(&m, "mysql/cps")), "{m:?}");
    assert!((0.4..=0.6).contains(&num(&m, "mysql/erps")), "{m:?}");
    // BGP peers from vtysh.
    let b = run("bgp-zebra.probe", &[]);
    assert_eq!(get(&b, "bgp/peer"), &strs(&["192.0.2.2", "2001:db8::3"]));
    assert_eq!(get(&b, "bgp/as"), &strs(&["65001", "65002"]));
    assert_eq!(
        get(&b, "bgp/recv"),
        &MeterValue::Array(Array::Int(vec![1234, 17]))
    );
    assert_eq!(get(&b, "bgp/up"), &strs(&["3d01h02m", "00:01:05"]));
    // Virtual machines from virsh: 20 s of CPU in 10 s on 2 cores.
    let vm_state = state.join("libvirt");
    std::fs::create_dir_all(&vm_state).unwrap();
    for vm in ["web1", "db1"] {
        std::fs::write(
            vm_state.join(format!("{vm}.vm")),
            format!("{} 100\n", now - 10),
        )
        .unwrap();
    }
    let v = run_with(
        "STUB_CPU=120",
        "libvirt.probe",
        &[("state", vm_state.display().to_string())],
    );
    assert_eq!(get(&v, "vm/name"), &strs(&["web1", "db1"]));
    assert_eq!(get(&v, "vm/cores"), &strs(&["2", "2"]));
    assert_eq!(get(&v, "vm/ram"), &strs(&["2048", "2048"]));
    match get(&v, "vm/cpu") {
        MeterValue::Array(Array::Frac(c)) => {
            assert!(c.iter().all(|p| (85.0..=101.0).contains(p)), "{c:?}")
        }
        other => panic!("{other:?}"),
    }
    // Pi-hole's summary through curl.
    let p = run("pihole.probe", &[]);
    assert_eq!(num(&p, "phdns/sz"), 121860.0);
    assert_eq!(num(&p, "phdns/bnow"), 1109.0);
    assert!((num(&p, "phdns/pblk") - 13.17).abs() < 0.01);
    // Apache's busiest virtual hosts from mod_status.
    let h = run("modstatus.probe", &[]);
    assert_eq!(
        get(&h, "http/site"),
        &strs(&["shop.example.net", "www.example.net"])
    );
    assert_eq!(
        get(&h, "http/count"),
        &MeterValue::Array(Array::Int(vec![2, 1]))
    );
    // Fans and temperatures from a hwmon tree.
    let hwmon = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hwmon").to_string();
    let s = run("sensors.probe", &[("root", hwmon)]);
    assert_eq!(get(&s, "fan/id"), &strs(&["nct6775/CPU Fan"]));
    assert_eq!(get(&s, "fan/v"), &MeterValue::Array(Array::Int(vec![1250])));
    assert_eq!(
        get(&s, "temp/v"),
        &MeterValue::Array(Array::Int(vec![48, 52]))
    );
    let _ = std::fs::remove_dir_all(&state);
}
