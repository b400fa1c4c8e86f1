//! Per-tenant limits, so that one tenant cannot crowd out the others:
//! hosts in memory, new hosts a minute, and bytes per host per write
//! cycle. Defaults come from `limits` in the collector's config; a
//! tenant's metadata may set its own (`max_hosts`,
//! `max_new_hosts_per_minute`, `max_host_bytes_per_cycle`). What exceeds
//! them is refused (`over_limit`), counted per tenant and logged once a
//! minute per tenant.

pub use crate::db::limits::{TenantLimits, LIMIT_KEYS};
use std::time::{Duration, Instant};

/// What one tenant was refused, by limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// New hosts refused at `max_hosts`.
    pub hosts: u64,
    /// New hosts refused past `max_new_hosts_per_minute`.
    pub new_hosts: u64,
    /// Payloads refused past `max_host_bytes_per_cycle`.
    pub bytes: u64,
}

impl Refused {
    /// All refusals.
    pub fn total(&self) -> u64 {
        self.hosts + self.new_hosts + self.bytes
    }
}

/// How often a tenant's refusals are logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A tenant's use of its limits, kept across reloads of its definitions.
#[derive(Debug, Clone)]
pub struct TenantUse {
    /// Hosts in memory.
    pub hosts: u64,
    /// Refusals so far.
    pub refused: Refused,
    /// New hosts the tenant may still add now (a token bucket).
    tokens: f64,
    refilled: Instant,
    /// Refusals when last logged, and when.
    logged: (u64, Option<Instant>),
}

impl Default for TenantUse {
    fn default() -> TenantUse {
        TenantUse {
            hosts: 0,
            refused: Refused::default(),
            tokens: f64::MAX,
            refilled: Instant::now(),
            logged: (0, None),
        }
    }
}

impl TenantUse {
    /// May a host be added to memory under `limits`? `unknown`: the
    /// database has never seen it (only those count as new hosts).
    /// Counts the refusal.
    pub fn admit_host(&mut self, limits: &TenantLimits, unknown: bool) -> bool {
        if self.hosts >= limits.max_hosts {
            self.refused.hosts += 1;
            return false;
        }
        if !unknown {
            return true;
        }
        let burst = limits.max_new_hosts_per_minute as f64;
        let now = Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * burst / 60.0;
        self.tokens = (self.tokens.min(burst) + refill).min(burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            self.refused.new_hosts += 1;
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// A line to log about new refusals, at most once a minute.
    pub fn log_line(&mut self, tenant: &uuid::Uuid) -> Option<String> {
        let total = self.refused.total();
        if total == self.logged.0 || self.logged.1.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return None;
        }
        let r = self.refused;
        self.logged = (total, Some(Instant::now()));
        Some(format!(
            "tenant {tenant}: over its limits: {} hosts, {} new hosts, {} payloads refused so far",
            r.hosts, r.new_hosts, r.bytes
        ))
    }
}
