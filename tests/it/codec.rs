//! Round trips through the binary and JSON codecs, and the golden host JSON.

use crate::common;

use opticon::model::binary::{self, apply_payload, decode_sample, encode_sample, CodecErrorKind};
use opticon::model::json::{encode_host, meters_from_json, JsonError};
use opticon::model::{
    Array, HostMeters, MeterName, MeterValue, Scalar, MAX_ARRAY_LEN, MAX_STRING_LEN,
};

fn name(s: &str) -> MeterName {
    MeterName::new(s).unwrap()
}

fn every_kind() -> HostMeters {
    let mut h = HostMeters::new();
    let t = 1_700_000_123;
    let long_name = "n".repeat(63);
    let values = vec![
        ("int/zero", MeterValue::Scalar(Scalar::Int(0))),
        ("int/neg", MeterValue::Scalar(Scalar::Int(-42))),
        ("int/max", MeterValue::Scalar(Scalar::Int(i64::MAX))),
        ("int/min", MeterValue::Scalar(Scalar::Int(i64::MIN))),
        ("big", MeterValue::Scalar(Scalar::Int((1 << 40) + 3))),
        ("frac.a", MeterValue::Scalar(Scalar::Frac(6.03))),
        ("frac.b", MeterValue::Scalar(Scalar::Frac(-0.0))),
        ("frac.c", MeterValue::Scalar(Scalar::Frac(1e300))),
        (
            "frac.d",
            MeterValue::Scalar(Scalar::Frac(std::f64::consts::PI)),
        ),
        ("frac.e", MeterValue::Scalar(Scalar::Frac(-273.15))),
        (
            "frac.f",
            MeterValue::Scalar(Scalar::Frac(f64::MIN_POSITIVE)),
        ),
        (
            "str",
            MeterValue::Scalar(Scalar::Str("héllo \"wörld\"\n\u{1}".into())),
        ),
        ("str.empty", MeterValue::Scalar(Scalar::Str(String::new()))),
        (
            "str.long",
            MeterValue::Scalar(Scalar::Str("x".repeat(MAX_STRING_LEN))),
        ),
        ("nothing", MeterValue::Null),
        ("empty", MeterValue::Array(Array::Int(vec![]))),
        ("ints", MeterValue::Array(Array::Int(vec![1, -2, 3]))),
        (
            "fracs",
            MeterValue::Array(Array::Frac(vec![0.1, 0.2, 16.92])),
        ),
        (
            "strs",
            MeterValue::Array(Array::Str(vec!["a".into(), "".into()])),
        ),
        (
            "wide",
            MeterValue::Array(Array::Int((0..MAX_ARRAY_LEN as i64).collect())),
        ),
        ("digits123", MeterValue::Scalar(Scalar::Int(7))),
        (long_name.as_str(), MeterValue::Scalar(Scalar::Int(1))),
    ];
    for (n, v) in values {
        h.set(name(n), v, t).unwrap();
    }
    h
}

#[test]
fn binary_round_trip_is_lossless() {
    let host = every_kind();
    let payload = encode_sample(1_700_000_123, &host);
    let (time, back) = decode_sample(&payload).unwrap();
    assert_eq!(time, 1_700_000_123);
    assert_eq!(back, host);
    // -0.0 keeps its sign bit.
    match &back.get("frac.b").unwrap().value {
        MeterValue::Scalar(Scalar::Frac(f)) => assert!(f.is_sign_negative()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoding_into_a_used_set_replaces_it() {
    // A worker decodes host after host into one set: whatever the last
    // host left (other names, kinds, lengths, update times) must not show.
    let mut fleet: Vec<HostMeters> = (0..6)
        .map(|seed| opticon::fleet::FakeHost::new(seed).sample(1_700_000_000 + seed as i64))
        .collect();
    fleet.push(every_kind());
    fleet.push(HostMeters::new());
    let mut odd = every_kind();
    odd.set(
        name("ints"),
        MeterValue::Scalar(Scalar::Str("now a string".into())),
        1,
    )
    .unwrap();
    odd.remove("strs");
    odd.set(name("strs/x"), MeterValue::Array(Array::Frac(vec![1.5])), 1)
        .unwrap();
    fleet.push(odd);
    let mut set = HostMeters::new();
    for round in 0..2 {
        for (i, host) in fleet.iter().enumerate() {
            // The same time as the set's stamps, or not.
            let time = if round == 0 { 1_700_000_123 } else { i as i64 };
            let payload = encode_sample(time, host);
            assert_eq!(
                binary::decode_sample_into(&mut set, &payload).unwrap(),
                time
            );
            let (_, fresh) = decode_sample(&payload).unwrap();
            assert_eq!(set, fresh, "host {i} of round {round}");
        }
    }
    assert!(binary::decode_sample_into(&mut set, b"\xff junk").is_err());
}

#[test]
fn decimal_fracs_are_compact() {
    let mut h = HostMeters::new();
    h.set(name("p"), MeterValue::Scalar(Scalar::Frac(12.34)), 0)
        .unwrap();
    let payload = encode_sample(0, &h);
    // version + time + namelen + name + tag + varint((zigzag(1234) << 3) | 2)
    assert_eq!(payload.len(), 1 + 1 + 1 + 1 + 1 + 3, "{payload:?}");
}

/// Every frac is written with the smallest decimal scale that holds it
/// exactly (or raw), as by trying each scale in turn, and reads back
/// bit for bit: the encoder's shortcut for fracs of many decimals never
/// changes what it writes.
#[test]
fn fracs_take_their_smallest_exact_scale() {
    fn by_every_scale(f: f64) -> Vec<u8> {
        let mut out = Vec::new();
        for k in 0..7 {
            let scale = 10f64.powi(k);
            let scaled = f * scale;
            if scaled.abs() < 9_007_199_254_740_992.0 {
                let m = scaled.round() as i64;
                if (m as f64 / scale).to_bits() == f.to_bits() {
                    binary::put_varint(&mut out, (binary::zigzag(m) << 3) | k as u64);
                    return out;
                }
            }
        }
        binary::put_varint(&mut out, 7);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
        out
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        12.34,
        0.1,
        0.000001,
        0.0000001,
        1e15,
        9.007e15,
        1e16,
        1e300,
        -1e-300,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for _ in 0..20_000 {
        let r = next();
        values.push(f64::from_bits(r));
        // Decimals of 0 to 8 places, of any magnitude an agent sends.
        let places = (r % 9) as i32;
        let whole = (next() % 10_000_000_000) as f64;
        values.push(whole / 10f64.powi(places));
        values.push((r >> 11) as f64 / (1u64 << 53) as f64 * 100.0);
    }
    for f in values {
        let value = MeterValue::Scalar(Scalar::Frac(f));
        let mut out = Vec::new();
        binary::put_tagged(&mut out, &value);
        assert_eq!(
            out[1..],
            by_every_scale(f)[..],
            "{f:e} ({:#x})",
            f.to_bits()
        );
        if !f.is_finite() {
            // Written, but refused by the decoder (as the model refuses it).
            continue;
        }
        let mut h = HostMeters::new();
        h.set(name("f"), value, 0).unwrap();
        let (_, back) = decode_sample(&encode_sample(0, &h)).unwrap();
        match back.get("f").map(|m| &m.value) {
            Some(MeterValue::Scalar(Scalar::Frac(g))) => assert_eq!(g.to_bits(), f.to_bits()),
            other => panic!("{f:e} read back as {other:?}"),
        }
    }
}

#[test]
fn json_round_trip() {
    let host = every_kind();
    let text = encode_host(&host, false);
    let mut back = HostMeters::new();
    for (n, v) in meters_from_json(&text).unwrap() {
        back.set(n, v, 1_700_000_123).unwrap();
    }
    // JSON cannot tell an empty int array from an empty frac array, and the
    // grouped scalars come back grouped: compare values, not just shapes.
    assert_eq!(back, host);
    let pretty = encode_host(&host, true);
    assert_eq!(meters_from_json(&pretty).unwrap().len(), host.len());
}

#[test]
fn golden_host_json() {
    let host = common::representative_host();
    let expected = concat!(
        r#"{"chkwarn":[],"#,
        r#""df":[{"device":"/dev/vda1","fs":"ext4","mount":"/","pused":41.5,"size":20511356},"#,
        r#"{"device":"@vg/data","fs":"xfs","mount":"/srv","pused":97.25,"size":104857600}],"#,
        r#""hostname":"web-01.example.net","loadavg":[0.5,0.25,0.125],"#,
        r#""mem":{"free":8123456,"swap":0,"total":16316412},"note":null,"#,
        r#""os":{"arch":"x86_64","kernel":"Linux","version":"6.1.0-26-amd64"},"pcpu":12.34,"#,
        r#""top":[{"name":"nginx","pcpu":35.5,"pid":1234,"pmem":2.1,"user":"www-data"},"#,
        r#"{"name":"sshd","pcpu":1.0,"pid":99,"pmem":0.3,"user":"root"}],"uptime":86400}"#
    );
    assert_eq!(encode_host(&host, false), expected);
}

#[test]
fn ragged_tables_stay_valid_json() {
    let mut h = HostMeters::new();
    h.set(name("t/a"), MeterValue::Array(Array::Int(vec![1, 2, 3])), 0)
        .unwrap();
    h.set(
        name("t/b"),
        MeterValue::Array(Array::Str(vec!["x".into()])),
        0,
    )
    .unwrap();
    let text = encode_host(&h, false);
    assert_eq!(
        text,
        r#"{"t":[{"a":1,"b":"x"},{"a":2,"b":null},{"a":3,"b":null}]}"#
    );
    assert!(opticon::conf::parse(&text).is_ok());
}

#[test]
fn hierarchy_rules() {
    let mut h = HostMeters::new();
    h.set(name("k"), MeterValue::Scalar(Scalar::Int(1)), 0)
        .unwrap();
    h.set(name("k/a"), MeterValue::Scalar(Scalar::Int(2)), 0)
        .unwrap();
    assert!(h.get("k").is_none(), "k/x replaces plain k");
    h.set(name("k/b"), MeterValue::Scalar(Scalar::Int(3)), 0)
        .unwrap();
    h.set(name("k-x"), MeterValue::Scalar(Scalar::Int(3)), 0)
        .unwrap();
    h.set(name("k"), MeterValue::Array(Array::Int(vec![])), 0)
        .unwrap();
    assert!(
        h.get("k/a").is_none() && h.get("k/b").is_none(),
        "k empties k/*"
    );
    assert!(h.get("k-x").is_some(), "neighbours survive");
}

#[test]
fn expiry() {
    let mut h = HostMeters::new();
    h.set(name("old"), MeterValue::Null, 100).unwrap();
    h.set(name("new"), MeterValue::Null, 700).unwrap();
    assert_eq!(h.expire(701, 600), 1);
    assert!(h.get("new").is_some());
}

#[test]
fn json_decoder_errors_are_clear() {
    let cases: &[(&str, &str)] = &[
        (r#"{"a": [[1]]}"#, "arrays may hold only scalars"),
        (r#"{"a": {"b": {"c": 1}}}"#, "nested deeper than two levels"),
        (
            r#"{"a": {"b": [{"c": 1}]}}"#,
            "nested deeper than two levels",
        ),
        (r#"{"a": [1, "x"]}"#, "strings mixed with numbers"),
        (r#"{"a b": 1}"#, "not allowed in a meter name"),
        (r#"{"a": [{"b": [1]}]}"#, "table cells must be scalars"),
        (r#"{"a": [{"b": 1}, 2]}"#, "a table mixes dict rows"),
        ("{\"a\": 1", "text ends inside a dict"),
    ];
    for (input, needle) in cases {
        let err = meters_from_json(input).unwrap_err();
        assert!(err.to_string().contains(needle), "{input}: {err}");
    }
    // 1024 rows, each with its own column: 1M zero-filled cells refused.
    let sparse: Vec<String> = (0..1024).map(|i| format!("{{\"c{i}\": 1}}")).collect();
    let wide = format!("{{\"t\": [{}]}}", sparse.join(","));
    assert!(meters_from_json(&wide)
        .unwrap_err()
        .to_string()
        .contains("65536 cells"));
    let long = format!(r#"{{"s": "{}"}}"#, "x".repeat(MAX_STRING_LEN + 1));
    assert!(matches!(meters_from_json(&long), Err(JsonError::Limit(..))));
}

#[test]
fn json_decoder_tables_and_types() {
    let m = meters_from_json(r#"{"t": [{"a": 1, "b": "x"}, {"a": 2.5, "c": 7}], "flag": true}"#)
        .unwrap();
    let get = |n: &str| {
        m.iter()
            .find(|(k, _)| k.as_str() == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("t/a"), MeterValue::Array(Array::Frac(vec![1.0, 2.5])));
    assert_eq!(
        get("t/b"),
        MeterValue::Array(Array::Str(vec!["x".into(), "".into()]))
    );
    assert_eq!(get("t/c"), MeterValue::Array(Array::Int(vec![0, 7])));
    assert_eq!(get("flag"), MeterValue::Scalar(Scalar::Int(1)));
}

#[test]
fn malformed_payloads_are_rejected_and_keep_limits() {
    let host = every_kind();
    let payload = encode_sample(5, &host);
    for cut in [1usize, 3, payload.len() / 2, payload.len() - 1] {
        let mut target = common::representative_host();
        let err = apply_payload(&mut target, &payload[..cut]).unwrap_err();
        assert!(
            matches!(
                err.kind,
                CodecErrorKind::Truncated | CodecErrorKind::BadName(_)
            ),
            "{err}"
        );
        assert!(binary::validate_payload(&payload[..cut]).is_err());
        // Records before the bad one may be applied; the host's own meters
        // that the payload does not name are untouched.
        assert_eq!(
            target.get("hostname"),
            common::representative_host().get("hostname")
        );
    }
    let mut wrong = payload.clone();
    wrong[0] = 2;
    assert_eq!(
        binary::validate_payload(&wrong).unwrap_err().kind,
        CodecErrorKind::UnsupportedVersion(2)
    );
    let mut bad_name = HostMeters::new();
    bad_name.set(name("ok"), MeterValue::Null, 0).unwrap();
    let mut p = encode_sample(0, &bad_name);
    let at = p.iter().position(|&b| b == b'o').unwrap();
    p[at] = b'O';
    let err = apply_payload(&mut HostMeters::new(), &p).unwrap_err();
    // The offset is that of the name's head byte, just before its text.
    assert_eq!(
        (err.offset, err.kind),
        (
            at - 1,
            CodecErrorKind::BadName(opticon::model::NameError::BadCharacter('O'))
        )
    );
}

#[test]
fn front_coded_names() {
    let mut h = HostMeters::new();
    for n in ["top/name", "top/pcpu", "top/pid", "toq", "x"] {
        h.set(name(n), MeterValue::Scalar(Scalar::Int(1)), 0)
            .unwrap();
    }
    let p = encode_sample(0, &h);
    // "top/pcpu" follows "top/name" and shares its first four bytes.
    let shared = p.windows(3).any(|w| w == [0x44, 4, b'p']);
    assert!(
        shared,
        "top/pcpu is written as 4 shared bytes + \"pcpu\": {p:?}"
    );
    assert_eq!(decode_sample(&p).unwrap().1, h);
    let mut r = binary::PayloadReader::new(&p).unwrap();
    let mut names = Vec::new();
    while r.next_record().unwrap().is_some() {
        names.push(r.name().to_string());
    }
    assert_eq!(names, ["top/name", "top/pcpu", "top/pid", "toq", "x"]);
}

#[test]
fn bad_name_heads_are_rejected() {
    let mut h = HostMeters::new();
    h.set(name("ab"), MeterValue::Null, 0).unwrap();
    let good = encode_sample(0, &h);
    let head_at = good.len() - 4; // head, 'a', 'b', tag
    assert_eq!(good[head_at], 2);
    for bad in [0x00u8, 0x40, 0x41, 0x7f, 0x80, 0xff] {
        let mut p = good.clone();
        p[head_at] = bad;
        let err = binary::validate_payload(&p).unwrap_err();
        assert!(
            matches!(err.kind, CodecErrorKind::BadNameHead(b) if b == bad)
                || err.kind == CodecErrorKind::Truncated,
            "head 0x{bad:02x}: {err}"
        );
    }
}

/// The decoder checks only the bytes a front-coded name adds to the
/// previous one (tracking where the group slash is); over random pairs of
/// names that share prefixes it must agree with the full check exactly.
#[test]
fn names_checked_by_their_new_bytes_agree_with_the_full_check() {
    let alphabet = b"ab/c.Z -_";
    let mut rng = common::Rng::new(0x9e37_79b9_7f4a_7c15);
    let random_name = |rng: &mut common::Rng| {
        let len = 1 + rng.below(8);
        (0..len)
            .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
            .collect::<String>()
    };
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..10_000 {
        // A chain of names, each sharing a random prefix of the one before,
        // up to the first the full check refuses.
        let mut p = Vec::new();
        binary::put_header(&mut p, 0);
        let mut prev = String::new();
        for records in 1..=4 {
            let keep = rng.below(prev.len() + 1);
            let name = format!("{}{}", &prev[..keep], random_name(&mut rng));
            binary::put_record(&mut p, &prev, &name, &MeterValue::Null);
            let decoded = binary::validate_payload(&p);
            match opticon::model::name::validate(&name) {
                Ok(()) => {
                    assert_eq!(decoded.ok(), Some(records), "{prev:?} then {name:?}");
                    accepted += 1;
                    prev = name;
                }
                Err(why) => {
                    let err = decoded.expect_err(&name);
                    assert_eq!(
                        err.kind,
                        CodecErrorKind::BadName(why),
                        "{prev:?} then {name:?}"
                    );
                    refused += 1;
                    break;
                }
            }
        }
    }
    assert!(accepted > 1000 && refused > 1000, "{accepted} / {refused}");
}

#[test]
fn restamped_payloads_keep_their_records_and_say_their_length() {
    use opticon::model::binary::{put_restamped, put_varint, restamp_payload, varint_len};
    for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        assert_eq!(out.len(), varint_len(v), "{v}");
    }
    let payload = encode_sample(1_700_000_000, &common::representative_host());
    for time in [0, -1, 1_700_000_060, i64::MAX] {
        let (sent, alone) = restamp_payload(&payload, time).unwrap();
        assert_eq!(sent, 1_700_000_000);
        assert_eq!(decode_sample(&alone).unwrap().0, time);
        // Queued: its length, then the same bytes.
        let mut queued = vec![7u8];
        assert_eq!(put_restamped(&mut queued, &payload, time, true), Ok(sent));
        let mut expect = vec![7u8];
        put_varint(&mut expect, alone.len() as u64);
        expect.extend_from_slice(&alone);
        assert_eq!(queued, expect);
    }
    assert!(restamp_payload(&[], 0).is_err());
}
