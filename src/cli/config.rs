//! The client's configuration: `/etc/opticon/opticon-cli.conf` (or
//! `-c`), then `~/.opticonrc`, merged key by key.

use super::error::CommandError;
use crate::conf::{self, Dict, Node};
use getopts::Matches;
use std::path::PathBuf;

/// The user's home directory, where `~/.opticonrc` and the token cache live.
pub(super) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

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
        match conf::load_file(&path) {
            Ok(doc) => merge(&mut merged, doc),
            Err(conf::FileError::Io(_, e))
                if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CommandError::Other(e.to_string())),
        }
    }
    Ok(merged)
}

fn merge(into: &mut Dict, from: Dict) {
    for (k, v) in from.iter() {
        match (into.get(k).cloned(), v) {
            (Some(Node::Dict(mut a)), Node::Dict(b)) => {
                merge(&mut a, b.clone());
                into.insert(k.to_string(), Node::Dict(a));
            }
            _ => into.insert(k.to_string(), v.clone()),
        }
    }
}
