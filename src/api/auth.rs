//! Who is asking: the admin token (only from admin hosts), internal users
//! with PBKDF2-HMAC-SHA256 password hashes, and login sessions that
//! survive a restart (stored as hashes of their tokens).

use crate::base64;
use crate::conf::{self, Dict, Node};
use crate::crypto::{self, hmac_sha256};
use crate::db::{write_atomic, DbError};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use uuid::Uuid;

/// PBKDF2 iterations for new password hashes.
pub const ITERATIONS: u32 = 100_000;
/// Seconds a login session lasts.
pub const SESSION_LIFETIME: i64 = 12 * 3600;
/// Users file in the database root.
pub const USERS_FILE: &str = "api.users";
/// Sessions file in the database root.
pub const SESSIONS_FILE: &str = "api.sessions";

/// What a request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No valid credentials.
    Guest,
    /// A user of one tenant.
    User {
        /// The user's name.
        name: String,
        /// The only tenant it may see.
        tenant: Uuid,
        /// Whether it may only read (a Keystone `reader`).
        read_only: bool,
    },
    /// Everything.
    Admin,
}

impl Access {
    /// The original's level names (`/token`).
    pub fn level(&self) -> &'static str {
        match self {
            Access::Guest => "AUTH_GUEST",
            Access::User { .. } => "AUTH_USER",
            Access::Admin => "AUTH_ADMIN",
        }
    }

    /// May this access read and change `tenant`?
    pub fn may(&self, tenant: Uuid) -> bool {
        match self {
            Access::Admin => true,
            Access::User { tenant: t, .. } => *t == tenant,
            Access::Guest => false,
        }
    }
}

/// Errors of the user and session stores.
#[derive(Debug)]
pub enum AuthError {
    /// A stored file could not be read or written.
    Store(DbError),
    /// A stored file does not parse.
    Corrupt(PathBuf, String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Store(e) => write!(f, "{e}"),
            AuthError::Corrupt(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for AuthError {}

/// PBKDF2-HMAC-SHA256 (RFC 8018) with a 32-byte output.
pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &[&block]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &[&u]);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// Compare in time independent of where the inputs differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A stored password hash: `pbkdf2-sha256$ITER$SALT$HASH` (base64).
pub fn hash_password(password: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    crypto::random_bytes(&mut salt)?;
    let hash = pbkdf2(password.as_bytes(), &salt, ITERATIONS);
    Ok(format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        base64::encode(&salt),
        base64::encode(&hash)
    ))
}

/// Does `password` match the stored `hash`?
pub fn check_password(password: &str, hash: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    let [scheme, iter, salt, want] = parts[..] else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(want)) = (
        iter.parse::<u32>(),
        base64::decode(salt),
        base64::decode(want),
    ) else {
        return false;
    };
    if scheme != "pbkdf2-sha256" || iter == 0 || iter > 10_000_000 {
        return false;
    }
    same(&pbkdf2(password.as_bytes(), &salt, iter), &want)
}

/// One internal user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The password hash.
    pub hash: String,
    /// The tenant it belongs to (none for admins).
    pub tenant: Option<Uuid>,
    /// Whether it is an administrator.
    pub admin: bool,
}

use crate::model::unix_now as now;

fn load(path: &Path) -> Result<Dict, AuthError> {
    match conf::load_file(path) {
        Ok(d) => Ok(d),
        Err(conf::FileError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Dict::new())
        }
        Err(e) => Err(AuthError::Corrupt(path.to_path_buf(), e.to_string())),
    }
}

/// The SHA-256 of a token, as stored: a leaked sessions file gives no
/// usable token.
fn token_hash(token: &str) -> String {
    hmac_sha256(b"opticon-session", &[token.as_bytes()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Users and login sessions, in files under the database root.
pub struct Store {
    users_path: PathBuf,
    sessions_path: PathBuf,
    users: Mutex<HashMap<String, User>>,
    /// Token hash to (user name, expiry).
    sessions: Mutex<HashMap<String, (String, i64)>>,
}

impl Store {
    /// Load the users and the sessions still valid.
    pub fn open(root: &Path) -> Result<Store, AuthError> {
        let users_path = root.join(USERS_FILE);
        let sessions_path = root.join(SESSIONS_FILE);
        let mut users = HashMap::new();
        if let Some(Node::Dict(all)) = load(&users_path)?.get("user") {
            for (name, u) in all.iter() {
                let hash = u
                    .path("hash")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_string();
                let tenant = u
                    .path("tenant")
                    .and_then(Node::as_str)
                    .and_then(|t| Uuid::parse_str(t).ok());
                let admin = u.path("level").and_then(Node::as_str) == Some("ADMIN");
                users.insert(
                    name.to_string(),
                    User {
                        hash,
                        tenant,
                        admin,
                    },
                );
            }
        }
        let mut sessions = HashMap::new();
        let t = now();
        if let Some(Node::Dict(all)) = load(&sessions_path)?.get("session") {
            for (hash, s) in all.iter() {
                let user = s.path("user").and_then(Node::as_str).unwrap_or("");
                let expires = s.path("expires").and_then(Node::as_int).unwrap_or(0);
                if expires > t && users.contains_key(user) {
                    sessions.insert(hash.to_string(), (user.to_string(), expires));
                }
            }
        }
        Ok(Store {
            users_path,
            sessions_path,
            users: Mutex::new(users),
            sessions: Mutex::new(sessions),
        })
    }

    fn save_users(&self, users: &HashMap<String, User>) -> Result<(), AuthError> {
        let mut all = Dict::new();
        let mut names: Vec<&String> = users.keys().collect();
        names.sort();
        for name in names {
            let u = &users[name];
            let mut d = Dict::new();
            d.insert("hash", Node::Str(u.hash.clone()));
            if let Some(t) = u.tenant {
                d.insert("tenant", Node::Str(t.to_string()));
            }
            d.insert(
                "level",
                Node::Str(if u.admin { "ADMIN" } else { "USER" }.into()),
            );
            all.insert(name.clone(), Node::Dict(d));
        }
        let mut doc = Dict::new();
        doc.insert("user", Node::Dict(all));
        write_atomic(&self.users_path, Node::Dict(doc).to_json(true).as_bytes())
            .map_err(AuthError::Store)
    }

    fn save_sessions(&self, sessions: &HashMap<String, (String, i64)>) -> Result<(), AuthError> {
        let mut all = Dict::new();
        for (hash, (user, expires)) in sessions {
            let mut d = Dict::new();
            d.insert("user", Node::Str(user.clone()));
            d.insert("expires", Node::Int(*expires));
            all.insert(hash.clone(), Node::Dict(d));
        }
        let mut doc = Dict::new();
        doc.insert("session", Node::Dict(all));
        write_atomic(
            &self.sessions_path,
            Node::Dict(doc).to_json(true).as_bytes(),
        )
        .map_err(AuthError::Store)
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<User> {
        self.users.lock().ok()?.get(name).cloned()
    }

    /// Create, replace or change a user, and save.
    pub fn put_user(&self, name: &str, user: User) -> Result<(), AuthError> {
        let Ok(mut users) = self.users.lock() else {
            return Ok(());
        };
        users.insert(name.to_string(), user);
        self.save_users(&users)
    }

    /// Delete a user and its sessions; false when there was none.
    pub fn delete_user(&self, name: &str) -> Result<bool, AuthError> {
        let Ok(mut users) = self.users.lock() else {
            return Ok(false);
        };
        if users.remove(name).is_none() {
            return Ok(false);
        }
        self.save_users(&users)?;
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, (u, _)| u != name);
            self.save_sessions(&sessions)?;
        }
        Ok(true)
    }

    /// Check a password; on success open a session and return its token.
    pub fn login(&self, name: &str, password: &str) -> Result<Option<String>, AuthError> {
        let Some(user) = self.user(name) else {
            // The same work as a real check: no timing hint that the user
            // does not exist.
            let _ = check_password(password, &format!("pbkdf2-sha256${ITERATIONS}$AAAA$AAAA"));
            return Ok(None);
        };
        if !check_password(password, &user.hash) {
            return Ok(None);
        }
        let token = crypto::random_uuid()
            .map_err(|e| AuthError::Store(DbError::Io(self.sessions_path.clone(), e)))?
            .to_string();
        if let Ok(mut sessions) = self.sessions.lock() {
            let t = now();
            sessions.retain(|_, (_, expires)| *expires > t);
            sessions.insert(token_hash(&token), (name.to_string(), t + SESSION_LIFETIME));
            self.save_sessions(&sessions)?;
        }
        Ok(Some(token))
    }

    /// The access a session token gives, if it is a live session.
    pub fn session(&self, token: &str) -> Option<Access> {
        let name = {
            let sessions = self.sessions.lock().ok()?;
            let (name, expires) = sessions.get(&token_hash(token))?;
            if *expires <= now() {
                return None;
            }
            name.clone()
        };
        let user = self.user(&name)?;
        Some(match (user.admin, user.tenant) {
            (true, _) => Access::Admin,
            (false, Some(tenant)) => Access::User {
                name,
                tenant,
                read_only: false,
            },
            (false, None) => Access::Guest,
        })
    }
}

/// An address or a network (`192.0.2.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

/// Text that is not an address or a network, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// The address part does not parse.
    Address(String),
    /// The prefix length is not a number up to the address's width.
    Prefix(String),
}

impl std::fmt::Display for CidrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CidrError::Address(s) => write!(f, "{s:?} is not an address or network"),
            CidrError::Prefix(s) => write!(f, "{s:?}: bad prefix length"),
        }
    }
}

impl std::error::Error for CidrError {}

impl std::str::FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(s.to_string()))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() {
            max
        } else {
            bits.parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| CidrError::Prefix(s.to_string()))?
        };
        Ok(Cidr { net, bits })
    }
}

impl Cidr {
    /// Is `ip` inside (IPv4 addresses mapped into IPv6 count as IPv4)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = crate::svc::net::unmapped_ip(ip);
        let (a, b, width) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(i)), 32u32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= 128 || (a >> shift) == (b >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_known_answers() {
        // RFC 7914 section 11 vectors for PBKDF2-HMAC-SHA256 (first 32
        // bytes of the 64-byte output).
        let out = pbkdf2(b"passwd", b"salt", 1);
        assert_eq!(out[..8], [0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f]);
        let out = pbkdf2(b"Password", b"NaCl", 80000);
        assert_eq!(out[..8], [0x4d, 0xdc, 0xd8, 0xf6, 0x0b, 0x98, 0xbe, 0x21]);
        let h = hash_password("secret").unwrap();
        assert!(check_password("secret", &h));
        assert!(!check_password("Secret", &h));
        assert!(!check_password("secret", "md5$x$y"));
    }

    #[test]
    fn networks() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }
}
