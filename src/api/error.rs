//! A handler's failure and the status and error body it becomes.

use super::auth::{self};
use super::http::Response;
use crate::conf::Node;
use crate::db::DbError;
use crate::svc;

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
    /// 403 `Login failed`, as the original answers a wrong password (its
    /// GUI tells a failed login by this status).
    LoginFailed,
    /// 429: too many failed logins; retry after this many seconds.
    TooManyLogins(u64),
    /// 500, logged.
    Internal(String),
    /// A Keystone token that gives no access: 401 (invalid), 403 (no
    /// project, not a tenant, no role) or 503 (Keystone unreachable).
    Keystone(super::keystone::Refusal),
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
    pub(super) fn response(&self) -> Response {
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
            ApiError::LoginFailed => Response::error(403, "Login failed"),
            ApiError::TooManyLogins(after) => {
                let mut r = Response::error(429, "Too many failed logins; try again later");
                r.headers.push(("Retry-After", after.to_string()));
                r
            }
            ApiError::Internal(m) => {
                svc::log::err(m);
                Response::error(500, "Internal server error")
            }
            ApiError::Keystone(r) => {
                use super::keystone::Refusal;
                let status = match r {
                    Refusal::Invalid => 401,
                    Refusal::Unavailable(_) => 503,
                    _ => 403,
                };
                Response::error(status, &r.to_string())
            }
        }
    }
}

/// What a JSON handler answers.
pub type Reply = Result<Node, ApiError>;
