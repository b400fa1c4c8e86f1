//! The original API's JSON shapes of what the database holds: tenant
//! lists, quotas, meter and watcher lists, host lists. `opticon-db --json`
//! and `opticon-api` print the same documents from these functions.

use super::meters::{self, MeterDef, Origin};
use super::time::iso;
use super::{host, Db, DbError};
use crate::conf::{Dict, Node};
use crate::model::json::value_node;
use crate::model::Watcher;
use crate::model::{MeterValue, Scalar};
use uuid::Uuid;

/// `{key: value}`.
pub fn wrap(key: &str, value: Node) -> Node {
    let mut d = Dict::new();
    d.insert(key, value);
    Node::Dict(d)
}

/// `{"tenant": [{id, name, hostcount}]}` for the tenants `keep` accepts.
pub fn tenant_list(db: &Db, keep: impl Fn(Uuid) -> bool) -> Result<Node, DbError> {
    let items = db
        .list_tenants()?
        .into_iter()
        .filter(|t| keep(t.id))
        .map(|t| {
            let mut d = Dict::new();
            d.insert("id", Node::Str(t.id.to_string()));
            d.insert("name", Node::Str(t.name));
            d.insert("hostcount", Node::Int(t.hosts as i64));
            Node::Dict(d)
        })
        .collect();
    Ok(wrap("tenant", Node::Array(items)))
}

/// A tenant's quota in MB and its usage in percent (of the quota).
pub fn quota(db: &Db, t: Uuid) -> Result<(u64, u64, f64), DbError> {
    let quota = db.tenant(t)?.quota_mb;
    let used = db.tenant_bytes(t)?;
    let percent = if quota == 0 {
        100.0
    } else {
        used as f64 * 100.0 / (quota as f64 * 1048576.0)
    };
    Ok((quota, used, percent))
}

/// `{"quota": MB, "usage": percent}`.
pub fn quota_node(db: &Db, t: Uuid) -> Result<Node, DbError> {
    let (quota, _, percent) = quota(db, t)?;
    let mut d = Dict::new();
    d.insert("quota", Node::Int(quota as i64));
    d.insert("usage", Node::Frac((percent * 100.0).round() / 100.0));
    Ok(Node::Dict(d))
}

/// The effective definitions of a tenant (and of one of its hosts):
/// `global`, then the tenant's, then the host's.
pub fn definitions(
    db: &Db,
    global: &[MeterDef],
    t: Uuid,
    host: Option<Uuid>,
) -> Result<Vec<MeterDef>, DbError> {
    let mut defs = global.to_vec();
    if let Some(Node::Dict(md)) = db.tenant_doc(t)?.get("meter") {
        meters::overlay(&mut defs, md, Origin::Tenant)?;
    }
    if let Some(h) = host {
        if let Some(Node::Dict(md)) = db.host_doc(t, h)?.get("meter") {
            meters::overlay(&mut defs, md, Origin::Host)?;
        }
    }
    Ok(defs)
}

/// `{"meter": {id: {type, description, unit, origin?}}}`.
pub fn meter_list(defs: &[MeterDef]) -> Node {
    let mut all = Dict::new();
    for d in defs {
        let mut e = Dict::new();
        e.insert("type", Node::Str(d.kind.clone()));
        e.insert("description", Node::Str(d.description.clone()));
        e.insert("unit", Node::Str(d.unit.clone()));
        if d.origin != Origin::Default {
            e.insert("origin", Node::Str(d.origin.as_str().into()));
        }
        all.insert(d.id.clone(), Node::Dict(e));
    }
    wrap("meter", Node::Dict(all))
}

/// A watcher's value as text, for tables.
pub fn watcher_value(w: &Watcher) -> String {
    match &w.value {
        Scalar::Int(i) => i.to_string(),
        Scalar::Frac(f) => format!("{f}"),
        Scalar::Str(s) => s.clone(),
    }
}

/// `{"watcher": {id: {type, warning|alert|critical: {cmp, val, weight,
/// origin?}}}}` for the meters with at least one watcher.
pub fn watcher_list(defs: &[MeterDef]) -> Node {
    let mut all = Dict::new();
    for d in defs.iter().filter(|d| !d.watchers.is_empty()) {
        let mut e = Dict::new();
        e.insert("type", Node::Str(d.kind.clone()));
        for w in &d.watchers {
            let mut x = Dict::new();
            x.insert("cmp", Node::Str(w.cmp.as_str().into()));
            x.insert("val", value_node(&MeterValue::Scalar(w.value.clone())));
            x.insert("weight", Node::Frac(w.weight));
            let origin = d.watcher_origin(w.level);
            if origin != Origin::Default {
                x.insert("origin", Node::Str(origin.as_str().into()));
            }
            e.insert(w.level.as_str(), Node::Dict(x));
        }
        all.insert(d.id.clone(), Node::Dict(e));
    }
    wrap("watcher", Node::Dict(all))
}

/// Every host of a tenant with its storage use and first and last record.
pub fn hosts_usage(db: &Db, t: Uuid) -> Result<Vec<(Uuid, host::Usage)>, DbError> {
    let mut records = crate::db::store::reader::all_usage(&db.tenant_dir(t))?;
    let mut items = Vec::new();
    for h in db.hosts(t)? {
        let mut u = records.remove(&h).unwrap_or_default();
        u.bytes += crate::db::dir_bytes(&db.host_dir(t, h))?;
        items.push((h, u));
    }
    Ok(items)
}

/// Every host's usage from the tenant's index (`tenant.hosts`, which the
/// collector keeps while `collector_live`), looking on disk only at
/// hosts the index lacks; a walk of every host without a usable index.
pub fn hosts_usage_indexed(
    db: &Db,
    t: Uuid,
    collector_live: bool,
) -> Result<Vec<(Uuid, host::Usage)>, DbError> {
    let indexed = match collector_live {
        true => super::index::read(&db.tenant_dir(t)),
        false => None,
    };
    let Some(indexed) = indexed else {
        return hosts_usage(db, t);
    };
    let known: std::collections::HashMap<Uuid, host::Usage> = indexed.into_iter().collect();
    let mut items = Vec::new();
    for h in db.hosts(t)? {
        let usage = match known.get(&h) {
            Some(u) => *u,
            None => host::usage(&db.host_dir(t, h))?,
        };
        items.push((h, usage));
    }
    Ok(items)
}

/// `{"host": [{id, usage, start, end}]}`.
pub fn host_list(items: &[(Uuid, host::Usage)]) -> Node {
    let list = items
        .iter()
        .map(|(h, u)| {
            let mut d = Dict::new();
            d.insert("id", Node::Str(h.to_string()));
            d.insert("usage", Node::Int(u.bytes as i64));
            // The original's form: minute-aligned UTC, without a zone.
            let minute = |t: i64| {
                let mut text = iso(t - t.rem_euclid(60));
                text.pop();
                Node::Str(text)
            };
            d.insert("start", u.first.map_or(Node::Null, minute));
            d.insert("end", u.last.map_or(Node::Null, minute));
            Node::Dict(d)
        })
        .collect();
    wrap("host", Node::Array(list))
}

/// `{"log": [{when, subsystem, message}]}`.
pub fn host_log(entries: &[super::log::LogEntry]) -> Node {
    let list = entries
        .iter()
        .map(|e| {
            let mut d = Dict::new();
            d.insert("when", Node::Int(e.time));
            d.insert("subsystem", Node::Str(e.subsystem.clone()));
            d.insert("message", Node::Str(e.message.clone()));
            Node::Dict(d)
        })
        .collect();
    wrap("log", Node::Array(list))
}
