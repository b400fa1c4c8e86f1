//! `opticon-db`: query and maintain the metering database from a shell or
//! from cron. See `man 8 opticon-db`.

use crate::conf::{Dict, Node};
use crate::db::host::{self, downsample};
use crate::db::meters::{self, MeterDef};
use crate::db::time::{iso, parse_age, parse_time_spec, Date};
use crate::db::{fsck, log, views, Db, DbError};
use crate::model::json::{encode_host, host_node, meters_from_dict};
use crate::model::{Cmp, HostMeters, Level, TenantKey, Watcher};
use crate::svc::text::{size, table};
use getopts::{Matches, Options};
use std::fmt;
use std::io::Write;
use uuid::Uuid;

/// Exit status for a failed command.
const EXIT_FAIL: i32 = 1;

/// Why a command failed.
#[derive(Debug)]
enum CliError {
    /// The command line is wrong; the usage hint follows.
    Usage(String),
    /// The database refused or failed.
    Db(DbError),
}

impl From<DbError> for CliError {
    fn from(e: DbError) -> CliError {
        CliError::Db(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Db(e) => e.fmt(f),
        }
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

const COMMANDS: &str = "\
Tenants:    tenant-create tenant-list tenant-delete tenant-get-metadata
            tenant-set-metadata KEY VALUE tenant-get-quota tenant-set-quota MB
            tenant-set-key
Meters:     meter-create meter-list meter-delete
Watchers:   watcher-set watcher-list watcher-delete
Hosts:      host-list host-show host-series host-delete host-import FILE
            host-export host-log
Upkeep:     purge enforce-quota fsck du";

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "p",
        "path",
        "database root (default /var/opticon/db)",
        "DIR",
    );
    o.optopt("t", "tenant", "tenant UUID", "UUID");
    o.optopt("H", "host", "host UUID, or hostname", "HOST");
    o.optopt("n", "name", "tenant name", "NAME");
    o.optopt("k", "key", "tenant key, base64 of 32 bytes", "BASE64");
    o.optopt("m", "meter", "meter name", "METER");
    o.optopt(
        "Y",
        "type",
        "meter type: integer, frac, string, table",
        "TYPE",
    );
    o.optopt("D", "description", "meter description", "TEXT");
    o.optopt("U", "unit", "meter unit", "UNIT");
    o.optopt(
        "L",
        "level",
        "watcher level: warning, alert, critical",
        "LEVEL",
    );
    o.optopt("M", "match", "watcher comparison: lt, gt, eq, count", "CMP");
    o.optopt("V", "value", "watcher value", "VALUE");
    o.optopt("W", "weight", "watcher weight (default 1.0)", "WEIGHT");
    o.optopt("T", "time", "time spec (default now)", "SPEC");
    o.optopt("", "from", "series start (default -1d)", "SPEC");
    o.optopt("", "to", "series end (default now)", "SPEC");
    o.optopt("", "points", "downsample a series to N points", "N");
    o.optopt("", "older-than", "purge day files older than AGE", "AGE");
    o.optopt("", "stale", "purge hosts silent for longer than AGE", "AGE");
    o.optopt(
        "",
        "sync-every",
        "host-import: fsync after N samples (default 1000)",
        "N",
    );
    o.optflag(
        "",
        "progress",
        "host-import: print each durable sample time",
    );
    o.optflag("", "repair", "fsck: repair what it finds");
    o.optflag("j", "json", "print JSON");
    crate::svc::cli::standard(&mut o);
    o
}

/// Run `opticon-db` with its arguments (without the program name);
/// returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let help = format!("Commands:\n{COMMANDS}");
    let m = match crate::svc::cli::parse(
        "opticon-db",
        &opts,
        args,
        "[options] COMMAND [ARGS]",
        &help,
    ) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(command) = m.free.first().cloned() else {
        return crate::svc::cli::usage_error("opticon-db", "no command given");
    };
    let tool = Tool {
        db: Db::new(
            m.opt_str("path")
                .unwrap_or_else(|| crate::db::DEFAULT_ROOT.into()),
        ),
        json: m.opt_present("json"),
        now: crate::model::unix_now(),
    };
    match tool.command(&command, &m) {
        Ok(code) => code,
        Err(CliError::Usage(msg)) => crate::svc::cli::usage_error("opticon-db", &msg),
        Err(CliError::Db(e)) => {
            eprintln!("opticon-db: {e}");
            EXIT_FAIL
        }
    }
}

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text).map_err(|_| usage(format!("{what} {text:?} is not a UUID")))
}

fn need(m: &Matches, name: &str) -> Result<String, CliError> {
    m.opt_str(name)
        .ok_or_else(|| usage(format!("this command needs --{name}")))
}

fn args(m: &Matches, n: usize, names: &str) -> Result<Vec<String>, CliError> {
    let rest = &m.free[1..];
    if rest.len() != n {
        return Err(usage(format!("this command takes {names}")));
    }
    Ok(rest.to_vec())
}

/// Turn a command-line word into a config value: numbers, booleans and
/// null keep their type, anything else is a string.
fn word_value(text: &str) -> Node {
    match crate::conf::parse(&format!("v {text}")) {
        Ok(d) => match d.get("v") {
            Some(n @ (Node::Int(_) | Node::Frac(_) | Node::Bool(_) | Node::Null))
                if d.len() == 1 =>
            {
                n.clone()
            }
            _ => Node::Str(text.into()),
        },
        Err(_) => Node::Str(text.into()),
    }
}

struct Tool {
    db: Db,
    json: bool,
    now: i64,
}

impl Tool {
    fn time(&self, m: &Matches, name: &str, default: &str) -> Result<i64, CliError> {
        let spec = m.opt_str(name).unwrap_or_else(|| default.into());
        parse_time_spec(&spec, self.now).map_err(|e| usage(e.to_string()))
    }

    fn tenant(&self, m: &Matches) -> Result<Uuid, CliError> {
        parse_uuid(&need(m, "tenant")?, "tenant")
    }

    fn tenants(&self, m: &Matches) -> Result<Vec<Uuid>, CliError> {
        match m.opt_str("tenant") {
            Some(t) => Ok(vec![parse_uuid(&t, "tenant")?]),
            None => Ok(self.db.tenant_ids()?),
        }
    }

    fn host(&self, m: &Matches, tenant: Uuid) -> Result<Uuid, CliError> {
        Ok(self.db.find_host(tenant, &need(m, "host")?)?)
    }

    fn print_json(&self, node: Node) {
        println!("{}", node.to_json(true));
    }

    fn command(&self, command: &str, m: &Matches) -> Result<i32, CliError> {
        match command {
            "tenant-create" => self.tenant_create(m),
            "tenant-list" => self.tenant_list(m),
            "tenant-delete" => {
                args(m, 0, "no arguments")?;
                let t = self.tenant(m)?;
                self.db.delete_tenant(t)?;
                Ok(0)
            }
            "tenant-get-metadata" => {
                args(m, 0, "no arguments")?;
                let doc = self.db.tenant_doc(self.tenant(m)?)?;
                let meta = doc
                    .get("metadata")
                    .cloned()
                    .unwrap_or(Node::Dict(Dict::new()));
                self.print_json(meta);
                Ok(0)
            }
            "tenant-set-metadata" => {
                let a = args(m, 2, "KEY VALUE")?;
                let t = self.tenant(m)?;
                let mut doc = self.db.tenant_doc(t)?;
                let mut meta = match doc.remove("metadata") {
                    Some(Node::Dict(d)) => d,
                    _ => Dict::new(),
                };
                meta.insert(a[0].clone(), word_value(&a[1]));
                doc.insert("metadata", Node::Dict(meta));
                self.db.save_tenant_doc(t, &doc)?;
                Ok(0)
            }
            "tenant-get-quota" => self.tenant_get_quota(m),
            "tenant-set-quota" => {
                let a = args(m, 1, "MB")?;
                let mb: u64 = a[0]
                    .parse()
                    .map_err(|_| usage(format!("quota {:?} is not a whole number of MB", a[0])))?;
                let mb = i64::try_from(mb).map_err(|_| usage("quota too large"))?;
                self.db
                    .set_tenant_field(self.tenant(m)?, "quota", Node::Int(mb))?;
                Ok(0)
            }
            "tenant-set-key" => {
                args(m, 0, "no arguments")?;
                let t = self.tenant(m)?;
                let key = match m.opt_str("key") {
                    Some(k) => TenantKey::from_base64(&k).map_err(|e| usage(e.to_string()))?,
                    None => TenantKey(
                        crate::crypto::random_key()
                            .map_err(|e| DbError::Io(self.db.root().into(), e))?,
                    ),
                };
                self.db
                    .set_tenant_field(t, "key", Node::Str(key.to_base64()))?;
                if self.json {
                    let mut d = Dict::new();
                    d.insert("key", Node::Str(key.to_base64()));
                    self.print_json(Node::Dict(d));
                } else {
                    println!("AES Key: {}", key.to_base64());
                }
                Ok(0)
            }
            "meter-create" => self.meter_create(m),
            "meter-list" => self.meter_list(m),
            "meter-delete" => self.edit_doc(m, |doc, id| {
                if meters::delete_meter(doc, id) {
                    Ok(())
                } else {
                    Err(DbError::NotFound(format!("meter definition {id}")))
                }
            }),
            "watcher-set" => self.watcher_set(m),
            "watcher-list" => self.watcher_list(m),
            "watcher-delete" => {
                let level = match m.opt_str("level") {
                    Some(l) => Some(l.parse::<Level>().map_err(|_| {
                        usage(format!("level {l:?} is not warning, alert or critical"))
                    })?),
                    None => None,
                };
                self.edit_doc(m, |doc, id| {
                    if meters::delete_watcher(doc, id, level) {
                        Ok(())
                    } else {
                        Err(DbError::NotFound(format!("watcher on {id}")))
                    }
                })
            }
            "host-list" => self.host_list(m),
            "host-show" => self.host_show(m),
            "host-series" => self.host_series(m),
            "host-delete" => {
                args(m, 0, "no arguments")?;
                let t = self.tenant(m)?;
                let h = self.host(m, t)?;
                self.db.delete_host(t, h)?;
                Ok(0)
            }
            "host-import" => self.host_import(m),
            "host-export" => self.host_export(m),
            "host-log" => self.host_log(m),
            "purge" => self.purge(m),
            "enforce-quota" => {
                args(m, 0, "no arguments")?;
                for t in self.tenants(m)? {
                    for d in self.db.enforce_quota(t)? {
                        println!("{t}: deleted {}", d.stem());
                    }
                }
                Ok(0)
            }
            "fsck" => self.fsck(m),
            "du" => self.du(m),
            other => Err(usage(format!("unknown command {other:?}"))),
        }
    }

    fn tenant_create(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let id = match m.opt_str("tenant") {
            Some(t) => Some(parse_uuid(&t, "tenant")?),
            None => None,
        };
        let key = match m.opt_str("key") {
            Some(k) => Some(TenantKey::from_base64(&k).map_err(|e| usage(e.to_string()))?),
            None => None,
        };
        let name = m.opt_str("name").unwrap_or_default();
        let t = self.db.create_tenant(id, &name, key)?;
        if self.json {
            let mut d = Dict::new();
            d.insert("id", Node::Str(t.id.to_string()));
            d.insert("name", Node::Str(t.name));
            d.insert("key", Node::Str(t.key.to_base64()));
            let mut top = Dict::new();
            top.insert("tenant", Node::Dict(d));
            self.print_json(Node::Dict(top));
        } else {
            println!(
                "UUID:    {}\nName:    {}\nAES Key: {}",
                t.id,
                t.name,
                t.key.to_base64()
            );
        }
        Ok(0)
    }

    fn tenant_list(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        if self.json {
            self.print_json(views::tenant_list(&self.db, |_| true)?);
        } else {
            let list = self.db.list_tenants()?;
            let rows = list
                .iter()
                .map(|t| vec![t.id.to_string(), t.hosts.to_string(), t.name.clone()])
                .collect();
            table(&["UUID", "Hosts", "Name"], rows);
        }
        Ok(0)
    }

    fn tenant_get_quota(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        if self.json {
            self.print_json(views::quota_node(&self.db, t)?);
        } else {
            let (quota, used, percent) = views::quota(&self.db, t)?;
            println!(
                "Tenant storage quota: {quota} MB\nCurrent usage: {percent:.2} % ({})",
                size(used)
            );
        }
        Ok(0)
    }

    /// The effective definitions: defaults, then the tenant's, then (with
    /// --host) the host's.
    fn definitions(&self, t: Uuid, host: Option<Uuid>) -> Result<Vec<MeterDef>, CliError> {
        Ok(views::definitions(&self.db, &meters::defaults(), t, host)?)
    }

    fn optional_host(&self, m: &Matches, t: Uuid) -> Result<Option<Uuid>, CliError> {
        match m.opt_str("host") {
            Some(_) => Ok(Some(self.host(m, t)?)),
            None => Ok(None),
        }
    }

    /// Load the tenant's (or with --host the host's) document, let `edit`
    /// change the definition of --meter, and save it.
    fn edit_doc(
        &self,
        m: &Matches,
        edit: impl FnOnce(&mut Dict, &str) -> Result<(), DbError>,
    ) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let id = need(m, "meter")?;
        let h = self.optional_host(m, t)?;
        let mut doc = self.db.meter_doc(t, h)?;
        edit(&mut doc, &id)?;
        self.db.save_meter_doc(t, h, &doc)?;
        Ok(0)
    }

    fn meter_create(&self, m: &Matches) -> Result<i32, CliError> {
        let kind = m.opt_str("type").unwrap_or_else(|| "integer".into());
        let description = m.opt_str("description").unwrap_or_default();
        let unit = m.opt_str("unit").unwrap_or_default();
        self.edit_doc(m, |doc, id| {
            meters::set_meter(doc, id, &kind, &description, &unit)
        })
    }

    fn meter_list(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let defs = self.definitions(t, self.optional_host(m, t)?)?;
        if self.json {
            self.print_json(views::meter_list(&defs));
        } else {
            let rows = defs
                .iter()
                .map(|d| {
                    vec![
                        d.origin.as_str().into(),
                        d.id.clone(),
                        d.kind.clone(),
                        d.unit.clone(),
                        d.description.clone(),
                    ]
                })
                .collect();
            table(&["From", "Meter", "Type", "Unit", "Description"], rows);
        }
        Ok(0)
    }

    fn watcher_set(&self, m: &Matches) -> Result<i32, CliError> {
        let t = self.tenant(m)?;
        let id = need(m, "meter")?;
        let defs = self.definitions(t, self.optional_host(m, t)?)?;
        let Some(def) = defs.iter().find(|d| d.id == id) else {
            return Err(usage(format!(
                "meter {id} has no definition; create it with meter-create first"
            )));
        };
        let level_text = m.opt_str("level").unwrap_or_else(|| "alert".into());
        let level: Level = level_text.parse().map_err(|_| {
            usage(format!(
                "level {level_text:?} is not warning, alert or critical"
            ))
        })?;
        let cmp_text = m.opt_str("match").unwrap_or_else(|| "gt".into());
        let cmp: Cmp = cmp_text
            .parse()
            .map_err(|_| usage(format!("match {cmp_text:?} is not lt, gt, eq or count")))?;
        meters::check_cmp(&def.kind, cmp)?;
        let value = meters::parse_value(&def.kind, cmp, &need(m, "value")?)?;
        let weight_text = m.opt_str("weight").unwrap_or_else(|| "1.0".into());
        let weight: f64 = weight_text
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| usage(format!("weight {weight_text:?} is not a number >= 0")))?;
        let w = Watcher {
            level,
            cmp,
            value,
            weight,
        };
        self.edit_doc(m, |doc, id| meters::set_watcher(doc, id, &w))
    }

    fn watcher_list(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let defs = self.definitions(t, self.optional_host(m, t)?)?;
        if self.json {
            self.print_json(views::watcher_list(&defs));
        } else {
            let mut rows = Vec::new();
            for d in defs.iter().filter(|d| !d.watchers.is_empty()) {
                for w in &d.watchers {
                    rows.push(vec![
                        d.origin.as_str().into(),
                        d.id.clone(),
                        w.level.as_str().into(),
                        w.cmp.as_str().into(),
                        views::watcher_value(w),
                        format!("{:.2}", w.weight),
                    ]);
                }
            }
            table(
                &["From", "Meter", "Trigger", "Match", "Value", "Weight"],
                rows,
            );
        }
        Ok(0)
    }

    fn host_list(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let items = views::hosts_usage(&self.db, t)?;
        let when = |x: Option<i64>| x.map(iso).unwrap_or_else(|| "-".into());
        if self.json {
            self.print_json(views::host_list(&items));
        } else {
            let rows = items
                .iter()
                .map(|(h, u)| vec![h.to_string(), size(u.bytes), when(u.first), when(u.last)])
                .collect();
            table(&["UUID", "Size", "First record", "Last record"], rows);
        }
        Ok(0)
    }

    fn host_show(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        let dir = self.db.host_dir(t, h);
        let at = self.time(m, "time", "now")?;
        let found = match m.opt_str("time") {
            Some(_) => host::at(&dir, at)?,
            None => host::latest(&dir)?,
        };
        let Some((_, meters)) = found else {
            return Err(DbError::NotFound(format!(
                "a record of host {h} at or before {}",
                iso(at)
            ))
            .into());
        };
        println!("{}", encode_host(&meters, true));
        Ok(0)
    }

    fn host_series(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let meter = need(m, "meter")?;
        let (from, to) = (self.time(m, "from", "-1d")?, self.time(m, "to", "now")?);
        if from > to {
            return Err(usage("--from is after --to"));
        }
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        let series = host::series(&self.db.host_dir(t, h), &meter, from, to)?;
        let points = match m.opt_str("points") {
            Some(p) => Some(
                p.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| usage(format!("--points {p:?} is not a positive number")))?,
            ),
            None => None,
        };
        match (points, self.json) {
            (None, false) => series.iter().for_each(|(t, v)| println!("{} {v}", iso(*t))),
            (None, true) => {
                let list = series
                    .iter()
                    .map(|(t, v)| Node::Array(vec![Node::Int(*t), Node::Frac(*v)]))
                    .collect();
                let mut top = Dict::new();
                top.insert("series", Node::Array(list));
                self.print_json(Node::Dict(top));
            }
            (Some(n), json) => {
                let pts = downsample(&series, from, to, n);
                if json {
                    let list = pts
                        .iter()
                        .map(|p| {
                            let mut d = Dict::new();
                            d.insert("time", Node::Int(p.time));
                            d.insert("avg", Node::Frac(p.avg));
                            d.insert("min", Node::Frac(p.min));
                            d.insert("max", Node::Frac(p.max));
                            d.insert("count", Node::Int(p.count as i64));
                            Node::Dict(d)
                        })
                        .collect();
                    let mut top = Dict::new();
                    top.insert("series", Node::Array(list));
                    self.print_json(Node::Dict(top));
                } else {
                    let rows = pts
                        .iter()
                        .map(|p| {
                            vec![
                                iso(p.time),
                                format!("{:.3}", p.avg),
                                p.min.to_string(),
                                p.max.to_string(),
                                p.count.to_string(),
                            ]
                        })
                        .collect();
                    table(&["Time", "Avg", "Min", "Max", "Samples"], rows);
                }
            }
        }
        Ok(0)
    }

    fn host_import(&self, m: &Matches) -> Result<i32, CliError> {
        let a = args(m, 1, "FILE")?;
        let t = self.tenant(m)?;
        let h = parse_uuid(&need(m, "host")?, "host")?;
        let text =
            std::fs::read_to_string(&a[0]).map_err(|e| DbError::Io(a[0].clone().into(), e))?;
        let sync_every: usize = match m.opt_str("sync-every") {
            Some(n) => n
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| usage(format!("--sync-every {n:?} is not a positive number")))?,
            None => 1000,
        };
        let progress = m.opt_present("progress");
        // JSON lines of {"time": T, "meters": {...}} (host-export), or one
        // host record stored at --time.
        let records: Vec<(i64, Dict)> = match crate::conf::parse(&text) {
            Ok(doc) if !(doc.get("time").is_some() && doc.get("meters").is_some()) => {
                vec![(self.time(m, "time", "now")?, doc)]
            }
            _ => text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, line)| {
                    let bad =
                        |what: String| DbError::Invalid(format!("{} line {}: {what}", a[0], i + 1));
                    let doc = crate::conf::parse(line).map_err(|e| bad(e.to_string()))?;
                    let time = doc
                        .get("time")
                        .and_then(Node::as_int)
                        .ok_or_else(|| bad("no integer \"time\"".into()))?;
                    match doc.get("meters") {
                        Some(Node::Dict(d)) => Ok((time, d.clone())),
                        _ => Err(bad("no \"meters\" object".into())),
                    }
                })
                .collect::<Result<_, DbError>>()?,
        };
        let mut w = self.db.writer(t, h)?;
        for r in &w.repairs {
            eprintln!(
                "opticon-db: {}: cut torn tail ({} -> {} bytes)",
                r.path.display(),
                r.from,
                r.to
            );
        }
        let mut out = std::io::stdout().lock();
        for (n, (time, doc)) in records.iter().enumerate() {
            let mut meters = HostMeters::new();
            for (name, value) in meters_from_dict(doc)
                .map_err(|e| DbError::Invalid(format!("record at {}: {e}", iso(*time))))?
            {
                meters
                    .set(name, value, *time)
                    .map_err(|e| DbError::Invalid(e.to_string()))?;
            }
            w.append(*time, &meters)?;
            if (n + 1) % sync_every == 0 || n + 1 == records.len() {
                w.sync()?;
                if progress {
                    let _ = writeln!(out, "synced {time}");
                    let _ = out.flush();
                }
            }
        }
        Ok(0)
    }

    fn host_export(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        let (from, to) = (self.time(m, "from", "@0")?, self.time(m, "to", "now")?);
        let dir = self.db.host_dir(t, h);
        let mut out = std::io::stdout().lock();
        let (first, last) = (Date::of(from), Date::of(to));
        for d in host::day_files(&dir)?
            .iter()
            .filter(|d| d.date >= first && d.date <= last)
        {
            let day = host::read_day(&d.path)?;
            let mut failed = None;
            day.replay(|time, meters| {
                if time < from || time > to {
                    return time < to;
                }
                let mut line = Dict::new();
                line.insert("time", Node::Int(time));
                line.insert("meters", host_node(meters));
                if let Err(e) = writeln!(out, "{}", Node::Dict(line).to_json(false)) {
                    failed = Some(e);
                    return false;
                }
                true
            });
            if let Some(e) = failed {
                return Err(DbError::Io("stdout".into(), e).into());
            }
        }
        Ok(0)
    }

    fn host_log(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        let entries = log::read(&self.db.host_dir(t, h).join(crate::db::tenant::HOST_LOG))?;
        if self.json {
            self.print_json(views::host_log(&entries));
        } else {
            let rows = entries
                .iter()
                .map(|e| vec![iso(e.time), e.subsystem.clone(), e.message.clone()])
                .collect();
            table(&["When", "Subsystem", "Message"], rows);
        }
        Ok(0)
    }

    fn purge(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let older = m
            .opt_str("older-than")
            .map(|a| parse_age(&a))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        let stale = m
            .opt_str("stale")
            .map(|a| parse_age(&a))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        if older.is_none() && stale.is_none() {
            return Err(usage("purge needs --older-than AGE and/or --stale AGE"));
        }
        for t in self.tenants(m)? {
            if let Some(age) = stale {
                for h in self.db.purge_stale(t, self.now - age)? {
                    println!("{t}: deleted silent host {h}");
                }
            }
            if let Some(age) = older {
                let n = self.db.purge_before(t, self.now - age)?;
                if n > 0 {
                    println!("{t}: deleted {n} day files");
                }
            }
        }
        Ok(0)
    }

    fn fsck(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let repair = m.opt_present("repair");
        let tenants = self.tenants(m)?;
        let report = fsck::fsck(&self.db, &tenants, repair)?;
        for f in &report.findings {
            println!("{f}");
        }
        for r in &report.repairs {
            println!("repaired: {r}");
        }
        println!(
            "fsck: {} files, {} samples, {} problems",
            report.files,
            report.samples,
            report.findings.len()
        );
        if !repair || report.findings.is_empty() {
            return Ok(if report.findings.is_empty() {
                0
            } else {
                EXIT_FAIL
            });
        }
        // Exit by what is left after the repairs.
        let after = fsck::fsck(&self.db, &tenants, false)?;
        for f in &after.findings {
            println!("left: {f}");
        }
        println!("fsck after repair: {} problems", after.findings.len());
        Ok(if after.findings.is_empty() {
            0
        } else {
            EXIT_FAIL
        })
    }

    fn du(&self, m: &Matches) -> Result<i32, CliError> {
        args(m, 0, "no arguments")?;
        let mut rows = Vec::new();
        let mut total = 0;
        for t in self.tenants(m)? {
            let info = self.db.tenant(t)?;
            let bytes = self.db.tenant_bytes(t)?;
            total += bytes;
            rows.push((t, info, bytes));
        }
        if self.json {
            let list = rows
                .iter()
                .map(|(t, info, bytes)| {
                    let mut d = Dict::new();
                    d.insert("id", Node::Str(t.to_string()));
                    d.insert("name", Node::Str(info.name.clone()));
                    d.insert("bytes", Node::Int(*bytes as i64));
                    d.insert("quota", Node::Int((info.quota_mb * 1048576) as i64));
                    Node::Dict(d)
                })
                .collect();
            let mut top = Dict::new();
            top.insert("tenant", Node::Array(list));
            top.insert("total", Node::Int(total as i64));
            self.print_json(Node::Dict(top));
        } else {
            let mut lines: Vec<Vec<String>> = rows
                .iter()
                .map(|(t, info, bytes)| {
                    vec![
                        size(*bytes),
                        format!("{} MB", info.quota_mb),
                        t.to_string(),
                        info.name.clone(),
                    ]
                })
                .collect();
            lines.push(vec![
                size(total),
                String::new(),
                "total".into(),
                String::new(),
            ]);
            table(&["Size", "Quota", "Tenant", "Name"], lines);
        }
        Ok(0)
    }
}
