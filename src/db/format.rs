//! File headers and checksummed record frames, shared by every DB file.
//!
//! Every file starts with a 32-byte header naming its kind and format
//! version; every record is a frame carrying its own checksum (the first
//! eight bytes of SHA-256 over the frame). Integers are big-endian.
//!
//! ```text
//! header: "OPTICON\0" version:u16 kind:u16 reserved:u32 aux:i64 sum:8
//! frame:  length:u32 time:i64 kind:u8 body[length] sum:8 length:u32
//! ```
//!
//! The checksum covers the frame up to itself; the trailing copy of the
//! length lets readers walk a file backwards from its end, so the latest
//! record is found without reading the day from the start.

use sha2::{Digest, Sha256};

/// Magic that opens every Opticon database file.
pub const MAGIC: [u8; 8] = *b"OPTICON\0";
/// Format version of every file kind this code writes.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 32;
/// Bytes a frame adds around its body.
pub const FRAME_OVERHEAD: usize = 4 + 8 + 1 + 8 + 4;
/// Largest frame body accepted (a whole host sample is far smaller).
pub const MAX_BODY: usize = 16 << 20;

/// File kind: day file of host samples.
pub const KIND_SAMPLES: u16 = u16::from_be_bytes(*b"SD");
/// File kind: host status log.
pub const KIND_LOG: u16 = u16::from_be_bytes(*b"HL");
/// File kind: a tenant's samples of one UTC day, every host's frames in
/// one append stream (see [`crate::db::store`]).
pub const KIND_TENANT_DAY: u16 = u16::from_be_bytes(*b"TD");
/// File kind: the host index of a tenant day file.
pub const KIND_DAY_INDEX: u16 = u16::from_be_bytes(*b"TI");

/// Frame kind: a full sample.
pub const FRAME_KEY: u8 = b'K';
/// Frame kind: a sample as changes against the previous frame.
pub const FRAME_DELTA: u8 = b'D';

/// First eight bytes of SHA-256 over `parts`.
pub fn checksum(parts: &[&[u8]]) -> [u8; 8] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let full = h.finalize();
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&full[..8]);
    sum
}

/// A file header.
pub fn header(kind: u16, aux: i64) -> [u8; HEADER_LEN] {
    header_with(kind, 0, aux)
}

/// A file header whose reserved field holds `generation` (tenant day
/// files: a file rewritten in place gets a new one, so that an index is
/// never paired with another version of its file).
pub fn header_with(kind: u16, generation: u32, aux: i64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    h[10..12].copy_from_slice(&kind.to_be_bytes());
    h[12..16].copy_from_slice(&generation.to_be_bytes());
    h[16..24].copy_from_slice(&aux.to_be_bytes());
    let sum = checksum(&[&h[..24]]);
    h[24..].copy_from_slice(&sum);
    h
}

/// Why a file header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than a header.
    Short,
    /// Not an Opticon database file.
    BadMagic,
    /// The header's checksum does not match.
    BadChecksum,
    /// Written by a format version this code does not read.
    Version(u16),
    /// A file of another kind.
    Kind(u16),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short => write!(f, "file is shorter than its header"),
            HeaderError::BadMagic => write!(f, "not an Opticon database file"),
            HeaderError::BadChecksum => write!(f, "header checksum mismatch"),
            HeaderError::Version(v) => write!(f, "unsupported format version {v}"),
            HeaderError::Kind(k) => write!(f, "unexpected file kind 0x{k:04x}"),
        }
    }
}

/// Check a header and return its `aux` field.
pub fn check_header(buf: &[u8], kind: u16) -> Result<i64, HeaderError> {
    if buf.len() < HEADER_LEN {
        return Err(HeaderError::Short);
    }
    if buf[..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    if checksum(&[&buf[..24]]) != buf[24..32] {
        return Err(HeaderError::BadChecksum);
    }
    let version = u16::from_be_bytes([buf[8], buf[9]]);
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    let found = u16::from_be_bytes([buf[10], buf[11]]);
    if found != kind {
        return Err(HeaderError::Kind(found));
    }
    Ok(be_i64(&buf[16..24]))
}

/// The generation of a header that [`check_header`] accepted.
pub fn generation(buf: &[u8]) -> u32 {
    buf.get(12..16)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Append one frame to `out`.
pub fn put_frame(out: &mut Vec<u8>, time: i64, kind: u8, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&time.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    let sum = checksum(&[&out[start..]]);
    out.extend_from_slice(&sum);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
}

/// A frame found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame in the file.
    pub offset: usize,
    /// Sample time.
    pub time: i64,
    /// [`FRAME_KEY`] or [`FRAME_DELTA`].
    pub kind: u8,
    /// Body range in the file.
    pub body: (usize, usize),
    /// False when bytes were skipped just before this frame (its delta
    /// predecessor is gone).
    pub follows: bool,
}

/// Damage found while scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// An incomplete or unverifiable last frame from `offset` to the end:
    /// an interrupted append, or one still being written.
    TornTail {
        /// Where the torn frame starts.
        offset: usize,
    },
    /// Bytes `from..to` failed their checksum and valid frames follow.
    Corrupt {
        /// First bad byte.
        from: usize,
        /// Where the next valid frame starts.
        to: usize,
    },
}

/// Frames and damage of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Valid frames in file order.
    pub frames: Vec<Frame>,
    /// Damage, in file order.
    pub damage: Vec<Damage>,
    /// End of the last valid frame.
    pub valid_end: usize,
}

/// Parse the frame at `at`, if one with a valid checksum starts there.
pub fn frame_at(buf: &[u8], at: usize) -> Option<Frame> {
    let head = buf.get(at..at + 13)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let kind = head[12];
    if len > MAX_BODY || !matches!(kind, FRAME_KEY | FRAME_DELTA) {
        return None;
    }
    let end = at.checked_add(FRAME_OVERHEAD + len)?;
    let whole = buf.get(at..end)?;
    let (framed, trailer) = whole.split_at(whole.len() - 4);
    let (signed, sum) = framed.split_at(framed.len() - 8);
    if trailer != &head[..4] || checksum(&[signed]) != sum {
        return None;
    }
    Some(Frame {
        offset: at,
        time: be_i64(&head[4..12]),
        kind,
        body: (at + 13, at + 13 + len),
        follows: true,
    })
}

/// The frame that ends exactly at `end`, found through its trailer.
pub fn frame_before(buf: &[u8], end: usize) -> Option<Frame> {
    let trailer = buf.get(end.checked_sub(4)?..end)?;
    let len = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
    let start = end.checked_sub(FRAME_OVERHEAD.checked_add(len)?)?;
    if start < HEADER_LEN {
        return None;
    }
    frame_at(buf, start)
}

/// The frames from the last full frame to the end of the file, walking
/// backwards through trailers: the frames needed to rebuild the latest
/// sample. `None` when the tail is damaged or no full frame is within
/// `limit` frames (the caller then scans the file from its start).
pub fn tail_chain(buf: &[u8], limit: usize) -> Option<Vec<Frame>> {
    let mut end = buf.len();
    let mut chain = Vec::new();
    while chain.len() <= limit {
        let f = frame_before(buf, end)?;
        end = f.offset;
        chain.push(f);
        if f.kind == FRAME_KEY {
            chain.reverse();
            return Some(chain);
        }
    }
    None
}

/// Scan the frames after the header. A bad frame followed by valid ones
/// is corruption, skipped up to the next valid frame; a bad frame with
/// nothing valid after it is a torn tail.
pub fn scan(buf: &[u8]) -> Scan {
    let mut out = Scan {
        valid_end: HEADER_LEN.min(buf.len()),
        ..Scan::default()
    };
    let mut at = HEADER_LEN;
    let mut follows = true;
    while at < buf.len() {
        if let Some(mut f) = frame_at(buf, at) {
            f.follows = follows;
            follows = true;
            at = f.body.1 + 12;
            out.valid_end = at;
            out.frames.push(f);
            continue;
        }
        match (at + 1..buf.len()).find(|&y| frame_at(buf, y).is_some()) {
            Some(next) => {
                out.damage.push(Damage::Corrupt { from: at, to: next });
                at = next;
                follows = false;
            }
            None => {
                out.damage.push(Damage::TornTail { offset: at });
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(frames: &[(i64, u8, &[u8])]) -> Vec<u8> {
        let mut buf = header(KIND_SAMPLES, 7).to_vec();
        for (t, k, b) in frames {
            put_frame(&mut buf, *t, *k, b);
        }
        buf
    }

    #[test]
    fn header_round_trip_and_errors() {
        let h = header(KIND_SAMPLES, -5);
        assert_eq!(check_header(&h, KIND_SAMPLES), Ok(-5));
        assert_eq!(
            check_header(&h, KIND_LOG),
            Err(HeaderError::Kind(KIND_SAMPLES))
        );
        let mut bad = h;
        bad[20] ^= 1;
        assert_eq!(
            check_header(&bad, KIND_SAMPLES),
            Err(HeaderError::BadChecksum)
        );
        assert_eq!(
            check_header(&h[..10], KIND_SAMPLES),
            Err(HeaderError::Short)
        );
    }

    #[test]
    fn torn_tail_and_corruption() {
        let buf = file(&[
            (1, FRAME_KEY, b"one"),
            (2, FRAME_DELTA, b"two"),
            (3, FRAME_KEY, b"three"),
        ]);
        let clean = scan(&buf);
        assert_eq!(clean.frames.len(), 3);
        assert!(clean.damage.is_empty());
        assert_eq!(clean.valid_end, buf.len());
        // Cut inside the last frame: torn tail.
        let torn = scan(&buf[..buf.len() - 3]);
        assert_eq!(torn.frames.len(), 2);
        assert_eq!(
            torn.damage,
            vec![Damage::TornTail {
                offset: torn.valid_end
            }]
        );
        // Flip a byte in the middle frame: corrupt, the third still read.
        let mut flipped = buf.clone();
        let second = clean.frames[1];
        flipped[second.body.0] ^= 0x40;
        let s = scan(&flipped);
        assert_eq!(
            s.frames.iter().map(|f| f.time).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(!s.frames[1].follows);
        assert_eq!(
            s.damage,
            vec![Damage::Corrupt {
                from: second.offset,
                to: clean.frames[2].offset
            }]
        );
        // Backwards from the end: the last frame is full, so it is alone.
        let chain = tail_chain(&buf, 10).unwrap();
        assert_eq!(chain.iter().map(|f| f.time).collect::<Vec<_>>(), vec![3]);
        let two = tail_chain(&buf[..clean.frames[2].offset], 10).unwrap();
        assert_eq!(two.iter().map(|f| f.time).collect::<Vec<_>>(), vec![1, 2]);
        assert!(tail_chain(&buf[..buf.len() - 1], 10).is_none());
    }
}
