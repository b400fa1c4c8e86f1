//! Runs the configured probes on their intervals and assembles lanes.
//!
//! Probes with an interval up to the fast interval form the fast lane,
//! the rest the slow lane (as the original). A lane carries the results
//! of its probes that ran since the lane was last sent.

use super::builtin::{Builtin, Context, Readings};
use super::config::{AgentConfig, ProbeKind, ProbeSpec};
use super::exec::{self, Verdict};
use crate::model::{Array, HostMeters, MeterName, MeterValue};
use crate::svc::pool::Pool;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// What a command probe run on the pool sends back.
enum Outcome {
    Readings(Readings),
    Verdict(Verdict),
    Failed(String, Option<Verdict>),
}

/// One probe and what it last produced.
struct Probe {
    spec: ProbeSpec,
    builtin: Option<Builtin>,
    next: Instant,
    results: Readings,
    verdict: Option<Verdict>,
    fresh: bool,
    running: bool,
}

/// All probes of the agent.
pub struct Sampler {
    probes: Vec<Probe>,
    ctx: Context,
    fast_interval: u64,
    /// Runs command probes off the main loop, so a slow one delays nothing.
    pool: Option<Pool>,
    done_tx: Sender<(usize, Outcome)>,
    done_rx: Receiver<(usize, Outcome)>,
}

/// Lines for the log: what failed or was disabled.
pub type Log = Vec<String>;

impl Sampler {
    /// Set up the probes, running each `check` command once; probes whose
    /// check fails are left out (and logged).
    pub fn new(cfg: &AgentConfig, ctx: Context, log: &mut Log) -> Sampler {
        let now = Instant::now();
        let mut probes = Vec::new();
        for spec in &cfg.probes {
            if let Some(check) = &spec.check {
                match exec::run_command(check, &spec.options, spec.timeout) {
                    Ok(done) if done.code == 0 => {}
                    Ok(done) => {
                        log.push(format!(
                            "probe {}: check {}, probe disabled",
                            spec.id,
                            crate::svc::exec::describe_exit(check, done.code)
                        ));
                        continue;
                    }
                    Err(e) => {
                        log.push(format!(
                            "probe {}: check failed ({e}), probe disabled",
                            spec.id
                        ));
                        continue;
                    }
                }
            }
            let builtin = match &spec.kind {
                ProbeKind::Builtin(kind) => {
                    let mut b = Builtin::new(*kind);
                    if !spec.matches.is_empty() {
                        b.matches = spec.matches.clone();
                    }
                    if !spec.skip.is_empty() {
                        b.skip = spec.skip.clone();
                    }
                    Some(b)
                }
                _ => None,
            };
            probes.push(Probe {
                spec: spec.clone(),
                builtin,
                next: now,
                results: Vec::new(),
                verdict: None,
                fresh: false,
                running: false,
            });
        }
        let (done_tx, done_rx) = mpsc::channel();
        Sampler {
            probes,
            ctx,
            fast_interval: cfg.fast_interval,
            pool: None,
            done_tx,
            done_rx,
        }
    }

    /// Run command probes on `threads` worker threads from now on.
    pub fn use_pool(&mut self, threads: usize) -> std::io::Result<()> {
        self.pool = Some(Pool::new("probe", threads)?);
        Ok(())
    }

    /// Take in what finished on the pool.
    fn collect(&mut self, log: &mut Log) {
        while let Ok((i, outcome)) = self.done_rx.try_recv() {
            let Some(p) = self.probes.get_mut(i) else {
                continue;
            };
            p.running = false;
            match outcome {
                Outcome::Readings(r) => {
                    p.results = r;
                    p.fresh = true;
                }
                Outcome::Verdict(v) => {
                    p.verdict = Some(v);
                    p.fresh = true;
                }
                Outcome::Failed(why, verdict) => {
                    log.push(format!("probe {}: {why}", p.spec.id));
                    if verdict.is_some() {
                        p.verdict = verdict;
                        p.fresh = true;
                    }
                }
            }
        }
    }

    /// Start a command probe on the pool; false when there is no pool.
    fn submit(&self, i: usize) -> bool {
        let Some(pool) = &self.pool else { return false };
        let spec = self.probes[i].spec.clone();
        let tx = self.done_tx.clone();
        pool.submit(move || {
            let outcome = match &spec.kind {
                ProbeKind::Exec(call) => {
                    let mut out = Vec::new();
                    match exec::run_exec(call, &spec.options, spec.timeout, &mut out) {
                        Ok(()) => Outcome::Readings(out),
                        Err(e) => Outcome::Failed(e.to_string(), None),
                    }
                }
                ProbeKind::Nagios(call) => {
                    match exec::run_nagios(call, &spec.options, spec.timeout) {
                        Ok((v, _)) => Outcome::Verdict(v),
                        Err(e) => Outcome::Failed(e.to_string(), Some(Verdict::Alert)),
                    }
                }
                ProbeKind::Builtin(_) => return,
            };
            let _ = tx.send((i, outcome));
        })
    }

    /// Run probe `i` now: built-ins inline, commands on the pool if any.
    fn start(&mut self, i: usize, log: &mut Log) {
        if self.probes[i].running {
            return;
        }
        let is_command = !matches!(self.probes[i].spec.kind, ProbeKind::Builtin(_));
        if is_command && self.submit(i) {
            self.probes[i].running = true;
            return;
        }
        Self::run_one(&mut self.probes[i], &self.ctx, log);
    }

    /// Ids of the active probes.
    pub fn probe_ids(&self) -> Vec<&str> {
        self.probes.iter().map(|p| p.spec.id.as_str()).collect()
    }

    fn run_one(p: &mut Probe, ctx: &Context, log: &mut Log) {
        let mut out = Vec::new();
        match (&p.spec.kind, &mut p.builtin) {
            (ProbeKind::Builtin(_), Some(b)) => b.run(ctx, &mut out),
            (ProbeKind::Exec(call), _) => {
                if let Err(e) = exec::run_exec(call, &p.spec.options, p.spec.timeout, &mut out) {
                    log.push(format!("probe {}: {e}", p.spec.id));
                    return;
                }
            }
            (ProbeKind::Nagios(call), _) => {
                match exec::run_nagios(call, &p.spec.options, p.spec.timeout) {
                    Ok((verdict, _)) => p.verdict = Some(verdict),
                    Err(e) => {
                        log.push(format!("probe {}: {e}", p.spec.id));
                        p.verdict = Some(Verdict::Alert);
                    }
                }
            }
            _ => return,
        }
        p.results = out;
        p.fresh = true;
    }

    /// Run every probe whose time has come.
    pub fn run_due(&mut self, now: Instant, log: &mut Log) {
        self.collect(log);
        for i in 0..self.probes.len() {
            if self.probes[i].next <= now {
                self.start(i, log);
                self.probes[i].next = now + Duration::from_secs(self.probes[i].spec.interval);
            }
        }
    }

    /// Run every probe now, regardless of schedule.
    pub fn run_all(&mut self, log: &mut Log) {
        self.collect(log);
        for i in 0..self.probes.len() {
            self.start(i, log);
        }
    }

    /// When the next probe is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.probes.iter().map(|p| p.next).min()
    }

    /// The sample of one lane (or of all probes with `lane: None`): the
    /// fresh results of its probes, marked as sent.
    pub fn take(&mut self, fast: Option<bool>, time: i64) -> HostMeters {
        let mut host = HostMeters::new();
        let (mut warn, mut alert, mut any_nagios) = (Vec::new(), Vec::new(), false);
        for p in &mut self.probes {
            let in_lane = fast.is_none_or(|f| f == (p.spec.interval <= self.fast_interval));
            if !in_lane || !p.fresh {
                continue;
            }
            p.fresh = false;
            for (name, value) in &p.results {
                if let Ok(n) = MeterName::new(name) {
                    let _ = host.set(n, value.clone(), time);
                }
            }
            if let Some(v) = p.verdict {
                any_nagios = true;
                match v {
                    Verdict::Ok => {}
                    Verdict::Warning => warn.push(p.spec.id.clone()),
                    Verdict::Alert => alert.push(p.spec.id.clone()),
                }
            }
        }
        if any_nagios {
            for (name, ids) in [("chkwarn", warn), ("chkalert", alert)] {
                if let Ok(n) = MeterName::new(name) {
                    let _ = host.set(n, MeterValue::Array(Array::Str(ids)), time);
                }
            }
        }
        host
    }
}
