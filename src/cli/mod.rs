//! `opticon`: the command-line client of `opticon-api`, with the original
//! CLI's subcommands, tables and `--json` output. See `man 1 opticon`.

pub mod client;
pub mod show;

use crate::conf::{self, Dict, Node};
use crate::svc;
use crate::svc::text::{size, table};
use client::{ClientError, Endpoint};
use getopts::{Matches, Options};
use std::fmt;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Exit status of a command the API refused or could not answer.
const EXIT_FAIL: i32 = 1;

/// Why a command failed.
#[derive(Debug)]
enum CliError {
    /// The command line is wrong: exit 2 with a hint.
    Usage(String),
    /// The API could not be reached or did not answer in HTTP.
    Client(ClientError),
    /// The API answered with an error status.
    Api(u16, String),
    /// Anything else, one line.
    Other(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Other(m) => write!(f, "{m}"),
            CliError::Client(e) => write!(f, "{e}"),
            CliError::Api(401, _) => write!(
                f,
                "not logged in, or the session expired (401): run a command on a terminal to log in, or set OPTICON_TOKEN"
            ),
            CliError::Api(403, _) => write!(
                f,
                "permission denied (403): this account cannot do that; check --tenant, or ask an administrator"
            ),
            CliError::Api(status, msg) => write!(f, "{msg} ({status})"),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError::Client(e)
    }
}

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

const COMMANDS: &str = "Commands:
  tenant-list, tenant-create [--tenant] [--key] [--name], tenant-delete,
  tenant-get-metadata, tenant-set-metadata KEY VALUE, tenant-get-quota,
  tenant-set-quota MB, tenant-get-summary,
  user-create --username [--password] [--admin], user-set-tenant --username,
  user-set-password --username, user-delete --username,
  meter-list, meter-create --meter --type [--description] [--unit],
  meter-delete --meter,
  watcher-list [--host], watcher-set --meter --level --match --value
  [--weight] [--host], watcher-delete --meter [--host],
  host-list, host-overview, host-show --host [--json] [--graphs] [--time]
  [--watch], host-delete --host, session-list, dancing-bears";

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "c",
        "config-file",
        "config file (default /etc/opticon/opticon-cli.conf)",
        "FILE",
    );
    o.optopt(
        "A",
        "api-url",
        "API URL (default http://127.0.0.1:8888)",
        "URL",
    );
    o.optopt(
        "O",
        "opticon-token",
        "token (default: OPTICON_TOKEN, the config, the cache)",
        "TOKEN",
    );
    o.optopt(
        "t",
        "tenant",
        "tenant UUID (default: OPTICON_TENANT, the config)",
        "UUID",
    );
    o.optopt("H", "host", "host UUID or hostname", "HOST");
    o.optopt("k", "key", "tenant key, base64", "KEY");
    o.optopt("n", "name", "tenant name", "NAME");
    o.optopt("l", "username", "user name", "USER");
    o.optopt(
        "p",
        "password",
        "password (prompted for when absent)",
        "PASSWORD",
    );
    o.optopt("m", "meter", "meter name", "METER");
    o.optopt(
        "Y",
        "type",
        "meter type: integer, frac, string, table",
        "TYPE",
    );
    o.optopt("D", "description", "meter description", "TEXT");
    o.optopt("U", "unit", "meter unit", "UNIT");
    o.optopt(
        "L",
        "level",
        "watcher level: warning, alert (default), critical",
        "LEVEL",
    );
    o.optopt(
        "M",
        "match",
        "watcher comparison: gt (default), lt, eq, count",
        "CMP",
    );
    o.optopt("V", "value", "watcher value", "VALUE");
    o.optopt("W", "weight", "watcher weight (default 1.0)", "WEIGHT");
    o.optopt(
        "T",
        "time",
        "host-show: the record at this time (see opticon-db(8))",
        "SPEC",
    );
    o.optflag("j", "json", "print the API's JSON");
    o.optflag("g", "graphs", "host-show: graphs of the last 12 hours");
    o.optflag(
        "w",
        "watch",
        "host-show, host-overview: refresh every 15 seconds",
    );
    o.optflag("a", "admin", "user-create: an administrator");
    svc::cli::standard(&mut o);
    o
}

/// Run `opticon` with its arguments; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = options();
    let m = match svc::cli::parse("opticon", &opts, args, "COMMAND [options]", COMMANDS) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(command) = m.free.first().cloned() else {
        return svc::cli::usage_error("opticon", "a command is required");
    };
    let result = Cli::new(&m).and_then(|mut cli| cli.command(&command, &m));
    match result {
        Ok(()) => 0,
        Err(CliError::Usage(msg)) => svc::cli::usage_error("opticon", &msg),
        Err(e) => {
            eprintln!("opticon: {e}");
            EXIT_FAIL
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The merged configuration: the system file, then `~/.opticonrc`.
fn load_config(m: &Matches) -> Result<Dict, CliError> {
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
            Err(e) => return Err(CliError::Other(e.to_string())),
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

struct Cli {
    api: Endpoint,
    token: Option<String>,
    tenant: Option<String>,
    json: bool,
    /// Whether the token came from the cache (and may be replaced).
    cached: bool,
}

fn cache_path() -> Option<PathBuf> {
    home().map(|h| h.join(".opticon-token-cache"))
}

fn read_cache(url: &str) -> Option<String> {
    let doc = conf::load_file(&cache_path()?).ok()?;
    (doc.get("url").and_then(Node::as_str) == Some(url))
        .then(|| doc.get("token").and_then(Node::as_str).map(str::to_string))
        .flatten()
}

fn write_cache(url: &str, token: &str) {
    let Some(path) = cache_path() else { return };
    let mut d = Dict::new();
    d.insert("url", Node::Str(url.into()));
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
fn prompt(label: &str, secret: bool) -> Result<String, CliError> {
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
        Ok(0) | Err(_) => Err(CliError::Other("no input to log in with".into())),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

fn is_tty() -> bool {
    // SAFETY: isatty has no memory effects.
    unsafe { libc::isatty(0) == 1 }
}

impl Cli {
    fn new(m: &Matches) -> Result<Cli, CliError> {
        let cfg = load_config(m)?;
        let url = m
            .opt_str("api-url")
            .or_else(|| {
                cfg.path("endpoints/opticon")
                    .and_then(Node::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "http://127.0.0.1:8888".into());
        let api = Endpoint::parse(&url)?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut cached = false;
        let token = m
            .opt_str("opticon-token")
            .or_else(|| env("OPTICON_TOKEN"))
            .or_else(|| {
                cfg.path("defaults/admin_token")
                    .and_then(Node::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                let t = read_cache(&url);
                cached = t.is_some();
                t
            });
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
        })
    }

    fn login(&mut self, m: &Matches) -> Result<(), CliError> {
        if !is_tty() && m.opt_str("password").is_none() {
            return Err(CliError::Api(401, String::new()));
        }
        let user = match m.opt_str("username") {
            Some(u) => u,
            None => prompt("Username", false)?,
        };
        let password = match m.opt_str("password") {
            Some(p) => p,
            None => prompt("Password", true)?,
        };
        let mut body = Dict::new();
        body.insert("username", Node::Str(user));
        body.insert("password", Node::Str(password));
        let (status, text) = self.api.request(
            "POST",
            "/login",
            &[],
            Some(&Node::Dict(body).to_json(false)),
        )?;
        if status != 200 {
            return Err(CliError::Other(format!("login failed ({status})")));
        }
        let token = parse(&text)?
            .path("token")
            .and_then(Node::as_str)
            .map(str::to_string)
            .ok_or_else(|| CliError::Other("login: no token in the answer".into()))?;
        write_cache(&self.api.url, &token);
        self.token = Some(token);
        self.cached = true;
        Ok(())
    }

    /// Call the API; logs in (once) when there is no token or the cached
    /// one expired.
    fn call(
        &mut self,
        m: &Matches,
        method: &str,
        path: &str,
        body: Option<Node>,
    ) -> Result<Node, CliError> {
        if self.token.is_none() {
            self.login(m)?;
        }
        let body = body.map(|b| b.to_json(false));
        for attempt in 0..2 {
            let token = self.token.clone().unwrap_or_default();
            let (status, text) = self.api.request(
                method,
                path,
                &[("X-Opticon-Token", token.as_str())],
                body.as_deref(),
            )?;
            if status == 401 && attempt == 0 && (self.cached || self.token.is_none()) {
                self.login(m)?;
                continue;
            }
            if status >= 400 {
                let msg = parse(&text)
                    .ok()
                    .and_then(|d| d.path("error").and_then(Node::as_str).map(str::to_string))
                    .unwrap_or_else(|| text.trim().to_string());
                return Err(CliError::Api(status, msg));
            }
            return parse(&text);
        }
        Err(CliError::Api(401, String::new()))
    }

    fn tenant(&self) -> Result<String, CliError> {
        let t = self
            .tenant
            .clone()
            .ok_or_else(|| usage("--tenant is required (or OPTICON_TENANT, or defaults/tenant)"))?;
        uuid::Uuid::parse_str(&t).map_err(|_| usage(format!("tenant {t:?} is not a UUID")))?;
        Ok(t)
    }

    /// A host by UUID, or by hostname through the tenant overview.
    fn host(&mut self, m: &Matches, t: &str) -> Result<String, CliError> {
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
            0 => Err(CliError::Other(format!(
                "no host called {h:?} in tenant {t}"
            ))),
            n => Err(CliError::Other(format!(
                "{n} hosts are called {h:?}: use the UUID"
            ))),
        }
    }

    fn print(&self, node: &Node) {
        println!("{}", node.to_json(true));
    }

    fn command(&mut self, command: &str, m: &Matches) -> Result<(), CliError> {
        let need = |k: &str| {
            m.opt_str(k)
                .ok_or_else(|| usage(format!("--{k} is required")))
        };
        match command {
            "tenant-list" => {
                let doc = self.call(m, "GET", "/", None)?;
                if self.json {
                    self.print(&doc);
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
            }
            "tenant-create" => {
                let id = match m.opt_str("tenant") {
                    Some(t) => t,
                    None => crate::crypto::random_uuid()
                        .map_err(|e| CliError::Other(e.to_string()))?
                        .to_string(),
                };
                let mut spec = Dict::new();
                spec.insert("name", Node::Str(m.opt_str("name").unwrap_or_default()));
                if let Some(k) = m.opt_str("key") {
                    spec.insert("key", Node::Str(k));
                }
                let doc = self.call(
                    m,
                    "POST",
                    &format!("/{id}"),
                    Some(wrap("tenant", Node::Dict(spec))),
                )?;
                if self.json {
                    self.print(&doc);
                } else {
                    println!(
                        "Name:    {}\nUUID:    {id}\nAES Key: {}",
                        show::text(doc.path("tenant/name")),
                        show::text(doc.path("tenant/key"))
                    );
                }
            }
            "tenant-delete" => {
                let t = self.tenant()?;
                self.call(m, "DELETE", &format!("/{t}"), None)?;
            }
            "tenant-get-metadata" => {
                let t = self.tenant()?;
                let doc = self.call(m, "GET", &format!("/{t}/meta"), None)?;
                self.print(doc.path("metadata").unwrap_or(&doc));
            }
            "tenant-set-metadata" => {
                let t = self.tenant()?;
                let [_, key, value] = &m.free[..] else {
                    return Err(usage("tenant-set-metadata KEY VALUE"));
                };
                let v = conf::parse(&format!("v {value}"))
                    .ok()
                    .and_then(|d| d.get("v").cloned())
                    .unwrap_or_else(|| Node::Str(value.clone()));
                let mut meta = Dict::new();
                meta.insert(key.clone(), v);
                self.call(
                    m,
                    "POST",
                    &format!("/{t}/meta"),
                    Some(wrap("metadata", Node::Dict(meta))),
                )?;
            }
            "tenant-get-quota" => {
                let t = self.tenant()?;
                let doc = self.call(m, "GET", &format!("/{t}/quota"), None)?;
                if self.json {
                    self.print(&doc);
                } else {
                    println!(
                        "Tenant storage quota: {} MB\nCurrent usage: {:.2} %",
                        show::text(doc.path("quota")),
                        doc.path("usage").and_then(Node::as_f64).unwrap_or(0.0)
                    );
                }
            }
            "tenant-set-quota" => {
                let t = self.tenant()?;
                let [_, mb] = &m.free[..] else {
                    return Err(usage("tenant-set-quota MB"));
                };
                let mb: i64 = mb
                    .parse()
                    .map_err(|_| usage(format!("{mb:?} is not a number of MB")))?;
                let mut spec = Dict::new();
                spec.insert("quota", Node::Int(mb));
                self.call(
                    m,
                    "PUT",
                    &format!("/{t}"),
                    Some(wrap("tenant", Node::Dict(spec))),
                )?;
            }
            "tenant-get-summary" => {
                let t = self.tenant()?;
                let doc = self.call(m, "GET", &format!("/{t}/summary"), None)?;
                self.print(doc.path("summary").unwrap_or(&doc));
            }
            "user-create" | "user-set-tenant" | "user-set-password" => {
                let name = need("username")?;
                let mut spec = Dict::new();
                if command != "user-set-tenant" {
                    let password = match m.opt_str("password") {
                        Some(p) => p,
                        None => prompt(&format!("New password for {name}"), true)?,
                    };
                    spec.insert("password", Node::Str(password));
                }
                if command != "user-set-password" {
                    if let Some(t) = self.tenant.clone() {
                        spec.insert("tenant", Node::Str(t));
                    }
                }
                if m.opt_present("admin") {
                    spec.insert("level", Node::Str("ADMIN".into()));
                }
                let method = if command == "user-create" {
                    "PUT"
                } else {
                    "POST"
                };
                self.call(m, method, &format!("/user/{name}"), Some(Node::Dict(spec)))?;
            }
            "user-delete" => {
                let name = need("username")?;
                self.call(m, "DELETE", &format!("/user/{name}"), None)?;
            }
            "meter-list" => {
                let t = self.tenant()?;
                let doc = self.call(m, "GET", &format!("/{t}/meter"), None)?;
                if self.json {
                    self.print(&doc);
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
            }
            "meter-create" => {
                let t = self.tenant()?;
                let id = need("meter")?;
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
                self.call(
                    m,
                    "POST",
                    &format!("/{t}/meter/{id}"),
                    Some(wrap("meter", Node::Dict(spec))),
                )?;
            }
            "meter-delete" => {
                let t = self.tenant()?;
                let id = need("meter")?;
                self.call(m, "DELETE", &format!("/{t}/meter/{id}"), None)?;
            }
            "watcher-list" => {
                let t = self.tenant()?;
                let base = self.watcher_base(m, &t)?;
                let doc = self.call(m, "GET", &format!("{base}/watcher"), None)?;
                if self.json {
                    self.print(&doc);
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
            }
            "watcher-set" => {
                let t = self.tenant()?;
                let id = need("meter")?;
                let value = need("value")?;
                let level = m.opt_str("level").unwrap_or_else(|| "alert".into());
                let mut w = Dict::new();
                w.insert(
                    "cmp",
                    Node::Str(m.opt_str("match").unwrap_or_else(|| "gt".into())),
                );
                w.insert("val", Node::Str(value));
                let weight: f64 = m
                    .opt_str("weight")
                    .unwrap_or_else(|| "1.0".into())
                    .parse()
                    .map_err(|_| usage("--weight is not a number"))?;
                w.insert("weight", Node::Frac(weight));
                let base = self.watcher_base(m, &t)?;
                self.call(
                    m,
                    "POST",
                    &format!("{base}/watcher/{id}"),
                    Some(wrap("watcher", wrap(&level, Node::Dict(w)))),
                )?;
            }
            "watcher-delete" => {
                let t = self.tenant()?;
                let id = need("meter")?;
                let base = self.watcher_base(m, &t)?;
                self.call(m, "DELETE", &format!("{base}/watcher/{id}"), None)?;
            }
            "host-list" => {
                let t = self.tenant()?;
                let doc = self.call(m, "GET", &format!("/{t}/host"), None)?;
                if self.json {
                    self.print(&doc);
                } else {
                    let rows = items(&doc, "host")
                        .iter()
                        .map(|h| {
                            let bytes =
                                h.path("usage").and_then(Node::as_int).unwrap_or(0).max(0) as u64;
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
            }
            "host-overview" => {
                let t = self.tenant()?;
                self.repeat(m, |cli| {
                    let doc = cli.call(m, "GET", &format!("/{t}/host/overview"), None)?;
                    Ok(if cli.json {
                        doc.to_json(true) + "\n"
                    } else {
                        show::overview(&doc, show::width())
                    })
                })?;
            }
            "host-show" => {
                let t = self.tenant()?;
                let h = self.host(m, &t)?;
                let path = match m.opt_str("time") {
                    Some(spec) => format!("/{t}/host/{h}/time/{spec}"),
                    None => format!("/{t}/host/{h}"),
                };
                self.repeat(m, |cli| {
                    let doc = cli.call(m, "GET", &path, None)?;
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
            }
            "host-delete" => {
                let t = self.tenant()?;
                let h = self.host(m, &t)?;
                self.call(m, "DELETE", &format!("/{t}/host/{h}"), None)?;
            }
            "session-list" => {
                let doc = self.call(m, "GET", "/session", None)?;
                if self.json {
                    self.print(&doc);
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
            }
            "dancing-bears" => {
                let doc = self.call(m, "GET", "/obligatory-dancing-bears", None)?;
                println!("{}", show::text(doc.path("bear")));
            }
            other => return Err(usage(format!("unknown command {other:?}"))),
        }
        Ok(())
    }

    /// `/{T}` or, with `--host`, `/{T}/host/{H}`.
    fn watcher_base(&mut self, m: &Matches, t: &str) -> Result<String, CliError> {
        Ok(match m.opt_str("host") {
            Some(_) => format!("/{t}/host/{}", self.host(m, t)?),
            None => format!("/{t}"),
        })
    }

    /// Print what `render` makes once, or every 15 seconds with `--watch`.
    fn repeat(
        &mut self,
        m: &Matches,
        mut render: impl FnMut(&mut Cli) -> Result<String, CliError>,
    ) -> Result<(), CliError> {
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
            std::thread::sleep(std::time::Duration::from_secs(15));
        }
    }
}

fn parse(text: &str) -> Result<Node, CliError> {
    conf::parse(text)
        .map(Node::Dict)
        .map_err(|e| CliError::Other(format!("the API's answer is not JSON: {e}")))
}

fn wrap(key: &str, value: Node) -> Node {
    crate::db::views::wrap(key, value)
}

/// The array under `key`.
fn items<'a>(doc: &'a Node, key: &str) -> &'a [Node] {
    match doc.path(key) {
        Some(Node::Array(a)) => a,
        _ => &[],
    }
}

/// The entries of the object under `key`, keys as given.
fn entries(doc: &Node, key: &str) -> Vec<(String, Node)> {
    match doc.as_dict().and_then(|d| d.get(key)) {
        Some(Node::Dict(d)) => d.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        _ => Vec::new(),
    }
}
