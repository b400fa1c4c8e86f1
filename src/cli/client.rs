//! A small HTTP/1.1 client for the API: one request per connection,
//! `Content-Length` bodies, plain `http://` (put a TLS proxy in front of
//! the API for traffic that leaves the machine).

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured, for messages.
    pub url: String,
    host: String,
    port: u16,
    prefix: String,
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
        let unreachable = |e| ClientError::Unreachable(self.url.clone(), e);
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
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(unreachable)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(unreachable)?;
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.prefix,
            self.host,
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).map_err(unreachable)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(unreachable)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| ClientError::BadResponse(self.url.clone()))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ClientError::BadResponse(self.url.clone()))?;
        Ok((status, body.to_string()))
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
