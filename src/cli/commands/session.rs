//! Sessions (admin) and the original's dancing bears.

use super::super::context::{items, Cli};
use super::super::error::CommandError;
use super::super::show;
use crate::svc::text::table;
use getopts::Matches;

/// `session-list`.
pub(super) fn session_list(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let doc = cli.call(m, "GET", "/session", None)?;
    if cli.json {
        cli.print(&doc);
    } else {
        let rows = items(&doc, "session")
            .iter()
            .map(|s| {
                vec![
                    format!(
                        "{}-{}",
                        show::text(s.path("sessid")),
                        show::text(s.path("addr"))
                    ),
                    show::text(s.path("remote")),
                    show::text(s.path("tenantid")),
                    show::text(s.path("hostid")),
                    show::text(s.path("lastserial")),
                    show::text(s.path("lastcycle")),
                ]
            })
            .collect();
        table(
            &["ID", "Sender", "Tenant", "Host", "Serial", "Heartbeat"],
            rows,
        );
    }
    Ok(())
}

/// `dancing-bears`.
pub(super) fn dancing_bears(cli: &mut Cli, m: &Matches) -> Result<(), CommandError> {
    let doc = cli.call(m, "GET", "/obligatory-dancing-bears", None)?;
    println!("{}", show::text(doc.path("bear")));
    Ok(())
}
