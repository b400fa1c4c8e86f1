//! Standard base64 (RFC 4648, with padding) for the keys users copy around.
//!
//! Tenant keys are shown and entered as base64 exactly like the original
//! Opticon did, so the encoding must be the standard alphabet with padding.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base64Error {
    /// The length is not a multiple of four.
    BadLength(usize),
    /// A byte outside the alphabet, at this offset.
    BadCharacter(usize),
    /// Padding in the middle of the text, or bits left over after padding.
    BadPadding,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::BadLength(n) => write!(f, "base64 length {n} is not a multiple of 4"),
            Base64Error::BadCharacter(at) => write!(f, "invalid base64 character at offset {at}"),
            Base64Error::BadPadding => write!(f, "invalid base64 padding"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Encode bytes as padded standard base64.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decode padded standard base64; surrounding whitespace is ignored.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.trim().as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(Base64Error::BadLength(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let groups = bytes.len() / 4;
    for (g, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && g + 1 != groups) {
            return Err(Base64Error::BadPadding);
        }
        let mut n = 0u32;
        for (i, &c) in quad.iter().enumerate() {
            let v = if i >= 4 - pad {
                0
            } else {
                sextet(c).ok_or(Base64Error::BadCharacter(g * 4 + i))?
            };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        if decoded[keep..].iter().any(|&b| b != 0) {
            return Err(Base64Error::BadPadding);
        }
        out.extend_from_slice(&decoded[..keep]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("Zm9"), Err(Base64Error::BadLength(3)));
        assert_eq!(decode("Zm9*"), Err(Base64Error::BadCharacter(3)));
        assert_eq!(decode("Zg==Zg=="), Err(Base64Error::BadPadding));
        assert_eq!(decode("Zh=="), Err(Base64Error::BadPadding));
    }
}
