//! Keystone (OpenStack identity v3) as a client sees it: a password
//! login scoped to a project, whose token comes back in
//! `X-Subject-Token`. Shared by `opticon` (its Keystone login) and
//! `opticon-api` (the dashboard's, made on the page's behalf).

use super::httpc::{ClientError, Endpoint};
use crate::conf::{Dict, Node};
use uuid::Uuid;

/// What a password login got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The token.
    Token(String),
    /// Keystone refused the credentials or the project (its status).
    Refused(u16),
    /// Keystone answered something else (its status).
    Failed(u16),
}

/// Log in at `keystone` (its `/v3` URL) as `user` with `password`,
/// scoped to `project` (an id, or a name in `domain`).
pub fn password_login(
    keystone: &Endpoint,
    user: &str,
    password: &str,
    project: &str,
    domain: &str,
) -> Result<Login, ClientError> {
    let body = password_body(user, password, project, domain);
    let reply = keystone.exchange(
        "POST",
        "/auth/tokens",
        &[("Accept", "application/json")],
        Some(&body),
    )?;
    Ok(match reply.status {
        200 | 201 => match reply.header("x-subject-token") {
            Some(t) => Login::Token(t.to_string()),
            None => Login::Failed(reply.status),
        },
        400 | 401 | 403 | 404 => Login::Refused(reply.status),
        s => Login::Failed(s),
    })
}

/// The body of a Keystone v3 password login scoped to a project (an id
/// when it is a UUID, else a name in `domain`).
pub fn password_body(user: &str, password: &str, project: &str, domain: &str) -> String {
    let s = |v: &str| Node::Str(v.to_string());
    let mut dom = Dict::new();
    dom.insert("name", s(domain));
    let mut u = Dict::new();
    u.insert("name", s(user));
    u.insert("domain", Node::Dict(dom.clone()));
    u.insert("password", s(password));
    let mut pw = Dict::new();
    pw.insert("user", Node::Dict(u));
    let mut identity = Dict::new();
    identity.insert("methods", Node::Array(vec![s("password")]));
    identity.insert("password", Node::Dict(pw));
    let mut proj = Dict::new();
    if let Ok(id) = Uuid::parse_str(project) {
        // Keystone writes project ids without dashes.
        proj.insert("id", s(&id.simple().to_string()));
    } else {
        proj.insert("name", s(project));
        proj.insert("domain", Node::Dict(dom));
    }
    let mut scope = Dict::new();
    scope.insert("project", Node::Dict(proj));
    let mut auth = Dict::new();
    auth.insert("identity", Node::Dict(identity));
    auth.insert("scope", Node::Dict(scope));
    let mut top = Dict::new();
    top.insert("auth", Node::Dict(auth));
    Node::Dict(top).to_json(false)
}
