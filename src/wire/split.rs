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

/// Largest bytes a part record's head can take besides its name: length
/// byte, tag and three varints of at most three bytes.
const PART_HEAD: usize = 2 + 3 * 3;

struct Packer {
    time: i64,
    limit: usize,
    current: Vec<u8>,
    header_len: usize,
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
            done: Vec::new(),
        }
    }

    fn room(&self) -> usize {
        self.limit - self.current.len()
    }

    fn flush(&mut self) {
        if self.current.len() > self.header_len {
            let mut next = Vec::with_capacity(self.limit);
            put_header(&mut next, self.time);
            self.done.push(std::mem::replace(&mut self.current, next));
        }
    }

    fn record(&mut self, record: &[u8]) -> bool {
        if record.len() > self.room() {
            self.flush();
        }
        if record.len() > self.room() {
            return false;
        }
        self.current.extend_from_slice(record);
        true
    }

    /// Spread an array too large for one payload over part records.
    fn array_parts(&mut self, name: &str, array: &Array) {
        let mut offset = 0;
        while offset < array.len() {
            let head = PART_HEAD + name.len();
            let mut used = head;
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
                // Not even one element fits after what is already packed:
                // start a fresh payload (split_sample's size check
                // guarantees one element fits in an empty one).
                if self.current.len() == self.header_len {
                    return;
                }
                self.flush();
                continue;
            }
            put_part(&mut self.current, name, array, offset, n);
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
    if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&max_datagram) {
        return Err(SplitError(max_datagram));
    }
    let mut packer = Packer::new(time, max_datagram - METER_OVERHEAD);
    let mut record = Vec::with_capacity(256);
    for (name, meter) in meters.iter() {
        record.clear();
        put_record(&mut record, name.as_str(), &meter.value);
        if !packer.record(&record) {
            if let MeterValue::Array(array) = &meter.value {
                packer.array_parts(name.as_str(), array);
            }
        }
    }
    packer.flush();
    Ok(packer.done)
}
