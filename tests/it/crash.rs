//! Crash consistency of the host writer, by simulated power loss.
//!
//! Every file operation of a [`HostWriter`] goes through a recording
//! [`Storage`] (which also performs it on disk). A "crash" after the N-th
//! sync keeps only what the log says was made durable by then: file data
//! up to its last `sync_file`, directory entries up to their directory's
//! `sync_dir`; everything else is lost, as on a disk that loses every
//! unsynced write. The surviving files are laid out in a fresh directory,
//! reopened and read: every sample acknowledged as durable (appended
//! before a `sync()` returned) must come back exactly, and nothing else
//! may be corrupt. Some rounds also keep a random prefix of the unsynced
//! tail (a disk that wrote part of it): only those rounds may need a torn
//! tail cut. A writer whose sync does nothing fails this test.

use crate::common;

use common::Rng;
use opticon::db::host::{self, HostWriter, Storage};
use opticon::fleet::FakeHost;
use opticon::model::json::encode_host;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One recorded file operation.
#[derive(Debug, Clone)]
enum Op {
    CreateDir(PathBuf),
    CreateFile(PathBuf, Vec<u8>),
    Append(PathBuf, u64, Vec<u8>),
    Truncate(PathBuf, u64),
    SyncFile(PathBuf),
    SyncDir(PathBuf),
}

/// Records every operation, then performs it on the real disk.
#[derive(Default)]
struct Recording {
    log: Mutex<Vec<Op>>,
}

impl Recording {
    fn push(&self, op: Op) {
        self.log.lock().unwrap().push(op);
    }
    fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    fn ops(&self) -> Vec<Op> {
        self.log.lock().unwrap().clone()
    }
}

impl Storage for Recording {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.push(Op::CreateDir(path.into()));
        host::Disk.create_dir(path)
    }
    fn create_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.push(Op::CreateFile(path.into(), contents.to_vec()));
        host::Disk.create_file(path, contents)
    }
    fn append(&self, file: &mut File, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.push(Op::Append(path.into(), offset, data.to_vec()));
        host::Disk.append(file, path, offset, data)
    }
    fn truncate(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        self.push(Op::Truncate(path.into(), len));
        host::Disk.truncate(file, path, len)
    }
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        self.push(Op::SyncFile(path.into()));
        host::Disk.sync_file(file, path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.push(Op::SyncDir(dir.into()));
        host::Disk.sync_dir(dir)
    }
}

/// A file as the crash model sees it: what the page cache holds and what
/// the disk holds.
#[derive(Default)]
struct ModelFile {
    volatile: Vec<u8>,
    durable: Vec<u8>,
}

/// What a disk holds after losing power right after `ops`: files whose
/// every entry from `base` down was made durable, with their synced data.
struct Survivors {
    files: HashMap<PathBuf, Vec<u8>>,
    dirs: Vec<PathBuf>,
    /// Unsynced bytes of the newest file kept as if partly written.
    injected: bool,
}

/// The disk after a crash right after `ops[..cut]`; the appends that
/// followed before the next sync may have partly reached the disk (a
/// random prefix of them is kept in some rounds).
fn crash(ops: &[Op], cut: usize, base: &Path, rng: &mut Rng) -> Survivors {
    let mut files: HashMap<PathBuf, ModelFile> = HashMap::new();
    // Entries created, and whether they were made durable.
    let mut entries: HashMap<PathBuf, bool> = HashMap::new();
    let mut newest: Option<PathBuf> = None;
    for op in &ops[..cut] {
        match op {
            Op::CreateDir(p) => {
                let mut d = p.as_path();
                while d != base && !entries.contains_key(d) {
                    entries.insert(d.to_path_buf(), false);
                    d = d.parent().unwrap();
                }
            }
            Op::CreateFile(p, c) => {
                entries.insert(p.clone(), false);
                files.insert(
                    p.clone(),
                    ModelFile {
                        volatile: c.clone(),
                        durable: Vec::new(),
                    },
                );
                newest = Some(p.clone());
            }
            Op::Append(p, offset, data) => {
                let f = files.entry(p.clone()).or_default();
                assert_eq!(
                    *offset,
                    f.volatile.len() as u64,
                    "{}: the writer's idea of the file length is wrong",
                    p.display()
                );
                f.volatile.extend_from_slice(data);
                newest = Some(p.clone());
            }
            Op::Truncate(p, len) => {
                let f = files.entry(p.clone()).or_default();
                f.volatile.truncate(*len as usize);
            }
            Op::SyncFile(p) => {
                let f = files.entry(p.clone()).or_default();
                f.durable = f.volatile.clone();
            }
            Op::SyncDir(d) => {
                for (e, durable) in entries.iter_mut() {
                    if e.parent() == Some(d.as_path()) {
                        *durable = true;
                    }
                }
            }
        }
    }
    let survives = |p: &Path| {
        let mut d = p;
        while d != base {
            if entries.get(d) == Some(&false) {
                return false;
            }
            d = d.parent().unwrap();
        }
        true
    };
    let mut injected = false;
    // In flight at the crash: the appends after the cut, up to the next
    // sync or new file, are in the page cache.
    for op in &ops[cut..] {
        match op {
            Op::Append(p, _, data) => {
                if let Some(f) = files.get_mut(p) {
                    f.volatile.extend_from_slice(data);
                    newest = Some(p.clone());
                }
            }
            _ => break,
        }
    }
    if let Some(p) = newest {
        if rng.below(2) == 0 {
            if let Some(f) = files.get_mut(&p) {
                if f.volatile.starts_with(&f.durable) && f.volatile.len() > f.durable.len() {
                    let extra = 1 + rng.below(f.volatile.len() - f.durable.len());
                    let keep = f.durable.len() + extra;
                    f.durable = f.volatile[..keep].to_vec();
                    injected = true;
                }
            }
        }
    }
    let mut dirs: Vec<PathBuf> = entries
        .keys()
        .filter(|e| !files.contains_key(*e) && survives(e))
        .cloned()
        .collect();
    dirs.sort();
    Survivors {
        files: files
            .into_iter()
            .filter(|(p, _)| survives(p))
            .map(|(p, f)| (p, f.durable))
            .collect(),
        dirs,
        injected,
    }
}

impl Survivors {
    /// Write what survived under `live` into `after`, as the disk would
    /// show it on the next boot.
    fn lay_out(&self, live: &Path, after: &Path) {
        std::fs::create_dir_all(after.join("tenant")).unwrap();
        for d in &self.dirs {
            std::fs::create_dir_all(after.join(d.strip_prefix(live).unwrap())).unwrap();
        }
        for (p, data) in &self.files {
            let to = after.join(p.strip_prefix(live).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(to, data).unwrap();
        }
    }
}

/// Every sample in a host directory, in order, as (time, JSON).
fn read_all(dir: &Path) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for d in host::day_files(dir).unwrap() {
        let day = host::read_day(&d.path).unwrap();
        assert!(
            day.scan.damage.is_empty(),
            "{}: damage after reopening: {:?}",
            d.path.display(),
            day.scan.damage
        );
        day.replay(|t, m| {
            out.push((t, encode_host(m, false)));
            true
        });
    }
    out
}

#[test]
fn every_acknowledged_sample_survives_a_crash_after_any_sync() {
    let scratch = std::env::temp_dir().join(format!("opticon-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut rng = Rng::new(0x0c8a_5e11);
    let (mut injected_rounds, mut repairs_seen, mut crashes_mid_day) = (0, 0, 0);
    for round in 0..60 {
        let live = scratch.join(format!("live-{round}"));
        let tenant = live.join("tenant");
        std::fs::create_dir_all(&tenant).unwrap();
        let host_dir = tenant.join("host");
        let rec = Arc::new(Recording::default());
        let mut w = HostWriter::open_with(&host_dir, rec.clone()).unwrap();
        // Up to three hours, often across a UTC midnight (a new day file).
        let mut time = 1_700_006_400 - 3600 + rng.below(5400) as i64;
        let mut fake = FakeHost::new(round as u64 + 1);
        let mut appended: Vec<(i64, String)> = Vec::new();
        // (log length when sync() returned, samples acknowledged then)
        let mut acks: Vec<(usize, usize)> = Vec::new();
        let samples = 5 + rng.below(150);
        let sync_every = 1 + rng.below(20);
        for n in 0..samples {
            time += 60;
            let m = fake.sample(time);
            w.append(time, &m).unwrap();
            appended.push((time, encode_host(&m, false)));
            if (n + 1) % sync_every == 0 || n + 1 == samples {
                w.sync().unwrap();
                acks.push((rec.len(), appended.len()));
            }
        }
        drop(w);
        let (cut, acked) = acks[rng.below(acks.len())];
        let ops = rec.ops();
        assert!(
            ops[..cut].iter().any(|o| matches!(o, Op::SyncFile(_))),
            "round {round}: nothing was synced before the crash"
        );
        if cut < rec.len() {
            crashes_mid_day += 1;
        }
        let survivors = crash(&ops, cut, &tenant, &mut rng);
        if std::env::var_os("CRASH_DEBUG").is_some() {
            for o in &ops[..cut] {
                match o {
                    Op::Append(p, off, d) => {
                        eprintln!("append {} @{off} +{}", p.display(), d.len())
                    }
                    Op::CreateFile(p, c) => eprintln!("create {} {}", p.display(), c.len()),
                    other => eprintln!("{other:?}"),
                }
            }
            eprintln!(
                "cut {cut} of {}, acked {acked}, injected {}",
                rec.len(),
                survivors.injected
            );
            for (p, d) in &survivors.files {
                eprintln!("survives {} {}", p.display(), d.len());
            }
        }
        injected_rounds += usize::from(survivors.injected);

        // The disk after the power loss, laid out anew.
        let after = scratch.join(format!("after-{round}"));
        survivors.lay_out(&live, &after);
        let reopened = after.join("tenant/host");
        assert!(
            reopened.is_dir(),
            "round {round}: the host directory did not survive ({acked} samples acknowledged)"
        );
        let w = HostWriter::open(&reopened).unwrap();
        if !survivors.injected {
            assert!(
                w.repairs.is_empty(),
                "round {round}: a torn tail the test did not make: {:?}",
                w.repairs
            );
        }
        repairs_seen += w.repairs.len();
        drop(w);
        let read = read_all(&reopened);
        assert!(
            read.len() >= acked,
            "round {round}: {acked} samples acknowledged as durable, {} survived",
            read.len()
        );
        for (i, got) in read.iter().enumerate() {
            assert_eq!(
                got, &appended[i],
                "round {round}: sample {i} came back different"
            );
        }
        let _ = std::fs::remove_dir_all(&live);
        let _ = std::fs::remove_dir_all(&after);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "60 rounds: {crashes_mid_day} crashes before the last sync, {injected_rounds} with a partial tail, {repairs_seen} torn tails cut"
    );
    // The seed exercises both kinds of round and crashes before the end.
    assert!(
        injected_rounds > 5,
        "{injected_rounds} rounds kept a partial tail"
    );
    assert!(
        crashes_mid_day > 10,
        "{crashes_mid_day} crashes before the last sync"
    );
    assert!(repairs_seen > 0, "no partial tail ever needed a repair");
}

/// The tenant day store under the same power losses: several hosts
/// append to one file per day, each commit (sync, then the index) is an
/// acknowledgement, and after the crash a new writer must bring back
/// every acknowledged sample of every host, through its chain.
#[test]
fn every_acknowledged_sample_of_a_tenant_day_store_survives_a_crash() {
    use opticon::db::host::BlockEncoder;
    use opticon::db::store::{self, TenantStore};
    use uuid::Uuid;

    let scratch = std::env::temp_dir().join(format!("opticon-crash-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut rng = Rng::new(0x7e4a_47d5);
    let (mut injected_rounds, mut repairs_seen, mut crashes_mid_run) = (0, 0, 0);
    for round in 0..40 {
        let live = scratch.join(format!("live-{round}"));
        let tenant = live.join("tenant");
        std::fs::create_dir_all(&tenant).unwrap();
        let rec = Arc::new(Recording::default());
        let mut s = TenantStore::with_storage(&tenant, rec.clone());
        s.lock().unwrap();
        let n_hosts = 1 + rng.below(4);
        let mut hosts: Vec<(Uuid, FakeHost, BlockEncoder)> = (0..n_hosts)
            .map(|i| {
                (
                    Uuid::from_u128(round as u128 * 100 + i as u128 + 1),
                    FakeHost::new(round as u64 * 10 + i as u64),
                    BlockEncoder::default(),
                )
            })
            .collect();
        let mut appended: Vec<Vec<(i64, String)>> = vec![Vec::new(); n_hosts];
        // (log length when commit() returned, samples per host then)
        let mut acks: Vec<(usize, usize)> = Vec::new();
        let mut time = 1_700_006_400 - 3600 + rng.below(5400) as i64;
        let minutes = 5 + rng.below(100);
        let commit_every = 1 + rng.below(10);
        for n in 0..minutes {
            time += 60;
            for (i, (id, fake, enc)) in hosts.iter_mut().enumerate() {
                let m = fake.sample(time);
                s.append_sample(*id, time, &m, enc).unwrap();
                appended[i].push((time, encode_host(&m, false)));
            }
            if (n + 1) % commit_every == 0 || n + 1 == minutes {
                s.commit().unwrap();
                acks.push((rec.len(), n + 1));
            }
        }
        drop(s);
        let (cut, acked) = acks[rng.below(acks.len())];
        if cut < rec.len() {
            crashes_mid_run += 1;
        }
        let survivors = crash(&rec.ops(), cut, &tenant, &mut rng);
        injected_rounds += usize::from(survivors.injected);
        let after = scratch.join(format!("after-{round}"));
        survivors.lay_out(&live, &after);
        let reopened = after.join("tenant");
        let mut s = TenantStore::new(&reopened);
        s.lock().unwrap();
        for date in store::reader::dates(&reopened).unwrap() {
            s.host_day(date, hosts[0].0).unwrap();
        }
        s.commit().unwrap();
        assert!(s.damage.is_empty(), "round {round}: {:?}", s.damage);
        if !survivors.injected {
            assert!(
                s.repairs.is_empty(),
                "round {round}: a torn tail the test did not make: {:?}",
                s.repairs
            );
        }
        repairs_seen += s.repairs.len();
        drop(s);
        for (i, (id, _, _)) in hosts.iter().enumerate() {
            let mut read = Vec::new();
            store::reader::replay_range(&reopened, *id, 0, i64::MAX, |t, m| {
                read.push((t, encode_host(m, false)));
                true
            })
            .unwrap();
            assert!(
                read.len() >= acked,
                "round {round} host {i}: {acked} samples acknowledged, {} survived",
                read.len()
            );
            assert_eq!(
                read[..],
                appended[i][..read.len()],
                "round {round} host {i}: samples came back different"
            );
        }
        let _ = std::fs::remove_dir_all(&live);
        let _ = std::fs::remove_dir_all(&after);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "40 rounds: {crashes_mid_run} crashes before the last commit, {injected_rounds} with a partial tail, {repairs_seen} torn tails cut"
    );
    assert!(
        injected_rounds > 5,
        "{injected_rounds} rounds kept a partial tail"
    );
    assert!(
        crashes_mid_run > 8,
        "{crashes_mid_run} crashes before the last commit"
    );
    assert!(repairs_seen > 0, "no partial tail ever needed a repair");
}
