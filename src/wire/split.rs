//! Cutting one host sample into datagram-sized, self-contained payloads.

use super::{MAX_DATAGRAM, METER_OVERHEAD, MIN_DATAGRAM};
use crate::model::binary::{put_header, put_part, put_record, value_size};
use crate::model::{Array, HostMeters, MeterValue};
use std::fmt;

/// The requested datagram size cannot carry samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError(pub usize);

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagram size {} is outside {MIN_DATAGRAM}..={MAX_DATAGRAM}",
            self.0
        )
    }
}

impl std::error::Error for SplitError {}

/// Most bytes a part record's head takes besides its name: two name-head
/// bytes, the tag and three varints of at most two bytes (values <= 1024).
const PART_HEAD: usize = 3 + 3 * 2;

/// Fills payloads one after another.
struct Packer {
    time: i64,
    limit: usize,
    current: Vec<u8>,
    header_len: usize,
    /// Last name written to `current`, for front coding.
    prev: String,
    scratch: Vec<u8>,
    done: Vec<Vec<u8>>,
}

impl Packer {
    fn new(time: i64, limit: usize) -> Packer {
        let mut current = Vec::with_capacity(limit);
        put_header(&mut current, time);
        let header_len = current.len();
        Packer {
            time,
            limit,
            current,
            header_len,
            prev: String::new(),
            scratch: Vec::new(),
            done: Vec::new(),
        }
    }

    fn room(&self) -> usize {
        self.limit - self.current.len()
    }

    fn is_empty(&self) -> bool {
        self.current.len() == self.header_len
    }

    fn flush(&mut self) {
        if !self.is_empty() {
            let mut next = Vec::with_capacity(self.limit);
            put_header(&mut next, self.time);
            self.done.push(std::mem::replace(&mut self.current, next));
            self.prev.clear();
        }
    }

    fn wrote(&mut self, name: &str) {
        self.prev.clear();
        self.prev.push_str(name);
    }

    /// Append a whole record, starting a new payload when it does not fit
    /// this one (its name is then re-encoded in full); false when it fits
    /// no payload at all.
    fn record(&mut self, name: &str, value: &MeterValue) -> bool {
        loop {
            self.scratch.clear();
            put_record(&mut self.scratch, &self.prev, name, value);
            if self.scratch.len() <= self.room() {
                self.current.extend_from_slice(&self.scratch);
                self.wrote(name);
                return true;
            }
            if self.is_empty() {
                return false;
            }
            self.flush();
        }
    }

    /// Spread an array too large for one payload over part records.
    fn array_parts(&mut self, name: &str, array: &Array) {
        let mut offset = 0;
        while offset < array.len() {
            let mut used = PART_HEAD + name.len();
            let mut n = 0;
            while offset + n < array.len() {
                let size = array.get(offset + n).map_or(0, value_size);
                if used + size > self.room() {
                    break;
                }
                used += size;
                n += 1;
            }
            if n == 0 {
                // split_sample's size check guarantees one element fits an
                // empty payload; stop rather than loop if it ever did not.
                if self.is_empty() {
                    return;
                }
                self.flush();
                continue;
            }
            put_part(&mut self.current, &self.prev, name, array, offset, n);
            self.wrote(name);
            offset += n;
        }
    }
}

/// Encode a host sample as payloads of at most `max_datagram -
/// METER_OVERHEAD` bytes each. Every payload carries the sample time and
/// whole records, so each decodes on its own; an array too large for one
/// payload travels as numbered parts that the receiver reassembles.
pub fn split_sample(
    time: i64,
    meters: &HostMeters,
    max_datagram: usize,
) -> Result<Vec<Vec<u8>>, SplitError> {
    let records = meters.iter().map(|(n, m)| (n.as_str(), &m.value));
    split_records(time, records, max_datagram)
}

/// [`split_sample`] of meters given as names and values in name order
/// (valid names, no group beside a meter of its prefix's name), without
/// a [`HostMeters`] to hold them.
pub fn split_records<'a>(
    time: i64,
    records: impl Iterator<Item = (&'a str, &'a MeterValue)>,
    max_datagram: usize,
) -> Result<Vec<Vec<u8>>, SplitError> {
    if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&max_datagram) {
        return Err(SplitError(max_datagram));
    }
    let mut packer = Packer::new(time, max_datagram - METER_OVERHEAD);
    for (name, value) in records {
        if !packer.record(name, value) {
            if let MeterValue::Array(array) = value {
                packer.array_parts(name, array);
            }
        }
    }
    packer.flush();
    Ok(packer.done)
}
