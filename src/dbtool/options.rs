//! Every option of `opticon-db`, defined once.

use getopts::Options;

/// The tool's options.
pub fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "p",
        "path",
        "database root (default /var/opticon/db)",
        "DIR",
    );
    o.optflag(
        "",
        "init",
        "create the database at --path when there is none",
    );
    o.optopt("t", "tenant", "tenant UUID", "UUID");
    o.optopt("H", "host", "host UUID, or hostname", "HOST");
    o.optopt("n", "name", "tenant name", "NAME");
    o.optopt("k", "key", "tenant key, base64 of 32 bytes", "BASE64");
    crate::svc::cli::definition_options(&mut o);
    o.optopt("T", "time", "time spec (default now)", "SPEC");
    o.optopt("", "from", "series start (default -1d)", "SPEC");
    o.optopt("", "to", "series end (default now)", "SPEC");
    o.optopt("", "points", "downsample a series to N points", "N");
    o.optopt("", "older-than", "purge day files older than AGE", "AGE");
    o.optopt("", "stale", "purge hosts silent for longer than AGE", "AGE");
    o.optopt(
        "",
        "sync-every",
        "host-import: fsync after N samples (default 1000)",
        "N",
    );
    o.optflag(
        "",
        "progress",
        "host-import: print each durable sample time",
    );
    o.optflag("", "repair", "fsck: repair what it finds");
    o.optflag("j", "json", "print JSON");
    crate::svc::cli::standard(&mut o);
    o
}
