//! Real time-series engines from Debian for the export tests:
//! VictoriaMetrics single-node and Prometheus with its remote-write
//! receiver, each on a loopback port with a data directory of its own,
//! stopped (and restarted, over the same data) at will.

use crate::common::{self, free_port, wait_for, Dir, PATIENCE};
use opticon::conf::{self, Node};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Victoria,
    Prometheus,
    /// InfluxDB 1.x (line protocol only).
    Influx,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Kind::Victoria => "victoria-metrics",
            Kind::Prometheus => "prometheus",
            Kind::Influx => "influxd",
        }
    }
}

/// A running (or stopped) engine; killed when dropped.
pub struct Engine {
    pub kind: Kind,
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

fn installed(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Percent-encoding for a query string value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Engine {
    /// Start `kind` with its data under `dir/<name>`; `None` (and a note,
    /// or a failure in CI) when it is not installed.
    pub fn start(kind: Kind, dir: &Dir, name: &str, extra: &[&str]) -> Option<Engine> {
        if !installed(kind.binary()) {
            common::unavailable(&format!(
                "{} (Debian package) is not installed",
                kind.binary()
            ));
            return None;
        }
        Some(Engine::start_on(kind, dir, name, free_port(), extra))
    }

    /// Start `kind` on `port` (it must be installed).
    pub fn start_on(kind: Kind, dir: &Dir, name: &str, port: u16, extra: &[&str]) -> Engine {
        let mut e = Engine {
            kind,
            port,
            data: dir.path(name),
            log: dir.path(&format!("{name}.log")),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let data = self.data.display().to_string();
        let mut cmd = Command::new(self.kind.binary());
        match self.kind {
            Kind::Victoria => {
                cmd.args([
                    format!("-httpListenAddr={listen}"),
                    format!("-storageDataPath={data}"),
                    "-retentionPeriod=100y".into(),
                    // Answer queries with what just arrived.
                    "-search.latencyOffset=0s".into(),
                    "-search.disableCache".into(),
                ]);
            }
            Kind::Prometheus => {
                std::fs::create_dir_all(&self.data).unwrap();
                let conf = self.data.join("prometheus.yml");
                std::fs::write(&conf, "global:\n  scrape_interval: 15s\n").unwrap();
                cmd.args([
                    format!("--config.file={}", conf.display()),
                    format!("--storage.tsdb.path={data}/tsdb"),
                    format!("--web.listen-address={listen}"),
                    "--web.enable-remote-write-receiver".into(),
                ]);
            }
            Kind::Influx => {
                std::fs::create_dir_all(&self.data).unwrap();
                let conf = self.data.join("influxdb.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n\
                         [meta]\n  dir = \"{data}/meta\"\n\
                         [data]\n  dir = \"{data}/data\"\n  wal-dir = \"{data}/wal\"\n\
                         [http]\n  bind-address = \"{listen}\"\n",
                        free_port()
                    ),
                )
                .unwrap();
                cmd.args(["-config".to_string(), conf.display().to_string()]);
            }
        }
        cmd.args(&self.extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let (ready, ok) = match self.kind {
            Kind::Victoria => ("/health", 200),
            Kind::Prometheus => ("/-/ready", 200),
            Kind::Influx => ("/ping", 204),
        };
        assert!(
            wait_for(PATIENCE, || self.get(ready).is_some_and(|(s, _)| s == ok)),
            "{} never became ready: {}",
            self.kind.binary(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stop the engine (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) on our child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Start it again over the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// InfluxQL against InfluxDB (`q` is sent as a POST form field, as
    /// its CLI does): the first value of the first series, if any.
    pub fn influxql(&self, db: &str, q: &str) -> Option<Node> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "20", "-XPOST"])
            .arg(format!("{}/query?db={db}", self.url()))
            .args(["--data-urlencode", &format!("q={q}")])
            .output()
            .ok()?;
        let doc = conf::parse(&String::from_utf8_lossy(&out.stdout)).ok()?;
        match doc.path("results") {
            Some(Node::Array(r)) => match r.first()?.path("series") {
                Some(Node::Array(s)) => match s.first()?.path("values") {
                    Some(Node::Array(v)) => match v.first()? {
                        Node::Array(row) => row.get(1).cloned(),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// The remote-write URL.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET with curl (engines answer large queries chunked).
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.url()))
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }

    /// Make what arrived searchable (VictoriaMetrics buffers a second).
    pub fn flush(&self) {
        if self.kind == Kind::Victoria {
            let _ = self.get("/internal/force_flush");
        }
    }

    /// The `data/result` of an instant query (empty on any failure).
    pub fn query(&self, promql: &str) -> Vec<Node> {
        self.flush();
        let Some((200, body)) = self.get(&format!("/api/v1/query?query={}", encode(promql))) else {
            return Vec::new();
        };
        match conf::parse(&body)
            .ok()
            .and_then(|d| d.path("data/result").cloned())
        {
            Some(Node::Array(r)) => r,
            _ => Vec::new(),
        }
    }

    /// The one value of an instant query with a single result.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        if r.len() != 1 {
            return None;
        }
        match r[0].path("value") {
            Some(Node::Array(v)) => v.get(1)?.as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Raw samples of each series `selector` matches over the last
    /// `window` (a range vector), as (labels, [(unix ms, value)]).
    pub fn raw(&self, selector: &str, window: &str) -> Vec<(Node, Vec<(i64, f64)>)> {
        self.query(&format!("{selector}[{window}]"))
            .into_iter()
            .map(|series| {
                let labels = series.path("metric").cloned().unwrap_or(Node::Null);
                let samples = match series.path("values") {
                    Some(Node::Array(vs)) => vs
                        .iter()
                        .filter_map(|v| match v {
                            Node::Array(p) if p.len() == 2 => Some((
                                (p[0].as_f64()? * 1000.0).round() as i64,
                                p[1].as_str()?.parse().ok()?,
                            )),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (labels, samples)
            })
            .collect()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
