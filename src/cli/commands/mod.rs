//! The table of commands: one entry per command with its arguments, what
//! it does and the function that runs it. `--help` is generated from this
//! table and dispatch reads it, so the two cannot drift apart.

pub mod host;
pub mod meter;
pub mod session;
pub mod tenant;
pub mod user;
pub mod watcher;

use super::context::Cli;
use super::error::CommandError;
use getopts::Matches;

/// What runs a command.
pub type Run = fn(&mut Cli, &Matches) -> Result<(), CommandError>;

/// One command of `opticon`.
pub struct Command {
    /// The name typed on the command line.
    pub name: &'static str,
    /// Its arguments and options, as the help shows them.
    pub args: &'static str,
    /// What it does, in a few words.
    pub about: &'static str,
    /// The function that runs it.
    pub run: Run,
}

/// Every command, in the order the help lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "tenant-list",
        args: "",
        about: "tenants with their host counts",
        run: tenant::tenant_list,
    },
    Command {
        name: "tenant-create",
        args: "[--tenant] [--key] [--name]",
        about: "create a tenant (admin)",
        run: tenant::tenant_create,
    },
    Command {
        name: "tenant-delete",
        args: "",
        about: "delete the tenant and its data (admin)",
        run: tenant::tenant_delete,
    },
    Command {
        name: "tenant-get-metadata",
        args: "",
        about: "print the tenant's metadata",
        run: tenant::tenant_get_metadata,
    },
    Command {
        name: "tenant-set-metadata",
        args: "KEY VALUE",
        about: "set one metadata key",
        run: tenant::tenant_set_metadata,
    },
    Command {
        name: "tenant-get-quota",
        args: "",
        about: "storage quota and usage",
        run: tenant::tenant_get_quota,
    },
    Command {
        name: "tenant-set-quota",
        args: "MB",
        about: "set the storage quota (admin)",
        run: tenant::tenant_set_quota,
    },
    Command {
        name: "tenant-get-summary",
        args: "",
        about: "hosts by status, fleet-wide figures",
        run: tenant::tenant_get_summary,
    },
    Command {
        name: "user-create",
        args: "--username [--password] [--admin]",
        about: "create a user (admin)",
        run: user::user_create,
    },
    Command {
        name: "user-set-tenant",
        args: "--username",
        about: "move a user to --tenant (admin)",
        run: user::user_set_tenant,
    },
    Command {
        name: "user-set-password",
        args: "--username",
        about: "change a user's password (admin)",
        run: user::user_set_password,
    },
    Command {
        name: "user-delete",
        args: "--username",
        about: "delete a user (admin)",
        run: user::user_delete,
    },
    Command {
        name: "meter-list",
        args: "",
        about: "meter definitions in effect",
        run: meter::meter_list,
    },
    Command {
        name: "meter-create",
        args: "--meter --type [--description] [--unit]",
        about: "define a meter",
        run: meter::meter_create,
    },
    Command {
        name: "meter-delete",
        args: "--meter",
        about: "delete a meter definition",
        run: meter::meter_delete,
    },
    Command {
        name: "watcher-list",
        args: "[--host]",
        about: "watchers in effect",
        run: watcher::watcher_list,
    },
    Command {
        name: "watcher-set",
        args: "--meter --level --match --value [--weight] [--host]",
        about: "set a watcher level",
        run: watcher::watcher_set,
    },
    Command {
        name: "watcher-delete",
        args: "--meter [--host]",
        about: "delete a meter's watchers",
        run: watcher::watcher_delete,
    },
    Command {
        name: "host-list",
        args: "",
        about: "hosts with their storage use",
        run: host::host_list,
    },
    Command {
        name: "host-overview",
        args: "[--watch]",
        about: "every host at a glance",
        run: host::host_overview,
    },
    Command {
        name: "host-show",
        args: "--host [--json] [--graphs] [--time] [--watch]",
        about: "one host in depth",
        run: host::host_show,
    },
    Command {
        name: "host-delete",
        args: "--host",
        about: "delete a host and its data",
        run: host::host_delete,
    },
    Command {
        name: "session-list",
        args: "",
        about: "open agent sessions (admin)",
        run: session::session_list,
    },
    Command {
        name: "dancing-bears",
        args: "",
        about: "the original's easter egg",
        run: session::dancing_bears,
    },
];

/// The command called `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The commands part of `--help`, generated from [`COMMANDS`]: the call,
/// and what it does beside it (or below it, for a long call).
pub fn help() -> String {
    const COLUMN: usize = 34;
    let mut out = String::from("Commands:");
    for c in COMMANDS {
        let call = format!("{} {}", c.name, c.args);
        let call = call.trim_end();
        if call.len() < COLUMN {
            out.push_str(&format!("\n  {call:<COLUMN$}  {}", c.about));
        } else {
            out.push_str(&format!("\n  {call}\n  {:COLUMN$}  {}", "", c.about));
        }
    }
    out
}
