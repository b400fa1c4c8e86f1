//! Host commands: list, show, series, delete, import, export, log.

use super::error::{usage, ToolError};
use super::tool::{args, need, parse_uuid, Tool};
use crate::conf::{Dict, Node};
use crate::db::host::{self, downsample};
use crate::db::time::iso;
use crate::db::{log, views, DbError};
use crate::model::json::{encode_host, host_node, meters_from_dict};
use crate::model::HostMeters;
use crate::svc::text::{size, table};
use getopts::Matches;
use std::io::Write;

impl Tool {
    pub(super) fn host_list(&self, m: &Matches) -> Result<i32, ToolError> {
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

    pub(super) fn host_show(&self, m: &Matches) -> Result<i32, ToolError> {
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

    pub(super) fn host_series(&self, m: &Matches) -> Result<i32, ToolError> {
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

    /// `host-delete`.
    pub(super) fn host_delete(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        self.db.delete_host(t, h)?;
        Ok(0)
    }

    pub(super) fn host_import(&self, m: &Matches) -> Result<i32, ToolError> {
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
            let appended = w.append(*time, &meters);
            for note in w.notes() {
                eprintln!("opticon-db: {note}");
            }
            appended?;
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

    pub(super) fn host_export(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let h = self.host(m, t)?;
        let (from, to) = (self.time(m, "from", "@0")?, self.time(m, "to", "now")?);
        let dir = self.db.host_dir(t, h);
        let mut out = std::io::stdout().lock();
        let mut failed = None;
        host::replay(&dir, from, to, |time, meters| {
            let mut line = Dict::new();
            line.insert("time", Node::Int(time));
            line.insert("meters", host_node(meters));
            if let Err(e) = writeln!(out, "{}", Node::Dict(line).to_json(false)) {
                failed = Some(e);
                return false;
            }
            true
        })?;
        if let Some(e) = failed {
            return Err(DbError::Io("stdout".into(), e).into());
        }
        Ok(0)
    }

    pub(super) fn host_log(&self, m: &Matches) -> Result<i32, ToolError> {
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
}
