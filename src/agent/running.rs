//! The running agent: its configuration, sampler and links to the
//! collectors, built from the config file at start and at each reload.

use super::builtin::Context;
use super::cloud::{self, CloudError};
use super::config::ConfigError;
use super::config::{self, AgentConfig};
use super::sampler::Sampler;
use super::send::Link;
use super::send::SendError;
use crate::model::json::encode_host;
use crate::svc::daemon::DaemonError;
use crate::svc::{self};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

const PROBE_THREADS: usize = 4;

/// Everything needed to send, built from a config (again on SIGHUP).
pub(super) struct Running {
    pub(super) cfg: AgentConfig,
    pub(super) sampler: Sampler,
    pub(super) links: Vec<Link>,
    pub(super) host: Uuid,
}

use crate::model::unix_now;

/// Why the agent cannot start (or reload) with its configuration.
#[derive(Debug)]
pub enum StartupError {
    /// The config file is unreadable or invalid.
    Config(ConfigError),
    /// `cloud_init` is set and the metadata service did not help.
    Cloud(CloudError),
    /// Neither the DMI product UUID nor the machine id can be read.
    NoHostId,
    /// The probe threads cannot be started.
    Threads(std::io::Error),
    /// A collector link cannot be set up.
    Link(SendError),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::Config(e) => e.fmt(f),
            StartupError::Cloud(e) => e.fmt(f),
            StartupError::NoHostId => f.write_str(
                "no host id: /sys/class/dmi/id/product_uuid and /etc/machine-id are unreadable; set host in the collector config",
            ),
            StartupError::Threads(e) => write!(f, "cannot start probe threads: {e}"),
            StartupError::Link(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<StartupError> for DaemonError {
    fn from(e: StartupError) -> DaemonError {
        DaemonError::Other(e.to_string())
    }
}

/// Build the agent from the config file at `path`.
pub(super) fn start(path: &std::path::Path, ctx: &Context) -> Result<Running, StartupError> {
    let mut cfg = AgentConfig::load(path).map_err(StartupError::Config)?;
    if let Some(url) = &cfg.cloud_init {
        let body = cloud::http_get(url, Duration::from_secs(10)).map_err(StartupError::Cloud)?;
        cfg.collectors = vec![cloud::collector_from_metadata(&body).map_err(StartupError::Cloud)?];
    }
    let configured = cfg.collectors.iter().find_map(|c| c.host);
    let host = config::host_id(&ctx.root, configured).ok_or(StartupError::NoHostId)?;
    let mut log = Vec::new();
    let mut probe_ctx = ctx.clone();
    probe_ctx.bind = cfg.collectors.iter().find_map(|c| c.bind.clone());
    let mut sampler = Sampler::new(&cfg, probe_ctx, &mut log);
    sampler
        .use_pool(PROBE_THREADS)
        .map_err(StartupError::Threads)?;
    for line in log {
        svc::log::warn(&line);
    }
    let rotation = Duration::from_secs(cfg.key_rotation);
    let resend = Duration::from_secs(cfg.auth_resend);
    let links = cfg
        .collectors
        .iter()
        .map(|c| {
            Link::new(
                c.clone(),
                host,
                rotation,
                resend,
                cfg.auth_resend_chance,
                cfg.max_datagram,
            )
            .map_err(StartupError::Link)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Running {
        cfg,
        sampler,
        links,
        host,
    })
}

pub(super) fn dump(path: &Option<PathBuf>, lane: &str, sample: &crate::model::HostMeters) {
    if let Some(p) = path {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "--- {lane} ---\n{}", encode_host(sample, true));
        }
    }
}

impl Running {
    /// Send `sample` to every collector, preceded by an auth datagram.
    pub(super) fn round(
        &mut self,
        lane: &str,
        sample: &crate::model::HostMeters,
        dump_to: &Option<PathBuf>,
    ) {
        let now = unix_now();
        dump(dump_to, lane, sample);
        for link in &mut self.links {
            if let Err(e) = link.auth(now) {
                svc::log::warn(&format!("{}: {e}", link.name()));
                continue;
            }
            if sample.is_empty() {
                continue;
            }
            match link.sample(sample, now) {
                Ok(n) => svc::log::debug(&format!(
                    "{}: {lane} lane, {} meters in {n} datagrams",
                    link.name(),
                    sample.len()
                )),
                Err(e) => svc::log::warn(&format!("{}: {e}", link.name())),
            }
        }
    }
}
