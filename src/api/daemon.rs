//! `opticon-api` as a daemon: options, start-up, and serving until
//! SIGTERM, with a new API (and the last good configuration) after each
//! SIGHUP.

use super::config::ApiConfig;
use super::routes::{Api, Shared};
use super::server;
use crate::svc::daemon::{Configured, DaemonError};
use crate::svc::{self};
use std::net::TcpListener;
use std::sync::Arc;

fn options(o: &mut getopts::Options) {
    svc::daemon::meter_config_option(o);
}

fn load(m: &getopts::Matches) -> Result<Configured<ApiConfig>, DaemonError> {
    svc::daemon::daemon_config(
        "opticon-api",
        m,
        &super::config::SCHEMA,
        ApiConfig::from_dict,
    )
}

/// Run `opticon-api` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    svc::daemon::main("opticon-api", args, options, |m| {
        if m.opt_present("check") {
            let c = load(m)?;
            return Ok(svc::daemon::report_check(
                "opticon-api",
                &c.files,
                &c.warnings,
            ));
        }
        serve(m).map(|()| 0)
    })
}

fn serve(m: &getopts::Matches) -> Result<(), DaemonError> {
    svc::daemon::start_logging("opticon-api", m)?;
    let Configured {
        mut cfg,
        mut defs,
        warnings,
        ..
    } = load(m)?;
    for w in &warnings {
        svc::log::warn(w);
    }
    // The layout before tenant day files would read as a database
    // without samples.
    crate::db::Db::new(&cfg.db)
        .check_layout()
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| DaemonError::Listen(cfg.listen, e))?;
    // Every connection is a descriptor; the daemon's own files need a few.
    let wanted = cfg.limits.connections as u64 + 64;
    let descriptors = svc::process::raise_nofile(wanted);
    let pidfile = svc::daemon::become_service("opticon-api", m)?;
    svc::log::info(&format!(
        "opticon-api {} listening on {}, database {}, {} connections at most, descriptor limit {descriptors}{}",
        env!("CARGO_PKG_VERSION"),
        cfg.listen,
        cfg.db.display(),
        cfg.limits.connections,
        if descriptors < wanted {
            format!(" (below the {wanted} wanted: raise the hard limit)")
        } else {
            String::new()
        }
    ));
    let shared = Arc::new(Shared::default());
    loop {
        let api = Api::new(cfg.clone(), defs.clone(), Arc::clone(&shared))
            .map_err(|e| DaemonError::Other(e.to_string()))?;
        let listener = listener
            .try_clone()
            .map_err(|e| DaemonError::Other(format!("listener: {e}")))?;
        server::serve(
            listener,
            cfg.limits.clone(),
            Arc::new(api),
            Arc::clone(&shared.stats),
            || svc::signals::terminating() || svc::signals::take_reload(),
        )
        .map_err(|e| DaemonError::Other(format!("server: {e}")))?;
        if svc::signals::terminating() {
            break;
        }
        // SIGHUP: the configuration and the meter definitions anew, or
        // the last good ones when the files are broken.
        match load(m) {
            Ok(Configured {
                cfg: fresh,
                defs: fresh_defs,
                warnings,
                ..
            }) => {
                for w in &warnings {
                    svc::log::warn(w);
                }
                if fresh.listen != cfg.listen {
                    svc::log::warn("network/address and network/port change only with a restart");
                }
                cfg = ApiConfig {
                    listen: cfg.listen,
                    ..fresh
                };
                defs = fresh_defs;
                svc::log::info("configuration reloaded");
            }
            Err(e) => svc::log::err(&format!(
                "reload failed, keeping the running configuration: {e}"
            )),
        }
    }
    svc::log::info("opticon-api exiting on signal");
    drop(pidfile);
    Ok(())
}
