//! Agent benchmark, in-process part: CPU time of one full round of the
//! built-in probes, as `opticon-agent` runs them. Run through
//! `scripts/bench-agent`, which also measures memory, bytes on the wire
//! and the peers.

use opticon::agent::builtin::Context;
use opticon::agent::config::AgentConfig;
use opticon::agent::sampler::Sampler;
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let cfg = AgentConfig::for_probing(&opticon::conf::Dict::new()).expect("default probes");
    let mut log = Vec::new();
    let mut sampler = Sampler::new(&cfg, Context::system(), &mut log);
    sampler.run_all(&mut log);
    let processes = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0);
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut meters = 0;
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(40));
        let (c0, w0) = (cpu_time(), Instant::now());
        sampler.run_all(&mut log);
        cpu.push(cpu_time() - c0);
        wall.push(w0.elapsed());
        meters = sampler.take(None, 0).len();
    }
    cpu.sort();
    wall.sort();
    println!(
        "probe round: {} built-in probes, {meters} meters, {processes} processes on the machine",
        sampler.probe_ids().len()
    );
    println!(
        "CPU per full probe round: median {:.2} ms (p90 {:.2} ms), wall {:.2} ms  (goal < 5 ms)",
        cpu[cpu.len() / 2].as_secs_f64() * 1e3,
        cpu[cpu.len() * 9 / 10].as_secs_f64() * 1e3,
        wall[wall.len() / 2].as_secs_f64() * 1e3
    );
}
