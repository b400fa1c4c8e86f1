//! A small HTTP/1.1 client: one request per connection, bodies read to
//! the close, plain `http://` (a TLS server is reached through a local
//! TLS proxy). Used by `opticon` for the API and for Keystone, and by
//! `opticon-api` for Keystone; bounded in bytes and in time.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The largest response read from an API: a tenant overview of 100,000
/// hosts is about 40 MB. A larger one is refused, not buffered.
pub const MAX_RESPONSE: usize = 128 << 20;

/// How long a whole request may take by default (connecting, sending,
/// and reading the whole response).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One answer: status, headers (names in lower case) and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured, for messages.
    pub url: String,
    host: String,
    port: u16,
    prefix: String,
    /// How long a whole request may take.
    pub timeout: Duration,
}

/// Why a request got no answer from the API.
#[derive(Debug)]
pub enum ClientError {
    /// The URL is not `http://host[:port][/prefix]`.
    BadUrl(String),
    /// The API could not be reached.
    Unreachable(String, std::io::Error),
    /// The answer is not HTTP.
    BadResponse(String),
    /// The response is larger than [`MAX_RESPONSE`].
    TooLarge(String),
    /// The whole request took longer than the timeout.
    Timeout(String, Duration),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadUrl(u) => write!(
                f,
                "{u:?} is not an API URL (http://host[:port][/path]; put a TLS proxy in front for https)"
            ),
            ClientError::Unreachable(u, e) => write!(f, "cannot reach the API at {u}: {e}"),
            ClientError::BadResponse(u) => write!(f, "{u} did not answer in HTTP"),
            ClientError::TooLarge(u) => write!(
                f,
                "{u} sent a response larger than {} MB; refused",
                MAX_RESPONSE >> 20
            ),
            ClientError::Timeout(u, t) => write!(
                f,
                "{u} did not answer in full within {} s (--timeout)",
                t.as_secs()
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl Endpoint {
    /// Parse `http://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = || ClientError::BadUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(bad)?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        let port = if port.is_empty() {
            80
        } else {
            port.parse().map_err(|_| bad())?
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            url: url.to_string(),
            host,
            port,
            prefix: prefix.to_string(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Send one request; returns the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<(u16, String), ClientError> {
        self.exchange(method, path, headers, body)
            .map(|r| (r.status, r.body))
    }

    /// Send one request (a JSON body, if any); returns the whole reply.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let body = body.unwrap_or("").as_bytes();
        let json: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let all: Vec<(&str, &str)> = json.iter().chain(headers).copied().collect();
        self.send(method, path, &all, body)
    }

    /// Send one request with a body of any kind (its headers, such as
    /// `Content-Type`, in `headers`); returns the whole reply.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ClientError> {
        let unreachable = |e| ClientError::Unreachable(self.url.clone(), e);
        let deadline = Instant::now() + self.timeout;
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| {
                unreachable(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no address",
                ))
            })?;
        let mut s = TcpStream::connect_timeout(&addr, self.timeout.min(Duration::from_secs(10)))
            .map_err(unreachable)?;
        s.set_write_timeout(Some(self.timeout))
            .map_err(unreachable)?;
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.prefix,
            self.host,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut req = req.into_bytes();
        req.extend_from_slice(body);
        // A server may answer and close before reading the whole body
        // (a 400 for a path it does not serve): its answer still counts.
        if let Err(e) = s.write_all(&req) {
            if !matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) {
                return Err(unreachable(e));
            }
        }
        let raw = self.read_bounded(&mut s, deadline)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| ClientError::BadResponse(self.url.clone()))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ClientError::BadResponse(self.url.clone()))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Reply {
            status,
            headers,
            body: body.to_string(),
        })
    }

    /// The whole response, until the server closes: refused past
    /// [`MAX_RESPONSE`] bytes or the deadline (a server trickling a byte
    /// at a time cannot hold the client).
    fn read_bounded(&self, s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ClientError> {
        let mut raw = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout(self.url.clone(), self.timeout));
            }
            s.set_read_timeout(Some(left))
                .map_err(|e| ClientError::Unreachable(self.url.clone(), e))?;
            match s.read(&mut chunk) {
                Ok(0) => return Ok(raw),
                Ok(n) => {
                    if raw.len() + n > MAX_RESPONSE + 16 * 1024 {
                        return Err(ClientError::TooLarge(self.url.clone()));
                    }
                    raw.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ClientError::Timeout(self.url.clone(), self.timeout))
                }
                // Reset after the answer arrived: the answer stands.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => {
                    return Ok(raw)
                }
                Err(e) => return Err(ClientError::Unreachable(self.url.clone(), e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://api.example.net:8888/opticon/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str()),
            ("api.example.net", 8888, "/opticon")
        );
        let e = Endpoint::parse("http://[::1]:8888").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8888));
        assert_eq!(Endpoint::parse("http://h").unwrap().port, 80);
        for bad in ["https://h", "h:1", "http://", "http://h:x"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
