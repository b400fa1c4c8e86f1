//! Snappy's block format (the compression remote write requires), written
//! by a small greedy matcher: a hash table of 4-byte sequences finds
//! earlier copies within each 64 KB fragment, as the reference
//! compressor does. The decoder checks our own output in tests and reads
//! nothing from the network.

use std::fmt;

/// Input is compressed in fragments of this size; copies never reach
/// back further, so two-byte offsets always suffice.
const FRAGMENT: usize = 1 << 16;
/// Hash table slots (positions of 4-byte sequences in a fragment).
const TABLE_BITS: u32 = 14;

/// Compress `input` into `out` (appended): the uncompressed length as a
/// varint, then literals and copies.
pub fn compress(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() / 2 + 16);
    let mut n = input.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    let mut table = vec![0u16; 1 << TABLE_BITS];
    for fragment in input.chunks(FRAGMENT) {
        compress_fragment(fragment, &mut table, out);
    }
}

fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x1e35_a7bd) >> (32 - TABLE_BITS)) as usize
}

fn compress_fragment(src: &[u8], table: &mut [u16], out: &mut Vec<u8>) {
    table.fill(0);
    let mut next_emit = 0;
    if src.len() >= 8 {
        let last = src.len() - 4;
        let mut ip = 1;
        table[hash(load32(src, 0))] = 0;
        // Skip faster through data that does not compress.
        let mut misses = 32u32;
        while ip <= last {
            let here = load32(src, ip);
            let h = hash(here);
            let candidate = table[h] as usize;
            table[h] = ip as u16;
            if candidate < ip && load32(src, candidate) == here {
                literal(&src[next_emit..ip], out);
                let len = 4 + match_length(src, candidate + 4, ip + 4);
                copy(ip - candidate, len, out);
                ip += len;
                next_emit = ip;
                misses = 32;
                if ip <= last {
                    table[hash(load32(src, ip - 1))] = (ip - 1) as u16;
                }
            } else {
                ip += (misses >> 5) as usize;
                misses += 1;
            }
        }
    }
    literal(&src[next_emit..], out);
}

/// How many bytes from `ip` on repeat those from `candidate` on (an
/// earlier position), compared eight at a time.
fn match_length(src: &[u8], candidate: usize, ip: usize) -> usize {
    let max = src.len() - ip;
    let load = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&src[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let mut n = 0;
    while n + 8 <= max {
        let diff = load(candidate + n) ^ load(ip + n);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && src[candidate + n] == src[ip + n] {
        n += 1;
    }
    n
}

fn literal(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len() - 1;
    if n < 60 {
        out.push((n as u8) << 2);
    } else if n < 0x100 {
        out.push(60 << 2);
        out.push(n as u8);
    } else if n < 0x1_0000 {
        out.push(61 << 2);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else {
        out.push(62 << 2);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    }
    out.extend_from_slice(bytes);
}

fn copy(offset: usize, mut len: usize, out: &mut Vec<u8>) {
    // Copies of two-byte offset carry 1..=64 bytes; leave at least 4 for
    // the last one so that the short form may serve it.
    while len >= 68 {
        copy2(offset, 64, out);
        len -= 64;
    }
    if len > 64 {
        copy2(offset, 60, out);
        len -= 60;
    }
    if (4..12).contains(&len) && offset < 2048 {
        out.push((((offset >> 8) as u8) << 5) | (((len - 4) as u8) << 2) | 1);
        out.push(offset as u8);
    } else {
        copy2(offset, len, out);
    }
}

fn copy2(offset: usize, len: usize, out: &mut Vec<u8>) {
    out.push((((len - 1) as u8) << 2) | 2);
    out.extend_from_slice(&(offset as u16).to_le_bytes());
}

/// Why a block did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnappyError {
    /// The block ended inside an element, at this offset.
    Truncated(usize),
    /// A copy reaches before the start of the output, at this offset.
    BadOffset(usize),
    /// The output is not as long as the header said.
    WrongLength { said: usize, got: usize },
    /// The header declares more than the caller allows.
    TooLong(usize),
}

impl fmt::Display for SnappyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnappyError::Truncated(at) => write!(f, "snappy block truncated at byte {at}"),
            SnappyError::BadOffset(at) => write!(f, "snappy copy out of range at byte {at}"),
            SnappyError::WrongLength { said, got } => {
                write!(f, "snappy block says {said} bytes, holds {got}")
            }
            SnappyError::TooLong(n) => write!(f, "snappy block of {n} bytes is too long"),
        }
    }
}

impl std::error::Error for SnappyError {}

/// Decompress a whole block of at most `max` bytes.
pub fn decompress(block: &[u8], max: usize) -> Result<Vec<u8>, SnappyError> {
    let mut pos = 0;
    let mut said: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *block.get(pos).ok_or(SnappyError::Truncated(pos))?;
        pos += 1;
        said |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
        if shift > 35 {
            return Err(SnappyError::Truncated(pos));
        }
    }
    let said = usize::try_from(said).unwrap_or(usize::MAX);
    if said > max {
        return Err(SnappyError::TooLong(said));
    }
    let mut out = Vec::with_capacity(said);
    let take = |pos: &mut usize, n: usize| -> Result<usize, SnappyError> {
        let bytes = block
            .get(*pos..*pos + n)
            .ok_or(SnappyError::Truncated(*pos))?;
        *pos += n;
        Ok(bytes
            .iter()
            .rev()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize))
    };
    while pos < block.len() {
        let at = pos;
        let tag = block[pos];
        pos += 1;
        let (offset, len) = match tag & 3 {
            0 => {
                let mut len = (tag >> 2) as usize;
                if len >= 60 {
                    len = take(&mut pos, len - 59)?;
                }
                let len = len + 1;
                let bytes = block
                    .get(pos..pos + len)
                    .ok_or(SnappyError::Truncated(pos))?;
                out.extend_from_slice(bytes);
                pos += len;
                if out.len() > said {
                    return Err(SnappyError::WrongLength {
                        said,
                        got: out.len(),
                    });
                }
                continue;
            }
            1 => {
                let low = take(&mut pos, 1)?;
                (
                    (((tag >> 5) as usize) << 8) | low,
                    ((tag >> 2) & 7) as usize + 4,
                )
            }
            2 => (take(&mut pos, 2)?, (tag >> 2) as usize + 1),
            _ => (take(&mut pos, 4)?, (tag >> 2) as usize + 1),
        };
        if offset == 0 || offset > out.len() {
            return Err(SnappyError::BadOffset(at));
        }
        if out.len() + len > said {
            return Err(SnappyError::WrongLength {
                said,
                got: out.len() + len,
            });
        }
        let start = out.len() - offset;
        for i in 0..len {
            let b = out[start + i];
            out.push(b);
        }
    }
    if out.len() != said {
        return Err(SnappyError::WrongLength {
            said,
            got: out.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(input, &mut out);
        assert_eq!(decompress(&out, 1 << 24).as_deref(), Ok(input));
        out
    }

    #[test]
    fn round_trips_and_compresses_repeats() {
        round(b"");
        round(b"a");
        round(b"abcdefgh");
        let text = b"opticon_df_pused{host=\"x\"} ".repeat(2000);
        let packed = round(&text);
        assert!(packed.len() < text.len() / 10, "{} bytes", packed.len());
        let mut seed = 7u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                (seed >> 56) as u8
            })
            .collect();
        round(&noise);
    }
}
