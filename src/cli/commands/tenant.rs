//! Tenant commands: list, create, delete, metadata, quota, summary.

use super::super::context::{items, wrap, Cli};
use super::super::error::{usage, CommandError};
use super::super::show;
use crate::conf::{self, Dict, Node};
use crate::svc::text::table;
use getopts::Matches;

/// `tenant-list`.
pub(super) fn tenant_list(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let doc = cli.call(m, "GET", "/", None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        let rows = items(&doc, "tenant")
            .iter()
            .map(|t| {
                vec![
                    show::text(t.path("id")),
                    show::text(t.path("hostcount")),
                    show::text(t.path("name")),
                ]
            })
            .collect();
        table(&["UUID", "Hosts", "Name"], rows);
    }
    Ok(())
}

/// `tenant-create`.
pub(super) fn tenant_create(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let id = match m.opt_str("tenant") {
        Some(t) => t,
        None => crate::crypto::random_uuid()
            .map_err(|e| CommandError::Other(e.to_string()))?
            .to_string(),
    };
    let mut spec = Dict::new();
    spec.insert("name", Node::Str(m.opt_str("name").unwrap_or_default()));
    if let Some(k) = m.opt_str("key") {
        spec.insert("key", Node::Str(k));
    }
    let doc = cli.call(
        m,
        "POST",
        &format!("/{id}"),
        Some(wrap("tenant", Node::Dict(spec))),
    )?;
    if cli.json {
        cli.print(&doc);
    } else {
        println!(
            "Name:    {}\nUUID:    {id}\nAES Key: {}",
            show::text(doc.path("tenant/name")),
            show::text(doc.path("tenant/key"))
        );
    }
    Ok(())
}

/// `tenant-delete`.
pub(super) fn tenant_delete(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    cli.call(m, "DELETE", &format!("/{t}"), None)?;
    cli.done(&format!("deleted tenant {t} with its hosts and data"));
    Ok(())
}

/// `tenant-get-metadata`.
pub(super) fn tenant_get_metadata(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let doc = cli.call(m, "GET", &format!("/{t}/meta"), None)?;
    cli.print(doc.path("metadata").unwrap_or(&doc));
    Ok(())
}

/// `tenant-set-metadata`.
pub(super) fn tenant_set_metadata(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let [_, key, value] = &m.free[..] else {
        return Err(usage("tenant-set-metadata KEY VALUE"));
    };
    let v = conf::parse(&format!("v {value}"))
        .ok()
        .and_then(|d| d.get("v").cloned())
        .unwrap_or_else(|| Node::Str(value.clone()));
    let mut meta = Dict::new();
    meta.insert(key.clone(), v);
    cli.call(
        m,
        "POST",
        &format!("/{t}/meta"),
        Some(wrap("metadata", Node::Dict(meta))),
    )?;
    cli.done(&format!("tenant {t}: metadata {key} set to {value}"));
    Ok(())
}

/// `tenant-get-quota`.
pub(super) fn tenant_get_quota(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let doc = cli.call(m, "GET", &format!("/{t}/quota"), None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        println!(
            "Tenant storage quota: {} MB\nCurrent usage: {:.2} %",
            show::text(doc.path("quota")),
            doc.path("usage").and_then(Node::as_f64).unwrap_or(0.0)
        );
    }
    Ok(())
}

/// `tenant-set-quota`.
pub(super) fn tenant_set_quota(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let [_, mb] = &m.free[..] else {
        return Err(usage("tenant-set-quota MB"));
    };
    let mb: i64 = mb
        .parse()
        .map_err(|_| usage(format!("{mb:?} is not a number of MB")))?;
    let mut spec = Dict::new();
    spec.insert("quota", Node::Int(mb));
    cli.call(
        m,
        "PUT",
        &format!("/{t}"),
        Some(wrap("tenant", Node::Dict(spec))),
    )?;
    cli.done(&format!("tenant {t}: quota set to {mb} MB"));
    Ok(())
}

/// `tenant-get-summary`: hosts by status and the fleet-wide folds, as a
/// table (the API's JSON with `--json`).
pub(super) fn tenant_get_summary(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let t = cli.tenant()?;
    let doc = cli.call(m, "GET", &format!("/{t}/summary"), None)?;
    let summary = doc.path("summary").unwrap_or(&doc);
    if cli.json {
        cli.print(summary);
        return Ok(());
    }
    let rows = [
        ("ok", "Hosts OK", ""),
        ("warning", "Hosts WARN", ""),
        ("alert", "Hosts ALERT", ""),
        ("critical", "Hosts CRIT", ""),
        ("stale", "Hosts STALE", ""),
        ("cpu", "CPU (average)", " %"),
        ("netin", "Network in (total)", " Kb/s"),
        ("netout", "Network out (total)", " Kb/s"),
        ("updates", "Pending updates (total)", ""),
    ]
    .iter()
    .map(|(key, label, unit)| {
        let v = show::text(summary.path(key));
        let v = if v == "-" { v } else { format!("{v}{unit}") };
        vec![label.to_string(), v]
    })
    .collect();
    table(&["Summary", "Value"], rows);
    Ok(())
}
