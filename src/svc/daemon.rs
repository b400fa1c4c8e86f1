//! The skeleton every Opticon daemon shares (`opticon-agent`,
//! `opticon-collector`, `opticon-api`): the common options, loading the
//! configuration, logging, becoming the service, and turning the last
//! error into a message and an exit status.
//!
//! A daemon's own module supplies its extra options and its body; see
//! [`main`].

use super::process::{detach, drop_to, service_user, Pidfile, StartError};
use crate::conf::schema::Schema;
use crate::conf::{FileError, ValueError};
use crate::db::meters::{MeterDef, MetersError};
use getopts::{Matches, Options};
use std::fmt;
use std::path::PathBuf;

/// Why a daemon stopped before or while serving: printed once on
/// standard error and logged, exit status 1.
#[derive(Debug)]
pub enum DaemonError {
    /// `-l` or `-L` cannot be used.
    Logging(String),
    /// The configuration file cannot be read or parsed.
    File(FileError),
    /// A value in the configuration file is unusable
    /// (`file:line:column: key: why`).
    Value(String),
    /// The global meter definitions cannot be used.
    Meters(MetersError),
    /// The pid file, detaching or dropping privileges failed.
    Start(StartError),
    /// The socket cannot be bound (address, why).
    Listen(std::net::SocketAddr, std::io::Error),
    /// Anything else the daemon's body reports, one line.
    Other(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Logging(m) | DaemonError::Other(m) | DaemonError::Value(m) => {
                f.write_str(m)
            }
            DaemonError::File(e) => e.fmt(f),
            DaemonError::Meters(e) => e.fmt(f),
            DaemonError::Start(e) => e.fmt(f),
            DaemonError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<StartError> for DaemonError {
    fn from(e: StartError) -> DaemonError {
        DaemonError::Start(e)
    }
}

impl From<FileError> for DaemonError {
    fn from(e: FileError) -> DaemonError {
        DaemonError::File(e)
    }
}

impl From<MetersError> for DaemonError {
    fn from(e: MetersError) -> DaemonError {
        DaemonError::Meters(e)
    }
}

impl From<String> for DaemonError {
    fn from(e: String) -> DaemonError {
        DaemonError::Other(e)
    }
}

/// Add the options every daemon takes: `-f`, `-p`, `-l`, `-L` and `-c`
/// (with `/var/run/<program>.pid` and `/etc/opticon/<program>.conf` as the
/// defaults shown).
fn daemon_options(opts: &mut Options, program: &str) {
    opts.optflag("f", "foreground", "stay in the foreground");
    opts.optopt(
        "p",
        "pidfile",
        &format!("pid file (default /var/run/{program}.pid)"),
        "FILE",
    );
    opts.optopt(
        "l",
        "logfile",
        "log file, @syslog (default) or - for stderr",
        "FILE",
    );
    opts.optopt(
        "L",
        "loglevel",
        "CRIT, ERR, WARNING, INFO (default) or DEBUG",
        "LEVEL",
    );
    opts.optflag(
        "t",
        "check",
        "check the configuration files, print ok or the errors, and exit",
    );
    opts.optopt(
        "c",
        "config-path",
        &format!("config file (default /etc/opticon/{program}.conf)"),
        "FILE",
    );
}

/// `-m`: the global meter definitions, for the daemons that judge or
/// serve meters (read by [`daemon_config`]).
pub fn meter_config_option(o: &mut Options) {
    o.optopt(
        "m",
        "meter-config-path",
        "meter definitions (default /etc/opticon/opticon-meter.conf)",
        "FILE",
    );
}

/// Run a daemon: its options (the common ones, then `extra`, then
/// `-h`/`-v`), no free arguments, then `body`; an error from `body` is
/// printed as `program: message`, logged, and exits 1.
pub fn main(
    program: &'static str,
    args: &[String],
    extra: impl FnOnce(&mut Options),
    body: impl FnOnce(&Matches) -> Result<i32, DaemonError>,
) -> i32 {
    let mut opts = Options::new();
    daemon_options(&mut opts, program);
    extra(&mut opts);
    super::cli::standard(&mut opts);
    let m = match super::cli::parse(program, &opts, args, "[options]", "") {
        Ok(m) => m,
        Err(status) => return status,
    };
    if let Err(status) = super::cli::no_arguments(program, &m) {
        return status;
    }
    match body(&m) {
        Ok(status) => status,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("{program}: {line}");
                if super::log::elsewhere() {
                    super::log::err(line);
                }
            }
            1
        }
    }
}

/// The config path given with `-c`, else `/etc/opticon/<program>.conf`;
/// the flag tells whether it was given.
pub fn config_path(program: &str, m: &Matches) -> (std::path::PathBuf, bool) {
    match m.opt_str("config-path") {
        Some(p) => (p.into(), true),
        None => (format!("/etc/opticon/{program}.conf").into(), false),
    }
}

/// What a daemon read from its configuration files.
#[derive(Debug)]
pub struct Configured<T> {
    /// The daemon's own settings.
    pub cfg: T,
    /// The global meter definitions.
    pub defs: Vec<MeterDef>,
    /// The files read, for `--check` to name.
    pub files: Vec<PathBuf>,
    /// Warnings to log (keys of the original Opticon that are ignored).
    pub warnings: Vec<String>,
}

/// A daemon's configuration (`-c`, else `/etc/opticon/<program>.conf`)
/// checked against `schema` and read with `parse`, and the global meter
/// definitions (`-m`, else `/etc/opticon/opticon-meter.conf`, which may
/// be absent).
pub fn daemon_config<T>(
    program: &str,
    m: &Matches,
    schema: &Schema,
    parse: impl Fn(&crate::conf::Dict) -> Result<T, ValueError>,
) -> Result<Configured<T>, DaemonError> {
    let (path, _) = config_path(program, m);
    let checked = crate::conf::schema::load_checked(&path, schema)?;
    let cfg = parse(&checked.doc).map_err(|e| DaemonError::Value(checked.locate(&e)))?;
    let meter_path = PathBuf::from(
        m.opt_str("meter-config-path")
            .unwrap_or_else(|| "/etc/opticon/opticon-meter.conf".into()),
    );
    let explicit = m.opt_present("meter-config-path");
    let defs = crate::db::meters::global_definitions(&meter_path, explicit)?;
    let mut files = vec![path];
    if explicit || meter_path.exists() {
        files.push(meter_path);
    }
    Ok(Configured {
        cfg,
        defs,
        files,
        warnings: checked.warning().into_iter().collect(),
    })
}

/// `-t`/`--check`: the warnings on standard error, then `file: ok` for
/// every file read, on standard output; exit status 0. (Errors never get
/// here: they are printed by [`main`] with exit status 1.)
pub fn report_check(program: &str, files: &[PathBuf], warnings: &[String]) -> i32 {
    for w in warnings {
        eprintln!("{program}: warning: {w}");
    }
    if let Ok(Some((uid, gid))) = service_user() {
        for f in files
            .iter()
            .filter(|f| !super::process::readable_by(f, uid, gid))
        {
            eprintln!(
                "{program}: warning: {}: the service user (uid {uid}) cannot read it, so a reload after the privilege drop fails; make it root:opticon 0640",
                f.display()
            );
        }
    }
    for f in files {
        println!("{program}: {}: ok", f.display());
    }
    0
}

/// Start logging as `-l` and `-L` say (syslog at INFO by default).
pub fn start_logging(program: &'static str, m: &Matches) -> Result<(), DaemonError> {
    let level: super::log::Level = m
        .opt_str("loglevel")
        .unwrap_or_else(|| "INFO".into())
        .parse()
        .map_err(|e: super::log::BadLevel| DaemonError::Logging(e.to_string()))?;
    let target = m.opt_str("logfile").unwrap_or_else(|| "@syslog".into());
    super::log::init(program, &target, level)
        .map_err(|e| DaemonError::Logging(format!("{target}: {e}")))
}

/// Become the service, once everything that needs root was done: write
/// the pid file (`-p`), detach unless `-f`, drop to the service user when
/// root (handing it the pid and log files); signals are routed first.
pub fn become_service(program: &str, m: &Matches) -> Result<Pidfile, DaemonError> {
    // Signals are routed before the pid file names this process: a
    // SIGHUP or SIGTERM sent as soon as the pid file appears is handled,
    // not lost (or fatal). The handlers survive the fork below.
    super::signals::install();
    let path = PathBuf::from(
        m.opt_str("pidfile")
            .unwrap_or_else(|| format!("/var/run/{program}.pid")),
    );
    let pidfile = Pidfile::create(&path)?;
    if !m.opt_present("foreground") {
        detach()?;
        pidfile.refresh()?;
    }
    if let Some((uid, gid)) = service_user()? {
        pidfile.chown(uid, gid);
        super::log::chown(uid, gid);
        drop_to(uid, gid)?;
    }
    Ok(pidfile)
}
