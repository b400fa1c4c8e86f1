//! Export to real engines (VictoriaMetrics and Prometheus from Debian):
//! an agent's records arrive with the values `opticon-db host-show`
//! shows, an outage loses nothing, a full spool drops the oldest, a 400
//! is not retried, a pair of collectors leaves no gap and notifies once;
//! and our snappy and protobuf output decodes with independent decoders.

use crate::common::{
    self, create_tenant, free_port, give_to_service_user, start_daemon, wait_for, wait_for_log,
    Daemon, Dir, Rng, ADMIN_TOKEN, PATIENCE, TENANT,
};
use crate::engines::{Engine, Kind};
use opticon::conf::{self, Node};
use opticon::export::encode::{Batch, Format, HostLabels};
use opticon::export::series::{metric_name, rows, SeriesRules};
use opticon::export::snappy;
use opticon::model::{json, Array, HostMeters, MeterName, MeterValue, Scalar};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's python, with python3-snappy and python3-protobuf.
const PYTHON: &str = "/usr/bin/python3";

/// `<name>.conf`: a collector writing every second into `<name>-db`,
/// with `intervals` added to its `interval` section and `extra` after.
fn collector_conf(dir: &Dir, name: &str, udp: u16, intervals: &str, extra: &str) {
    std::fs::write(
        dir.path(&format!("{name}.conf")),
        format!(
            "network {{ address 127.0.0.1 port {udp} }}\ndatabase {{ path {} }}\n\
             interval {{ write 1 {intervals} }}\nping {{ enabled false }}\n{extra}",
            dir.s(&format!("{name}-db"))
        ),
    )
    .unwrap();
}

/// A tenant in `<name>-db` for each collector, all with the same key.
fn databases(dir: &Dir, names: &[&str]) -> String {
    let key = create_tenant(dir, TENANT, "export");
    for n in names {
        let status = Command::new("cp")
            .args(["-a", &dir.s("db"), &dir.s(&format!("{n}-db"))])
            .status()
            .unwrap();
        assert!(status.success());
        give_to_service_user(&dir.path(&format!("{n}-db")));
    }
    key
}

fn agent(dir: &Dir, key: &str, ports: &[u16]) -> Daemon {
    let collectors: Vec<String> = ports
        .iter()
        .map(|p| format!("{{ address 127.0.0.1 port {p} tenant {TENANT} key \"{key}\" }}"))
        .collect();
    std::fs::write(
        dir.path("agent.conf"),
        format!(
            "collector [ {} ]\ninterval {{ fast 1 slow 1 key_rotation 30 auth_resend 1 auth_resend_chance 100 }}\n",
            collectors.join("\n")
        ),
    )
    .unwrap();
    start_daemon(dir, env!("CARGO_BIN_EXE_opticon-agent"), "agent")
}

fn loadgen(udp: u16, key: &str, hosts: usize, rate: usize, secs: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_opticon-loadgen"))
        .args([
            "--port",
            &udp.to_string(),
            "--tenant",
            TENANT,
            "--key",
            key,
            "--hosts",
            &hosts.to_string(),
            "--rate",
            &rate.to_string(),
            "--duration",
            &secs.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// A target's counters from the collector's published metrics.
fn counter(dir: &Dir, db: &str, target: &str, key: &str) -> i64 {
    std::fs::read_to_string(dir.path(&format!("{db}/collector.metrics")))
        .ok()
        .and_then(|t| conf::parse(&t).ok())
        .and_then(|d| {
            d.path(&format!("export/{target}/{key}"))
                .and_then(Node::as_int)
        })
        .unwrap_or(-1)
}

fn host_ids(dir: &Dir, db: &str) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.path(&format!("{db}/{TENANT}")))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| uuid::Uuid::parse_str(n).is_ok())
        .collect();
    ids.sort();
    ids
}

/// The host's latest record as `opticon-db host-show` prints it, as flat
/// meters.
fn host_show(dir: &Dir, db: &str, host: &str) -> HostMeters {
    let out = Command::new(env!("CARGO_BIN_EXE_opticon-db"))
        .args([
            "-p",
            &dir.s(db),
            "host-show",
            "--tenant",
            TENANT,
            "--host",
            host,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = HostMeters::new();
    json::merge_json(&mut m, &String::from_utf8_lossy(&out.stdout), 0).unwrap();
    m
}

/// Why the engine's latest values differ from the record (`Ok` when
/// every exported meter matches).
fn differences(engine: &Engine, record: &HostMeters, host: &str) -> Result<usize, String> {
    let mut checked = 0;
    let eq = |want: f64, got: Option<f64>, what: &str| -> Result<(), String> {
        match got {
            Some(g) if (g - want).abs() <= 1e-9 * want.abs().max(1.0) => Ok(()),
            other => Err(format!("{what}: record {want}, engine {other:?}")),
        }
    };
    let mut df_rows = 0;
    for (name, meter) in record.iter() {
        let name = name.as_str();
        if name.starts_with("top/") || name.starts_with("who/") {
            continue;
        }
        // While a watcher fires (a busy test machine's load), each write
        // cycle judges the last sample again and moves the badness of
        // the record after that sample was exported.
        let firing = matches!(record.get("problems").map(|m| &m.value),
            Some(MeterValue::Array(Array::Str(p))) if !p.is_empty());
        if name == "badness" && firing {
            continue;
        }
        let metric = format!("opticon_{}", name.replace('/', "_"));
        match &meter.value {
            MeterValue::Scalar(Scalar::Int(v)) => eq(
                *v as f64,
                engine.value(&format!("{metric}{{host=\"{host}\"}}")),
                name,
            )?,
            MeterValue::Scalar(Scalar::Frac(v)) => eq(
                *v,
                engine.value(&format!("{metric}{{host=\"{host}\"}}")),
                name,
            )?,
            MeterValue::Array(Array::Frac(v)) if name == "loadavg" => {
                for (i, x) in v.iter().enumerate() {
                    let q = format!("{metric}{{host=\"{host}\",index=\"{i}\"}}");
                    eq(*x, engine.value(&q), &q)?;
                }
            }
            MeterValue::Array(Array::Frac(v)) if name == "df/pused" => {
                let Some(MeterValue::Array(Array::Str(mounts))) =
                    record.get("df/mount").map(|m| &m.value)
                else {
                    return Err("no df/mount".into());
                };
                for (x, mount) in v.iter().zip(mounts) {
                    let q = format!("{metric}{{host=\"{host}\",mount=\"{mount}\"}}");
                    eq(*x, engine.value(&q), &q)?;
                    df_rows += 1;
                }
            }
            MeterValue::Scalar(Scalar::Str(s)) if name == "status" => {
                let q = format!("opticon_status{{host=\"{host}\",status=\"{s}\"}}");
                eq(1.0, engine.value(&q), &q)?;
            }
            MeterValue::Scalar(Scalar::Str(s)) if name == "os/kernel" => {
                let q = format!("opticon_host_info{{host=\"{host}\",os_kernel=\"{s}\"}}");
                eq(1.0, engine.value(&q), &q)?;
            }
            _ => continue,
        }
        checked += 1;
    }
    if df_rows == 0 {
        return Err("no df rows in the record".into());
    }
    Ok(checked)
}

/// The labels the documentation promises on a table row.
fn df_labels(engine: &Engine, host: &str) -> Vec<String> {
    let r = engine.query(&format!("opticon_df_pused{{host=\"{host}\"}}"));
    match r.first().and_then(|s| s.path("metric")) {
        Some(Node::Dict(d)) => d.iter().map(|(k, _)| k.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Agent → collector → engines: the latest record's values, as
/// `opticon-db host-show` prints them, are the engines' latest samples.
fn agent_records_arrive(kind: Kind, with_influx: bool) {
    let dir = Dir::new(&format!("export-{kind:?}"));
    let Some(rw) = Engine::start(kind, &dir, "engine", &[]) else {
        return;
    };
    let influx = if with_influx {
        let Some(e) = Engine::start(Kind::Victoria, &dir, "influx-engine", &[]) else {
            return;
        };
        Some(e)
    } else {
        None
    };
    let key = databases(&dir, &["c"]);
    let udp = free_port();
    let mut targets = format!(
        "  rw {{ type: remote_write, url: \"{}\", tenant: label }}\n",
        rw.write_url()
    );
    if let Some(e) = &influx {
        targets.push_str(&format!(
            "  influx {{ type: influx, url: \"{}/write\", tenant: label }}\n",
            e.url()
        ));
    }
    collector_conf(&dir, "c", udp, "", &format!("export {{\n{targets}}}\n"));
    let _collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "c");
    let agent = agent(&dir, &key, &[udp]);
    let mut host = String::new();
    assert!(
        wait_for(PATIENCE, || {
            host = host_ids(&dir, "c-db").pop().unwrap_or_default();
            // Rates (pcpu, net, io) come from the second sample on.
            !host.is_empty()
                && ["df_pused", "pcpu", "net_in_kbs", "io_rdops"]
                    .iter()
                    .all(|m| {
                        !rw.query(&format!("opticon_{m}{{host=\"{host}\"}}"))
                            .is_empty()
                    })
        }),
        "no series arrived: {}",
        std::fs::read_to_string(dir.path("c.log")).unwrap_or_default()
    );
    // Values move with every sample: compare once the agent is gone and
    // its last sample was exported.
    drop(agent);
    let engines: Vec<&Engine> = std::iter::once(&rw).chain(influx.as_ref()).collect();
    for e in engines {
        let mut last = Err(String::new());
        let same = wait_for(PATIENCE, || {
            last = differences(e, &host_show(&dir, "c-db", &host), &host);
            last.is_ok()
        });
        assert!(same, "{kind:?}: {last:?}");
        assert!(last.unwrap() > 10, "most meters compared");
        assert_eq!(
            df_labels(e, &host),
            ["__name__", "device", "fs", "host", "hostname", "mount", "tenant"]
        );
    }
    assert_eq!(counter(&dir, "c-db", "rw", "dropped/rejected"), 0);
    if kind == Kind::Victoria {
        dashboard_queries_answer(&rw, &host);
    }
}

/// Every query of the shipped Grafana dashboard answers with data (its
/// variables set to this host and tenant).
fn dashboard_queries_answer(engine: &Engine, host: &str) {
    fn exprs(n: &Node, out: &mut Vec<String>) {
        match n {
            Node::Dict(d) => {
                for (k, v) in d.iter() {
                    match (k, v) {
                        ("expr" | "definition", Node::Str(e)) => out.push(e.clone()),
                        _ => exprs(v, out),
                    }
                }
            }
            Node::Array(a) => a.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/grafana-opticon.json");
    let doc = conf::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&Node::Dict(doc), &mut all);
    assert!(all.len() >= 12, "{all:?}");
    for e in all {
        // label_values(selector, label): the selector must match.
        let q = match e.strip_prefix("label_values(") {
            Some(rest) => rest.rsplit_once(',').unwrap().0.to_string(),
            None => e.clone(),
        };
        let q = q.replace("$tenant", TENANT).replace("$host", host);
        assert!(
            !engine.query(&q).is_empty(),
            "dashboard query {e} ({q}) has no data"
        );
    }
}

#[test]
fn agent_samples_reach_victoria_metrics_by_remote_write_and_influx() {
    agent_records_arrive(Kind::Victoria, true);
}

#[test]
fn agent_samples_reach_prometheus() {
    agent_records_arrive(Kind::Prometheus, false);
}

/// Sample times of each host's `metric`, sorted; and the widest gap.
fn widest_gap(engine: &Engine, metric: &str) -> (usize, i64) {
    let series = engine.raw(metric, "10m");
    let mut widest = 0;
    for (_, samples) in &series {
        let mut ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        ts.sort_unstable();
        for w in ts.windows(2) {
            widest = widest.max(w[1] - w[0]);
        }
    }
    (series.len(), widest)
}

#[test]
fn an_engine_outage_loses_nothing_and_the_spool_empties() {
    let dir = Dir::new("export-outage");
    let Some(mut vm) = Engine::start(Kind::Victoria, &dir, "engine", &[]) else {
        return;
    };
    let key = databases(&dir, &["c"]);
    let udp = free_port();
    collector_conf(
        &dir,
        "c",
        udp,
        "",
        &format!(
            "export {{ vm {{ type: remote_write, url: \"{}\", retry_min: 0.2, retry_max: 1 }} }}\n",
            vm.write_url()
        ),
    );
    let mut collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "c");
    let mut load = loadgen(udp, &key, 3, 3, 30);
    assert!(wait_for(PATIENCE, || counter(&dir, "c-db", "vm", "sent") > 0));
    vm.stop();
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        counter(&dir, "c-db", "vm", "waiting") > 0,
        "samples wait in the spool"
    );
    vm.restart();
    let outage = outage.elapsed();
    assert!(load.wait().unwrap().success());
    assert!(
        wait_for(PATIENCE, || counter(&dir, "c-db", "vm", "waiting") == 0
            && counter(&dir, "c-db", "vm", "spool_bytes") == 0),
        "the spool never emptied"
    );
    assert!(counter(&dir, "c-db", "vm", "retried") > 0);
    assert_eq!(counter(&dir, "c-db", "vm", "dropped/spool_full"), 0);
    // One record a second per host; a record may carry two of the
    // load generator's samples, never a hole of the outage's length.
    let (series, gap) = widest_gap(&vm, "opticon_badness");
    assert_eq!(series, 3);
    assert!(gap <= 3000, "a gap of {gap} ms in a {outage:?} outage");
    let count = vm
        .value("sum(count_over_time(opticon_badness[10m]))")
        .unwrap_or(0.0);
    assert!(count >= 3.0 * 24.0, "{count} samples for 3 hosts over 30 s");
    // The target's counters in the API's /metrics, as the collector last
    // published them (stopped first: a running one rewrites them every
    // second, and a last sample may still be on its way).
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(collector.0.id() as i32, libc::SIGTERM) };
    let _ = collector.0.wait();
    let port = free_port();
    std::fs::write(
        dir.path("api.conf"),
        format!(
            "network {{ address 127.0.0.1 port {port} }}\ndatabase {{ path {} }}\nauth {{ admin_token \"{ADMIN_TOKEN}\" }}\n",
            dir.s("c-db")
        ),
    )
    .unwrap();
    let _api = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-api"), "api");
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("X-Opticon-Token: {ADMIN_TOKEN}")])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let sent = format!(
        "opticon_export_samples_sent_total{{target=\"vm\"}} {}\n",
        counter(&dir, "c-db", "vm", "sent")
    );
    assert!(text.contains(&sent), "{sent} not in {text}");
    for line in [
        format!(
            "opticon_export_samples_waiting{{target=\"vm\"}} {}\n",
            counter(&dir, "c-db", "vm", "waiting")
        ),
        "opticon_export_samples_dropped_total{target=\"vm\",reason=\"spool_full\"} 0\n".into(),
    ] {
        assert!(text.contains(&line), "{line} not in {text}");
    }
}

/// A full spool, a refusing engine, and the tenant placements: the id
/// from the tenant's metadata in the URL path (here VictoriaMetrics'
/// own `/prometheus/api/v1/write`), and a header target the tenant has no
/// id for.
#[test]
fn a_full_spool_drops_the_oldest_and_a_400_is_not_retried() {
    let dir = Dir::new("export-full");
    let Some(refuser) = Engine::start(Kind::Victoria, &dir, "refuser", &[]) else {
        return;
    };
    let key = databases(&dir, &["c"]);
    let set = Command::new(env!("CARGO_BIN_EXE_opticon-db"))
        .args([
            "-p",
            &dir.s("c-db"),
            "tenant-set-metadata",
            "--tenant",
            TENANT,
        ])
        .args(["vm_path", "prometheus"])
        .status()
        .unwrap();
    assert!(set.success());
    give_to_service_user(&dir.path("c-db"));
    let (udp, down) = (free_port(), free_port());
    collector_conf(
        &dir,
        "c",
        udp,
        "",
        &format!(
            "export {{\n  full {{ type: remote_write, url: \"http://127.0.0.1:{down}/api/v1/write\", spool: 65536, batch: 200, retry_min: 0.2, retry_max: 0.5 }}\n  \
               refused {{ type: remote_write, url: \"{0}/api/v1/nosuch\" }}\n  \
               path {{ type: remote_write, url: \"{0}/{{tenant}}/api/v1/write\", tenant: path, tenant_key: vm_path }}\n  \
               header {{ type: remote_write, url: \"{0}/api/v1/write\", tenant: header, header: THANOS-TENANT }}\n}}\n",
            refuser.url()
        ),
    );
    let _collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "c");
    let started = opticon::model::unix_now();
    let mut load = loadgen(udp, &key, 40, 80, 10);
    assert!(load.wait().unwrap().success());
    assert!(
        wait_for(PATIENCE, || counter(
            &dir,
            "c-db",
            "full",
            "dropped/spool_full"
        ) > 0),
        "nothing dropped from a full spool"
    );
    assert!(counter(&dir, "c-db", "full", "spool_bytes") <= 2 * 65536);
    // What is left is the newest: once the engine comes up, the oldest
    // samples are the ones missing.
    assert!(wait_for(PATIENCE, || counter(
        &dir,
        "c-db",
        "refused",
        "dropped/rejected"
    ) > 0));
    let refused = counter(&dir, "c-db", "refused", "dropped/rejected");
    assert_eq!(
        counter(&dir, "c-db", "refused", "retried"),
        0,
        "a 400 is not retried"
    );
    assert!(counter(&dir, "c-db", "refused", "requests") > 0);
    assert!(refused <= counter(&dir, "c-db", "refused", "queued"));
    wait_for_log(&dir.path("c.log"), "refused a request of");
    assert!(
        counter(&dir, "c-db", "path", "sent") > 0,
        "the path target delivered"
    );
    assert_eq!(counter(&dir, "c-db", "path", "dropped/rejected"), 0);
    assert!(counter(&dir, "c-db", "header", "dropped/no_tenant_id") > 0);
    assert_eq!(counter(&dir, "c-db", "header", "queued"), 0);
    wait_for_log(
        &dir.path("c.log"),
        &format!("export header: tenant {TENANT} has no metadata export_id"),
    );
    let log = std::fs::read_to_string(dir.path("c.log")).unwrap();
    assert_eq!(
        log.matches("has no metadata export_id").count(),
        1,
        "named once"
    );
    drop(refuser);
    let late = Engine::start_on(Kind::Victoria, &dir, "late", down, &[]);
    assert!(
        wait_for(PATIENCE, || counter(&dir, "c-db", "full", "waiting") == 0),
        "the rest of the spool never went"
    );
    let series = late.raw("opticon_badness", "10m");
    assert!(!series.is_empty(), "the newest samples arrived");
    let oldest = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|x| x.0 / 1000))
        .min()
        .unwrap();
    assert!(
        oldest > started + 1,
        "the oldest samples were dropped first"
    );
}

#[test]
fn a_collector_pair_leaves_no_gap_and_notifies_once() {
    let dir = Dir::new("export-pair");
    let Some(vm) = Engine::start(
        Kind::Victoria,
        &dir,
        "engine",
        &["-dedup.minScrapeInterval=1ms"],
    ) else {
        return;
    };
    let key = databases(&dir, &["a", "b"]);
    let (pa, pb) = (free_port(), free_port());
    for (name, port, role) in [("a", pa, "primary"), ("b", pb, "secondary")] {
        let notified = dir.s(&format!("{name}.notified"));
        collector_conf(
            &dir,
            name,
            port,
            "stale 3",
            &format!(
                "notify {{ call \"cat >> {notified}\" debounce 0 batch 0 role {role} }}\n\
                 export {{ vm {{ type: remote_write, url: \"{}\", retry_min: 0.2, retry_max: 1 }} }}\n",
                vm.write_url()
            ),
        );
    }
    let _a = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "a");
    let mut b = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "b");
    let agent = agent(&dir, &key, &[pa, pb]);
    assert!(wait_for(PATIENCE, || counter(&dir, "b-db", "vm", "sent") > 0));
    // One of the pair dies for a while; the other carries the series.
    let _ = b.0.kill();
    let _ = b.0.wait();
    std::thread::sleep(Duration::from_secs(10));
    b = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "b");
    assert!(wait_for(PATIENCE, || counter(&dir, "b-db", "vm", "sent") > 0));
    std::thread::sleep(Duration::from_secs(3));
    // The agent stops: both collectors see the host go stale.
    drop(agent);
    wait_for_log(&dir.path("b.log"), "held: secondary of a pair");
    assert!(wait_for(PATIENCE, || std::fs::read_to_string(
        dir.path("a.notified")
    )
    .is_ok_and(|t| t.contains("STALE"))));
    assert!(
        !dir.path("b.notified").exists(),
        "the secondary notified too"
    );
    let (series, gap) = widest_gap(&vm, "opticon_badness");
    assert_eq!(series, 1);
    assert!(
        gap <= 3000,
        "a gap of {gap} ms while one collector was down"
    );
    // Both exported the same agent times: the engine kept one of each.
    let raw = vm.raw("opticon_pcpu", "10m");
    let mut ts: Vec<i64> = raw[0].1.iter().map(|s| s.0).collect();
    let n = ts.len();
    ts.dedup();
    assert_eq!(ts.len(), n, "duplicates left after deduplication");
    drop(b);
}

/// Random meters of the shapes agents send: scalars, tables with string
/// columns, arrays without, strings with every kind of character.
fn random_host(rng: &mut Rng) -> HostMeters {
    let mut m = HostMeters::new();
    let text = |rng: &mut Rng| -> String {
        let alphabet = [
            "a", "Z", "9", " ", "/", "\"", "\\", ",", "=", "é", "日本", "\t", "{", "}",
        ];
        (0..rng.below(12))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect()
    };
    let num = |rng: &mut Rng| -> f64 {
        match rng.below(4) {
            0 => rng.below(1000) as f64,
            1 => -(rng.next() as f64) / 3.0,
            2 => (rng.next() % 1_000_000) as f64 / 1e3,
            _ => f64::from_bits(rng.next() >> 2),
        }
    };
    for i in 0..rng.below(20) {
        let name = MeterName::new(&format!("g{}/m{i}", rng.below(4))).unwrap();
        let rows = 1 + rng.below(5);
        let v = match rng.below(5) {
            0 => MeterValue::Scalar(Scalar::Frac(num(rng))),
            1 => MeterValue::Scalar(Scalar::Int(rng.next() as i64 >> rng.below(60))),
            2 => MeterValue::Scalar(Scalar::Str(text(rng))),
            3 => MeterValue::Array(Array::Str((0..rows).map(|_| text(rng)).collect())),
            _ => MeterValue::Array(Array::Frac((0..rows).map(|_| num(rng)).collect())),
        };
        let _ = m.set(name, v, 1);
    }
    m
}

/// A decoded series: sorted labels, the value's bits, the timestamp.
type Series = (Vec<(String, String)>, u64, i64);

#[test]
fn encoders_decode_with_independent_decoders() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import snappy, google.protobuf"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::unavailable("python3-snappy and python3-protobuf (Debian) to decode our encoders");
        return;
    }
    let dir = Dir::new("export-decode");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/export/decode.py");
    let mut rng = Rng::new(0x5eed_e4b0);
    // Snappy: random, repetitive and mixed inputs of every length class.
    let mut pairs = Vec::new();
    for i in 0..60 {
        let len =
            [0, 1, 3, 59, 60, 61, 255, 256, 65535, 65536, 65537, 200_000][i % 12] + rng.below(3);
        let raw: Vec<u8> = match i % 3 {
            0 => rng.bytes(len),
            1 => (0..len).map(|j| b"opticon_df_pused"[j % 16]).collect(),
            _ => (0..len)
                .map(|j| {
                    if j % 97 < 40 {
                        (j % 7) as u8
                    } else {
                        rng.next() as u8
                    }
                })
                .collect(),
        };
        let mut packed = Vec::new();
        snappy::compress(&raw, &mut packed);
        assert_eq!(snappy::decompress(&packed, 1 << 24).unwrap(), raw);
        let (r, p) = (dir.s(&format!("raw{i}")), dir.s(&format!("packed{i}")));
        std::fs::write(&r, &raw).unwrap();
        std::fs::write(&p, &packed).unwrap();
        pairs.push(r);
        pairs.push(p);
    }
    let out = Command::new(PYTHON)
        .arg(script)
        .arg("snappy")
        .args(&pairs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Remote write: random records through the series model and the
    // protobuf encoder; the protobuf runtime reads the same series.
    let mut expected = Vec::new();
    let mut bodies = Vec::new();
    for b in 0..20 {
        let mut batch = Batch::new(Format::RemoteWrite);
        for h in 0..5 {
            let meters = random_host(&mut rng);
            let host = format!("host-{b}-{h}");
            let labels = HostLabels {
                tenant: TENANT,
                host: &host,
                hostname: if h % 2 == 0 { "web \"1\"" } else { "" },
            };
            let ms = 1_700_000_000_000 + rng.below(1 << 30) as i64;
            let mut out = Vec::new();
            rows(&meters, &SeriesRules::default(), &mut out);
            for row in &out {
                batch.add(&labels, row, &row.fields, ms);
                for (leaf, value) in &row.fields {
                    if !value.is_finite() {
                        continue;
                    }
                    let mut l: Vec<(String, String)> = vec![
                        ("__name__".into(), metric_name(row.group, leaf)),
                        ("host".into(), host.clone()),
                        ("hostname".into(), labels.hostname.into()),
                        ("tenant".into(), TENANT.into()),
                    ];
                    l.extend(
                        row.labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string())),
                    );
                    l.retain(|(_, v)| !v.is_empty());
                    l.sort();
                    expected.push((l, value.to_bits(), ms));
                }
            }
        }
        let path = dir.s(&format!("body{b}"));
        std::fs::write(&path, batch.finish()).unwrap();
        bodies.push(path);
    }
    let out = Command::new(PYTHON)
        .arg(script)
        .arg("remote-write")
        .args(&bodies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<Series> = text
        .lines()
        .map(|line| {
            let d = conf::parse(line).unwrap();
            let pairs = |n: &Node| match n {
                Node::Array(v) => v.clone(),
                _ => panic!("{line}"),
            };
            let labels = pairs(d.get("labels").unwrap())
                .iter()
                .map(|p| {
                    let p = pairs(p);
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let samples = pairs(d.get("samples").unwrap());
            assert_eq!(samples.len(), 1, "{line}");
            let s = pairs(&samples[0]);
            (
                labels,
                s[0].as_f64().unwrap().to_bits(),
                s[1].as_int().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        assert_eq!(g.2, e.2);
        // JSON carries the double as text: equal to the last bit unless
        // the text rounds (Python prints the shortest exact repr).
        assert_eq!(f64::from_bits(g.1), f64::from_bits(e.1), "{:?}", g.0);
    }
}

/// SIGHUP takes up changed targets (a new one starts over its spool) and
/// keeps the running ones when the new file is wrong.
#[test]
fn a_reload_changes_the_targets_and_keeps_them_on_a_bad_file() {
    let dir = Dir::new("export-reload");
    let Some(vm) = Engine::start(Kind::Victoria, &dir, "engine", &[]) else {
        return;
    };
    let key = databases(&dir, &["c"]);
    let udp = free_port();
    let target = |name: &str| {
        format!(
            "export {{ {name} {{ type: remote_write, url: \"{}\" }} }}\n",
            vm.write_url()
        )
    };
    collector_conf(&dir, "c", udp, "", &target("first"));
    let collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "c");
    let hup = || {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(collector.0.id() as i32, libc::SIGHUP) };
    };
    let mut load = loadgen(udp, &key, 2, 4, 8);
    assert!(wait_for(PATIENCE, || counter(
        &dir, "c-db", "first", "sent"
    ) > 0));
    collector_conf(&dir, "c", udp, "", &target("second"));
    hup();
    wait_for_log(&dir.path("c.log"), "export second: to");
    assert!(wait_for(PATIENCE, || counter(
        &dir, "c-db", "second", "sent"
    ) > 0));
    assert_eq!(
        counter(&dir, "c-db", "first", "sent"),
        -1,
        "the old target is gone"
    );
    collector_conf(
        &dir,
        "c",
        udp,
        "",
        "export { broken { url: \"http://x/\" } }\n",
    );
    hup();
    wait_for_log(&dir.path("c.log"), "export/broken/type");
    let sent = counter(&dir, "c-db", "second", "sent");
    assert!(load.wait().unwrap().success());
    assert!(wait_for(PATIENCE, || counter(
        &dir, "c-db", "second", "sent"
    ) > sent));
}

/// Line protocol into InfluxDB 1.x itself (Debian's influxdb): the
/// measurements, tags and fields the man page describes, with the values
/// `opticon-db host-show` prints.
#[test]
fn agent_samples_reach_influxdb() {
    let dir = Dir::new("export-influxdb");
    let Some(influx) = Engine::start(Kind::Influx, &dir, "influxdb", &[]) else {
        return;
    };
    influx.influxql("", "CREATE DATABASE opticon");
    let key = databases(&dir, &["c"]);
    let udp = free_port();
    collector_conf(
        &dir,
        "c",
        udp,
        "",
        &format!(
            "export {{ influx {{ type: influx, url: \"{}/write?db=opticon\" }} }}\n",
            influx.url()
        ),
    );
    let _collector = start_daemon(&dir, env!("CARGO_BIN_EXE_opticon-collector"), "c");
    let agent = agent(&dir, &key, &[udp]);
    let mut host = String::new();
    assert!(
        wait_for(PATIENCE, || {
            host = host_ids(&dir, "c-db").pop().unwrap_or_default();
            !host.is_empty()
                && influx
                    .influxql(
                        "opticon",
                        &format!("SELECT last(pcpu) FROM opticon WHERE host = '{host}'"),
                    )
                    .is_some()
        }),
        "nothing arrived: {}",
        std::fs::read_to_string(dir.path("c.log")).unwrap_or_default()
    );
    drop(agent);
    let value = |q: &str| influx.influxql("opticon", q).and_then(|n| n.as_f64());
    let mut last = String::new();
    let same = wait_for(PATIENCE, || {
        let record = host_show(&dir, "c-db", &host);
        let scalar = |name: &str| match record.get(name).map(|m| &m.value) {
            Some(MeterValue::Scalar(Scalar::Frac(v))) => Some(*v),
            Some(MeterValue::Scalar(Scalar::Int(v))) => Some(*v as f64),
            _ => None,
        };
        let mount_pused = match (
            record.get("df/mount").map(|m| &m.value),
            record.get("df/pused").map(|m| &m.value),
        ) {
            (Some(MeterValue::Array(Array::Str(m))), Some(MeterValue::Array(Array::Frac(p)))) => {
                m.first().cloned().zip(p.first().copied())
            }
            _ => None,
        };
        let checks = [
            (
                scalar("pcpu"),
                value(&format!("SELECT last(pcpu) FROM opticon WHERE host = '{host}'")),
            ),
            (
                scalar("mem/total"),
                value(&format!("SELECT last(total) FROM opticon_mem WHERE host = '{host}'")),
            ),
            (
                scalar("badness"),
                value(&format!("SELECT last(badness) FROM opticon WHERE host = '{host}'")),
            ),
            (
                mount_pused.as_ref().map(|(_, p)| *p),
                mount_pused.as_ref().and_then(|(m, _)| {
                    value(&format!(
                        "SELECT last(pused) FROM opticon_df WHERE host = '{host}' AND mount = '{m}'"
                    ))
                }),
            ),
            (
                Some(1.0),
                value(&format!(
                    "SELECT last(\"status\"::field) FROM opticon WHERE host = '{host}' AND \"status\"::tag = 'OK'"
                )),
            ),
        ];
        last = format!("{checks:?}");
        checks
            .iter()
            .all(|(want, got)| want.is_some() && want == got)
    });
    assert!(same, "record vs InfluxDB: {last}");
    assert_eq!(counter(&dir, "c-db", "influx", "dropped/rejected"), 0);
}
