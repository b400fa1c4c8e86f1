//! Meter definition commands: list, create, delete.

use super::super::context::{entries, need, wrap, Cli};
use super::super::error::CommandError;
use super::super::show;
use crate::conf::{Dict, Node};
use crate::svc::text::table;
use getopts::Matches;

/// `meter-list`.
pub(super) fn meter_list(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let doc = cli.call(m, "GET", &format!("/{t}/meter"), None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        let rows = entries(&doc, "meter")
            .into_iter()
            .map(|(id, d)| {
                vec![
                    d.path("origin")
                        .and_then(Node::as_str)
                        .unwrap_or("default")
                        .to_string(),
                    id,
                    show::text(d.path("type")),
                    show::text(d.path("unit")),
                    show::text(d.path("description")),
                ]
            })
            .collect();
        table(&["From", "Meter", "Type", "Unit", "Description"], rows);
    }
    Ok(())
}

/// `meter-create`.
pub(super) fn meter_create(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let id = need(m, "meter")?;
    let mut spec = Dict::new();
    spec.insert(
        "type",
        Node::Str(m.opt_str("type").unwrap_or_else(|| "integer".into())),
    );
    spec.insert(
        "description",
        Node::Str(m.opt_str("description").unwrap_or_default()),
    );
    spec.insert("unit", Node::Str(m.opt_str("unit").unwrap_or_default()));
    cli.call(
        m,
        "POST",
        &format!("/{t}/meter/{id}"),
        Some(wrap("meter", Node::Dict(spec))),
    )?;
    cli.done(&format!("tenant {t}: meter {id} defined"));
    Ok(())
}

/// `meter-delete`.
pub(super) fn meter_delete(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let id = need(m, "meter")?;
    cli.call(m, "DELETE", &format!("/{t}/meter/{id}"), None)?;
    cli.done(&format!("tenant {t}: meter {id} deleted"));
    Ok(())
}
