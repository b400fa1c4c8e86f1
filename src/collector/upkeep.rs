//! Upkeep after a write cycle: now and then (`interval/quota`) hosts
//! silent for `interval/purge` are deleted and every tenant is kept
//! within its storage quota, oldest days first.
//!
//! It runs on a thread of its own once a cycle is done, not inside it: at
//! a million hosts the purge reads every host's directory and every day
//! index (seconds), and the cycle's records, reports and host lists need
//! not wait for that. The next cycle waits for it to end before it locks
//! the tenants' day files (a purge rewrites them), reading the receive
//! queue meanwhile.

use super::state::Collector;
use crate::db::{Db, DbError};
use crate::model::unix_now;
use crate::svc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The quota check's walk of every tenant's files but its day files
/// (every host's directory: minutes at a million hosts), on its own
/// thread: each tenant's bytes, or why they could not be measured.
pub(super) type QuotaWalk = JoinHandle<Vec<(Uuid, Result<u64, DbError>)>>;

/// The upkeep under way.
pub(super) type Upkeep = JoinHandle<Done>;

/// What an upkeep did that the collector's own state must follow.
pub(super) struct Done {
    /// Tenants whose hosts or days were deleted: their host indexes are
    /// rebuilt.
    changed: Vec<Uuid>,
    /// Some hosts were purged: the last walk's figures count them.
    purged: bool,
}

/// What one upkeep is to do.
struct Job {
    db: Db,
    tenants: Vec<Uuid>,
    /// Purge hosts whose last record is older than this time.
    purge_before: Option<i64>,
    /// Check the quotas, given each tenant's bytes but its day files.
    quotas: Option<Vec<(Uuid, Result<u64, DbError>)>>,
}

impl Collector {
    /// Start the upkeep that is due, at the end of a write cycle: the
    /// purge and the quota check every `interval/quota`, the walk of the
    /// tenants' other files every `interval/quota_walk` (the checks in
    /// between count the last walk's figure).
    pub(super) fn start_upkeep(&mut self) {
        let mut job = Job {
            db: self.db.clone(),
            tenants: self.tenants.keys().copied().collect(),
            purge_before: None,
            quotas: None,
        };
        if self.last_quota.elapsed() >= Duration::from_secs(self.cfg.quota_interval)
            && self.quota_walk.is_none()
        {
            self.last_quota = Instant::now();
            job.purge_before = (self.cfg.purge > 0).then(|| unix_now() - self.cfg.purge as i64);
            let (known, last_walk) = &self.walked;
            let walk_due = self.walk_stale
                || last_walk
                    .is_none_or(|w| w.elapsed() >= Duration::from_secs(self.cfg.quota_walk))
                || self.tenants.keys().any(|t| !known.contains_key(t));
            if walk_due {
                self.walked.1 = Some(Instant::now());
                self.walk_stale = false;
                let db = self.db.clone();
                let tenants = job.tenants.clone();
                self.quota_walk = Some(std::thread::spawn(move || {
                    svc::pool::lower_this_thread(svc::pool::BACKGROUND_NICE);
                    tenants
                        .into_iter()
                        .map(|t| (t, db.tenant_rest_bytes(t)))
                        .collect()
                }));
            } else {
                job.quotas = Some(known.iter().map(|(t, b)| (*t, Ok(*b))).collect());
            }
        }
        if self.quota_walk.as_ref().is_some_and(|w| w.is_finished()) {
            if let Some(walk) = self.quota_walk.take() {
                match walk.join() {
                    // A purge since it began: its figures count hosts
                    // that are gone, and the next check walks again.
                    Ok(_) if self.walk_stale => {}
                    Ok(rest) => {
                        self.walked.0 = rest
                            .iter()
                            .filter_map(|(t, b)| Some((*t, *b.as_ref().ok()?)))
                            .collect();
                        job.quotas = Some(rest);
                    }
                    Err(_) => svc::log::err("the quota walk failed: quotas not checked"),
                }
            }
        }
        if let Some(q) = &mut job.quotas {
            q.retain(|(t, _)| self.tenants.contains_key(t));
        }
        if job.purge_before.is_some() || job.quotas.is_some() {
            // Below the collector's thread, which receives meanwhile.
            self.upkeep = Some(std::thread::spawn(move || {
                svc::pool::lower_this_thread(svc::pool::BACKGROUND_NICE);
                job.run()
            }));
        }
    }

    /// Wait for the upkeep under way to end, handling datagrams
    /// (`between`) meanwhile, and follow what it did; returns the time
    /// waited. Called before a write cycle locks the day files, and when
    /// the collector stops.
    pub(super) fn finish_upkeep(&mut self, between: &mut dyn FnMut(&mut Collector)) -> Duration {
        let Some(upkeep) = self.upkeep.take() else {
            return Duration::ZERO;
        };
        let t = Instant::now();
        self.read_queue_until(between, || upkeep.is_finished());
        match upkeep.join() {
            Ok(done) => {
                for t in done.changed {
                    self.index_rebuild(t);
                }
                if done.purged {
                    self.walk_stale = true;
                }
            }
            Err(_) => svc::log::err("the upkeep failed: purge and quotas not checked"),
        }
        t.elapsed()
    }
}

impl Job {
    /// Purge, then check the quotas (unless hosts were purged: the walk's
    /// figures counted them, and the next check walks again).
    fn run(self) -> Done {
        let started = Instant::now();
        let mut changed = Vec::new();
        if let Some(cutoff) = self.purge_before {
            for t in &self.tenants {
                match self.db.purge_stale(*t, cutoff) {
                    Ok(hosts) => {
                        if !hosts.is_empty() {
                            changed.push(*t);
                        }
                        for h in hosts {
                            svc::log::info(&format!(
                                "tenant {t}: purged host {h}, silent since before {}",
                                crate::db::time::iso(cutoff)
                            ));
                        }
                    }
                    Err(e) => svc::log::warn(&format!("tenant {t}: purge: {e}")),
                }
            }
        }
        let purged = !changed.is_empty();
        let purge_took = started.elapsed();
        let quotas = self.quotas.filter(|_| !purged);
        let checked = quotas.is_some();
        for (t, rest) in quotas.into_iter().flatten() {
            match rest.and_then(|rest| self.db.enforce_quota_beside(t, rest)) {
                Ok((days, why)) => {
                    if !days.is_empty() && !changed.contains(&t) {
                        changed.push(t);
                    }
                    for d in days {
                        svc::log::info(&format!("tenant {t}: over quota, deleted {}", d.stem()));
                    }
                    if let Some(why) = why {
                        svc::log::warn(&format!("tenant {t}: {why}"));
                    }
                }
                Err(e) => svc::log::warn(&format!("tenant {t}: quota: {e}")),
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let purge = match self.purge_before {
            Some(_) => format!("purge {:.1} ms", ms(purge_took)),
            None => "no purge due".to_string(),
        };
        let quotas = match checked {
            true => format!("quotas {:.1} ms", ms(started.elapsed() - purge_took)),
            false => "no quota check".to_string(),
        };
        svc::log::debug(&format!("upkeep after the write cycle: {purge}, {quotas}"));
        Done { changed, purged }
    }
}
