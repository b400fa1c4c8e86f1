//! Command-line conventions every Opticon program shares: `-h/--help`,
//! `-v/--version`, and usage errors as one line plus a hint, exit 2.

use getopts::{Matches, Options};

/// Exit status for a command line that is not understood.
pub const EXIT_USAGE: i32 = 2;

/// Add `-h/--help` and `-v/--version` to a program's options.
pub fn standard(opts: &mut Options) {
    opts.optflag("h", "help", "print this help");
    opts.optflag("v", "version", "print the version");
}

/// Parse `args`; `Err(status)` when the program should exit right away
/// (help or version printed, or a usage error reported).
pub fn parse(
    program: &str,
    opts: &Options,
    args: &[String],
    synopsis: &str,
    more_help: &str,
) -> Result<Matches, i32> {
    let m = match opts.parse(args) {
        Ok(m) => m,
        Err(e) => return Err(usage_error(program, &e.to_string())),
    };
    if m.opt_present("help") {
        print!("{}", opts.usage(&format!("Usage: {program} {synopsis}")));
        if !more_help.is_empty() {
            println!("\n{more_help}");
        }
        return Err(0);
    }
    if m.opt_present("version") {
        println!("{program} {}", env!("CARGO_PKG_VERSION"));
        return Err(0);
    }
    Ok(m)
}

/// Report a usage error the way every program does; returns the status.
pub fn usage_error(program: &str, msg: &str) -> i32 {
    eprintln!("{program}: {msg}\nTry '{program} --help'.");
    EXIT_USAGE
}

/// Add the options every daemon takes: `-f`, `-p`, `-l`, `-L` and `-c`
/// (with `/var/run/<program>.pid` and `/etc/opticon/<program>.conf` as the
/// defaults shown).
pub fn daemon_options(opts: &mut Options, program: &str) {
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
    opts.optopt(
        "c",
        "config-path",
        &format!("config file (default /etc/opticon/{program}.conf)"),
        "FILE",
    );
}

/// Refuse arguments after the options (daemons take none).
pub fn no_arguments(program: &str, m: &Matches) -> Result<(), i32> {
    match m.free.first() {
        Some(extra) => Err(usage_error(
            program,
            &format!("unexpected argument {extra:?}"),
        )),
        None => Ok(()),
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

/// A daemon's configuration (`-c`, else `/etc/opticon/<program>.conf`)
/// read with `parse`, and the global meter definitions (`-m`, else
/// `/etc/opticon/opticon-meter.conf`, which may be absent).
pub fn daemon_config<T>(
    program: &str,
    m: &Matches,
    parse: impl Fn(&crate::conf::Dict) -> Result<T, String>,
) -> Result<(T, Vec<crate::db::meters::MeterDef>), String> {
    let (path, _) = config_path(program, m);
    let doc = crate::conf::load_file(&path).map_err(|e| e.to_string())?;
    let cfg = parse(&doc).map_err(|e| format!("{}: {e}", path.display()))?;
    let meter_path = m.opt_str("meter-config-path");
    let defs = crate::db::meters::global_definitions(
        std::path::Path::new(
            meter_path
                .as_deref()
                .unwrap_or("/etc/opticon/opticon-meter.conf"),
        ),
        meter_path.is_some(),
    )?;
    Ok((cfg, defs))
}
