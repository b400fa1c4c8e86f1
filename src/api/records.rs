//! Host routes (`/{tenant}/host/{host}/...`): records (the latest cached
//! as text until the host's newest day file changes), ranges, logs and
//! graphs.

use super::error::{ApiError, Reply};
use super::graphs;
use super::http::Request;
use super::routes::Api;
use crate::conf::{Dict, Node};
use crate::db::tenant::HOST_LOG;
use crate::db::time::iso;
use crate::db::{host, log as hostlog, views};
use crate::model::json::encode_host;
use crate::model::unix_now;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// Latest records kept as text, at most.
const LATEST_CACHE: usize = 8192;

/// Where a host's newest record is (its day, its offset and the day
/// file's generation) and its time, when a record text was made.
pub(super) type DayStamp = (crate::db::time::Date, u64, u32, i64);
/// Latest records by tenant and host.
pub(super) type LatestCache = HashMap<(Uuid, Uuid), (DayStamp, Arc<str>)>;

impl Api {
    /// A host's record (the latest, or the one at a time) as host JSON.
    /// The latest is cached until the host's newest day file changes.
    pub(super) fn record(&self, t: Uuid, h: Uuid, at: Option<i64>) -> Result<String, ApiError> {
        let dir = self.db.require_host(t, h)?;
        let stamp = match at {
            Some(_) => None,
            None => crate::db::store::reader::newest(&self.db.tenant_dir(t), h)?,
        };
        let written = stamp.as_ref().map(|s| s.3);
        let aged = |text: String| match written {
            Some(w) => self.latest_with_age(text, w),
            None => text,
        };
        if let Some(stamp) = &stamp {
            if let Ok(cache) = self.latest.lock() {
                if let Some((s, text)) = cache.get(&(t, h)) {
                    if s == stamp {
                        return Ok(aged(text.to_string()));
                    }
                }
            }
        }
        let text = self.record_text(&dir, at)?;
        if let (Some(stamp), Ok(mut cache)) = (stamp, self.latest.lock()) {
            if cache.len() >= LATEST_CACHE {
                cache.clear();
            }
            cache.insert((t, h), (stamp, Arc::from(text.as_str())));
        }
        Ok(aged(text))
    }

    fn record_text(&self, dir: &Path, at: Option<i64>) -> Result<String, ApiError> {
        let found = match at {
            Some(at) => host::at(dir, at)?,
            None => host::latest(dir)?,
        };
        let Some((_, meters)) = found else {
            return Err(ApiError::NotFound(
                "No current record found for host".into(),
            ));
        };
        Ok(encode_host(&meters, true) + "\n")
    }

    pub(super) fn host_route(
        &self,
        m: &str,
        t: Uuid,
        h: Uuid,
        rest: &[&str],
        req: &Request,
    ) -> Reply {
        match (m, rest) {
            ("DELETE", []) => {
                self.db.delete_host(t, h)?;
                Ok(views::wrap(
                    "host",
                    views::wrap("deleted", Node::Str(h.to_string())),
                ))
            }
            // The original's external data (its querytool plugin), which
            // its GUI asks for on every host view: none here.
            ("GET", ["externaldata"]) => {
                self.db.require_host(t, h)?;
                Ok(Node::Dict(Dict::new()))
            }
            ("GET", ["log"]) => {
                let dir = self.db.require_host(t, h)?;
                Ok(views::host_log(&hostlog::read(&dir.join(HOST_LOG))?))
            }

            ("GET", ["range", from, to]) => {
                self.range(t, h, Self::time(from)?, Self::time(to)?, req)
            }
            ("GET", ["watcher"]) => {
                self.db.require_host(t, h)?;
                Ok(views::watcher_list(&self.definitions(t, Some(h))?))
            }
            ("GET", ["graph"]) => {
                self.db.require_host(t, h)?;
                Ok(graphs::definitions())
            }
            ("GET", ["graph", g, d, span, n]) => {
                let dir = self.db.require_host(t, h)?;
                let (Ok(span), Ok(n)) = (span.parse::<i64>(), n.parse::<usize>()) else {
                    return Err(ApiError::BadRequest(
                        "span and points must be numbers".into(),
                    ));
                };
                graphs::data(&dir, g, d, span, n, unix_now()).map_err(|e| match e {
                    graphs::GraphError::Unknown => {
                        ApiError::NotFound(format!("graph {g}/{d} not found"))
                    }
                    graphs::GraphError::BadSpan => ApiError::BadRequest(
                        "span / points must be at least 60 s and points at most 4096".into(),
                    ),
                    graphs::GraphError::Db(e) => e.into(),
                })
            }
            ("POST" | "PUT", ["watcher", id @ ..]) if !id.is_empty() => {
                self.db.require_host(t, h)?;
                self.set_watchers(t, Some(h), &id.join("/"), req)
            }
            ("DELETE", ["watcher", id @ ..]) if !id.is_empty() => {
                self.db.require_host(t, h)?;
                self.delete_watchers(t, Some(h), &id.join("/"))
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    /// `{"range": {"from", "to", "series": {meter: [[time, value], ...]}}}`
    /// for `?meter=a,b`, or every numeric scalar meter of the host's
    /// latest record in the range. With `?points=N` each series is
    /// averaged into at most N equal slices, `[time, avg, min, max]`: a
    /// dashboard's every graph of a week in one request and one read.
    fn range(&self, t: Uuid, h: Uuid, from: i64, to: i64, req: &Request) -> Reply {
        if to < from {
            return Err(ApiError::BadRequest(
                "the range ends before it starts".into(),
            ));
        }
        if to - from > 366 * 86_400 {
            return Err(ApiError::BadRequest("a range is at most a year".into()));
        }
        let dir = self.db.require_host(t, h)?;
        let names: Vec<String> = match req.param("meter") {
            Some(list) => list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => match host::at(&dir, to)? {
                Some((_, meters)) => meters
                    .iter()
                    .filter(|(_, m)| matches!(m.value, crate::model::MeterValue::Scalar(_)))
                    .filter(|(_, m)| host::numeric(&m.value).is_some())
                    .map(|(n, _)| n.as_str().to_string())
                    .collect(),
                None => Vec::new(),
            },
        };
        let points = match req.param("points") {
            None => None,
            Some(p) => match p.parse::<usize>() {
                Ok(n @ 1..=4096) => Some(n),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "points {p:?} is not a number from 1 to 4096"
                    )))
                }
            },
        };
        let names: Vec<&str> = names.iter().take(256).map(String::as_str).collect();
        let mut series = Dict::new();
        for (name, values) in names.iter().zip(host::series_many(&dir, &names, from, to)?) {
            let rows = match points {
                None => values
                    .into_iter()
                    .map(|(time, v)| Node::Array(vec![Node::Int(time), Node::Frac(v)]))
                    .collect(),
                Some(n) => host::downsample(&values, from, to, n)
                    .into_iter()
                    .map(|p| {
                        Node::Array(vec![
                            Node::Int(p.time),
                            Node::Frac((p.avg * 1000.0).round() / 1000.0),
                            Node::Frac(p.min),
                            Node::Frac(p.max),
                        ])
                    })
                    .collect(),
            };
            series.insert(name.to_string(), Node::Array(rows));
        }
        let mut d = Dict::new();
        d.insert("from", Node::Str(iso(from)));
        d.insert("to", Node::Str(iso(to)));
        d.insert("series", Node::Dict(series));
        Ok(views::wrap("range", Node::Dict(d)))
    }
}
