//! What every command works with: the API endpoint, the token (logging
//! in once when needed), the tenant, `--json`, and small readers of the
//! API's answers.

use super::config::load_config;
use super::error::{usage, CommandError};
use super::token::{is_tty, prompt, read_cache, write_cache};
use crate::conf::{self, Dict, Node};
use crate::svc::httpc::Endpoint;
use getopts::Matches;
use std::io::Write;

/// The client's state for one run: endpoint, credentials and output mode.
pub struct Cli {
    pub(super) api: Endpoint,
    pub(super) token: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) json: bool,
    /// Whether the token came from the cache (and may be replaced).
    pub(super) cached: bool,
    /// `--username`/`--password` are this run's login (not the account a
    /// `user-*` command acts on): they win over every stored token.
    pub(super) explicit_login: bool,
    /// Keystone, when logins go there (`-X`, `endpoints/keystone`).
    pub(super) keystone: Option<Endpoint>,
    /// The Keystone project and domain to log in to.
    pub(super) project: Option<String>,
    pub(super) domain: String,
    /// Whether the token is Keystone's (sent as `X-Auth-Token`).
    pub(super) token_is_keystone: bool,
}

impl Cli {
    pub(super) fn new(m: &Matches) -> Result<Cli, CommandError> {
        let cfg = load_config(m)?;
        let url = m
            .opt_str("api-url")
            .or_else(|| {
                cfg.path("endpoints/opticon")
                    .and_then(Node::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "http://127.0.0.1:8888".into());
        let mut api = Endpoint::parse(&url)?;
        if let Some(t) = m.opt_str("timeout") {
            match t.parse::<u64>() {
                Ok(secs) if secs > 0 => api.timeout = std::time::Duration::from_secs(secs),
                _ => {
                    return Err(usage(format!(
                        "--timeout {t:?} is not a positive number of seconds"
                    )))
                }
            }
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut cached = false;
        let mut token_is_keystone = false;
        let command = m.free.first().map(String::as_str).unwrap_or("");
        let explicit_login = !command.starts_with("user-")
            && (m.opt_present("username") || m.opt_present("password"));
        if explicit_login && m.opt_present("opticon-token") {
            return Err(usage(
                "give --opticon-token or --username/--password, not both",
            ));
        }
        let token = if explicit_login {
            // Explicit credentials win: a cached session is used only when
            // it is this user's and no password was given to log in with.
            let user = m.opt_str("username");
            match read_cache(&url) {
                Some(c)
                    if m.opt_str("password").is_none()
                        && user.as_deref() == Some(c.user.as_str()) =>
                {
                    cached = true;
                    token_is_keystone = c.keystone;
                    Some(c.token)
                }
                _ => None,
            }
        } else {
            m.opt_str("opticon-token")
                .or_else(|| env("OPTICON_TOKEN"))
                .or_else(|| {
                    cfg.path("defaults/admin_token")
                        .and_then(Node::as_str)
                        .map(str::to_string)
                })
                .or_else(|| {
                    let c = read_cache(&url)?;
                    cached = true;
                    token_is_keystone = c.keystone;
                    Some(c.token)
                })
        };
        let keystone = match m.opt_str("keystone-url").or_else(|| {
            cfg.path("endpoints/keystone")
                .and_then(Node::as_str)
                .map(str::to_string)
        }) {
            Some(u) => {
                let mut u = u.trim_end_matches('/').to_string();
                if !u.ends_with("/v3") {
                    u.push_str("/v3");
                }
                let mut e = Endpoint::parse(&u)?;
                e.timeout = api.timeout;
                Some(e)
            }
            None => None,
        };
        let text = |k: &str| cfg.path(k).and_then(Node::as_str).map(str::to_string);
        let tenant = m
            .opt_str("tenant")
            .or_else(|| env("OPTICON_TENANT"))
            .or_else(|| {
                cfg.path("defaults/tenant")
                    .and_then(Node::as_str)
                    .map(str::to_string)
            });
        Ok(Cli {
            api,
            token,
            tenant,
            json: m.opt_present("json"),
            cached,
            explicit_login,
            keystone,
            project: m.opt_str("project").or_else(|| text("defaults/project")),
            domain: m
                .opt_str("domain")
                .or_else(|| text("defaults/domain"))
                .unwrap_or_else(|| "Default".into()),
            token_is_keystone,
        })
    }

    fn login(&mut self, m: &Matches) -> Result<(), CommandError> {
        let given = |k: &str| self.explicit_login.then(|| m.opt_str(k)).flatten();
        if !is_tty() && given("password").is_none() {
            // Tell an API that does not answer from a missing login.
            self.api.request("GET", "/token", &[], None)?;
            return Err(CommandError::Other(
                "not logged in: no token (--opticon-token, OPTICON_TOKEN, defaults/admin_token or a cached login) and no terminal to ask for a password (or give --username and --password)".into(),
            ));
        }
        let user = match given("username") {
            Some(u) => u,
            None => prompt("Username", false)?,
        };
        let password = match given("password") {
            Some(p) => p,
            None => prompt(&format!("Password for {user}"), true)?,
        };
        if let Some(ks) = &self.keystone {
            use crate::svc::keystone::{password_login, Login};
            let project = self
                .project
                .clone()
                .or_else(|| self.tenant.clone())
                .ok_or_else(|| usage("Keystone login: --project (or --tenant) is required"))?;
            return match password_login(ks, &user, &password, &project, &self.domain)? {
                Login::Token(token) => {
                    write_cache(&self.api.url, &user, &token, true);
                    self.token = Some(token);
                    self.token_is_keystone = true;
                    self.cached = false;
                    Ok(())
                }
                Login::Refused(s) => Err(CommandError::Other(format!(
                    "Keystone at {} refused {user} for project {project} ({s}): wrong user name, password, project or domain",
                    ks.url
                ))),
                Login::Failed(s) => Err(CommandError::Other(format!(
                    "Keystone at {} answered {s}",
                    ks.url
                ))),
            };
        }
        let mut body = Dict::new();
        body.insert("username", Node::Str(user.clone()));
        body.insert("password", Node::Str(password));
        let (status, text) = self.api.request(
            "POST",
            "/login",
            &[],
            Some(&Node::Dict(body).to_json(false)),
        )?;
        match status {
            200 => {}
            401 | 403 => {
                return Err(CommandError::Other(format!(
                    "wrong user name or password for {user} ({status})"
                )))
            }
            429 => {
                return Err(CommandError::Other(format!(
                    "too many failed logins for {user} or from this address; wait a minute (429)"
                )))
            }
            _ => {
                return Err(CommandError::Other(format!(
                    "login failed: {} ({status})",
                    api_message(&text)
                )))
            }
        }
        let token = parse(&text)?
            .path("token")
            .and_then(Node::as_str)
            .map(str::to_string)
            .ok_or_else(|| CommandError::Other("login: no token in the answer".into()))?;
        write_cache(&self.api.url, &user, &token, false);
        self.token_is_keystone = false;
        self.token = Some(token);
        // A token just issued is not retried with another login.
        self.cached = false;
        Ok(())
    }

    /// Call the API; logs in (once) when there is no token or the cached
    /// one expired.
    pub(super) fn call(
        &mut self,
        m: &Matches,
        method: &str,
        path: &str,
        body: Option<Node>,
    ) -> Result<Node, CommandError> {
        if self.token.is_none() {
            self.login(m)?;
        }
        let body = body.map(|b| b.to_json(false));
        for attempt in 0..2 {
            let token = self.token.clone().unwrap_or_default();
            let (status, text) = self.api.request(
                method,
                path,
                &[(
                    if self.token_is_keystone {
                        "X-Auth-Token"
                    } else {
                        "X-Opticon-Token"
                    },
                    token.as_str(),
                )],
                body.as_deref(),
            )?;
            if status == 401 && attempt == 0 && self.cached {
                self.login(m)?;
                continue;
            }
            if status >= 400 {
                return Err(CommandError::Api(status, api_message(&text)));
            }
            return parse(&text);
        }
        Err(CommandError::Api(401, String::new()))
    }

    pub(super) fn tenant(&self) -> Result<String, CommandError> {
        let t = self
            .tenant
            .clone()
            .ok_or_else(|| usage("--tenant is required (or OPTICON_TENANT, or defaults/tenant)"))?;
        uuid::Uuid::parse_str(&t).map_err(|_| usage(format!("tenant {t:?} is not a UUID")))?;
        Ok(t)
    }

    /// A host by UUID, or by hostname through the tenant overview.
    pub(super) fn host(&mut self, m: &Matches, t: &str) -> Result<String, CommandError> {
        let h = m
            .opt_str("host")
            .ok_or_else(|| usage("--host is required"))?;
        if uuid::Uuid::parse_str(&h).is_ok() {
            return Ok(h);
        }
        let overview = self.call(m, "GET", &format!("/{t}/host/overview"), None)?;
        let matches: Vec<String> = match overview.path("overview") {
            Some(Node::Dict(d)) => d
                .iter()
                .filter(|(_, e)| {
                    e.as_dict()
                        .and_then(|e| e.get("hostname"))
                        .and_then(Node::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&h))
                })
                .map(|(id, _)| id.to_string())
                .collect(),
            _ => Vec::new(),
        };
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(CommandError::Other(format!(
                "no host called {h:?} in tenant {t}"
            ))),
            n => Err(CommandError::Other(format!(
                "{n} hosts are called {h:?}: use the UUID"
            ))),
        }
    }

    /// Confirm what a write command did, in one line (not with `--json`,
    /// whose output stays a document or nothing).
    pub(super) fn done(&self, what: &str) {
        if !self.json {
            println!("{}", crate::svc::text::printable(what));
        }
    }

    /// Print a JSON document as the API sent it.
    pub(super) fn print(&self, node: &Node) {
        println!("{}", node.to_json(true));
    }

    /// `/{T}` or, with `--host`, `/{T}/host/{H}`.
    pub(super) fn watcher_base(&mut self, m: &Matches, t: &str) -> Result<String, CommandError> {
        Ok(match m.opt_str("host") {
            Some(_) => format!("/{t}/host/{}", self.host(m, t)?),
            None => format!("/{t}"),
        })
    }

    /// Print what `render` makes once, or with `--watch` again every
    /// `--interval` seconds (default 15).
    pub(super) fn repeat(
        &mut self,
        m: &Matches,
        mut render: impl FnMut(&mut Cli) -> Result<String, CommandError>,
    ) -> Result<(), CommandError> {
        let every = match m.opt_str("interval") {
            None => 15,
            Some(s) => s.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                usage(format!(
                    "--interval {s:?} is not a positive number of seconds"
                ))
            })?,
        };
        loop {
            let text = render(self)?;
            if m.opt_present("watch") {
                print!("\x1b[H\x1b[2J");
            }
            print!("{text}");
            let _ = std::io::stdout().flush();
            if !m.opt_present("watch") {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_secs(every));
        }
    }
}

/// The API's answer as a document.
/// The API's `error` message of an error response, else its text.
fn api_message(text: &str) -> String {
    parse(text)
        .ok()
        .and_then(|d| d.path("error").and_then(Node::as_str).map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string())
}

pub(super) fn parse(text: &str) -> Result<Node, CommandError> {
    conf::parse(text)
        .map(Node::Dict)
        .map_err(|e| CommandError::Other(format!("the API's answer is not JSON: {e}")))
}

/// `{key: value}`.
pub(super) fn wrap(key: &str, value: Node) -> Node {
    crate::db::views::wrap(key, value)
}

/// The array under `key`.
pub(super) fn items<'a>(doc: &'a Node, key: &str) -> &'a [Node] {
    match doc.path(key) {
        Some(Node::Array(a)) => a,
        _ => &[],
    }
}

/// The entries of the object under `key`, keys as given.
pub(super) fn entries(doc: &Node, key: &str) -> Vec<(String, Node)> {
    match doc.as_dict().and_then(|d| d.get(key)) {
        Some(Node::Dict(d)) => d.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

/// The value of option `--name`, which this command requires.
pub(super) fn need(m: &Matches, name: &str) -> Result<String, CommandError> {
    m.opt_str(name)
        .ok_or_else(|| usage(format!("--{name} is required")))
}
