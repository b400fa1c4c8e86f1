//! The table of `opticon-db` commands: help and dispatch both read it.

use super::error::ToolError;
use super::tool::Tool;
use getopts::Matches;

/// What runs a command; `Ok` carries the exit status.
pub type Run = fn(&Tool, &Matches) -> Result<i32, ToolError>;

/// One command of `opticon-db`.
pub struct Command {
    /// The family the help lists it under.
    pub family: &'static str,
    /// The name typed on the command line.
    pub name: &'static str,
    /// Its free arguments, as the help shows them.
    pub args: &'static str,
    /// The function that runs it.
    pub run: Run,
}

macro_rules! command {
    ($family:literal, $name:literal, $args:literal, $run:path) => {
        Command {
            family: $family,
            name: $name,
            args: $args,
            run: $run,
        }
    };
}

/// Every command, by family, in the order the help lists them.
pub const COMMANDS: &[Command] = &[
    command!("Tenants", "tenant-create", "", Tool::tenant_create),
    command!("Tenants", "tenant-list", "", Tool::tenant_list),
    command!("Tenants", "tenant-show", "", Tool::tenant_show),
    command!("Tenants", "tenant-delete", "", Tool::tenant_delete),
    command!(
        "Tenants",
        "tenant-get-metadata",
        "",
        Tool::tenant_get_metadata
    ),
    command!(
        "Tenants",
        "tenant-set-metadata",
        "KEY VALUE",
        Tool::tenant_set_metadata
    ),
    command!("Tenants", "tenant-get-quota", "", Tool::tenant_get_quota),
    command!("Tenants", "tenant-set-quota", "MB", Tool::tenant_set_quota),
    command!("Tenants", "tenant-set-key", "", Tool::tenant_set_key),
    command!("Meters", "meter-create", "", Tool::meter_create),
    command!("Meters", "meter-list", "", Tool::meter_list),
    command!("Meters", "meter-delete", "", Tool::meter_delete),
    command!("Watchers", "watcher-set", "", Tool::watcher_set),
    command!("Watchers", "watcher-list", "", Tool::watcher_list),
    command!("Watchers", "watcher-delete", "", Tool::watcher_delete),
    command!("Hosts", "host-list", "", Tool::host_list),
    command!("Hosts", "host-show", "", Tool::host_show),
    command!("Hosts", "host-series", "", Tool::host_series),
    command!("Hosts", "host-delete", "", Tool::host_delete),
    command!("Hosts", "host-import", "FILE", Tool::host_import),
    command!("Hosts", "host-export", "", Tool::host_export),
    command!("Hosts", "host-log", "", Tool::host_log),
    command!("Upkeep", "purge", "", Tool::purge),
    command!("Upkeep", "enforce-quota", "", Tool::enforce_quota),
    command!("Upkeep", "fsck", "", Tool::fsck),
    command!("Upkeep", "du", "", Tool::du),
    command!("Upkeep", "migrate", "", Tool::migrate),
];

/// The command called `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The commands part of `--help`, generated from [`COMMANDS`]: each
/// family on its lines, wrapped before 80 columns.
pub fn help() -> String {
    const INDENT: usize = 12;
    let mut out = String::from("Commands:");
    let mut family = "";
    let mut column = 0;
    for c in COMMANDS {
        let word = format!("{} {}", c.name, c.args);
        let word = word.trim_end();
        if c.family != family {
            family = c.family;
            out.push_str(&format!("\n{:<INDENT$}{word}", format!("{family}:")));
            column = INDENT + word.len();
        } else if column + 1 + word.len() > 78 {
            out.push_str(&format!("\n{:INDENT$}{word}", ""));
            column = INDENT + word.len();
        } else {
            out.push(' ');
            out.push_str(word);
            column += 1 + word.len();
        }
    }
    out
}
