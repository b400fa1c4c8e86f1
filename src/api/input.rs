//! Reading what a request carries: path parts as UUIDs, JSON bodies and
//! their sections, and the JSON files the collector publishes.

use super::error::{ApiError, Reply};
use super::http::Request;
use crate::conf::{self, Dict, Node};
use std::path::Path;
use uuid::Uuid;

pub(super) fn uuid(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("{what} {text:?} not found")))
}

pub(super) fn body(req: &Request) -> Result<Dict, ApiError> {
    if req.body.is_empty() {
        return Ok(Dict::new());
    }
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::BadRequest("request body is not UTF-8".into()))?;
    conf::parse(text).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// The object under `key` in the request body (empty when absent).
pub(super) fn section(req: &Request, key: &str) -> Result<Dict, ApiError> {
    Ok(body(req)?
        .get(key)
        .and_then(Node::as_dict)
        .cloned()
        .unwrap_or_default())
}

/// A published JSON file; an absent one reads as `{}`.
pub(super) fn read_json(path: &Path) -> Reply {
    match std::fs::read_to_string(path) {
        Ok(text) => conf::parse(&text)
            .map(Node::Dict)
            .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Node::Dict(Dict::new())),
        Err(e) => Err(ApiError::Internal(format!("{}: {e}", path.display()))),
    }
}

/// The string under `key`, if it is one.
pub(super) fn text_field(d: &Dict, key: &str) -> Option<String> {
    d.get(key).and_then(Node::as_str).map(str::to_string)
}
