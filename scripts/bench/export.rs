//! Export encoding benchmark: fleet hosts' records through the series
//! model, the remote-write protobuf encoder and snappy, per exported
//! sample, on one core. Prints medians of repeated timed runs.
//!
//! Run with `cargo bench --bench export` (scripts/bench-export runs the
//! whole path against VictoriaMetrics).

use opticon::export::encode::{Batch, Format, HostLabels};
use opticon::export::series::{rows, Row, SeriesRules};
use opticon::export::snappy;
use opticon::fleet::FakeHost;
use opticon::model::HostMeters;
use std::hint::black_box;
use std::time::Instant;

const RUNS: usize = 7;
const HOSTS: usize = 500;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One host's rows into `batch`, as the collector adds them.
fn add_host(batch: &mut Batch, rules: &SeriesRules, tenant: &str, id: &str, m: &HostMeters) {
    let mut out = Vec::new();
    rows(m, rules, &mut out);
    let labels = HostLabels {
        tenant,
        host: id,
        hostname: "web-00001.example.net",
    };
    for r in &out {
        batch.add(&labels, r, &r.fields, 1_700_000_060_000);
    }
}

fn main() {
    let hosts: Vec<(String, HostMeters)> = (0..HOSTS)
        .map(|i| {
            let mut h = FakeHost::new(i as u64);
            h.sample(1_700_000_000);
            (
                format!("0b71c0de-0000-{:04x}-0000-{:012x}", i, i),
                h.sample(1_700_000_060),
            )
        })
        .collect();
    let rules = SeriesRules::default();
    let tenant = "0296d893-8187-4f44-a31b-bf3b4c19fc10";
    let mut samples = 0usize;
    let mut out: Vec<Row<'_>> = Vec::new();
    for (_, m) in &hosts {
        out.clear();
        rows(m, &rules, &mut out);
        samples += out.iter().map(|r| r.fields.len()).sum::<usize>();
    }
    println!("{HOSTS} fleet hosts, {} samples each", samples / HOSTS);
    // Snappy alone is timed over the same records as line protocol text.
    let mut plain = Batch::new(Format::Influx);
    for (id, m) in &hosts {
        add_host(&mut plain, &rules, tenant, id, m);
    }
    let raw = plain.finish();
    let (mut model, mut snappy_runs, mut total) = (vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let t = Instant::now();
        for (_, m) in &hosts {
            let mut out = Vec::new();
            rows(black_box(m), &rules, &mut out);
            black_box(&out);
        }
        model.push(t.elapsed().as_secs_f64() * 1e9 / samples as f64);
        let t = Instant::now();
        let mut batch = Batch::new(Format::RemoteWrite);
        let mut bodies = 0;
        for (id, m) in &hosts {
            add_host(&mut batch, &rules, tenant, id, m);
            if batch.samples() >= 2000 {
                bodies += black_box(batch.finish()).len();
            }
        }
        bodies += batch.finish().len();
        total.push(t.elapsed().as_secs_f64() * 1e9 / samples as f64);
        black_box(bodies);
        let t = Instant::now();
        let mut packed = Vec::new();
        snappy::compress(black_box(&raw), &mut packed);
        snappy_runs.push(t.elapsed().as_secs_f64() * 1e9 / raw.len() as f64);
        black_box(packed);
    }
    let (model, total, snappy_ns) = (median(model), median(total), median(snappy_runs));
    println!("series model                {model:>7.0} ns/sample");
    println!("model + protobuf + snappy   {total:>7.0} ns/sample");
    println!(
        "snappy alone                {:>7.0} MB/s ({} bytes of line protocol)",
        1e3 / snappy_ns,
        raw.len()
    );
}
