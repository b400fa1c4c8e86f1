//! Meter definitions and their watchers: the defaults, tenant overrides and
//! host adjustments.
//!
//! Definitions are stored in config syntax under a `meter` key, in the
//! original's `opticon-meter.conf` shape:
//!
//! ```text
//! meter {
//!     pcpu { type frac  unit "%"  description "CPU Usage"
//!            warning { cmp gt  val 90.0  weight 1.0 } }
//! }
//! ```

use super::DbError;
use crate::conf::schema::{Schema, Shape};
use crate::conf::{Dict, Node};
use crate::model::{Cmp, Level, MeterName, Scalar, Watcher};

/// The type names users give meters.
pub const METER_TYPES: [&str; 4] = ["integer", "frac", "string", "table"];

/// Where a definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled in (the original's defaults).
    Default,
    /// The tenant's own definitions.
    Tenant,
    /// One host's adjustments.
    Host,
}

impl Origin {
    /// The word shown in the "From" column.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Tenant => "tenant",
            Origin::Host => "host",
        }
    }
}

/// One meter definition with its watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterDef {
    /// Meter name.
    pub id: String,
    /// `integer`, `frac`, `string` or `table`.
    pub kind: String,
    /// Unit shown to users.
    pub unit: String,
    /// What the meter measures.
    pub description: String,
    /// Alert conditions, at most one per level.
    pub watchers: Vec<Watcher>,
    /// Where it was defined: the last layer that set its type, unit or
    /// description, or that added it.
    pub origin: Origin,
    /// Where each watcher level was last set, when not by the defaults
    /// (an `alert` set by the tenant is the tenant's; the other levels
    /// stay the defaults').
    pub watcher_origins: Vec<(Level, Origin)>,
}

impl MeterDef {
    /// The weight of this meter's watcher at `level`, else 1: what a
    /// watcher set without a weight keeps.
    pub fn weight_at(&self, level: Level) -> f64 {
        self.watchers
            .iter()
            .find(|x| x.level == level)
            .map_or(1.0, |x| x.weight)
    }

    /// Where the watcher of `level` was last set.
    pub fn watcher_origin(&self, level: Level) -> Origin {
        self.watcher_origins
            .iter()
            .rev()
            .find(|(l, _)| *l == level)
            .map_or(Origin::Default, |(_, o)| *o)
    }
}

/// A default watcher: comparison, value, weight.
type W = (Cmp, f64, f64);
/// A default meter: id, type, unit, description, warning, alert, critical.
type DefaultMeter = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<W>,
    Option<W>,
    Option<W>,
);

/// The original's default meters and watchers (`defmeters.rsrc`).
const DEFAULTS: &[DefaultMeter] = &[
    (
        "agent/ip",
        "string",
        "",
        "Local IP Address",
        None,
        None,
        None,
    ),
    ("agent/v", "string", "", "Agent Version", None, None, None),
    ("agent/up", "integer", "s", "Agent Uptime", None, None, None),
    (
        "link/rtt",
        "frac",
        "ms",
        "RTT",
        Some((Cmp::Gt, 20.0, 1.0)),
        Some((Cmp::Gt, 100.0, 1.0)),
        Some((Cmp::Gt, 300.0, 1.0)),
    ),
    (
        "link/loss",
        "frac",
        "%",
        "Packet loss",
        Some((Cmp::Gt, 5.0, 1.0)),
        Some((Cmp::Gt, 15.0, 1.0)),
        Some((Cmp::Gt, 20.0, 1.0)),
    ),
    (
        "link/ip",
        "string",
        "",
        "Remote IP Address",
        None,
        None,
        None,
    ),
    ("os/kernel", "string", "", "OS", None, None, None),
    (
        "os/arch",
        "string",
        "",
        "CPU Architecture",
        None,
        None,
        None,
    ),
    ("os/distro", "string", "", "Distribution", None, None, None),
    ("os/hw", "string", "", "Hardware Platform", None, None, None),
    ("df", "table", "", "Storage", None, None, None),
    ("df/device", "string", "", "Device", None, None, None),
    ("df/size", "integer", "MB", "Size", None, None, None),
    (
        "df/pused",
        "frac",
        "%",
        "In Use",
        Some((Cmp::Gt, 90.0, 1.0)),
        Some((Cmp::Gt, 95.0, 1.0)),
        Some((Cmp::Gt, 99.0, 1.0)),
    ),
    ("uptime", "integer", "s", "Uptime", None, None, None),
    ("top", "table", "", "Process List", None, None, None),
    ("top/pid", "integer", "", "PID", None, None, None),
    ("top/name", "string", "", "Name", None, None, None),
    ("top/pcpu", "frac", "%", "CPU Usage", None, None, None),
    ("top/pmem", "frac", "%", "RAM Usage", None, None, None),
    (
        "pcpu",
        "frac",
        "%",
        "CPU Usage",
        Some((Cmp::Gt, 90.0, 1.0)),
        None,
        None,
    ),
    (
        "loadavg",
        "frac",
        "",
        "Load Average",
        Some((Cmp::Gt, 8.0, 1.0)),
        Some((Cmp::Gt, 20.0, 1.0)),
        Some((Cmp::Gt, 50.0, 1.0)),
    ),
    (
        "proc/total",
        "integer",
        "",
        "Total processes",
        None,
        None,
        None,
    ),
    (
        "proc/run",
        "integer",
        "",
        "Running processes",
        None,
        None,
        None,
    ),
    (
        "proc/stuck",
        "integer",
        "",
        "Stuck processes",
        Some((Cmp::Gt, 15.0, 0.5)),
        Some((Cmp::Gt, 25.0, 1.0)),
        Some((Cmp::Gt, 50.0, 1.0)),
    ),
    (
        "net/in_kbs",
        "integer",
        "Kb/s",
        "Network data in",
        Some((Cmp::Gt, 40000.0, 0.5)),
        None,
        None,
    ),
    (
        "net/in_pps",
        "integer",
        "pps",
        "Network packets in",
        Some((Cmp::Gt, 10000.0, 1.0)),
        Some((Cmp::Gt, 50000.0, 1.0)),
        Some((Cmp::Gt, 100000.0, 1.0)),
    ),
    (
        "net/out_kbs",
        "integer",
        "Kb/s",
        "Network data out",
        None,
        None,
        None,
    ),
    (
        "net/out_pps",
        "integer",
        "pps",
        "Network packets out",
        Some((Cmp::Gt, 10000.0, 1.0)),
        Some((Cmp::Gt, 50000.0, 1.0)),
        Some((Cmp::Gt, 100000.0, 1.0)),
    ),
    (
        "io/rdops",
        "integer",
        "iops",
        "Disk I/O (read)",
        None,
        None,
        None,
    ),
    (
        "io/wrops",
        "integer",
        "iops",
        "Disk I/O (write)",
        None,
        None,
        None,
    ),
    ("io/pwait", "frac", "%", "I/O Wait", None, None, None),
    ("mem/total", "integer", "KB", "Total RAM", None, None, None),
    (
        "mem/free",
        "integer",
        "KB",
        "Free RAM",
        Some((Cmp::Lt, 65536.0, 0.5)),
        Some((Cmp::Lt, 32768.0, 1.0)),
        Some((Cmp::Lt, 4096.0, 1.0)),
    ),
    ("mem/swap", "integer", "KB", "Free Swap", None, None, None),
    (
        "chkwarn",
        "string",
        "",
        "Selfcheck warnings",
        Some((Cmp::Count, 1.0, 0.5)),
        None,
        None,
    ),
    (
        "chkalert",
        "string",
        "",
        "Selfcheck alerts",
        None,
        Some((Cmp::Count, 1.0, 1.0)),
        None,
    ),
    ("who", "table", "", "Remote Users", None, None, None),
    ("who/user", "string", "", "User", None, None, None),
    ("who/tty", "string", "", "TTY", None, None, None),
    ("who/remote", "string", "", "Remote Host", None, None, None),
    // The original's optional probes (reference 6.4).
    ("http", "table", "", "Web Sites", None, None, None),
    ("http/site", "string", "", "Site", None, None, None),
    ("http/count", "integer", "", "Requests", None, None, None),
    ("fan", "table", "", "System Fans", None, None, None),
    ("fan/id", "string", "", "Fan", None, None, None),
    ("fan/u", "string", "", "Unit", None, None, None),
    ("fan/v", "integer", "%", "Speed", None, None, None),
    ("temp", "table", "", "System Temperature", None, None, None),
    ("temp/id", "string", "", "Sensor", None, None, None),
    ("temp/u", "string", "", "Unit", None, None, None),
    ("temp/v", "integer", "C", "Temperature", None, None, None),
    ("cnt", "table", "", "Containers", None, None, None),
    ("cnt/name", "string", "", "Name", None, None, None),
    ("cnt/image", "string", "", "Image", None, None, None),
    ("cnt/size", "integer", "MB", "Size", None, None, None),
    ("port", "table", "", "Network Ports", None, None, None),
    ("port/if", "string", "", "Interface", None, None, None),
    ("port/in", "integer", "Kb/s", "In", None, None, None),
    ("port/out", "integer", "Kb/s", "Out", None, None, None),
    ("port/st", "string", "", "State", None, None, None),
    ("vm", "table", "", "Virtual Machines", None, None, None),
    ("vm/name", "string", "", "Name", None, None, None),
    ("vm/cores", "string", "", "Cores", None, None, None),
    ("vm/ram", "string", "MB", "RAM", None, None, None),
    ("vm/cpu", "frac", "%", "CPU", None, None, None),
    ("bgp", "table", "", "BGP Peers", None, None, None),
    ("bgp/peer", "string", "", "Peer", None, None, None),
    ("bgp/as", "string", "", "AS", None, None, None),
    ("bgp/sent", "integer", "", "Sent", None, None, None),
    ("bgp/recv", "integer", "", "Received", None, None, None),
    ("bgp/up", "string", "", "Up", None, None, None),
    (
        "phdns/sz",
        "integer",
        "",
        "Pi-hole blocklist size",
        None,
        None,
        None,
    ),
    (
        "phdns/qnow",
        "integer",
        "",
        "Pi-hole queries today",
        None,
        None,
        None,
    ),
    (
        "phdns/bnow",
        "integer",
        "",
        "Pi-hole blocked today",
        None,
        None,
        None,
    ),
    (
        "phdns/pblk",
        "frac",
        "%",
        "Pi-hole blocked",
        None,
        None,
        None,
    ),
    ("mysql/conf", "string", "", "MySQL role", None, None, None),
    (
        "mysql/qps",
        "frac",
        "q/s",
        "MySQL queries",
        None,
        None,
        None,
    ),
    (
        "mysql/cps",
        "frac",
        "c/s",
        "MySQL connections",
        None,
        None,
        None,
    ),
    (
        "mysql/erps",
        "frac",
        "e/s",
        "MySQL errors",
        Some((Cmp::Gt, 0.0, 1.0)),
        None,
        None,
    ),
    ("lb", "table", "", "Load-balancer", None, None, None),
    ("lb/if", "string", "", "Interface", None, None, None),
    ("lb/desc", "string", "", "Description", None, None, None),
    ("lb/st", "string", "", "State", None, None, None),
    ("lb/gw", "string", "", "Gateway", None, None, None),
    (
        "mssql/uc",
        "integer",
        "",
        "MS SQL user connections",
        None,
        None,
        None,
    ),
    (
        "mssql/bps",
        "integer",
        "",
        "MS SQL batches/s",
        None,
        None,
        None,
    ),
    (
        "mssql/erps",
        "integer",
        "e/s",
        "MS SQL errors",
        Some((Cmp::Gt, 0.0, 1.0)),
        None,
        None,
    ),
    ("cntr", "table", "", "Container Instances", None, None, None),
    ("cntr/name", "string", "", "Name", None, None, None),
    ("cntr/image", "string", "", "Image", None, None, None),
    ("cntr/size", "integer", "MB", "Size", None, None, None),
    ("health", "table", "", "System Health", None, None, None),
    ("health/id", "string", "", "Component", None, None, None),
    ("health/s", "string", "", "State", None, None, None),
    ("hostname", "string", "", "Hostname", None, None, None),
    ("status", "string", "", "Status", None, None, None),
    ("badness", "frac", "", "Badness", None, None, None),
];

fn typed_value(kind: &str, cmp: Cmp, v: f64) -> Scalar {
    match (kind, cmp) {
        ("frac", Cmp::Lt | Cmp::Gt) => Scalar::Frac(v),
        _ => Scalar::Int(v as i64),
    }
}

/// The compiled-in definitions.
pub fn defaults() -> Vec<MeterDef> {
    DEFAULTS
        .iter()
        .map(|(id, kind, unit, description, w, a, c)| {
            let watchers = [(Level::Warning, w), (Level::Alert, a), (Level::Critical, c)]
                .iter()
                .filter_map(|(level, def)| {
                    def.map(|(cmp, v, weight)| Watcher {
                        level: *level,
                        cmp,
                        value: typed_value(kind, cmp, v),
                        weight,
                    })
                })
                .collect();
            MeterDef {
                id: id.to_string(),
                kind: kind.to_string(),
                unit: unit.to_string(),
                description: description.to_string(),
                watchers,
                origin: Origin::Default,
                watcher_origins: Vec::new(),
            }
        })
        .collect()
}

fn invalid(msg: String) -> DbError {
    DbError::Invalid(msg)
}

/// Parse a watcher value for a meter of `kind`.
pub fn parse_value(kind: &str, cmp: Cmp, text: &str) -> Result<Scalar, DbError> {
    let bad = || {
        invalid(format!(
            "value {text:?} does not fit a {kind} meter compared with {}",
            cmp.as_str()
        ))
    };
    match (kind, cmp) {
        (_, Cmp::Count) | ("integer", _) => text.trim().parse().map(Scalar::Int).map_err(|_| bad()),
        ("frac", _) => text.trim().parse().map(Scalar::Frac).map_err(|_| bad()),
        ("string", Cmp::Eq) => Ok(Scalar::Str(text.to_string())),
        _ => Err(bad()),
    }
}

/// Check that a comparison suits a meter type.
pub fn check_cmp(kind: &str, cmp: Cmp) -> Result<(), DbError> {
    match (kind, cmp) {
        ("table", _) => Err(invalid(
            "table meters cannot have watchers; watch one of their columns".into(),
        )),
        ("string", Cmp::Lt | Cmp::Gt) => {
            Err(invalid("string meters compare with eq or count".into()))
        }
        ("integer" | "frac", Cmp::Eq) => Err(invalid(
            "numeric meters compare with lt, gt or count".into(),
        )),
        _ => Ok(()),
    }
}

fn watcher_node(w: &Watcher) -> Node {
    let mut d = Dict::new();
    d.insert("cmp", Node::Str(w.cmp.as_str().into()));
    d.insert(
        "val",
        match &w.value {
            Scalar::Int(i) => Node::Int(*i),
            Scalar::Frac(f) => Node::Frac(*f),
            Scalar::Str(s) => Node::Str(s.clone()),
        },
    );
    d.insert("weight", Node::Frac(w.weight));
    Node::Dict(d)
}

fn str_of(d: &Dict, key: &str) -> String {
    d.get(key)
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Overlay the definitions of a `meter` dict onto `defs`.
pub fn overlay(defs: &mut Vec<MeterDef>, meter: &Dict, origin: Origin) -> Result<(), DbError> {
    for (id, node) in meter.iter() {
        let Node::Dict(spec) = node else {
            return Err(invalid(format!("meter {id}: definition is not a dict")));
        };
        let at = match defs.iter().position(|d| d.id == id) {
            Some(i) => i,
            None => {
                defs.push(MeterDef {
                    id: id.to_string(),
                    kind: "integer".into(),
                    unit: String::new(),
                    description: String::new(),
                    watchers: Vec::new(),
                    origin,
                    watcher_origins: Vec::new(),
                });
                defs.len() - 1
            }
        };
        let def = &mut defs[at];
        if ["type", "unit", "description"]
            .iter()
            .any(|f| spec.get(f).is_some())
        {
            def.origin = origin;
        }
        for (field, target) in [
            ("type", &mut def.kind),
            ("unit", &mut def.unit),
            ("description", &mut def.description),
        ] {
            if spec.get(field).is_some() {
                *target = str_of(spec, field);
            }
        }
        for level in [Level::Warning, Level::Alert, Level::Critical] {
            let Some(Node::Dict(w)) = spec.get(level.as_str()) else {
                continue;
            };
            let cmp: Cmp = match w.get("cmp").and_then(Node::as_str) {
                Some(c) => c
                    .parse()
                    .map_err(|_| invalid(format!("meter {id}: unknown cmp {c:?}")))?,
                // A host adjustment may give only a value: keep the cmp.
                None => match def.watchers.iter().find(|x| x.level == level) {
                    Some(x) => x.cmp,
                    None => {
                        return Err(invalid(format!(
                            "meter {id}: {} watcher without cmp",
                            level.as_str()
                        )))
                    }
                },
            };
            let value = match w.get("val") {
                Some(Node::Int(i)) => typed_value(&def.kind, cmp, *i as f64),
                Some(Node::Frac(f)) => typed_value(&def.kind, cmp, *f),
                Some(Node::Str(s)) => parse_value(&def.kind, cmp, s)?,
                _ => {
                    return Err(invalid(format!(
                        "meter {id}: {} watcher without val",
                        level.as_str()
                    )))
                }
            };
            // Without a weight, the level's weight so far stays (a
            // tenant changing a default's value keeps its weight).
            let weight = match w.get("weight").and_then(Node::as_f64) {
                Some(x) => x,
                None => def.weight_at(level),
            };
            def.watchers.retain(|x| x.level != level);
            def.watchers.push(Watcher {
                level,
                cmp,
                value,
                weight,
            });
            def.watchers.sort_by_key(|x| x.level);
            def.watcher_origins.retain(|(l, _)| *l != level);
            if origin != Origin::Default {
                def.watcher_origins.push((level, origin));
            }
        }
    }
    Ok(())
}

/// Run `f` on the `meter` dict of a tenant or host document (created if
/// absent).
pub fn edit_meters<T>(doc: &mut Dict, f: impl FnOnce(&mut Dict) -> T) -> T {
    let mut meters = match doc.remove("meter") {
        Some(Node::Dict(d)) => d,
        _ => Dict::new(),
    };
    let out = f(&mut meters);
    doc.insert("meter", Node::Dict(meters));
    out
}

/// Run `f` on the definition of meter `id` in `doc` (created if absent).
fn edit_entry(doc: &mut Dict, id: &str, f: impl FnOnce(&mut Dict)) -> Result<(), DbError> {
    MeterName::new(id).map_err(|e| invalid(format!("meter {id:?}: {e}")))?;
    edit_meters(doc, |meters| {
        let mut e = match meters.remove(id) {
            Some(Node::Dict(d)) => d,
            _ => Dict::new(),
        };
        f(&mut e);
        meters.insert(id, Node::Dict(e));
    });
    Ok(())
}

/// Define (or redefine) a meter in `doc`.
pub fn set_meter(
    doc: &mut Dict,
    id: &str,
    kind: &str,
    description: &str,
    unit: &str,
) -> Result<(), DbError> {
    if !METER_TYPES.contains(&kind) {
        return Err(invalid(format!(
            "meter type {kind:?} is not one of {}",
            METER_TYPES.join(", ")
        )));
    }
    edit_entry(doc, id, |e| {
        e.insert("type", Node::Str(kind.into()));
        e.insert("description", Node::Str(description.into()));
        e.insert("unit", Node::Str(unit.into()));
    })
}

/// Set one watcher level of a meter in `doc`.
pub fn set_watcher(doc: &mut Dict, id: &str, w: &Watcher) -> Result<(), DbError> {
    edit_entry(doc, id, |e| e.insert(w.level.as_str(), watcher_node(w)))
}

/// Remove a meter definition from `doc`; false if it had none.
pub fn delete_meter(doc: &mut Dict, id: &str) -> bool {
    edit_meters(doc, |m| m.remove(id).is_some())
}

/// Remove watcher levels (all when `level` is `None`); false if none.
pub fn delete_watcher(doc: &mut Dict, id: &str, level: Option<Level>) -> bool {
    edit_meters(doc, |m| {
        let Some(Node::Dict(e)) = m.get_mut(id) else {
            return false;
        };
        let levels = match level {
            Some(l) => vec![l],
            None => vec![Level::Warning, Level::Alert, Level::Critical],
        };
        let removed = levels
            .iter()
            .filter(|l| e.remove(l.as_str()).is_some())
            .count()
            > 0;
        // An entry left empty would still claim the meter for this
        // document (its watchers would show as this origin's).
        if e.is_empty() {
            m.remove(id);
        }
        removed
    })
}

/// The keys of one meter definition in opticon-meter.conf.
const DEFINITION: Shape = Shape::Keys(&[
    ("type", Shape::Value),
    ("unit", Shape::Value),
    ("description", Shape::Value),
    ("warning", WATCHER),
    ("alert", WATCHER),
    ("critical", WATCHER),
]);

/// The keys of one watcher of a meter definition.
const WATCHER: Shape = Shape::Keys(&[
    ("cmp", Shape::Value),
    ("val", Shape::Value),
    ("weight", Shape::Value),
]);

/// opticon-meter.conf as `meter { <id> { ... } }`.
static IN_SECTION: Schema = Schema {
    keys: Shape::Keys(&[("meter", Shape::Named(&DEFINITION))]),
    ignored: &[],
};

/// opticon-meter.conf as the original wrote it: meter ids at the top.
static AT_TOP: Schema = Schema {
    keys: Shape::Named(&DEFINITION),
    ignored: &[],
};

/// The global meter definitions: the defaults overlaid with the meter
/// config at `path` (`meter { ... }` or just the meters). A missing file
/// is fine unless it was named `explicit`ly.
pub fn global_definitions(
    path: &std::path::Path,
    explicit: bool,
) -> Result<Vec<MeterDef>, MetersError> {
    let mut defs = defaults();
    let pick = |doc: &Dict| match doc.get("meter") {
        Some(Node::Dict(_)) => &IN_SECTION,
        _ => &AT_TOP,
    };
    match crate::conf::schema::load_checked_by(path, pick).map(|c| c.doc) {
        Ok(doc) => {
            let md = match doc.get("meter") {
                Some(Node::Dict(d)) => d.clone(),
                _ => doc,
            };
            overlay(&mut defs, &md, Origin::Default)
                .map_err(|e| MetersError::Invalid(path.to_path_buf(), e))?;
        }
        Err(crate::conf::FileError::Io(_, e))
            if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(MetersError::File(e)),
    }
    Ok(defs)
}

/// Why the global meter definitions cannot be used.
#[derive(Debug)]
pub enum MetersError {
    /// The meter config cannot be read or parsed.
    File(crate::conf::FileError),
    /// A definition in it is invalid (file, what).
    Invalid(std::path::PathBuf, DbError),
}

impl std::fmt::Display for MetersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetersError::File(e) => e.fmt(f),
            MetersError::Invalid(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for MetersError {}
