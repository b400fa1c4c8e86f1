//! `opticon-collector` as a daemon: its options, start-up (socket,
//! receive buffer, raw ICMP sockets before dropping root), the main loop
//! (receive queue, tenant refresh, aligned write cycles, SIGHUP reloads)
//! and the final cycle at SIGTERM.

use super::config::CollectorConfig;
use super::state::Collector;
use super::{ping, receive};
use crate::db::published::{self, METRICS_FILE};
use crate::svc::daemon::{Configured, DaemonError};
use crate::svc::{self};
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime};

fn options(o: &mut getopts::Options) {
    svc::daemon::meter_config_option(o);
    o.optflag(
        "",
        "metrics",
        "print the running collector's metrics and exit",
    );
}

/// Run `opticon-collector` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    svc::daemon::main("opticon-collector", args, options, |m| {
        if m.opt_present("metrics") {
            return print_metrics(m);
        }
        if m.opt_present("check") {
            let c = load(m)?;
            check_layout(&c.cfg.db)?;
            return Ok(svc::daemon::report_check(
                "opticon-collector",
                &c.files,
                &c.warnings,
            ));
        }
        serve(m).map(|()| 0)
    })
}

/// `--metrics`: what the running collector last published; exit 1, with
/// the reason on standard error, when no collector runs (its pid file
/// names no live process) or it has not written for two cycles.
fn print_metrics(m: &getopts::Matches) -> Result<i32, DaemonError> {
    let cfg = load(m)?.cfg;
    let path = cfg.db.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        DaemonError::Other(format!(
            "{}: {e} (is the collector running?)",
            path.display()
        ))
    })?;
    print!("{text}");
    let pidfile = m
        .opt_str("pidfile")
        .unwrap_or_else(|| "/var/run/opticon-collector.pid".into());
    let written = published::written_at(&path).unwrap_or(0);
    let age = crate::model::unix_now() - written;
    let last = format!(
        "last metrics from {}, {age} s ago",
        crate::db::time::iso(written)
    );
    if svc::process::live_pid(std::path::Path::new(&pidfile)).is_none() {
        eprintln!(
            "opticon-collector: collector not running ({pidfile} names no live process; {last})"
        );
        return Ok(1);
    }
    if age > published::stale_after(published::write_interval(&cfg.db)) {
        eprintln!("opticon-collector: collector not writing ({last})");
        return Ok(1);
    }
    Ok(0)
}

/// Refuse a database in the layout before tenant day files, saying how
/// to convert it.
fn check_layout(root: &std::path::Path) -> Result<(), DaemonError> {
    crate::db::Db::new(root)
        .check_layout()
        .map_err(|e| DaemonError::Other(e.to_string()))
}

fn load(m: &getopts::Matches) -> Result<Configured<CollectorConfig>, DaemonError> {
    svc::daemon::daemon_config(
        "opticon-collector",
        m,
        &super::config::SCHEMA,
        CollectorConfig::from_dict,
    )
}

fn serve(m: &getopts::Matches) -> Result<(), DaemonError> {
    limit_heap_arenas(svc::pool::cores());
    svc::daemon::start_logging("opticon-collector", m)?;
    let Configured {
        cfg,
        defs,
        warnings,
        ..
    } = load(m)?;
    for w in &warnings {
        svc::log::warn(w);
    }
    check_layout(&cfg.db)?;
    let sock = UdpSocket::bind(cfg.listen).map_err(|e| DaemonError::Listen(cfg.listen, e))?;
    let rcvbuf = set_rcvbuf(&sock, cfg.rcvbuf);
    // Raw ICMP sockets need root: opened before privileges are dropped.
    let ping_sockets = cfg.ping.then(ping::Sockets::open);
    let pidfile = svc::daemon::become_service("opticon-collector", m)?;
    svc::log::info(&format!(
        "opticon-collector {} listening on {} (receive buffer {rcvbuf} bytes), database {}",
        env!("CARGO_PKG_VERSION"),
        cfg.listen,
        cfg.db.display()
    ));
    let mut collector = Collector::new(cfg, defs);
    collector.rcvbuf = rcvbuf;
    // Sender threads, after detaching (threads do not survive a fork).
    collector.start_exports();
    let mut next_write = next_boundary(Duration::from_secs(collector.cfg.write_interval));
    let mut next_refresh = Instant::now();
    // After detaching: threads do not survive the fork.
    let queue_size = collector.cfg.queue;
    let bounds = receive::Bounds {
        datagrams: queue_size,
        bytes: collector.cfg.queue_bytes,
        max_datagram: collector.cfg.max_datagram,
    };
    let mut queue = receive::start(sock, bounds)
        .map_err(|e| format!("cannot start the receive thread: {e}"))?;
    collector.queue = Some(queue.stats());
    let ping_every = Duration::from_secs(collector.cfg.ping_interval);
    collector.pinger = ping_sockets
        .and_then(|s| ping::Pinger::start(s, ping_every))
        .map(std::sync::Arc::new);
    let mut idle = 0u32;
    let mut batch = Vec::with_capacity(BATCH);
    let workers = svc::pool::cores();
    // A write cycle under way when SIGTERM came stores every host: it is
    // the last one, and the collector exits after it without another.
    let mut flushed = false;
    while !svc::signals::terminating() {
        if svc::signals::take_reload() {
            match load(m) {
                Ok(c) => {
                    for w in &c.warnings {
                        svc::log::warn(w);
                    }
                    collector.reconfigure(c.cfg, c.defs);
                    svc::log::info("configuration reloaded");
                }
                Err(e) => svc::log::err(&format!(
                    "reload failed, keeping the running configuration: {e}"
                )),
            }
        }
        // Work through a burst before looking at the clocks again, its
        // MACs and decryption spread over the cores.
        queue.take_batch(&mut batch, BATCH);
        let handled = batch.len();
        collector.handle_batch(&batch, workers);
        let now = Instant::now();
        if handled == 0 {
            // Nap while traffic may still come; then block until a
            // datagram or the next thing due (a signal is seen within
            // IDLE_WAIT).
            idle = idle.saturating_add(1);
            if idle < receive::IDLE_NAPS {
                std::thread::sleep(receive::NAP);
            } else {
                let due = next_write.min(next_refresh);
                queue.wait(due.saturating_duration_since(now).min(IDLE_WAIT));
            }
        } else {
            idle = 0;
        }
        let now = Instant::now();
        if now >= next_refresh {
            collector.refresh_tenants();
            next_refresh = now + Duration::from_secs(collector.cfg.tenant_refresh);
        }
        if now >= next_write {
            // Everything waiting, every few hosts: a cycle that creates
            // files for new hosts must not leave the queue to fill.
            collector.write_cycle_with(&mut |c| {
                // Stopping: the cycle finishes what it holds, unread
                // datagrams wait in vain (a long cycle at a million hosts
                // must not keep a service manager waiting for more).
                if svc::signals::terminating() {
                    return;
                }
                // In batches, their MACs and decryption on the workers
                // (a backlog builds while the hosts are stored).
                let mut left = queue_size;
                while left > 0 {
                    queue.take_batch(&mut batch, BATCH.min(left));
                    if batch.is_empty() {
                        break;
                    }
                    left -= batch.len();
                    c.handle_batch(&batch, workers);
                }
            });
            next_write += Duration::from_secs(collector.cfg.write_interval);
            flushed = svc::signals::terminating();
        }
    }
    if flushed {
        svc::log::info("stopping: the write cycle under way at the signal was the last");
    } else {
        collector.write_cycle();
    }
    // A purge or quota check under way ends before the process does.
    collector.finish_upkeep(&mut |_| {});
    collector.stop_exports();
    let (received, rejected) = collector.totals();
    let refused: String = rejected
        .iter()
        .map(|(reason, n)| format!(" rejected_{reason}={n}"))
        .collect();
    svc::log::info(&format!(
        "opticon-collector exiting on signal: received={received} accepted={}{refused}",
        collector.counters.accepted
    ));
    drop(pidfile);
    Ok(())
}

/// Let the C heap keep at most `n` arenas (glibc's default is eight per
/// core). Every thread that allocates while another holds its arena gets
/// one of its own, and each arena keeps its own free holes: a million
/// hosts measured 2,913 bytes each with the default and 2,403 with two
/// arenas (about 100 of it smaller index and session entries), at the
/// same CPU (the threads here spend little of their time allocating).
fn limit_heap_arenas(n: usize) {
    let n = libc::c_int::try_from(n.max(1)).unwrap_or(2);
    // SAFETY: mallopt only sets a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
}

/// Datagrams taken from the queue at once (and opened in parallel).
const BATCH: usize = 1024;

/// Longest an idle main loop blocks: a signal (SIGTERM, SIGHUP) is
/// acted on within it.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// The next instant aligned to a multiple of `every` in wall-clock time
/// (records land on whole minutes with the default interval).
fn next_boundary(every: Duration) -> Instant {
    let secs = every.as_secs().max(1);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let into = Duration::from_nanos((now.as_nanos() % (u128::from(secs) * 1_000_000_000)) as u64);
    Instant::now() + (every - into.min(every))
}

/// Ask for a large kernel receive buffer; returns the size granted.
fn set_rcvbuf(sock: &UdpSocket, bytes: usize) -> usize {
    use std::os::unix::io::AsRawFd;
    let fd = sock.as_raw_fd();
    let want = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt/getsockopt on a socket this function borrows.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&want as *const libc::c_int).cast(),
            4,
        );
        let mut got: libc::c_int = 0;
        let mut len: libc::socklen_t = 4;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
        got.max(0) as usize
    }
}
