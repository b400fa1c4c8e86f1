//! `/login` and `/user/NAME`: internal users and their sessions.

use super::auth::{self};
use super::error::{ApiError, Reply};
use super::http::Request;
use super::input::{body, text_field};
use super::routes::Api;
use crate::conf::{Dict, Node};
use crate::db::views;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use uuid::Uuid;

impl Api {
    /// `POST /login`: a session token, or 403 as the original. Failed
    /// attempts are limited per source address and per user name; a
    /// refused attempt costs no password hashing.
    pub(super) fn login(&self, req: &Request, client: IpAddr) -> Reply {
        let b = body(req)?;
        let (Some(user), Some(password)) = (text_field(&b, "username"), text_field(&b, "password"))
        else {
            return Err(ApiError::BadRequest(
                "username and password are required".into(),
            ));
        };
        let keys = [format!("addr {client}"), format!("user {user}")];
        let limits = &self.shared.logins;
        if let Err(after) = limits.check(&keys) {
            return Err(ApiError::TooManyLogins(after));
        }
        match self.store.login(&user, &password)? {
            Some(token) => Ok(views::wrap("token", Node::Str(token))),
            None => {
                limits.failed(&keys);
                Err(ApiError::LoginFailed)
            }
        }
    }

    /// `POST /login/keystone`: a Keystone token for a user name, password
    /// and project (name or id; domain default `Default`), asked of
    /// Keystone by the API so that the dashboard talks to its own origin
    /// only. The token is then sent as `X-Auth-Token`.
    pub(super) fn keystone_login(&self, req: &Request) -> Reply {
        let Some(ks) = &self.keystone else {
            return Err(ApiError::NotFound("Keystone is not configured".into()));
        };
        let b = body(req)?;
        let (Some(user), Some(password), Some(project)) = (
            text_field(&b, "username"),
            text_field(&b, "password"),
            text_field(&b, "project"),
        ) else {
            return Err(ApiError::BadRequest(
                "username, password and project are required".into(),
            ));
        };
        let domain = text_field(&b, "domain").unwrap_or_else(|| "Default".into());
        let token = ks
            .password_login(&user, &password, &project, &domain)
            .map_err(ApiError::Keystone)?;
        let mut d = Dict::new();
        d.insert("token", Node::Str(token));
        d.insert("header", Node::Str("X-Auth-Token".into()));
        Ok(Node::Dict(d))
    }

    /// `GET /auth/methods`: how one logs in here, for the dashboard's
    /// login page.
    pub(super) fn auth_methods(&self) -> Node {
        let mut methods = Vec::new();
        if self.cfg.internal {
            methods.push(Node::Str("internal".into()));
        }
        if self.keystone.is_some() {
            methods.push(Node::Str("openstack".into()));
        }
        views::wrap("methods", Node::Array(methods))
    }

    pub(super) fn user(&self, method: &str, name: &str, req: &Request) -> Reply {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::BadRequest(format!("{name:?} is not a user name")));
        }
        match method {
            "PUT" | "POST" => {
                let b = body(req)?;
                let existing = self.store.user(name);
                if method == "POST" && existing.is_none() {
                    return Err(ApiError::NotFound(format!("user {name} not found")));
                }
                let hash = match (text_field(&b, "password"), &existing) {
                    (Some(p), _) => {
                        auth::hash_password(&p).map_err(|e| ApiError::Internal(e.to_string()))?
                    }
                    (None, Some(u)) => u.hash.clone(),
                    (None, None) => {
                        return Err(ApiError::BadRequest("password is required".into()))
                    }
                };
                let admin = match text_field(&b, "level").as_deref() {
                    Some("ADMIN") => true,
                    Some("USER") => false,
                    None => existing.as_ref().is_some_and(|u| u.admin),
                    Some(other) => {
                        return Err(ApiError::BadRequest(format!(
                            "level {other:?} is not USER or ADMIN"
                        )))
                    }
                };
                let tenant = match text_field(&b, "tenant") {
                    Some(t) => Some(Uuid::parse_str(&t).map_err(|_| {
                        ApiError::BadRequest(format!("tenant {t:?} is not a UUID"))
                    })?),
                    None => existing.as_ref().and_then(|u| u.tenant),
                };
                if tenant.is_none() && !admin {
                    return Err(ApiError::BadRequest("tenant is required".into()));
                }
                if let Some(t) = tenant {
                    self.db.tenant(t)?;
                }
                self.store.put_user(
                    name,
                    auth::User {
                        hash,
                        tenant,
                        admin,
                    },
                )?;
                if method == "PUT" {
                    // As the original answers a created or replaced user.
                    let mut ok = Dict::new();
                    ok.insert("result", Node::Str("ok".into()));
                    return Ok(Node::Dict(ok));
                }
                let mut d = Dict::new();
                d.insert("name", Node::Str(name.into()));
                if let Some(t) = tenant {
                    d.insert("tenant", Node::Str(t.to_string()));
                }
                d.insert(
                    "level",
                    Node::Str(if admin { "ADMIN" } else { "USER" }.into()),
                );
                Ok(views::wrap("user", Node::Dict(d)))
            }
            "DELETE" => {
                if !self.store.delete_user(name)? {
                    return Err(ApiError::NotFound(format!("user {name} not found")));
                }
                Ok(views::wrap("status", Node::Str("deleted".into())))
            }
            _ => Err(ApiError::Method),
        }
    }
}

/// Failed logins allowed in a burst, per source address and per name.
pub const LOGIN_BURST: f64 = 10.0;
/// Seconds for one more failed login to be allowed after the burst.
pub const LOGIN_REFILL_SECS: f64 = 15.0;
/// Addresses and names tracked at most (the fullest buckets go first).
const LOGIN_KEYS: usize = 8192;

/// Token buckets of failed logins: a burst of [`LOGIN_BURST`], then one
/// every [`LOGIN_REFILL_SECS`] (four a minute). Bounded in entries.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    buckets: std::sync::Mutex<HashMap<String, (f64, Instant)>>,
    /// Attempts refused with 429.
    pub refused: AtomicU64,
}

impl LoginLimiter {
    fn level(tokens: f64, at: Instant, now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() / LOGIN_REFILL_SECS).min(LOGIN_BURST)
    }

    /// May an attempt for `keys` go ahead? `Err(seconds)` to wait.
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let mut wait = 0.0f64;
        for k in keys {
            if let Some((tokens, at)) = buckets.get(k) {
                let level = Self::level(*tokens, *at, now);
                if level < 1.0 {
                    wait = wait.max((1.0 - level) * LOGIN_REFILL_SECS);
                }
            }
        }
        if wait > 0.0 {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(wait.ceil() as u64);
        }
        Ok(())
    }

    /// Count a failed attempt against each of `keys`.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        if buckets.len() + keys.len() > LOGIN_KEYS {
            buckets.retain(|_, (t, at)| Self::level(*t, *at, now) < LOGIN_BURST);
            while buckets.len() + keys.len() > LOGIN_KEYS {
                let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                buckets.remove(&oldest);
            }
        }
        for k in keys {
            let level = buckets
                .get(k)
                .map_or(LOGIN_BURST, |(t, at)| Self::level(*t, *at, now));
            buckets.insert(k.clone(), ((level - 1.0).max(0.0), now));
        }
    }
}
