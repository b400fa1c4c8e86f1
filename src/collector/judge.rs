//! Host status from watchers: the original Opticon's badness algorithm.
//!
//! Each evaluation (once per write cycle) adds, for every meter, the
//! badness of each matching watcher (weight x level base: warning 5,
//! alert 8, critical 12) to the host's running badness, capped by the
//! worst level seen; with no problems, badness decays. Status follows
//! badness: OK below 30, WARN below 80, ALERT below 120, CRIT above.

use crate::db::meters::MeterDef;
use crate::model::{HostMeters, Level, Status};

/// What one evaluation concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Badness after this evaluation.
    pub badness: f64,
    /// Status it maps to.
    pub status: Status,
    /// Meters whose watchers matched, in name order.
    pub problems: Vec<String>,
}

/// Evaluate `meters` against `defs` given the previous badness.
pub fn judge(meters: &HostMeters, defs: &[MeterDef], badness: f64) -> Verdict {
    let mut total = 0.0;
    let mut worst: Option<Level> = None;
    let mut problems = Vec::new();
    // Only the few meters with watchers, each looked up (a definition's
    // id is unique: overlays replace, never repeat): looking every
    // meter's definition up instead compared thousands of names a host.
    for def in defs.iter().filter(|d| !d.watchers.is_empty()) {
        let Some(meter) = meters.get(&def.id) else {
            continue;
        };
        let mut meter_badness = 0.0;
        for w in &def.watchers {
            let b = w.badness(&meter.value);
            if b > 0.0 {
                meter_badness += b;
                worst = worst.max(Some(w.level));
            }
        }
        if meter_badness > 0.0 {
            total += meter_badness;
            problems.push(def.id.clone());
        }
    }
    problems.sort_unstable();
    let capped = match worst {
        None => true,
        Some(Level::Warning) => badness > 50.0,
        Some(Level::Alert) => badness > 90.0,
        Some(Level::Critical) => badness > 150.0,
    };
    let mut badness = badness + if capped { 0.0 } else { total };
    if problems.is_empty() {
        badness = if badness > 100.0 {
            badness / 2.0
        } else if badness > 50.0 {
            badness * 0.75
        } else if badness > 25.0 {
            badness - 12.5
        } else {
            0.0
        };
    } else if capped {
        badness *= 0.9;
    }
    Verdict {
        badness,
        status: Status::from_badness(badness),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::meters::{defaults, Origin};
    use crate::model::{Array, Cmp, MeterName, MeterValue, Scalar, Watcher};

    fn host(pcpu: f64) -> HostMeters {
        let mut h = HostMeters::new();
        h.set(
            MeterName::new("pcpu").unwrap(),
            MeterValue::Scalar(Scalar::Frac(pcpu)),
            0,
        )
        .unwrap();
        h.set(
            MeterName::new("loadavg").unwrap(),
            MeterValue::Array(Array::Frac(vec![0.1, 0.1, 0.1])),
            0,
        )
        .unwrap();
        h
    }

    #[test]
    fn warning_accumulates_to_warn_then_decays_to_ok() {
        let defs = defaults();
        let mut v = judge(&host(95.0), &defs, 0.0);
        assert_eq!(
            (v.badness, v.status, v.problems.clone()),
            (5.0, Status::Ok, vec!["pcpu".to_string()])
        );
        for _ in 0..6 {
            v = judge(&host(95.0), &defs, v.badness);
        }
        assert_eq!(v.status, Status::Warn, "{}", v.badness);
        // Warning badness is capped above 50.
        for _ in 0..20 {
            v = judge(&host(95.0), &defs, v.badness);
        }
        assert!(
            v.badness <= 55.0 && v.status == Status::Warn,
            "{}",
            v.badness
        );
        // No problem: decays back to OK.
        for _ in 0..5 {
            v = judge(&host(10.0), &defs, v.badness);
        }
        assert_eq!(
            (v.status, v.problems.len()),
            (Status::Ok, 0),
            "{}",
            v.badness
        );
    }

    #[test]
    fn definitions_are_unique_and_problems_in_name_order() {
        let defs = defaults();
        let mut ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), defs.len(), "judge looks each definition up once");
        let mut h = host(99.0);
        h.set(
            MeterName::new("loadavg").unwrap(),
            MeterValue::Array(Array::Frac(vec![99.0, 99.0, 99.0])),
            0,
        )
        .unwrap();
        let v = judge(&h, &defs, 0.0);
        assert_eq!(v.problems, vec!["loadavg".to_string(), "pcpu".to_string()]);
    }

    #[test]
    fn weights_and_levels_add_up() {
        let mut defs = defaults();
        let pcpu = defs.iter_mut().find(|d| d.id == "pcpu").unwrap();
        pcpu.origin = Origin::Host;
        pcpu.watchers.push(Watcher {
            level: Level::Critical,
            cmp: Cmp::Gt,
            value: Scalar::Frac(99.0),
            weight: 2.0,
        });
        let v = judge(&host(99.5), &defs, 0.0);
        assert_eq!(v.badness, 5.0 + 24.0, "warning 5 plus critical 12 x 2");
        assert_eq!(
            judge(&host(99.5), &defs, 200.0).badness,
            180.0,
            "critical capped above 150: x 0.9"
        );
    }
}
