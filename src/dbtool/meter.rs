//! Meter and watcher definitions of a tenant or (with `--host`) a host.

use super::error::{usage, ToolError};
use super::tool::{args, need, Tool};
use crate::db::meters::{self};
use crate::db::{views, DbError};
use crate::model::{Cmp, Level, Watcher};
use crate::svc::text::table;
use getopts::Matches;

impl Tool {
    pub(super) fn meter_create(&self, m: &Matches) -> Result<i32, ToolError> {
        let kind = m.opt_str("type").unwrap_or_else(|| "integer".into());
        let description = m.opt_str("description").unwrap_or_default();
        let unit = m.opt_str("unit").unwrap_or_default();
        self.edit_doc(m, |doc, id| {
            meters::set_meter(doc, id, &kind, &description, &unit)
        })
    }

    pub(super) fn meter_list(&self, m: &Matches) -> Result<i32, ToolError> {
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

    /// `meter-delete`.
    pub(super) fn meter_delete(&self, m: &Matches) -> Result<i32, ToolError> {
        self.edit_doc(m, |doc, id| {
            if meters::delete_meter(doc, id) {
                Ok(())
            } else {
                Err(DbError::NotFound(format!("meter definition {id}")))
            }
        })
    }

    pub(super) fn watcher_set(&self, m: &Matches) -> Result<i32, ToolError> {
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
        // Without --weight the meter's weight at that level stays.
        let weight: f64 = match m.opt_str("weight") {
            None => def.weight_at(level),
            Some(text) => text
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| usage(format!("weight {text:?} is not a number >= 0")))?,
        };
        let w = Watcher {
            level,
            cmp,
            value,
            weight,
        };
        self.edit_doc(m, |doc, id| meters::set_watcher(doc, id, &w))
    }

    pub(super) fn watcher_list(&self, m: &Matches) -> Result<i32, ToolError> {
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
                        d.watcher_origin(w.level).as_str().into(),
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

    /// `watcher-delete`.
    pub(super) fn watcher_delete(&self, m: &Matches) -> Result<i32, ToolError> {
        let level = match m.opt_str("level") {
            Some(l) => Some(
                l.parse::<Level>()
                    .map_err(|_| usage(format!("level {l:?} is not warning, alert or critical")))?,
            ),
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
}
