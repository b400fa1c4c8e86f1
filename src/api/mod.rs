//! `opticon-api`: the original's HTTP JSON API over the database the
//! collector writes. See `man 8 opticon-api` for every route.
//!
//! Requests are read by [`server`] and answered by [`Api::handle`]: it
//! works out who is asking ([`auth`]), matches the route, checks the
//! caller may see the tenant, and answers in the original's JSON shapes
//! (the same [`crate::db::views`] `opticon-db --json` prints).

pub mod auth;
pub mod graphs;
pub mod http;
pub mod server;

use crate::collector::{METRICS_FILE, OVERVIEW_FILE, SESSIONS_FILE, SUMMARY_FILE};
use crate::conf::{self, Dict, Node};
use crate::db::meters::{self, MeterDef};
use crate::db::tenant::HOST_LOG;
use crate::db::time::{iso, parse_time_spec};
use crate::db::{host, log as hostlog, views, Db, DbError};
use crate::model::json::encode_host;
use crate::model::{Cmp, Level, TenantKey, Watcher};
use crate::svc;
use auth::{Access, Cidr, Store};
use http::{Request, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The API's settings (`opticon-api.conf`).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Database root.
    pub db: PathBuf,
    /// The admin token.
    pub admin_token: Option<String>,
    /// Where the admin token is accepted from.
    pub admin_hosts: Vec<Cidr>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub proxies: Vec<Cidr>,
    /// Origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// Server limits.
    pub limits: server::Limits,
}

fn networks(doc: &Dict, key: &str, default: &[&str]) -> Result<Vec<Cidr>, String> {
    match doc.path(key) {
        None => default.iter().map(|s| s.parse()).collect(),
        Some(Node::Array(items)) => items
            .iter()
            .map(|n| match n.as_str() {
                Some(s) => s.parse().map_err(|e| format!("{key}: {e}")),
                None => Err(format!("{key}: {} is not an address", n.to_json(false))),
            })
            .collect(),
        Some(Node::Str(s)) => Ok(vec![s.parse().map_err(|e| format!("{key}: {e}"))?]),
        Some(other) => Err(format!("{key}: {} is not a list", other.to_json(false))),
    }
}

impl ApiConfig {
    /// Read the settings from a parsed config document.
    pub fn from_dict(doc: &Dict) -> Result<ApiConfig, String> {
        let admin_token = match doc.path("auth/admin_token") {
            None => None,
            Some(Node::Str(t)) if Uuid::parse_str(t).is_ok() => Some(t.to_ascii_lowercase()),
            Some(other) => {
                return Err(format!(
                    "auth/admin_token: {} is not a UUID",
                    other.to_json(false)
                ))
            }
        };
        let cors_origins = match doc.path("cors/origins") {
            None => Vec::new(),
            Some(Node::Array(items)) => items
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            Some(Node::Str(s)) => vec![s.clone()],
            Some(other) => {
                return Err(format!(
                    "cors/origins: {} is not a list",
                    other.to_json(false)
                ))
            }
        };
        Ok(ApiConfig {
            listen: conf::listen_address(doc, 8888)?,
            db: PathBuf::from(
                doc.path("database/path")
                    .and_then(Node::as_str)
                    .unwrap_or("/var/opticon/db"),
            ),
            admin_token,
            admin_hosts: networks(doc, "auth/admin_hosts", &["127.0.0.1", "::1"])?,
            proxies: networks(doc, "network/proxies", &[])?,
            cors_origins,
            limits: server::Limits {
                workers: conf::positive(doc, "network/workers", 8)? as usize,
                connections: conf::positive(doc, "network/connections", 1024)? as usize,
                per_address: conf::positive(doc, "network/per_address", 64)? as usize,
                request_timeout: Duration::from_secs(conf::positive(doc, "network/timeout", 10)?),
                write_timeout: Duration::from_secs(conf::positive(doc, "network/timeout", 10)?),
            },
        })
    }
}

/// A handler's failure, turned into a status and the original's error body.
#[derive(Debug)]
pub enum ApiError {
    /// 400, with what is wrong.
    BadRequest(String),
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: valid credentials, not allowed.
    Forbidden,
    /// 404, with what was not found.
    NotFound(String),
    /// 405.
    Method,
    /// 409, with what conflicts.
    Conflict(String),
    /// 500, logged.
    Internal(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            DbError::Exists(what) => ApiError::Conflict(format!("{what} already exists")),
            DbError::Invalid(what) => ApiError::BadRequest(what),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<auth::AuthError> for ApiError {
    fn from(e: auth::AuthError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    fn response(&self) -> Response {
        match self {
            ApiError::BadRequest(m) => Response::error(400, m),
            ApiError::Unauthenticated => Response::error(
                401,
                "Authentication required: send X-Opticon-Token (log in with POST /login)",
            ),
            ApiError::Forbidden => Response::error(403, "Permission denied"),
            ApiError::NotFound(m) => Response::error(404, m),
            ApiError::Method => Response::error(405, "Method not allowed"),
            ApiError::Conflict(m) => Response::error(409, m),
            ApiError::Internal(m) => {
                svc::log::err(m);
                Response::error(500, "Internal server error")
            }
        }
    }
}

type Reply = Result<Node, ApiError>;

/// Latest records kept as text, at most.
const LATEST_CACHE: usize = 8192;

/// A host's newest day file, its length and time, when a record was made.
type DayStamp = (PathBuf, u64, SystemTime);
/// Latest records by tenant and host.
type LatestCache = HashMap<(Uuid, Uuid), (DayStamp, Arc<str>)>;

/// The API over one database.
pub struct Api {
    cfg: ApiConfig,
    db: Db,
    store: Store,
    global: Vec<MeterDef>,
    /// Latest records as JSON text, valid while the stamp holds.
    latest: Mutex<LatestCache>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn uuid(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("{what} {text:?} not found")))
}

fn body(req: &Request) -> Result<Dict, ApiError> {
    if req.body.is_empty() {
        return Ok(Dict::new());
    }
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::BadRequest("request body is not UTF-8".into()))?;
    conf::parse(text).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// The object under `key` in the request body (empty when absent).
fn section(req: &Request, key: &str) -> Result<Dict, ApiError> {
    Ok(body(req)?
        .get(key)
        .and_then(Node::as_dict)
        .cloned()
        .unwrap_or_default())
}

fn read_json(path: &Path) -> Reply {
    match std::fs::read_to_string(path) {
        Ok(text) => conf::parse(&text)
            .map(Node::Dict)
            .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Node::Dict(Dict::new())),
        Err(e) => Err(ApiError::Internal(format!("{}: {e}", path.display()))),
    }
}

fn text_field(d: &Dict, key: &str) -> Option<String> {
    d.get(key).and_then(Node::as_str).map(str::to_string)
}

impl Api {
    /// The API over `cfg.db`, with the global meter definitions.
    pub fn new(cfg: ApiConfig, global: Vec<MeterDef>) -> Result<Api, String> {
        let store = Store::open(&cfg.db).map_err(|e| e.to_string())?;
        Ok(Api {
            db: Db::new(&cfg.db),
            cfg,
            store,
            global,
            latest: Mutex::new(HashMap::new()),
        })
    }

    /// The client's address: the peer, or the last `X-Forwarded-For`
    /// entry when the peer is a configured proxy.
    fn client(&self, req: &Request, peer: SocketAddr) -> IpAddr {
        if self.cfg.proxies.iter().any(|p| p.contains(peer.ip())) {
            if let Some(ip) = req
                .header("x-forwarded-for")
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
            {
                return ip;
            }
        }
        peer.ip()
    }

    fn access(&self, req: &Request, client: IpAddr) -> Access {
        let Some(token) = req.header("x-opticon-token") else {
            return Access::Guest;
        };
        if let Some(a) = self.store.session(token) {
            return a;
        }
        if let Some(admin) = &self.cfg.admin_token {
            let from_admin_host = self.cfg.admin_hosts.iter().any(|n| n.contains(client));
            if auth::same(token.to_ascii_lowercase().as_bytes(), admin.as_bytes())
                && from_admin_host
            {
                return Access::Admin;
            }
        }
        Access::Guest
    }

    /// Answer one request from `peer`.
    pub fn handle(&self, req: &Request, peer: SocketAddr) -> Response {
        let started = Instant::now();
        let client = self.client(req, peer);
        let access = self.access(req, client);
        let mut response = if req.method == "OPTIONS" {
            Response {
                status: 204,
                content_type: "application/json",
                headers: Vec::new(),
                body: Vec::new(),
            }
        } else {
            match self.route(req, &access, client) {
                Ok(Routed::Json(node)) => Response::json(200, node.to_json(true) + "\n"),
                Ok(Routed::Raw(text)) => Response::json(200, text),
                Ok(Routed::Text(text)) => Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    headers: Vec::new(),
                    body: text.into_bytes(),
                },
                Err(e) => e.response(),
            }
        };
        if let Some(origin) = req.header("origin") {
            if self
                .cfg
                .cors_origins
                .iter()
                .any(|o| o == origin || o == "*")
            {
                response
                    .headers
                    .push(("Access-Control-Allow-Origin", origin.to_string()));
                response.headers.push((
                    "Access-Control-Allow-Methods",
                    "GET, POST, PUT, DELETE, OPTIONS".into(),
                ));
                response.headers.push((
                    "Access-Control-Allow-Headers",
                    "Content-Type, X-Opticon-Token".into(),
                ));
            }
        }
        svc::log::debug(&format!(
            "{client} {} {} {} {} {:.1} ms",
            access.level(),
            response.status,
            req.method,
            req.path,
            started.elapsed().as_secs_f64() * 1e3
        ));
        response
    }

    fn route(&self, req: &Request, access: &Access, client: IpAddr) -> Result<Routed, ApiError> {
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let m = req.method.as_str();
        let json = |r: Reply| r.map(Routed::Json);
        match (m, segs.as_slice()) {
            ("GET", ["obligatory-dancing-bears"]) => json(Ok(views::wrap(
                "bear",
                Node::Str("\\(^(oo)^)/ \\(^(oo)^)/ \\(^(oo)^)/".into()),
            ))),
            ("POST", ["login"]) => json(self.login(req)),
            ("GET", ["metrics"]) => {
                let allowed = *access == Access::Admin
                    || self.cfg.admin_hosts.iter().any(|n| n.contains(client));
                if !allowed {
                    return Err(ApiError::Forbidden);
                }
                Ok(Routed::Text(self.prometheus()?))
            }
            _ if *access == Access::Guest => Err(ApiError::Unauthenticated),
            ("GET", []) => json(Ok(views::tenant_list(&self.db, |t| access.may(t))?)),
            ("GET", ["token"]) => {
                let tenants = match access {
                    Access::User { tenant, .. } => vec![Node::Str(tenant.to_string())],
                    _ => Vec::new(),
                };
                let mut d = Dict::new();
                d.insert("userlevel", Node::Str(access.level().into()));
                d.insert("tenants", Node::Array(tenants));
                json(Ok(views::wrap("token", Node::Dict(d))))
            }
            ("GET", ["session"]) => {
                self.admin(access)?;
                json(read_json(&self.db.root().join(SESSIONS_FILE)))
            }
            (_, ["user", name]) => {
                self.admin(access)?;
                json(self.user(m, name, req))
            }
            (_, ["any", "host", rest @ ..]) => {
                self.admin(access)?;
                json(self.any_host(m, rest))
            }
            (_, [t, rest @ ..]) => {
                let t = uuid(t, "tenant")?;
                // Creating a tenant needs admin; everything else the tenant.
                if (m == "POST" && rest.is_empty()) || (m == "DELETE" && rest.is_empty()) {
                    self.admin(access)?;
                } else if !access.may(t) {
                    return Err(ApiError::Forbidden);
                }
                // Records and the overview go out as text, never parsed.
                match (m, rest) {
                    ("GET", ["host", "overview"]) => {
                        self.db.tenant(t)?;
                        Ok(Routed::Raw(self.overview_text(t)?))
                    }
                    ("GET", ["host", h]) => {
                        Ok(Routed::Raw(self.record(t, uuid(h, "host")?, None)?))
                    }
                    ("GET", ["host", h, "time", spec]) => Ok(Routed::Raw(self.record(
                        t,
                        uuid(h, "host")?,
                        Some(Self::time(spec)?),
                    )?)),
                    _ => json(self.tenant_route(m, t, rest, req, access)),
                }
            }
            _ => Err(ApiError::Method),
        }
    }

    fn admin(&self, access: &Access) -> Result<(), ApiError> {
        match access {
            Access::Admin => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }

    fn login(&self, req: &Request) -> Reply {
        let b = body(req)?;
        let (Some(user), Some(password)) = (text_field(&b, "username"), text_field(&b, "password"))
        else {
            return Err(ApiError::BadRequest(
                "username and password are required".into(),
            ));
        };
        match self.store.login(&user, &password)? {
            Some(token) => Ok(views::wrap("token", Node::Str(token))),
            None => Err(ApiError::Unauthenticated),
        }
    }

    fn user(&self, method: &str, name: &str, req: &Request) -> Reply {
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

    /// The tenant a host belongs to, by looking at every tenant.
    fn tenant_of(&self, h: Uuid) -> Result<Uuid, ApiError> {
        for t in self.db.tenant_ids()? {
            if self.db.host_dir(t, h).is_dir() {
                return Ok(t);
            }
        }
        Err(ApiError::NotFound(format!("host {h} not found")))
    }

    fn any_host(&self, method: &str, rest: &[&str]) -> Reply {
        if method != "GET" {
            return Err(ApiError::Method);
        }
        match rest {
            ["overview"] => {
                let mut all = Dict::new();
                for t in self.db.tenant_ids()? {
                    let doc = read_json(&self.db.tenant_dir(t).join(OVERVIEW_FILE))?;
                    if let Some(Node::Dict(hosts)) = doc.path("overview") {
                        for (h, entry) in hosts.iter() {
                            let mut e = entry.as_dict().cloned().unwrap_or_default();
                            e.insert("tenant", Node::Str(t.to_string()));
                            all.insert(h.to_string(), Node::Dict(e));
                        }
                    }
                }
                Ok(views::wrap("overview", Node::Dict(all)))
            }
            [h] => {
                let h = uuid(h, "host")?;
                let t = self.tenant_of(h)?;
                let text = self.record(t, h, None)?;
                conf::parse(&text)
                    .map(Node::Dict)
                    .map_err(|e| ApiError::Internal(e.to_string()))
            }
            [h, "tenant"] => {
                let h = uuid(h, "host")?;
                Ok(views::wrap(
                    "tenant",
                    Node::Str(self.tenant_of(h)?.to_string()),
                ))
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    /// The tenant overview file as the collector wrote it.
    fn overview_text(&self, t: Uuid) -> Result<String, ApiError> {
        let path = self.db.tenant_dir(t).join(OVERVIEW_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("{\"overview\": {}}\n".into()),
            Err(e) => Err(ApiError::Internal(format!("{}: {e}", path.display()))),
        }
    }

    /// A host's record (the latest, or the one at a time) as host JSON.
    /// The latest is cached until the host's newest day file changes.
    fn record(&self, t: Uuid, h: Uuid, at: Option<i64>) -> Result<String, ApiError> {
        let dir = self.db.require_host(t, h)?;
        let stamp = match at {
            Some(_) => None,
            None => host::day_files(&dir)?.pop().and_then(|d| {
                let meta = std::fs::metadata(&d.path).ok()?;
                Some((d.path, meta.len(), meta.modified().ok()?))
            }),
        };
        if let Some(stamp) = &stamp {
            if let Ok(cache) = self.latest.lock() {
                if let Some((s, text)) = cache.get(&(t, h)) {
                    if s == stamp {
                        return Ok(text.to_string());
                    }
                }
            }
        }
        let text = self.record_text(&dir, at)?;
        if let (Some(stamp), Ok(mut cache)) = (stamp, self.latest.lock()) {
            if cache.len() >= LATEST_CACHE {
                cache.clear();
            }
            cache.insert((t, h), (stamp, Arc::from(text.as_str())));
        }
        Ok(text)
    }

    fn record_text(&self, dir: &Path, at: Option<i64>) -> Result<String, ApiError> {
        let found = match at {
            Some(at) => host::at(dir, at)?,
            None => host::latest(dir)?,
        };
        let Some((_, meters)) = found else {
            return Err(ApiError::NotFound(
                "No current record found for host".into(),
            ));
        };
        Ok(encode_host(&meters, true) + "\n")
    }

    fn tenant_route(
        &self,
        m: &str,
        t: Uuid,
        rest: &[&str],
        req: &Request,
        access: &Access,
    ) -> Reply {
        let dir = self.db.tenant_dir(t);
        match (m, rest) {
            ("GET", []) => {
                let mut doc = self.db.tenant_doc(t)?;
                doc.remove("meter");
                Ok(views::wrap("tenant", Node::Dict(doc)))
            }
            ("POST", []) => {
                let spec = section(req, "tenant")?;
                let key = match text_field(&spec, "key") {
                    Some(k) => Some(
                        TenantKey::from_base64(&k)
                            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    ),
                    None => None,
                };
                let name = text_field(&spec, "name").unwrap_or_default();
                let created = self.db.create_tenant(Some(t), &name, key)?;
                let mut d = Dict::new();
                d.insert("key", Node::Str(created.key.to_base64()));
                d.insert("name", Node::Str(created.name));
                Ok(views::wrap("tenant", Node::Dict(d)))
            }
            ("PUT", []) => {
                self.db.tenant(t)?;
                let spec = section(req, "tenant")?;
                if let Some(k) = text_field(&spec, "key") {
                    let key = TenantKey::from_base64(&k)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    self.db
                        .set_tenant_field(t, "key", Node::Str(key.to_base64()))?;
                }
                if spec.get("name").is_some() || spec.get("quota").is_some() {
                    self.admin(access)?;
                }
                if let Some(n) = text_field(&spec, "name") {
                    self.db.set_tenant_field(t, "name", Node::Str(n))?;
                }
                match spec.get("quota") {
                    None => {}
                    Some(Node::Int(q)) if *q >= 0 => {
                        self.db.set_tenant_field(t, "quota", Node::Int(*q))?
                    }
                    Some(_) => {
                        return Err(ApiError::BadRequest("quota must be a number of MB".into()))
                    }
                }
                let mut doc = self.db.tenant_doc(t)?;
                doc.remove("meter");
                Ok(views::wrap("tenant", Node::Dict(doc)))
            }
            ("DELETE", []) => {
                self.db.delete_tenant(t)?;
                Ok(views::wrap("deleted", Node::Str(t.to_string())))
            }
            ("GET", ["summary"]) => {
                self.db.tenant(t)?;
                Ok(views::wrap("summary", read_json(&dir.join(SUMMARY_FILE))?))
            }
            ("GET", ["quota"]) => Ok(views::quota_node(&self.db, t)?),
            ("GET", ["meta"]) => {
                let doc = self.db.tenant_doc(t)?;
                Ok(views::wrap(
                    "metadata",
                    doc.get("metadata")
                        .cloned()
                        .unwrap_or(Node::Dict(Dict::new())),
                ))
            }
            ("POST" | "PUT", ["meta"]) => {
                let b = body(req)?;
                let Some(Node::Dict(new)) = b.get("metadata") else {
                    return Err(ApiError::BadRequest("body needs a metadata object".into()));
                };
                let mut doc = self.db.tenant_doc(t)?;
                let mut meta = doc
                    .get("metadata")
                    .and_then(Node::as_dict)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in new.iter() {
                    meta.insert(k.to_string(), v.clone());
                }
                doc.insert("metadata", Node::Dict(meta.clone()));
                self.db.save_tenant_doc(t, &doc)?;
                Ok(views::wrap("metadata", Node::Dict(meta)))
            }
            ("GET", ["meter"]) => Ok(views::meter_list(&self.definitions(t, None)?)),
            ("POST" | "PUT", ["meter", id @ ..]) if !id.is_empty() => {
                let id = id.join("/");
                let spec = section(req, "meter")?;
                let kind = text_field(&spec, "type").unwrap_or_else(|| "integer".into());
                let description = text_field(&spec, "description").unwrap_or_default();
                let unit = text_field(&spec, "unit").unwrap_or_default();
                let mut doc = self.db.tenant_doc(t)?;
                meters::set_meter(&mut doc, &id, &kind, &description, &unit)?;
                self.db.save_tenant_doc(t, &doc)?;
                let mut e = Dict::new();
                e.insert("type", Node::Str(kind));
                e.insert("description", Node::Str(description));
                e.insert("unit", Node::Str(unit));
                Ok(views::wrap("meter", views::wrap(&id, Node::Dict(e))))
            }
            ("DELETE", ["meter", id @ ..]) if !id.is_empty() => {
                let id = id.join("/");
                let mut doc = self.db.tenant_doc(t)?;
                if !meters::delete_meter(&mut doc, &id) {
                    return Err(ApiError::NotFound(format!(
                        "meter definition {id} not found"
                    )));
                }
                self.db.save_tenant_doc(t, &doc)?;
                Ok(views::wrap("deleted", Node::Str(id)))
            }
            ("GET", ["watcher"]) => Ok(views::watcher_list(&self.definitions(t, None)?)),
            ("POST" | "PUT", ["watcher", id @ ..]) if !id.is_empty() => {
                self.set_watchers(t, None, &id.join("/"), req)
            }
            ("DELETE", ["watcher", id @ ..]) if !id.is_empty() => {
                self.delete_watchers(t, None, &id.join("/"))
            }
            ("GET", ["host"]) => Ok(views::host_list(&views::hosts_usage(&self.db, t)?)),

            (_, ["host", h, more @ ..]) => {
                let h = uuid(h, "host")?;
                self.host_route(m, t, h, more, req)
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    fn definitions(&self, t: Uuid, h: Option<Uuid>) -> Result<Vec<MeterDef>, ApiError> {
        Ok(views::definitions(&self.db, &self.global, t, h)?)
    }

    fn set_watchers(&self, t: Uuid, h: Option<Uuid>, id: &str, req: &Request) -> Reply {
        let b = body(req)?;
        let Some(Node::Dict(levels)) = b.get("watcher") else {
            return Err(ApiError::BadRequest("body needs a watcher object".into()));
        };
        let defs = self.definitions(t, h)?;
        let Some(def) = defs.iter().find(|d| d.id == id) else {
            return Err(ApiError::BadRequest(format!(
                "meter {id} has no definition; create it first"
            )));
        };
        let mut doc = self.db.meter_doc(t, h)?;
        let mut count = 0;
        for (name, spec) in levels.iter() {
            let level: Level = name.parse().map_err(|_| {
                ApiError::BadRequest(format!("level {name:?} is not warning, alert or critical"))
            })?;
            let spec = spec.as_dict().cloned().unwrap_or_default();
            let cmp_text = text_field(&spec, "cmp").unwrap_or_else(|| {
                def.watchers
                    .iter()
                    .find(|w| w.level == level)
                    .map_or("gt", |w| w.cmp.as_str())
                    .to_string()
            });
            let cmp: Cmp = cmp_text.parse().map_err(|_| {
                ApiError::BadRequest(format!("cmp {cmp_text:?} is not lt, gt, eq or count"))
            })?;
            meters::check_cmp(&def.kind, cmp)?;
            let value_text = match spec.get("val") {
                Some(Node::Str(s)) => s.clone(),
                Some(Node::Int(i)) => i.to_string(),
                Some(Node::Frac(f)) => format!("{f}"),
                _ => return Err(ApiError::BadRequest(format!("{name}: val is required"))),
            };
            let value = meters::parse_value(&def.kind, cmp, &value_text)?;
            let weight = match spec.get("weight") {
                None => 1.0,
                Some(n) => n
                    .as_f64()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("{name}: weight must be a number >= 0"))
                    })?,
            };
            meters::set_watcher(
                &mut doc,
                id,
                &Watcher {
                    level,
                    cmp,
                    value,
                    weight,
                },
            )?;
            count += 1;
        }
        if count == 0 {
            return Err(ApiError::BadRequest("no watcher levels given".into()));
        }
        self.db.save_meter_doc(t, h, &doc)?;
        let defs = self.definitions(t, h)?;
        let one: Vec<MeterDef> = defs.into_iter().filter(|d| d.id == id).collect();
        Ok(views::watcher_list(&one))
    }

    fn delete_watchers(&self, t: Uuid, h: Option<Uuid>, id: &str) -> Reply {
        let mut doc = self.db.meter_doc(t, h)?;
        if !meters::delete_watcher(&mut doc, id, None) {
            return Err(ApiError::NotFound(format!("watcher on {id} not found")));
        }
        self.db.save_meter_doc(t, h, &doc)?;
        Ok(views::wrap("deleted", Node::Str(id.into())))
    }

    fn time(spec: &str) -> Result<i64, ApiError> {
        parse_time_spec(spec, unix_now())
            .map_err(|e| ApiError::BadRequest(format!("time {spec:?}: {e}")))
    }

    fn host_route(&self, m: &str, t: Uuid, h: Uuid, rest: &[&str], req: &Request) -> Reply {
        match (m, rest) {
            ("DELETE", []) => {
                self.db.delete_host(t, h)?;
                Ok(views::wrap(
                    "host",
                    views::wrap("deleted", Node::Str(h.to_string())),
                ))
            }
            ("GET", ["log"]) => {
                let dir = self.db.require_host(t, h)?;
                Ok(views::host_log(&hostlog::read(&dir.join(HOST_LOG))?))
            }

            ("GET", ["range", from, to]) => {
                self.range(t, h, Self::time(from)?, Self::time(to)?, req)
            }
            ("GET", ["watcher"]) => {
                self.db.require_host(t, h)?;
                Ok(views::watcher_list(&self.definitions(t, Some(h))?))
            }
            ("GET", ["graph"]) => {
                self.db.require_host(t, h)?;
                Ok(graphs::definitions())
            }
            ("GET", ["graph", g, d, span, n]) => {
                let dir = self.db.require_host(t, h)?;
                let (Ok(span), Ok(n)) = (span.parse::<i64>(), n.parse::<usize>()) else {
                    return Err(ApiError::BadRequest(
                        "span and points must be numbers".into(),
                    ));
                };
                graphs::data(&dir, g, d, span, n, unix_now()).map_err(|e| match e {
                    graphs::GraphError::Unknown => {
                        ApiError::NotFound(format!("graph {g}/{d} not found"))
                    }
                    graphs::GraphError::BadSpan => ApiError::BadRequest(
                        "span / points must be at least 60 s and points at most 4096".into(),
                    ),
                    graphs::GraphError::Db(e) => e.into(),
                })
            }
            ("POST" | "PUT", ["watcher", id @ ..]) if !id.is_empty() => {
                self.db.require_host(t, h)?;
                self.set_watchers(t, Some(h), &id.join("/"), req)
            }
            ("DELETE", ["watcher", id @ ..]) if !id.is_empty() => {
                self.db.require_host(t, h)?;
                self.delete_watchers(t, Some(h), &id.join("/"))
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    /// `{"range": {"from", "to", "series": {meter: [[time, value], ...]}}}`
    /// for `?meter=a,b`, or every numeric scalar meter of the host's
    /// latest record in the range.
    fn range(&self, t: Uuid, h: Uuid, from: i64, to: i64, req: &Request) -> Reply {
        if to < from {
            return Err(ApiError::BadRequest(
                "the range ends before it starts".into(),
            ));
        }
        if to - from > 366 * 86_400 {
            return Err(ApiError::BadRequest("a range is at most a year".into()));
        }
        let dir = self.db.require_host(t, h)?;
        let names: Vec<String> = match req.param("meter") {
            Some(list) => list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => match host::at(&dir, to)? {
                Some((_, meters)) => meters
                    .iter()
                    .filter(|(_, m)| matches!(m.value, crate::model::MeterValue::Scalar(_)))
                    .filter(|(_, m)| host::numeric(&m.value).is_some())
                    .map(|(n, _)| n.as_str().to_string())
                    .collect(),
                None => Vec::new(),
            },
        };
        let mut series = Dict::new();
        for name in names.iter().take(256) {
            let points = host::series(&dir, name, from, to)?
                .into_iter()
                .map(|(time, v)| Node::Array(vec![Node::Int(time), Node::Frac(v)]))
                .collect();
            series.insert(name.clone(), Node::Array(points));
        }
        let mut d = Dict::new();
        d.insert("from", Node::Str(iso(from)));
        d.insert("to", Node::Str(iso(to)));
        d.insert("series", Node::Dict(series));
        Ok(views::wrap("range", Node::Dict(d)))
    }

    /// The collector's metrics and the hosts by status per tenant, in the
    /// Prometheus text format.
    fn prometheus(&self) -> Result<String, ApiError> {
        use std::fmt::Write;
        let mut out = String::new();
        let metrics = read_json(&self.db.root().join(METRICS_FILE))?;
        let int = |key: &str| metrics.path(key).and_then(Node::as_int);
        let counters = [
            (
                "received",
                "opticon_collector_received_total",
                "counter",
                "Datagrams received.",
            ),
            (
                "accepted",
                "opticon_collector_accepted_total",
                "counter",
                "Datagrams accepted.",
            ),
            (
                "queue_drops",
                "opticon_collector_queue_drops_total",
                "counter",
                "Datagrams dropped at the full receive queue.",
            ),
            (
                "kernel_rcvbuf_errors",
                "opticon_kernel_udp_rcvbuf_errors_total",
                "counter",
                "UDP receive-buffer overflows counted by the kernel.",
            ),
            (
                "queue_depth",
                "opticon_collector_queue_depth",
                "gauge",
                "Datagrams waiting in the receive queue.",
            ),
            (
                "sessions",
                "opticon_collector_sessions",
                "gauge",
                "Open agent sessions.",
            ),
        ];
        for (key, name, kind, help) in counters {
            if let Some(v) = int(key) {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
                );
            }
        }
        if let Some(Node::Dict(reasons)) = metrics.path("rejected") {
            out.push_str("# HELP opticon_collector_rejected_total Datagrams rejected, by reason.\n# TYPE opticon_collector_rejected_total counter\n");
            for (reason, n) in reasons.iter() {
                let _ = writeln!(
                    out,
                    "opticon_collector_rejected_total{{reason=\"{reason}\"}} {}",
                    n.as_int().unwrap_or(0)
                );
            }
        }
        if let Some(ms) = metrics.path("write_cycle_ms").and_then(Node::as_f64) {
            let _ = write!(out, "# HELP opticon_collector_write_cycle_seconds Duration of the last write cycle.\n# TYPE opticon_collector_write_cycle_seconds gauge\nopticon_collector_write_cycle_seconds {}\n", ms / 1e3);
        }
        out.push_str(
            "# HELP opticon_hosts Hosts by tenant and status.\n# TYPE opticon_hosts gauge\n",
        );
        for t in self.db.tenant_ids()? {
            let summary = read_json(&self.db.tenant_dir(t).join(SUMMARY_FILE))?;
            for (key, status) in [
                ("ok", "OK"),
                ("warning", "WARN"),
                ("alert", "ALERT"),
                ("critical", "CRIT"),
                ("stale", "STALE"),
            ] {
                let n = summary.path(key).and_then(Node::as_int).unwrap_or(0);
                let _ = writeln!(
                    out,
                    "opticon_hosts{{tenant=\"{t}\",status=\"{status}\"}} {n}"
                );
            }
        }
        Ok(out)
    }
}

/// What a route answers.
enum Routed {
    Json(Node),
    /// JSON text made elsewhere (records, overviews).
    Raw(String),
    Text(String),
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    svc::cli::daemon_options(&mut o, "opticon-api");
    o.optopt(
        "m",
        "meter-config-path",
        "meter definitions (default /etc/opticon/opticon-meter.conf)",
        "FILE",
    );
    svc::cli::standard(&mut o);
    o
}

fn load(m: &getopts::Matches) -> Result<(ApiConfig, Vec<MeterDef>), String> {
    svc::cli::daemon_config("opticon-api", m, ApiConfig::from_dict)
}

/// Run `opticon-api` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let m = match svc::cli::parse("opticon-api", &opts, args, "[options]", "") {
        Ok(m) => m,
        Err(status) => return status,
    };
    if let Err(status) = svc::cli::no_arguments("opticon-api", &m) {
        return status;
    }
    match serve(&m) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("opticon-api: {e}");
            svc::log::err(&e);
            1
        }
    }
}

fn serve(m: &getopts::Matches) -> Result<(), String> {
    svc::daemon::start_logging("opticon-api", m)?;
    let (cfg, defs) = load(m)?;
    let listener = TcpListener::bind(cfg.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let pidfile = svc::daemon::become_service("opticon-api", m)?;
    svc::log::info(&format!(
        "opticon-api {} listening on {}, database {}",
        env!("CARGO_PKG_VERSION"),
        cfg.listen,
        cfg.db.display()
    ));
    let limits = cfg.limits.clone();
    loop {
        let api = Arc::new(Api::new(cfg_reload(m, &cfg)?, defs.clone())?);
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
fn cfg_reload(m: &getopts::Matches, running: &ApiConfig) -> Result<ApiConfig, String> {
    match load(m) {
        Ok((cfg, _)) => Ok(ApiConfig {
            listen: running.listen,
            ..cfg
        }),
        Err(e) => {
            svc::log::err(&format!(
                "reload failed, keeping the running configuration: {e}"
            ));
            Ok(running.clone())
        }
    }
}
