//! The agent's configuration file (`opticon-agent.conf`, see
//! `opticon-agent(8)` and `opticon.conf(5)`).
//!
//! ```text
//! collector { address 192.0.2.10  port 1047  tenant <uuid>  key <base64> }
//! probes { raid { type exec  call /var/lib/opticon/probes/raid.probe  frequency low } }
//! ```

use super::builtin::{self, Kind};
use crate::conf::schema::{Schema, Shape};
use crate::conf::{self, Dict, Node, ValueError};
use crate::model::TenantKey;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// Default collector port (the original's).
pub const DEFAULT_PORT: u16 = 1047;
/// Interval of `frequency: high` probes and of the fast lane.
pub const HIGH: u64 = 60;
/// Interval of `frequency: low` probes, of the slow lane and of auth rounds.
pub const LOW: u64 = 300;

/// The keys of one collector (`collector { }` or each of a list).
const COLLECTOR: Shape = Shape::Keys(&[
    ("address", Shape::Value),
    ("port", Shape::Value),
    ("tenant", Shape::Value),
    ("key", Shape::Value),
    ("host", Shape::Value),
    ("bind", Shape::Value),
]);

/// Every key of `opticon-agent.conf` (documented in opticon-agent(8));
/// anything else is an error.
pub static SCHEMA: Schema = Schema {
    keys: Shape::Keys(&[
        ("collector", COLLECTOR),
        (
            "probes",
            Shape::Named(&Shape::Keys(&[
                ("type", Shape::Value),
                ("call", Shape::Value),
                ("interval", Shape::Value),
                ("frequency", Shape::Value),
                ("check", Shape::Value),
                ("platform", Shape::Value),
                ("timeout", Shape::Value),
                // Free: strings become OPT_<KEY> variables.
                ("options", Shape::Value),
            ])),
        ),
        (
            "interval",
            Shape::Keys(&[
                ("fast", Shape::Value),
                ("slow", Shape::Value),
                ("key_rotation", Shape::Value),
                ("auth_resend", Shape::Value),
                ("auth_resend_chance", Shape::Value),
            ]),
        ),
        ("network", Shape::Keys(&[("max_datagram", Shape::Value)])),
        ("config", Shape::Value),
        ("metadata", Shape::Keys(&[("url", Shape::Value)])),
    ]),
    // The original's Windows self-update.
    ignored: &["update"],
};

/// A configuration the agent cannot run with.
#[derive(Debug)]
pub enum ConfigError {
    /// The file cannot be read or parsed.
    File(conf::FileError),
    /// A key has a value the agent cannot use (path of the key, why).
    Invalid(String, String),
    /// As `Invalid`, placed in its file (`file:line:column: key: why`).
    Located(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::File(e) => e.fmt(f),
            ConfigError::Invalid(key, why) => write!(f, "{key}: {why}"),
            ConfigError::Located(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(key: impl Into<String>, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(key.into(), why.into())
}

/// One collector to send to.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorSpec {
    /// Host name or address; re-resolved at every auth round.
    pub address: String,
    /// UDP port.
    pub port: u16,
    /// Tenant the host belongs to.
    pub tenant: Uuid,
    /// The tenant's key.
    pub key: TenantKey,
    /// Host id override for this collector.
    pub host: Option<Uuid>,
    /// Local source address; also reported as `agent/ip`.
    pub bind: Option<String>,
}

/// What a probe runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeKind {
    /// A built-in probe.
    Builtin(Kind),
    /// A command printing JSON.
    Exec(String),
    /// A Nagios plugin judged by its exit status.
    Nagios(String),
}

/// One configured probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// Its id (the key under `probes`).
    pub id: String,
    /// What it runs.
    pub kind: ProbeKind,
    /// Seconds between runs.
    pub interval: u64,
    /// String options: `OPT_<KEY>` variables for commands.
    pub options: Vec<(String, String)>,
    /// `match` glob list of built-ins.
    pub matches: Vec<String>,
    /// `skip` glob list of built-ins.
    pub skip: Vec<String>,
    /// Command run once at load time; the probe is disabled when it fails.
    pub check: Option<String>,
    /// Deadline of a command.
    pub timeout: Duration,
}

/// Everything the agent was told.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Collectors to send to.
    pub collectors: Vec<CollectorSpec>,
    /// Probes, defaults included.
    pub probes: Vec<ProbeSpec>,
    /// Seconds between fast-lane sends (probes with interval <= this).
    pub fast_interval: u64,
    /// Seconds between slow-lane sends and auth rounds.
    pub slow_interval: u64,
    /// Seconds between session key rotations.
    pub key_rotation: u64,
    /// Upper bound of the random auth resend delay (from a quarter of it).
    pub auth_resend: u64,
    /// Percent chance that an auth datagram is sent a second time.
    pub auth_resend_chance: u64,
    /// Largest datagram sent.
    pub max_datagram: usize,
    /// `config: cloud-init`: collectors come from the metadata service.
    pub cloud_init: Option<String>,
    /// The warning naming the original Opticon's keys the file holds
    /// that are ignored (logged at start and reload).
    pub warning: Option<String>,
}

fn strings(node: Option<&Node>, key: &str) -> Result<Vec<String>, ConfigError> {
    match node {
        None => Ok(Vec::new()),
        Some(Node::Str(s)) => Ok(vec![s.clone()]),
        Some(Node::Array(items)) => items
            .iter()
            .map(|i| match i {
                Node::Str(s) => Ok(s.clone()),
                other => Err(invalid(
                    key,
                    format!("expected strings, found a {}", other.type_name()),
                )),
            })
            .collect(),
        Some(other) => Err(invalid(
            key,
            format!("expected a list of globs, found a {}", other.type_name()),
        )),
    }
}

fn seconds(node: Option<&Node>, key: &str, default: u64) -> Result<u64, ConfigError> {
    match node {
        None => Ok(default),
        Some(Node::Int(n)) if *n > 0 => Ok(*n as u64),
        Some(other) => Err(invalid(
            key,
            format!(
                "expected a positive number of seconds, found {}",
                other.to_json(false)
            ),
        )),
    }
}

fn word(node: Option<&Node>) -> Option<String> {
    match node? {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        Node::Frac(f) => Some(f.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A collector from its config dict (`key` names it in errors).
pub fn collector(node: &Node, key: &str) -> Result<CollectorSpec, ConfigError> {
    let Node::Dict(d) = node else {
        return Err(invalid(
            key,
            "expected a dict with address, port, tenant and key",
        ));
    };
    let need = |k: &str| word(d.get(k)).ok_or_else(|| invalid(format!("{key}/{k}"), "missing"));
    let port = match d.get("port") {
        None => DEFAULT_PORT,
        Some(Node::Int(p)) if (1..=65535).contains(p) => *p as u16,
        Some(other) => {
            return Err(invalid(
                format!("{key}/port"),
                format!("{} is not a port", other.to_json(false)),
            ))
        }
    };
    let tenant_text = need("tenant")?;
    let tenant = Uuid::parse_str(&tenant_text).map_err(|_| {
        invalid(
            format!("{key}/tenant"),
            format!("{tenant_text:?} is not a UUID"),
        )
    })?;
    let key_b64 = need("key")?;
    let tenant_key = TenantKey::from_base64(&key_b64)
        .map_err(|e| invalid(format!("{key}/key"), e.to_string()))?;
    let host = match word(d.get("host")) {
        Some(h) => Some(
            Uuid::parse_str(&h)
                .map_err(|_| invalid(format!("{key}/host"), format!("{h:?} is not a UUID")))?,
        ),
        None => None,
    };
    Ok(CollectorSpec {
        address: need("address")?,
        port,
        tenant,
        key: tenant_key,
        host,
        bind: word(d.get("bind")),
    })
}

fn probe(id: &str, d: &Dict, fast: u64, slow: u64) -> Result<ProbeSpec, ConfigError> {
    let key = format!("probes/{id}");
    let typ = word(d.get("type")).unwrap_or_else(|| "built-in".into());
    let call = word(d.get("call")).ok_or_else(|| invalid(format!("{key}/call"), "missing"))?;
    let kind = match typ.as_str() {
        "built-in" => ProbeKind::Builtin(builtin::by_call(&call).ok_or_else(|| {
            invalid(format!("{key}/call"), format!("no built-in probe {call:?}"))
        })?),
        "exec" => ProbeKind::Exec(call),
        "nagios" => ProbeKind::Nagios(call),
        other => {
            return Err(invalid(
                format!("{key}/type"),
                format!("{other:?} is not built-in, exec or nagios"),
            ))
        }
    };
    let interval = match (d.get("interval"), word(d.get("frequency")).as_deref()) {
        (Some(n), _) => seconds(Some(n), &format!("{key}/interval"), HIGH)?,
        (None, Some("high")) => fast,
        (None, Some("low")) => slow,
        (None, Some(other)) => {
            return Err(invalid(
                format!("{key}/frequency"),
                format!("{other:?} is not high or low"),
            ))
        }
        (None, None) => return Err(invalid(key, "needs an interval or a frequency")),
    };
    let mut options = Vec::new();
    if let Some(Node::Dict(o)) = d.get("options") {
        for (k, v) in o.iter() {
            if let Some(s) = word(Some(v)) {
                options.push((k.to_string(), s));
            }
        }
    }
    let opts = d.get("options");
    Ok(ProbeSpec {
        id: id.to_string(),
        kind,
        interval,
        options,
        matches: strings(
            opts.and_then(|o| o.path("match")),
            &format!("{key}/options/match"),
        )?,
        skip: strings(
            opts.and_then(|o| o.path("skip")),
            &format!("{key}/options/skip"),
        )?,
        check: word(d.get("check")),
        timeout: Duration::from_secs(seconds(d.get("timeout"), &format!("{key}/timeout"), 30)?),
    })
}

/// The compiled-in probe table (the original's `defprobes.rsrc`, Linux).
pub fn default_probes() -> Dict {
    let mut probes = Dict::new();
    for (id, call, _, interval) in builtin::BUILTINS {
        let mut d = Dict::new();
        d.insert("type", Node::Str("built-in".into()));
        d.insert("call", Node::Str(call.into()));
        d.insert(
            "frequency",
            Node::Str(if interval <= HIGH { "high" } else { "low" }.into()),
        );
        if id == "net" {
            let mut o = Dict::new();
            o.insert("skip", Node::Array(vec![Node::Str("lo".into())]));
            d.insert("options", Node::Dict(o));
        }
        probes.insert(id, Node::Dict(d));
    }
    probes
}

fn platform_matches(d: &Dict) -> bool {
    match d.get("platform").and_then(Node::as_str) {
        None | Some("linux") | Some("unix") | Some("all") => true,
        Some(_) => false,
    }
}

impl AgentConfig {
    /// Build from a parsed document: defaults, then the file's probes
    /// merged over them (a default probe named in the file keeps its other
    /// keys).
    pub fn from_dict(doc: &Dict) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(doc, true)
    }

    /// Build for running probes only (`--once`): no collector needed.
    pub fn for_probing(doc: &Dict) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(doc, false)
    }

    fn parse(doc: &Dict, need_collector: bool) -> Result<AgentConfig, ConfigError> {
        let fast = seconds(doc.path("interval/fast"), "interval/fast", HIGH)?;
        let slow = seconds(doc.path("interval/slow"), "interval/slow", LOW)?;
        let mut probes = default_probes();
        if let Some(p) = doc.get("probes") {
            let Node::Dict(given) = p else {
                return Err(invalid("probes", "expected a dict of probes"));
            };
            probes.merge(given.clone());
        }
        let mut specs = Vec::new();
        for (id, node) in probes.iter() {
            let Node::Dict(d) = node else {
                return Err(invalid(format!("probes/{id}"), "expected a dict"));
            };
            if platform_matches(d) {
                specs.push(probe(id, d, fast, slow)?);
            }
        }
        let cloud_init = match doc.get("config").and_then(Node::as_str) {
            Some("cloud-init") => Some(
                doc.path("metadata/url")
                    .and_then(Node::as_str)
                    .unwrap_or("http://169.254.169.254/openstack/latest/meta_data.json")
                    .to_string(),
            ),
            Some(other) => return Err(invalid("config", format!("{other:?} is not cloud-init"))),
            None => None,
        };
        let collectors = match doc.get("collector") {
            None => Vec::new(),
            Some(n @ Node::Dict(_)) => vec![collector(n, "collector")?],
            Some(Node::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, n)| collector(n, &format!("collector[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(invalid(
                    "collector",
                    format!("expected a dict or a list, found a {}", other.type_name()),
                ))
            }
        };
        if need_collector && collectors.is_empty() && cloud_init.is_none() {
            return Err(invalid(
                "collector",
                "no collector configured (nor config: cloud-init)",
            ));
        }
        let max_datagram = match doc.path("network/max_datagram") {
            None => crate::wire::DEFAULT_MAX_DATAGRAM,
            Some(&Node::Int(n))
                if (crate::wire::MIN_DATAGRAM as i64..=crate::wire::MAX_DATAGRAM as i64)
                    .contains(&n) =>
            {
                n as usize
            }
            Some(other) => {
                return Err(invalid(
                    "network/max_datagram",
                    format!(
                        "{} is outside {}..={}",
                        other.to_json(false),
                        crate::wire::MIN_DATAGRAM,
                        crate::wire::MAX_DATAGRAM
                    ),
                ))
            }
        };
        Ok(AgentConfig {
            collectors,
            probes: specs,
            fast_interval: fast,
            slow_interval: slow,
            key_rotation: seconds(
                doc.path("interval/key_rotation"),
                "interval/key_rotation",
                1800,
            )?,
            auth_resend: seconds(doc.path("interval/auth_resend"), "interval/auth_resend", 20)?,
            auth_resend_chance: match doc.path("interval/auth_resend_chance") {
                None => 50,
                Some(&Node::Int(p)) if (0..=100).contains(&p) => p as u64,
                Some(other) => {
                    return Err(invalid(
                        "interval/auth_resend_chance",
                        format!("{} is not a percentage", other.to_json(false)),
                    ))
                }
            },
            max_datagram,
            cloud_init,
            warning: None,
        })
    }

    /// Read and check a config file (strictly: an unknown key is an
    /// error).
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        AgentConfig::load_as(path, AgentConfig::from_dict)
    }

    /// Read and check a config file for `--once` (no collector needed); a
    /// missing file is no error unless `explicit`.
    pub fn load_for_probing(path: &Path, explicit: bool) -> Result<AgentConfig, ConfigError> {
        match std::fs::metadata(path) {
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                AgentConfig::for_probing(&Dict::new())
            }
            _ => AgentConfig::load_as(path, AgentConfig::for_probing),
        }
    }

    fn load_as(
        path: &Path,
        read: fn(&Dict) -> Result<AgentConfig, ConfigError>,
    ) -> Result<AgentConfig, ConfigError> {
        let checked = conf::schema::load_checked(path, &SCHEMA).map_err(ConfigError::File)?;
        let mut cfg = read(&checked.doc).map_err(|e| match e {
            ConfigError::Invalid(key, why) => {
                ConfigError::Located(checked.locate(&ValueError::new(key, why)))
            }
            other => other,
        })?;
        cfg.warning = checked.warning();
        Ok(cfg)
    }
}

/// Where the host id comes from, in order: the config's `host`, the DMI
/// product UUID, a UUID derived from `/etc/machine-id`.
pub fn host_id(root: &Path, configured: Option<Uuid>) -> Option<Uuid> {
    if configured.is_some() {
        return configured;
    }
    let read = |rel: &str| {
        std::fs::read_to_string(root.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
    };
    if let Some(id) = read("sys/class/dmi/id/product_uuid").and_then(|s| Uuid::parse_str(&s).ok()) {
        if !id.is_nil() && id != Uuid::max() {
            return Some(id);
        }
    }
    let machine = read("etc/machine-id")
        .filter(|m| m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit()))?;
    // machine-id is a secret-ish 128-bit value (see machine-id(5)): hash it
    // with a label instead of using it directly, as systemd recommends.
    let digest = crate::crypto::hmac_sha256(machine.as_bytes(), &[b"opticon host id"]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Some(uuid::Builder::from_random_bytes(bytes).into_uuid())
}
