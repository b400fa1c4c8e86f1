//! `opticon-agent` as a daemon: options, `--once`, and the main loop
//! (probes when due, fast and slow samples, links ticking, SIGHUP reloads).

use super::builtin::Context;
use super::config::AgentConfig;
use super::running::start;
use super::sampler::Sampler;
use super::send::{send_offset, Link};
use crate::model::json::{encode_host, value_node};
use crate::model::unix_now;
use crate::svc::{self, daemon::DaemonError};
use getopts::Options;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn options(o: &mut Options) {
    o.optopt(
        "D",
        "dump-packets",
        "append each sample sent, as JSON, to FILE",
        "FILE",
    );
    o.optflag(
        "",
        "once",
        "run every probe once, print the sample and exit",
    );
    o.optflag("j", "json", "with --once: print the sample as JSON");
    o.optopt(
        "",
        "root",
        "read /proc, /sys and /etc below DIR (for testing)",
        "DIR",
    );
}

/// Run `opticon-agent` with its arguments (without the program name);
/// returns the exit status.
pub fn run(args: &[String]) -> i32 {
    svc::daemon::main("opticon-agent", args, options, body)
}

fn body(m: &getopts::Matches) -> Result<i32, DaemonError> {
    let (path, explicit) = svc::daemon::config_path("opticon-agent", m);
    let mut ctx = Context::system();
    if let Some(root) = m.opt_str("root") {
        ctx.root = PathBuf::from(root);
    }
    if m.opt_present("check") {
        return check(&path, &ctx);
    }
    if m.opt_present("once") {
        // Without a config file, --once runs the default probes.
        let cfg = AgentConfig::load_for_probing(&path, explicit)
            .map_err(|e| DaemonError::Other(e.to_string()))?;
        if let Some(w) = &cfg.warning {
            eprintln!("opticon-agent: {w}");
        }
        return Ok(once(&cfg, ctx, m.opt_present("json")));
    }
    daemon(m, &path, ctx).map(|()| 0)
}

/// `-t`: the config file as `start` would read it, and the host id; no
/// socket, no probe run, no metadata request.
fn check(path: &std::path::Path, ctx: &Context) -> Result<i32, DaemonError> {
    let cfg = AgentConfig::load(path).map_err(|e| DaemonError::Other(e.to_string()))?;
    let configured = cfg.collectors.iter().find_map(|c| c.host);
    if cfg.cloud_init.is_none() && super::config::host_id(&ctx.root, configured).is_none() {
        return Err(super::running::StartupError::NoHostId.into());
    }
    let warnings: Vec<String> = cfg.warning.into_iter().collect();
    Ok(svc::daemon::report_check(
        "opticon-agent",
        &[path.to_path_buf()],
        &warnings,
    ))
}

/// Worker threads for command probes.
fn daemon(m: &getopts::Matches, path: &std::path::Path, ctx: Context) -> Result<(), DaemonError> {
    svc::daemon::start_logging("opticon-agent", m)?;
    // Read everything that may need root (DMI host id, config) first.
    let mut run = start(path, &ctx)?;
    if let Some(w) = &run.cfg.warning {
        svc::log::warn(w);
    }
    let pidfile = svc::daemon::become_service("opticon-agent", m)?;
    let dump_to = m.opt_str("dump-packets").map(PathBuf::from);
    svc::log::info(&format!(
        "opticon-agent {} started for host {} with {} probes, sending to {}",
        env!("CARGO_PKG_VERSION"),
        run.host,
        run.sampler.probe_ids().len(),
        run.links
            .iter()
            .map(Link::name)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut log = Vec::new();
    run.sampler.run_all(&mut log);
    let begin = Instant::now();
    let mut next_slow = begin;
    let mut next_fast = begin + send_offset(run.host, run.cfg.fast_interval);
    while !svc::signals::terminating() {
        if svc::signals::take_reload() {
            match start(path, &ctx) {
                Ok(fresh) => {
                    run = fresh;
                    if let Some(w) = &run.cfg.warning {
                        svc::log::warn(w);
                    }
                    run.sampler.run_all(&mut log);
                    next_slow = Instant::now();
                    svc::log::info(&format!("{}: configuration reloaded", path.display()));
                }
                Err(e) => svc::log::err(&format!(
                    "reload failed, keeping the running configuration: {e}"
                )),
            }
        }
        let now = Instant::now();
        run.sampler.run_due(now, &mut log);
        for line in log.drain(..) {
            svc::log::warn(&line);
        }
        if now >= next_slow {
            let sample = run.sampler.take(Some(false), unix_now());
            run.round("Slow", &sample, &dump_to);
            next_slow += Duration::from_secs(run.cfg.slow_interval);
        }
        if now >= next_fast {
            let sample = run.sampler.take(Some(true), unix_now());
            run.round("Fast", &sample, &dump_to);
            next_fast += Duration::from_secs(run.cfg.fast_interval);
        }
        for link in &mut run.links {
            if let Err(e) = link.tick(now) {
                svc::log::warn(&format!("{}: {e}", link.name()));
            }
        }
        let mut wake = next_fast
            .min(next_slow)
            .min(now + Duration::from_millis(250));
        if let Some(t) = run.sampler.next_due() {
            wake = wake.min(t);
        }
        for t in run.links.iter().filter_map(Link::next_event) {
            wake = wake.min(t);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    svc::log::info("opticon-agent exiting on signal");
    drop(pidfile);
    Ok(())
}

/// `--once`: every probe, rate probes after a one-second baseline.
fn once(cfg: &AgentConfig, ctx: Context, json: bool) -> i32 {
    let mut log = Vec::new();
    let mut sampler = Sampler::new(cfg, ctx, &mut log);
    sampler.run_all(&mut log);
    std::thread::sleep(Duration::from_secs(1));
    sampler.run_all(&mut log);
    for line in &log {
        eprintln!("opticon-agent: {line}");
    }
    let now = unix_now();
    let sample = sampler.take(None, now);
    if json {
        println!("{}", encode_host(&sample, true));
    } else {
        for (name, meter) in sample.iter() {
            println!(
                "{:<16} {}",
                name.as_str(),
                value_node(&meter.value).to_json(false)
            );
        }
    }
    0
}
