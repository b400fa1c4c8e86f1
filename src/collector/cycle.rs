//! The write cycle: every interval, judge every host, append one record
//! each with one batched sync, write each tenant's overview as it goes,
//! send due notifications, publish the metrics, and now and then purge
//! silent hosts and enforce quotas.

use super::hostlogs;
use super::hosts::{HostState, OVERVIEW_KEEP};
use super::index;
use super::metrics;
use super::report;
use super::state::Collector;
use super::store::{self, CycleContext, Stored};
use crate::db::{Db, TenantStore};
use crate::model::unix_now;
use crate::svc;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Hosts stored between two looks at the receive queue; their states
/// are judged and stored on the worker threads while the collector's
/// thread handles the datagrams that arrived and takes the chunk before
/// through the cycle's shared part (index, overview, exports,
/// notifications) in order.
const CHUNK: usize = 512;

/// A chunk of hosts back from the worker threads, with the buffers it
/// went out with.
struct Chunk {
    items: Vec<((Uuid, Uuid), Box<HostState>)>,
    scratch: Vec<super::hosts::Scratch>,
    results: Vec<Stored>,
    /// The chunk's time on the threads.
    took: Duration,
}

/// How often the collector's thread looks whether the cycle's sync is
/// done, reading the receive queue in between.
const SYNC_LOOK: Duration = Duration::from_millis(2);

/// Threads measuring new hosts' directories for the index: mostly
/// waiting for directory blocks read back.
const MEASURE_THREADS: usize = 4;

/// Sessions looked up for the sessions list between two reads of the
/// receive queue (a few milliseconds of work).
const SNAPSHOT_SLICE: usize = 16_384;

/// How often the cycle offers a host-log entry again while the writers'
/// line is full.
const LOG_ROOM_LOOK: Duration = Duration::from_micros(500);

/// Status changes logged one by one per cycle; the rest are counted in
/// one line (each is in its host's log). A fleet that flaps at once (a
/// network blip, a tenant's hosts all crossing a threshold) must not
/// flood syslog with a line per host.
pub const STATUS_LINES_PER_CYCLE: usize = 100;

/// Hosts first heard between two write cycles that are logged one by
/// one; the rest are counted in one line at the next cycle.
pub const NEW_HOST_LINES_PER_CYCLE: usize = 100;

impl Collector {
    /// One write cycle: judge every host and store one record each, then
    /// make the cycle durable with one sync. Hosts are visited tenant by
    /// tenant, so that each tenant's overview is written as it goes.
    pub fn write_cycle(&mut self) {
        self.write_cycle_with(&mut |_| {});
    }

    /// A write cycle that calls `between` every [`CHUNK`] hosts, so that the
    /// caller keeps receiving datagrams during a long cycle (the first one
    /// of a large fleet creates a directory and files per host). It is
    /// called while the next chunk is on the worker threads: payloads of
    /// hosts out there wait in `parked` until they are back.
    pub fn write_cycle_with(&mut self, between: &mut dyn FnMut(&mut Collector)) {
        let started = Instant::now();
        let now = unix_now();
        let drops_before = self.queue_drops();
        self.cycles = self.cycles.wrapping_add(1);
        // The last cycle's upkeep may rewrite day files: it ends first.
        let upkeep_waited = self.finish_upkeep(between);
        let new_hosts = std::mem::replace(
            &mut self.new_host_lines,
            svc::log::Burst::new(NEW_HOST_LINES_PER_CYCLE),
        );
        if let Some(line) =
            new_hosts.finish("hosts heard for the first time since the last write cycle")
        {
            svc::log::info(&line);
        }
        self.forget_silent();
        let tenants = &self.tenants;
        self.hosts.retain(|key, _| tenants.contains_key(&key.0));
        // What the hosts held between cycles, for the debug line.
        let held = self.hosts.values().fold(HostBytes::default(), |mut b, h| {
            b.add(h);
            b
        });
        // One look per tenant at whether a tool changed its hosts'
        // directories, instead of one per host.
        let mut hosts_changed = HashSet::new();
        let tenants: Vec<Uuid> = self.tenants.keys().copied().collect();
        for t in tenants {
            let mark = self.db.hosts_changed(t);
            match self.host_marks.insert(t, mark) {
                Some(before) if before == mark => {}
                // A tool changed the tenant's hosts during this run: its
                // index may miss hosts it wrote records for.
                Some(_) => {
                    self.index_incomplete(t);
                    hosts_changed.insert(t);
                }
                None => {
                    hosts_changed.insert(t);
                }
            }
        }
        let mut keys: Vec<(Uuid, Uuid)> = self.hosts.keys().copied().collect();
        keys.sort_unstable();
        let mut written = 0;
        let mut by_status: HashMap<&'static str, i64> = HashMap::new();
        let mut reported = HashSet::new();
        let mut report: Option<(Uuid, report::TenantReport)> = None;
        // Report files that cannot be written (a full disk): one line per
        // cycle with the first error and a count, not one per host.
        let mut failed: (usize, Option<String>) = (0, None);
        let mut fail = |e: String| {
            failed.0 += 1;
            failed.1.get_or_insert(e);
        };
        // One thread per core (measured on 2 cores at 100,000 hosts: 2
        // threads cut the cycle from 16-48 s to 12-13 s; at 20,000 hosts
        // 4 and 16 threads gain nothing more, the disk's reads being
        // serial there, and every thread's heap arena holds memory).
        let threads = svc::pool::cores();
        // Where the cycle's time goes, for the debug line: the hosts on
        // the worker threads, the datagrams handled while they work.
        let (mut hosts_time, mut between_time) = (Duration::ZERO, Duration::ZERO);
        // The hosts' shared part on this thread (index, overview,
        // notifications, exports), and what follows the hosts.
        let mut shared_time = Duration::ZERO;
        // The workers' time appending records, summed.
        let mut append_time = Duration::ZERO;
        // Status changes' host-log entries, written beside the hosts.
        let mut logs = hostlogs::Writers::new();
        let mut after_logs = Vec::new();
        let stores = self.lock_stores(&keys);
        let mut unlocked: HashMap<Uuid, usize> = HashMap::new();
        let mut change_lines = svc::log::Burst::new(STATUS_LINES_PER_CYCLE);
        // Two buffers for the chunks (one out on the threads, one coming
        // back), kept for the whole cycle: a chunk's hosts take more than
        // the 64 KB whose free makes glibc consolidate its heap (a profile
        // at 100,000 hosts had malloc_consolidate at 9 % of the samples).
        let mut spare: Vec<((Uuid, Uuid), Box<HostState>)> = Vec::with_capacity(CHUNK);
        let mut back_keys: Vec<(Uuid, Uuid)> = Vec::with_capacity(CHUNK);
        // Overview buffers written out, going back to the workers.
        let mut overviews: Vec<String> = Vec::with_capacity(CHUNK);
        // Each worker's buffers, kept from cycle to cycle.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize_with(threads, Default::default);
        // What the worker threads read, shared with them rather than
        // borrowed from the collector: this thread goes on receiving
        // datagrams and doing the hosts' shared part meanwhile.
        let db = self.db.clone();
        let tenants = Arc::clone(&self.tenants);
        let global = Arc::clone(&self.global);
        let pinger = self.pinger.clone();
        let references = Arc::clone(&self.references);
        let ctx = CycleContext {
            db: &db,
            tenants: &tenants,
            global: &global,
            pinger: pinger.as_deref(),
            stale: Duration::from_secs(self.cfg.stale),
            meter_expiry: self.cfg.meter_expiry,
            now,
            stores: &stores,
            exporting: !self.exports.is_empty(),
            cycle: self.cycles,
            hosts_changed: &hosts_changed,
            references: &references,
        };
        // The time this thread waited for the workers.
        let mut waited = Duration::ZERO;
        std::thread::scope(|scope| {
            let mut chunks = keys.chunks(CHUNK);
            let mut out: Option<std::thread::ScopedJoinHandle<'_, Chunk>> = None;
            loop {
                // The chunk on the threads comes back: its hosts return to
                // the map and their payloads that waited are merged.
                let mut results = Vec::new();
                if let Some(handle) = out.take() {
                    let t = Instant::now();
                    let back = match handle.join() {
                        Ok(back) => back,
                        Err(panic) => std::panic::resume_unwind(panic),
                    };
                    waited += t.elapsed();
                    hosts_time += back.took;
                    scratch = back.scratch;
                    results = back.results;
                    spare = back.items;
                    for (key, h) in spare.drain(..) {
                        back_keys.push(key);
                        self.hosts.insert(key, h);
                    }
                    self.in_flight.clear();
                }
                // The next chunk goes out at once.
                let next = chunks.next();
                if let Some(chunk) = next {
                    let mut items = std::mem::take(&mut spare);
                    items.extend(chunk.iter().filter_map(|k| self.hosts.remove_entry(k)));
                    self.in_flight.extend(items.iter().map(|(k, _)| *k));
                    let mut scratch = std::mem::take(&mut scratch);
                    // The overview buffers of the chunk before last.
                    let share = overviews.len().div_ceil(scratch.len().max(1)).max(1);
                    for s in scratch.iter_mut() {
                        let at = overviews.len().saturating_sub(share);
                        s.overviews.extend(overviews.drain(at..));
                    }
                    let ctx = &ctx;
                    out = Some(scope.spawn(move || {
                        let t = Instant::now();
                        let results =
                            svc::pool::map_scoped_with(&mut items, &mut scratch, |s, (k, h)| {
                                store::judge_and_store(ctx, s, *k, h)
                            });
                        Chunk {
                            items,
                            scratch,
                            results,
                            took: t.elapsed(),
                        }
                    }));
                }
                // Meanwhile: what the chunk back left waiting, its hosts'
                // shared part, and the datagrams that arrived.
                let t = Instant::now();
                self.unpark();
                for (key, mut done) in back_keys.drain(..).zip(results) {
                    if report.as_ref().map(|r| r.0) != Some(key.0) {
                        if let Err(e) = finish_report(report.take()) {
                            fail(e);
                        }
                        reported.insert(key.0);
                        report = start_report(&self.db, key.0).map_err(&mut fail).ok();
                    }
                    // A host's first record of a run has the index measure
                    // its other files, after its log entry is on disk.
                    let log = done.log.take();
                    let measure_later = log.is_some() && done.stored && !self.index_knows_rest(key);
                    if measure_later {
                        after_logs.push((key, done.disk, done.fresh));
                    }
                    if let Some(entry) = log {
                        let mut entry = entry;
                        // The writers' line full: the queue is read while
                        // they make room.
                        while let Err(back) = logs.offer(entry) {
                            entry = back;
                            between(self);
                            std::thread::sleep(LOG_ROOM_LOOK);
                        }
                    }
                    self.shared_part(key, &done, now, !measure_later);
                    if let Some(c) = &done.change {
                        if change_lines.admit() {
                            let (old, new) = c.change;
                            svc::log::info(&format!(
                                "host {}: Status change {} -> {}",
                                key.1,
                                old.as_str(),
                                new.as_str()
                            ));
                        }
                    }
                    written += usize::from(done.stored);
                    append_time += done.append_time;
                    if done.unlocked {
                        *unlocked.entry(key.0).or_default() += 1;
                    }
                    if let Some(h) = self.hosts.get(&key) {
                        *by_status.entry(h.status.as_str()).or_default() += 1;
                    }
                    if let Some((_, r)) = &mut report {
                        if let Err(e) = r.add(key.1, &done.overview, &done.summary) {
                            // This tenant's overview is lost for the cycle.
                            fail(e.to_string());
                            report = None;
                        }
                    }
                    if done.overview.capacity() <= OVERVIEW_KEEP {
                        overviews.push(std::mem::take(&mut done.overview));
                    }
                }
                shared_time += t.elapsed();
                let t = Instant::now();
                between(self);
                between_time += t.elapsed();
                if next.is_none() {
                    break;
                }
            }
        });
        self.scratch = scratch;
        // What follows the hosts, step by step, for the debug line.
        let mut steps = Steps::new(self.queue.as_ref().map(|q| Arc::clone(&q.drops)));
        // The host logs' writers are done before the sync, so that every
        // entry is durable with this cycle's samples (a new fleet's first
        // cycles write one for each of its hosts: the queue is read
        // meanwhile).
        let logged = steps.on_thread(self, between, || logs.finish());
        for (key, next) in &logged.corrections {
            if let Some(h) = self.hosts.get_mut(key) {
                h.log_next = next.and_then(std::num::NonZeroU64::new);
            }
        }
        steps.done("waiting for host logs");
        // Their directories' files measured for the index on threads of
        // their own (a new fleet's first cycles have a million: seconds
        // of directory walks that left the queue unread).
        let mut dirs: Vec<_> = after_logs
            .iter()
            .map(|(key, ..)| db.host_dir(key.0, key.1))
            .collect();
        let files = steps.on_thread(self, between, || {
            svc::pool::map_scoped(&mut dirs, MEASURE_THREADS, |d| {
                index::host_files_bytes(d).ok()
            })
        });
        for ((key, disk, fresh), files) in after_logs.into_iter().zip(files) {
            self.index_append(key, now, disk, fresh, files);
        }
        steps.done("new hosts' files");
        if let Some(line) =
            change_lines.finish("status changes this cycle (each is in its host's log)")
        {
            svc::log::info(&line);
        }
        // The open sessions are written while the sync waits for the disk
        // (the file need not be durable: the next cycle writes it again).
        // The queue is read meanwhile (at a million hosts the sync takes
        // seconds, and the receive queue holds about two).
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        let mut lines = Vec::with_capacity(ids.len());
        for slice in ids.chunks(SNAPSHOT_SLICE) {
            self.session_lines(slice, now, &mut lines);
            steps.aside(|| between(self));
        }
        drop(ids);
        steps.done("sessions snapshot");
        let root = db.root().to_path_buf();
        let synced = steps.on_thread(self, between, || {
            std::thread::scope(|s| {
                s.spawn(move || {
                    if let Err(e) = metrics::write_sessions(&root, &lines) {
                        svc::log::warn(&e.to_string());
                    }
                });
                // The records the stores gather are written out first.
                for (t, store) in stores.iter() {
                    let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = s.write_out() {
                        svc::log::err(&format!("tenant {t}: {e}"));
                    }
                }
                written == 0
                    || db
                        .sync()
                        .map_err(|e| svc::log::err(&format!("sync: {e}")))
                        .is_ok()
            })
        });
        steps.done("sync and sessions");
        // The day indexes are written on a thread of their own too (a
        // million hosts' index takes about half a second).
        let committed = steps.on_thread(self, between, || commit_stores(stores, synced, now));
        self.stores.extend(committed);
        for (t, n) in unlocked {
            svc::log::warn(&format!(
                "tenant {t}: {n} records not stored this cycle: its day files are locked by another writer (opticon-db)"
            ));
        }
        steps.done("day indexes");
        steps.aside(|| between(self));
        // Published once the records are durable and indexed, so that a
        // host the overview shows has its latest record readable.
        // Finished (the overview flushed, the old one's gigabyte freed at
        // a million hosts) on a thread of its own, as are idle tenants'.
        let idle: Vec<Uuid> = self
            .tenants
            .keys()
            .filter(|t| !reported.contains(*t))
            .copied()
            .collect();
        steps.on_thread(self, between, || {
            if let Err(e) = finish_report(report) {
                fail(e);
            }
            for t in idle {
                match start_report(&db, t) {
                    Ok(r) => {
                        if let Err(e) = finish_report(Some(r)) {
                            fail(e);
                        }
                    }
                    Err(e) => fail(e),
                }
            }
        });
        if let (n, Some(first)) = failed {
            svc::log::warn(&format!(
                "tenant reports not written this cycle: {first}{}",
                if n > 1 {
                    format!(" ({} more failures)", n - 1)
                } else {
                    String::new()
                }
            ));
        }
        steps.done("reports");
        steps.aside(|| between(self));
        self.flush_exports();
        self.notifier.send_due();
        let tenants = &self.tenants;
        self.usage.retain(|t, _| tenants.contains_key(t));
        for (t, u) in &mut self.usage {
            if let Some(line) = u.log_line(t) {
                svc::log::warn(&line);
            }
        }
        steps.done("exports and notifications");
        steps.aside(|| between(self));
        release_free_memory();
        steps.done("heap trim");
        steps.aside(|| between(self));
        self.publish_metrics(started.elapsed(), &by_status);
        self.publish_indexes();
        steps.done("host lists");
        steps.aside(|| between(self));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let dropped = self.queue_drops().saturating_sub(drops_before);
        svc::log::debug(&format!(
            "write cycle: {written} records, {} sessions, {dropped} datagrams dropped at the full queue meanwhile, {:.1} ms (upkeep waited for {:.1} ms, hosts {:.1} ms on {threads} threads, {:.1} ms of it waited for, {:.1} ms of it appending records summed over the threads, {} host-log entries written in {:.1} ms summed over {} threads beside them, their shared part {:.1} ms, datagrams between {:.1} ms, then {steps}); hosts held {held}",
            self.sessions.len(),
            ms(started.elapsed()),
            ms(upkeep_waited),
            ms(hosts_time),
            ms(waited),
            ms(append_time),
            logged.entries,
            ms(logged.busy),
            hostlogs::THREADS,
            ms(shared_time),
            ms(between_time),
        ));
        self.start_upkeep();
    }

    /// Handle datagrams (`between`) every [`SYNC_LOOK`] until `done`:
    /// while work the collector waits for runs on another thread.
    pub(super) fn read_queue_until(
        &mut self,
        between: &mut dyn FnMut(&mut Collector),
        done: impl Fn() -> bool,
    ) {
        while !done() {
            between(self);
            std::thread::sleep(SYNC_LOOK);
        }
    }

    /// Datagrams the receive queue dropped so far (full).
    fn queue_drops(&self) -> u64 {
        self.queue
            .as_ref()
            .map_or(0, |q| q.drops.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Lock the day stores of the tenants with hosts in this cycle (a
    /// store locked by a tool is left out, its hosts not stored, after
    /// waiting up to a second for it).
    fn lock_stores(&mut self, keys: &[(Uuid, Uuid)]) -> HashMap<Uuid, Mutex<TenantStore>> {
        let tenants = &self.tenants;
        self.stores.retain(|t, _| tenants.contains_key(t));
        let mut locked = HashMap::new();
        let mut wanted: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        wanted.dedup();
        for t in wanted {
            let store = self
                .stores
                .remove(&t)
                .unwrap_or_else(|| Mutex::new(TenantStore::new(&self.db.tenant_dir(t))));
            let result = {
                let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                let r = s.lock_within(Duration::from_secs(1));
                for r in s.repairs.drain(..) {
                    svc::log::warn(&format!(
                        "{}: cut torn tail ({} -> {} bytes)",
                        r.path.display(),
                        r.from,
                        r.to
                    ));
                }
                for d in s.damage.drain(..) {
                    svc::log::warn(&d);
                }
                r
            };
            match result {
                Ok(()) => {
                    locked.insert(t, store);
                }
                Err(e) => {
                    svc::log::err(&format!("tenant {t}: {e}"));
                    self.stores.insert(t, store);
                }
            }
        }
        locked
    }

    /// What storing a host leaves to the hosts' shared state: its status
    /// change notified, its index entry, its export.
    /// A host's part of what the hosts share; `index`: its record goes
    /// in its tenant's index now (else the caller puts it there later).
    fn shared_part(&mut self, key: (Uuid, Uuid), done: &Stored, now: i64, index: bool) {
        if let Some(c) = &done.change {
            let (old, new) = c.change;
            self.notifier
                .change(key.0, key.1, &c.hostname, old, new, &c.problems, now);
        }
        if done.stored && index {
            self.index_append(key, now, done.disk, done.fresh, None);
        }
        if let Some(meters) = &done.meters {
            self.export_host(key, meters, now);
        }
    }
}

/// Start the overview and summary of `tenant`.
fn start_report(db: &Db, tenant: Uuid) -> Result<(Uuid, report::TenantReport), String> {
    report::TenantReport::start(&db.tenant_dir(tenant))
        .map(|r| (tenant, r))
        .map_err(|e| e.to_string())
}

/// Put a tenant's overview and summary in place.
fn finish_report(report: Option<(Uuid, report::TenantReport)>) -> Result<(), String> {
    match report {
        Some((_, r)) => r.finish().map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Heap bytes the hosts hold between write cycles, by part: what the
/// memory per host is made of.
#[derive(Default)]
struct HostBytes {
    hosts: usize,
    /// Last records, encoded.
    records: usize,
    /// Packed meters (changes and ages).
    packed: usize,
    /// Payloads waiting for the cycle.
    pending: usize,
    /// Busy hosts' decoded meters.
    busy: usize,
}

impl HostBytes {
    fn add(&mut self, h: &HostState) {
        self.hosts += 1;
        self.records += h.writer.prev_bytes();
        self.packed += h.packed.heap_bytes();
        self.pending += h.pending.capacity();
        self.busy += usize::from(h.busy.is_some());
    }
}

impl std::fmt::Display for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = |n: usize| n / self.hosts.max(1);
        write!(
            f,
            "{} B per host in records, {} B packed, {} B pending ({} busy)",
            per(self.records),
            per(self.packed),
            per(self.pending),
            self.busy
        )
    }
}

/// Named steps, how long each took and how many datagrams the full
/// receive queue dropped meanwhile, as "name N ms (D dropped), ...".
struct Steps {
    last: Instant,
    /// The receive queue's drop counter, and its count at the last step.
    drops: Option<Arc<AtomicU64>>,
    drops_then: u64,
    taken: Vec<(&'static str, Duration, u64)>,
    /// Of the steps' time, datagrams handled after and during them.
    aside: Duration,
}

impl Steps {
    /// Steps from now, counting the drops of `drops` (the receive
    /// queue's counter, when there is a queue).
    fn new(drops: Option<Arc<AtomicU64>>) -> Steps {
        let drops_then = drops.as_ref().map_or(0, |d| d.load(Ordering::Relaxed));
        Steps {
            last: Instant::now(),
            drops,
            drops_then,
            taken: Vec::new(),
            aside: Duration::ZERO,
        }
    }
}

impl Steps {
    /// Handle datagrams (`f`) between or during the steps, timed apart.
    fn aside(&mut self, f: impl FnOnce()) {
        let t = Instant::now();
        f();
        self.aside += t.elapsed();
    }

    /// The step since the last one is done.
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        let drops = self.drops.as_ref().map_or(0, |d| d.load(Ordering::Relaxed));
        self.taken
            .push((name, now - self.last, drops.saturating_sub(self.drops_then)));
        self.last = now;
        self.drops_then = drops;
    }

    /// Run a step's `work` on a thread of its own, handling datagrams
    /// (`between`) meanwhile, so that the receive queue, which holds a
    /// few seconds of a large fleet, does not overflow while it runs.
    fn on_thread<T: Send>(
        &mut self,
        collector: &mut Collector,
        between: &mut dyn FnMut(&mut Collector),
        work: impl FnOnce() -> T + Send,
    ) -> T {
        std::thread::scope(|s| {
            // Below this thread, which reads the queue meanwhile: at its
            // priority, a new fleet's new hosts' files measured on four
            // threads dropped 19,055 datagrams in one cycle, 538 at nice
            // +10 (the threads it starts inherit it).
            let worker = s.spawn(|| {
                svc::pool::lower_this_thread(svc::pool::BACKGROUND_NICE);
                work()
            });
            collector.read_queue_until(&mut |c: &mut Collector| self.aside(|| between(c)), || {
                worker.is_finished()
            });
            match worker.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, took, dropped)) in self.taken.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {:.1} ms", took.as_secs_f64() * 1e3)?;
            if *dropped > 0 {
                write!(f, " ({dropped} dropped)")?;
            }
        }
        write!(
            f,
            " ({:.1} ms of them datagrams)",
            self.aside.as_secs_f64() * 1e3
        )
    }
}

/// Give the pages freed by a write cycle back to the kernel: the cycle
/// decodes every host in turn, and the heap it leaves behind is full of
/// holes between the packed hosts that stay.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Write the day indexes of the cycle's `stores` (their records durable
/// when `synced`), unlock them and close the files of days before
/// `now`'s; the stores go back to the collector.
fn commit_stores(
    stores: HashMap<Uuid, Mutex<TenantStore>>,
    synced: bool,
    now: i64,
) -> Vec<(Uuid, Mutex<TenantStore>)> {
    stores
        .into_iter()
        .map(|(t, store)| {
            {
                let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = s.write_indexes(synced) {
                    svc::log::err(&format!("tenant {t}: {e}"));
                }
                for d in s.damage.drain(..) {
                    svc::log::warn(&d);
                }
                s.unlock();
                s.close_before(crate::db::time::Date::of(now));
            }
            (t, store)
        })
        .collect()
}
