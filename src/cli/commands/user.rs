//! User commands (admin): create, change tenant or password, delete.

use super::super::context::{need, Cli};
use super::super::error::CommandError;
use super::super::token::prompt;
use crate::conf::{Dict, Node};
use getopts::Matches;

/// `user-create`, `user-set-tenant`, `user-set-password`: one shape of
/// request, told apart by `command`.
pub(super) fn user_edit(cli: &mut Cli, m: &Matches, command: &str) -> Result<(), CommandError> {
    let name = need(m, "username")?;
    let mut spec = Dict::new();
    if command != "user-set-tenant" {
        let password = match m.opt_str("password") {
            Some(p) => p,
            None if command == "user-create" => {
                prompt(&format!("Password for the new user {name}"), true)?
            }
            None => prompt(&format!("New password for {name}"), true)?,
        };
        spec.insert("password", Node::Str(password));
    }
    if command != "user-set-password" {
        if let Some(t) = cli.tenant.clone() {
            spec.insert("tenant", Node::Str(t));
        }
    }
    if m.opt_present("admin") {
        spec.insert("level", Node::Str("ADMIN".into()));
    }
    let method = if command == "user-create" {
        "PUT"
    } else {
        "POST"
    };
    let tenant = spec
        .get("tenant")
        .and_then(Node::as_str)
        .map(str::to_string);
    cli.call(m, method, &format!("/user/{name}"), Some(Node::Dict(spec)))?;
    let level = if m.opt_present("admin") {
        "administrator "
    } else {
        ""
    };
    cli.done(&match (command, tenant) {
        ("user-create", Some(t)) => format!("created {level}user {name} of tenant {t}"),
        ("user-create", None) => format!("created {level}user {name}"),
        ("user-set-tenant", Some(t)) => format!("user {name} now belongs to tenant {t}"),
        ("user-set-tenant", None) => format!("user {name} now belongs to no tenant"),
        _ => format!("changed the password of user {name}"),
    });
    Ok(())
}

/// `user-create`.
pub(super) fn user_create(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    user_edit(cli, m, "user-create")
}

/// `user-set-tenant`.
pub(super) fn user_set_tenant(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    user_edit(cli, m, "user-set-tenant")
}

/// `user-set-password`.
pub(super) fn user_set_password(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    user_edit(cli, m, "user-set-password")
}

/// `user-delete`.
pub(super) fn user_delete(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let name = need(m, "username")?;
    cli.call(m, "DELETE", &format!("/user/{name}"), None)?;
    cli.done(&format!("deleted user {name}"));
    Ok(())
}
