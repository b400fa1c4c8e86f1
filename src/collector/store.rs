//! Judging and storing one host in a write cycle: everything that touches
//! only that host (its state in memory, its directory on disk), so that
//! the cycle runs it for many hosts at once on worker threads and keeps
//! for itself only what the hosts share (notifications, the tenant's
//! index, overview and exports).

use super::hostlogs;
use super::hosts::{HostState, Scratch, HOST_CONF_RECHECK};
use super::judge;
use super::ping::Pinger;
use super::report;
use super::sessions::TenantInfo;
use crate::db::delta::Known;
use crate::db::meters::MeterDef;
use crate::db::tenant::HOST_LOG;
use crate::db::time::Date;
use crate::db::{Db, ParkedWriter, References, TenantStore};
use crate::model::{
    Array, HostMeters, MeterName, MeterValue, ScalarRef, Status, MAX_METERS_PER_HOST,
};
use crate::svc;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The meters the collector adds to every record.
pub const OWN_METERS: [&str; 6] = [
    "status",
    "badness",
    "problems",
    "link/ip",
    "link/rtt",
    "link/loss",
];

/// What every host of one cycle is stored against (shared, read-only, by
/// the worker threads).
pub(super) struct CycleContext<'a> {
    pub(super) db: &'a Db,
    pub(super) tenants: &'a HashMap<Uuid, TenantInfo>,
    pub(super) global: &'a [MeterDef],
    pub(super) pinger: Option<&'a Pinger>,
    /// A host silent this long is stale.
    pub(super) stale: Duration,
    /// A meter not updated for this many seconds is dropped.
    pub(super) meter_expiry: i64,
    /// The cycle's time, stamped on every record.
    pub(super) now: i64,
    /// The day stores of the tenants locked for this cycle.
    pub(super) stores: &'a HashMap<Uuid, Mutex<TenantStore>>,
    /// Some export wants each host's meters.
    pub(super) exporting: bool,
    /// The write cycle's number since the start.
    pub(super) cycle: u64,
    /// Tenants whose hosts a tool marked changed since the last cycle.
    pub(super) hosts_changed: &'a HashSet<Uuid>,
    /// What hosts' last samples are kept as changes against.
    pub(super) references: &'a References,
}

/// A host's status change in this cycle (old, new).
pub(super) type Change = (Status, Status);

/// What storing one host leaves for the cycle's shared part (made on
/// the worker thread, so that the meters themselves stay in its
/// [`Scratch`]).
pub(super) struct Stored {
    /// The host's entry in its tenant's overview (JSON), in a buffer
    /// from the worker's [`Scratch::overviews`], to be handed back.
    pub(super) overview: String,
    /// The host's part of its tenant's summary.
    pub(super) summary: report::Summary,
    /// The meters as judged, when an export wants them.
    pub(super) meters: Option<HostMeters>,
    /// A record was appended.
    pub(super) stored: bool,
    /// Disk bytes of the day file appended to.
    pub(super) disk: u64,
    /// The host was deleted meanwhile and starts afresh.
    pub(super) fresh: bool,
    /// Its status changed, with its hostname and problems for the
    /// notification.
    pub(super) change: Option<StatusChange>,
    /// Not stored: its tenant's day files were locked by another writer.
    pub(super) unlocked: bool,
    /// Its status change's entry for its host log, written by the
    /// cycle's [`hostlogs::Writers`].
    pub(super) log: Option<hostlogs::Entry>,
    /// Time spent appending its record, its tenant's lock included (for
    /// the cycle's debug line: the disk's share of the workers' time).
    pub(super) append_time: Duration,
}

/// A host's status change in this cycle, as a notification tells it.
pub(super) struct StatusChange {
    /// The status before and after.
    pub(super) change: Change,
    /// The host's `hostname` meter (empty without one).
    pub(super) hostname: String,
    /// The host's `problems` meter.
    pub(super) problems: Vec<String>,
}

impl StatusChange {
    fn of(change: Change, meters: &HostMeters) -> StatusChange {
        let hostname = match meters.get("hostname").and_then(|m| m.value.element(0)) {
            Some(crate::model::ScalarRef::Str(n)) => n.to_string(),
            _ => String::new(),
        };
        let problems = match meters.get("problems").map(|m| &m.value) {
            Some(MeterValue::Array(Array::Str(p))) => p.clone(),
            _ => Vec::new(),
        };
        StatusChange {
            change,
            hostname,
            problems,
        }
    }
}

/// Drop agent meters (the last ones) until the collector's own fit under
/// the model's limit; returns how many were dropped.
fn make_room(meters: &mut HostMeters) -> usize {
    let missing = OWN_METERS
        .iter()
        .filter(|n| meters.get(n).is_none())
        .count();
    let over = (meters.len() + missing).saturating_sub(MAX_METERS_PER_HOST);
    if over == 0 {
        return 0;
    }
    let mut names: Vec<String> = meters
        .iter()
        .map(|(n, _)| n.as_str().to_string())
        .filter(|n| !OWN_METERS.contains(&n.as_str()))
        .collect();
    let victims = names.split_off(names.len().saturating_sub(over));
    for v in &victims {
        meters.remove(v);
    }
    victims.len()
}

fn set(meters: &mut HostMeters, name: &str, value: MeterValue, time: i64) {
    if let Ok(n) = MeterName::new(name) {
        let _ = meters.set(n, value, time);
    }
}

/// Judge one host, add the collector's meters, log a status change in
/// the host log, append its record and pack its state again; `scratch`
/// holds its meters meanwhile.
pub(super) fn judge_and_store(
    ctx: &CycleContext,
    scratch: &mut Scratch,
    key: (Uuid, Uuid),
    h: &mut HostState,
) -> Stored {
    let now = ctx.now;
    let dir = ctx.db.host_dir(key.0, key.1);
    // Each host's turn to look at its directory and host.conf comes
    // round once in HOST_CONF_RECHECK cycles, spread over the hosts.
    let turn = ctx.cycle.wrapping_add(u64::from(key.1.as_bytes()[15])) % HOST_CONF_RECHECK == 0;
    // The host directory says the host exists, and whether its host.conf
    // may have been replaced. It is looked at on the host's turn, at its
    // first cycle (and after a reload), and when a tool marked its
    // tenant's hosts changed; else it is as the collector left it.
    let look = turn || h.defs.is_none() || ctx.hosts_changed.contains(&key.0);
    let (dir_exists, dir_modified) = match look {
        true => match std::fs::metadata(&dir) {
            Ok(m) => (true, m.modified().ok()),
            Err(_) => (false, None),
        },
        false => (true, h.dir_modified()),
    };
    let defs = match ctx.tenants.get(&key.0) {
        Some(t) => h.defs(Arc::clone(&t.defs), t.modified, dir_modified, turn, &dir),
        None => Arc::new(ctx.global.to_vec()),
    };
    let (mut has_base, as_packed) = h.unpack_telling(scratch);
    let Scratch {
        base,
        meters,
        body,
        text,
        overviews,
    } = scratch;
    let mut fresh = false;
    h.cycle_bytes = 0;
    h.merged = false;
    // Deleted (opticon-db host-delete, DELETE /{T}/host/{H}) while its
    // agent still sends: the host starts afresh, as a new one.
    if h.writer.last_time().is_some() && !dir_exists {
        svc::log::info(&format!(
            "host {} of tenant {} was deleted: recording it afresh",
            key.1, key.0
        ));
        h.writer = ParkedWriter::default();
        h.badness = 0.0;
        h.status = Status::Unset;
        has_base = false;
        fresh = true;
    }
    let old = h.status;
    // The collector's own meters always have room: a host at the meter
    // limit loses some of its own meters instead, and says so.
    let trimmed = make_room(meters);
    if h.last_seen.elapsed() > ctx.stale {
        h.status = Status::Stale;
        meters.stamp(now);
    } else {
        meters.expire(now, ctx.meter_expiry);
        let v = judge::judge(meters, &defs, h.badness);
        h.badness = v.badness;
        h.status = v.status;
        let mut problems = v.problems;
        if trimmed > 0 {
            problems.push(format!("meters: over the limit, {trimmed} not stored"));
        }
        set(
            meters,
            "problems",
            MeterValue::Array(Array::Str(problems)),
            now,
        );
    }
    // Written in place (the meters hold them from the last cycle).
    let mut scalar = |name: &str, value: ScalarRef<'_>| {
        let _ = meters.set_scalar(name, value, now);
    };
    scalar("status", ScalarRef::Str(h.status.as_str()));
    scalar(
        "badness",
        ScalarRef::Frac((h.badness * 1000.0).round() / 1000.0),
    );
    text.clear();
    let _ = write!(text, "{}", h.remote.ip());
    scalar("link/ip", ScalarRef::Str(text));
    if let Some(link) = ctx.pinger.and_then(|p| p.link(h.remote.ip())) {
        let round = |x: f64| ScalarRef::Frac((x * 1000.0).round() / 1000.0);
        scalar("link/rtt", round(link.rtt_ms));
        scalar("link/loss", round(link.loss_pct));
    }
    let change = (old != h.status).then_some((old, h.status));
    let mut overview = overviews
        .pop()
        .unwrap_or_else(|| String::with_capacity(1024));
    overview.clear();
    report::overview_entry(meters, &mut overview);
    let mut stored = Stored {
        overview,
        summary: report::Summary::of(meters),
        meters: ctx.exporting.then(|| meters.clone()),
        stored: false,
        disk: 0,
        fresh,
        change: change.map(|c| StatusChange::of(c, meters)),
        unlocked: false,
        log: None,
        append_time: Duration::ZERO,
    };
    let base = has_base.then_some(&*base);
    // The host directory says the host exists (and holds its log).
    if !dir_exists {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            svc::log::err(&format!("{}: {e}", dir.display()));
            h.settle(meters, base, false);
            return stored;
        }
        crate::db::adopt_owner(&dir);
    }
    if let Some((old, new)) = change {
        let entry = hostlogs::Entry {
            key,
            path: dir.join(HOST_LOG),
            seq: h.log_next.filter(|_| dir_exists).map(NonZeroU64::get),
            time: now,
            subsystem: "watcher",
            message: format!("Status change {} -> {}", old.as_str(), new.as_str()),
        };
        h.log_next = entry.next_seq().and_then(NonZeroU64::new);
        stored.log = Some(entry);
    }
    // A cycle in the same second as the last one (the final cycle at
    // shutdown) has nothing new to store.
    if h.writer.last_time().is_none_or(|t| t < now) {
        match ctx.stores.get(&key.0) {
            Some(store) => {
                // Encoded outside the tenant's lock, appended under it.
                // Unpacked as packed, the meters are their base with the
                // packed changes but in the collector's own meters (the
                // rest of the cycle removes some, which the encoder sees
                // by their names): those changes are copied, not found
                // again.
                let own = OWN_METERS.map(|n| meters.position(n));
                let touched = |i| own.contains(&Some(i));
                let known = h
                    .packed
                    .changes()
                    .filter(|_| as_packed)
                    .map(|changes| Known {
                        changes,
                        touched: &touched,
                    });
                let kind = h
                    .writer
                    .encode_next(base, known.as_ref(), now, meters, body);
                let t = Instant::now();
                let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
                let appended = s.append_frame(key.1, now, meters, kind, body);
                stored.append_time = t.elapsed();
                match appended {
                    Ok((_, kind)) => {
                        stored.stored = true;
                        stored.disk = s
                            .host_day(Date::of(now), key.1)
                            .ok()
                            .flatten()
                            .map_or(0, |d| d.bytes);
                        drop(s);
                        h.writer = h
                            .writer
                            .after(now, meters, kind, body, Some(ctx.references));
                    }
                    Err(e) => svc::log::err(&format!("host {}: {e}", key.1)),
                }
            }
            // The tenant's store could not be locked this cycle (said
            // once for the tenant).
            None => stored.unlocked = true,
        }
    }
    h.settle(meters, base, stored.stored);
    stored
}
