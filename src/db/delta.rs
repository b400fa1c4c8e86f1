//! Delta frames: a sample stored as its changes against the previous one.
//!
//! Most meters of a host do not change from one minute to the next
//! (hostname, os/*, df/device, mem/total ...), counters move by small
//! steps (uptime), and tables change a few cells at a time. A delta body
//! is only valid when both samples have the same meter names:
//!
//! ```text
//! body    := n:varint  changed:bitmap(n)  change*
//! change  := 0 tagged-value                  (any new value)
//!          | 1 zigzag-varint                 (integer scalar: new - old)
//!          | 2 elements:bitmap(len) element* (array of the same kind and
//!                                             length: changed elements,
//!                                             integers as new - old)
//!          | 3 len:varint ref*               (string array, any length:
//!                                             each element 0 and a new
//!                                             string, or k > 0 for the
//!                                             previous array's element
//!                                             k - 1)
//!          | 4 len:varint item*              (array of any kind and
//!                                             length, by reference)
//! item    := 0 value                         (a new element in full)
//!          | 2k                              (k > 0: the previous
//!                                             array's element k - 1)
//!          | 2k+1 shared:varint suffix:string
//!                                            (k > 0, strings only: the
//!                                             first `shared` bytes of
//!                                             element k - 1, then
//!                                             `suffix`)
//! ```
//!
//! A process table reorders its rows every minute; kinds 3 and 4 store a
//! moved name or pid in a byte instead of again in full, and kind 4 a
//! renamed one (`kworker/u8:0-events` becoming `kworker/u8:0-flush`) as
//! its new ending. The encoder writes whichever of 0, 2, 3 and 4 is
//! shortest; it writes kind 3 only for arrays too long for kind 4's
//! search, and reads every kind.
//!
//! Bitmaps are ceil(bits / 8) bytes, least significant bit first.

use crate::model::binary::{
    put_tagged, put_value, put_varint, unzigzag, zigzag, CodecError, PayloadReader,
};
use crate::model::{Array, HostMeters, Kind, MeterValue, Scalar, ScalarRef};
use std::cell::RefCell;
use std::fmt;

const CHANGE_FULL: u8 = 0;
const CHANGE_INT: u8 = 1;
const CHANGE_ELEMENTS: u8 = 2;
const CHANGE_STR_REFS: u8 = 3;
const CHANGE_REFS: u8 = 4;

/// Longest previous array kind 4 searches element by element (process
/// tables are a few dozen rows); longer string arrays use kind 3's hash.
const REFS_SEARCH_LIMIT: usize = 64;
/// Shortest prefix worth sharing with a previous string.
const MIN_SHARED: usize = 3;

/// Bitwise equality: a frac that changed from 0.0 to -0.0 is a change.
fn same_element(a: ScalarRef<'_>, b: ScalarRef<'_>) -> bool {
    match (a, b) {
        (ScalarRef::Frac(x), ScalarRef::Frac(y)) => x.to_bits() == y.to_bits(),
        (a, b) => a == b,
    }
}

fn same_value(a: &MeterValue, b: &MeterValue) -> bool {
    match (a, b) {
        (MeterValue::Null, MeterValue::Null) => true,
        (MeterValue::Scalar(x), MeterValue::Scalar(y)) => same_element(x.as_ref(), y.as_ref()),
        (MeterValue::Array(x), MeterValue::Array(y)) => {
            x.kind() == y.kind()
                && x.len() == y.len()
                && (0..x.len()).all(|i| match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => same_element(p, q),
                    _ => false,
                })
        }
        _ => false,
    }
}

fn put_bitmap(out: &mut Vec<u8>, bits: impl Iterator<Item = bool>) {
    let mut byte = 0u8;
    let mut n = 0;
    for bit in bits {
        byte |= u8::from(bit) << (n % 8);
        n += 1;
        if n % 8 == 0 {
            out.push(byte);
            byte = 0;
        }
    }
    if n % 8 != 0 {
        out.push(byte);
    }
}

fn bit(map: &[u8], i: usize) -> bool {
    map[i / 8] & (1 << (i % 8)) != 0
}

fn put_change(out: &mut Vec<u8>, old: &MeterValue, new: &MeterValue) {
    let start = out.len();
    put_plain_change(out, old, new);
    let plain = out.len() - start;
    let (MeterValue::Array(a), MeterValue::Array(b)) = (old, new) else {
        return;
    };
    // References take at least a byte an element after kind and length.
    if a.kind() != b.kind() || plain <= 2 + b.len() {
        return;
    }
    // The other form is written after the first, and moved down over it
    // when shorter (no buffer of its own to allocate).
    let refs_at = out.len();
    match (a, b) {
        _ if a.len() <= REFS_SEARCH_LIMIT => put_refs(out, a, b),
        (Array::Str(a), Array::Str(b)) => put_str_refs(out, a, b),
        _ => return,
    }
    if out.len() - refs_at < plain {
        out.copy_within(refs_at.., start);
        out.truncate(out.len() - plain);
    } else {
        out.truncate(refs_at);
    }
}

/// Kind 4: each element of `new` as a reference to an equal element of
/// `old`, as a prefix of one (at least [`MIN_SHARED`] bytes) plus a new
/// ending (strings), or in full. `old` has at most
/// [`REFS_SEARCH_LIMIT`] elements.
fn put_refs(out: &mut Vec<u8>, old: &Array, new: &Array) {
    out.push(CHANGE_REFS);
    put_varint(out, new.len() as u64);
    for (i, e) in (0..new.len()).filter_map(|i| new.get(i).map(|e| (i, e))) {
        let olds = || (0..old.len()).filter_map(|k| old.get(k).map(|o| (k, o)));
        // A row mostly stays where it was: look there first.
        let here = old.get(i).filter(|&o| same_element(o, e)).map(|o| (i, o));
        if let Some((k, _)) = here.or_else(|| olds().find(|&(_, o)| same_element(o, e))) {
            put_varint(out, (k as u64 + 1) << 1);
            continue;
        }
        let ScalarRef::Str(s) = e else {
            put_varint(out, 0);
            put_value(out, e);
            continue;
        };
        let shared_with = |o: &str| {
            let n = o.bytes().zip(s.bytes()).take_while(|(a, b)| a == b).count();
            (0..=n).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
        };
        let best = olds()
            .filter_map(|(k, o)| match o {
                ScalarRef::Str(o) => Some((k, shared_with(o))),
                _ => None,
            })
            .max_by_key(|&(k, n)| (n, std::cmp::Reverse(k)));
        match best {
            Some((k, shared)) if shared >= MIN_SHARED => {
                put_varint(out, ((k as u64 + 1) << 1) | 1);
                put_varint(out, shared as u64);
                put_value(out, ScalarRef::Str(&s[shared..]));
            }
            _ => {
                put_varint(out, 0);
                put_value(out, e);
            }
        }
    }
}

/// Kind 3: each string of `new` as a reference to the same string in
/// `old`, or in full.
fn put_str_refs(out: &mut Vec<u8>, old: &[String], new: &[String]) {
    out.push(CHANGE_STR_REFS);
    put_varint(out, new.len() as u64);
    let index: std::collections::HashMap<&str, usize> = old
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for s in new {
        match index.get(s.as_str()) {
            Some(i) => put_varint(out, *i as u64 + 1),
            None => {
                put_varint(out, 0);
                put_value(out, ScalarRef::Str(s));
            }
        }
    }
}

fn put_plain_change(out: &mut Vec<u8>, old: &MeterValue, new: &MeterValue) {
    match (old, new) {
        (MeterValue::Scalar(Scalar::Int(a)), MeterValue::Scalar(Scalar::Int(b))) => {
            out.push(CHANGE_INT);
            put_varint(out, zigzag(b.wrapping_sub(*a)));
        }
        (MeterValue::Array(a), MeterValue::Array(b))
            if a.kind() == b.kind() && a.len() == b.len() =>
        {
            out.push(CHANGE_ELEMENTS);
            let changed = |i| match (a.get(i), b.get(i)) {
                (Some(p), Some(q)) => !same_element(p, q),
                _ => true,
            };
            put_bitmap(out, (0..a.len()).map(changed));
            for i in (0..a.len()).filter(|&i| changed(i)) {
                match (a.get(i), b.get(i)) {
                    (Some(ScalarRef::Int(p)), Some(ScalarRef::Int(q))) => {
                        put_varint(out, zigzag(q.wrapping_sub(p)))
                    }
                    (_, Some(q)) => put_value(out, q),
                    (_, None) => {}
                }
            }
        }
        _ => {
            out.push(CHANGE_FULL);
            put_tagged(out, new);
        }
    }
}

/// Encode `cur` as changes against `prev` into `out`; false (and nothing
/// written) when their meter names differ, so a full frame is needed.
pub fn encode(prev: &HostMeters, cur: &HostMeters, out: &mut Vec<u8>) -> bool {
    encode_known(prev, cur, None, out)
}

/// Changes of a sample already known: a delta body against the previous
/// sample, of a sample that differs from the one to encode at most in
/// the meters `touched` says (see [`rebase_changes`]).
pub struct Known<'a> {
    /// The delta body.
    pub changes: &'a [u8],
    /// Whether the meter at an index may differ from what `changes` says.
    pub touched: &'a dyn Fn(usize) -> bool,
}

/// [`encode`], from the changes `known` when given: the meters it leaves
/// alone are copied, not compared (the same bytes either way).
pub fn encode_known(
    prev: &HostMeters,
    cur: &HostMeters,
    known: Option<&Known<'_>>,
    out: &mut Vec<u8>,
) -> bool {
    if !prev.same_names(cur) {
        return false;
    }
    let start = out.len();
    if let Some(k) = known {
        if rebase_changes(prev, k.changes, cur, k.touched, out).is_ok() {
            debug_assert!(
                {
                    let mut fresh = Vec::new();
                    encode_changes(prev, cur, &mut fresh);
                    fresh == out[start..]
                },
                "known changes differ from the changes"
            );
            return true;
        }
        out.truncate(start);
    }
    encode_changes(prev, cur, out);
    true
}

/// [`encode`] for samples whose meter names the caller has already found
/// equal (a body written for different names would not decode).
pub(crate) fn encode_changes(prev: &HostMeters, cur: &HostMeters, out: &mut Vec<u8>) {
    debug_assert!(prev.same_names(cur));
    put_varint(out, cur.len() as u64);
    // One pass: each changed meter sets its bit and writes its change.
    let map = out.len();
    out.resize(map + cur.len().div_ceil(8), 0);
    for (i, ((_, a), (_, b))) in prev.iter().zip(cur.iter()).enumerate() {
        if !same_value(&a.value, &b.value) {
            out[map + i / 8] |= 1 << (i % 8);
            put_change(out, &a.value, &b.value);
        }
    }
}

/// `cur` as changes against `reference`, exactly as [`encode_changes`]
/// writes them, from `old` (the changes against `reference` of a sample
/// that differs from `cur` at most in the meters `touched` says): a meter
/// left alone keeps its change in `old` byte for byte, and only the
/// touched ones are compared. The samples have the same meter names.
///
/// Two uses: a host's last sample is kept against another host's (see
/// `ParkedWriter::after`), which differs in most meters, most of which do
/// not change from one minute to the next (the meters touched are those
/// the frame just stored changed); and a write cycle's frame is the
/// host's packed changes plus the collector's own meters.
pub(crate) fn rebase_changes(
    reference: &HostMeters,
    old: &[u8],
    cur: &HostMeters,
    touched: impl Fn(usize) -> bool,
    out: &mut Vec<u8>,
) -> Result<(), DeltaError> {
    let n = reference.len();
    if cur.len() != n {
        return Err(DeltaError::Inconsistent(
            "meter count differs from the reference",
        ));
    }
    let mut olds = PayloadReader::bare(old);
    let old_map = changes_map(&mut olds, n)?;
    put_varint(out, n as u64);
    let map = out.len();
    out.resize(map + n.div_ceil(8), 0);
    for (i, ((_, r), (_, c))) in reference.iter().zip(cur.iter()).enumerate() {
        let start = olds.position();
        if bit(old_map, i) {
            skip_change(&mut olds, &r.value)?;
        }
        let changed = if touched(i) {
            let changed = !same_value(&r.value, &c.value);
            if changed {
                put_change(out, &r.value, &c.value);
            }
            changed
        } else {
            let kept = old.get(start..olds.position()).unwrap_or_default();
            out.extend_from_slice(kept);
            !kept.is_empty()
        };
        if changed {
            out[map + i / 8] |= 1 << (i % 8);
        }
    }
    if !olds.at_end() {
        return Err(DeltaError::Inconsistent("bytes left after the last change"));
    }
    Ok(())
}

/// The bitmap of the meters a delta body changes, read after its meter
/// count, which must be `n` (the sample it changes has `n` meters).
fn changes_map<'a>(r: &mut PayloadReader<'a>, n: usize) -> Result<&'a [u8], DeltaError> {
    if r.read_varint()? != n as u64 {
        return Err(DeltaError::Inconsistent(
            "meter count differs from the previous sample",
        ));
    }
    Ok(r.read_bytes(n.div_ceil(8))?)
}

/// Which of `n` meters the delta body `body` changes, as a test of
/// each meter's index.
pub(crate) fn changed_meters(
    body: &[u8],
    n: usize,
) -> Result<impl Fn(usize) -> bool + '_, DeltaError> {
    let map = changes_map(&mut PayloadReader::bare(body), n)?;
    Ok(move |i: usize| bit(map, i))
}

/// Step over one change against `old` (the value it changes), checked
/// as [`apply`] reads it.
fn skip_change(r: &mut PayloadReader<'_>, old: &MeterValue) -> Result<(), DeltaError> {
    let mode = r.read_bytes(1)?[0];
    let items = |r: &mut PayloadReader<'_>| -> Result<usize, DeltaError> {
        let len = usize::try_from(r.read_varint()?).unwrap_or(usize::MAX);
        if len > crate::model::MAX_ARRAY_LEN {
            return Err(DeltaError::Inconsistent("array too long"));
        }
        Ok(len)
    };
    match (mode, old) {
        (CHANGE_FULL, _) => r.skip_tagged()?,
        (CHANGE_INT, MeterValue::Scalar(Scalar::Int(_))) => {
            r.read_varint()?;
        }
        (CHANGE_ELEMENTS, MeterValue::Array(a)) => {
            let elements = r.read_bytes(a.len().div_ceil(8))?;
            for _ in (0..a.len()).filter(|&e| bit(elements, e)) {
                match a.kind() {
                    Kind::Int => drop(r.read_varint()?),
                    kind => drop(r.read_value(kind)?),
                }
            }
        }
        (CHANGE_STR_REFS, MeterValue::Array(Array::Str(_))) => {
            for _ in 0..items(r)? {
                if r.read_varint()? == 0 {
                    r.read_value(Kind::Str)?;
                }
            }
        }
        (CHANGE_REFS, MeterValue::Array(a)) => {
            for _ in 0..items(r)? {
                match r.read_varint()? {
                    0 => drop(r.read_value(a.kind())?),
                    item if item & 1 == 1 => {
                        r.read_varint()?;
                        r.read_value(Kind::Str)?;
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err(DeltaError::Inconsistent(
                "change does not fit the meter's value",
            ))
        }
    }
    Ok(())
}

/// The body of a delta that changes nothing in a sample of `n` meters
/// (what [`encode`] makes of two equal samples, without comparing them).
pub fn unchanged(n: usize, out: &mut Vec<u8>) {
    put_varint(out, n as u64);
    out.resize(out.len() + n.div_ceil(8), 0);
}

/// A delta body that does not fit the sample it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// A value inside the body is malformed.
    Codec(CodecError),
    /// The body does not match the previous sample's shape.
    Inconsistent(&'static str),
}

impl fmt::Display for DeltaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeltaError::Codec(e) => write!(f, "delta frame: {e}"),
            DeltaError::Inconsistent(what) => write!(f, "delta frame: {what}"),
        }
    }
}

impl std::error::Error for DeltaError {}

impl From<CodecError> for DeltaError {
    fn from(e: CodecError) -> DeltaError {
        DeltaError::Codec(e)
    }
}

/// Turn `state` (the previous sample) into the sample a delta body
/// describes, stamped with `time`. On error `state` is unusable and the
/// caller must wait for the next full frame.
pub fn apply(state: &mut HostMeters, body: &[u8], time: i64) -> Result<(), DeltaError> {
    let mut r = PayloadReader::bare(body);
    let n = state.len();
    let map = changes_map(&mut r, n)?;
    for i in (0..n).filter(|&i| bit(map, i)) {
        let Some(meter) = state.nth_mut(i) else {
            return Err(DeltaError::Inconsistent("meter index out of range"));
        };
        let mode = r.read_bytes(1)?[0];
        match (mode, &mut meter.value) {
            (CHANGE_FULL, value) => *value = r.read_tagged()?,
            (CHANGE_INT, MeterValue::Scalar(Scalar::Int(v))) => {
                *v = v.wrapping_add(unzigzag(r.read_varint()?));
            }
            (CHANGE_STR_REFS, MeterValue::Array(old @ Array::Str(_))) => {
                let len = usize::try_from(r.read_varint()?).unwrap_or(usize::MAX);
                if len > crate::model::MAX_ARRAY_LEN {
                    return Err(DeltaError::Inconsistent("string array too long"));
                }
                rebuild(old, |new, old| {
                    for _ in 0..len {
                        match usize::try_from(r.read_varint()?).unwrap_or(usize::MAX) {
                            0 => new.push(r.read_value(Kind::Str)?, "")?,
                            k => match old.get(k - 1) {
                                Some(s) => new.push(s, "")?,
                                None => {
                                    return Err(DeltaError::Inconsistent(
                                        "reference past the previous array",
                                    ))
                                }
                            },
                        }
                    }
                    Ok(())
                })?;
            }
            (CHANGE_REFS, MeterValue::Array(old)) => {
                rebuild(old, |new, old| apply_refs(&mut r, old, new))?
            }
            (CHANGE_ELEMENTS, MeterValue::Array(array)) => {
                let len = array.len();
                let elements = r.read_bytes(len.div_ceil(8))?;
                let kind = array.kind();
                for e in (0..len).filter(|&e| bit(elements, e)) {
                    if let Array::Int(v) = &mut *array {
                        v[e] = v[e].wrapping_add(unzigzag(r.read_varint()?));
                    } else {
                        array.set(e, r.read_value(kind)?);
                    }
                }
            }
            _ => {
                return Err(DeltaError::Inconsistent(
                    "change does not fit the meter's value",
                ))
            }
        }
    }
    if !r.at_end() {
        return Err(DeltaError::Inconsistent("bytes left after the last change"));
    }
    state.stamp(time);
    Ok(())
}

/// Read a kind 4 change against the previous array `old` into `new`.
fn apply_refs(
    r: &mut PayloadReader<'_>,
    old: &Array,
    new: &mut Rebuilt<'_>,
) -> Result<(), DeltaError> {
    let len = usize::try_from(r.read_varint()?).unwrap_or(usize::MAX);
    if len > crate::model::MAX_ARRAY_LEN {
        return Err(DeltaError::Inconsistent("array too long"));
    }
    let kind = old.kind();
    for _ in 0..len {
        let item = r.read_varint()?;
        let k = usize::try_from(item >> 1).unwrap_or(usize::MAX);
        if item == 0 {
            new.push(r.read_value(kind)?, "")?;
            continue;
        }
        let Some(element) = k.checked_sub(1).and_then(|k| old.get(k)) else {
            return Err(DeltaError::Inconsistent(
                "reference past the previous array",
            ));
        };
        if item & 1 == 0 {
            new.push(element, "")?;
            continue;
        }
        let ScalarRef::Str(prefix) = element else {
            return Err(DeltaError::Inconsistent(
                "an edit of an element not a string",
            ));
        };
        let shared = usize::try_from(r.read_varint()?).unwrap_or(usize::MAX);
        let ScalarRef::Str(suffix) = r.read_value(Kind::Str)? else {
            return Err(DeltaError::Inconsistent("not a string"));
        };
        if shared > prefix.len()
            || !prefix.is_char_boundary(shared)
            || shared + suffix.len() > crate::model::MAX_STRING_LEN
        {
            return Err(DeltaError::Inconsistent(
                "an edit that does not fit its string",
            ));
        }
        new.push(ScalarRef::Str(&prefix[..shared]), suffix)?;
    }
    Ok(())
}

/// Spare array buffers of one thread.
#[derive(Default)]
struct Spare {
    ints: Vec<i64>,
    fracs: Vec<f64>,
    strs: Vec<String>,
}

thread_local! {
    /// Each thread's spare buffers: a changed array is rebuilt in them and
    /// swapped with the old one, whose buffers (strings included) wait for
    /// the next. A write cycle applies a delta to every host's process
    /// table; rebuilding each in fresh strings made allocation a tenth of
    /// the collector's time.
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// An array being rebuilt, element by element, in a thread's spare
/// buffers.
struct Rebuilt<'a> {
    kind: Kind,
    spare: &'a mut Spare,
    /// Strings written so far (the spare holds more, to be reused).
    strs: usize,
}

impl Rebuilt<'_> {
    /// Append an element; a string is `value` followed by `ending`.
    fn push(&mut self, value: ScalarRef<'_>, ending: &str) -> Result<(), DeltaError> {
        match (self.kind, value) {
            (Kind::Int, ScalarRef::Int(x)) => self.spare.ints.push(x),
            (Kind::Frac, ScalarRef::Frac(x)) => self.spare.fracs.push(x),
            (Kind::Str, ScalarRef::Str(s)) => {
                match self.spare.strs.get_mut(self.strs) {
                    Some(t) => {
                        t.clear();
                        t.push_str(s);
                        t.push_str(ending);
                    }
                    None => self.spare.strs.push([s, ending].concat()),
                }
                self.strs += 1;
            }
            _ => return Err(DeltaError::Inconsistent("an element of another kind")),
        }
        Ok(())
    }
}

/// Replace `array` with what `build` makes from it, built in the
/// thread's spare buffers (see [`SPARE`]). On error `array` is unchanged.
fn rebuild(
    array: &mut Array,
    build: impl FnOnce(&mut Rebuilt<'_>, &Array) -> Result<(), DeltaError>,
) -> Result<(), DeltaError> {
    SPARE.with_borrow_mut(|spare| {
        spare.ints.clear();
        spare.fracs.clear();
        let mut new = Rebuilt {
            kind: array.kind(),
            spare,
            strs: 0,
        };
        build(&mut new, array)?;
        let strs = new.strs;
        match array {
            Array::Int(v) => std::mem::swap(v, &mut spare.ints),
            Array::Frac(v) => std::mem::swap(v, &mut spare.fracs),
            Array::Str(v) => {
                spare.strs.truncate(strs);
                std::mem::swap(v, &mut spare.strs);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MeterName;

    fn host(pairs: &[(&str, MeterValue)]) -> HostMeters {
        let mut h = HostMeters::new();
        for (n, v) in pairs {
            h.set(MeterName::new(n).unwrap(), v.clone(), 0).unwrap();
        }
        h
    }

    #[test]
    fn delta_round_trip_is_small_and_exact() {
        let s = |x: &str| MeterValue::Scalar(Scalar::Str(x.into()));
        let i = |x: i64| MeterValue::Scalar(Scalar::Int(x));
        let f = |x: f64| MeterValue::Scalar(Scalar::Frac(x));
        let a = host(&[
            ("hostname", s("web")),
            ("uptime", i(1000)),
            ("pcpu", f(1.5)),
            ("neg", f(0.0)),
            ("top/pid", MeterValue::Array(Array::Int(vec![1, 2, 3]))),
            (
                "top/name",
                MeterValue::Array(Array::Str(vec!["a".into(), "b".into(), "c".into()])),
            ),
            ("n", MeterValue::Null),
        ]);
        let b = host(&[
            ("hostname", s("web")),
            ("uptime", i(1060)),
            ("pcpu", f(2.25)),
            ("neg", f(-0.0)),
            ("top/pid", MeterValue::Array(Array::Int(vec![1, 9, 3]))),
            (
                "top/name",
                MeterValue::Array(Array::Str(vec!["a".into(), "x".into(), "c".into()])),
            ),
            ("n", i(5)),
        ]);
        let mut body = Vec::new();
        assert!(encode(&a, &b, &mut body));
        assert!(body.len() < 30, "{} bytes: {body:?}", body.len());
        let mut state = a.clone();
        apply(&mut state, &body, 60).unwrap();
        let mut want = b.clone();
        want.stamp(60);
        assert_eq!(state, want);
        match &state.get("neg").unwrap().value {
            MeterValue::Scalar(Scalar::Frac(x)) => assert!(x.is_sign_negative()),
            other => panic!("{other:?}"),
        }
        // A reordered, shorter, partly new table: names by reference.
        let names =
            |v: &[&str]| MeterValue::Array(Array::Str(v.iter().map(|s| s.to_string()).collect()));
        let t0 = host(&[(
            "top/name",
            names(&[
                "opticon-collector",
                "kworker/u8:2-events",
                "systemd",
                "sshd",
            ]),
        )]);
        let t1 = host(&[(
            "top/name",
            names(&["systemd", "opticon-collector", "new-one", "systemd"]),
        )]);
        let mut refs = Vec::new();
        assert!(encode(&t0, &t1, &mut refs));
        assert!(refs.len() < 20, "{} bytes", refs.len());
        let mut state = t0.clone();
        apply(&mut state, &refs, 0).unwrap();
        let mut want = t1.clone();
        want.stamp(0);
        assert_eq!(state, want);
        let mut bad = refs.clone();
        let at = bad.len() - 1;
        bad[at] = 9;
        assert!(
            apply(&mut t0.clone(), &bad, 0).is_err(),
            "a reference too far"
        );
        let c = host(&[("other", i(1))]);
        assert!(
            !encode(&a, &c, &mut Vec::new()),
            "different names need a full frame"
        );
        assert!(apply(&mut a.clone(), &body[..body.len() - 1], 0).is_err());
    }

    #[test]
    fn reordered_and_renamed_rows_cost_their_new_endings() {
        let names =
            |v: &[&str]| MeterValue::Array(Array::Str(v.iter().map(|s| s.to_string()).collect()));
        let pids = |v: &[i64]| MeterValue::Array(Array::Int(v.to_vec()));
        let t0 = host(&[
            (
                "top/name",
                names(&[
                    "kworker/u8:0-events_unbound",
                    "opticon-collector",
                    "bash",
                    "é-x",
                ]),
            ),
            ("top/pid", pids(&[12, 4851, 1169, 77])),
        ]);
        let t1 = host(&[
            (
                "top/name",
                names(&["opticon-collector", "kworker/u8:0-ext4-rsv", "bash", "é-y"]),
            ),
            ("top/pid", pids(&[4851, 12, 1169, 31337])),
        ]);
        let mut body = Vec::new();
        assert!(encode(&t0, &t1, &mut body));
        // Two meters' bitmap, then per table: kind, length, a byte per
        // moved row; the renamed rows carry only their new endings.
        let endings = "ext4-rsv".len() + "y".len();
        assert!(
            body.len() <= 2 + 2 * 2 + 2 * 4 + 2 * 2 + endings + 4,
            "{body:?}"
        );
        let mut state = t0.clone();
        apply(&mut state, &body, 60).unwrap();
        let mut want = t1.clone();
        want.stamp(60);
        assert_eq!(state, want);

        // Hostile kind 4 changes are refused, never applied past the
        // strings they edit.
        let one = host(&[("t", names(&["é"])), ("p", pids(&[5]))]);
        let bad = |change: &[u8], bits: u8| {
            let mut b = vec![2, bits];
            b.extend_from_slice(change);
            apply(&mut one.clone(), &b, 0).is_err()
        };
        // Meters are in name order: bit 0 is "p", bit 1 is "t".
        assert!(bad(&[CHANGE_REFS, 1, 3, 0, 0], 1), "an edit of an integer");
        assert!(bad(&[CHANGE_REFS, 1, 3, 3, 0], 2), "shared past the string");
        assert!(bad(&[CHANGE_REFS, 1, 3, 1, 0], 2), "inside a character");
        assert!(bad(&[CHANGE_REFS, 1, 1], 2), "an edit of no element");
        assert!(bad(&[CHANGE_REFS, 1, 4], 2), "a reference too far");
        assert!(!bad(&[CHANGE_REFS, 2, 3, 2, 1, b'z', 2], 2), "a valid edit");
    }

    /// Rebasing the last sample's changes against another host's sample
    /// writes exactly what encoding the new sample against it writes, over
    /// many minutes of a host whose meters come and go and whose tables
    /// move, and for a meter that changes type; a body that does not fit
    /// is refused.
    #[test]
    fn rebased_changes_are_the_changes_encoded_afresh() {
        let mut other = crate::fleet::FakeHost::new(77);
        let mut host = crate::fleet::FakeHost::new(5);
        let mut prev = host.sample(1_000_000);
        let mut reference = other.sample(1_000_000);
        let (mut rebased, mut stepped) = (0, 0);
        for minute in 1..400 {
            let mut cur = host.sample(1_000_000 + minute * 60);
            if minute % 50 == 0 {
                // A type change: written in full.
                let name = MeterName::new("uptime").unwrap();
                cur.set(name, MeterValue::Scalar(Scalar::Str("long".into())), 0)
                    .unwrap();
            }
            if !reference.same_names(&prev) {
                reference = other.sample(1_000_000 + minute * 60);
                while !reference.same_names(&prev) {
                    reference = other.sample(1_000_000 + minute * 60);
                }
            }
            if !cur.same_names(&prev) {
                prev = cur;
                continue;
            }
            let mut old = Vec::new();
            encode_changes(&reference, &prev, &mut old);
            let mut step = Vec::new();
            encode_changes(&prev, &cur, &mut step);
            let mut want = Vec::new();
            encode_changes(&reference, &cur, &mut want);
            let mut got = Vec::new();
            let touched = changed_meters(&step, cur.len()).unwrap();
            rebase_changes(&reference, &old, &cur, &touched, &mut got).unwrap();
            assert_eq!(got, want, "minute {minute}");
            // Touching every meter compares them all: the same again.
            got.clear();
            rebase_changes(&reference, &old, &cur, |_| true, &mut got).unwrap();
            assert_eq!(got, want, "minute {minute}, all touched");
            rebased += 1;
            stepped += step.len();
            // The wrong previous changes, or none at all, are refused.
            let mut junk = Vec::new();
            assert!(rebase_changes(&reference, &step[..1], &cur, &touched, &mut junk).is_err());
            assert!(changed_meters(&step[..1], cur.len()).is_err());
            // What a write cycle does: the changes of the sample as it
            // came, and two meters the collector sets after.
            let mut judged = cur.clone();
            for (name, value) in [("status", "WARN"), ("uptime", "judged")] {
                let name = MeterName::new(name).unwrap();
                let _ = judged.set(name, MeterValue::Scalar(Scalar::Str(value.into())), 0);
            }
            if judged.same_names(&cur) {
                let own = ["status", "uptime"].map(|n| judged.position(n));
                let touched = |i| own.contains(&Some(i));
                let known = Known {
                    changes: &want,
                    touched: &touched,
                };
                let (mut got, mut fresh) = (Vec::new(), Vec::new());
                assert!(encode_known(&reference, &judged, Some(&known), &mut got));
                assert!(encode(&reference, &judged, &mut fresh));
                assert_eq!(got, fresh, "minute {minute}, judged");
            }
            prev = cur;
        }
        assert!(rebased > 200 && stepped > 0, "{rebased} minutes compared");
    }
}
