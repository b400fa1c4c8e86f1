//! Per tenant, the host list the collector keeps (`tenant.hosts`): each
//! host's first and last record time and its bytes, so that the API lists
//! 10,000 hosts from one file instead of opening each host's day files.
//!
//! The file, replaced whole each write cycle:
//!
//! ```text
//! offset     size  field
//! 0          8     magic "OPTHOSTS"
//! 8          2     version (1, little-endian)
//! 10         2     zero
//! 12         4     number of hosts N (little-endian)
//! 16         40*N  per host, by UUID: UUID (16 bytes), first and last
//!                  record time (i64 LE, i64::MIN: none), bytes (u64 LE)
//! 16+40*N    8     SHA-256 of everything before, first 8 bytes
//! ```
//!
//! Readers trust it only while the collector publishes (a stopped
//! collector's index may be out of date) and only for hosts whose
//! directory exists: a host added or deleted by others since the last
//! cycle is looked at on disk.

use super::format::checksum;
use super::host::Usage;
use super::{DbError, Replacement};
use std::path::Path;
use uuid::Uuid;

/// The index file in a tenant's directory.
pub const HOSTS_FILE: &str = "tenant.hosts";
const MAGIC: &[u8; 8] = b"OPTHOSTS";
const VERSION: u16 = 1;
const RECORD: usize = 40;

fn time(t: Option<i64>) -> [u8; 8] {
    t.unwrap_or(i64::MIN).to_le_bytes()
}

/// Write a tenant's index (any order; stored by UUID).
pub fn write(tenant_dir: &Path, hosts: &mut [(Uuid, Usage)]) -> Result<(), DbError> {
    hosts.sort_unstable_by_key(|(h, _)| *h);
    let mut out = Vec::with_capacity(24 + RECORD * hosts.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(hosts.len() as u32).to_le_bytes());
    for (h, u) in hosts.iter() {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&time(u.first));
        out.extend_from_slice(&time(u.last));
        out.extend_from_slice(&u.bytes.to_le_bytes());
    }
    let sum = checksum(&[&out]);
    out.extend_from_slice(&sum);
    let mut r = Replacement::create(&tenant_dir.join(HOSTS_FILE))?;
    r.write(&out)?;
    r.commit()
}

/// Read a tenant's index; `None` when it is missing, damaged or of
/// another version (the reader then looks at the hosts themselves).
pub fn read(tenant_dir: &Path) -> Option<Vec<(Uuid, Usage)>> {
    let raw = std::fs::read(tenant_dir.join(HOSTS_FILE)).ok()?;
    if raw.len() < 24 || &raw[..8] != MAGIC || raw[8..10] != VERSION.to_le_bytes() {
        return None;
    }
    let n = u32::from_le_bytes(raw[12..16].try_into().ok()?) as usize;
    let end = 16 + RECORD.checked_mul(n)?;
    if raw.len() != end + 8 || checksum(&[&raw[..end]]) != raw[end..] {
        return None;
    }
    let int = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let some = |t: i64| (t != i64::MIN).then_some(t);
    Some(
        raw[16..end]
            .chunks_exact(RECORD)
            .map(|r| {
                let id = Uuid::from_slice(&r[..16]).unwrap_or_default();
                let usage = Usage {
                    first: some(int(&r[16..24])),
                    last: some(int(&r[24..32])),
                    bytes: int(&r[32..40]) as u64,
                };
                (id, usage)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("opticon-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut hosts = vec![
            (
                Uuid::from_u128(2),
                Usage {
                    bytes: 900,
                    first: Some(10),
                    last: Some(70),
                },
            ),
            (Uuid::from_u128(1), Usage::default()),
        ];
        write(&dir, &mut hosts).unwrap();
        let back = read(&dir).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, Uuid::from_u128(1));
        assert_eq!(back[1].1.last, Some(70));
        assert_eq!(back[0].1.first, None);
        let path = dir.join(HOSTS_FILE);
        let mut raw = std::fs::read(&path).unwrap();
        raw[20] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(read(&dir).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
