//! Watchers of a tenant or a host: listing the effective definitions,
//! setting and deleting levels.

use super::error::{ApiError, Reply};
use super::http::Request;
use super::input::{body, text_field};
use super::routes::Api;
use crate::conf::Node;
use crate::db::meters::{self, MeterDef};
use crate::db::views;
use crate::model::{Cmp, Level, Watcher};
use uuid::Uuid;

impl Api {
    pub(super) fn definitions(&self, t: Uuid, h: Option<Uuid>) -> Result<Vec<MeterDef>, ApiError> {
        Ok(views::definitions(&self.db, &self.global, t, h)?)
    }

    pub(super) fn set_watchers(&self, t: Uuid, h: Option<Uuid>, id: &str, req: &Request) -> Reply {
        let b = body(req)?;
        let Some(Node::Dict(levels)) = b.get("watcher") else {
            return Err(ApiError::BadRequest("body needs a watcher object".into()));
        };
        let defs = self.definitions(t, h)?;
        let Some(def) = defs.iter().find(|d| d.id == id) else {
            return Err(ApiError::BadRequest(format!(
                "meter {id} has no definition; create it first"
            )));
        };
        let mut doc = self.db.meter_doc(t, h)?;
        let mut count = 0;
        for (name, spec) in levels.iter() {
            let level: Level = name.parse().map_err(|_| {
                ApiError::BadRequest(format!("level {name:?} is not warning, alert or critical"))
            })?;
            let spec = spec.as_dict().cloned().unwrap_or_default();
            let cmp_text = text_field(&spec, "cmp").unwrap_or_else(|| {
                def.watchers
                    .iter()
                    .find(|w| w.level == level)
                    .map_or("gt", |w| w.cmp.as_str())
                    .to_string()
            });
            let cmp: Cmp = cmp_text.parse().map_err(|_| {
                ApiError::BadRequest(format!("cmp {cmp_text:?} is not lt, gt, eq or count"))
            })?;
            meters::check_cmp(&def.kind, cmp)?;
            let value_text = match spec.get("val") {
                Some(Node::Str(s)) => s.clone(),
                Some(Node::Int(i)) => i.to_string(),
                Some(Node::Frac(f)) => format!("{f}"),
                _ => return Err(ApiError::BadRequest(format!("{name}: val is required"))),
            };
            let value = meters::parse_value(&def.kind, cmp, &value_text)?;
            // Without a weight, the meter's weight at this level stays.
            let weight = match spec.get("weight") {
                None => def.weight_at(level),
                Some(n) => n
                    .as_f64()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("{name}: weight must be a number >= 0"))
                    })?,
            };
            meters::set_watcher(
                &mut doc,
                id,
                &Watcher {
                    level,
                    cmp,
                    value,
                    weight,
                },
            )?;
            count += 1;
        }
        if count == 0 {
            return Err(ApiError::BadRequest("no watcher levels given".into()));
        }
        self.db.save_meter_doc(t, h, &doc)?;
        let defs = self.definitions(t, h)?;
        let one: Vec<MeterDef> = defs.into_iter().filter(|d| d.id == id).collect();
        Ok(views::watcher_list(&one))
    }

    pub(super) fn delete_watchers(&self, t: Uuid, h: Option<Uuid>, id: &str) -> Reply {
        let mut doc = self.db.meter_doc(t, h)?;
        if !meters::delete_watcher(&mut doc, id, None) {
            return Err(ApiError::NotFound(format!("watcher on {id} not found")));
        }
        self.db.save_meter_doc(t, h, &doc)?;
        Ok(views::wrap(
            "watcher",
            views::wrap("deleted", Node::Str(id.into())),
        ))
    }
}
