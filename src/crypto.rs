//! The seal: AES-256-CTR encryption and HMAC-SHA256 authentication.
//!
//! Each 32-byte key (a tenant key or a session key) is never used directly:
//! [`SealKey::new`] derives an encryption subkey and a MAC subkey from it
//! with HMAC-SHA256 under fixed labels, so the two primitives never share
//! key material. Datagrams are encrypted first and the MAC covers the
//! header and the ciphertext (encrypt-then-MAC); receivers verify the tag in
//! constant time before decrypting anything.

use aes::Aes256;
use ctr::cipher::{InnerIvInit, KeyInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io;

/// Length of every Opticon key (AES-256).
pub const KEY_LEN: usize = 32;
/// Bytes of HMAC-SHA256 kept as the datagram tag (128 bits).
pub const TAG_LEN: usize = 16;
/// Bytes of nonce; the CTR block counter fills the other four IV bytes.
pub const NONCE_LEN: usize = 12;

const ENC_LABEL: &[u8] = b"opticon-v1 encryption key";
const MAC_LABEL: &[u8] = b"opticon-v1 authentication key";

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of `data` (content hashes of the dashboard's assets).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// A key ready for sealing: subkeys derived and schedules precomputed once.
#[derive(Clone)]
pub struct SealKey {
    cipher: Aes256,
    mac: HmacSha256,
}

impl SealKey {
    /// Derive the encryption and MAC subkeys from a 32-byte key.
    pub fn new(key: &[u8; KEY_LEN]) -> SealKey {
        let enc = hmac_sha256(key, &[ENC_LABEL]);
        let mac = hmac_sha256(key, &[MAC_LABEL]);
        SealKey {
            cipher: Aes256::new(&enc.into()),
            mac: <HmacSha256 as KeyInit>::new_from_slice(&mac).unwrap_or_else(|_| unreachable!()),
        }
    }

    /// XOR `data` with the AES-256-CTR keystream for `nonce` (the IV is the
    /// nonce followed by a 32-bit big-endian block counter from zero).
    pub fn apply_keystream(&self, nonce: &[u8; NONCE_LEN], data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..NONCE_LEN].copy_from_slice(nonce);
        self.apply_keystream_iv(&iv, data);
    }

    /// XOR `data` with the AES-256-CTR keystream starting at a full 16-byte
    /// counter block (the known-answer tests use NIST's IVs directly).
    pub fn apply_keystream_iv(&self, iv: &[u8; 16], data: &mut [u8]) {
        let core = ctr::CtrCore::<Aes256, ctr::flavors::Ctr32BE>::inner_iv_init(
            self.cipher.clone(),
            iv.into(),
        );
        ctr::cipher::StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
    }

    /// A seal whose encryption subkey is `enc_key` itself, for known-answer
    /// tests of the raw AES-256-CTR primitive.
    pub fn with_raw_cipher_key(enc_key: &[u8; KEY_LEN]) -> SealKey {
        let mut key = SealKey::new(enc_key);
        key.cipher = Aes256::new(enc_key.into());
        key
    }

    /// The truncated HMAC-SHA256 tag over the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Check a tag in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Fill `buf` from the kernel's CSPRNG (`getrandom(2)`).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe the writable slice `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(())
}

/// A fresh random 32-byte key.
pub fn random_key() -> io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    random_bytes(&mut key)?;
    Ok(key)
}

/// A fresh random (version 4) UUID, without pulling in another crate.
pub fn random_uuid() -> io::Result<uuid::Uuid> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    Ok(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_differ_and_keystream_inverts() {
        let key = SealKey::new(&[7u8; KEY_LEN]);
        let nonce = [1u8; NONCE_LEN];
        let mut data = b"hello opticon".to_vec();
        key.apply_keystream(&nonce, &mut data);
        assert_ne!(&data[..], b"hello opticon");
        key.apply_keystream(&nonce, &mut data);
        assert_eq!(&data[..], b"hello opticon");
        let tag = key.tag(&[b"a", b"bc"]);
        assert!(key.verify(&[b"abc"], &tag));
        assert!(!key.verify(&[b"abd"], &tag));
        assert!(!SealKey::new(&[8u8; KEY_LEN]).verify(&[b"abc"], &tag));
    }

    #[test]
    fn random_is_random() {
        assert_ne!(random_key().unwrap(), random_key().unwrap());
        assert_eq!(random_uuid().unwrap().get_version_num(), 4);
    }
}
