//! Tenants and hosts: who owns the meters.

use super::host::HostMeters;
use super::watch::Status;
use crate::base64::{self, Base64Error};
use crate::crypto::KEY_LEN;
use std::fmt;
use uuid::Uuid;

/// Default storage quota of a tenant, in megabytes (as the original).
pub const DEFAULT_QUOTA_MB: u64 = 128;

/// A tenant's AES-256 key, shown to users as base64.
///
/// Its `Debug` output is redacted so keys do not leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantKey(pub [u8; KEY_LEN]);

/// Why a text is not a tenant key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64.
    Base64(Base64Error),
    /// Decodes to the wrong number of bytes.
    Length(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Base64(e) => write!(f, "key is not base64: {e}"),
            KeyError::Length(n) => write!(f, "key is {n} bytes, not {KEY_LEN}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl TenantKey {
    /// Parse the base64 form users copy into agent configs.
    pub fn from_base64(text: &str) -> Result<TenantKey, KeyError> {
        let bytes = base64::decode(text).map_err(KeyError::Base64)?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(TenantKey(key))
    }

    /// The base64 form.
    pub fn to_base64(&self) -> String {
        base64::encode(&self.0)
    }
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantKey(<redacted>)")
    }
}

/// A customer: owns hosts, holds the key their agents seal with.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Identity, chosen at creation.
    pub id: Uuid,
    /// Human name.
    pub name: String,
    /// Key of the tenant's auth datagrams.
    pub key: TenantKey,
    /// Storage quota in megabytes.
    pub quota_mb: u64,
}

/// A monitored server, as the collector tracks it.
///
/// Hosts come into existence when their first valid auth datagram arrives;
/// there is no registration step.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Identity, from the agent (DMI product UUID, machine id or config).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant: Uuid,
    /// Current meters.
    pub meters: HostMeters,
    /// Accumulated badness from watchers.
    pub badness: f64,
    /// Status derived from badness and staleness.
    pub status: Status,
    /// Unix time of the last accepted datagram.
    pub last_seen: i64,
}

impl Host {
    /// A host seen for the first time at `now`.
    pub fn new(id: Uuid, tenant: Uuid, now: i64) -> Host {
        Host {
            id,
            tenant,
            meters: HostMeters::new(),
            badness: 0.0,
            status: Status::Unset,
            last_seen: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trip_and_errors() {
        let key = TenantKey([9u8; KEY_LEN]);
        assert_eq!(TenantKey::from_base64(&key.to_base64()).unwrap(), key);
        assert_eq!(TenantKey::from_base64("Zm9v"), Err(KeyError::Length(3)));
        assert!(matches!(
            TenantKey::from_base64("!!!!"),
            Err(KeyError::Base64(_))
        ));
        assert_eq!(format!("{key:?}"), "TenantKey(<redacted>)");
    }
}
