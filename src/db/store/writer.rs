//! The writer of a tenant's days: one lock for all its hosts, one open
//! day file per date written, appends of whole records, and the index
//! rewritten once the records it covers are durable.

use super::index::{self, DayIndex, HostDay};
use super::record;
use super::scan::{Item, Scanner};
use super::{data_path, days_dir, index_path};
use crate::db::delta;
use crate::db::format::{
    check_header, generation, header_with, FRAME_DELTA, FRAME_KEY, HEADER_LEN, KIND_TENANT_DAY,
};
use crate::db::host::{
    encode_frame, frames_in_block, lock_within, BlockEncoder, Disk, Repair, Storage,
};
use crate::db::time::Date;
use crate::db::{adopt_owner, io_at, DbError};
use crate::model::binary::{decode_sample_into, put_sample};
use crate::model::HostMeters;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What [`TenantStore::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The record went in; it took this many bytes.
    Stored(u64),
    /// Refused: a delta for a host without a record that day (a new day,
    /// or its records were removed meanwhile); encode a full frame.
    NeedsKey,
}

/// Appended records gathered before one write: a million hosts' records
/// of ~300 bytes went to the file one `write` each, under the tenant's
/// lock, and the kernel zeroed the rest of each page they began.
const WRITE_BATCH: usize = 64 << 10;

/// A day file open for appending, with its hosts.
struct DayWriter {
    path: PathBuf,
    file: File,
    /// Its length with the records not written yet: where the next
    /// record goes.
    len: u64,
    /// Records appended but not written to the file yet (up to
    /// [`WRITE_BATCH`]; all written before a sync and an index).
    unwritten: Vec<u8>,
    /// A write failed: what the file holds is read again before the
    /// next append, and every host starts with a full frame.
    broken: bool,
    ino: u64,
    generation: u32,
    hosts: HashMap<Uuid, HostDay>,
    /// Hosts whose next record must be a full frame: damage found in the
    /// file may have broken their chains.
    rekey: HashSet<Uuid>,
    /// The length the index on disk covers.
    indexed: u64,
    /// Appended to since the last sync.
    unsynced: bool,
}

/// A generation for a new day file: differs from any earlier file of
/// the same name with overwhelming likelihood.
pub(crate) fn new_generation() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 32);
    ((mixed ^ (mixed >> 32)) as u32) | 1
}

/// Count a record into its host's entry.
pub(crate) fn note(
    hosts: &mut HashMap<Uuid, HostDay>,
    host: Uuid,
    offset: u64,
    size: u64,
    time: i64,
) {
    let e = hosts.entry(host).or_insert(HostDay {
        first_off: offset,
        last_off: offset,
        first_time: time,
        last_time: time,
        bytes: 0,
    });
    e.last_off = offset;
    e.last_time = time;
    e.bytes += size;
}

/// Write `day`'s unwritten records to its file. On failure they are
/// lost: the file is cut back to where they began and marked broken
/// (read again before the next append).
fn write_out(storage: &dyn Storage, day: &mut DayWriter) -> Result<(), DbError> {
    if day.unwritten.is_empty() {
        return Ok(());
    }
    let at = day.len - day.unwritten.len() as u64;
    let result = storage.append(&mut day.file, &day.path, at, &day.unwritten);
    day.unwritten.clear();
    if result.is_err() {
        day.broken = true;
        let _ = storage.truncate(&day.file, &day.path, at);
    }
    io_at(&day.path, result)
}

/// Whether a valid record ends exactly at `end` (or `end` is the end of
/// the header): an index is trusted only where the file agrees with it,
/// since bytes inserted before its end would shift every record after.
fn record_ends_at(file: &File, end: u64) -> bool {
    if end == HEADER_LEN as u64 {
        return true;
    }
    let mut trailer = [0u8; 4];
    if end < HEADER_LEN as u64 + 4 || file.read_exact_at(&mut trailer, end - 4).is_err() {
        return false;
    }
    let size = crate::db::format::FRAME_OVERHEAD as u64 + u64::from(u32::from_be_bytes(trailer));
    let Some(start) = end.checked_sub(size).filter(|s| *s >= HEADER_LEN as u64) else {
        return false;
    };
    matches!(record::read_at(file, start, end), Ok(Some(r)) if r.offset + r.size == end)
}

/// Where a damaged file is moved: `NAME.corrupt`, or `NAME.corrupt.N`.
pub(crate) fn corrupt_name(path: &Path) -> PathBuf {
    let base = format!("{}.corrupt", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

/// The only writer of a tenant's day files while it holds the lock.
pub struct TenantStore {
    days: PathBuf,
    storage: Arc<dyn Storage>,
    lock: Option<File>,
    open: BTreeMap<Date, DayWriter>,
    /// Directories with entries not yet made durable.
    unsynced_dirs: Vec<PathBuf>,
    /// Torn tails cut while opening day files.
    pub repairs: Vec<Repair>,
    /// Damage left in place for fsck (bytes that are no record, with
    /// records after them), and day files moved aside: one line each.
    pub damage: Vec<String>,
}

impl TenantStore {
    /// The store of the tenant in `tenant_dir` (nothing is touched yet).
    pub fn new(tenant_dir: &Path) -> TenantStore {
        TenantStore::with_storage(tenant_dir, Arc::new(Disk))
    }

    /// [`TenantStore::new`] with every write going to `storage`.
    pub fn with_storage(tenant_dir: &Path, storage: Arc<dyn Storage>) -> TenantStore {
        TenantStore {
            days: days_dir(tenant_dir),
            storage,
            lock: None,
            open: BTreeMap::new(),
            unsynced_dirs: Vec::new(),
            repairs: Vec::new(),
            damage: Vec::new(),
        }
    }

    /// Take the writer lock (creating the days directory). Day files
    /// changed by another writer since the last lock (a host deleted, a
    /// repair) are read again before the next append.
    pub fn lock(&mut self) -> Result<(), DbError> {
        self.lock_within(super::LOCK_PATIENCE)
    }

    /// [`TenantStore::lock`], waiting up to `patience` for another
    /// writer (a tool) to let go.
    pub fn lock_within(&mut self, patience: std::time::Duration) -> Result<(), DbError> {
        if self.lock.is_some() {
            return Ok(());
        }
        if !self.days.exists() {
            io_at(&self.days, self.storage.create_dir(&self.days))?;
            adopt_owner(&self.days);
            if let Some(parent) = self.days.parent() {
                self.unsynced_dirs.push(parent.to_path_buf());
            }
        }
        self.lock = Some(lock_within(&self.days, patience)?);
        self.open.retain(|_, d| {
            fs::metadata(&d.path).is_ok_and(|m| m.ino() == d.ino && m.len() == d.len)
        });
        Ok(())
    }

    /// Release the lock (after [`TenantStore::commit`]).
    pub fn unlock(&mut self) {
        // Appends not committed still reach the file, under the lock.
        let _ = self.write_out();
        self.lock = None;
    }

    /// Forget the day files before `date` (their last appends committed):
    /// a writer keeps only the days it still writes open.
    pub fn close_before(&mut self, date: Date) {
        self.open
            .retain(|d, w| *d >= date || w.unsynced || w.indexed != w.len);
    }

    fn day(&mut self, date: Date) -> Result<&mut DayWriter, DbError> {
        // Records lost in a failed write may be what later deltas were
        // made against: the file as it is, and full frames for all.
        let broken = self.open.get(&date).is_some_and(|d| d.broken);
        if broken {
            self.open.remove(&date);
        }
        if !self.open.contains_key(&date) {
            let mut w = self.open_day(date)?;
            if broken {
                w.rekey = w.hosts.keys().copied().collect();
            }
            // A new day takes the hosts of the day before: its table sized
            // for them at once, not grown (rehashed) under the lock while
            // a million hosts come in.
            let hosts = self.open.values().map(|d| d.hosts.len()).max();
            w.hosts
                .reserve(hosts.unwrap_or(0).saturating_sub(w.hosts.len()));
            self.open.insert(date, w);
        }
        self.open
            .get_mut(&date)
            .ok_or_else(|| DbError::Invalid("day file vanished".into()))
    }

    /// Open (creating) the day file of `date` and recover what its index
    /// does not cover: records appended after the last index, a torn
    /// tail to cut.
    fn open_day(&mut self, date: Date) -> Result<DayWriter, DbError> {
        let path = data_path(&self.days, date);
        if !path.exists() {
            let header = header_with(KIND_TENANT_DAY, new_generation(), date.start());
            io_at(&path, self.storage.create_file(&path, &header))?;
            adopt_owner(&path);
            if !self.unsynced_dirs.contains(&self.days) {
                self.unsynced_dirs.push(self.days.clone());
            }
        }
        let mut file = io_at(
            &path,
            OpenOptions::new().read(true).append(true).open(&path),
        )?;
        let mut len = io_at(&path, file.metadata())?.len();
        if len < HEADER_LEN as u64 {
            // Created, then lost in a crash before its data was durable.
            io_at(&path, self.storage.truncate(&file, &path, 0))?;
            let header = header_with(KIND_TENANT_DAY, new_generation(), date.start());
            io_at(&path, self.storage.append(&mut file, &path, 0, &header))?;
            len = HEADER_LEN as u64;
        }
        let mut head = [0u8; HEADER_LEN];
        io_at(&path, file.read_exact_at(&mut head, 0))?;
        match check_header(&head, KIND_TENANT_DAY) {
            Ok(aux) if aux == date.start() => {}
            other => {
                // The name says the day: rebuilt around the records that
                // verify (the lock is held), nothing of them is lost.
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(aux) => format!("a file of another day ({aux})"),
                };
                drop(file);
                let done = super::rewrite::rewrite_day(&self.days, date, |_| true)?;
                self.damage.push(format!(
                    "{}: {why}: header rebuilt, {} records kept",
                    path.display(),
                    done.kept
                ));
                return self.open_day(date);
            }
        }
        let generation = generation(&head);
        let mut hosts = HashMap::new();
        let mut from = HEADER_LEN as u64;
        let ipath = index_path(&self.days, date);
        if let Ok(Some(ix)) = DayIndex::open(&ipath, date) {
            if ix.generation == generation
                && ix.committed >= from
                && ix.committed <= len
                && record_ends_at(&file, ix.committed)
            {
                if let Ok(all) = ix.all() {
                    hosts = all.into_iter().collect();
                    from = ix.committed;
                }
            }
        }
        let indexed = if from == HEADER_LEN as u64 { 0 } else { from };
        let mut scanner = Scanner::new(&file, from, len);
        let mut cut = None;
        let mut damaged = false;
        while let Some(item) = io_at(&path, scanner.next_item())? {
            match item {
                Item::Record(r) => note(&mut hosts, r.host, r.offset, r.size, r.time),
                Item::Corrupt { from, to } => {
                    damaged = true;
                    self.damage.push(format!(
                        "{}: bytes {from}..{to} are no record (opticon-db fsck --repair)",
                        path.display()
                    ))
                }
                Item::TornTail { at } => cut = Some(at),
            }
        }
        let rekey = if damaged {
            hosts.keys().copied().collect()
        } else {
            HashSet::new()
        };
        if let Some(at) = cut {
            io_at(&path, self.storage.truncate(&file, &path, at))?;
            io_at(&path, self.storage.sync_file(&file, &path))?;
            self.repairs.push(Repair {
                path: path.clone(),
                from: len,
                to: at,
            });
            len = at;
        }
        let ino = io_at(&path, file.metadata())?.ino();
        Ok(DayWriter {
            path,
            file,
            len,
            unwritten: Vec::new(),
            broken: false,
            ino,
            generation,
            hosts,
            rekey,
            indexed,
            unsynced: false,
        })
    }

    /// The host's entry in the day file of `date`, opening it.
    pub fn host_day(&mut self, date: Date, host: Uuid) -> Result<Option<HostDay>, DbError> {
        Ok(self.day(date)?.hosts.get(&host).copied())
    }

    /// Append one record of `host` (a frame `kind` and its `payload`, as
    /// [`crate::db::host::BlockEncoder`] makes them). Needs the lock;
    /// within a day a host's records must come in time order.
    pub fn append(
        &mut self,
        host: Uuid,
        time: i64,
        kind: u8,
        payload: &[u8],
    ) -> Result<Appended, DbError> {
        if self.lock.is_none() {
            return Err(DbError::Invalid(format!(
                "{}: appended to without the lock",
                self.days.display()
            )));
        }
        let date = Date::of(time);
        let day = self.day(date)?;
        let last = day.hosts.get(&host);
        if let Some(last) = last {
            if time <= last.last_time {
                return Err(DbError::OutOfOrder {
                    path: day.path.clone(),
                    last: last.last_time,
                    time,
                });
            }
        }
        let rekey = !day.rekey.is_empty() && day.rekey.remove(&host);
        if kind == FRAME_DELTA && (last.is_none() || rekey) {
            return Ok(Appended::NeedsKey);
        }
        let before = day.unwritten.len();
        record::put(
            &mut day.unwritten,
            time,
            kind,
            host,
            last.map_or(0, |l| l.last_off),
            payload,
        );
        let size = (day.unwritten.len() - before) as u64;
        note(&mut day.hosts, host, day.len, size, time);
        day.len += size;
        day.unsynced = true;
        if day.unwritten.len() >= WRITE_BATCH {
            if let Some(day) = self.open.get_mut(&date) {
                write_out(self.storage.as_ref(), day)?;
            }
        }
        Ok(Appended::Stored(size))
    }

    /// Write every appended record to its day file (not yet durable):
    /// before a sync, and before the file system is synced whole.
    pub fn write_out(&mut self) -> Result<(), DbError> {
        let mut first = None;
        for d in self.open.values_mut() {
            if let Err(e) = write_out(self.storage.as_ref(), d) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Encode and append one sample of `host` with its block encoder;
    /// a host without a record that day starts a new block. Returns the
    /// bytes stored.
    pub fn append_sample(
        &mut self,
        host: Uuid,
        time: i64,
        meters: &HostMeters,
        encoder: &mut BlockEncoder,
    ) -> Result<u64, DbError> {
        let kind = encoder.encode(time, meters);
        let (n, stored) = self.append_frame(host, time, meters, kind, encoder.body_mut())?;
        if stored != kind {
            encoder.keyed();
        }
        Ok(n)
    }

    /// Append the frame of `kind` in `body` just encoded from `meters`
    /// (the collector encodes outside the tenant's lock); a delta the day
    /// cannot take is encoded again in `body` as a full frame. Returns
    /// the disk bytes appended and the kind stored.
    pub fn append_frame(
        &mut self,
        host: Uuid,
        time: i64,
        meters: &HostMeters,
        kind: u8,
        body: &mut Vec<u8>,
    ) -> Result<(u64, u8), DbError> {
        match self.append(host, time, kind, body)? {
            Appended::Stored(n) => Ok((n, kind)),
            Appended::NeedsKey => {
                body.clear();
                put_sample(body, time, meters);
                match self.append(host, time, FRAME_KEY, body)? {
                    Appended::Stored(n) => Ok((n, FRAME_KEY)),
                    Appended::NeedsKey => Err(DbError::Invalid("a full frame refused".into())),
                }
            }
        }
    }

    /// Make every append durable: each day file written, then the
    /// directories that got new entries.
    pub fn sync(&mut self) -> Result<(), DbError> {
        self.write_out()?;
        for d in self.open.values_mut().filter(|d| d.unsynced) {
            io_at(&d.path, self.storage.sync_file(&d.file, &d.path))?;
            d.unsynced = false;
        }
        while let Some(dir) = self.unsynced_dirs.pop() {
            io_at(&dir, self.storage.sync_dir(&dir))?;
        }
        Ok(())
    }

    /// Rewrite the index of every day file appended to, once its records
    /// are durable (after [`TenantStore::sync`], or a `syncfs` of the
    /// whole file system, which `synced` says happened).
    pub fn write_indexes(&mut self, synced: bool) -> Result<(), DbError> {
        // Records still unwritten were not in the file synced.
        let synced = synced && self.open.values().all(|d| d.unwritten.is_empty());
        if !synced {
            self.sync()?;
        }
        for (date, d) in self.open.iter_mut() {
            // A failed write lost records its length counts: the file is
            // read again instead (before the next append).
            if d.indexed == d.len || d.broken {
                continue;
            }
            let entries = d.hosts.iter().map(|(h, e)| (*h, *e));
            let bytes = index::encode(*date, d.generation, d.len, entries);
            let ipath = index_path(&self.days, *date);
            io_at(&ipath, self.storage.create_file(&ipath, &bytes))?;
            adopt_owner(&ipath);
            d.indexed = d.len;
            d.unsynced = false;
        }
        // A cycle's buffer is not kept for the next (a collector holds a
        // store per tenant).
        for d in self.open.values_mut() {
            d.unwritten = Vec::new();
        }
        Ok(())
    }

    /// Sync, then write the indexes: what a writer does after each batch.
    pub fn commit(&mut self) -> Result<(), DbError> {
        self.write_indexes(false)
    }
}

impl Drop for TenantStore {
    /// Appends not committed still reach their files while the lock is
    /// held, as they did when each was written at once.
    fn drop(&mut self) {
        if self.lock.is_some() {
            let _ = self.write_out();
        }
    }
}

/// One host's writer for tools (`opticon-db host-import`): holds the
/// tenant's lock while it lives and takes samples in time order across
/// days, starting a block anew after the last one stored.
pub struct HostAppender {
    store: TenantStore,
    dir: PathBuf,
    host: Uuid,
    encoder: BlockEncoder,
    last_time: Option<i64>,
}

impl HostAppender {
    /// Take the tenant's writer lock and create the host's directory.
    pub fn open(tenant_dir: &Path, host: Uuid) -> Result<HostAppender, DbError> {
        let dir = tenant_dir.join(host.hyphenated().to_string());
        if !dir.exists() {
            io_at(&dir, fs::create_dir_all(&dir))?;
            adopt_owner(&dir);
        }
        let mut store = TenantStore::new(tenant_dir);
        store.lock()?;
        let last_time = super::reader::usage(tenant_dir, host)?.last;
        Ok(HostAppender {
            store,
            dir,
            host,
            encoder: BlockEncoder::default(),
            last_time,
        })
    }

    /// Append one sample, newer than the last one stored.
    pub fn append(&mut self, time: i64, meters: &HostMeters) -> Result<u64, DbError> {
        if let Some(last) = self.last_time.filter(|l| time <= *l) {
            return Err(DbError::OutOfOrder {
                path: self.dir.clone(),
                last,
                time,
            });
        }
        let n = self
            .store
            .append_sample(self.host, time, meters, &mut self.encoder)?;
        self.last_time = Some(time);
        Ok(n)
    }

    /// Make the samples appended durable and visible.
    pub fn sync(&mut self) -> Result<(), DbError> {
        self.store.commit()
    }

    /// What opening day files repaired or found damaged since asked
    /// last, one line each.
    pub fn notes(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self
            .store
            .repairs
            .drain(..)
            .map(|r| {
                format!(
                    "{}: cut torn tail ({} -> {} bytes)",
                    r.path.display(),
                    r.from,
                    r.to
                )
            })
            .collect();
        out.append(&mut self.store.damage);
        out
    }
}

/// What a host's next append needs between write cycles, compactly:
/// its last sample (the base for deltas, and for other compact copies of
/// the host's state), that sample's time, and how far into its block it
/// was. No descriptors, no locks: the tenant's store has those.
#[derive(Debug, Clone, Default)]
pub struct ParkedWriter {
    last_time: Option<i64>,
    prev: Option<Prev>,
    since_key: usize,
}

thread_local! {
    /// Each thread's buffer for a last sample being encoded.
    static KEEP: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A host's last sample, kept encoded.
#[derive(Debug, Clone)]
enum Prev {
    /// As one payload of the sample codec.
    Sample(Box<[u8]>),
    /// As a delta body against a sample shared by many hosts (see
    /// [`ParkedWriter::after`]): hosts of one fleet carry the same meter
    /// names and many of the same values, which a delta stores once.
    Against(Arc<HostMeters>, Box<[u8]>),
}

/// Samples that hosts' last samples are kept as changes against (see
/// [`ParkedWriter::after`]): one per set of meter names, up to a bound,
/// shared by every tenant (a reference never leaves memory, and a host's
/// own sample decodes back exactly). A reference no host uses any more
/// makes room for a new set of names.
#[derive(Debug)]
pub struct References {
    samples: Mutex<Vec<Arc<HostMeters>>>,
    max: usize,
}

impl References {
    /// At most `max` references (each a decoded sample, ~10 KB).
    pub fn new(max: usize) -> References {
        References {
            samples: Mutex::new(Vec::new()),
            max,
        }
    }

    /// The reference with the meter names of `meters`, made from them
    /// when there is none and room for one.
    pub fn for_meters(&self, meters: &HostMeters) -> Option<Arc<HostMeters>> {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = samples.iter().find(|r| r.same_names(meters)) {
            return Some(Arc::clone(r));
        }
        // Room is found before the sample is copied: with every slot in
        // use, a host of yet another set of names costs no copy.
        if samples.len() < self.max {
            samples.push(Arc::new(meters.clone()));
            return samples.last().cloned();
        }
        let unused = samples.iter_mut().find(|r| Arc::strong_count(r) == 1)?;
        *unused = Arc::new(meters.clone());
        Some(Arc::clone(unused))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.samples.lock().map_or(0, |s| s.len())
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ParkedWriter {
    /// Time of the last sample stored.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }

    /// Heap bytes of the last sample as kept (for the memory figures).
    pub fn prev_bytes(&self) -> usize {
        match &self.prev {
            Some(Prev::Sample(b) | Prev::Against(_, b)) => b.len(),
            None => 0,
        }
    }

    /// Decode the last sample stored into `base` (its buffers reused);
    /// false when there is none or it does not decode.
    pub fn prev_into(&self, base: &mut HostMeters) -> bool {
        match (&self.prev, self.last_time) {
            (Some(Prev::Sample(b)), _) => decode_sample_into(base, b).is_ok(),
            (Some(Prev::Against(reference, body)), Some(time)) => {
                base.clone_from(reference);
                delta::apply(base, body, time).is_ok()
            }
            _ => false,
        }
    }

    /// Encode `meters` at `time` into `body` as the frame after the last
    /// sample stored, given it decoded (`prev`, from
    /// [`ParkedWriter::prev_into`]; without it the frame is a full
    /// one), and the changes against it `known` but in some meters;
    /// returns its kind. The first frame of a day is a full one (a day
    /// file takes no delta from another): encoded so here, by whoever
    /// calls, rather than refused by the append, under the store's lock.
    pub fn encode_next(
        &self,
        prev: Option<&HostMeters>,
        known: Option<&delta::Known<'_>>,
        time: i64,
        meters: &HostMeters,
        body: &mut Vec<u8>,
    ) -> u8 {
        let same_day = self.last_time.is_none_or(|t| Date::of(t) == Date::of(time));
        let prev = prev.filter(|_| same_day);
        encode_frame(prev, known, self.since_key, time, meters, body)
    }

    /// The writer after `meters` were stored at `time` as a frame of
    /// `kind` whose body is `body`. With `references` holding one of the
    /// same meter names (another host's sample, shared), the sample is
    /// kept as its changes against it: about a third of its size for a
    /// fleet of similar hosts.
    pub fn after(
        &self,
        time: i64,
        meters: &HostMeters,
        kind: u8,
        body: &[u8],
        references: Option<&References>,
    ) -> ParkedWriter {
        // A delta frame has the last sample's meter names, and so its
        // reference's (no lock, no comparing of names), and says which
        // meters changed since.
        let (reference, old) = match (references, &self.prev, kind) {
            (None, ..) => (None, None),
            (Some(_), Some(Prev::Against(r, old)), FRAME_DELTA) => {
                (Some(Arc::clone(r)), Some(&old[..]))
            }
            (Some(refs), ..) => (refs.for_meters(meters), None),
        };
        // Encoded in a reused buffer, then copied to an exact-sized one.
        let prev = KEEP.with_borrow_mut(|b| {
            b.clear();
            match reference {
                Some(r) => {
                    // Found by its names: no second comparison of them.
                    let rebased = old.is_some_and(|old| {
                        delta::changed_meters(body, meters.len())
                            .and_then(|step| delta::rebase_changes(&r, old, meters, step, b))
                            .is_ok()
                    });
                    if !rebased {
                        b.clear();
                        delta::encode_changes(&r, meters, b);
                    }
                    Prev::Against(r, b[..].into())
                }
                None if kind == FRAME_KEY => Prev::Sample(body.into()),
                _ => {
                    put_sample(b, time, meters);
                    Prev::Sample(b[..].into())
                }
            }
        });
        ParkedWriter {
            last_time: Some(time),
            prev: Some(prev),
            since_key: frames_in_block(self.since_key, kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::time::DAY;
    use crate::model::{MeterName, MeterValue, Scalar};

    fn host(name: &str, pairs: &[(&str, i64)]) -> HostMeters {
        let mut h = HostMeters::new();
        let mut set = |n: &str, v| h.set(MeterName::new(n).unwrap(), v, 7).unwrap();
        set("hostname", MeterValue::Scalar(Scalar::Str(name.into())));
        set(
            "os/version",
            MeterValue::Scalar(Scalar::Str(
                "#1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1".into(),
            )),
        );
        for (n, v) in pairs {
            set(n, MeterValue::Scalar(Scalar::Int(*v)));
        }
        h
    }

    #[test]
    fn last_samples_kept_against_a_shared_reference_decode_exactly() {
        let refs = References::new(2);
        let a = host("web-1", &[("uptime", 100), ("mem/free", 5_000_000)]);
        let b = host("web-2", &[("uptime", 160), ("mem/free", 4_000_000)]);
        let odd = host("db-1", &[("mysql/threads", 3)]);
        let ra = refs.for_meters(&a).unwrap();
        let rb = refs.for_meters(&b).unwrap();
        assert!(Arc::ptr_eq(&ra, &rb), "same names share one reference");
        let mut body = Vec::new();
        let kind = ParkedWriter::default().encode_next(None, None, 60, &b, &mut body);
        let alone = ParkedWriter::default().after(60, &b, kind, &body, None);
        let against = ParkedWriter::default().after(60, &b, kind, &body, Some(&refs));
        assert!(against.prev_bytes() * 3 < alone.prev_bytes());
        for w in [&alone, &against] {
            let mut got = HostMeters::new();
            assert!(w.prev_into(&mut got));
            let mut want = b.clone();
            want.stamp(60);
            assert_eq!(got, want);
        }
        // Other names get their own reference while there is room; with
        // none left and every one in use, the sample is kept alone.
        let ro = refs.for_meters(&odd).unwrap();
        assert_eq!(refs.len(), 2);
        let third = host("x", &[]);
        assert!(refs.for_meters(&third).is_none());
        drop(ro);
        assert!(
            refs.for_meters(&third).is_some(),
            "an unused one makes room"
        );
    }

    /// The first frame of a day is encoded full by the writer (the day
    /// file takes no delta across days), not refused by the append.
    #[test]
    fn the_first_frame_of_a_day_is_a_full_one() {
        let a = host("web-1", &[("uptime", 100)]);
        let b = host("web-1", &[("uptime", 160)]);
        let mut body = Vec::new();
        let first = ParkedWriter::default();
        let kind = first.encode_next(None, None, DAY - 120, &a, &mut body);
        assert_eq!(kind, FRAME_KEY);
        let w = first.after(DAY - 120, &a, kind, &body, None);
        let mut prev = HostMeters::new();
        assert!(w.prev_into(&mut prev));
        let same_day = w.encode_next(Some(&prev), None, DAY - 60, &b, &mut body);
        assert_eq!(same_day, FRAME_DELTA);
        let next_day = w.encode_next(Some(&prev), None, DAY, &b, &mut body);
        assert_eq!(next_day, FRAME_KEY);
    }

    /// The disk as it fills: once `full` is set, an append writes half
    /// its bytes, then fails.
    struct Filling {
        full: std::sync::atomic::AtomicBool,
    }

    impl Storage for Filling {
        fn create_dir(&self, path: &Path) -> std::io::Result<()> {
            Disk.create_dir(path)
        }
        fn create_file(&self, path: &Path, contents: &[u8]) -> std::io::Result<()> {
            Disk.create_file(path, contents)
        }
        fn append(
            &self,
            file: &mut File,
            path: &Path,
            at: u64,
            data: &[u8],
        ) -> std::io::Result<()> {
            if self.full.load(std::sync::atomic::Ordering::Relaxed) {
                Disk.append(file, path, at, &data[..data.len() / 2])?;
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            Disk.append(file, path, at, data)
        }
        fn truncate(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
            Disk.truncate(file, path, len)
        }
        fn sync_file(&self, file: &File, path: &Path) -> std::io::Result<()> {
            Disk.sync_file(file, path)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            Disk.sync_dir(dir)
        }
    }

    #[test]
    fn a_failed_write_loses_only_what_was_not_committed() {
        let dir = std::env::temp_dir().join(format!("opticon-batch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let disk = Arc::new(Filling { full: false.into() });
        let mut store = TenantStore::with_storage(&dir, disk.clone());
        store.lock().unwrap();
        let t0 = 20_000 * DAY + 60;
        let hosts: Vec<Uuid> = (1..=10u128).map(Uuid::from_u128).collect();
        let mut body = Vec::new();
        let mut put = |store: &mut TenantStore, h: Uuid, t: i64, kind: u8| {
            body.clear();
            put_sample(&mut body, t, &host("web", &[("uptime", t)]));
            store.append(h, t, kind, &body)
        };
        for h in &hosts {
            assert!(matches!(
                put(&mut store, *h, t0, FRAME_KEY),
                Ok(Appended::Stored(_))
            ));
        }
        store.commit().unwrap();
        // The disk fills: appends gather until the batch is written, which
        // fails half-way; nothing committed is lost, nothing torn stays.
        disk.full.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut t = t0;
        let failed = loop {
            t += 1;
            assert!(t < t0 + 10_000, "the batch was never written");
            if let Err(e) = put(&mut store, hosts[(t % 10) as usize], t, FRAME_KEY) {
                break e;
            }
        };
        assert!(failed.to_string().contains("No space left"), "{failed}");
        assert!(store.commit().is_ok(), "nothing left to write");
        disk.full.store(false, std::sync::atomic::Ordering::Relaxed);
        // Every host's next record is a full one: the records its deltas
        // would be made against may be the ones lost.
        for h in &hosts {
            assert_eq!(
                put(&mut store, *h, t + 60, FRAME_DELTA).ok(),
                Some(Appended::NeedsKey)
            );
        }
        assert!(matches!(
            put(&mut store, hosts[0], t + 60, FRAME_KEY),
            Ok(Appended::Stored(_))
        ));
        store.commit().unwrap();
        store.unlock();
        let last = super::super::reader::last_time_by_host(&dir).unwrap();
        assert_eq!(last.get(&hosts[0]), Some(&(t + 60)));
        assert_eq!(
            last.get(&hosts[1]),
            Some(&t0),
            "lost records are not indexed"
        );
        let date = Date::of(t0);
        let path = data_path(&days_dir(&dir), date);
        let len = fs::metadata(&path).unwrap().len();
        let file = File::open(&path).unwrap();
        let mut scanner = Scanner::new(&file, HEADER_LEN as u64, len);
        let mut records = 0;
        while let Some(item) = scanner.next_item().unwrap() {
            assert!(matches!(item, Item::Record(_)), "{item:?} in the file");
            records += 1;
        }
        assert_eq!(records, hosts.len() + 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
