//! The meter set of one host, with the original's hierarchy rules.

use super::name::{MeterName, NameError};
use super::value::{Array, Kind, MeterValue, Scalar, ScalarRef};
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
///
/// Storage is a sorted vector: samples arrive in the same name order, so a
/// [`MeterWriter`] finds each meter with one comparison at its cursor and
/// falls back to binary search only when the set of names changes.
#[derive(Debug, Default, PartialEq)]
pub struct HostMeters {
    entries: Vec<(MeterName, Meter)>,
}

impl Clone for HostMeters {
    fn clone(&self) -> HostMeters {
        HostMeters {
            entries: self.entries.clone(),
        }
    }

    /// Reuses the buffers in place, position by position: nothing is
    /// allocated when both hold the same meter names and shapes (a
    /// host's samples from one minute to the next, or two hosts of one
    /// fleet), little when they differ a bit.
    fn clone_from(&mut self, source: &HostMeters) {
        self.entries.truncate(source.entries.len());
        for ((name, mine), (their_name, theirs)) in self.entries.iter_mut().zip(&source.entries) {
            if name != their_name {
                name.clone_from(their_name);
            }
            mine.updated = theirs.updated;
            mine.value.clone_from(&theirs.value);
        }
        let have = self.entries.len();
        self.entries.extend_from_slice(&source.entries[have..]);
    }
}

impl HostMeters {
    /// An empty set.
    pub fn new() -> HostMeters {
        HostMeters::default()
    }

    /// Number of meters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no meters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when both hold the same meter names (what a delta between
    /// them needs).
    pub fn same_names(&self, other: &HostMeters) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((a, _), (b, _))| a == b)
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The index of the meter called `name` (in name order).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.search(name).ok()
    }

    /// The meter called `name`.
    pub fn get(&self, name: &str) -> Option<&Meter> {
        self.search(name).ok().map(|i| &self.entries[i].1)
    }

    /// All meters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&MeterName, &Meter)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The meter at position `i` in name order, for formats that address
    /// meters by position (the database's delta frames).
    pub fn nth_mut(&mut self, i: usize) -> Option<&mut Meter> {
        self.entries.get_mut(i).map(|(_, m)| m)
    }

    /// Set every meter's update time (a stored sample has one time).
    pub fn stamp(&mut self, time: i64) {
        for (_, m) in &mut self.entries {
            m.updated = time;
        }
    }

    /// Remove one meter.
    pub fn remove(&mut self, name: &str) -> Option<Meter> {
        let i = self.search(name).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// A writer for a run of updates, ideally in name order.
    pub fn writer(&mut self) -> MeterWriter<'_> {
        MeterWriter {
            host: self,
            cursor: 0,
        }
    }

    /// Set a meter, replacing its value.
    pub fn set(&mut self, name: MeterName, value: MeterValue, time: i64) -> Result<(), HostError> {
        self.writer().set(name, value, time)
    }

    /// Write one scalar; see [`MeterWriter::scalar`].
    pub fn set_scalar(
        &mut self,
        name: &str,
        value: ScalarRef<'_>,
        time: i64,
    ) -> Result<(), HostError> {
        self.writer().scalar(name, value, time)
    }

    /// Delete the meters whose update time is exactly `time` (a stamp
    /// that marked them as not rewritten).
    pub fn expire_exactly(&mut self, time: i64) {
        self.entries.retain(|(_, m)| m.updated != time);
    }

    /// Delete meters not updated since `now - max_age` seconds; returns how
    /// many went.
    pub fn expire(&mut self, now: i64, max_age: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, m)| now - m.updated <= max_age);
        before - self.entries.len()
    }
}

/// Applies a sequence of updates to a host, remembering where the last one
/// landed so that name-ordered updates cost one comparison each.
pub struct MeterWriter<'h> {
    host: &'h mut HostMeters,
    cursor: usize,
}

impl MeterWriter<'_> {
    /// Index of `name`, or where it would be inserted.
    fn locate(&mut self, name: &[u8]) -> Result<usize, usize> {
        let entries = &self.host.entries;
        let found = match entries.get(self.cursor) {
            Some((k, _)) if k.as_str().as_bytes() == name => Ok(self.cursor),
            // Decoding into an empty set: names come in order, each after
            // the last one.
            None if entries
                .last()
                .is_none_or(|(k, _)| k.as_str().as_bytes() < name) =>
            {
                Err(entries.len())
            }
            _ => entries.binary_search_by(|(k, _)| k.as_str().as_bytes().cmp(name)),
        };
        if let Ok(i) = found {
            self.cursor = i + 1;
        }
        found
    }

    /// Slot of an existing meter, found by raw name bytes. A decoder uses
    /// this before validating a name: bytes equal to a stored name are a
    /// valid name, so only new names need checking.
    pub fn existing(&mut self, name: &[u8]) -> Option<usize> {
        self.locate(name).ok()
    }

    /// Insert a new meter at `at` (from a failed `locate`), applying the
    /// hierarchy rules; returns its final index.
    fn insert(&mut self, at: usize, name: MeterName, meter: Meter) -> Result<usize, HostError> {
        let mut at = at;
        match name.as_str().split_once('/') {
            Some((prefix, _)) => {
                if let Ok(i) = self.host.search(prefix) {
                    self.host.entries.remove(i);
                    if i < at {
                        at -= 1;
                    }
                }
            }
            // Nothing sorts after the last meter: no group to remove.
            None if at == self.host.entries.len() => {}
            None => {
                // The "name/..." group is contiguous and starts where
                // "name/" would sort (after "name-x" and "name.x").
                let group = format!("{}/", name.as_str());
                let start = self
                    .host
                    .entries
                    .partition_point(|(k, _)| k.as_str() < group.as_str());
                let end = start
                    + self.host.entries[start..]
                        .iter()
                        .take_while(|(k, _)| k.as_str().starts_with(&group))
                        .count();
                self.host.entries.drain(start..end);
                if start < at {
                    at -= end - start;
                }
            }
        }
        if self.host.entries.len() >= MAX_METERS_PER_HOST {
            return Err(HostError::Full(name.to_string()));
        }
        self.host.entries.insert(at, (name, meter));
        self.cursor = at + 1;
        Ok(at)
    }

    /// Set a meter, replacing its value.
    pub fn set(&mut self, name: MeterName, value: MeterValue, time: i64) -> Result<(), HostError> {
        let meter = Meter {
            value,
            updated: time,
        };
        match self.locate(name.as_str().as_bytes()) {
            Ok(i) => self.host.entries[i].1 = meter,
            Err(at) => {
                self.insert(at, name, meter)?;
            }
        }
        Ok(())
    }

    /// Write one scalar into the existing meter at `slot`, in place
    /// (without allocating) when it already holds a scalar of the same
    /// kind: the collector's hot path.
    pub fn scalar_at(&mut self, slot: usize, value: ScalarRef<'_>, time: i64) {
        let Some((_, meter)) = self.host.entries.get_mut(slot) else {
            return;
        };
        meter.updated = time;
        if let MeterValue::Scalar(s) = &mut meter.value {
            match (s, value) {
                (Scalar::Int(x), ScalarRef::Int(v)) => return *x = v,
                (Scalar::Frac(x), ScalarRef::Frac(v)) => return *x = v,
                (Scalar::Str(x), ScalarRef::Str(v)) => {
                    x.clear();
                    x.push_str(v);
                    return;
                }
                _ => {}
            }
        }
        meter.value = MeterValue::Scalar(value.to_owned());
    }

    /// Write one scalar by name.
    pub fn scalar(&mut self, name: &str, value: ScalarRef<'_>, time: i64) -> Result<(), HostError> {
        match self.locate(name.as_bytes()) {
            Ok(i) => {
                self.scalar_at(i, value, time);
                Ok(())
            }
            Err(at) => {
                let meter = Meter {
                    value: MeterValue::Scalar(value.to_owned()),
                    updated: time,
                };
                self.insert(at, MeterName::new(name)?, meter).map(|_| ())
            }
        }
    }

    /// The array in the existing meter at `slot`, ready to be written
    /// element by element for sample `time`.
    ///
    /// A `whole` array reuses any existing array of the same kind and length
    /// (every element is about to be overwritten, so nothing is allocated).
    /// A part of a split array reuses it only when it belongs to the same
    /// sample; otherwise the array starts as `total` zero values, and parts
    /// that never arrive stay zero, like the original's missing table cells.
    pub fn array_at(
        &mut self,
        slot: usize,
        kind: Kind,
        total: usize,
        time: i64,
        whole: bool,
    ) -> Option<&mut Array> {
        let (_, meter) = self.host.entries.get_mut(slot)?;
        let fits = matches!(&meter.value, MeterValue::Array(a)
            if a.kind() == kind && a.len() == total && (whole || meter.updated == time));
        if !fits {
            meter.value = MeterValue::Array(Array::zeroed(kind, total));
        }
        meter.updated = time;
        match &mut meter.value {
            MeterValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The array meter `name` for sample `time`; see [`MeterWriter::array_at`].
    pub fn array(
        &mut self,
        name: &str,
        kind: Kind,
        total: usize,
        time: i64,
        whole: bool,
    ) -> Result<&mut Array, HostError> {
        let slot = match self.locate(name.as_bytes()) {
            Ok(i) => i,
            Err(at) => {
                let meter = Meter {
                    value: MeterValue::Array(Array::zeroed(kind, total)),
                    updated: time,
                };
                self.insert(at, MeterName::new(name)?, meter)?
            }
        };
        // The slot holds a meter by now; `None` is not reachable.
        self.array_at(slot, kind, total, time, whole)
            .ok_or_else(|| HostError::Full(name.to_string()))
    }
}
