//! Every option of `opticon`, defined once: `--help` prints them, and
//! each command reads the ones it needs.

use crate::svc;
use getopts::Options;

/// The client's options.
pub fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "c",
        "config-file",
        "config file (default /etc/opticon/opticon-cli.conf)",
        "FILE",
    );
    o.optopt(
        "A",
        "api-url",
        "API URL (default http://127.0.0.1:8888)",
        "URL",
    );
    o.optopt(
        "O",
        "opticon-token",
        "token (default: OPTICON_TOKEN, the config, the cache)",
        "TOKEN",
    );
    o.optopt(
        "t",
        "tenant",
        "tenant UUID (default: OPTICON_TENANT, the config)",
        "UUID",
    );
    o.optopt("H", "host", "host UUID or hostname", "HOST");
    o.optopt(
        "X",
        "keystone-url",
        "log in with Keystone here (default: endpoints/keystone)",
        "URL",
    );
    o.optopt(
        "",
        "project",
        "Keystone: the project to log in to (default: the tenant)",
        "NAME|ID",
    );
    o.optopt(
        "",
        "domain",
        "Keystone: the user's and project's domain (default Default)",
        "NAME",
    );
    o.optopt("k", "key", "tenant key, base64", "KEY");
    o.optopt("n", "name", "tenant name", "NAME");
    o.optopt("l", "username", "user name", "USER");
    o.optopt(
        "p",
        "password",
        "password (prompted for when absent)",
        "PASSWORD",
    );
    svc::cli::definition_options(&mut o);
    o.optopt(
        "T",
        "time",
        "host-show: the record at this time (see opticon-db(8))",
        "SPEC",
    );
    o.optflag("j", "json", "print the API's JSON");
    o.optflag("g", "graphs", "host-show: graphs of the last 12 hours");
    o.optflag(
        "w",
        "watch",
        "host-show, host-overview: refresh every 15 seconds",
    );
    o.optopt(
        "i",
        "interval",
        "with --watch: seconds between refreshes (default 15)",
        "SECONDS",
    );
    o.optflag("a", "admin", "user-create: an administrator");
    o.optopt(
        "",
        "timeout",
        "seconds a whole request may take (default 60)",
        "SECONDS",
    );
    svc::cli::standard(&mut o);
    o
}
