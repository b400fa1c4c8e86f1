//! `/login` and `/user/NAME`: internal users and their sessions.

use super::auth::{self};
use super::error::{ApiError, Reply};
use super::http::Request;
use super::input::{body, text_field};
use super::routes::Api;
use crate::conf::{Dict, Node};
use crate::db::views;
use uuid::Uuid;

impl Api {
    pub(super) fn login(&self, req: &Request) -> Reply {
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
