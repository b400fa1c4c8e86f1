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

    /// Seconds since the collector last published its metrics (`None`:
    /// it never did).
    pub(super) fn collector_age(&self) -> Option<i64> {
        let metrics = self.db.root().join(crate::db::published::METRICS_FILE);
        crate::db::published::written_at(&metrics).map(|w| (unix_now() - w).max(0))
    }

    /// Whether the collector published within the stale time (what it
    /// keeps, such as the host index, is then current).
    pub(super) fn collector_live(&self) -> bool {
        self.collector_age()
            .is_some_and(|age| age <= self.stale_after())
    }

    /// An overview document written at `written` with its `age` and
    /// `stale` flag; when stale, every host's status is `STALE` (what it
    /// was stays in `stored_status`). Both edit the text without parsing
    /// it: the overview of a large tenant is big.
    pub(super) fn overview_with_age(&self, text: String, written: i64) -> Result<String, ApiError> {
        let age = (unix_now() - written).max(0);
        if age <= self.stale_after() {
            let body = text.trim_end();
            let Some(inner) = body.strip_suffix('}') else {
                return Ok(text);
            };
            return Ok(format!("{inner},\"age\":{age},\"stale\":false}}\n"));
        }
        // Marked in the text, not by parsing it: a stopped collector's
        // overview of 100,000 hosts is 100 MB, asked for every 30 s by
        // every open dashboard. The collector writes each entry's status
        // as `"status":"X"` (or with a space, hand-written), which no
        // string value can contain (its quotes would be escaped).
        let mut marked = text;
        for st in crate::model::Status::ALL.map(crate::model::Status::as_str) {
            for sep in [":", ": "] {
                marked = marked.replace(
                    &format!("\"status\"{sep}\"{st}\""),
                    &format!("\"status\":\"STALE\",\"stored_status\":\"{st}\""),
                );
            }
        }
        let body = marked.trim_end();
        let Some(inner) = body.strip_suffix('}') else {
            return Ok(marked);
        };
        Ok(format!("{inner},\"age\":{age},\"stale\":true}}\n"))
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
