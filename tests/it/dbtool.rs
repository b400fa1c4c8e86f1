//! `opticon-db` end to end: the real binary on temporary database roots.

use crate::common;

use opticon::conf::{self, Node};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const TENANT: &str = "0296d893-8187-4f44-a31b-bf3b4c19fc10";
const HOST: &str = "11111111-2222-3333-4444-555555555555";
/// 2023-11-14T00:00:00Z
const DAY0: i64 = 1_699_920_000;

/// A temporary database root, removed on drop.
pub struct Root(PathBuf);

impl Root {
    pub fn new(tag: &str) -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opticon-db-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Root(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("db")
    }

    /// Run opticon-db on this root.
    fn run(&self, args: &[&str]) -> Output {
        let db = self.db();
        let mut all = vec!["-p", db.to_str().unwrap()];
        // The first tenant creates the database.
        if args.first() == Some(&"tenant-create") {
            all.insert(0, "--init");
        }
        all.extend_from_slice(args);
        let out = Command::new(env!("CARGO_BIN_EXE_opticon-db"))
            .args(&all)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "opticon-db {args:?} panicked: {stderr}"
        );
        out
    }

    /// Run and expect success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "opticon-db {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and expect failure with `code`; returns the one-line stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "opticon-db {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("opticon-db: "), "{err}");
        err
    }

    fn json(&self, args: &[&str]) -> Node {
        let mut all = args.to_vec();
        all.push("--json");
        Node::Dict(conf::parse(&self.ok(&all)).unwrap())
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// Start `host-import FILE` for HOST in the background.
    fn spawn_import(
        &self,
        file: &str,
        extra: &[&str],
        stdout: std::process::Stdio,
    ) -> std::process::Child {
        let db = self.db();
        let mut args = vec![
            "-p",
            db.to_str().unwrap(),
            "-t",
            TENANT,
            "-H",
            HOST,
            "host-import",
            file,
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_opticon-db"))
            .args(&args)
            .stdout(stdout)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    fn with_tenant(tag: &str) -> Root {
        let r = Root::new(tag);
        r.ok(&["tenant-create", "--tenant", TENANT, "--name", "Acme"]);
        r
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// JSON lines of `n` samples from `start`, one a minute, with changing
/// values, as host-export writes them.
fn samples(start: i64, n: usize, seed: u64) -> String {
    let mut rng = common::Rng::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let t = start + i as i64 * 60;
        let pcpu = (rng.below(10_000) as f64) / 100.0;
        out.push_str(&format!(
            "{{\"time\": {t}, \"meters\": {{\"hostname\": \"web-01\", \"uptime\": {}, \"pcpu\": {pcpu}, \
             \"loadavg\": [{}, 0.5, 0.25], \"df\": [{{\"device\": \"/dev/vda1\", \"pused\": {}, \"mount\": \"/\"}}]}}}}\n",
            1000 + i * 60,
            rng.below(400) as f64 / 100.0,
            40 + rng.below(5),
        ));
    }
    out
}

fn field<'a>(n: &'a Node, path: &str) -> &'a Node {
    n.path(path)
        .unwrap_or_else(|| panic!("no {path} in {}", n.to_json(false)))
}

#[test]
fn tenant_lifecycle() {
    let r = Root::new("tenant");
    let out = r.ok(&["tenant-create", "--tenant", TENANT, "--name", "Acme"]);
    assert!(
        out.starts_with(&format!("UUID:    {TENANT}\nName:    Acme\nAES Key: ")),
        "{out}"
    );
    let key = out
        .lines()
        .nth(2)
        .unwrap()
        .trim_start_matches("AES Key: ")
        .to_string();
    assert_eq!(opticon::base64::decode(&key).unwrap().len(), 32);
    let err = r.fails(&["tenant-create", "--tenant", TENANT], 1);
    assert!(err.contains("already exists"), "{err}");
    let conf = r.db().join(TENANT).join("tenant.conf");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&conf).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "tenant.conf holds the key: owner only");
    let created = r.json(&["tenant-create", "--name", "Other"]);
    let other = field(&created, "tenant/id").as_str().unwrap().to_string();
    assert_eq!(
        r.ok(&["tenant-list"]).lines().next().unwrap(),
        "UUID                                  Hosts  Name"
    );
    let list = r.json(&["tenant-list"]);
    let Node::Array(items) = field(&list, "tenant") else {
        panic!()
    };
    assert_eq!(items.len(), 2);

    r.ok(&[
        "-t",
        TENANT,
        "tenant-set-metadata",
        "owner",
        "ops@example.net",
    ]);
    r.ok(&["-t", TENANT, "tenant-set-metadata", "rack", "42"]);
    let meta = Node::Dict(conf::parse(&r.ok(&["-t", TENANT, "tenant-get-metadata"])).unwrap());
    assert_eq!(field(&meta, "owner").as_str(), Some("ops@example.net"));
    assert_eq!(field(&meta, "rack"), &Node::Int(42));

    assert_eq!(
        field(&r.json(&["-t", TENANT, "tenant-get-quota"]), "quota"),
        &Node::Int(128)
    );
    r.ok(&["-t", TENANT, "tenant-set-quota", "64"]);
    assert!(r
        .ok(&["-t", TENANT, "tenant-get-quota"])
        .starts_with("Tenant storage quota: 64 MB\nCurrent usage: "));
    r.fails(&["-t", TENANT, "tenant-set-quota", "lots"], 2);

    let rotated = r.ok(&["-t", TENANT, "tenant-set-key"]);
    assert!(rotated.starts_with("AES Key: ") && !rotated.contains(&key));
    r.fails(&["-t", TENANT, "tenant-set-key", "--key", "short"], 2);

    r.ok(&["-t", &other, "tenant-delete"]);
    assert!(r
        .fails(&["-t", &other, "tenant-delete"], 1)
        .contains("does not exist"));
    assert_eq!(r.ok(&["tenant-list"]).lines().count(), 2);
}

#[test]
fn meters_and_watchers() {
    let r = Root::with_tenant("meters");
    let list = r.ok(&["-t", TENANT, "meter-list"]);
    assert!(
        list.lines().next().unwrap().starts_with("From     Meter"),
        "{list}"
    );
    assert!(list
        .lines()
        .any(|l| l.starts_with("default") && l.contains("pcpu") && l.contains("CPU Usage")));
    r.ok(&[
        "-t",
        TENANT,
        "meter-create",
        "--meter",
        "mysql/qps",
        "--type",
        "frac",
        "--description",
        "Queries",
        "--unit",
        "q/s",
    ]);
    let json = r.json(&["-t", TENANT, "meter-list"]);
    assert_eq!(
        field(&json, "meter")
            .as_dict()
            .unwrap()
            .get("mysql/qps")
            .and_then(|m| m.path("origin")),
        Some(&Node::Str("tenant".into()))
    );
    r.fails(
        &[
            "-t",
            TENANT,
            "meter-create",
            "--meter",
            "x",
            "--type",
            "blob",
        ],
        1,
    );
    r.fails(&["-t", TENANT, "meter-create", "--meter", "Bad Name"], 1);

    r.ok(&[
        "-t",
        TENANT,
        "watcher-set",
        "--meter",
        "pcpu",
        "--level",
        "warning",
        "--match",
        "gt",
        "--value",
        "50",
        "--weight",
        "0.5",
    ]);
    let watchers = r.ok(&["-t", TENANT, "watcher-list"]);
    assert!(
        watchers.lines().any(|l| l.starts_with("tenant")
            && l.contains("pcpu")
            && l.contains("warning")
            && l.contains("50")
            && l.contains("0.50")),
        "{watchers}"
    );
    let err = r.fails(
        &[
            "-t",
            TENANT,
            "watcher-set",
            "--meter",
            "hostname",
            "--match",
            "gt",
            "--value",
            "1",
        ],
        1,
    );
    assert!(err.contains("eq or count"), "{err}");
    let refused: &[(&[&str], i32)] = &[
        (&["--meter", "nope", "--value", "1"], 2),
        (&["--meter", "pcpu", "--level", "severe", "--value", "1"], 2),
        (&["--meter", "pcpu", "--value", "high"], 1),
    ];
    for (extra, code) in refused {
        let mut args = vec!["-t", TENANT, "watcher-set"];
        args.extend_from_slice(extra);
        r.fails(&args, *code);
    }

    // Host level: a host must exist, then it overrides the tenant.
    let file = r.write("one.json", &samples(DAY0, 1, 1));
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &file]);
    r.ok(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "watcher-set",
        "--meter",
        "pcpu",
        "--level",
        "warning",
        "--match",
        "gt",
        "--value",
        "75",
    ]);
    let wj = r.json(&["-t", TENANT, "-H", HOST, "watcher-list"]);
    assert_eq!(
        field(&wj, "watcher")
            .as_dict()
            .unwrap()
            .get("pcpu")
            .and_then(|p| p.path("warning/val")),
        Some(&Node::Frac(75.0))
    );
    assert_eq!(
        field(&wj, "watcher")
            .as_dict()
            .unwrap()
            .get("pcpu")
            .and_then(|p| p.path("warning/origin")),
        Some(&Node::Str("host".into()))
    );
    r.ok(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "watcher-delete",
        "--meter",
        "pcpu",
    ]);
    r.ok(&[
        "-t",
        TENANT,
        "watcher-delete",
        "--meter",
        "pcpu",
        "--level",
        "warning",
    ]);
    let back = r.json(&["-t", TENANT, "watcher-list"]);
    assert_eq!(
        field(&back, "watcher")
            .as_dict()
            .unwrap()
            .get("pcpu")
            .and_then(|p| p.path("warning/val")),
        Some(&Node::Frac(90.0))
    );
    r.ok(&["-t", TENANT, "meter-delete", "--meter", "mysql/qps"]);
    r.fails(&["-t", TENANT, "meter-delete", "--meter", "mysql/qps"], 1);
}

#[test]
fn hosts_across_days() {
    let r = Root::with_tenant("hosts");
    // Day 0 from 23:00 to 23:59, nothing on day 1, day 2 from 00:00.
    let late = samples(DAY0 + 23 * 3600, 60, 2);
    let next = samples(DAY0 + 2 * 86_400, 30, 3);
    let file = r.write("s.jsonl", &format!("{late}{next}"));
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &file]);
    let list = r.json(&["-t", TENANT, "host-list"]);
    let Node::Array(hosts) = field(&list, "host") else {
        panic!()
    };
    assert_eq!(
        hosts[0].path("start").and_then(Node::as_str),
        Some("2023-11-14T23:00:00")
    );
    assert_eq!(
        hosts[0].path("end").and_then(Node::as_str),
        Some("2023-11-16T00:29:00")
    );
    assert!(r
        .ok(&["-t", TENANT, "host-list"])
        .contains("2023-11-14T23:00:00Z  2023-11-16T00:29:00Z"));

    // Latest, by hostname; and at a time in the empty day.
    let latest =
        Node::Dict(conf::parse(&r.ok(&["-t", TENANT, "-H", "WEB-01", "host-show"])).unwrap());
    assert_eq!(field(&latest, "uptime"), &Node::Int(1000 + 29 * 60));
    let empty_day = r.ok(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "host-show",
        "--time",
        "2023-11-15T12:00",
    ]);
    let at = Node::Dict(conf::parse(&empty_day).unwrap());
    assert_eq!(
        field(&at, "uptime"),
        &Node::Int(1000 + 59 * 60),
        "previous day's last record"
    );
    let exact = Node::Dict(
        conf::parse(&r.ok(&[
            "-t",
            TENANT,
            "-H",
            HOST,
            "host-show",
            "-T",
            "2023-11-14T23:30",
        ]))
        .unwrap(),
    );
    assert_eq!(field(&exact, "uptime"), &Node::Int(1000 + 30 * 60));
    assert_eq!(
        field(&exact, "df").to_json(false).matches("vda1").count(),
        1
    );
    let before = r.fails(
        &[
            "-t",
            TENANT,
            "-H",
            HOST,
            "host-show",
            "-T",
            "2023-11-14T22:00",
        ],
        1,
    );
    assert!(
        before.contains("at or before 2023-11-14T22:00:00Z"),
        "{before}"
    );

    // Series across the days, whole and downsampled.
    let series = r.ok(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "host-series",
        "-m",
        "uptime",
        "--from",
        "2023-11-14",
        "--to",
        "2023-11-17",
    ]);
    assert_eq!(series.lines().count(), 90);
    let pts = r.json(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "host-series",
        "-m",
        "loadavg",
        "--from",
        "2023-11-14T23:00",
        "--to",
        "2023-11-16T00:30",
        "--points",
        "3",
    ]);
    let Node::Array(pts) = field(&pts, "series") else {
        panic!()
    };
    assert_eq!(pts.len(), 2, "the empty middle bucket is left out");
    assert_eq!(
        pts.iter()
            .map(|p| p.path("count").and_then(Node::as_int).unwrap())
            .sum::<i64>(),
        90
    );

    // Export, import into another host: identical.
    let export = r.ok(&["-t", TENANT, "-H", HOST, "host-export"]);
    assert_eq!(export.lines().count(), 90);
    let copy = r.write("export.jsonl", &export);
    let other = "99999999-2222-3333-4444-555555555555";
    r.ok(&["-t", TENANT, "-H", other, "host-import", &copy]);
    assert_eq!(r.ok(&["-t", TENANT, "-H", other, "host-export"]), export);
    let dup = r.fails(&["-t", TENANT, "-H", other, "host-import", &copy], 1);
    assert!(dup.contains("not newer"), "{dup}");
    let err = r.fails(&["-t", TENANT, "-H", "WEB-01", "host-show"], 1);
    assert!(err.contains("matches 2 hosts"), "{err}");

    assert_eq!(
        r.ok(&["-t", TENANT, "-H", HOST, "host-log"])
            .lines()
            .count(),
        1
    );
    r.ok(&["-t", TENANT, "-H", other, "host-delete"]);
    r.fails(&["-t", TENANT, "-H", other, "host-show"], 1);
    assert!(r.ok(&["-t", TENANT, "fsck"]).ends_with("0 problems\n"));
}

#[test]
fn bad_input_gets_one_clear_line() {
    let r = Root::with_tenant("errors");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["-t", "nope", "host-list"], 2, "is not a UUID"),
        (
            &["-t", "0296d893-8187-4f44-a31b-000000000000", "host-list"],
            1,
            "does not exist",
        ),
        (
            &["-t", TENANT, "-H", HOST, "host-show"],
            1,
            "does not exist",
        ),
        (
            &[
                "-t",
                TENANT,
                "-H",
                HOST,
                "host-series",
                "-m",
                "pcpu",
                "--from",
                "yesterday",
            ],
            2,
            "bad time spec",
        ),
        (&["frobnicate"], 2, "unknown command"),
        (&[], 2, "no command"),
        (&["--bogus"], 2, "Unrecognized option"),
        (
            &["-t", TENANT, "tenant-set-metadata", "onlykey"],
            2,
            "KEY VALUE",
        ),
        (&["-t", TENANT, "host-import"], 2, "FILE"),
        (
            &[
                "-t",
                TENANT,
                "-H",
                HOST,
                "host-import",
                "/nonexistent/file.json",
            ],
            1,
            "/nonexistent/file.json",
        ),
        (&["purge"], 2, "--older-than"),
    ];
    for (args, code, needle) in cases {
        let err = r.fails(args, *code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let bad = r.write("bad.jsonl", "{\"time\": 1, \"meters\": {\"a b\": 1}}\n");
    let err = r.fails(&["-t", TENANT, "-H", HOST, "host-import", &bad], 1);
    assert!(err.contains("not allowed in a meter name"), "{err}");
    // Permission denied, reported with the path. Root may write anywhere,
    // so as root (CI) the command runs as nobody through setpriv(1).
    // A valid record of a day no file exists for yet: storing it needs a
    // new day file in the locked directory.
    let good = r.write(
        "good.jsonl",
        "{\"time\": 1728000000, \"meters\": {\"pcpu\": 1.5}}\n",
    );
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        common::chown_tree(&r.db(), 65534, 65534);
    }
    let locked: Vec<PathBuf> = [
        r.db().join(TENANT),
        r.db().join(TENANT).join("days"),
        r.db().join(TENANT).join(HOST),
    ]
    .into_iter()
    .filter(|d| d.is_dir())
    .collect();
    for d in &locked {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
    }
    let err = if root {
        let db = r.db();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_opticon-db"))
            .args([
                "-p",
                db.to_str().unwrap(),
                "-t",
                TENANT,
                "-H",
                HOST,
                "host-import",
                &good,
            ])
            .output()
            .expect("setpriv (util-linux) runs the check as nobody");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    } else {
        r.fails(&["-t", TENANT, "-H", HOST, "host-import", &good], 1)
    };
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains(TENANT), "the path is named: {err}");
    for d in &locked {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
}

#[test]
fn purge_quota_and_du() {
    let r = Root::with_tenant("purge");
    let mut text = String::new();
    for day in 0..4 {
        text.push_str(&samples(DAY0 + day * 86_400, 30, day as u64));
    }
    let file = r.write("four.jsonl", &text);
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &file]);
    let dir = r.db().join(TENANT).join(HOST);
    let days_dir = r.db().join(TENANT).join("days");
    let days = || {
        let mut v: Vec<String> = std::fs::read_dir(&days_dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".otd"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(days().len(), 4);
    assert!(r.ok(&["du"]).contains("128 MB"));
    // What a tenant occupies is what du(1) says: allocated blocks of
    // every file and directory, not the files' lengths.
    let du = Command::new("du")
        .args(["-s", "-B1"])
        .arg(r.db().join(TENANT))
        .output()
        .unwrap();
    let du: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ours = r.json(&["du"]);
    let ours = match ours.path("tenant") {
        Some(Node::Array(list)) => list[0].path("bytes").and_then(Node::as_int).unwrap() as u64,
        other => panic!("{other:?}"),
    };
    assert_eq!(ours, du, "opticon-db du against du -s -B1");
    // Quota 0: oldest days go until only the newest is left.
    r.ok(&["-t", TENANT, "tenant-set-quota", "0"]);
    let out = r.run(&["enforce-quota"]);
    let (text, why) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(days(), vec!["20231117.otd"]);
    // Still over a quota of 0: it says why, and exits 1.
    assert_eq!(out.status.code(), Some(1));
    assert!(why.contains("only the newest day is left"), "{why}");
    // Purge by age: the last day ended long ago.
    assert!(r
        .ok(&["purge", "--older-than", "1d"])
        .contains("deleted 1 day files"));
    assert!(days().is_empty());
    // A host with no data left is silent: --stale removes it.
    assert!(r
        .ok(&["purge", "--stale", "30d"])
        .contains(&format!("deleted silent host {HOST}")));
    assert!(!dir.exists());
}

fn flip(path: &Path, at: usize) {
    let mut buf = std::fs::read(path).unwrap();
    buf[at] ^= 0x10;
    std::fs::write(path, buf).unwrap();
}

#[test]
fn flipped_bytes_are_found_and_never_returned() {
    let r = Root::with_tenant("flip");
    let file = r.write("s.jsonl", &samples(DAY0, 150, 9));
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &file]);
    let original = r.ok(&["-t", TENANT, "-H", HOST, "host-export"]);
    let day = r.db().join(TENANT).join("days/20231114.otd");
    let len = std::fs::metadata(&day).unwrap().len() as usize;
    flip(&day, len / 2);
    let out = r.run(&["-t", TENANT, "fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("fail their checksum"), "{report}");
    // Every record still returned is byte-for-byte one that was stored.
    let damaged = r.ok(&["-t", TENANT, "-H", HOST, "host-export"]);
    let kept: Vec<&str> = damaged.lines().collect();
    assert!(
        kept.len() < 150 && kept.len() >= 150 - 61,
        "{} records left",
        kept.len()
    );
    for line in &kept {
        assert!(
            original.lines().any(|l| l == *line),
            "a record changed: {line}"
        );
    }
    r.ok(&["-t", TENANT, "fsck", "--repair"]);
    assert!(r.ok(&["-t", TENANT, "fsck"]).ends_with("0 problems\n"));
    assert_eq!(r.ok(&["-t", TENANT, "-H", HOST, "host-export"]), damaged);
    // A damaged header: the file reads as empty (nothing served from
    // it, nothing failing), fsck finds it, and --repair rebuilds the
    // header from the file name, keeping every record.
    flip(&day, 3);
    assert_eq!(r.ok(&["-t", TENANT, "-H", HOST, "host-export"]), "");
    assert!(r.run(&["-t", TENANT, "fsck"]).status.code() == Some(1));
    let repaired = r.ok(&["-t", TENANT, "fsck", "--repair"]);
    assert!(repaired.contains("header rebuilt"), "{repaired}");
    assert_eq!(r.ok(&["-t", TENANT, "-H", HOST, "host-export"]), damaged);
}

/// The samples of a JSON-lines text, by time.
fn by_time(text: &str) -> std::collections::BTreeMap<i64, opticon::model::HostMeters> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let doc = conf::parse(line).unwrap();
            let time = doc.get("time").and_then(Node::as_int).unwrap();
            let Some(Node::Dict(m)) = doc.get("meters") else {
                panic!("{line}")
            };
            let mut host = opticon::model::HostMeters::new();
            for (n, v) in opticon::model::json::meters_from_dict(m).unwrap() {
                host.set(n, v, 0).unwrap();
            }
            (time, host)
        })
        .collect()
}

#[test]
fn sigkilled_writer_never_loses_synced_records() {
    let r = Root::with_tenant("crash");
    let mut rng = common::Rng::new(0xc4a5);
    let mut start = DAY0;
    let mut all = String::new();
    let mut torn_seen = 0;
    for round in 0..50 {
        let text = samples(start, 300, round);
        all.push_str(&text);
        let file = r.write("round.jsonl", &text);
        let mut child = r.spawn_import(
            &file,
            &["--sync-every", "1", "--progress"],
            std::process::Stdio::piped(),
        );
        std::thread::sleep(std::time::Duration::from_millis(2 + rng.below(40) as u64));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let synced: Vec<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("synced ")?.parse().ok())
            .collect();

        // Every other round, also leave what a power cut leaves: part of
        // an unsynced frame at the end of the newest day file.
        if round % 2 == 0 {
            let days_dir = r.db().join(TENANT).join("days");
            let mut days: Vec<PathBuf> = std::fs::read_dir(&days_dir)
                .into_iter()
                .flatten()
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "otd"))
                .collect();
            days.sort();
            if let Some(newest) = days.last() {
                let n = 1 + rng.below(300);
                let garbage = rng.bytes(n);
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(newest)
                    .unwrap();
                std::io::Write::write_all(&mut f, &garbage).unwrap();
            }
        }
        // fsck may find a torn tail, or a day file the kill left before
        // its first index (its records were never acknowledged; the next
        // writer or --repair indexes them), nothing else.
        let check = r.run(&["-t", TENANT, "fsck"]);
        let report = String::from_utf8(check.stdout).unwrap();
        for line in report.lines().filter(|l| !l.starts_with("fsck:")) {
            assert!(
                line.contains("torn tail") || line.contains("index: missing"),
                "round {round}: {line}"
            );
            torn_seen += usize::from(line.contains("torn tail"));
        }
        // Every synced record is there, and every record returned is
        // exactly one that was imported.
        let stored = by_time(&r.ok(&["-t", TENANT, "-H", HOST, "host-export"]));
        let imported = by_time(&all);
        for t in &synced {
            assert!(
                stored.contains_key(t),
                "round {round}: synced record {t} lost"
            );
        }
        for (t, m) in &stored {
            assert_eq!(
                Some(m),
                imported.get(t),
                "round {round}: record {t} differs"
            );
        }
        start = stored
            .keys()
            .next_back()
            .map_or(start, |t| t + 60)
            .max(start + 60 * 300);
    }
    eprintln!("crash test: {torn_seen} torn tails seen over 50 kills");
    assert!(torn_seen >= 20, "torn tails were not exercised");
}

#[test]
fn readers_run_during_writes() {
    let r = Root::with_tenant("concurrent");
    let file = r.write("big.jsonl", &samples(DAY0, 3000, 5));
    let mut writer = r.spawn_import(&file, &["--sync-every", "50"], std::process::Stdio::null());
    let mut reads = 0;
    while writer.try_wait().unwrap().is_none() {
        for args in [
            &["-t", TENANT, "-H", HOST, "host-show"][..],
            &[
                "-t",
                TENANT,
                "-H",
                HOST,
                "host-series",
                "-m",
                "uptime",
                "--from",
                "2023-11-14",
                "--to",
                "2023-11-17",
            ],
        ] {
            let out = r.run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() || err.contains("does not exist"),
                "{args:?}: {err}"
            );
            reads += 1;
        }
    }
    assert!(writer.wait().unwrap().success());
    assert!(reads > 0);
    assert_eq!(
        r.ok(&["-t", TENANT, "-H", HOST, "host-export"])
            .lines()
            .count(),
        3000
    );
}

#[test]
fn one_writer_per_host_and_du_json() {
    let r = Root::with_tenant("lock");
    let db = opticon::db::Db::new(r.db());
    let tenant = uuid::Uuid::parse_str(TENANT).unwrap();
    let host = uuid::Uuid::parse_str(HOST).unwrap();
    let writer = db.writer(tenant, host).unwrap();
    match db.writer(tenant, host) {
        Err(opticon::db::DbError::Locked(_)) => {}
        Err(e) => panic!("second writer: {e}"),
        Ok(_) => panic!("a second writer of the same host was allowed"),
    }
    let file = r.write("one.json", &samples(DAY0, 1, 1));
    let err = r.fails(&["-t", TENANT, "-H", HOST, "host-import", &file], 1);
    assert!(err.contains("locked by another writer"), "{err}");
    drop(writer);
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &file]);
    db.sync().unwrap();
    let du = r.json(&["du"]);
    assert!(field(&du, "total").as_int().unwrap() > 0);
    let Node::Array(tenants) = field(&du, "tenant") else {
        panic!()
    };
    assert_eq!(
        tenants[0].path("quota").and_then(Node::as_int),
        Some(128 << 20)
    );
}

/// A day file with a zeroed header and a garbage host log stop nothing:
/// listings and queries serve the rest, the next writer rebuilds the
/// header from the file name (every record kept) and records on, and
/// fsck --repair rebuilds the log.
#[test]
fn damaged_headers_never_stop_a_host() {
    let r = Root::with_tenant("damaged");
    let first = r.write("a.jsonl", &samples(DAY0 + 3600, 20, 1));
    r.ok(&["-t", TENANT, "-H", HOST, "host-import", &first]);
    let host_dir = r.db().join(TENANT).join(HOST);
    let day = r.db().join(TENANT).join("days/20231114.otd");
    let mut bytes = std::fs::read(&day).unwrap();
    bytes[..32].fill(0);
    std::fs::write(&day, &bytes).unwrap();
    std::fs::write(host_dir.join("host.log"), vec![0x5a; 700]).unwrap();
    // Listings and queries answer; the damaged file reads as empty.
    let list = r.json(&["-t", TENANT, "host-list"]);
    assert!(
        list.to_json(false).contains(HOST),
        "{}",
        list.to_json(false)
    );
    r.ok(&["-t", TENANT, "-H", HOST, "host-log"]);
    assert_eq!(r.ok(&["-t", TENANT, "-H", HOST, "host-export"]), "");
    // fsck finds both.
    let found = r.run(&["-t", TENANT, "fsck"]);
    assert_eq!(found.status.code(), Some(1));
    let found = String::from_utf8_lossy(&found.stdout).to_string();
    assert!(
        found.contains("20231114.otd: unreadable") && found.contains("host.log"),
        "{found}"
    );
    // The next writer rebuilds the header and records on.
    let more = r.write("b.jsonl", &samples(DAY0 + 3 * 3600, 10, 2));
    let out = r.run(&["-t", TENANT, "-H", HOST, "host-import", &more]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("header rebuilt, 20 records kept"), "{said}");
    let shown = r.ok(&["-t", TENANT, "-H", HOST, "host-show"]);
    assert!(shown.contains("hostname"), "{shown}");
    let repaired = r.ok(&["-t", TENANT, "fsck", "--repair"]);
    assert!(repaired.contains("host.log: rebuilt"), "{repaired}");
    let clean = r.ok(&["-t", TENANT, "fsck"]);
    assert!(clean.ends_with("0 problems\n"), "{clean}");
    let export = r.ok(&["-t", TENANT, "-H", HOST, "host-export"]);
    assert_eq!(export.lines().count(), 30, "{export}");
}

/// A loop-mounted ext4 filesystem, unmounted on drop (tmpfs would hide
/// ENOSPC on small appends).
struct SmallDisk {
    mount: PathBuf,
    image: PathBuf,
}

impl SmallDisk {
    fn new(tag: &str, mb: u32) -> Option<SmallDisk> {
        let base = std::env::temp_dir().join(format!("opticon-disk-{tag}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&base);
        let image = base.join("fs.img");
        let mount = base.join("mnt");
        std::fs::create_dir_all(&mount).ok()?;
        let run = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let img = image.to_str()?;
        (run(
            "dd",
            &[
                "if=/dev/zero",
                &format!("of={img}"),
                "bs=1M",
                &format!("count={mb}"),
            ],
        ) && run("mkfs.ext4", &["-q", "-F", "-m", "0", img])
            && run("mount", &["-o", "loop", img, mount.to_str()?]))
        .then_some(SmallDisk { mount, image })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).output();
        let _ = std::fs::remove_file(&self.image);
    }
}

/// A full disk: appends fail cleanly with the reason, every sample
/// acknowledged as durable stays, and recording resumes with space.
#[test]
fn a_full_disk_loses_nothing_stored() {
    if unsafe { libc::geteuid() } != 0 {
        common::unavailable("a full disk (loop-mounting ext4 needs root)");
        return;
    }
    let Some(disk) = SmallDisk::new("full", 8) else {
        common::unavailable("a full disk (no loop device or mkfs.ext4)");
        return;
    };
    let db = disk.mount.join("db");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_opticon-db"))
            .arg("-p")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["--init", "tenant-create", "--tenant", TENANT])
        .status
        .success());
    // Leave about 200 KB.
    let filler = disk.mount.join("filler");
    let free = || {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&disk.mount)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap_or("0")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let fill = free().saturating_sub(200 << 10);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    let scratch = Root::new("full-src");
    let big = scratch.write("big.jsonl", &samples(DAY0, 6000, 3));
    let out = run(&[
        "-t",
        TENANT,
        "-H",
        HOST,
        "host-import",
        "--sync-every",
        "1",
        "--progress",
        &big,
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "the disk never filled: {err}");
    assert!(err.contains("No space left"), "{err}");
    let durable: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("synced ")?.parse().ok())
        .collect();
    assert!(
        !durable.is_empty(),
        "nothing was synced before the disk filled"
    );
    // Space again: recording resumes; what was durable is all there.
    std::fs::remove_file(&filler).unwrap();
    let more = scratch.write("more.jsonl", &samples(DAY0 + 10 * 86_400, 10, 4));
    let out = run(&["-t", TENANT, "-H", HOST, "host-import", &more]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = String::from_utf8_lossy(&run(&["-t", TENANT, "-H", HOST, "host-export"]).stdout)
        .to_string();
    let times: std::collections::BTreeSet<i64> = export
        .lines()
        .filter_map(|l| conf::parse(l).ok()?.get("time").and_then(Node::as_int))
        .collect();
    for t in &durable {
        assert!(
            times.contains(t),
            "sample {t} was acknowledged as durable and is gone"
        );
    }
    assert!(
        times.contains(&(DAY0 + 10 * 86_400)),
        "recording did not resume"
    );
    let fsck = run(&["-t", TENANT, "fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// The original's optional probes' meters are defined, with its types,
/// units and descriptions, so a host sending them is shown with names.
#[test]
fn the_original_meter_set_is_defined() {
    let root = Root::new("meterset");
    root.ok(&["tenant-create", "--tenant", TENANT]);
    let doc = Node::Dict(conf::parse(&root.ok(&["-t", TENANT, "meter-list", "--json"])).unwrap());
    let Some(Node::Dict(meters)) = doc.path("meter") else {
        panic!("{}", doc.to_json(false))
    };
    for (id, kind, unit) in [
        ("vm", "table", ""),
        ("vm/cpu", "frac", "%"),
        ("vm/ram", "string", "MB"),
        ("temp/v", "integer", "C"),
        ("fan/v", "integer", "%"),
        ("bgp/peer", "string", ""),
        ("phdns/pblk", "frac", "%"),
        ("mysql/qps", "frac", "q/s"),
        ("cntr/size", "integer", "MB"),
        ("health/s", "string", ""),
        ("lb/gw", "string", ""),
        ("mssql/erps", "integer", "e/s"),
        ("port/in", "integer", "Kb/s"),
        ("cnt/image", "string", ""),
    ] {
        let m = meters
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not defined"));
        assert_eq!(m.path("type").and_then(Node::as_str), Some(kind), "{id}");
        assert_eq!(
            m.path("unit").and_then(Node::as_str).unwrap_or(""),
            unit,
            "{id}"
        );
        assert!(
            m.path("description")
                .and_then(Node::as_str)
                .is_some_and(|d| !d.is_empty()),
            "{id}"
        );
    }
    let watchers = root.ok(&["-t", TENANT, "watcher-list"]);
    assert!(watchers.contains("mysql/erps"), "{watchers}");
}

/// A database written in the layout before tenant day files (a day file
/// per host, as the previous release wrote them): the collector, its
/// `-t` and every other command refuse it, naming `opticon-db migrate`;
/// migrate converts it in place, and then everything reads it.
#[test]
fn migrate_converts_an_old_database_that_everything_else_refuses() {
    use opticon::db::HostWriter;
    let r = Root::with_tenant("migrate");
    let dir = r.db().join(TENANT).join(HOST);
    let mut w = HostWriter::open(&dir).unwrap();
    let mut fake = opticon::fleet::FakeHost::new(5);
    // 100 samples across a UTC midnight: two host day files.
    let start = DAY0 + 86_400 - 3000;
    for k in 0..100 {
        let t = start + 60 * k;
        w.append(t, &fake.sample(t)).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    // The marker as the previous release wrote it.
    std::fs::write(
        r.db().join("opticon.db"),
        "Opticon database (see opticon-db(8))\n",
    )
    .unwrap();
    let err = r.fails(&["-t", TENANT, "host-list"], 1);
    assert!(
        err.contains("day files per host") && err.contains("migrate"),
        "{err}"
    );
    let conf = r.write(
        "collector.conf",
        &format!("database {{ path {} }}\n", r.db().display()),
    );
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_opticon-collector"))
            .args(["-t", "-c", &conf])
            .output()
            .unwrap()
    };
    let refused = check();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(said.contains("opticon-db --path"), "{said}");
    let out = r.ok(&["migrate"]);
    assert!(
        out.contains("2 days, 2 host day files, 100 samples converted"),
        "{out}"
    );
    assert!(out.contains("the database is in tenant day files"), "{out}");
    let export = r.ok(&["-t", TENANT, "-H", HOST, "host-export"]);
    assert_eq!(export.lines().count(), 100);
    assert!(r.ok(&["-t", TENANT, "fsck"]).ends_with("0 problems\n"));
    let accepted = check();
    assert_eq!(accepted.status.code(), Some(0), "{accepted:?}");
    // Nothing left to do on a second run.
    assert!(r.ok(&["migrate"]).contains("0 days, 0 host day files"));
}
