//! Watchers (alert conditions on meters) and host statuses.

use super::value::{MeterValue, Scalar, ScalarRef};
use std::fmt;
use std::str::FromStr;

/// How serious a watcher's condition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `warning`: badness base 5.
    Warning,
    /// `alert`: badness base 8.
    Alert,
    /// `critical`: badness base 12.
    Critical,
}

impl Level {
    /// Badness added per matching element at weight 1.0 (the original's
    /// bases).
    pub fn base(self) -> f64 {
        match self {
            Level::Warning => 5.0,
            Level::Alert => 8.0,
            Level::Critical => 12.0,
        }
    }

    /// The config and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Alert => "alert",
            Level::Critical => "critical",
        }
    }
}

/// A word that names no level or comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord(pub String);

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown word {:?}", self.0)
    }
}

impl std::error::Error for UnknownWord {}

impl FromStr for Level {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Level, UnknownWord> {
        match s {
            "warning" => Ok(Level::Warning),
            "alert" => Ok(Level::Alert),
            "critical" => Ok(Level::Critical),
            _ => Err(UnknownWord(s.to_string())),
        }
    }
}

/// How a watcher compares a meter with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Numeric less-than.
    Lt,
    /// Numeric greater-than.
    Gt,
    /// String equality.
    Eq,
    /// The number of elements is at least the value.
    Count,
}

impl Cmp {
    /// The config and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "lt",
            Cmp::Gt => "gt",
            Cmp::Eq => "eq",
            Cmp::Count => "count",
        }
    }
}

impl FromStr for Cmp {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Cmp, UnknownWord> {
        match s {
            "lt" => Ok(Cmp::Lt),
            "gt" => Ok(Cmp::Gt),
            "eq" => Ok(Cmp::Eq),
            "count" => Ok(Cmp::Count),
            _ => Err(UnknownWord(s.to_string())),
        }
    }
}

/// One alert condition: "meter `cmp` value at `level`, weighted".
#[derive(Debug, Clone, PartialEq)]
pub struct Watcher {
    /// Severity of the condition.
    pub level: Level,
    /// Comparison.
    pub cmp: Cmp,
    /// The value compared against.
    pub value: Scalar,
    /// Multiplier on the level's base badness; below 0.01 counts as 1.0,
    /// as in the original.
    pub weight: f64,
}

impl Watcher {
    /// Badness added by one matching element.
    pub fn increment(&self) -> f64 {
        let weight = if self.weight < 0.01 { 1.0 } else { self.weight };
        weight * self.level.base()
    }

    fn element_matches(&self, element: ScalarRef<'_>) -> bool {
        match self.cmp {
            Cmp::Lt | Cmp::Gt => {
                let (Some(x), Some(limit)) = (element.as_f64(), self.value.as_ref().as_f64())
                else {
                    return false;
                };
                if self.cmp == Cmp::Lt {
                    x < limit
                } else {
                    x > limit
                }
            }
            Cmp::Eq => match (element, self.value.as_ref()) {
                (ScalarRef::Str(a), ScalarRef::Str(b)) => a == b,
                (a, b) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
            },
            Cmp::Count => false,
        }
    }

    /// Badness this watcher adds for `value`: one increment per matching
    /// element, or one increment when a `count` condition holds.
    pub fn badness(&self, value: &MeterValue) -> f64 {
        if self.cmp == Cmp::Count {
            let need = self.value.as_ref().as_f64().unwrap_or(f64::INFINITY);
            return if value.element_count() as f64 >= need {
                self.increment()
            } else {
                0.0
            };
        }
        let matches = (0..value.element_count())
            .filter_map(|i| value.element(i))
            .filter(|e| self.element_matches(*e))
            .count();
        matches as f64 * self.increment()
    }
}

/// A host's status as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No evaluation yet.
    Unset,
    /// Badness below 30.
    Ok,
    /// Badness 30 to below 80.
    Warn,
    /// Badness 80 to below 120.
    Alert,
    /// Badness 120 or more.
    Crit,
    /// No datagram for longer than the stale time.
    Stale,
}

impl Status {
    /// Every status, in the order reports list them.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Warn,
        Status::Alert,
        Status::Crit,
        Status::Stale,
        Status::Unset,
    ];

    /// The status spelled `text` in a `status` meter; anything unknown
    /// reads as UNSET (a record from a newer version stays readable).
    pub fn parse(text: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(Status::Unset)
    }

    /// The status a badness maps to (the original's thresholds).
    pub fn from_badness(badness: f64) -> Status {
        if badness < 30.0 {
            Status::Ok
        } else if badness < 80.0 {
            Status::Warn
        } else if badness < 120.0 {
            Status::Alert
        } else {
            Status::Crit
        }
    }

    /// The spelling stored in the `status` meter.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "UNSET",
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Alert => "ALERT",
            Status::Crit => "CRIT",
            Status::Stale => "STALE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::value::Array;

    fn gt(level: Level, v: f64, weight: f64) -> Watcher {
        Watcher {
            level,
            cmp: Cmp::Gt,
            value: Scalar::Frac(v),
            weight,
        }
    }

    #[test]
    fn frac_watcher_fires_on_int_meter() {
        let w = gt(Level::Warning, 5.0, 1.0);
        assert_eq!(w.badness(&MeterValue::Scalar(Scalar::Int(12))), 5.0);
        assert_eq!(w.badness(&MeterValue::Scalar(Scalar::Int(2))), 0.0);
    }

    #[test]
    fn per_element_and_weight() {
        let w = gt(Level::Alert, 90.0, 0.5);
        let v = MeterValue::Array(Array::Frac(vec![95.0, 10.0, 99.0]));
        assert_eq!(w.badness(&v), 8.0);
        let count = Watcher {
            level: Level::Warning,
            cmp: Cmp::Count,
            value: Scalar::Int(1),
            weight: 0.5,
        };
        assert_eq!(
            count.badness(&MeterValue::Array(Array::Str(vec!["x".into()]))),
            2.5
        );
        assert_eq!(count.badness(&MeterValue::Array(Array::Str(vec![]))), 0.0);
    }

    #[test]
    fn statuses() {
        assert_eq!(Status::from_badness(29.9), Status::Ok);
        assert_eq!(Status::from_badness(30.0), Status::Warn);
        assert_eq!(Status::from_badness(80.0), Status::Alert);
        assert_eq!(Status::from_badness(120.0), Status::Crit);
    }
}
