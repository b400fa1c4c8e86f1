//! The binary sample codec: a host's meters at one sample time, lossless.
//!
//! One format serves the wire (inside sealed datagrams) and storage. The
//! byte layout is specified in `man 7 opticon-protocol`; in short:
//!
//! ```text
//! payload := version:u8 (=1)  time:zigzag-varint  record*
//! record  := namelen:u8 (1..=63)  name  tag:u8  body
//! tag     := kind (bits 0-1: 0 int, 1 frac, 2 string, 3 null)
//!          | shape << 2 (0 scalar, 1 array, 2 array part); bits 4-7 zero
//! body    := value                          (scalar)
//!          | n:varint value{n}              (array)
//!          | total offset n:varint value{n} (part of a split array)
//! ```
//!
//! Records run to the end of the payload; there is no count, so a payload
//! can be cut between any two records and each piece stays decodable.

use super::host::{HostError, HostMeters};
use super::name::{self, NameError, MAX_NAME_LEN};
use super::value::{Array, Kind, MeterValue, ScalarRef, MAX_ARRAY_LEN, MAX_STRING_LEN};
use std::fmt;

/// Version byte that starts every payload this code writes.
pub const CODEC_VERSION: u8 = 1;

const KIND_INT: u8 = 0;
const KIND_FRAC: u8 = 1;
const KIND_STR: u8 = 2;
const KIND_NULL: u8 = 3;
const SHAPE_SCALAR: u8 = 0;
const SHAPE_ARRAY: u8 = 1;
const SHAPE_PART: u8 = 2;

/// Fraction scales tried for the compact decimal form of a frac.
const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Marker in the low three bits of a frac's varint: raw IEEE-754 follows.
const FRAC_RAW: u64 = 7;
/// Largest mantissa of the decimal form (integers are exact below 2^53).
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// What is wrong with a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecErrorKind {
    /// The payload ends in the middle of a field.
    Truncated,
    /// The version byte is not one this code reads.
    UnsupportedVersion(u8),
    /// A varint longer than 10 bytes or above 64 bits.
    BadVarint,
    /// A record's name is invalid.
    BadName(NameError),
    /// A tag with reserved bits or an unknown shape.
    BadTag(u8),
    /// A string longer than the model allows.
    StringTooLong(usize),
    /// An array longer than the model allows.
    ArrayTooLong(usize),
    /// A split-array part whose offset and length do not fit its total.
    BadPart,
    /// String bytes that are not UTF-8.
    BadUtf8,
    /// A fraction that is infinite or not a number.
    NotFinite,
}

/// A malformed payload, with the byte offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// Offset into the payload.
    pub offset: usize,
    /// What was wrong there.
    pub kind: CodecErrorKind,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed payload at byte {}: ", self.offset)?;
        match &self.kind {
            CodecErrorKind::Truncated => write!(f, "truncated"),
            CodecErrorKind::UnsupportedVersion(v) => write!(f, "unsupported codec version {v}"),
            CodecErrorKind::BadVarint => write!(f, "bad varint"),
            CodecErrorKind::BadName(e) => write!(f, "{e}"),
            CodecErrorKind::BadTag(t) => write!(f, "bad tag 0x{t:02x}"),
            CodecErrorKind::StringTooLong(n) => write!(f, "string of {n} bytes"),
            CodecErrorKind::ArrayTooLong(n) => write!(f, "array of {n} elements"),
            CodecErrorKind::BadPart => write!(f, "array part out of range"),
            CodecErrorKind::BadUtf8 => write!(f, "string is not UTF-8"),
            CodecErrorKind::NotFinite => write!(f, "fraction is not finite"),
        }
    }
}

impl std::error::Error for CodecError {}

// ---------------------------------------------------------------- writing

/// Append an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_frac(out: &mut Vec<u8>, f: f64) {
    for (k, scale) in POW10.iter().enumerate() {
        let scaled = f * scale;
        if scaled.abs() < EXACT_LIMIT {
            let m = scaled.round() as i64;
            if (m as f64 / scale).to_bits() == f.to_bits() {
                put_varint(out, (zigzag(m) << 3) | k as u64);
                return;
            }
        }
    }
    put_varint(out, FRAC_RAW);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

fn put_value(out: &mut Vec<u8>, v: ScalarRef<'_>) {
    match v {
        ScalarRef::Int(i) => put_varint(out, zigzag(i)),
        ScalarRef::Frac(f) => put_frac(out, f),
        ScalarRef::Str(s) => {
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn kind_bits(kind: Kind) -> u8 {
    match kind {
        Kind::Int => KIND_INT,
        Kind::Frac => KIND_FRAC,
        Kind::Str => KIND_STR,
    }
}

/// Start a payload: version byte and sample time.
pub fn put_header(out: &mut Vec<u8>, time: i64) {
    out.push(CODEC_VERSION);
    put_varint(out, zigzag(time));
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

/// Append one whole meter record.
pub fn put_record(out: &mut Vec<u8>, name: &str, value: &MeterValue) {
    put_name(out, name);
    match value {
        MeterValue::Null => out.push(KIND_NULL | (SHAPE_SCALAR << 2)),
        MeterValue::Scalar(s) => {
            out.push(kind_bits(s.kind()) | (SHAPE_SCALAR << 2));
            put_value(out, s.as_ref());
        }
        MeterValue::Array(a) => {
            out.push(kind_bits(a.kind()) | (SHAPE_ARRAY << 2));
            put_varint(out, a.len() as u64);
            for i in 0..a.len() {
                if let Some(v) = a.get(i) {
                    put_value(out, v);
                }
            }
        }
    }
}

/// Append a record carrying elements `offset..offset + n` of `array`, for
/// arrays too large for one datagram.
pub fn put_part(out: &mut Vec<u8>, name: &str, array: &Array, offset: usize, n: usize) {
    put_name(out, name);
    out.push(kind_bits(array.kind()) | (SHAPE_PART << 2));
    put_varint(out, array.len() as u64);
    put_varint(out, offset as u64);
    put_varint(out, n as u64);
    for i in offset..offset + n {
        if let Some(v) = array.get(i) {
            put_value(out, v);
        }
    }
}

/// Encoded size of one element, for packing decisions.
pub fn value_size(v: ScalarRef<'_>) -> usize {
    let mut scratch = Vec::with_capacity(16);
    put_value(&mut scratch, v);
    scratch.len()
}

/// Encode every meter of a host as one payload (storage has no size cap).
pub fn encode_sample(time: i64, meters: &HostMeters) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + meters.len() * 16);
    put_header(&mut out, time);
    for (name, meter) in meters.iter() {
        put_record(&mut out, name.as_str(), &meter.value);
    }
    out
}

// ---------------------------------------------------------------- reading

/// How a record's values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A null meter; no values follow.
    Null,
    /// One value.
    Scalar,
    /// A whole array of `len` values.
    Array {
        /// Number of values.
        len: usize,
    },
    /// Values `offset..offset + len` of an array of `total`.
    Part {
        /// Length of the whole array.
        total: usize,
        /// Index of the first value carried here.
        offset: usize,
        /// Number of values carried here.
        len: usize,
    },
}

impl Shape {
    /// Number of values that follow the record head.
    pub fn values(self) -> usize {
        match self {
            Shape::Null => 0,
            Shape::Scalar => 1,
            Shape::Array { len } | Shape::Part { len, .. } => len,
        }
    }
}

/// The head of one record; its values are read with
/// [`PayloadReader::next_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead<'a> {
    /// Validated meter name.
    pub name: &'a str,
    /// Element type (meaningless for [`Shape::Null`]).
    pub kind: Kind,
    /// Layout of the values.
    pub shape: Shape,
}

/// A zero-copy reader over one payload.
///
/// Every length is checked against the model's limits before anything is
/// allocated, so hostile input costs at most its own size.
pub struct PayloadReader<'a> {
    buf: &'a [u8],
    pos: usize,
    time: i64,
    kind: Kind,
    remaining: usize,
}

impl<'a> PayloadReader<'a> {
    /// Read the payload header.
    pub fn new(buf: &'a [u8]) -> Result<PayloadReader<'a>, CodecError> {
        let mut r = PayloadReader {
            buf,
            pos: 0,
            time: 0,
            kind: Kind::Int,
            remaining: 0,
        };
        let version = r.byte()?;
        if version != CODEC_VERSION {
            return Err(CodecError {
                offset: 0,
                kind: CodecErrorKind::UnsupportedVersion(version),
            });
        }
        r.time = unzigzag(r.varint()?);
        Ok(r)
    }

    /// Sample time of every record in this payload.
    pub fn time(&self) -> i64 {
        self.time
    }

    fn fail<T>(&self, kind: CodecErrorKind) -> Result<T, CodecError> {
        Err(CodecError {
            offset: self.pos,
            kind,
        })
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(CodecErrorKind::Truncated),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() - self.pos < n {
            return self.fail(CodecErrorKind::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return self.fail(CodecErrorKind::BadVarint);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail(CodecErrorKind::BadVarint)
    }

    fn length(
        &mut self,
        limit: usize,
        too_long: fn(usize) -> CodecErrorKind,
    ) -> Result<usize, CodecError> {
        let v = self.varint()?;
        if v > limit as u64 {
            return self.fail(too_long(usize::try_from(v).unwrap_or(usize::MAX)));
        }
        Ok(v as usize)
    }

    /// The next record head, skipping any values of the previous record
    /// that were not read; `None` at the end of the payload.
    pub fn next_record(&mut self) -> Result<Option<RecordHead<'a>>, CodecError> {
        while self.remaining > 0 {
            self.next_value()?;
        }
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let name_len = usize::from(self.byte()?);
        if name_len == 0 || name_len > MAX_NAME_LEN {
            let kind = if name_len == 0 {
                NameError::Empty
            } else {
                NameError::TooLong(name_len)
            };
            return self.fail(CodecErrorKind::BadName(kind));
        }
        let name_at = self.pos;
        let raw = self.take(name_len)?;
        // Valid names are ASCII, so the UTF-8 check cannot fail after
        // validation; doing it first keeps the error precise.
        let name = std::str::from_utf8(raw).map_err(|_| CodecError {
            offset: name_at,
            kind: CodecErrorKind::BadName(NameError::BadCharacter('\u{fffd}')),
        })?;
        name::validate(name).map_err(|e| CodecError {
            offset: name_at,
            kind: CodecErrorKind::BadName(e),
        })?;
        let tag = self.byte()?;
        let kind = match tag & 3 {
            KIND_INT => Kind::Int,
            KIND_FRAC => Kind::Frac,
            KIND_STR => Kind::Str,
            _ => Kind::Int,
        };
        let shape = match (tag & 3, tag >> 2) {
            (KIND_NULL, SHAPE_SCALAR) => Shape::Null,
            (KIND_NULL, _) => return self.fail(CodecErrorKind::BadTag(tag)),
            (_, SHAPE_SCALAR) => Shape::Scalar,
            (_, SHAPE_ARRAY) => Shape::Array {
                len: self.length(MAX_ARRAY_LEN, CodecErrorKind::ArrayTooLong)?,
            },
            (_, SHAPE_PART) => {
                let total = self.length(MAX_ARRAY_LEN, CodecErrorKind::ArrayTooLong)?;
                let offset = self.length(MAX_ARRAY_LEN, CodecErrorKind::ArrayTooLong)?;
                let len = self.length(MAX_ARRAY_LEN, CodecErrorKind::ArrayTooLong)?;
                if len == 0 || offset + len > total {
                    return self.fail(CodecErrorKind::BadPart);
                }
                Shape::Part { total, offset, len }
            }
            _ => return self.fail(CodecErrorKind::BadTag(tag)),
        };
        self.kind = kind;
        self.remaining = shape.values();
        Ok(Some(RecordHead { name, kind, shape }))
    }

    /// The next value of the current record.
    pub fn next_value(&mut self) -> Result<ScalarRef<'a>, CodecError> {
        if self.remaining == 0 {
            return self.fail(CodecErrorKind::Truncated);
        }
        self.remaining -= 1;
        match self.kind {
            Kind::Int => Ok(ScalarRef::Int(unzigzag(self.varint()?))),
            Kind::Frac => {
                let h = self.varint()?;
                let k = h & 7;
                if k == FRAC_RAW {
                    if h != FRAC_RAW {
                        return self.fail(CodecErrorKind::BadVarint);
                    }
                    let raw = self.take(8)?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(raw);
                    let f = f64::from_bits(u64::from_be_bytes(b));
                    if !f.is_finite() {
                        return self.fail(CodecErrorKind::NotFinite);
                    }
                    Ok(ScalarRef::Frac(f))
                } else {
                    let m = unzigzag(h >> 3);
                    Ok(ScalarRef::Frac(m as f64 / POW10[k as usize]))
                }
            }
            Kind::Str => {
                let len = self.length(MAX_STRING_LEN, CodecErrorKind::StringTooLong)?;
                let at = self.pos;
                let raw = self.take(len)?;
                std::str::from_utf8(raw)
                    .map(ScalarRef::Str)
                    .map_err(|_| CodecError {
                        offset: at,
                        kind: CodecErrorKind::BadUtf8,
                    })
            }
        }
    }
}

/// Walk a whole payload, checking every field; returns the record count.
pub fn validate_payload(payload: &[u8]) -> Result<usize, CodecError> {
    let mut r = PayloadReader::new(payload)?;
    let mut records = 0;
    while r.next_record()?.is_some() {
        records += 1;
    }
    Ok(records)
}

/// Outcome of merging one payload into a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Sample time the payload carried.
    pub time: i64,
    /// Records merged.
    pub records: usize,
    /// Records refused because the host was full.
    pub refused: usize,
}

/// Merge a payload into a host's meters: validated completely first, so a
/// malformed payload changes nothing.
pub fn apply_payload(host: &mut HostMeters, payload: &[u8]) -> Result<Applied, CodecError> {
    validate_payload(payload)?;
    let mut r = PayloadReader::new(payload)?;
    let time = r.time();
    let mut applied = Applied {
        time,
        records: 0,
        refused: 0,
    };
    while let Some(head) = r.next_record()? {
        let result = match head.shape {
            Shape::Null => match name_of(head.name) {
                Ok(n) => host.set(n, MeterValue::Null, time),
                Err(e) => Err(e),
            },
            Shape::Scalar => host.set_scalar(head.name, r.next_value()?, time),
            Shape::Array { len } => fill(host, &mut r, &head, len, 0, len, true),
            Shape::Part { total, offset, len } => {
                fill(host, &mut r, &head, total, offset, len, false)
            }
        };
        match result {
            Ok(()) => applied.records += 1,
            Err(_) => applied.refused += 1,
        }
    }
    Ok(applied)
}

fn name_of(name: &str) -> Result<super::name::MeterName, HostError> {
    super::name::MeterName::new(name).map_err(HostError::BadName)
}

fn fill(
    host: &mut HostMeters,
    r: &mut PayloadReader<'_>,
    head: &RecordHead<'_>,
    total: usize,
    offset: usize,
    len: usize,
    whole: bool,
) -> Result<(), HostError> {
    let array = host.array_for_sample(head.name, head.kind, total, r.time(), whole)?;
    for i in offset..offset + len {
        // The payload was validated, so these reads succeed; a failure
        // leaves the element at its previous value.
        if let Ok(v) = r.next_value() {
            array.set(i, v);
        }
    }
    Ok(())
}

/// Decode a whole payload into a fresh meter set (storage reads, tests).
pub fn decode_sample(payload: &[u8]) -> Result<(i64, HostMeters), CodecError> {
    let mut host = HostMeters::new();
    let applied = apply_payload(&mut host, payload)?;
    Ok((applied.time, host))
}
