//! Logging in: the token cache (`~/.opticon-token-cache`, mode 0600,
//! per API URL) and the terminal prompt (no echo for passwords).

use super::config::home;
use super::error::CommandError;
use crate::conf::{self, Dict, Node};
use std::io::{BufRead, Write};
use std::path::PathBuf;

fn cache_path() -> Option<PathBuf> {
    home().map(|h| h.join(".opticon-token-cache"))
}

/// A cached login: the token and the user it was issued to.
pub(super) struct Cached {
    /// The session token.
    pub(super) token: String,
    /// The user who logged in (empty in a cache of an older version).
    pub(super) user: String,
    /// Whether it is a Keystone token (sent as `X-Auth-Token`).
    pub(super) keystone: bool,
}

/// The cached login for `url`, if any.
pub(super) fn read_cache(url: &str) -> Option<Cached> {
    let doc = conf::load_file(&cache_path()?).ok()?;
    if doc.get("url").and_then(Node::as_str) != Some(url) {
        return None;
    }
    Some(Cached {
        token: doc.get("token").and_then(Node::as_str)?.to_string(),
        user: doc
            .get("user")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_string(),
        keystone: doc.get("kind").and_then(Node::as_str) == Some("keystone"),
    })
}

/// Cache `user`'s `token` for `url`, readable by the user alone.
pub(super) fn write_cache(url: &str, user: &str, token: &str, keystone: bool) {
    let Some(path) = cache_path() else { return };
    let mut d = Dict::new();
    d.insert("url", Node::Str(url.into()));
    d.insert("user", Node::Str(user.into()));
    d.insert(
        "kind",
        Node::Str(if keystone { "keystone" } else { "internal" }.into()),
    );
    d.insert("token", Node::Str(token.into()));
    let text = Node::Dict(d).to_json(true);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode_0600()
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!("opticon: cannot write {}: {e}", path.display());
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// Read a line from the terminal; without echo for passwords.
pub(super) fn prompt(label: &str, secret: bool) -> Result<String, CommandError> {
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    // SAFETY: termios calls on standard input with a zeroed termios that
    // tcgetattr fills; echo is restored below.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if secret && libc::tcgetattr(0, &mut t) == 0 {
            let mut quiet = t;
            quiet.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &quiet);
            Some(t)
        } else {
            None
        }
    };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restores the settings read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        eprintln!();
    }
    match read {
        Ok(0) | Err(_) => Err(CommandError::Other("no input to log in with".into())),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

/// Whether standard input is a terminal (a prompt can be answered).
pub(super) fn is_tty() -> bool {
    // SAFETY: isatty has no memory effects.
    unsafe { libc::isatty(0) == 1 }
}
