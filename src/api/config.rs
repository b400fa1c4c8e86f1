//! `opticon-api.conf`: every setting the API reads, with its default.

use super::auth::{Cidr, CidrError};
use super::server;
use crate::conf::schema::{Schema, Shape};
use crate::conf::{self, Dict, Node, ValueError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// Every key of `opticon-api.conf` (documented in opticon-api(8));
/// anything else is an error.
pub static SCHEMA: Schema = Schema {
    keys: Shape::Keys(&[
        (
            "network",
            Shape::Keys(&[
                ("address", Shape::Value),
                ("port", Shape::Value),
                ("workers", Shape::Value),
                ("connections", Shape::Value),
                ("per_address", Shape::Value),
                ("timeout", Shape::Value),
                ("proxies", Shape::Value),
                ("ui", Shape::Value),
            ]),
        ),
        crate::db::DATABASE_SHAPE,
        (
            "auth",
            Shape::Keys(&[
                ("admin_token", Shape::Value),
                ("admin_hosts", Shape::Value),
                // The original's name for one admin address.
                ("admin_host", Shape::Value),
                ("auth_method", Shape::Value),
                ("keystone_url", Shape::Value),
                ("cache_ttl", Shape::Value),
                ("negative_ttl", Shape::Value),
                ("timeout", Shape::Value),
                ("cache_size", Shape::Value),
                ("service_token", Shape::Value),
                (
                    "roles",
                    Shape::Keys(&[
                        ("admin", Shape::Value),
                        ("edit", Shape::Value),
                        ("view", Shape::Value),
                    ]),
                ),
                ("admin_projects", Shape::Value),
            ]),
        ),
        ("cors", Shape::Keys(&[("origins", Shape::Value)])),
    ]),
    // The original's other authentication back ends and its query plugin.
    ignored: &["auth/unithost_url", "auth/unithost_account_url", "plugin"],
};

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
    /// Serve the dashboard under `/ui/` (`network/ui`).
    pub ui: bool,
    /// Keystone, when `auth_method` is `openstack` or `both`.
    pub keystone: Option<super::keystone::KeystoneConfig>,
    /// Whether internal users and their sessions are accepted (not with
    /// `auth_method openstack`).
    pub internal: bool,
}

/// A list of networks at `key` (one string is a list of one).
fn networks(doc: &Dict, key: &str, default: &[&str]) -> Result<Vec<Cidr>, ValueError> {
    let parse = |s: &str| {
        s.parse()
            .map_err(|e: CidrError| ValueError::new(key, e.to_string()))
    };
    match doc.path(key) {
        None => default.iter().map(|s| parse(s)).collect(),
        Some(Node::Array(items)) => items
            .iter()
            .map(|n| match n.as_str() {
                Some(s) => parse(s),
                None => Err(ValueError::new(
                    key,
                    format!("{} is not an address", n.to_json(false)),
                )),
            })
            .collect(),
        Some(Node::Str(s)) => Ok(vec![parse(s)?]),
        Some(other) => Err(ValueError::new(
            key,
            format!("{} is not a list", other.to_json(false)),
        )),
    }
}

impl ApiConfig {
    /// Read the settings from a parsed config document.
    pub fn from_dict(doc: &Dict) -> Result<ApiConfig, ValueError> {
        let admin_token = match doc.path("auth/admin_token") {
            None => None,
            Some(Node::Str(t)) if Uuid::parse_str(t).is_ok() => Some(t.to_ascii_lowercase()),
            Some(other) => {
                return Err(ValueError::new(
                    "auth/admin_token",
                    format!("{} is not a UUID", other.to_json(false)),
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
                return Err(ValueError::new(
                    "cors/origins",
                    format!("{} is not a list", other.to_json(false)),
                ))
            }
        };
        Ok(ApiConfig {
            listen: conf::listen_address(doc, 8888)?,
            db: PathBuf::from(
                doc.path("database/path")
                    .and_then(Node::as_str)
                    .unwrap_or(crate::db::DEFAULT_ROOT),
            ),
            admin_token,
            admin_hosts: match (doc.path("auth/admin_hosts"), doc.path("auth/admin_host")) {
                (None, Some(_)) => networks(doc, "auth/admin_host", &[])?,
                _ => networks(doc, "auth/admin_hosts", &["127.0.0.1", "::1"])?,
            },
            proxies: networks(doc, "network/proxies", &[])?,
            cors_origins,
            keystone: super::keystone::KeystoneConfig::from_dict(doc)?,
            internal: match doc.path("auth/auth_method").and_then(Node::as_str) {
                Some("openstack") => false,
                None if doc.path("auth/keystone_url").is_some() => false,
                _ => true,
            },
            ui: match doc.path("network/ui") {
                None | Some(Node::Bool(true)) => true,
                Some(Node::Bool(false)) => false,
                Some(other) => {
                    return Err(ValueError::new(
                        "network/ui",
                        format!("{} is not true or false", other.to_json(false)),
                    ))
                }
            },
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
