//! The client's configuration: `/etc/opticon/opticon-cli.conf` (or
//! `-c`), then `~/.opticonrc`, merged key by key.

use super::error::CommandError;
use crate::conf::schema::{Schema, Shape};
use crate::conf::{self, Dict};
use getopts::Matches;
use std::path::PathBuf;

/// The user's home directory, where `~/.opticonrc` and the token cache live.
pub(super) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Every key of `opticon-cli.conf` and `~/.opticonrc` (documented in
/// opticon(1)); anything else is an error.
pub static SCHEMA: Schema = Schema {
    keys: Shape::Keys(&[
        (
            "endpoints",
            Shape::Keys(&[("opticon", Shape::Value), ("keystone", Shape::Value)]),
        ),
        (
            "defaults",
            Shape::Keys(&[
                ("tenant", Shape::Value),
                ("admin_token", Shape::Value),
                ("project", Shape::Value),
                ("domain", Shape::Value),
            ]),
        ),
    ]),
    // The original's other authentication back ends.
    ignored: &[
        "auth_method",
        "endpoints/unithost",
        "endpoints/unithost_identity",
    ],
};

/// The merged configuration: the system file, then `~/.opticonrc`.
pub(super) fn load_config(m: &Matches) -> Result<Dict, CommandError> {
    let explicit = m.opt_str("config-file");
    let system = PathBuf::from(
        explicit
            .clone()
            .unwrap_or_else(|| "/etc/opticon/opticon-cli.conf".into()),
    );
    let mut merged = Dict::new();
    let mut files = vec![(system, explicit.is_some())];
    if let Some(h) = home() {
        files.push((h.join(".opticonrc"), false));
    }
    for (path, required) in files {
        match conf::schema::load_checked(&path, &SCHEMA) {
            Ok(checked) => {
                if let Some(w) = checked.warning() {
                    eprintln!("opticon: warning: {w}");
                }
                merged.merge(checked.doc)
            }
            Err(conf::FileError::Io(_, e))
                if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CommandError::Other(e.to_string())),
        }
    }
    Ok(merged)
}
