//! `config: cloud-init`: the collector comes from the OpenStack metadata
//! service (documented by the original, never built there).
//!
//! The agent fetches the metadata document (default
//! `http://169.254.169.254/openstack/latest/meta_data.json`) with a small
//! HTTP/1.0 client and reads these keys of its `meta` object:
//! `opticon_collector_address`, `opticon_collector_port`,
//! `opticon_tenant_key`, `opticon_tenant_id`, `opticon_host_id`.

use super::config::{collector, CollectorSpec, ConfigError};
use crate::conf::{self, Dict, Node};
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest metadata document accepted.
const MAX_BODY: usize = 1 << 20;

/// Why the metadata could not be used.
#[derive(Debug)]
pub enum CloudError {
    /// Not an `http://host[:port]/path` URL.
    Url(String),
    /// Connecting, sending or reading failed.
    Io(String, std::io::Error),
    /// The server answered with another status than 200.
    Status(String, String),
    /// The document is not JSON, or lacks the opticon keys.
    Document(String),
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudError::Url(u) => write!(f, "metadata url {u:?} is not http://host[:port]/path"),
            CloudError::Io(u, e) => write!(f, "{u}: {e}"),
            CloudError::Status(u, line) => write!(f, "{u}: {line}"),
            CloudError::Document(why) => write!(f, "metadata: {why}"),
        }
    }
}

impl std::error::Error for CloudError {}

/// GET an `http://` URL; the body of a 200 answer.
pub fn http_get(url: &str, timeout: Duration) -> Result<String, CloudError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| CloudError::Url(url.into()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if hostport
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !hostport.ends_with(']')
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let io = |e| CloudError::Io(url.to_string(), e);
    let addr = with_port
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| CloudError::Url(url.into()))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    // One write: the request leaves in one segment.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    s.take(MAX_BODY as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| CloudError::Document("no HTTP header".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(CloudError::Status(url.into(), status.into()));
    }
    Ok(body.to_string())
}

/// The collector described by a metadata document.
pub fn collector_from_metadata(body: &str) -> Result<CollectorSpec, CloudError> {
    let doc = conf::parse(body).map_err(|e| CloudError::Document(e.to_string()))?;
    let Some(Node::Dict(meta)) = doc.get("meta") else {
        return Err(CloudError::Document("no \"meta\" object".into()));
    };
    let mut spec = Dict::new();
    for (from, to) in [
        ("opticon_collector_address", "address"),
        ("opticon_collector_port", "port"),
        ("opticon_tenant_key", "key"),
        ("opticon_tenant_id", "tenant"),
        ("opticon_host_id", "host"),
    ] {
        match meta.get(from) {
            // Metadata values are strings; a port must become a number.
            Some(Node::Str(v)) if to == "port" => {
                let port = v
                    .parse()
                    .map_err(|_| CloudError::Document(format!("{from} {v:?} is not a port")))?;
                spec.insert(to, Node::Int(port));
            }
            Some(v) => spec.insert(to, v.clone()),
            None => {}
        }
    }
    collector(&Node::Dict(spec), "meta").map_err(|e| match e {
        ConfigError::Invalid(k, why) => CloudError::Document(format!("{k}: {why}")),
        other => CloudError::Document(other.to_string()),
    })
}
