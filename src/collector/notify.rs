//! Notifications of status changes that last: a configured command gets a
//! JSON document on its standard input, and a log line is written.
//!
//! A change waits for the debounce (default 290 s) before it is sent, so a
//! host that flaps back in the meantime sends nothing; when one change is
//! sent, every other change pending for the batch time (default 120 s)
//! goes with it (the original's 290 s / 120 s rule). Commands run on their
//! own thread: a slow or failing command never holds up ingestion, and a
//! failure is logged (the next change tries again).

use crate::conf::{Dict, Node, ValueError};
use crate::model::Status;
use crate::svc::exec;
use crate::svc::{self, pool::Pool};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A collector's part in a pair that receives the same hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the notification command (a collector alone is primary).
    Primary,
    /// Judges like the primary but only logs what it would send, so a
    /// pair does not notify twice.
    Secondary,
}

/// Where and when to notify (`notify { call debounce batch role }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Command run with the JSON document on stdin; none: log only.
    pub call: Option<String>,
    /// Seconds a change must last before anything is sent.
    pub debounce: u64,
    /// Seconds a change must have lasted to go along with another.
    pub batch: u64,
    /// Whether this collector sends, or holds (the secondary of a pair).
    pub role: Role,
}

impl NotifyConfig {
    /// Read the `notify` section.
    pub fn from_dict(doc: &Dict) -> Result<NotifyConfig, ValueError> {
        let secs = |key: &str, default: u64| match doc.path(&format!("notify/{key}")) {
            None => Ok(default),
            Some(Node::Int(n)) if *n >= 0 => Ok(*n as u64),
            Some(other) => Err(ValueError::new(
                format!("notify/{key}"),
                format!("{} is not a number of seconds", other.to_json(false)),
            )),
        };
        Ok(NotifyConfig {
            call: doc
                .path("notify/call")
                .and_then(Node::as_str)
                .map(String::from),
            debounce: secs("debounce", 290)?,
            batch: secs("batch", 120)?,
            role: match doc.path("notify/role") {
                None => Role::Primary,
                Some(Node::Str(s)) if s == "primary" => Role::Primary,
                Some(Node::Str(s)) if s == "secondary" => Role::Secondary,
                Some(other) => {
                    return Err(ValueError::new(
                        "notify/role",
                        format!("{} is not primary or secondary", other.to_json(false)),
                    ))
                }
            },
        })
    }
}

/// Notification commands that may wait for the one that runs (each
/// runs for up to 30 s); a change past them is logged, not sent, so a
/// fleet that flaps at once cannot queue a process per host.
pub const COMMANDS_WAITING: usize = 1000;

/// Notifications logged one by one per round; the rest are counted in
/// one line (the command still gets each one).
pub const LINES_PER_ROUND: usize = 100;

/// One change waiting to be sent.
struct Pending {
    hostname: String,
    old: Status,
    new: Status,
    problems: Vec<String>,
    since: Instant,
    time: i64,
}

/// Pending changes and the thread that runs the command.
pub struct Notifier {
    cfg: NotifyConfig,
    pending: HashMap<(Uuid, Uuid), Pending>,
    pool: Option<Pool>,
}

impl Notifier {
    /// A notifier; the command thread starts only when a command is set.
    pub fn new(cfg: NotifyConfig) -> Notifier {
        let pool = cfg
            .call
            .as_ref()
            .and_then(|_| Pool::bounded("notify", 1, COMMANDS_WAITING).ok());
        Notifier {
            cfg,
            pending: HashMap::new(),
            pool,
        }
    }

    /// Note a status change. A first OK after start is not news; a change
    /// back to where a pending one started cancels it.
    #[allow(clippy::too_many_arguments)]
    pub fn change(
        &mut self,
        tenant: Uuid,
        host: Uuid,
        hostname: &str,
        old: Status,
        new: Status,
        problems: &[String],
        time: i64,
    ) {
        if old == Status::Unset && new == Status::Ok {
            return;
        }
        let key = (tenant, host);
        match self.pending.get_mut(&key) {
            Some(p) if p.old == new => {
                self.pending.remove(&key);
            }
            Some(p) => {
                p.new = new;
                p.problems = problems.to_vec();
                p.hostname = hostname.to_string();
            }
            None => {
                self.pending.insert(
                    key,
                    Pending {
                        hostname: hostname.into(),
                        old,
                        new,
                        problems: problems.to_vec(),
                        since: Instant::now(),
                        time,
                    },
                );
            }
        }
    }

    /// Send what is due: when any change has lasted the debounce time,
    /// every change that lasted the batch time goes.
    pub fn send_due(&mut self) {
        let debounce = Duration::from_secs(self.cfg.debounce);
        if !self.pending.values().any(|p| p.since.elapsed() >= debounce) {
            return;
        }
        let batch = Duration::from_secs(self.cfg.batch);
        let due: Vec<(Uuid, Uuid)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= batch)
            .map(|(k, _)| *k)
            .collect();
        let mut lines = svc::log::Burst::new(LINES_PER_ROUND);
        let mut refused = 0;
        for key in due {
            if let Some(p) = self.pending.remove(&key) {
                let log = lines.admit();
                if !self.fire(key.0, key.1, p, log) {
                    refused += 1;
                }
            }
        }
        if let Some(line) = lines.finish("notifications this round") {
            svc::log::warn(&line);
        }
        if refused > 0 {
            svc::log::err(&format!(
                "{refused} notification commands not run: {COMMANDS_WAITING} already wait for the one running"
            ));
        }
    }

    /// Send one change (and log it, when `log`); false when its command
    /// could not be queued.
    fn fire(&self, tenant: Uuid, host: Uuid, p: Pending, log: bool) -> bool {
        let secondary = self.cfg.role == Role::Secondary;
        if log {
            svc::log::warn(&format!(
                "notify{}: host {host} ({}) of tenant {tenant}: {} -> {}{}",
                if secondary {
                    " (held: secondary of a pair)"
                } else {
                    ""
                },
                p.hostname,
                p.old.as_str(),
                p.new.as_str(),
                if p.problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.problems.join(", "))
                }
            ));
        }
        let (Some(call), Some(pool), false) = (&self.cfg.call, &self.pool, secondary) else {
            return true;
        };
        let mut d = Dict::new();
        d.insert("tenant", Node::Str(tenant.to_string()));
        d.insert("host", Node::Str(host.to_string()));
        d.insert("hostname", Node::Str(p.hostname));
        d.insert("old", Node::Str(p.old.as_str().into()));
        d.insert("new", Node::Str(p.new.as_str().into()));
        d.insert(
            "problems",
            Node::Array(p.problems.into_iter().map(Node::Str).collect()),
        );
        d.insert("time", Node::Int(p.time));
        let doc = Node::Dict(d).to_json(false) + "\n";
        let call = call.clone();
        pool.submit(move || {
            match exec::run_command_with_input(
                &call,
                &[],
                Duration::from_secs(30),
                Some(doc.into_bytes()),
            ) {
                Ok(done) if done.code == 0 => {}
                Ok(done) => svc::log::err(&format!(
                    "notify command {}",
                    exec::describe_exit(&call, done.code)
                )),
                Err(e) => svc::log::err(&format!("notify command: {e}")),
            }
        })
    }
}
