//! `opticon-agent`: measures a host and pushes its samples to collectors.
//! See `man 8 opticon-agent`.

pub mod builtin;
pub mod config;
pub mod exec;
pub mod parse;
pub mod sampler;

use crate::conf::{self, Dict};
use crate::model::json::{encode_host, value_node};
use builtin::Context;
use config::AgentConfig;
use getopts::Options;
use sampler::Sampler;
use std::path::PathBuf;
use std::time::Duration;

fn options() -> Options {
    let mut o = Options::new();
    o.optflag("f", "foreground", "stay in the foreground");
    o.optopt(
        "p",
        "pidfile",
        "pid file (default /var/run/opticon-agent.pid)",
        "FILE",
    );
    o.optopt("l", "logfile", "log file, or @syslog (default)", "FILE");
    o.optopt(
        "L",
        "loglevel",
        "CRIT, ERR, WARNING, INFO (default) or DEBUG",
        "LEVEL",
    );
    o.optopt(
        "c",
        "config-path",
        "config file (default /etc/opticon/opticon-agent.conf)",
        "FILE",
    );
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
    o.optflag("h", "help", "print this help");
    o.optflag("v", "version", "print the version");
    o
}

/// Run `opticon-agent` with its arguments (without the program name);
/// returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let m = match opts.parse(args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("opticon-agent: {e}\nTry 'opticon-agent --help'.");
            return 2;
        }
    };
    if m.opt_present("help") {
        print!("{}", opts.usage("Usage: opticon-agent [options]"));
        return 0;
    }
    if m.opt_present("version") {
        println!("opticon-agent {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if !m.free.is_empty() {
        eprintln!(
            "opticon-agent: unexpected argument {:?}\nTry 'opticon-agent --help'.",
            m.free[0]
        );
        return 2;
    }
    let explicit = m.opt_str("config-path").map(PathBuf::from);
    let path = explicit.clone().unwrap_or_else(config::default_path);
    let mut ctx = Context::system();
    if let Some(root) = m.opt_str("root") {
        ctx.root = PathBuf::from(root);
    }
    if m.opt_present("once") {
        // Without a config file, --once runs the default probes.
        let doc = match conf::load_file(&path) {
            Ok(d) => d,
            Err(conf::ConfigError::Io(_, e))
                if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound =>
            {
                Dict::new()
            }
            Err(e) => {
                eprintln!("opticon-agent: {e}");
                return 1;
            }
        };
        return match AgentConfig::for_probing(&doc) {
            Ok(cfg) => once(&cfg, ctx, m.opt_present("json")),
            Err(e) => {
                eprintln!("opticon-agent: {e}");
                1
            }
        };
    }
    eprintln!("opticon-agent: sending to collectors is not built yet; use --once");
    1
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
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
