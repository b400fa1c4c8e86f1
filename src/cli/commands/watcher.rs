//! Watcher commands, for a tenant or (with `--host`) one host.

use super::super::context::{entries, need, wrap, Cli};
use super::super::error::{usage, CommandError};
use super::super::show;
use crate::conf::{Dict, Node};
use crate::svc::text::table;
use getopts::Matches;

/// `watcher-list`.
pub(super) fn watcher_list(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let base = cli.watcher_base(m, &t)?;
    let doc = cli.call(m, "GET", &format!("{base}/watcher"), None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        let mut rows = Vec::new();
        for (id, d) in entries(&doc, "watcher") {
            for level in ["warning", "alert", "critical"] {
                if let Some(w) = d.path(level) {
                    rows.push(vec![
                        w.path("origin")
                            .and_then(Node::as_str)
                            .unwrap_or("default")
                            .to_string(),
                        id.clone(),
                        level.to_string(),
                        show::text(w.path("cmp")),
                        show::text(w.path("val")),
                        show::text(w.path("weight")),
                    ]);
                }
            }
        }
        table(
            &["From", "Meter", "Trigger", "Match", "Value", "Weight"],
            rows,
        );
    }
    Ok(())
}

/// `watcher-set`.
pub(super) fn watcher_set(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let id = need(m, "meter")?;
    let value = need(m, "value")?;
    let level = m.opt_str("level").unwrap_or_else(|| "alert".into());
    let mut w = Dict::new();
    w.insert(
        "cmp",
        Node::Str(m.opt_str("match").unwrap_or_else(|| "gt".into())),
    );
    w.insert("val", Node::Str(value));
    // Without --weight the meter's weight at that level stays.
    if let Some(text) = m.opt_str("weight") {
        let weight: f64 = text
            .parse()
            .map_err(|_| usage(format!("--weight {text:?} is not a number")))?;
        w.insert("weight", Node::Frac(weight));
    }
    let base = cli.watcher_base(m, &t)?;
    cli.call(
        m,
        "POST",
        &format!("{base}/watcher/{id}"),
        Some(wrap("watcher", wrap(&level, Node::Dict(w.clone())))),
    )?;
    cli.done(&format!(
        "{}: {id} {level} when {} {}{}",
        base.trim_start_matches('/').replace("/host/", " host "),
        show::text(w.get("cmp")),
        show::text(w.get("val")),
        match w.get("weight") {
            Some(x) => format!(", weight {}", show::text(Some(x))),
            None => String::new(),
        }
    ));
    Ok(())
}

/// `watcher-delete`.
pub(super) fn watcher_delete(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let id = need(m, "meter")?;
    let base = cli.watcher_base(m, &t)?;
    cli.call(m, "DELETE", &format!("{base}/watcher/{id}"), None)?;
    cli.done(&format!(
        "{}: watchers of {id} deleted (the defaults apply again)",
        base.trim_start_matches('/').replace("/host/", " host ")
    ));
    Ok(())
}
