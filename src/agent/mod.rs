//! `opticon-agent`: measures a host and pushes its samples to collectors.
//! See `man 8 opticon-agent`.

pub mod builtin;
pub mod cloud;
pub mod config;
pub mod exec;
pub mod parse;
pub mod sampler;
pub mod send;

use crate::conf::{self, Dict};
use crate::model::json::{encode_host, value_node};
use crate::svc::{self, daemon::DaemonError};
use builtin::Context;
use config::AgentConfig;
use getopts::Options;
use sampler::Sampler;
use send::{send_offset, Link};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

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
    if m.opt_present("once") {
        // Without a config file, --once runs the default probes.
        let doc = match conf::load_file(&path) {
            Ok(d) => d,
            Err(conf::FileError::Io(_, e))
                if !explicit && e.kind() == std::io::ErrorKind::NotFound =>
            {
                Dict::new()
            }
            Err(e) => return Err(e.into()),
        };
        let cfg = AgentConfig::for_probing(&doc).map_err(|e| DaemonError::Other(e.to_string()))?;
        return Ok(once(&cfg, ctx, m.opt_present("json")));
    }
    daemon(m, &path, ctx).map(|()| 0)
}

/// Worker threads for command probes.
const PROBE_THREADS: usize = 4;

/// Everything needed to send, built from a config (again on SIGHUP).
struct Running {
    cfg: AgentConfig,
    sampler: Sampler,
    links: Vec<Link>,
    host: Uuid,
}

use crate::model::unix_now;

/// Build the running state; fails with a message a user can act on.
fn start(path: &std::path::Path, ctx: &Context) -> Result<Running, String> {
    let mut cfg = AgentConfig::load(path).map_err(|e| e.to_string())?;
    if let Some(url) = &cfg.cloud_init {
        let body = cloud::http_get(url, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        cfg.collectors = vec![cloud::collector_from_metadata(&body).map_err(|e| e.to_string())?];
    }
    let configured = cfg.collectors.iter().find_map(|c| c.host);
    let host = config::host_id(&ctx.root, configured).ok_or_else(|| {
        "no host id: /sys/class/dmi/id/product_uuid and /etc/machine-id are unreadable; set host in the collector config"
            .to_string()
    })?;
    let mut log = Vec::new();
    let mut probe_ctx = ctx.clone();
    probe_ctx.bind = cfg.collectors.iter().find_map(|c| c.bind.clone());
    let mut sampler = Sampler::new(&cfg, probe_ctx, &mut log);
    sampler
        .use_pool(PROBE_THREADS)
        .map_err(|e| format!("cannot start probe threads: {e}"))?;
    for line in log {
        svc::log::warn(&line);
    }
    let rotation = Duration::from_secs(cfg.key_rotation);
    let resend = Duration::from_secs(cfg.auth_resend);
    let links = cfg
        .collectors
        .iter()
        .map(|c| {
            Link::new(
                c.clone(),
                host,
                rotation,
                resend,
                cfg.auth_resend_chance,
                cfg.max_datagram,
            )
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Running {
        cfg,
        sampler,
        links,
        host,
    })
}

fn dump(path: &Option<PathBuf>, lane: &str, sample: &crate::model::HostMeters) {
    if let Some(p) = path {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "--- {lane} ---\n{}", encode_host(sample, true));
        }
    }
}

impl Running {
    /// Send `sample` to every collector, preceded by an auth datagram.
    fn round(&mut self, lane: &str, sample: &crate::model::HostMeters, dump_to: &Option<PathBuf>) {
        let now = unix_now();
        dump(dump_to, lane, sample);
        for link in &mut self.links {
            if let Err(e) = link.auth(now) {
                svc::log::warn(&format!("{}: {e}", link.name()));
                continue;
            }
            if sample.is_empty() {
                continue;
            }
            match link.sample(sample, now) {
                Ok(n) => svc::log::debug(&format!(
                    "{}: {lane} lane, {} meters in {n} datagrams",
                    link.name(),
                    sample.len()
                )),
                Err(e) => svc::log::warn(&format!("{}: {e}", link.name())),
            }
        }
    }
}

fn daemon(m: &getopts::Matches, path: &std::path::Path, ctx: Context) -> Result<(), DaemonError> {
    svc::daemon::start_logging("opticon-agent", m)?;
    // Read everything that may need root (DMI host id, config) first.
    let mut run = start(path, &ctx)?;
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
