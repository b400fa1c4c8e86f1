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
    // A damaged header: the file is moved aside and the day starts anew.
    let mut raw = std::fs::read(&data).unwrap();
    raw[3] ^= 1;
    std::fs::write(&data, &raw).unwrap();
    let mut s = TenantStore::new(&tenant);
    s.lock().unwrap();
    fleet.minute(&mut s, MIDNIGHT + 60 * 31);
    s.commit().unwrap();
    assert_eq!(s.damage.len(), 1, "{:?}", s.damage);
    assert!(s.damage[0].contains("moved aside"), "{}", s.damage[0]);
    assert_eq!(read_back(&tenant, id).len(), 1);
    std::fs::remove_dir_all(&tenant).unwrap();
}

#[test]
fn one_writer_per_tenant_and_samples_in_order() {
    let tenant = scratch("lock");
    let mut a = TenantStore::new(&tenant);
    a.lock().unwrap();
    let mut b = TenantStore::new(&tenant);
    assert!(b
        .lock()
        .unwrap_err()
        .to_string()
        .contains("locked by another writer"));
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
