//! OpenStack Keystone (identity API v3) as a source of access: a request's
//! `X-Auth-Token` is validated with `GET {keystone_url}/auth/tokens`, its
//! project is the Opticon tenant and its roles the level. Validations are
//! cached by a hash of the token (never the token) for the shorter of
//! `cache_ttl` and the token's expiry, refusals for `negative_ttl`; when
//! Keystone cannot be reached, tokens still cached are served and others
//! refused with 503 (fail closed). Plain HTTP: a TLS Keystone is reached
//! through a local TLS proxy.

use super::auth::Access;
use crate::conf::{self, Dict, Node, ValueError};
use crate::svc::httpc::{ClientError, Endpoint};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Keystone settings (`auth { ... }` of opticon-api.conf).
#[derive(Debug, Clone, PartialEq)]
pub struct KeystoneConfig {
    /// The identity API, ending in `/v3`.
    pub url: String,
    /// Seconds a validated token is believed at most.
    pub cache_ttl: i64,
    /// Seconds a refused token stays refused.
    pub negative_ttl: i64,
    /// Seconds a call to Keystone may take.
    pub timeout: Duration,
    /// Tokens cached at most (validated and refused together).
    pub cache_size: usize,
    /// A service token to validate with (else a token validates itself).
    pub service_token: Option<String>,
    /// Role names giving administration, editing and viewing.
    pub admin_roles: Vec<String>,
    /// Role names that may change a tenant's settings.
    pub edit_roles: Vec<String>,
    /// Role names that may only read.
    pub view_roles: Vec<String>,
    /// Projects whose admin-role tokens are Opticon administrators.
    pub admin_projects: Vec<String>,
}

fn names(doc: &Dict, key: &str, default: &[&str]) -> Result<Vec<String>, ValueError> {
    match doc.path(key) {
        None => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(Node::Str(s)) => Ok(vec![s.clone()]),
        Some(Node::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    ValueError::new(key, format!("{} is not a name", i.to_json(false)))
                })
            })
            .collect(),
        Some(other) => Err(ValueError::new(
            key,
            format!("{} is not a list of names", other.to_json(false)),
        )),
    }
}

impl KeystoneConfig {
    /// From `auth`: `None` unless `auth_method` is `openstack` or `both`
    /// (or, as in the original, a `keystone_url` is given).
    pub fn from_dict(doc: &Dict) -> Result<Option<KeystoneConfig>, ValueError> {
        let method = doc.path("auth/auth_method").and_then(Node::as_str);
        let url = doc.path("auth/keystone_url").and_then(Node::as_str);
        match (method, url) {
            (None | Some("internal"), None) => return Ok(None),
            (Some("internal"), Some(_)) => return Ok(None),
            (Some("openstack" | "both") | None, Some(_)) => {}
            (Some("openstack" | "both"), None) => {
                return Err(ValueError::new(
                    "auth/keystone_url",
                    "missing: auth_method openstack needs the Keystone URL",
                ))
            }
            (Some(other), _) => {
                return Err(ValueError::new(
                    "auth/auth_method",
                    format!("{other:?} is not internal, openstack or both"),
                ))
            }
        }
        let mut url = url.unwrap_or_default().trim_end_matches('/').to_string();
        if !url.ends_with("/v3") {
            url.push_str("/v3");
        }
        Endpoint::parse(&url).map_err(|e| ValueError::new("auth/keystone_url", e.to_string()))?;
        Ok(Some(KeystoneConfig {
            url,
            cache_ttl: conf::positive(doc, "auth/cache_ttl", 300)? as i64,
            negative_ttl: conf::positive(doc, "auth/negative_ttl", 30)? as i64,
            timeout: Duration::from_secs(conf::positive(doc, "auth/timeout", 5)?),
            cache_size: conf::positive(doc, "auth/cache_size", 10_000)? as usize,
            service_token: doc
                .path("auth/service_token")
                .and_then(Node::as_str)
                .map(str::to_string),
            admin_roles: names(doc, "auth/roles/admin", &["admin"])?,
            edit_roles: names(doc, "auth/roles/edit", &["member", "manager"])?,
            view_roles: names(doc, "auth/roles/view", &["reader"])?,
            admin_projects: names(doc, "auth/admin_projects", &[])?,
        }))
    }
}

/// Why a Keystone token gives no access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Keystone does not know the token, or it expired (401).
    Invalid,
    /// The token is scoped to no project (403).
    Unscoped,
    /// The project is no Opticon tenant (403), by id.
    NotATenant(String),
    /// None of the token's roles is mapped to a level (403).
    NoRole,
    /// Keystone cannot be reached and the token is not cached (503).
    Unavailable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid => {
                f.write_str("the Keystone token is not valid (expired, revoked or unknown)")
            }
            Refusal::Unscoped => f.write_str(
                "the Keystone token is not scoped to a project; ask for a project-scoped token",
            ),
            Refusal::NotATenant(p) => write!(f, "project {p} is no Opticon tenant"),
            Refusal::NoRole => f.write_str("none of the token's roles gives access to Opticon"),
            Refusal::Unavailable(why) => write!(f, "Keystone cannot be reached ({why}); try again"),
        }
    }
}

/// A validated token: the access it gives and the project it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// What the token may do.
    pub access: Access,
    /// The project (the tenant) it is scoped to.
    pub project: Uuid,
}

#[derive(Debug, Clone)]
enum Entry {
    Valid(Validated, Instant),
    Refused(Refusal, Instant),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct KeystoneStats {
    /// Calls made to Keystone.
    pub validations: AtomicU64,
    /// Answers from the cache.
    pub cache_hits: AtomicU64,
    /// Tokens refused (any reason).
    pub refused: AtomicU64,
    /// Calls that found Keystone unreachable or failing.
    pub unavailable: AtomicU64,
}

/// The validator with its cache.
#[derive(Debug)]
pub struct Keystone {
    cfg: KeystoneConfig,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    last_outage_log: Mutex<Option<Instant>>,
    /// Counters.
    pub stats: KeystoneStats,
}

impl Keystone {
    /// A validator for `cfg`.
    pub fn new(cfg: KeystoneConfig) -> Keystone {
        Keystone {
            cfg,
            cache: Mutex::new(HashMap::new()),
            last_outage_log: Mutex::new(None),
            stats: KeystoneStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &KeystoneConfig {
        &self.cfg
    }

    fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let mut e = Endpoint::parse(&self.cfg.url)?;
        e.timeout = self.cfg.timeout;
        Ok(e)
    }

    /// The access `token` gives; `is_tenant` tells whether a project id is
    /// an Opticon tenant.
    pub fn validate(
        &self,
        token: &str,
        is_tenant: impl Fn(Uuid) -> bool,
    ) -> Result<Validated, Refusal> {
        let key = crate::crypto::sha256(token.as_bytes());
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock() {
            match cache.get(&key) {
                Some(Entry::Valid(v, until)) if *until > now => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(v.clone());
                }
                Some(Entry::Refused(r, until)) if *until > now => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(r.clone());
                }
                _ => {}
            }
        }
        self.stats.validations.fetch_add(1, Ordering::Relaxed);
        let outcome = self.ask(token, &is_tenant);
        let entry = match &outcome {
            Ok((v, expires)) => {
                let left = (expires - crate::model::unix_now()).clamp(0, self.cfg.cache_ttl);
                Some(Entry::Valid(
                    v.clone(),
                    now + Duration::from_secs(left as u64),
                ))
            }
            // An outage is not remembered: the next request asks again.
            Err(Refusal::Unavailable(_)) => None,
            Err(r) => Some(Entry::Refused(
                r.clone(),
                now + Duration::from_secs(self.cfg.negative_ttl as u64),
            )),
        };
        if let (Some(entry), Ok(mut cache)) = (entry, self.cache.lock()) {
            if cache.len() >= self.cfg.cache_size {
                cache.retain(|_, e| match e {
                    Entry::Valid(_, t) | Entry::Refused(_, t) => *t > now,
                });
                if cache.len() >= self.cfg.cache_size {
                    cache.clear();
                }
            }
            cache.insert(key, entry);
        }
        if outcome.is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        outcome.map(|(v, _)| v)
    }

    fn outage(&self, why: String) -> Refusal {
        self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_outage_log.lock() {
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last = Some(Instant::now());
                crate::svc::log::err(&format!(
                    "Keystone at {} cannot be reached: {why} (tokens not cached are refused)",
                    self.cfg.url
                ));
            }
        }
        Refusal::Unavailable(why)
    }

    fn ask(
        &self,
        token: &str,
        is_tenant: &impl Fn(Uuid) -> bool,
    ) -> Result<(Validated, i64), Refusal> {
        let asker = self.cfg.service_token.as_deref().unwrap_or(token);
        let tok = self.get_json(
            "/auth/tokens",
            &[("X-Auth-Token", asker), ("X-Subject-Token", token)],
        )?;
        let expires = tok
            .path("token/expires_at")
            .and_then(Node::as_str)
            .and_then(crate::db::time::parse_iso)
            .ok_or_else(|| self.outage("its answer has no token/expires_at".into()))?;
        if expires <= crate::model::unix_now() {
            return Err(Refusal::Invalid);
        }
        let Some(project) = tok.path("token/project/id").and_then(Node::as_str) else {
            return Err(Refusal::Unscoped);
        };
        let tenant =
            Uuid::parse_str(project).map_err(|_| Refusal::NotATenant(project.to_string()))?;
        if !is_tenant(tenant) {
            return Err(Refusal::NotATenant(project.to_string()));
        }
        let roles: Vec<String> = match tok.path("token/roles") {
            Some(Node::Array(r)) => r
                .iter()
                .filter_map(|x| {
                    x.path("name")
                        .and_then(Node::as_str)
                        .map(str::to_ascii_lowercase)
                })
                .collect(),
            _ => Vec::new(),
        };
        let has = |set: &[String]| {
            roles
                .iter()
                .any(|r| set.iter().any(|s| s.eq_ignore_ascii_case(r)))
        };
        let admin_project = self
            .cfg
            .admin_projects
            .iter()
            .any(|p| Uuid::parse_str(p).is_ok_and(|p| p == tenant) || p == project);
        let name = tok
            .path("token/user/name")
            .and_then(Node::as_str)
            .unwrap_or("keystone")
            .to_string();
        let access = if has(&self.cfg.admin_roles) && admin_project {
            Access::Admin
        } else if has(&self.cfg.admin_roles) || has(&self.cfg.edit_roles) {
            Access::User {
                name,
                tenant,
                read_only: false,
            }
        } else if has(&self.cfg.view_roles) {
            Access::User {
                name,
                tenant,
                read_only: true,
            }
        } else {
            return Err(Refusal::NoRole);
        };
        Ok((
            Validated {
                access,
                project: tenant,
            },
            expires,
        ))
    }

    /// A `GET` of Keystone answered in JSON: 401, 403 and 404 refuse the
    /// token; anything else that is not 200 is an outage.
    fn get_json(&self, path: &str, headers: &[(&str, &str)]) -> Result<Node, Refusal> {
        let endpoint = self.endpoint().map_err(|e| self.outage(e.to_string()))?;
        let mut all = headers.to_vec();
        all.push(("Accept", "application/json"));
        let reply = endpoint
            .exchange("GET", path, &all, None)
            .map_err(|e| self.outage(e.to_string()))?;
        match reply.status {
            200 => {}
            401 | 403 | 404 => return Err(Refusal::Invalid),
            s => return Err(self.outage(format!("it answered {s}"))),
        }
        conf::parse(&reply.body)
            .map(Node::Dict)
            .map_err(|e| self.outage(format!("its answer is not JSON: {e}")))
    }

    /// The user's projects that are Opticon tenants, from
    /// `GET /v3/auth/projects` with their token (for `/token?projects`).
    pub fn projects(
        &self,
        token: &str,
        is_tenant: impl Fn(Uuid) -> bool,
    ) -> Result<Vec<Uuid>, Refusal> {
        let doc = self.get_json("/auth/projects", &[("X-Auth-Token", token)])?;
        Ok(match doc.path("projects") {
            Some(Node::Array(list)) => list
                .iter()
                .filter_map(|p| p.path("id").and_then(Node::as_str))
                .filter_map(|id| Uuid::parse_str(id).ok())
                .filter(|t| is_tenant(*t))
                .collect(),
            _ => Vec::new(),
        })
    }

    /// Log in at Keystone with a password, scoped to a project (name or
    /// id) in a domain: the token from `X-Subject-Token`. The dashboard
    /// logs in through this, since its page may talk to its own origin
    /// only.
    pub fn password_login(
        &self,
        user: &str,
        password: &str,
        project: &str,
        domain: &str,
    ) -> Result<String, Refusal> {
        use crate::svc::keystone::{password_login, Login};
        let endpoint = self.endpoint().map_err(|e| self.outage(e.to_string()))?;
        match password_login(&endpoint, user, password, project, domain) {
            Ok(Login::Token(t)) => Ok(t),
            Ok(Login::Refused(_)) => Err(Refusal::Invalid),
            Ok(Login::Failed(s)) => Err(self.outage(format!("it answered {s}"))),
            Err(e) => Err(self.outage(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keystone_times() {
        assert_eq!(crate::db::time::parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            crate::db::time::parse_iso("2026-12-01T10:00:00.000000Z"),
            Some(1_796_119_200)
        );
        assert_eq!(crate::db::time::parse_iso("garbage"), None);
    }
}
