//! Seeded fuzz-style tests: random and mutated inputs against every
//! decoder that faces the outside world. None may panic; each input must
//! yield an error or a value within the model's limits. Set
//! OPTICON_FUZZ_SEED to reproduce or vary a run, OPTICON_FUZZ_ROUNDS to
//! scale it.

use crate::common;

use common::Rng;
use opticon::conf::{self, Node};
use opticon::crypto::{random_key, random_uuid, SealKey};
use opticon::model::binary::{apply_payload, encode_sample};
use opticon::model::json::{encode_host, meters_from_json};
use opticon::model::{HostMeters, MAX_METERS_PER_HOST};
use opticon::wire::{peek, Datagram, OpenedAuth, SenderSession, DEFAULT_MAX_SKEW};

const NOW: i64 = 1_700_000_000;

fn seed() -> u64 {
    std::env::var("OPTICON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b71_c0de)
}

fn rounds() -> usize {
    std::env::var("OPTICON_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000)
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"=",
    b"#",
    b"\n",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"-",
    b"e",
    b".",
    b"0",
    b"9",
    b"1e999",
    b"99999999999999999999",
    b"true",
    b"null",
    b"df/",
    b"/",
    b" ",
    b"\xc3\xa9",
    b"\xff",
];

/// Mutate `input` a few times: bit flips, byte noise, deletions,
/// duplications, truncation and token splices.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let n = 1 + rng.below(8);
                let noise = rng.bytes(n);
                v.splice(at..at, noise);
            }
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(32)).min(v.len());
                let copy = v[start..end].to_vec();
                v.splice(at..at, copy);
            }
            4 => v.truncate(at),
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
        }
    }
    v
}

/// Either a mutation of one of `seeds` or pure noise.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(8) == 0 {
        let n = rng.below(512);
        rng.bytes(n)
    } else {
        let s = &seeds[rng.below(seeds.len())];
        mutate(rng, s)
    }
}

fn assert_within_limits(host: &HostMeters) {
    assert!(host.len() <= MAX_METERS_PER_HOST);
    for (name, meter) in host.iter() {
        opticon::model::name::validate(name.as_str()).unwrap();
        meter.value.check_limits().unwrap();
    }
}

fn sample_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![encode_sample(NOW, &common::representative_host())];
    let mut big = common::representative_host();
    big.set(
        opticon::model::MeterName::new("x/parts").unwrap(),
        opticon::model::MeterValue::Array(opticon::model::Array::Int((0..900).collect())),
        NOW,
    )
    .unwrap();
    seeds.extend(opticon::wire::split_sample(NOW, &big, 512).unwrap());
    seeds
}

#[test]
fn binary_decoder_survives_hostile_payloads() {
    let mut rng = Rng::new(seed());
    let seeds = sample_seeds();
    let mut accepted = 0;
    for _ in 0..rounds() {
        let data = input(&mut rng, &seeds);
        let mut host = common::representative_host();
        let valid = opticon::model::binary::validate_payload(&data).is_ok();
        let applied = apply_payload(&mut host, &data);
        assert_eq!(
            valid,
            applied.is_ok(),
            "validation and merge disagree on {data:?}"
        );
        accepted += usize::from(valid);
        assert_within_limits(&host);
    }
    assert!(accepted > 0, "mutations should sometimes stay valid");
}

#[test]
fn datagram_opener_rejects_every_mutation() {
    let mut rng = Rng::new(seed() ^ 1);
    let tenant = random_uuid().unwrap();
    let tenant_key = SealKey::new(&random_key().unwrap());
    let mut sender = SenderSession::new().unwrap();
    let auth = sender
        .auth_datagram(&tenant_key, tenant, random_uuid().unwrap(), NOW)
        .unwrap();
    let Ok(Datagram::Auth(h)) = peek(&auth) else {
        panic!("auth datagram does not parse")
    };
    let session = OpenedAuth::open_new(&h, &tenant_key, NOW, DEFAULT_MAX_SKEW).unwrap();
    let mut seeds = vec![sender
        .auth_datagram(&tenant_key, tenant, random_uuid().unwrap(), NOW)
        .unwrap()];
    for p in sample_seeds() {
        seeds.push(sender.meter_datagram(&p));
    }
    let mut plain = Vec::new();
    for _ in 0..rounds() {
        let data = input(&mut rng, &seeds);
        let mut window = session.window.clone();
        let result = match peek(&data) {
            Err(e) => Err(e),
            Ok(Datagram::Auth(a)) => a
                .open(&tenant_key, Some(&mut window), NOW, DEFAULT_MAX_SKEW)
                .map(|_| ()),
            Ok(Datagram::Meter(m)) => m.open(&session.key, &mut window, &mut plain).map(|_| ()),
        };
        if seeds.contains(&data) {
            continue;
        }
        assert!(result.is_err(), "a mutated datagram was accepted: {data:?}");
        assert_eq!(
            window, session.window,
            "a rejected datagram moved the window"
        );
    }
}

#[test]
fn json_decoder_survives_hostile_text() {
    let mut rng = Rng::new(seed() ^ 2);
    let host = common::representative_host();
    let seeds: Vec<Vec<u8>> = vec![
        common::HOST_JSON.as_bytes().to_vec(),
        encode_host(&host, false).into_bytes(),
        br#"{"t":[{"a":1,"b":"x"},{"a":2.5}],"k":{"x":[1,2]},"n":null,"e":[]}"#.to_vec(),
    ];
    let mut accepted = 0;
    for _ in 0..rounds() {
        let data = input(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&data);
        if let Ok(meters) = meters_from_json(&text) {
            accepted += 1;
            assert!(meters.len() <= MAX_METERS_PER_HOST);
            for (name, value) in &meters {
                opticon::model::name::validate(name.as_str()).unwrap();
                value.check_limits().unwrap();
            }
        }
    }
    assert!(accepted > 0);
}

#[test]
fn config_parser_survives_and_round_trips() {
    let mut rng = Rng::new(seed() ^ 3);
    let seeds: Vec<Vec<u8>> = vec![
        b"network { port 1047 address 0.0.0.0 }\ndatabase { path: /var/opticon/db } # c\n".to_vec(),
        br#"{"a": -5, "b": [1.5e3, true, null, "x\u00e9\ud83d\ude00"], "c": {"d": {}}}"#.to_vec(),
        b"probes { net { type built-in interval 60 options { skip [lo docker*] } } }".to_vec(),
    ];
    let mut accepted = 0;
    for _ in 0..rounds() {
        let data = input(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&data);
        // The strict loader's outlined parse agrees with the plain one,
        // and its schema check never panics on what it gets.
        let outlined = conf::parse_outlined(&text);
        assert_eq!(
            outlined.as_ref().map(|o| &o.0).ok(),
            conf::parse(&text).as_ref().ok()
        );
        if let Ok((_, keys)) = &outlined {
            let _ = conf::schema::check(&opticon::collector::config::SCHEMA, keys);
            let _ = conf::schema::check(&opticon::agent::config::SCHEMA, keys);
        }
        if let Ok(dict) = conf::parse(&text) {
            accepted += 1;
            let node = Node::Dict(dict);
            let json = node.to_json(rng.below(2) == 0);
            let again = conf::parse(&json)
                .unwrap_or_else(|e| panic!("own output does not parse: {e}\n{json}"));
            assert_eq!(Node::Dict(again), node, "round trip of {text:?}");
        }
    }
    assert!(accepted > 0);
}

/// A day file of `n` samples of the representative host with values moving.
fn day_file(n: usize) -> Vec<u8> {
    let mut samples = Vec::new();
    let mut host = common::representative_host();
    for i in 0..n {
        let t = NOW + i as i64 * 60;
        host.set(
            opticon::model::MeterName::new("uptime").unwrap(),
            opticon::model::MeterValue::Scalar(opticon::model::Scalar::Int(1000 + i as i64 * 60)),
            t,
        )
        .unwrap();
        samples.push((t, host.clone()));
    }
    opticon::db::host::encode_day(opticon::db::time::Date::of(NOW), &samples)
}

#[test]
fn day_file_reader_survives_damage() {
    use opticon::db::format::{check_header, scan, KIND_SAMPLES};
    use opticon::db::host::Day;
    let mut rng = Rng::new(seed() ^ 4);
    let seeds = vec![day_file(5), day_file(70)];
    let mut chains = 0;
    for _ in 0..rounds() / 3 {
        let data = input(&mut rng, &seeds);
        if check_header(&data, KIND_SAMPLES).is_err() {
            continue;
        }
        let day = Day {
            path: "fuzz.osd".into(),
            scan: scan(&data),
            buf: data,
        };
        let mut n = 0;
        day.replay(|_, m| {
            assert_within_limits(m);
            n += 1;
            true
        });
        assert!(n <= day.scan.frames.len());
        for i in 0..day.scan.frames.len().min(3) {
            if let Some((_, m)) = day.sample(i) {
                assert_within_limits(&m);
            }
        }
        // The tail chain, when there is one, is a run of valid frames
        // ending the file's valid part and starting with a full frame.
        if let Some(chain) = opticon::db::format::tail_chain(&day.buf, 60) {
            chains += 1;
            let first = chain.first().expect("a chain has frames");
            assert_eq!(first.kind, opticon::db::format::FRAME_KEY);
            assert!(chain.len() <= 61);
            for f in &chain {
                assert!(f.body.0 <= f.body.1 && f.body.1 <= day.buf.len());
            }
            assert!(chain.windows(2).all(|w| w[0].offset < w[1].offset));
        }
    }
    assert!(chains > 0, "no damaged file kept a tail chain");
}

#[test]
fn delta_decoder_survives_hostile_bodies() {
    let mut rng = Rng::new(seed() ^ 5);
    let a = common::representative_host();
    let mut b = a.clone();
    b.set(
        opticon::model::MeterName::new("uptime").unwrap(),
        opticon::model::MeterValue::Scalar(opticon::model::Scalar::Int(99)),
        NOW,
    )
    .unwrap();
    b.set(
        opticon::model::MeterName::new("loadavg").unwrap(),
        opticon::model::MeterValue::Array(opticon::model::Array::Frac(vec![9.5, 0.25, 0.125])),
        NOW,
    )
    .unwrap();
    let mut body = Vec::new();
    assert!(opticon::db::delta::encode(&a, &b, &mut body));
    // The unmutated body rebuilds the target exactly.
    let mut state = a.clone();
    opticon::db::delta::apply(&mut state, &body, NOW).unwrap();
    assert_eq!(
        encode_host(&state, false),
        encode_host(&b, false),
        "the delta does not rebuild its target"
    );
    // A reordered process table with a renamed row: changes by
    // reference (kind 4), edits of strings included.
    let mut c = a.clone();
    let strs = |v: &[&str]| {
        opticon::model::MeterValue::Array(opticon::model::Array::Str(
            v.iter().map(|s| s.to_string()).collect(),
        ))
    };
    let ints =
        |v: &[i64]| opticon::model::MeterValue::Array(opticon::model::Array::Int(v.to_vec()));
    for (name, value) in [
        ("top/name", strs(&["sshd", "nginx-worker"])),
        ("top/user", strs(&["root", "www-data"])),
        ("top/pid", ints(&[99, 1234])),
    ] {
        c.set(opticon::model::MeterName::new(name).unwrap(), value, NOW)
            .unwrap();
    }
    let mut refs = Vec::new();
    assert!(opticon::db::delta::encode(&a, &c, &mut refs));
    let mut state = a.clone();
    opticon::db::delta::apply(&mut state, &refs, NOW).unwrap();
    assert_eq!(encode_host(&state, false), encode_host(&c, false));
    let seeds = vec![body, refs];
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..rounds() / 3 {
        let data = input(&mut rng, &seeds);
        let mut state = a.clone();
        if opticon::db::delta::apply(&mut state, &data, NOW).is_ok() {
            assert_within_limits(&state);
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // Both paths were taken: mutations that still decode, and refusals.
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn http_parser_survives_hostile_requests() {
    use opticon::api::http::{parse, Parse, MAX_BODY, MAX_HEAD, MAX_HEADERS};
    let mut rng = Rng::new(seed() ^ 7);
    let seeds: Vec<Vec<u8>> = vec![
        b"GET /0296d893-8187-4f44-a31b-bf3b4c19fc10/host/overview?meter=a%2Fb HTTP/1.1\r\nHost: x\r\nX-Opticon-Token: t\r\n\r\n".to_vec(),
        b"POST /login HTTP/1.0\r\nContent-Length: 41\r\nConnection: keep-alive\r\n\r\n{\"username\": \"ann\", \"password\": \"pw-ann\"}".to_vec(),
        b"PUT /user/%41%zz HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        // Chunked, as libcurl uploads: extensions, several chunks, trailers.
        b"POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n9;ext=1\r\n{\"usernam\r\n20\r\ne\": \"ann\", \"password\": \"pw-ann\"}\r\n0\r\nX-Sum: 1\r\n\r\n".to_vec(),
        b"PUT /0296d893-8187-4f44-a31b-bf3b4c19fc10/meta HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n".to_vec(),
    ];
    let (mut complete, mut refused, mut chunked) = (0, 0, 0);
    for _ in 0..rounds() {
        let data = input(&mut rng, &seeds);
        match parse(&data) {
            Ok((req, used)) => {
                complete += 1;
                assert!(used <= data.len());
                assert!(req.body.len() <= MAX_BODY && req.headers.len() <= MAX_HEADERS);
                if req.header("transfer-encoding").is_some() {
                    chunked += 1;
                    assert!(req.header("content-length").is_none(), "smuggling accepted");
                } else {
                    assert!(used - req.body.len() <= MAX_HEAD + 4);
                }
                let _ = req.param("meter");
            }
            Err(Parse::Bad(status, _)) => {
                refused += 1;
                assert!((400..=505).contains(&status));
            }
            Err(Parse::Incomplete) => assert!(data.len() <= 2 * MAX_HEAD + 4 + 2 * MAX_BODY),
        }
    }
    assert!(
        complete > 0 && refused > 0 && chunked > 0,
        "{complete} {refused} {chunked}"
    );
}
