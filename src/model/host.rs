//! The meter set of one host, with the original's hierarchy rules.

use super::name::{MeterName, NameError};
use super::value::{Array, Kind, MeterValue, Scalar, ScalarRef};
use std::collections::btree_map::{self, BTreeMap};
use std::fmt;

/// Most meters one host may hold (the original stopped at about 256).
pub const MAX_METERS_PER_HOST: usize = 4096;

/// One meter and when it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// The current value.
    pub value: MeterValue,
    /// Sample time (Unix seconds) of the last update; drives expiry and the
    /// reassembly of split arrays.
    pub updated: i64,
}

/// Why a meter could not be written to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host already holds [`MAX_METERS_PER_HOST`] meters and this name
    /// is new.
    Full(String),
    /// The name is not a valid meter name.
    BadName(NameError),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Full(name) => write!(
                f,
                "meter {name} not added: host already has {MAX_METERS_PER_HOST} meters"
            ),
            HostError::BadName(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HostError {}

impl From<NameError> for HostError {
    fn from(e: NameError) -> HostError {
        HostError::BadName(e)
    }
}

/// The flat, name-ordered meter list of one host.
///
/// Names sort so that every `prefix/...` group is contiguous, which is what
/// the JSON codec relies on to rebuild dicts and tables. A plain meter `k`
/// and grouped meters `k/x` never coexist: writing one removes the other,
/// as the original decoder did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostMeters {
    meters: BTreeMap<MeterName, Meter>,
}

fn group_range(prefix: &str) -> (String, String) {
    // Every "prefix/..." name sorts within ["prefix/", "prefix0"), since
    // '0' follows '/' in ASCII.
    (format!("{prefix}/"), format!("{prefix}0"))
}

impl HostMeters {
    /// An empty set.
    pub fn new() -> HostMeters {
        HostMeters::default()
    }

    /// Number of meters.
    pub fn len(&self) -> usize {
        self.meters.len()
    }

    /// True when there are no meters.
    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    /// The meter called `name`.
    pub fn get(&self, name: &str) -> Option<&Meter> {
        self.meters.get(name)
    }

    /// All meters in name order.
    pub fn iter(&self) -> btree_map::Iter<'_, MeterName, Meter> {
        self.meters.iter()
    }

    /// Remove one meter.
    pub fn remove(&mut self, name: &str) -> Option<Meter> {
        self.meters.remove(name)
    }

    /// Make room for `name` under the hierarchy rules; false when the host
    /// is full and `name` is new.
    fn prepare(&mut self, name: &str) -> bool {
        match name.split_once('/') {
            Some((prefix, _)) => {
                self.meters.remove(prefix);
            }
            None => self.remove_group(name),
        }
        self.meters.contains_key(name) || self.meters.len() < MAX_METERS_PER_HOST
    }

    fn remove_group(&mut self, prefix: &str) {
        let (lo, hi) = group_range(prefix);
        let doomed: Vec<MeterName> = self
            .meters
            .range::<str, _>((
                std::ops::Bound::Included(lo.as_str()),
                std::ops::Bound::Excluded(hi.as_str()),
            ))
            .map(|(k, _)| k.clone())
            .collect();
        for name in doomed {
            self.meters.remove(&name);
        }
    }

    /// Set a meter, replacing its value.
    pub fn set(&mut self, name: MeterName, value: MeterValue, time: i64) -> Result<(), HostError> {
        if !self.prepare(name.as_str()) {
            return Err(HostError::Full(name.to_string()));
        }
        self.meters.insert(
            name,
            Meter {
                value,
                updated: time,
            },
        );
        Ok(())
    }

    /// Write one scalar without allocating when the meter already exists
    /// with the same kind (the collector's hot path).
    pub fn set_scalar(
        &mut self,
        name: &str,
        value: ScalarRef<'_>,
        time: i64,
    ) -> Result<(), HostError> {
        if let Some(meter) = self.meters.get_mut(name) {
            if let MeterValue::Scalar(s) = &mut meter.value {
                let same = match (s, value) {
                    (Scalar::Int(x), ScalarRef::Int(v)) => {
                        *x = v;
                        true
                    }
                    (Scalar::Frac(x), ScalarRef::Frac(v)) => {
                        *x = v;
                        true
                    }
                    (Scalar::Str(x), ScalarRef::Str(v)) => {
                        x.clear();
                        x.push_str(v);
                        true
                    }
                    _ => false,
                };
                if same {
                    meter.updated = time;
                    return Ok(());
                }
            }
        }
        self.set(
            MeterName::new(name)?,
            MeterValue::Scalar(value.to_owned()),
            time,
        )
    }

    /// The array stored under `name` for sample `time`, ready to be
    /// written element by element.
    ///
    /// A `whole` array reuses any existing array of the same kind and length
    /// (every element is about to be overwritten, so nothing is allocated).
    /// A part of a split array reuses it only when it belongs to the same
    /// sample; otherwise the array starts as `total` zero values, and parts
    /// that never arrive stay zero, like the original's missing table cells.
    pub fn array_for_sample(
        &mut self,
        name: &str,
        kind: Kind,
        total: usize,
        time: i64,
        whole: bool,
    ) -> Result<&mut Array, HostError> {
        let reuse = match self.meters.get_mut(name) {
            Some(meter) => {
                let fits = matches!(&meter.value, MeterValue::Array(a)
                    if a.kind() == kind && a.len() == total && (whole || meter.updated == time));
                if fits {
                    meter.updated = time;
                }
                fits
            }
            None => false,
        };
        if !reuse {
            let owned = MeterName::new(name)?;
            self.set(owned, MeterValue::Array(Array::zeroed(kind, total)), time)?;
        }
        match self.meters.get_mut(name).map(|m| &mut m.value) {
            Some(MeterValue::Array(a)) => Ok(a),
            // Not reachable: an array was stored under this name just above.
            _ => Err(HostError::Full(name.to_string())),
        }
    }

    /// Delete meters not updated since `now - max_age` seconds; returns how
    /// many went.
    pub fn expire(&mut self, now: i64, max_age: i64) -> usize {
        let before = self.meters.len();
        self.meters.retain(|_, m| now - m.updated <= max_age);
        before - self.meters.len()
    }
}
