//! Meter names: the flat keys behind the "two-level illusion".

use std::borrow::Borrow;
use std::fmt;

/// Longest meter name, in bytes (the original allowed 11 characters).
pub const MAX_NAME_LEN: usize = 63;

/// Why a text is not a valid meter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    TooLong(usize),
    /// A character outside `a-z 0-9 . - _ @ /`.
    BadCharacter(char),
    /// A `/` at the start or end, or more than one `/`.
    BadSlash,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty meter name"),
            NameError::TooLong(n) => {
                write!(f, "meter name of {n} bytes is longer than {MAX_NAME_LEN}")
            }
            NameError::BadCharacter(c) => {
                write!(f, "character {c:?} is not allowed in a meter name")
            }
            NameError::BadSlash => {
                write!(
                    f,
                    "a meter name has at most one '/', not at its start or end"
                )
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Byte classes for names: 0 allowed, 1 the group slash, 0x80 forbidden.
/// Summing classes over a name (at most 63 bytes) counts its slashes in the
/// low bits and flags any forbidden byte in bit 7, in one pass.
const NAME_CLASS: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_' | b'@') {
            t[b] = 0;
        }
        b += 1;
    }
    t[b'/' as usize] = 1;
    t
};

/// Class of one name byte as [`NAME_CLASS`] gives it: 0 allowed, 1 the
/// group slash, 0x80 forbidden. A decoder that rebuilds a name from a
/// checked prefix and a new suffix classifies only the suffix.
#[inline]
pub(crate) fn byte_class(b: u8) -> u8 {
    NAME_CLASS[usize::from(b)]
}

/// Check a name exactly as stored (already lower case).
pub fn validate(name: &str) -> Result<(), NameError> {
    check_bytes(name.as_bytes())
}

/// Validate raw bytes from a decoder and view them as a name. Valid names
/// are ASCII, so no separate UTF-8 pass is needed.
#[inline]
pub fn from_bytes(bytes: &[u8]) -> Result<&str, NameError> {
    check_bytes(bytes)?;
    // SAFETY: check_bytes accepted only bytes whose NAME_BYTES class is
    // non-zero, and those are all ASCII, hence valid UTF-8.
    Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
}

#[inline]
fn check_bytes(bytes: &[u8]) -> Result<(), NameError> {
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(bytes.len()));
    }
    let sum: u32 = bytes
        .iter()
        .map(|&b| u32::from(NAME_CLASS[usize::from(b)]))
        .sum();
    if sum >= 0x80 {
        let i = bytes
            .iter()
            .position(|&b| NAME_CLASS[usize::from(b)] == 0x80)
            .unwrap_or(0);
        let c = String::from_utf8_lossy(&bytes[i..])
            .chars()
            .next()
            .unwrap_or('?');
        return Err(NameError::BadCharacter(c));
    }
    let slashes = sum;
    if slashes > 1 || bytes[0] == b'/' || bytes[bytes.len() - 1] == b'/' {
        return Err(NameError::BadSlash);
    }
    Ok(())
}

/// A validated meter name such as `pcpu` or `df/pused`.
///
/// Names are lower case; [`MeterName::new`] folds ASCII upper case as the
/// original did, and accepts digits, which the original silently mangled.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeterName(String);

impl Clone for MeterName {
    fn clone(&self) -> MeterName {
        MeterName(self.0.clone())
    }

    /// Reuses the buffer (a host's meter set copied over another's).
    fn clone_from(&mut self, source: &MeterName) {
        self.0.clone_from(&source.0);
    }
}

impl MeterName {
    /// Validate `text`, folding ASCII upper case to lower case.
    pub fn new(text: &str) -> Result<MeterName, NameError> {
        let folded = text.to_ascii_lowercase();
        validate(&folded)?;
        Ok(MeterName(folded))
    }

    /// Join a group prefix and a child key (`df` + `pused`).
    pub fn join(prefix: &str, child: &str) -> Result<MeterName, NameError> {
        if prefix.contains('/') || child.contains('/') {
            return Err(NameError::BadSlash);
        }
        MeterName::new(&format!("{prefix}/{child}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `/`, for grouped names.
    pub fn prefix(&self) -> Option<&str> {
        self.0.split_once('/').map(|(p, _)| p)
    }
}

impl Borrow<str> for MeterName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_folds() {
        assert_eq!(MeterName::new("DF/PUsed").unwrap().as_str(), "df/pused");
        assert_eq!(MeterName::new("net/eth0_in").unwrap().prefix(), Some("net"));
        assert!(MeterName::new(&"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects() {
        assert_eq!(MeterName::new(""), Err(NameError::Empty));
        assert_eq!(MeterName::new("/a"), Err(NameError::BadSlash));
        assert_eq!(MeterName::new("a/"), Err(NameError::BadSlash));
        assert_eq!(MeterName::new("a/b/c"), Err(NameError::BadSlash));
        assert_eq!(MeterName::new("a b"), Err(NameError::BadCharacter(' ')));
        assert_eq!(MeterName::new("é"), Err(NameError::BadCharacter('é')));
        assert_eq!(
            MeterName::new(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong(MAX_NAME_LEN + 1))
        );
    }
}
