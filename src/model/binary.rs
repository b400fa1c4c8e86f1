//! The binary sample codec: a host's meters at one sample time, lossless.
//!
//! One format serves the wire (inside sealed datagrams) and storage. The
//! byte layout is specified in `man 7 opticon-protocol`; in short:
//!
//! ```text
//! payload := version:u8 (=1)  time:zigzag-varint  record*
//! record  := name  tag:u8  body
//! name    := len:u8 (1..=63) bytes          (a fresh name)
//!          | 0x40|shared:u8 (1..=62) len:u8 bytes
//!                                           (the first `shared` bytes of
//!                                           the previous record's name,
//!                                           then `len` more)
//! tag     := kind (bits 0-1: 0 int, 1 frac, 2 string, 3 null)
//!          | shape << 2 (0 scalar, 1 array, 2 array part); bits 4-7 zero
//! body    := value                          (scalar)
//!          | n:varint value{n}              (array)
//!          | total offset n:varint value{n} (part of a split array)
//! ```
//!
//! Records run to the end of the payload; there is no count. Names are
//! front-coded against the previous record of the same payload only, so a
//! payload can be cut between any two records (re-encoding the first name
//! of the new piece in full) and each piece stays decodable on its own.

use super::host::{HostError, HostMeters, MeterWriter};
use super::name::{self, MeterName, NameError, MAX_NAME_LEN};
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
    /// A name head byte that is reserved, or shares more than the
    /// previous name has, or makes the name too long or empty.
    BadNameHead(u8),
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
            CodecErrorKind::BadNameHead(h) => write!(f, "bad name head 0x{h:02x}"),
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

/// Map signed to unsigned so small magnitudes stay small (0, -1, 1, -2 ...).
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Undo [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// [`f64::round`] (halves away from zero; the sign of a zero aside)
/// without its call into libm, which a baseline x86-64 build makes for
/// every frac encoded: below 2^52 the integer part and the rest are
/// exact, and above it every value is whole.
fn round(x: f64) -> f64 {
    // NaN and infinities too.
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    let whole = x as i64;
    let rest = x - whole as f64;
    let whole = if rest >= 0.5 {
        whole + 1
    } else if rest <= -0.5 {
        whole - 1
    } else {
        whole
    };
    whole as f64
}

fn put_frac(out: &mut Vec<u8>, f: f64) {
    // A frac with more than six decimals (most measured ones) is not a
    // whole number a millionfold, give or take rounding: then no scale
    // fits, and trying each (a multiply, a round and a divide) is skipped.
    let micro = f * POW10[POW10.len() - 1];
    let decimal =
        micro.abs() >= EXACT_LIMIT || (micro - round(micro)).abs() <= micro.abs() * 1e-12 + 1e-9;
    for (k, scale) in POW10.iter().enumerate().filter(|_| decimal) {
        let scaled = f * scale;
        if scaled.abs() < EXACT_LIMIT {
            let m = round(scaled) as i64;
            if (m as f64 / scale).to_bits() == f.to_bits() {
                put_varint(out, (zigzag(m) << 3) | k as u64);
                return;
            }
        }
    }
    put_varint(out, FRAC_RAW);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

/// Append one element in its kind's encoding (no tag).
pub fn put_value(out: &mut Vec<u8>, v: ScalarRef<'_>) {
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

/// Flag of a front-coded name head.
const NAME_SHARED: u8 = 0x40;

fn put_name(out: &mut Vec<u8>, prev: &str, name: &str) {
    let shared = prev
        .bytes()
        .zip(name.bytes())
        .take_while(|(a, b)| a == b)
        .count()
        .min(name.len() - 1)
        .min(MAX_NAME_LEN - 1);
    if shared >= 2 {
        out.push(NAME_SHARED | shared as u8);
        out.push((name.len() - shared) as u8);
        out.extend_from_slice(&name.as_bytes()[shared..]);
    } else {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
}

/// Append one whole meter record; `prev` is the name of the record before
/// it in the same payload ("" for the first).
pub fn put_record(out: &mut Vec<u8>, prev: &str, name: &str, value: &MeterValue) {
    put_name(out, prev, name);
    put_tagged(out, value);
}

/// Append a value as tag and body, the part of a record after its name.
pub fn put_tagged(out: &mut Vec<u8>, value: &MeterValue) {
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
pub fn put_part(out: &mut Vec<u8>, prev: &str, name: &str, array: &Array, offset: usize, n: usize) {
    put_name(out, prev, name);
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
    put_sample(&mut out, time, meters);
    out
}

/// [`encode_sample`] at the end of `out` (a buffer reused from host to
/// host).
pub fn put_sample(out: &mut Vec<u8>, time: i64, meters: &HostMeters) {
    put_header(out, time);
    let mut prev = "";
    for (name, meter) in meters.iter() {
        put_record(out, prev, name.as_str(), &meter.value);
        prev = name.as_str();
    }
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

/// A meter name rebuilt from its front-coded form, held inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameBuf {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

impl NameBuf {
    const EMPTY: NameBuf = NameBuf {
        len: 0,
        bytes: [0; MAX_NAME_LEN],
    };

    /// The raw bytes.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name as text ("" if it is not valid UTF-8, which a validated
    /// name always is).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// The head of one record; its name is [`PayloadReader::name`] and its
/// values are read with [`PayloadReader::next_value`].
///
/// The name is not copied into the head (a reader that wants it reads it
/// in place): the copy was where a profile of a decoding loop put most
/// of its samples, though leaving it out did not change the loop's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    /// Element type (meaningless for [`Shape::Null`]).
    pub kind: Kind,
    /// Layout of the values.
    pub shape: Shape,
}

/// Why the reader stopped, before the offset and details are attached.
/// Kept to one byte so the hot paths return results in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Truncated,
    BadVarint,
    BadNameHead(u8),
    BadTag(u8),
    StringTooLong,
    ArrayTooLong,
    BadPart,
    BadUtf8,
    NotFinite,
    BadName,
}

/// What a value's tag says: null, a scalar of a kind, or an array of a
/// kind and length.
enum Tagged {
    Null,
    Scalar(Kind),
    Array(Kind, usize),
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
    /// Start of the current field, for error offsets and name details.
    mark: usize,
    /// The offending length, for error details.
    bad_len: u64,
    /// The previous record's name, which the next one may share a prefix
    /// with; always a valid name once a head was read.
    name: NameBuf,
    /// Where that name's group slash is, plus one (0: none), so that a
    /// name built on its prefix is checked by its new bytes alone.
    slash: u8,
}

impl<'a> PayloadReader<'a> {
    /// Read the payload header.
    pub fn new(buf: &'a [u8]) -> Result<PayloadReader<'a>, CodecError> {
        let mut r = PayloadReader::bare(buf);
        let version = r.byte().map_err(|f| r.error(f))?;
        if version != CODEC_VERSION {
            return Err(CodecError {
                offset: 0,
                kind: CodecErrorKind::UnsupportedVersion(version),
            });
        }
        r.time = unzigzag(r.varint().map_err(|f| r.error(f))?);
        Ok(r)
    }

    /// A reader over bytes without a payload header, for formats that
    /// embed tagged values and elements (the database's delta frames).
    pub fn bare(buf: &'a [u8]) -> PayloadReader<'a> {
        PayloadReader {
            buf,
            pos: 0,
            time: 0,
            kind: Kind::Int,
            remaining: 0,
            mark: 0,
            bad_len: 0,
            name: NameBuf::EMPTY,
            slash: 0,
        }
    }

    /// Sample time of every record in this payload.
    pub fn time(&self) -> i64 {
        self.time
    }

    /// True when every byte was consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Read an unsigned varint.
    pub fn read_varint(&mut self) -> Result<u64, CodecError> {
        self.varint().map_err(|f| self.error(f))
    }

    /// Read `n` raw bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.take(n).map_err(|f| self.error(f))
    }

    /// Read one element of `kind` (no tag).
    pub fn read_value(&mut self, kind: Kind) -> Result<ScalarRef<'a>, CodecError> {
        self.kind = kind;
        self.remaining = 1;
        self.next_value()
    }

    /// Read a tag and body written by [`put_tagged`] into an owned value.
    pub fn read_tagged(&mut self) -> Result<MeterValue, CodecError> {
        Ok(match self.read_tag()? {
            Tagged::Null => MeterValue::Null,
            Tagged::Scalar(kind) => MeterValue::Scalar(self.read_value(kind)?.to_owned()),
            Tagged::Array(kind, len) => {
                let mut array = Array::empty(kind);
                for _ in 0..len {
                    array.push(self.read_value(kind)?);
                }
                MeterValue::Array(array)
            }
        })
    }

    /// Step over a tagged value without building it (checked as
    /// [`PayloadReader::read_tagged`] checks it).
    pub fn skip_tagged(&mut self) -> Result<(), CodecError> {
        let (kind, len) = match self.read_tag()? {
            Tagged::Null => return Ok(()),
            Tagged::Scalar(kind) => (kind, 1),
            Tagged::Array(kind, len) => (kind, len),
        };
        for _ in 0..len {
            self.read_value(kind)?;
        }
        Ok(())
    }

    /// A tagged value's tag, and an array's length.
    fn read_tag(&mut self) -> Result<Tagged, CodecError> {
        self.mark = self.pos;
        let tag = self.byte().map_err(|f| self.error(f))?;
        let kind = match tag & 3 {
            KIND_FRAC => Kind::Frac,
            KIND_STR => Kind::Str,
            _ => Kind::Int,
        };
        match (tag & 3, tag >> 2) {
            (KIND_NULL, SHAPE_SCALAR) => Ok(Tagged::Null),
            (k, SHAPE_SCALAR) if k != KIND_NULL => Ok(Tagged::Scalar(kind)),
            (k, SHAPE_ARRAY) if k != KIND_NULL => {
                let len = self
                    .length(MAX_ARRAY_LEN, Fault::ArrayTooLong)
                    .map_err(|f| self.error(f))?;
                Ok(Tagged::Array(kind, len))
            }
            _ => Err(CodecError {
                offset: self.mark,
                kind: CodecErrorKind::BadTag(tag),
            }),
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The public error for a fault, with its offset and details.
    #[cold]
    fn error(&self, fault: Fault) -> CodecError {
        let too_long = usize::try_from(self.bad_len).unwrap_or(usize::MAX);
        let (offset, kind) = match fault {
            Fault::Truncated => (self.pos, CodecErrorKind::Truncated),
            Fault::BadVarint => (self.mark, CodecErrorKind::BadVarint),
            Fault::BadNameHead(h) => (self.mark, CodecErrorKind::BadNameHead(h)),
            Fault::BadTag(t) => (self.mark, CodecErrorKind::BadTag(t)),
            Fault::StringTooLong => (self.mark, CodecErrorKind::StringTooLong(too_long)),
            Fault::ArrayTooLong => (self.mark, CodecErrorKind::ArrayTooLong(too_long)),
            Fault::BadPart => (self.mark, CodecErrorKind::BadPart),
            Fault::BadUtf8 => (self.mark, CodecErrorKind::BadUtf8),
            Fault::NotFinite => (self.mark, CodecErrorKind::NotFinite),
            Fault::BadName => {
                // The fast check said no; the full one says why.
                let why = name::from_bytes(self.name.as_bytes())
                    .err()
                    .unwrap_or(NameError::Empty);
                (self.mark, CodecErrorKind::BadName(why))
            }
        };
        CodecError { offset, kind }
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fault> {
        let b = *self.buf.get(self.pos).ok_or(Fault::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        let s = self
            .buf
            .get(self.pos..self.pos.wrapping_add(n))
            .ok_or(Fault::Truncated)?;
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, Fault> {
        self.mark = self.pos;
        // Most values (and every length) fit in one byte.
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(u64::from(b));
        }
        let mut v = u64::from(b & 0x7f);
        for shift in (7..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(Fault::BadVarint);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Fault::BadVarint)
    }

    #[inline]
    fn length(&mut self, limit: usize, too_long: Fault) -> Result<usize, Fault> {
        let v = self.varint()?;
        if v > limit as u64 {
            self.bad_len = v;
            return Err(too_long);
        }
        Ok(v as usize)
    }

    fn head_raw(&mut self) -> Result<Option<RecordHead>, Fault> {
        while self.remaining > 0 {
            self.skip_value()?;
        }
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        self.mark = self.pos;
        let head = self.byte()?;
        let (shared, len) = match head {
            1..=0x3f => (0, usize::from(head)),
            0x41..=0x7e => (usize::from(head & 0x3f), usize::from(self.byte()?)),
            _ => return Err(Fault::BadNameHead(head)),
        };
        if shared > usize::from(self.name.len) || len == 0 || shared + len > MAX_NAME_LEN {
            return Err(Fault::BadNameHead(head));
        }
        let suffix = self.take(len)?;
        // Byte-wise on purpose: the name is compared right after, and
        // wide loads over a fresh vector copy stall store forwarding.
        let mut classes = 0u32;
        for (dst, &src) in self.name.bytes[shared..shared + len].iter_mut().zip(suffix) {
            *dst = src;
            classes += u32::from(name::byte_class(src));
        }
        let new_len = shared + len;
        self.name.len = new_len as u8;
        // The prefix was checked as part of the previous name: only the
        // new bytes are classified, and the slash tracked across.
        let mut slash = if usize::from(self.slash) <= shared {
            self.slash
        } else {
            0
        };
        if classes != 0 {
            if classes != 1 || slash != 0 {
                return Err(Fault::BadName);
            }
            let at = suffix.iter().position(|&b| b == b'/').unwrap_or(0);
            slash = (shared + at + 1) as u8;
        }
        if slash == 1 || usize::from(slash) == new_len {
            return Err(Fault::BadName);
        }
        self.slash = slash;
        self.mark = self.pos;
        let tag = self.byte()?;
        let kind = match tag & 3 {
            KIND_FRAC => Kind::Frac,
            KIND_STR => Kind::Str,
            _ => Kind::Int,
        };
        let shape = match (tag & 3, tag >> 2) {
            (KIND_NULL, SHAPE_SCALAR) => Shape::Null,
            (KIND_NULL, _) => return Err(Fault::BadTag(tag)),
            (_, SHAPE_SCALAR) => Shape::Scalar,
            (_, SHAPE_ARRAY) => Shape::Array {
                len: self.length(MAX_ARRAY_LEN, Fault::ArrayTooLong)?,
            },
            (_, SHAPE_PART) => {
                let total = self.length(MAX_ARRAY_LEN, Fault::ArrayTooLong)?;
                let offset = self.length(MAX_ARRAY_LEN, Fault::ArrayTooLong)?;
                let len = self.length(MAX_ARRAY_LEN, Fault::ArrayTooLong)?;
                if len == 0 || offset + len > total {
                    return Err(Fault::BadPart);
                }
                Shape::Part { total, offset, len }
            }
            _ => return Err(Fault::BadTag(tag)),
        };
        self.kind = kind;
        self.remaining = shape.values();
        Ok(Some(RecordHead { kind, shape }))
    }

    #[inline]
    fn value(&mut self) -> Result<ScalarRef<'a>, Fault> {
        if self.remaining == 0 {
            return Err(Fault::Truncated);
        }
        self.remaining -= 1;
        match self.kind {
            Kind::Int => Ok(ScalarRef::Int(unzigzag(self.varint()?))),
            Kind::Frac => {
                let h = self.varint()?;
                let k = (h & 7) as usize;
                if h == FRAC_RAW {
                    let raw = self.take(8)?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(raw);
                    let f = f64::from_bits(u64::from_be_bytes(b));
                    if !f.is_finite() {
                        return Err(Fault::NotFinite);
                    }
                    Ok(ScalarRef::Frac(f))
                } else if k == FRAC_RAW as usize {
                    Err(Fault::BadVarint)
                } else {
                    Ok(ScalarRef::Frac(unzigzag(h >> 3) as f64 / POW10[k]))
                }
            }
            Kind::Str => {
                let len = self.length(MAX_STRING_LEN, Fault::StringTooLong)?;
                let raw = self.take(len)?;
                utf8(raw).map(ScalarRef::Str).ok_or(Fault::BadUtf8)
            }
        }
    }

    /// Check and pass over the next value without producing it.
    #[inline]
    fn skip_value(&mut self) -> Result<(), Fault> {
        if self.remaining == 0 {
            return Err(Fault::Truncated);
        }
        self.remaining -= 1;
        match self.kind {
            Kind::Int => self.varint().map(|_| ()),
            Kind::Frac => {
                let h = self.varint()?;
                if h == FRAC_RAW {
                    let raw = self.take(8)?;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(raw);
                    if !f64::from_bits(u64::from_be_bytes(b)).is_finite() {
                        return Err(Fault::NotFinite);
                    }
                } else if h & 7 == FRAC_RAW {
                    return Err(Fault::BadVarint);
                }
                Ok(())
            }
            Kind::Str => {
                let len = self.length(MAX_STRING_LEN, Fault::StringTooLong)?;
                let raw = self.take(len)?;
                if utf8(raw).is_some() {
                    Ok(())
                } else {
                    Err(Fault::BadUtf8)
                }
            }
        }
    }

    /// The next record head, skipping any values of the previous record
    /// that were not read; `None` at the end of the payload.
    pub fn next_record(&mut self) -> Result<Option<RecordHead>, CodecError> {
        self.head_raw().map_err(|f| self.error(f))
    }

    /// The current record's name, checked (a valid meter name once
    /// [`PayloadReader::next_record`] returned a head).
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The next value of the current record.
    #[inline]
    pub fn next_value(&mut self) -> Result<ScalarRef<'a>, CodecError> {
        self.value().map_err(|f| self.error(f))
    }
}

/// View bytes as text: an ASCII fast path for the short strings meters
/// carry, the full UTF-8 check otherwise.
#[inline]
fn utf8(raw: &[u8]) -> Option<&str> {
    if raw.is_ascii() {
        // SAFETY: every byte is below 0x80, so this is ASCII, hence UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        std::str::from_utf8(raw).ok()
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

/// The same payload with another sample time (the receiver's clock),
/// and the time it carried: the records are untouched, only the
/// header's time changes.
pub fn restamp_payload(payload: &[u8], time: i64) -> Result<(i64, Vec<u8>), CodecError> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    let sent = put_restamped(&mut out, payload, time, false)?;
    Ok((sent, out))
}

/// [`restamp_payload`] at the end of `out`, after its length as a varint
/// when `prefixed` (how the collector queues a host's payloads: no copy
/// of its own); returns the time the payload carried.
pub fn put_restamped(
    out: &mut Vec<u8>,
    payload: &[u8],
    time: i64,
    prefixed: bool,
) -> Result<i64, CodecError> {
    let head = PayloadReader::new(payload)?;
    let (sent, body) = (head.time, &payload[head.pos..]);
    let stamp = zigzag(time);
    let len = 1 + varint_len(stamp) + body.len();
    out.reserve_exact(len + if prefixed { varint_len(len as u64) } else { 0 });
    if prefixed {
        put_varint(out, len as u64);
    }
    out.push(CODEC_VERSION);
    put_varint(out, stamp);
    out.extend_from_slice(body);
    Ok(sent)
}

/// Bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
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

/// Merge a payload into a host's meters, in one pass.
///
/// Records are applied as they are read: a malformed record stops the
/// merge with an error, and the records before it stay applied. Payloads
/// reach this point only after their MAC verified, so such records come
/// from the host's own agent; nothing outside this host is touched. The
/// reader checks each name by the bytes it adds to the one before, so the
/// steady state (the same meters every minute) stays cheap.
pub fn apply_payload(host: &mut HostMeters, payload: &[u8]) -> Result<Applied, CodecError> {
    apply_payload_stamped(host, payload, None)
}

/// [`apply_payload`] with every record stamped `time` instead of the
/// payload's own time (the collector stamps what it keeps with its
/// receive time, without copying the payload to rewrite its header).
pub fn apply_payload_at(
    host: &mut HostMeters,
    payload: &[u8],
    time: i64,
) -> Result<Applied, CodecError> {
    apply_payload_stamped(host, payload, Some(time))
}

fn apply_payload_stamped(
    host: &mut HostMeters,
    payload: &[u8],
    stamp: Option<i64>,
) -> Result<Applied, CodecError> {
    let mut r = PayloadReader::new(payload)?;
    if let Some(t) = stamp {
        r.time = t;
    }
    let time = r.time();
    let mut applied = Applied {
        time,
        records: 0,
        refused: 0,
    };
    let mut w = host.writer();
    while let Some(head) = r.next_record()? {
        let slot = w.existing(r.name.as_bytes());
        let stored = match (head.shape, slot) {
            (Shape::Null, _) => {
                let name = r.name.as_str();
                match MeterName::new(name) {
                    Ok(name) => w.set(name, MeterValue::Null, time),
                    Err(e) => Err(HostError::BadName(e)),
                }
            }
            (Shape::Scalar, Some(i)) => {
                let v = r.next_value()?;
                w.scalar_at(i, v, time);
                Ok(())
            }
            (Shape::Scalar, None) => {
                let v = r.next_value()?;
                let name = r.name.as_str();
                w.scalar(name, v, time)
            }
            (Shape::Array { len }, _) => fill(&mut w, &mut r, &head, slot, len, 0, len, true)?,
            (Shape::Part { total, offset, len }, _) => {
                fill(&mut w, &mut r, &head, slot, total, offset, len, false)?
            }
        };
        match stored {
            Ok(()) => applied.records += 1,
            Err(_) => applied.refused += 1,
        }
    }
    Ok(applied)
}

/// Write the values of an array record; the outer error is a malformed
/// payload, the inner one a refusal by the host (full).
#[allow(clippy::too_many_arguments)]
fn fill(
    w: &mut MeterWriter<'_>,
    r: &mut PayloadReader<'_>,
    head: &RecordHead,
    slot: Option<usize>,
    total: usize,
    offset: usize,
    len: usize,
    whole: bool,
) -> Result<Result<(), HostError>, CodecError> {
    let time = r.time();
    let array = match slot {
        Some(i) => w.array_at(i, head.kind, total, time, whole),
        None => {
            // A new meter (rare): its name (checked by the reader) copied
            // out of the reader so that the values can be read next.
            let name_buf = r.name;
            let name = name_buf.as_str();
            match w.array(name, head.kind, total, time, whole) {
                Ok(a) => Some(a),
                // Refused: the reader skips the values at the next head.
                Err(e) => return Ok(Err(e)),
            }
        }
    };
    let Some(array) = array else {
        return Ok(Ok(()));
    };
    for i in offset..offset + len {
        let v = r.next_value()?;
        array.set(i, v);
    }
    Ok(Ok(()))
}

/// Decode a whole payload into a fresh meter set (storage reads, tests).
pub fn decode_sample(payload: &[u8]) -> Result<(i64, HostMeters), CodecError> {
    let mut host = HostMeters::new();
    let applied = apply_payload(&mut host, payload)?;
    Ok((applied.time, host))
}

/// Decode a whole payload into `host`, replacing what it held but
/// reusing its buffers where names and shapes match (the collector
/// decodes one host after another with the same meters: nothing is then
/// allocated). Returns the sample time.
pub fn decode_sample_into(host: &mut HostMeters, payload: &[u8]) -> Result<i64, CodecError> {
    let time = PayloadReader::new(payload)?.time();
    // Meters the payload does not write keep this time, and go.
    let untouched = time.wrapping_sub(1);
    host.stamp(untouched);
    let applied = apply_payload(host, payload);
    host.expire_exactly(untouched);
    applied.map(|a| a.time)
}
