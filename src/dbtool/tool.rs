//! What every command works with: the database, `--json`, the time the
//! run started, and readers of the command line.

use super::error::{usage, ToolError};
use crate::conf::{Dict, Node};
use crate::db::meters::{self, MeterDef};
use crate::db::time::parse_time_spec;
use crate::db::{views, Db, DbError};
use getopts::Matches;
use uuid::Uuid;

/// One run of `opticon-db`.
pub struct Tool {
    pub(super) db: Db,
    pub(super) json: bool,
    pub(super) now: i64,
}

impl Tool {
    pub(super) fn time(&self, m: &Matches, name: &str, default: &str) -> Result<i64, ToolError> {
        let spec = m.opt_str(name).unwrap_or_else(|| default.into());
        parse_time_spec(&spec, self.now).map_err(|e| usage(e.to_string()))
    }

    pub(super) fn tenant(&self, m: &Matches) -> Result<Uuid, ToolError> {
        parse_uuid(&need(m, "tenant")?, "tenant")
    }

    pub(super) fn tenants(&self, m: &Matches) -> Result<Vec<Uuid>, ToolError> {
        match m.opt_str("tenant") {
            Some(t) => Ok(vec![parse_uuid(&t, "tenant")?]),
            None => Ok(self.db.tenant_ids()?),
        }
    }

    pub(super) fn host(&self, m: &Matches, tenant: Uuid) -> Result<Uuid, ToolError> {
        Ok(self.db.find_host(tenant, &need(m, "host")?)?)
    }

    pub(super) fn print_json(&self, node: Node) {
        println!("{}", node.to_json(true));
    }

    /// The effective definitions: defaults, then the tenant's, then (with
    /// --host) the host's.
    pub(super) fn definitions(
        &self,
        t: Uuid,
        host: Option<Uuid>,
    ) -> Result<Vec<MeterDef>, ToolError> {
        Ok(views::definitions(&self.db, &meters::defaults(), t, host)?)
    }

    pub(super) fn optional_host(&self, m: &Matches, t: Uuid) -> Result<Option<Uuid>, ToolError> {
        match m.opt_str("host") {
            Some(_) => Ok(Some(self.host(m, t)?)),
            None => Ok(None),
        }
    }

    /// Load the tenant's (or with --host the host's) document, let `edit`
    /// change the definition of --meter, and save it.
    pub(super) fn edit_doc(
        &self,
        m: &Matches,
        edit: impl FnOnce(&mut Dict, &str) -> Result<(), DbError>,
    ) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let id = need(m, "meter")?;
        let h = self.optional_host(m, t)?;
        let mut doc = self.db.meter_doc(t, h)?;
        edit(&mut doc, &id)?;
        self.db.save_meter_doc(t, h, &doc)?;
        Ok(0)
    }
}

/// A UUID argument, or a usage error naming `what`.
pub(super) fn parse_uuid(text: &str, what: &str) -> Result<Uuid, ToolError> {
    Uuid::parse_str(text).map_err(|_| usage(format!("{what} {text:?} is not a UUID")))
}

/// The value of `--name`, which this command requires.
pub(super) fn need(m: &Matches, name: &str) -> Result<String, ToolError> {
    m.opt_str(name)
        .ok_or_else(|| usage(format!("this command needs --{name}")))
}

/// The command's `n` free arguments, or a usage error saying `names`.
pub(super) fn args(m: &Matches, n: usize, names: &str) -> Result<Vec<String>, ToolError> {
    let rest = &m.free[1..];
    if rest.len() != n {
        return Err(usage(format!("this command takes {names}")));
    }
    Ok(rest.to_vec())
}

/// Turn a command-line word into a config value: numbers, booleans and
/// null keep their type, anything else is a string.
pub(super) fn word_value(text: &str) -> Node {
    match crate::conf::parse(&format!("v {text}")) {
        Ok(d) => match d.get("v") {
            Some(n @ (Node::Int(_) | Node::Frac(_) | Node::Bool(_) | Node::Null))
                if d.len() == 1 =>
            {
                n.clone()
            }
            _ => Node::Str(text.into()),
        },
        Err(_) => Node::Str(text.into()),
    }
}
