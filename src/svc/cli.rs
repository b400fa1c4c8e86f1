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

/// The options that define meters and watchers, shared by `opticon` and
/// `opticon-db` (both send or store the same definitions).
pub fn definition_options(o: &mut Options) {
    o.optopt("m", "meter", "meter name", "METER");
    o.optopt(
        "Y",
        "type",
        "meter type: integer, frac, string, table",
        "TYPE",
    );
    o.optopt("D", "description", "meter description", "TEXT");
    o.optopt("U", "unit", "meter unit", "UNIT");
    o.optopt(
        "L",
        "level",
        "watcher level: warning, alert (default), critical",
        "LEVEL",
    );
    o.optopt(
        "M",
        "match",
        "watcher comparison: gt (default), lt, eq, count",
        "CMP",
    );
    o.optopt("V", "value", "watcher value", "VALUE");
    o.optopt("W", "weight", "watcher weight (default 1.0)", "WEIGHT");
}
