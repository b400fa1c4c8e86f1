//! `opticon-db`: query and maintain the metering database from a shell or
//! from cron. See `man 8 opticon-db`.
//!
//! * [`options`]: every option, defined once.
//! * [`commands`]: the table of commands (help and dispatch both read it).
//! * The commands by family: [`tenant`], [`meter`] (meters and watchers),
//!   [`host`], [`maint`] (purge, quotas, fsck, du).
//! * [`tool`]: what every command works with; [`error`]: why one failed.

pub mod commands;
pub mod error;
pub mod host;
pub mod maint;
pub mod meter;
pub mod options;
pub mod tenant;
pub mod tool;

use crate::db::Db;
use crate::svc;
use error::{usage, ToolError, EXIT_FAIL};
use tool::Tool;

/// Run `opticon-db` with its arguments (without the program name);
/// returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options::options();
    let help = commands::help();
    let m = match svc::cli::parse("opticon-db", &opts, args, "[options] COMMAND [ARGS]", &help) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(name) = m.free.first().cloned() else {
        return svc::cli::usage_error("opticon-db", "no command given");
    };
    let tool = Tool {
        db: Db::new(
            m.opt_str("path")
                .unwrap_or_else(|| crate::db::DEFAULT_ROOT.into()),
        ),
        json: m.opt_present("json"),
        now: crate::model::unix_now(),
    };
    let result = match commands::find(&name) {
        Some(command) => if m.opt_present("init") {
            tool.db.init()
        } else {
            tool.db.check_root()
        }
        .and_then(|()| match command.name {
            // Only the conversion itself runs on the layout before.
            "migrate" => Ok(()),
            _ => tool.db.check_layout(),
        })
        .map_err(ToolError::Db)
        .and_then(|()| (command.run)(&tool, &m)),
        None => Err(usage(format!("unknown command {name:?}"))),
    };
    match result {
        Ok(code) => code,
        Err(ToolError::Usage(msg)) => svc::cli::usage_error("opticon-db", &msg),
        Err(ToolError::Db(e)) => {
            eprintln!("opticon-db: {e}");
            EXIT_FAIL
        }
    }
}
