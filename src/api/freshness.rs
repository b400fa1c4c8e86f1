//! Whether what the collector published is still the fleet's state: data
//! older than two of its write cycles means the collector stopped or is
//! stuck, and is served marked (`"stale": true`, its `age`, every host
//! `STALE`) rather than as if it were live.

use super::error::ApiError;
use super::routes::Api;
use crate::conf::{self, Node};
use crate::db::published::{stale_after, write_interval};
use crate::model::unix_now;
use std::time::{Duration, Instant};

/// How long the collector's published interval is believed before it is
/// read again.
const INTERVAL_TTL: Duration = Duration::from_secs(5);

impl Api {
    /// Seconds after which published data is stale.
    pub(super) fn stale_after(&self) -> i64 {
        if let Ok(mut cached) = self.stale_after.lock() {
            match *cached {
                Some((at, secs)) if at.elapsed() < INTERVAL_TTL => return secs,
                _ => {
                    let secs = stale_after(write_interval(self.db.root()));
                    *cached = Some((Instant::now(), secs));
                    return secs;
                }
            }
        }
        stale_after(write_interval(self.db.root()))
    }

    /// An overview document written at `written` with its `age` and
    /// `stale` flag; when stale, every host's status is `STALE` (what it
    /// was stays in `stored_status`). The fresh case edits the text
    /// without parsing it: the overview of a large tenant is big.
    pub(super) fn overview_with_age(&self, text: String, written: i64) -> Result<String, ApiError> {
        let age = (unix_now() - written).max(0);
        if age <= self.stale_after() {
            let body = text.trim_end();
            let Some(inner) = body.strip_suffix('}') else {
                return Ok(text);
            };
            return Ok(format!("{inner},\"age\":{age},\"stale\":false}}\n"));
        }
        let mut doc = conf::parse(&text).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(Node::Dict(hosts)) = doc.get_mut("overview") {
            let ids: Vec<String> = hosts.iter().map(|(k, _)| k.to_string()).collect();
            for id in ids {
                if let Some(Node::Dict(entry)) = hosts.get_mut(&id) {
                    mark_stale(entry);
                }
            }
        }
        doc.insert("age", Node::Int(age));
        doc.insert("stale", Node::Bool(true));
        Ok(Node::Dict(doc).to_json(false) + "\n")
    }

    /// A host's latest record, written at `written`: as it is while
    /// fresh, else with status `STALE`, its `age` and `stale`.
    pub(super) fn latest_with_age(&self, text: String, written: i64) -> String {
        let age = (unix_now() - written).max(0);
        if age <= self.stale_after() {
            return text;
        }
        match conf::parse(&text) {
            Ok(mut doc) => {
                mark_stale(&mut doc);
                doc.insert("age", Node::Int(age));
                doc.insert("stale", Node::Bool(true));
                Node::Dict(doc).to_json(true) + "\n"
            }
            Err(_) => text,
        }
    }
}

/// A host entry's status becomes `STALE`, the stored one kept beside it.
fn mark_stale(entry: &mut conf::Dict) {
    if let Some(old) = entry.get("status").cloned() {
        entry.insert("stored_status", old);
    }
    entry.insert("status", Node::Str("STALE".into()));
}
