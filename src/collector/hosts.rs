//! Hosts in memory: each host's live state kept packed between write
//! cycles, created (and restored from its latest record) when first
//! heard, its meter definitions, and forgetting hosts that went silent.

use super::packed::Packed;
use super::sessions::mtime;
use super::state::Collector;
use crate::conf::{self, Node};
use crate::db::meters::{self, MeterDef, Origin};
use crate::db::tenant::HOST_FILE;
use crate::db::{host, ParkedWriter};
use crate::model::binary::{apply_payload, apply_payload_at, put_restamped, PayloadReader};
use crate::model::{unix_now, HostMeters, MeterValue, Scalar, Status};
use crate::svc;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

/// What a host's definitions were built from: the modification times
/// of `tenant.conf` and `host.conf`, and of the host's directory when
/// `host.conf` was last looked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DefsStamp {
    tenant: FileTime,
    host: FileTime,
    dir: FileTime,
}

/// A file's modification time in nanoseconds since the epoch, 0 for a
/// file that has none (8 bytes a time where `Option<SystemTime>` takes
/// 16: a host keeps three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileTime(u64);

impl FileTime {
    fn of(time: Option<SystemTime>) -> FileTime {
        FileTime(
            time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| (d.as_nanos() as u64).max(1)),
        )
    }

    /// The time again (`of` gives it back unchanged).
    fn time(self) -> Option<SystemTime> {
        (self.0 > 0).then(|| std::time::UNIX_EPOCH + Duration::from_nanos(self.0))
    }
}

/// Payloads as received (length-prefixed) waiting for a busy host's
/// write cycle: most hosts have none, so they are kept behind one
/// pointer (8 bytes a host where a vector takes 24).
#[derive(Default)]
// A boxed vector on purpose: one word in the host, three behind it.
#[allow(clippy::box_collection)]
pub(super) struct Pending(Option<Box<Vec<u8>>>);

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The payloads, each after its length as a varint.
    pub(super) fn bytes(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }

    /// Bytes allocated.
    pub(super) fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.capacity())
    }

    fn buffer(&mut self) -> &mut Vec<u8> {
        self.0.get_or_insert_with(Default::default)
    }
}

/// A host's `host.conf` is looked at when its directory changed (the
/// file replaced, as `opticon-db` and the API write it) and, for edits in
/// place, once in this many write cycles.
pub const HOST_CONF_RECHECK: u64 = 16;

/// Payloads that arrived for a host since its last write cycle, kept as
/// received (length-prefixed) until the cycle merges them; a host that
/// sends more than this between cycles is busy: it stays decoded until
/// the cycle and its payloads merge as they arrive.
const PENDING_LIMIT: usize = 16 << 10;

/// Bytes a [`HostState`] takes at most (checked by a test).
#[cfg(test)]
const HOST_STATE_MAX: usize = 232;

/// One host's live state.
///
/// Between write cycles a host costs its packed meters (changes against
/// the last record, which the parked writer keeps encoded, with its first
/// payload since the last cycle merged in) plus any later payloads as
/// received: a host is decoded at most twice a cycle (at its first
/// payload and in the cycle), however many datagrams it sends.
pub(super) struct HostState {
    pub(super) packed: Packed,
    pub(super) pending: Pending,
    /// A busy host's current meters (`packed` and `pending` are then
    /// out of date).
    pub(super) busy: Option<Box<HostMeters>>,
    pub(super) badness: f64,
    pub(super) status: Status,
    pub(super) last_seen: Instant,
    pub(super) remote: SocketAddr,
    /// The host's writer between write cycles (no open descriptors).
    pub(super) writer: ParkedWriter,
    /// Payload bytes received since the last write cycle.
    pub(super) cycle_bytes: u64,
    /// A payload was merged into `packed` since the last write cycle.
    pub(super) merged: bool,
    /// The agent's time of its latest sample.
    pub(super) agent_time: i64,
    /// The agent time last exported.
    pub(super) exported: i64,
    /// Definitions, with the tenant's and the host's file times they
    /// were built from.
    pub(super) defs: Option<(DefsStamp, Arc<Vec<MeterDef>>)>,
    /// The number of the host log's next entry, once known (the
    /// collector is the log's only writer: it need not read the log
    /// again for each status change).
    pub(super) log_next: Option<NonZeroU64>,
}

/// Working buffers of one write-cycle worker, reused from host to host
/// and from cycle to cycle: hosts of one fleet hold the same meter
/// names, so decoding the next host into them allocates next to nothing
/// (a profile at 100,000 hosts had malloc and free at 37 % of the
/// collector's time when every host decoded into fresh sets).
#[derive(Default)]
pub(super) struct Scratch {
    /// The host's last stored record.
    pub(super) base: HostMeters,
    /// The host's current meters.
    pub(super) meters: HostMeters,
    /// The frame body being encoded.
    pub(super) body: Vec<u8>,
    /// A meter's text being made.
    pub(super) text: String,
    /// Buffers for hosts' overview entries, handed back by the cycle once
    /// it wrote them out: a million hosts' entries are not a million
    /// allocations a cycle, each freed on another thread than made it.
    pub(super) overviews: Vec<String>,
}

/// An overview buffer larger than this (a host with hundreds of meters)
/// is freed, not kept for the next host.
pub(super) const OVERVIEW_KEEP: usize = 4 << 10;

impl HostState {
    /// A host first heard from `from` just now, with nothing stored.
    pub(super) fn new(from: SocketAddr) -> HostState {
        HostState {
            packed: Packed::pack(&HostMeters::new(), None),
            pending: Pending::default(),
            busy: None,
            badness: 0.0,
            status: Status::Unset,
            last_seen: Instant::now(),
            remote: from,
            writer: ParkedWriter::default(),
            cycle_bytes: 0,
            merged: false,
            agent_time: 0,
            exported: 0,
            defs: None,
            log_next: None,
        }
    }

    /// Decode the last stored record (what packed meters are a delta
    /// against) into `base`; false when there is none.
    fn base_into(&self, base: &mut HostMeters) -> bool {
        self.writer.prev_into(base)
    }

    /// The current meters (unpacked, with the pending payloads merged)
    /// into `scratch.meters`, their base into `scratch.base`; returns
    /// whether there is a base (the caller packs them again).
    pub(super) fn unpack_into(&mut self, scratch: &mut Scratch) -> bool {
        self.unpack_telling(scratch).0
    }

    /// [`HostState::unpack_into`], and whether the meters are the base
    /// with the packed changes, as packed (no payload merged since): then
    /// those changes hold for every meter the caller leaves alone.
    pub(super) fn unpack_telling(&mut self, scratch: &mut Scratch) -> (bool, bool) {
        let has_base = self.base_into(&mut scratch.base);
        let base = has_base.then_some(&scratch.base);
        if let Some(meters) = self.busy.take() {
            scratch.meters = *meters;
            return (has_base, false);
        }
        let mut as_packed = has_base && self.pending.is_empty();
        if let Err(e) = self.packed.unpack_into(base, &mut scratch.meters) {
            svc::log::err(&format!("cannot unpack a host's meters: {e}"));
            scratch.meters = HostMeters::new();
            as_packed = false;
        }
        let mut r = PayloadReader::bare(self.pending.bytes());
        while let Ok(n) = r.read_varint() {
            match r.read_bytes(n as usize) {
                // Validated on arrival.
                Ok(payload) => drop(apply_payload(&mut scratch.meters, payload)),
                Err(_) => break,
            }
        }
        self.pending = Pending::default();
        (has_base, as_packed)
    }

    /// Pack the meters just judged: against `base` (the last stored
    /// record), or, when their record was stored, as their own base.
    pub(super) fn settle(&mut self, meters: &HostMeters, base: Option<&HostMeters>, stored: bool) {
        self.packed = if stored {
            Packed::as_base(meters)
        } else {
            Packed::pack(meters, base)
        };
    }

    /// The definitions that apply to this host: its tenant's `base`
    /// (shared, not copied; built from `tenant.conf` as it was at
    /// `tenant_modified`), or a copy overlaid with the host's `host.conf`
    /// in the host's directory `dir` when it has one (rebuilt only when
    /// either file changes). `host.conf` is looked at only when the
    /// directory changed since (`dir_modified`), or when `recheck` says so.
    pub(super) fn defs(
        &mut self,
        base: Arc<Vec<MeterDef>>,
        tenant_modified: Option<SystemTime>,
        dir_modified: Option<SystemTime>,
        recheck: bool,
        dir: &Path,
    ) -> Arc<Vec<MeterDef>> {
        if let Some((m, defs)) = &self.defs {
            if m.tenant == FileTime::of(tenant_modified)
                && m.dir == FileTime::of(dir_modified)
                && !recheck
            {
                return Arc::clone(defs);
            }
        }
        let path = &dir.join(HOST_FILE);
        let modified = mtime(path);
        let stamp = DefsStamp {
            tenant: FileTime::of(tenant_modified),
            host: FileTime::of(modified),
            dir: FileTime::of(dir_modified),
        };
        if let Some((m, defs)) = &mut self.defs {
            if (m.tenant, m.host) == (stamp.tenant, stamp.host) {
                *m = stamp;
                return Arc::clone(defs);
            }
        }
        let defs = match modified.and_then(|_| conf::load_file(path).ok()) {
            Some(doc) => match doc.get("meter") {
                Some(Node::Dict(md)) => {
                    let mut own = base.as_ref().clone();
                    let _ = meters::overlay(&mut own, md, Origin::Host);
                    Arc::new(own)
                }
                _ => base,
            },
            None => base,
        };
        self.defs = Some((stamp, Arc::clone(&defs)));
        defs
    }

    /// The modification time of the host's directory when it was last
    /// looked at.
    pub(super) fn dir_modified(&self) -> Option<SystemTime> {
        self.defs.as_ref().and_then(|(stamp, _)| stamp.dir.time())
    }

    /// Keep a payload (validated) for the next write cycle, stamped
    /// `time` (the collector's receive time). The first one since the
    /// last cycle is merged into the packed meters at once (decoded in
    /// `scratch`): a host that sends one sample a minute then holds its
    /// changes against its last record (a few hundred bytes), not the
    /// payload (a kilobyte). Later ones wait as received, so a host that
    /// sends many datagrams costs one merge a cycle, not one each.
    pub(super) fn queue_payload(&mut self, payload: &[u8], time: i64, scratch: &mut Scratch) {
        if !self.merged && self.busy.is_none() && self.pending.is_empty() {
            self.merged = true;
            let has_base = self.unpack_into(scratch);
            // Validated on arrival.
            let _ = apply_payload_at(&mut scratch.meters, payload, time);
            self.packed = Packed::pack(&scratch.meters, has_base.then_some(&scratch.base));
            return;
        }
        if self.busy.is_none() && self.pending.bytes().len() + payload.len() > PENDING_LIMIT {
            self.unpack_into(scratch);
            self.busy = Some(Box::new(std::mem::take(&mut scratch.meters)));
        }
        if let Some(meters) = &mut self.busy {
            let _ = apply_payload_at(meters, payload, time);
            return;
        }
        // Validated on arrival: the header reads.
        let _ = put_restamped(self.pending.buffer(), payload, time, true);
    }
}

impl Collector {
    /// Note that a host was heard from, creating its state (restored from
    /// its latest stored record: meters, badness and status survive a
    /// collector restart).
    pub(super) fn touch(&mut self, key: (Uuid, Uuid), from: SocketAddr) {
        let now = Instant::now();
        if let Some(h) = self.hosts.get_mut(&key) {
            h.last_seen = now;
            h.remote = from;
            return;
        }
        let (tenant, host) = key;
        let mut state = HostState::new(from);
        let stored = match self.index_may_have_records(key) {
            true => host::latest(&self.db.host_dir(tenant, host)),
            false => Ok(None),
        };
        if let Ok(Some((_, mut meters))) = stored {
            if let Some(MeterValue::Scalar(Scalar::Frac(b))) =
                meters.get("badness").map(|m| &m.value)
            {
                state.badness = *b;
            }
            if let Some(MeterValue::Scalar(Scalar::Str(s))) = meters.get("status").map(|m| &m.value)
            {
                state.status = Status::parse(s);
            }
            meters.stamp(unix_now());
            state.packed = Packed::pack(&meters, None);
        }
        if self.new_host_lines.admit() {
            svc::log::info(&format!(
                "host {host} of tenant {tenant} seen from {}",
                from.ip()
            ));
        }
        self.hosts.insert(key, Box::new(state));
        self.usage.entry(tenant).or_default().hosts += 1;
    }

    /// Drop hosts silent for `interval/forget` from memory, with their
    /// sessions; their stored data stays until purged.
    pub(super) fn forget_silent(&mut self) {
        let limit = Duration::from_secs(self.cfg.forget);
        let gone: Vec<(Uuid, Uuid)> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.last_seen.elapsed() > limit)
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            self.hosts.remove(&key);
            if let Some(u) = self.usage.get_mut(&key.0) {
                u.hosts = u.hosts.saturating_sub(1);
            }
            self.sessions.retain(|_, s| (s.tenant, s.host) != key);
            svc::log::info(&format!(
                "host {} silent for {} s: forgotten",
                key.1, self.cfg.forget
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::format::FRAME_DELTA;
    use crate::fleet::FakeHost;
    use crate::model::binary::encode_sample;

    /// A host in memory: at a million hosts each byte of it is a
    /// megabyte.
    #[test]
    fn a_host_stays_small() {
        let size = std::mem::size_of::<HostState>();
        assert!(size <= HOST_STATE_MAX, "{size} bytes");
    }

    #[test]
    fn the_first_payload_of_a_cycle_is_merged_and_later_ones_wait() {
        let mut fake = FakeHost::new(9);
        let stored = fake.sample(1_000_000);
        let mut h = HostState::new("127.0.0.1:1".parse().unwrap());
        h.writer = ParkedWriter::default().after(1_000_000, &stored, FRAME_DELTA, &[], None);
        h.packed = Packed::as_base(&stored);
        let first = fake.sample(1_000_060);
        let second = fake.sample(1_000_090);
        let mut scratch = Scratch::default();
        h.queue_payload(&encode_sample(1_000_060, &first), 1_000_061, &mut scratch);
        assert!(h.merged && h.pending.is_empty(), "merged at once");
        assert!(
            h.packed.heap_bytes() * 2 < encode_sample(0, &first).len(),
            "changes, not the sample: {} bytes",
            h.packed.heap_bytes()
        );
        h.queue_payload(&encode_sample(1_000_090, &second), 1_000_091, &mut scratch);
        assert!(!h.pending.is_empty(), "the second waits");
        let mut fresh = Scratch::default();
        assert!(h.unpack_into(&mut fresh));
        // The later payload wins, every meter stamped with its receive time.
        let mut want = second.clone();
        want.stamp(1_000_091);
        for (name, m) in want.iter() {
            let got = fresh.meters.get(name.as_str()).expect("meter kept");
            assert_eq!(
                encode_sample(0, &single(name, &got.value)),
                encode_sample(0, &single(name, &m.value)),
                "{name}"
            );
            assert_eq!(got.updated, 1_000_091, "{name}");
        }
    }

    fn single(name: &crate::model::MeterName, value: &MeterValue) -> HostMeters {
        let mut m = HostMeters::new();
        m.set(name.clone(), value.clone(), 0).unwrap();
        m
    }
}
