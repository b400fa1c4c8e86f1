//! Host commands: list, overview, show (with graphs, `--time`, `--watch`), delete.

use super::super::context::{items, Cli};
use super::super::error::CommandError;
use super::super::show;
use crate::conf::Node;
use crate::svc::text::{size, table};
use getopts::Matches;

/// `host-list`.
pub(super) fn host_list(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let doc = cli.call(m, "GET", &format!("/{t}/host"), None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        let rows = items(&doc, "host")
            .iter()
            .map(|h| {
                let bytes = h.path("usage").and_then(Node::as_int).unwrap_or(0).max(0) as u64;
                vec![
                    show::text(h.path("id")),
                    size(bytes),
                    show::text(h.path("start")),
                    show::text(h.path("end")),
                ]
            })
            .collect();
        table(&["UUID", "Size", "First record", "Last record"], rows);
    }
    Ok(())
}

/// `host-overview`.
pub(super) fn host_overview(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    cli.repeat(m, |cli| {
        let doc = cli.call(m, "GET", &format!("/{t}/host/overview"), None)?;
        warn_stale(&doc, "every host shows STALE");
        Ok(if cli.json {
            doc.to_json(true) + "\n"
        } else {
            show::overview(&doc, show::width())
        })
    })?;
    Ok(())
}

/// Say on standard error when the API marked the data stale: the
/// collector stopped writing, and what is shown is old.
fn warn_stale(doc: &Node, what: &str) {
    if doc.path("stale") == Some(&Node::Bool(true)) {
        eprintln!(
            "opticon: the collector has published nothing for {} s: the data is stale and {what}",
            show::text(doc.path("age"))
        );
    }
}

/// `host-show`.
pub(super) fn host_show(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let h = cli.host(m, &t)?;
    let path = match m.opt_str("time") {
        Some(spec) => format!("/{t}/host/{h}/time/{spec}"),
        None => format!("/{t}/host/{h}"),
    };
    cli.repeat(m, |cli| {
        let doc = cli.call(m, "GET", &path, None)?;
        warn_stale(&doc, "the host shows STALE");
        if cli.json {
            return Ok(doc.to_json(true) + "\n");
        }
        let meters = cli.call(m, "GET", &format!("/{t}/meter"), None)?;
        let cols = show::width();
        let mut out = show::host(&h, &doc, &show::Descriptions::new(&meters), cols);
        if m.opt_present("graphs") {
            let points = cols.saturating_sub(2).clamp(12, 240);
            for (g, d) in [
                ("cpu", "usage"),
                ("link", "rtt"),
                ("net", "input"),
                ("net", "output"),
                ("io", "read"),
                ("io", "write"),
            ] {
                let data = cli.call(
                    m,
                    "GET",
                    &format!("/{t}/host/{h}/graph/{g}/{d}/43200/{points}"),
                    None,
                )?;
                let values: Vec<f64> = match data.path("data") {
                    Some(Node::Array(v)) => v.iter().filter_map(Node::as_f64).collect(),
                    _ => Vec::new(),
                };
                out.push_str(&show::graph(
                    &show::text(data.path("title")),
                    &show::text(data.path("unit")),
                    &values,
                    data.path("max").and_then(Node::as_f64).unwrap_or(1.0),
                    6,
                ));
                out.push('\n');
            }
        }
        Ok(out)
    })?;
    Ok(())
}

/// `host-delete`.
pub(super) fn host_delete(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let h = cli.host(m, &t)?;
    cli.call(m, "DELETE", &format!("/{t}/host/{h}"), None)?;
    cli.done(&format!("tenant {t}: deleted host {h} with its data"));
    Ok(())
}
