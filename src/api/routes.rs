//! The API itself and its route table: who is asking, which route a
//! request takes, which tenant it may touch, and CORS. The handlers live
//! in the files named after what they serve.

use super::auth::{self, Access, Store};
use super::config::ApiConfig;
use super::error::{ApiError, Reply};
use super::http::{Request, Response};
use super::input::{read_json, uuid};
use super::records::LatestCache;
use super::server;
use super::users::LoginLimiter;
use crate::conf::{Dict, Node};
use crate::db::meters::MeterDef;
use crate::db::published::SESSIONS_FILE;
use crate::db::time::parse_time_spec;
use crate::db::{views, Db};
use crate::model::unix_now;
use crate::svc;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The API over one database.
pub struct Api {
    pub(super) cfg: ApiConfig,
    pub(super) db: Db,
    pub(super) store: Store,
    pub(super) global: Vec<MeterDef>,
    /// Latest records as JSON text, valid while the stamp holds.
    pub(super) latest: Mutex<LatestCache>,
    /// What outlives a reload: counters and login limits.
    pub(super) shared: Arc<Shared>,
    /// Seconds after which published data is stale, and when read.
    pub(super) stale_after: Mutex<Option<(std::time::Instant, i64)>>,
    /// Keystone, when configured.
    pub(super) keystone: Option<super::keystone::Keystone>,
}

/// What the daemon keeps across reloads of the configuration.
#[derive(Debug, Default)]
pub struct Shared {
    /// The HTTP server's counters.
    pub stats: Arc<server::Stats>,
    /// Failed logins, per source address and per user name.
    pub logins: LoginLimiter,
    /// The dashboard's files, hashed once.
    pub dashboard: super::web::Dashboard,
}

impl server::Service for Api {
    fn handle(&self, req: &Request, peer: SocketAddr) -> Response {
        Api::handle(self, req, peer)
    }

    fn precheck(&self, req: &Request, peer: SocketAddr) -> Option<Response> {
        Api::precheck(self, req, peer)
    }
}

/// What a route answers.
pub(super) enum Routed {
    Json(Node),
    /// JSON text made elsewhere (records, overviews).
    Raw(String),
    Text(String),
}

impl Api {
    /// The API over `cfg.db`, with the global meter definitions.
    pub fn new(
        cfg: ApiConfig,
        global: Vec<MeterDef>,
        shared: Arc<Shared>,
    ) -> Result<Api, auth::AuthError> {
        let store = Store::open(&cfg.db)?;
        let cfg_keystone = cfg.keystone.clone();
        Ok(Api {
            db: Db::new(&cfg.db),
            cfg,
            store,
            global,
            latest: Mutex::new(HashMap::new()),
            shared,
            stale_after: Mutex::new(None),
            keystone: cfg_keystone.map(super::keystone::Keystone::new),
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

    /// Who the request is from: a Keystone token in `X-Auth-Token` (when
    /// Keystone is configured), else an internal session or the admin
    /// token in `X-Opticon-Token`.
    fn access(&self, req: &Request, client: IpAddr) -> Result<Access, ApiError> {
        if let (Some(ks), Some(token)) = (&self.keystone, req.header("x-auth-token")) {
            return ks
                .validate(token, |t| {
                    self.db
                        .tenant_dir(t)
                        .join(crate::db::tenant::TENANT_FILE)
                        .is_file()
                })
                .map(|v| v.access)
                .map_err(ApiError::Keystone);
        }
        let Some(token) = req.header("x-opticon-token") else {
            return Ok(Access::Guest);
        };
        if self.cfg.internal {
            if let Some(a) = self.store.session(token) {
                return Ok(a);
            }
        }
        if let Some(admin) = &self.cfg.admin_token {
            let from_admin_host = self.cfg.admin_hosts.iter().any(|n| n.contains(client));
            if auth::same(token.to_ascii_lowercase().as_bytes(), admin.as_bytes())
                && from_admin_host
            {
                return Ok(Access::Admin);
            }
        }
        Ok(Access::Guest)
    }

    /// Before the body of an `Expect: 100-continue` request: the refusal
    /// its route would give whatever the body says (401 without valid
    /// credentials, 403 for a tenant or admin route the caller may not
    /// use, 404 for a path that names no tenant), else `None`.
    pub fn precheck(&self, req: &Request, peer: SocketAddr) -> Option<Response> {
        let client = self.client(req, peer);
        let access = match self.access(req, client) {
            Ok(a) => a,
            Err(e) => return Some(e.response()),
        };
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let refusal = match (req.method.as_str(), segs.as_slice()) {
            ("POST", ["login"]) | ("POST", ["login", "keystone"]) | ("OPTIONS", _) => None,
            _ if access == Access::Guest => Some(ApiError::Unauthenticated),
            (_, ["user", _]) | (_, ["any", ..]) => self.admin(&access).err(),
            (m, [t, rest @ ..]) => match uuid(t, "tenant") {
                Err(e) => Some(e),
                Ok(_) if (m == "POST" || m == "DELETE") && rest.is_empty() => {
                    self.admin(&access).err()
                }
                Ok(t) if !access.may(t) => Some(ApiError::Forbidden),
                Ok(_) => None,
            },
            _ => None,
        };
        refusal.map(|e| e.response())
    }

    /// Answer one request from `peer`.
    pub fn handle(&self, req: &Request, peer: SocketAddr) -> Response {
        let started = Instant::now();
        let client = self.client(req, peer);
        if self.cfg.ui && req.method == "GET" {
            if req.path == "/ui" || req.path.starts_with("/ui/") {
                return self.shared.dashboard.serve(req);
            }
            if req.path == "/" && super::web::wants_html(req) {
                return super::web::to_dashboard();
            }
        }
        let access = match self.access(req, client) {
            Ok(a) => a,
            Err(e) => return e.response(),
        };
        let mut response = if req.method == "OPTIONS" {
            // As the original: 200 and an empty object.
            Response::json(200, "{}\n".into())
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
            ("POST", ["login"]) if self.cfg.internal => json(self.login(req, client)),
            ("POST", ["login"]) => Err(ApiError::NotFound(
                "internal users are off (auth_method openstack): log in with Keystone".into(),
            )),
            ("POST", ["login", "keystone"]) => json(self.keystone_login(req)),
            ("GET", ["auth", "methods"]) => json(Ok(self.auth_methods())),
            ("GET", ["metrics"]) => {
                let allowed = *access == Access::Admin
                    || self.cfg.admin_hosts.iter().any(|n| n.contains(client));
                if !allowed {
                    return Err(ApiError::Forbidden);
                }
                Ok(Routed::Text(self.prometheus()?))
            }
            _ if *access == Access::Guest => Err(ApiError::Unauthenticated),
            // A Keystone reader reads.
            (m, _)
                if m != "GET"
                    && matches!(
                        access,
                        Access::User {
                            read_only: true,
                            ..
                        }
                    ) =>
            {
                Err(ApiError::Forbidden)
            }
            ("GET", []) => json(Ok(views::tenant_list(&self.db, |t| access.may(t))?)),
            ("GET", ["token"]) => {
                let tenants = match access {
                    Access::User { tenant, .. } => vec![Node::Str(tenant.to_string())],
                    _ => Vec::new(),
                };
                let mut d = Dict::new();
                d.insert("userlevel", Node::Str(access.level().into()));
                d.insert("tenants", Node::Array(tenants));
                // A Keystone user's other projects that are tenants, when asked.
                if let (Some(ks), Some(token), Some(_)) = (
                    &self.keystone,
                    req.header("x-auth-token"),
                    req.param("projects"),
                ) {
                    let ids = ks
                        .projects(token, |t| {
                            self.db
                                .tenant_dir(t)
                                .join(crate::db::tenant::TENANT_FILE)
                                .is_file()
                        })
                        .map_err(ApiError::Keystone)?;
                    d.insert(
                        "projects",
                        Node::Array(ids.into_iter().map(|t| Node::Str(t.to_string())).collect()),
                    );
                }
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

    pub(super) fn admin(&self, access: &Access) -> Result<(), ApiError> {
        match access {
            Access::Admin => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }

    pub(super) fn time(spec: &str) -> Result<i64, ApiError> {
        parse_time_spec(spec, unix_now())
            .map_err(|e| ApiError::BadRequest(format!("time {spec:?}: {e}")))
    }
}
