//! `opticon`: the command-line client of `opticon-api`, with the original
//! CLI's subcommands, tables and `--json` output. See `man 1 opticon`.
//!
//! * [`options`]: every option, defined once.
//! * [`commands`]: the table of commands (help and dispatch both read
//!   it), with one file per family of commands.
//! * [`context`]: what every command works with: endpoint, token, tenant.
//! * [`config`]: the config files; [`token`]: the token cache and the
//!   login prompt; [`show`]: the host and
//!   overview screens, graphs included; [`error`]: why a command failed.

pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod options;
pub mod show;
pub mod token;

use crate::svc;
use context::Cli;
use error::{usage, CommandError, EXIT_FAIL};

/// Run `opticon` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options::options();
    let help = commands::help();
    let m = match svc::cli::parse("opticon", &opts, args, "COMMAND [options]", &help) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(name) = m.free.first().cloned() else {
        return svc::cli::usage_error("opticon", "a command is required");
    };
    let result = Cli::new(&m).and_then(|mut cli| match commands::find(&name) {
        Some(command) => (command.run)(&mut cli, &m),
        None => Err(usage(format!("unknown command {name:?}"))),
    });
    match result {
        Ok(()) => 0,
        Err(CommandError::Usage(msg)) => svc::cli::usage_error("opticon", &msg),
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("opticon: {}", svc::text::printable(line));
            }
            EXIT_FAIL
        }
    }
}
