//! The tenant day store: many hosts' records in one file per day, read
//! back through each host's chain, recovered after an unclean stop, and
//! damage cut or left to fsck as the host files' was.

use opticon::db::host::BlockEncoder;
use opticon::db::store::{self, TenantStore};
use opticon::db::time::Date;
use opticon::fleet::FakeHost;
use opticon::model::json::encode_host;
use std::path::{Path, PathBuf};
use uuid::Uuid;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opticon-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Fleet {
    hosts: Vec<(Uuid, FakeHost, BlockEncoder)>,
    /// Every sample appended, per host, as (time, JSON).
    written: Vec<Vec<(i64, String)>>,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        Fleet {
            hosts: (0..n)
                .map(|i| {
                    (
                        Uuid::from_u128(0x5000 + i as u128 * 7919),
                        FakeHost::new(i as u64 + 1),
                        BlockEncoder::default(),
                    )
                })
                .collect(),
            written: vec![Vec::new(); n],
        }
    }

    /// One minute: every host appends a sample at `time`.
    fn minute(&mut self, s: &mut TenantStore, time: i64) {
        for (i, (id, fake, enc)) in self.hosts.iter_mut().enumerate() {
            let m = fake.sample(time);
            s.append_sample(*id, time, &m, enc).unwrap();
            self.written[i].push((time, encode_host(&m, false)));
        }
    }
}

fn read_back(tenant: &Path, host: Uuid) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    store::reader::replay_range(tenant, host, 0, i64::MAX, |t, m| {
        out.push((t, encode_host(m, false)));
        true
    })
    .unwrap();
    out
}

const MIDNIGHT: i64 = 1_700_006_400;

#[test]
fn hosts_share_a_day_file_and_read_back_exactly() {
    let tenant = scratch("round-trip");
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    let mut fleet = Fleet::new(5);
    // 150 minutes across a UTC midnight: two day files, every host in both.
    let start = MIDNIGHT - 90 * 60;
    for k in 0..150 {
        fleet.minute(&mut s, start + 60 * k);
    }
    s.commit().unwrap();
    s.unlock();
    let days = store::days_dir(&tenant);
    let mut files: Vec<_> = std::fs::read_dir(&days)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "20231114.otd",
            "20231114.oti",
            "20231115.otd",
            "20231115.oti"
        ]
    );
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        assert_eq!(read_back(&tenant, *id), fleet.written[i], "host {i}");
        let (t, m) = store::latest(&tenant, *id).unwrap().unwrap();
        assert_eq!(
            (t, encode_host(&m, false)),
            *fleet.written[i].last().unwrap()
        );
        // The sample at a time between two records is the earlier one.
        let probe = fleet.written[i][70].0 + 30;
        let (t, m) = store::sample_at(&tenant, *id, probe).unwrap().unwrap();
        assert_eq!((t, encode_host(&m, false)), fleet.written[i][70]);
        let u = store::usage(&tenant, *id).unwrap();
        assert_eq!(u.first, Some(start));
        assert_eq!(u.last, Some(start + 149 * 60));
        assert!(u.bytes > 0);
        let dates: Vec<Date> = store::host_dates(&tenant, *id)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(dates, [Date::of(start), Date::of(MIDNIGHT)]);
    }
    // Read for every host at once (a purge, the collector's first cycle),
    // the same as host by host.
    let last = store::reader::last_time_by_host(&tenant).unwrap();
    let before_today = store::reader::bytes_by_host_except(&tenant, Date::of(MIDNIGHT)).unwrap();
    assert_eq!((last.len(), before_today.len()), (5, 5));
    for (id, _, _) in &fleet.hosts {
        let all = store::host_dates(&tenant, *id).unwrap();
        assert_eq!(last[id], all[1].1.last_time);
        assert_eq!(before_today[id], all[0].1.bytes);
    }
    let series = store::series_many(
        &tenant,
        fleet.hosts[0].0,
        &["loadavg"],
        MIDNIGHT - 600,
        MIDNIGHT + 600,
    )
    .unwrap();
    assert_eq!(series[0].len(), 21, "{:?}", series[0]);
    assert!(store::latest(&tenant, Uuid::from_u128(1))
        .unwrap()
        .is_none());
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn readers_see_what_the_index_covers_and_a_new_writer_recovers_the_rest() {
    let tenant = scratch("recover");
    let mut fleet = Fleet::new(3);
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for k in 0..10 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.commit().unwrap();
    // Appended and synced, but the writer stops before the index.
    for k in 10..15 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.sync().unwrap();
    let id = fleet.hosts[1].0;
    assert_eq!(read_back(&tenant, id), fleet.written[1][..10]);
    drop(s);
    // A writer lock is free again; the next writer indexes the rest and
    // chains on from it (its encoders start with full frames).
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for (_, _, enc) in fleet.hosts.iter_mut() {
        enc.reset();
    }
    for k in 15..20 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.commit().unwrap();
    assert!(s.repairs.is_empty() && s.damage.is_empty());
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        assert_eq!(read_back(&tenant, *id), fleet.written[i], "host {i}");
    }
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn a_torn_tail_is_cut_and_damage_inside_is_left_for_fsck() {
    let tenant = scratch("damage");
    let mut fleet = Fleet::new(4);
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for k in 0..30 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.commit().unwrap();
    drop(s);
    let data = store::data_path(&store::days_dir(&tenant), Date::of(MIDNIGHT));
    let index = store::index_path(&store::days_dir(&tenant), Date::of(MIDNIGHT));
    // An interrupted append, and the index lost too.
    let mut raw = std::fs::read(&data).unwrap();
    let whole = raw.len();
    let piece = raw[40..140].to_vec();
    raw.extend_from_slice(&piece);
    std::fs::write(&data, &raw).unwrap();
    std::fs::remove_file(&index).unwrap();
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    let id = fleet.hosts[2].0;
    assert!(s.host_day(Date::of(MIDNIGHT), id).unwrap().is_some());
    assert_eq!(s.repairs.len(), 1, "{:?}", s.repairs);
    assert_eq!(s.repairs[0].to, whole as u64);
    s.commit().unwrap();
    drop(s);
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        assert_eq!(read_back(&tenant, *id), fleet.written[i], "host {i}");
    }
    // A flipped byte in the middle: records after it are kept, the
    // writer says where the damage is, and appends go on at the end.
    let mut raw = std::fs::read(&data).unwrap();
    raw[whole / 2] ^= 0x55;
    std::fs::write(&data, &raw).unwrap();
    std::fs::remove_file(&index).unwrap();
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    fleet.minute(&mut s, MIDNIGHT + 60 * 30);
    s.commit().unwrap();
    assert!(s.repairs.is_empty(), "{:?}", s.repairs);
    assert_eq!(s.damage.len(), 1, "{:?}", s.damage);
    assert_eq!(std::fs::read(&data).unwrap()[..whole], raw[..whole]);
    // Every host's latest sample is still there.
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        let (t, m) = store::latest(&tenant, *id).unwrap().unwrap();
        assert_eq!(
            (t, encode_host(&m, false)),
            *fleet.written[i].last().unwrap()
        );
    }
    drop(s);
    // A damaged header: rebuilt from the file name, every record kept.
    let mut raw = std::fs::read(&data).unwrap();
    raw[3] ^= 1;
    std::fs::write(&data, &raw).unwrap();
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    fleet.minute(&mut s, MIDNIGHT + 60 * 31);
    s.commit().unwrap();
    assert_eq!(s.damage.len(), 1, "{:?}", s.damage);
    assert!(s.damage[0].contains("header rebuilt"), "{}", s.damage[0]);
    let (t, _) = store::latest(&tenant, id).unwrap().unwrap();
    assert_eq!(t, MIDNIGHT + 60 * 31);
    assert!(read_back(&tenant, id).len() > 25);
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn one_writer_per_tenant_and_samples_in_order() {
    let tenant = scratch("lock");
    let mut a = TenantStore::new(&tenant);
    a.lock().unwrap();
    let mut b = TenantStore::new(&tenant);
    let e = b
        .lock_within(std::time::Duration::from_millis(50))
        .unwrap_err();
    assert!(e.to_string().contains("locked by another writer"), "{e}");
    let mut fleet = Fleet::new(1);
    fleet.minute(&mut a, MIDNIGHT);
    let (id, fake, enc) = &mut fleet.hosts[0];
    let m = fake.sample(MIDNIGHT);
    let e = a.append_sample(*id, MIDNIGHT, &m, enc).unwrap_err();
    assert!(e.to_string().contains("is not newer"), "{e}");
    a.commit().unwrap();
    a.unlock();
    b.lock().unwrap();
    let mut unlocked = TenantStore::new(&tenant);
    let e = unlocked
        .append_sample(*id, MIDNIGHT + 60, &m, enc)
        .unwrap_err();
    assert!(e.to_string().contains("without the lock"), "{e}");
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn a_deleted_host_leaves_the_day_files_and_the_others_read_on() {
    let tenant = scratch("remove");
    let mut fleet = Fleet::new(4);
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for k in 0..40 {
        fleet.minute(&mut s, MIDNIGHT - 1200 + 60 * k);
    }
    s.commit().unwrap();
    s.unlock();
    let gone = fleet.hosts[1].0;
    let rewritten = store::rewrite::remove_hosts(&tenant, &[gone]).unwrap();
    assert_eq!(rewritten.len(), 2);
    assert!(read_back(&tenant, gone).is_empty());
    assert!(store::usage(&tenant, gone).unwrap().last.is_none());
    // The writer sees the files changed under it and chains on from the
    // rewritten ones.
    s.lock().unwrap();
    for k in 40..45 {
        fleet.minute(&mut s, MIDNIGHT - 1200 + 60 * k);
    }
    s.commit().unwrap();
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        let back = read_back(&tenant, *id);
        if i == 1 {
            // Recorded afresh after the delete, starting a new block.
            assert_eq!(back, fleet.written[1][40..]);
        } else {
            assert_eq!(back, fleet.written[i], "host {i}");
        }
    }
    for date in store::reader::dates(&tenant).unwrap() {
        let r = store::check::check_day(&store::days_dir(&tenant), date).unwrap();
        assert!(r.clean(), "{r:?}");
    }
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn check_finds_damage_and_repair_leaves_a_clean_file() {
    let tenant = scratch("check");
    let mut fleet = Fleet::new(3);
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for k in 0..90 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.commit().unwrap();
    drop(s);
    let days = store::days_dir(&tenant);
    let date = Date::of(MIDNIGHT);
    let data = store::data_path(&days, date);
    assert!(store::check::check_day(&days, date).unwrap().clean());
    // A torn tail: cut, and the index rebuilt.
    let clean_len = std::fs::metadata(&data).unwrap().len();
    let mut raw = std::fs::read(&data).unwrap();
    raw.extend_from_slice(&[0, 0, 1, 0, 9, 9]);
    std::fs::write(&data, &raw).unwrap();
    let r = store::check::check_day(&days, date).unwrap();
    assert_eq!(r.torn_tail, Some(clean_len), "{r:?}");
    let done = store::check::repair_day(&days, date, &r).unwrap().unwrap();
    assert!(done.contains("cut torn tail"), "{done}");
    assert!(store::check::check_day(&days, date).unwrap().clean());
    // A flipped byte in a record: bytes that are no record, and the rest
    // of that host's block cannot be decoded until its next full frame.
    raw.truncate(clean_len as usize);
    raw[clean_len as usize / 3] ^= 0x10;
    std::fs::write(&data, &raw).unwrap();
    let r = store::check::check_day(&days, date).unwrap();
    assert_eq!(r.corrupt.len(), 1, "{r:?}");
    assert!(!r.undecodable.is_empty(), "{r:?}");
    let samples = r.samples;
    let done = store::check::repair_day(&days, date, &r).unwrap().unwrap();
    assert!(done.contains("rebuilt"), "{done}");
    let after = store::check::check_day(&days, date).unwrap();
    assert!(after.clean(), "{after:?}");
    assert_eq!(after.samples, samples);
    // Every host still has its latest sample, and each sample read back
    // is one that was written.
    for (i, (id, _, _)) in fleet.hosts.iter().enumerate() {
        let back = read_back(&tenant, *id);
        assert_eq!(back.last(), fleet.written[i].last());
        assert!(back.iter().all(|s| fleet.written[i].contains(s)));
    }
    // A damaged header: rebuilt around the records that verify.
    let mut raw = std::fs::read(&data).unwrap();
    raw[0] = b'X';
    std::fs::write(&data, &raw).unwrap();
    let r = store::check::check_day(&days, date).unwrap();
    assert!(r.bad_header.is_some(), "{r:?}");
    store::check::repair_day(&days, date, &r).unwrap().unwrap();
    let after = store::check::check_day(&days, date).unwrap();
    assert!(after.clean() && after.samples == samples, "{after:?}");
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn migrate_converts_host_day_files_in_place_and_resumes() {
    use opticon::db::host::{self, HostWriter};
    use opticon::db::migrate;
    let tenant = scratch("migrate");
    let ids: Vec<Uuid> = (0..3).map(|i| Uuid::from_u128(0xabc0 + i)).collect();
    let mut written: Vec<Vec<(i64, String)>> = vec![Vec::new(); 3];
    for (i, id) in ids.iter().enumerate() {
        let dir = tenant.join(id.hyphenated().to_string());
        let mut w = HostWriter::open(&dir).unwrap();
        let mut fake = FakeHost::new(40 + i as u64);
        for k in 0..(50 + 20 * i as i64) {
            let t = MIDNIGHT - 1800 + 60 * k;
            let m = fake.sample(t);
            w.append(t, &m).unwrap();
            written[i].push((t, encode_host(&m, false)));
        }
        w.sync().unwrap();
    }
    // A host whose one day file is damaged beyond reading.
    let broken = Uuid::from_u128(0xdead);
    let broken_dir = tenant.join(broken.hyphenated().to_string());
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(
        broken_dir.join("20231115.osd"),
        b"not a day file at all, not at all",
    )
    .unwrap();
    assert!(migrate::needs_migration(&tenant).unwrap());
    let first_dir = tenant.join(ids[0].hyphenated().to_string());
    let saved: Vec<(PathBuf, Vec<u8>)> = host::day_files(&first_dir)
        .unwrap()
        .into_iter()
        .map(|d| (d.path.clone(), std::fs::read(&d.path).unwrap()))
        .collect();
    let mut dates = Vec::new();
    let done = migrate::migrate_tenant(&tenant, |d, _| dates.push(d)).unwrap();
    assert_eq!(dates, [Date::of(MIDNIGHT - 1), Date::of(MIDNIGHT)]);
    assert_eq!(done.files, 6);
    assert_eq!(done.samples, written.iter().map(Vec::len).sum::<usize>());
    assert_eq!(done.left.len(), 1, "{:?}", done.left);
    assert!(broken_dir.join("20231115.osd.corrupt").exists());
    assert!(!migrate::needs_migration(&tenant).unwrap());
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(read_back(&tenant, *id), written[i], "host {i}");
        assert!(host::day_files(&tenant.join(id.hyphenated().to_string()))
            .unwrap()
            .is_empty());
    }
    // Stopped after a date's files were renamed into place but before
    // the host files went: the rerun only deletes them, and a staging
    // directory left over goes too.
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::create_dir_all(tenant.join(migrate::STAGING_DIR).join("days")).unwrap();
    let again = migrate::migrate_tenant(&tenant, |_, _| {}).unwrap();
    assert_eq!((again.files, again.samples), (saved.len(), 0));
    assert!(!tenant.join(migrate::STAGING_DIR).exists());
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(read_back(&tenant, *id), written[i], "host {i}");
    }
    std::fs::remove_dir_all(&tenant).unwrap();
}

/// Seeded mutations of a day file and its index (flipped bytes, cuts,
/// garbage spliced in, indexes of other files): the writer, the readers
/// and the check must each give an answer or a clear error, never panic
/// nor hang, and the writer must never cut records that verify.
#[test]
fn damaged_day_files_and_indexes_never_panic() {
    use crate::common::Rng;
    let tenant = scratch("fuzz");
    let mut fleet = Fleet::new(3);
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    for k in 0..20 {
        fleet.minute(&mut s, MIDNIGHT + 60 * k);
    }
    s.commit().unwrap();
    drop(s);
    let days = store::days_dir(&tenant);
    let date = Date::of(MIDNIGHT);
    let (data, index) = (
        store::data_path(&days, date),
        store::index_path(&days, date),
    );
    let (good_data, good_index) = (
        std::fs::read(&data).unwrap(),
        std::fs::read(&index).unwrap(),
    );
    let mut rng = Rng::new(0x0fd5_57a3);
    for round in 0..300 {
        let mut d = good_data.clone();
        let mut ix = good_index.clone();
        for _ in 0..1 + rng.below(4) {
            let target = if rng.below(2) == 0 { &mut d } else { &mut ix };
            match rng.below(4) {
                0 if !target.is_empty() => {
                    let i = rng.below(target.len());
                    let bit = rng.below(8);
                    target[i] ^= 1 << bit;
                }
                1 => {
                    let n = rng.below(target.len() + 1);
                    target.truncate(n);
                }
                2 => {
                    let at = rng.below(target.len() + 1);
                    let n = 1 + rng.below(64);
                    let junk = rng.bytes(n);
                    target.splice(at..at, junk);
                }
                _ => {
                    let n = rng.below(200);
                    target.extend(rng.bytes(n));
                }
            }
        }
        std::fs::write(&data, &d).unwrap();
        std::fs::write(&index, &ix).unwrap();
        for (id, _, _) in &fleet.hosts {
            let _ = store::latest(&tenant, *id);
            let _ = store::sample_at(&tenant, *id, MIDNIGHT + 300);
            let _ = store::usage(&tenant, *id);
        }
        let report = store::check::check_day(&days, date).unwrap();
        let records_before = report.records;
        let mut s = TenantStore::new(&tenant);
        s.lock().unwrap();
        s.host_day(date, fleet.hosts[0].0).unwrap();
        s.commit().unwrap();
        drop(s);
        if report.bad_header.is_none() {
            let after = store::check::check_day(&days, date).unwrap();
            assert!(
                after.records >= records_before,
                "round {round}: the writer lost records ({records_before} -> {})",
                after.records
            );
        }
    }
    std::fs::remove_dir_all(&tenant).unwrap();
}
