//! The sealed wire format: tampering, wrong keys, replays, splitting.

use crate::common;

use opticon::crypto::{random_key, random_uuid, SealKey};
use opticon::model::binary::{apply_payload, encode_sample};
use opticon::model::{Array, HostMeters, MeterName, MeterValue, Scalar};
use opticon::wire::{
    self, peek, split_sample, Datagram, OpenedAuth, Rejection, ReplayWindow, SenderSession,
    AUTH_LEN, DEFAULT_MAX_DATAGRAM, DEFAULT_MAX_SKEW, REPLAY_WINDOW,
};
use uuid::Uuid;

const NOW: i64 = 1_700_000_000;

struct Pair {
    tenant: Uuid,
    tenant_key: SealKey,
    host: Uuid,
    sender: SenderSession,
}

fn pair() -> Pair {
    Pair {
        tenant: random_uuid().unwrap(),
        tenant_key: SealKey::new(&random_key().unwrap()),
        host: random_uuid().unwrap(),
        sender: SenderSession::new().unwrap(),
    }
}

fn auth_header(d: &[u8]) -> wire::AuthHeader<'_> {
    match peek(d).unwrap() {
        Datagram::Auth(a) => a,
        other => panic!("{other:?}"),
    }
}

fn meter_header(d: &[u8]) -> wire::MeterHeader<'_> {
    match peek(d).unwrap() {
        Datagram::Meter(m) => m,
        other => panic!("{other:?}"),
    }
}

/// Open a session from `p`'s first auth datagram.
fn open_session(p: &mut Pair) -> OpenedAuth {
    let auth = p
        .sender
        .auth_datagram(&p.tenant_key, p.tenant, p.host, NOW)
        .unwrap();
    assert_eq!(auth.len(), AUTH_LEN);
    let h = auth_header(&auth);
    assert_eq!((h.tenant, h.session), (p.tenant, p.sender.id()));
    let opened = OpenedAuth::open_new(&h, &p.tenant_key, NOW, DEFAULT_MAX_SKEW).unwrap();
    assert_eq!(opened.host, p.host);
    opened
}

fn sample_payload() -> Vec<u8> {
    encode_sample(NOW, &common::representative_host())
}

#[test]
fn auth_then_meter_round_trip() {
    let mut p = pair();
    let mut session = open_session(&mut p);
    let payload = sample_payload();
    let d = p.sender.meter_datagram(&payload);
    let mut plain = Vec::new();
    let opened = meter_header(&d)
        .open(&session.key, &mut session.window, &mut plain)
        .unwrap();
    assert_eq!(opened, &payload[..]);
    let mut host = HostMeters::new();
    apply_payload(&mut host, opened).unwrap();
    assert_eq!(host, common::representative_host());
}

fn open_any(d: &[u8], p: &Pair, session: &OpenedAuth) -> Result<(), Rejection> {
    match peek(d)? {
        Datagram::Auth(a) => {
            let mut w = session.window.clone();
            a.open(&p.tenant_key, Some(&mut w), NOW, DEFAULT_MAX_SKEW)
                .map(|_| ())
        }
        Datagram::Meter(m) => {
            let mut w = session.window.clone();
            m.open(&session.key, &mut w, &mut Vec::new()).map(|_| ())
        }
    }
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let mut p = pair();
    let session = open_session(&mut p);
    let auth = p
        .sender
        .auth_datagram(&p.tenant_key, p.tenant, p.host, NOW)
        .unwrap();
    let meter = p.sender.meter_datagram(&sample_payload());
    for original in [auth, meter] {
        assert_eq!(open_any(&original, &p, &session), Ok(()));
        for bit in 0..original.len() * 8 {
            let mut d = original.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(
                open_any(&d, &p, &session).is_err(),
                "flip of bit {bit} accepted"
            );
        }
    }
}

#[test]
fn other_tenant_key_is_rejected() {
    let mut p = pair();
    let mut session = open_session(&mut p);
    let other = SealKey::new(&random_key().unwrap());
    let auth = p
        .sender
        .auth_datagram(&p.tenant_key, p.tenant, p.host, NOW)
        .unwrap();
    assert_eq!(
        auth_header(&auth)
            .open(&other, None, NOW, DEFAULT_MAX_SKEW)
            .unwrap_err(),
        Rejection::BadMac
    );
    // A meter datagram of another session, even of the same tenant.
    // Its serial is past the window top, so the MAC is what rejects it.
    let mut stranger = SenderSession::new().unwrap();
    let d = (0..5)
        .map(|_| stranger.meter_datagram(&sample_payload()))
        .last()
        .unwrap();
    let before = session.window.clone();
    assert_eq!(
        meter_header(&d)
            .open(&session.key, &mut session.window, &mut Vec::new())
            .unwrap_err(),
        Rejection::BadMac
    );
    assert_eq!(session.window, before, "a bad MAC must not move the window");
}

#[test]
fn replays_and_old_serials_are_rejected_reorder_accepted_once() {
    let mut p = pair();
    let mut s = open_session(&mut p);
    let payload = sample_payload();
    let batch: Vec<Vec<u8>> = (0..10).map(|_| p.sender.meter_datagram(&payload)).collect();
    let mut open = |d: &[u8]| {
        meter_header(d)
            .open(&s.key, &mut s.window, &mut Vec::new())
            .map(|_| ())
    };
    // Deliver out of order: 9, then 0..9.
    assert_eq!(open(&batch[9]), Ok(()));
    for d in &batch[..9] {
        assert_eq!(open(d), Ok(()), "reordered datagram within the window");
    }
    for d in &batch {
        assert_eq!(open(d), Err(Rejection::Replay));
    }
    // Push the window past the first batch.
    let late: Vec<Vec<u8>> = (0..REPLAY_WINDOW + 5)
        .map(|_| p.sender.meter_datagram(&payload))
        .collect();
    assert_eq!(open(late.last().unwrap()), Ok(()));
    assert_eq!(open(&late[0]), Err(Rejection::TooOld));
    // A replayed auth datagram for the existing session is refused too.
    let auth = p
        .sender
        .auth_datagram(&p.tenant_key, p.tenant, p.host, NOW)
        .unwrap();
    let h = auth_header(&auth);
    assert!(h
        .open(&p.tenant_key, Some(&mut s.window), NOW, DEFAULT_MAX_SKEW)
        .is_ok());
    assert_eq!(
        h.open(&p.tenant_key, Some(&mut s.window), NOW, DEFAULT_MAX_SKEW),
        Err(Rejection::Replay)
    );
}

#[test]
fn auth_clock_skew() {
    let mut p = pair();
    let auth = p
        .sender
        .auth_datagram(&p.tenant_key, p.tenant, p.host, NOW)
        .unwrap();
    let h = auth_header(&auth);
    assert!(h.open(&p.tenant_key, None, NOW + 180, 180).is_ok());
    assert_eq!(
        h.open(&p.tenant_key, None, NOW + 181, 180),
        Err(Rejection::ClockSkew(-181))
    );
    assert_eq!(
        h.open(&p.tenant_key, None, NOW - 500, 180),
        Err(Rejection::ClockSkew(500))
    );
    assert!(
        h.open(&p.tenant_key, None, NOW + 3600, 3600).is_ok(),
        "skew is configurable"
    );
}

#[test]
fn distinct_header_rejections() {
    let mut p = pair();
    let d = p.sender.meter_datagram(&sample_payload());
    let mut v = d.clone();
    v[3] = 2;
    assert_eq!(peek(&v), Err(Rejection::BadVersion(2)));
    let mut m = d.clone();
    m[0] = b'X';
    assert_eq!(peek(&m), Err(Rejection::BadMagic));
    let mut k = d.clone();
    k[4] = b'Z';
    assert_eq!(peek(&k), Err(Rejection::Malformed));
    assert_eq!(peek(&d[..20]), Err(Rejection::Malformed));
    assert_eq!(peek(b"OP"), Err(Rejection::BadMagic));
    let names: std::collections::HashSet<&str> = [
        Rejection::BadMagic,
        Rejection::BadVersion(0),
        Rejection::Malformed,
        Rejection::Oversize(0),
        Rejection::UnknownTenant,
        Rejection::UnknownSession,
        Rejection::BadMac,
        Rejection::Replay,
        Rejection::TooOld,
        Rejection::ClockSkew(0),
    ]
    .iter()
    .map(Rejection::counter)
    .collect();
    assert_eq!(names.len(), 10, "every reason has its own counter");
}

/// A sample of about 20 KB: many meters plus arrays too large for one
/// datagram.
fn big_sample() -> HostMeters {
    let mut h = common::representative_host();
    let name = |s: String| MeterName::new(&s).unwrap();
    for i in 0..300 {
        h.set(
            name(format!("m/v{i}")),
            MeterValue::Scalar(Scalar::Int(i * 1_000_003)),
            NOW,
        )
        .unwrap();
    }
    let strings: Vec<String> = (0..400)
        .map(|i| format!("process-{i:04}-with-a-long-name"))
        .collect();
    h.set(
        name("big/names".into()),
        MeterValue::Array(Array::Str(strings)),
        NOW,
    )
    .unwrap();
    h.set(
        name("big/load".into()),
        MeterValue::Array(Array::Frac((0..1000).map(|i| i as f64 / 7.0).collect())),
        NOW,
    )
    .unwrap();
    h
}

#[test]
fn split_sample_fits_and_reassembles() {
    let sample = big_sample();
    let whole = encode_sample(NOW, &sample);
    assert!(whole.len() > 20_000, "sample is {} bytes", whole.len());
    for max in [DEFAULT_MAX_DATAGRAM, wire::MIN_DATAGRAM, 9000] {
        let payloads = split_sample(NOW, &sample, max).unwrap();
        assert!(payloads.len() > 1);
        let mut p = pair();
        let mut s = open_session(&mut p);
        let mut merged = HostMeters::new();
        for payload in &payloads {
            let d = p.sender.meter_datagram(payload);
            assert!(d.len() <= max, "{} > {max}", d.len());
            let mut plain = Vec::new();
            let opened = meter_header(&d)
                .open(&s.key, &mut s.window, &mut plain)
                .unwrap();
            // Each datagram decodes on its own.
            let applied = apply_payload(&mut merged, opened).unwrap();
            assert_eq!(applied.time, NOW);
        }
        assert_eq!(
            merged,
            sample,
            "merge of {} datagrams of <= {max} bytes",
            payloads.len()
        );
    }
    assert!(split_sample(NOW, &sample, 100).is_err());
}

#[test]
fn split_arrays_with_lost_parts_fill_zeros() {
    let mut h = HostMeters::new();
    let values: Vec<i64> = (1..=1000).map(|i| i * 1_000_000).collect();
    h.set(
        MeterName::new("a").unwrap(),
        MeterValue::Array(Array::Int(values)),
        NOW,
    )
    .unwrap();
    let payloads = split_sample(NOW, &h, 512).unwrap();
    assert!(payloads.len() >= 3);
    let mut merged = HostMeters::new();
    for p in payloads.iter().skip(1) {
        apply_payload(&mut merged, p).unwrap();
    }
    match &merged.get("a").unwrap().value {
        MeterValue::Array(Array::Int(v)) => {
            assert_eq!(v.len(), 1000);
            assert_eq!(v[0], 0, "the lost first part reads as zeros");
            assert_eq!(v[999], 1_000_000_000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn window_unit() {
    let mut w = ReplayWindow::new();
    w.accept(10);
    assert_eq!(w.check(10), Err(Rejection::Replay));
    assert_eq!(w.check(11), Ok(()));
}
