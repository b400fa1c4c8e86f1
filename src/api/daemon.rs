//! `opticon-api` as a daemon: options, start-up, and serving until
//! SIGTERM, with a new API (and the last good configuration) after each
//! SIGHUP.

use super::config::ApiConfig;
use super::http::Request;
use super::routes::Api;
use super::server;
use crate::db::meters::MeterDef;
use crate::svc::{self, daemon::DaemonError};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

fn options(o: &mut getopts::Options) {
    svc::daemon::meter_config_option(o);
}

fn load(m: &getopts::Matches) -> Result<(ApiConfig, Vec<MeterDef>), DaemonError> {
    svc::daemon::daemon_config("opticon-api", m, ApiConfig::from_dict)
}

/// Run `opticon-api` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    svc::daemon::main("opticon-api", args, options, |m| serve(m).map(|()| 0))
}

fn serve(m: &getopts::Matches) -> Result<(), DaemonError> {
    svc::daemon::start_logging("opticon-api", m)?;
    let (cfg, defs) = load(m)?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| DaemonError::Listen(cfg.listen, e))?;
    let pidfile = svc::daemon::become_service("opticon-api", m)?;
    svc::log::info(&format!(
        "opticon-api {} listening on {}, database {}",
        env!("CARGO_PKG_VERSION"),
        cfg.listen,
        cfg.db.display()
    ));
    let limits = cfg.limits.clone();
    loop {
        let api = Arc::new(Api::new(cfg_reload(m, &cfg), defs.clone()).map_err(|e| e.to_string())?);
        let handler: Arc<server::Handler> = {
            let api = Arc::clone(&api);
            Arc::new(move |req: &Request, peer: SocketAddr| api.handle(req, peer))
        };
        let listener = listener.try_clone().map_err(|e| e.to_string())?;
        server::serve(listener, limits.clone(), handler, || {
            svc::signals::terminating() || svc::signals::take_reload()
        })
        .map_err(|e| format!("server: {e}"))?;
        if svc::signals::terminating() {
            break;
        }
        svc::log::info("configuration reloaded");
    }
    svc::log::info("opticon-api exiting on signal");
    drop(pidfile);
    Ok(())
}

/// The configuration to serve with: reloaded from the file after a
/// SIGHUP, the running one when the file is broken.
fn cfg_reload(m: &getopts::Matches, running: &ApiConfig) -> ApiConfig {
    match load(m) {
        Ok((cfg, _)) => ApiConfig {
            listen: running.listen,
            ..cfg
        },
        Err(e) => {
            svc::log::err(&format!(
                "reload failed, keeping the running configuration: {e}"
            ));
            running.clone()
        }
    }
}
