//! Datagrams between agent and collector.
//!
//! Two kinds, as in the original: an *auth* datagram, sealed with the
//! tenant key, opens or re-keys a session (it carries the host id and a
//! fresh session key); *meter* datagrams, sealed with the session key, carry
//! sample payloads from [`crate::model::binary`]. Layouts (all integers
//! big-endian; `man 7 opticon-protocol` is the reference):
//!
//! ```text
//! auth:  "OPT" ver=1 'A' tenant:16 session:8 serial:8 nonce:12
//!        ENC(host:16 session-key:32 time:8) tag:16            = 121 bytes
//! meter: "OPT" ver=1 'M' session:8 serial:8 ENC(payload) tag:16
//! ```
//!
//! The tag is HMAC-SHA256 (truncated to 16 bytes) over every byte before
//! it. Meter datagrams use the nonce `0:4 || serial:8`, which never repeats
//! because serials only grow within a session; auth datagrams, sealed by
//! many hosts under one tenant key, use a random nonce.

mod replay;
mod session;
mod split;

pub use replay::{ReplayWindow, REPLAY_WINDOW};
pub use session::{OpenedAuth, SenderSession};
pub use split::{split_records, split_sample, SplitError};

use crate::crypto::{SealKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::model::binary::CodecError;
use std::fmt;
use uuid::Uuid;

/// First three bytes of every datagram.
pub const MAGIC: [u8; 3] = *b"OPT";
/// Protocol version this code speaks.
pub const VERSION: u8 = 1;
/// Kind byte of auth datagrams.
pub const KIND_AUTH: u8 = b'A';
/// Kind byte of meter datagrams.
pub const KIND_METER: u8 = b'M';
/// Default largest datagram: fits a 1500-byte Ethernet MTU with room for
/// IPv6 and tunnel headers, so datagrams are never IP-fragmented.
pub const DEFAULT_MAX_DATAGRAM: usize = 1400;
/// Smallest configurable datagram size; every single meter element fits.
pub const MIN_DATAGRAM: usize = 512;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65507;
/// Default tolerated difference between agent and collector clocks.
pub const DEFAULT_MAX_SKEW: i64 = 180;

const PREFIX_LEN: usize = 5;
const AUTH_HEADER_LEN: usize = PREFIX_LEN + 16 + 8 + 8 + NONCE_LEN;
const AUTH_BODY_LEN: usize = 16 + KEY_LEN + 8;
/// Size of every auth datagram.
pub const AUTH_LEN: usize = AUTH_HEADER_LEN + AUTH_BODY_LEN + TAG_LEN;
const METER_HEADER_LEN: usize = PREFIX_LEN + 8 + 8;
/// Bytes a meter datagram adds around its payload.
pub const METER_OVERHEAD: usize = METER_HEADER_LEN + TAG_LEN;

/// Why a datagram was not accepted. Each reason is counted on its own by
/// the collector; [`Rejection::counter`] names the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Does not start with the magic: not an Opticon datagram.
    BadMagic,
    /// An Opticon datagram of a protocol version this code does not speak.
    BadVersion(u8),
    /// A kind byte that is neither auth nor meter, or a length that does
    /// not fit the kind.
    Malformed,
    /// Larger than the configured maximum.
    Oversize(usize),
    /// An auth datagram for a tenant the collector does not know.
    UnknownTenant,
    /// A meter datagram for a session the collector does not know.
    UnknownSession,
    /// The tag does not verify: tampered, or sealed with another key.
    BadMac,
    /// A serial already accepted within the replay window.
    Replay,
    /// A serial below the replay window.
    TooOld,
    /// An auth timestamp further from the collector's clock than allowed.
    ClockSkew(i64),
    /// Authentic, but the payload does not decode.
    BadPayload(CodecError),
    /// Authentic, but over one of its tenant's limits (hosts, new hosts
    /// a minute, bytes per host per write cycle).
    OverLimit,
}

impl Rejection {
    /// Short stable name for counters and logs.
    pub fn counter(&self) -> &'static str {
        match self {
            Rejection::BadMagic => "bad_magic",
            Rejection::BadVersion(_) => "bad_version",
            Rejection::Malformed => "malformed",
            Rejection::Oversize(_) => "oversize",
            Rejection::UnknownTenant => "unknown_tenant",
            Rejection::UnknownSession => "unknown_session",
            Rejection::BadMac => "bad_mac",
            Rejection::Replay => "replay",
            Rejection::TooOld => "too_old",
            Rejection::ClockSkew(_) => "clock_skew",
            Rejection::BadPayload(_) => "bad_payload",
            Rejection::OverLimit => "over_limit",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::BadMagic => write!(f, "not an Opticon datagram"),
            Rejection::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            Rejection::Malformed => write!(f, "malformed datagram"),
            Rejection::Oversize(n) => write!(f, "datagram of {n} bytes is too large"),
            Rejection::UnknownTenant => write!(f, "unknown tenant"),
            Rejection::UnknownSession => write!(f, "unknown session"),
            Rejection::BadMac => write!(f, "authentication tag does not verify"),
            Rejection::Replay => write!(f, "replayed serial"),
            Rejection::TooOld => write!(f, "serial older than the replay window"),
            Rejection::ClockSkew(d) => write!(f, "timestamp {d} s away from the collector clock"),
            Rejection::BadPayload(e) => write!(f, "{e}"),
            Rejection::OverLimit => write!(f, "over a limit of its tenant"),
        }
    }
}

impl std::error::Error for Rejection {}

/// The cleartext header of an auth datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    /// Tenant whose key sealed it.
    pub tenant: Uuid,
    /// Session the agent opens or re-keys.
    pub session: u64,
    /// Serial in the session's sequence.
    pub serial: u64,
    raw: &'a [u8],
}

/// The cleartext header of a meter datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterHeader<'a> {
    /// Session whose key sealed it.
    pub session: u64,
    /// Serial in the session's sequence.
    pub serial: u64,
    raw: &'a [u8],
}

/// A datagram whose cleartext header parsed; nothing is verified yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// Opens or re-keys a session.
    Auth(AuthHeader<'a>),
    /// Carries a sample payload.
    Meter(MeterHeader<'a>),
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Parse the cleartext header, cheaply, so that the receiver can find the
/// key; rejects anything that is not a well-formed Opticon datagram.
pub fn peek(buf: &[u8]) -> Result<Datagram<'_>, Rejection> {
    if buf.len() < 3 || buf[..3] != MAGIC {
        return Err(Rejection::BadMagic);
    }
    // The version is told even of a datagram too short for a header.
    match buf.get(3) {
        Some(&v) if v != VERSION => return Err(Rejection::BadVersion(v)),
        _ if buf.len() < PREFIX_LEN => return Err(Rejection::Malformed),
        _ => {}
    }
    match buf[4] {
        KIND_AUTH if buf.len() == AUTH_LEN => {
            let tenant = Uuid::from_slice(&buf[5..21]).map_err(|_| Rejection::Malformed)?;
            Ok(Datagram::Auth(AuthHeader {
                tenant,
                session: be_u64(&buf[21..29]),
                serial: be_u64(&buf[29..37]),
                raw: buf,
            }))
        }
        KIND_METER if buf.len() > METER_OVERHEAD => Ok(Datagram::Meter(MeterHeader {
            session: be_u64(&buf[5..13]),
            serial: be_u64(&buf[13..21]),
            raw: buf,
        })),
        _ => Err(Rejection::Malformed),
    }
}

fn meter_nonce(serial: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&serial.to_be_bytes());
    nonce
}

/// What an auth datagram carries under its seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBody {
    /// The host the session belongs to.
    pub host: Uuid,
    /// Key for the session's meter datagrams.
    pub session_key: [u8; KEY_LEN],
    /// Sender's clock (Unix seconds) when sealed.
    pub time: i64,
}

/// Seal an auth datagram under the tenant key, with a random nonce.
pub fn seal_auth(
    tenant_key: &SealKey,
    tenant: Uuid,
    session: u64,
    serial: u64,
    body: &AuthBody,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(AUTH_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(KIND_AUTH);
    out.extend_from_slice(tenant.as_bytes());
    out.extend_from_slice(&session.to_be_bytes());
    out.extend_from_slice(&serial.to_be_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    crate::crypto::random_bytes(&mut nonce)?;
    out.extend_from_slice(&nonce);
    let body_at = out.len();
    out.extend_from_slice(body.host.as_bytes());
    out.extend_from_slice(&body.session_key);
    out.extend_from_slice(&body.time.to_be_bytes());
    tenant_key.apply_keystream(&nonce, &mut out[body_at..]);
    let tag = tenant_key.tag(&[&out]);
    out.extend_from_slice(&tag);
    Ok(out)
}

impl AuthHeader<'_> {
    /// Verify and decrypt. `window` is the session's replay window when the
    /// session already exists; it moves only once the tag has verified.
    pub fn open(
        &self,
        tenant_key: &SealKey,
        window: Option<&mut ReplayWindow>,
        now: i64,
        max_skew: i64,
    ) -> Result<AuthBody, Rejection> {
        if let Some(w) = &window {
            w.check(self.serial)?;
        }
        let (sealed, tag) = self.raw.split_at(AUTH_LEN - TAG_LEN);
        if !tenant_key.verify(&[sealed], tag) {
            return Err(Rejection::BadMac);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[AUTH_HEADER_LEN - NONCE_LEN..AUTH_HEADER_LEN]);
        let mut body = [0u8; AUTH_BODY_LEN];
        body.copy_from_slice(&sealed[AUTH_HEADER_LEN..]);
        tenant_key.apply_keystream(&nonce, &mut body);
        let time = be_u64(&body[48..56]) as i64;
        let skew = time.saturating_sub(now);
        if skew.abs() > max_skew {
            return Err(Rejection::ClockSkew(skew));
        }
        if let Some(w) = window {
            w.accept(self.serial);
        }
        let host = Uuid::from_slice(&body[..16]).map_err(|_| Rejection::Malformed)?;
        let mut session_key = [0u8; KEY_LEN];
        session_key.copy_from_slice(&body[16..48]);
        Ok(AuthBody {
            host,
            session_key,
            time,
        })
    }
}

/// Seal a meter datagram into `out` (cleared first).
pub fn seal_meter(
    session_key: &SealKey,
    session: u64,
    serial: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(payload.len() + METER_OVERHEAD);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(KIND_METER);
    out.extend_from_slice(&session.to_be_bytes());
    out.extend_from_slice(&serial.to_be_bytes());
    out.extend_from_slice(payload);
    session_key.apply_keystream(&meter_nonce(serial), &mut out[METER_HEADER_LEN..]);
    let tag = session_key.tag(&[out]);
    out.extend_from_slice(&tag);
}

impl MeterHeader<'_> {
    /// Verify and decrypt into `plain` (cleared first), moving the replay
    /// window only after the tag verified. The payload is returned
    /// undecoded; see [`crate::model::binary::apply_payload`].
    pub fn open<'p>(
        &self,
        session_key: &SealKey,
        window: &mut ReplayWindow,
        plain: &'p mut Vec<u8>,
    ) -> Result<&'p [u8], Rejection> {
        window.check(self.serial)?;
        self.unseal(session_key, plain)?;
        window.accept(self.serial);
        Ok(plain)
    }

    /// Verify and decrypt into `plain` (cleared first) without the replay
    /// window: the part of [`MeterHeader::open`] that needs no session
    /// state, so that threads can do it ahead (the window is checked and
    /// moved afterwards, in order, by whoever owns it).
    pub fn unseal(&self, session_key: &SealKey, plain: &mut Vec<u8>) -> Result<(), Rejection> {
        let (sealed, tag) = self.raw.split_at(self.raw.len() - TAG_LEN);
        if !session_key.verify(&[sealed], tag) {
            return Err(Rejection::BadMac);
        }
        plain.clear();
        plain.extend_from_slice(&sealed[METER_HEADER_LEN..]);
        session_key.apply_keystream(&meter_nonce(self.serial), plain);
        Ok(())
    }
}
