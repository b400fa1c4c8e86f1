//! HTTP/1.1 requests and responses, as much as the API needs (RFC 9112):
//! a request line, headers, and a body delimited by `Content-Length` or
//! chunked, each bounded; ambiguous framing and anything else is refused
//! with the status that says why.

use std::fmt::Write as _;

/// Longest request line and header block together.
pub const MAX_HEAD: usize = 16 << 10;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// Largest request body.
pub const MAX_BODY: usize = 1 << 20;

/// A complete request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// Why bytes received are not (yet) a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    /// The bytes can never become a request: answer with this status and
    /// close.
    Bad(u16, &'static str),
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a request's body is delimited (RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request line and its headers, before the body is read.
#[derive(Debug, Clone)]
pub struct Head {
    /// The request as far as the head tells it (an empty body).
    pub request: Request,
    /// How the body is delimited.
    pub framing: Framing,
    /// The client sent `Expect: 100-continue` and waits before the body.
    pub expect_continue: bool,
    /// Bytes of the head, the blank line included.
    pub len: usize,
}

/// Longest chunk-size line (with its extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// Parse the head of the request at the start of `buf`.
///
/// Ambiguous framing, which a proxy in front could read differently from
/// us (request smuggling), is refused: `Content-Length` together with
/// `Transfer-Encoding`, several lengths, a length that is not plain
/// digits, a transfer coding other than `chunked` (501).
pub fn parse_head(buf: &[u8]) -> Result<Head, Parse> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Err(if buf.len() > MAX_HEAD {
            Parse::Bad(431, "Request header fields too large")
        } else {
            Parse::Incomplete
        });
    };
    if head_end > MAX_HEAD {
        return Err(Parse::Bad(431, "Request header fields too large"));
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| Parse::Bad(400, "Bad request"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Parse::Bad(400, "Bad request"));
    };
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_uppercase()) {
        return Err(Parse::Bad(400, "Bad request"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(Parse::Bad(505, "HTTP version not supported")),
    };
    if !target.starts_with('/') || target.bytes().any(|c| c <= b' ' || c == 0x7f) {
        return Err(Parse::Bad(400, "Bad request"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Err(Parse::Bad(400, "Bad request"));
        };
        // No whitespace in a name or before the colon (RFC 9112 5.1),
        // and no obsolete line folding.
        if name.is_empty() || name.bytes().any(|c| c <= b' ' || c == b':' || c == 0x7f) {
            return Err(Parse::Bad(400, "Bad request"));
        }
        if value.bytes().any(|c| c == 0 || c == b'\r' || c == b'\n') {
            return Err(Parse::Bad(400, "Bad request"));
        }
        headers.push((
            name.to_ascii_lowercase(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
        if headers.len() > MAX_HEADERS {
            return Err(Parse::Bad(431, "Request header fields too large"));
        }
    }
    let all = |n: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let lengths = all("content-length");
    let codings = all("transfer-encoding");
    let framing = match (lengths.as_slice(), codings.is_empty()) {
        ([], true) => Framing::None,
        ([_, ..], false) => {
            return Err(Parse::Bad(
                400,
                "Content-Length and Transfer-Encoding together",
            ))
        }
        ([one], true) => {
            if one.is_empty() || !one.bytes().all(|c| c.is_ascii_digit()) || one.len() > 18 {
                return Err(Parse::Bad(400, "Content-Length is not a number"));
            }
            let n: usize = one
                .parse()
                .map_err(|_| Parse::Bad(400, "Content-Length is not a number"))?;
            if n > MAX_BODY {
                return Err(Parse::Bad(413, "Payload too large"));
            }
            if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            }
        }
        (_, true) => return Err(Parse::Bad(400, "several Content-Length headers")),
        ([], false) => {
            let joined = codings.join(",");
            let list: Vec<&str> = joined
                .split(',')
                .map(|c| c.trim_matches([' ', '\t']))
                .filter(|c| !c.is_empty())
                .collect();
            if !list.iter().all(|c| c.eq_ignore_ascii_case("chunked")) || list.is_empty() {
                return Err(Parse::Bad(501, "Transfer-Encoding not implemented"));
            }
            if list.len() > 1 || !http11 {
                return Err(Parse::Bad(400, "Bad Transfer-Encoding"));
            }
            Framing::Chunked
        }
    };
    let get = |n: &str| all(n).first().copied();
    let expect_continue = match get("expect") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("100-continue") => http11,
        Some(_) => return Err(Parse::Bad(417, "Expectation failed")),
    };
    let connection = get("connection").map(str::to_ascii_lowercase);
    let keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => http11,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Head {
        request: Request {
            method: method.to_string(),
            path: percent_decode(path),
            query: query.to_string(),
            headers,
            body: Vec::new(),
            keep_alive,
        },
        framing,
        expect_continue,
        len: head_end + 4,
    })
}

/// Decode a chunked body starting at `buf[0]`: the body and the bytes it
/// took (trailers included), once complete. The body limit is checked
/// against each chunk's announced size, before its bytes arrive.
pub fn decode_chunked(buf: &[u8]) -> Result<(Vec<u8>, usize), Parse> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find(&buf[at..buf.len().min(at + MAX_CHUNK_LINE + 2)], b"\r\n") else {
            return Err(if buf.len() - at > MAX_CHUNK_LINE {
                Parse::Bad(400, "Bad chunk size")
            } else {
                Parse::Incomplete
            });
        };
        let line = &buf[at..at + eol];
        // Extensions (after ';') are ignored.
        let size_text = line.split(|&c| c == b';').next().unwrap_or(&[]);
        let size_text = std::str::from_utf8(size_text)
            .map_err(|_| Parse::Bad(400, "Bad chunk size"))?
            .trim_end_matches([' ', '\t']);
        if size_text.is_empty()
            || size_text.len() > 8
            || !size_text.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return Err(Parse::Bad(400, "Bad chunk size"));
        }
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| Parse::Bad(400, "Bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(Parse::Bad(413, "Payload too large"));
        }
        at += eol + 2;
        if size == 0 {
            // Trailer fields, read and discarded, up to the blank line.
            let rest = &buf[at..];
            if rest.starts_with(b"\r\n") {
                return Ok((body, at + 2));
            }
            return match find(rest, b"\r\n\r\n") {
                Some(end) if end <= MAX_HEAD => Ok((body, at + end + 4)),
                Some(_) => Err(Parse::Bad(431, "Request header fields too large")),
                None if rest.len() > MAX_HEAD => {
                    Err(Parse::Bad(431, "Request header fields too large"))
                }
                None => Err(Parse::Incomplete),
            };
        }
        if buf.len() < at + size + 2 {
            return Err(Parse::Incomplete);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(Parse::Bad(400, "Bad chunk"));
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// The body of a request whose head is `head`, from `buf` (the bytes
/// after the head): the body and the bytes it took, once complete.
pub fn parse_body(head: &Head, buf: &[u8]) -> Result<(Vec<u8>, usize), Parse> {
    match head.framing {
        Framing::None => Ok((Vec::new(), 0)),
        Framing::Length(n) if buf.len() >= n => Ok((buf[..n].to_vec(), n)),
        Framing::Length(_) => Err(Parse::Incomplete),
        Framing::Chunked => decode_chunked(buf),
    }
}

/// Parse one whole request from the start of `buf`; returns it and the
/// bytes it took.
pub fn parse(buf: &[u8]) -> Result<(Request, usize), Parse> {
    let head = parse_head(buf)?;
    let (body, used) = parse_body(&head, &buf[head.len..])?;
    let mut request = head.request;
    request.body = body;
    Ok((request, head.len + used))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response ready to send.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// The original's error body, `{"error": "..."}`.
    pub fn error(status: u16, message: &str) -> Response {
        let mut body = String::from("{\"error\": ");
        crate::conf::write::write_json_string(&mut body, message);
        body.push_str("}\n");
        Response::json(status, body)
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (k, v) in &self.headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_refusals() {
        let raw = b"GET /a%20b?x=1&meter=df%2Fpused HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let (r, n) = parse(raw).unwrap();
        let expect = ("GET", "/a b", raw.len() - 4);
        assert_eq!((r.method.as_str(), r.path.as_str(), n), expect);
        assert_eq!(r.param("meter").as_deref(), Some("df/pused"));
        assert!(r.keep_alive);
        let post = b"POST / HTTP/1.0\r\nContent-Length: 4\r\n\r\nab";
        assert_eq!(parse(post).unwrap_err(), Parse::Incomplete);
        let (r, _) = parse(b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab").unwrap();
        assert_eq!((r.body.as_slice(), r.keep_alive), (&b"ab"[..], false));
        for (bad, status) in [
            (&b"GET  / HTTP/1.1\r\n\r\n"[..], 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"get / HTTP/1.1\r\n\r\n", 400),
            (b"GET x HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n", 400),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ] {
            assert!(
                matches!(parse(bad), Err(Parse::Bad(s, _)) if s == status),
                "{bad:?}"
            );
        }
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nX-Trailer: 1\r\n\r\nGET";
        let (r, n) = parse(chunked).unwrap();
        assert_eq!((r.body.as_slice(), n), (&b"abcdef"[..], chunked.len() - 3));
        assert_eq!(
            parse(&chunked[..chunked.len() - 10]).unwrap_err(),
            Parse::Incomplete
        );
        let over = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n";
        assert!(matches!(parse(over), Err(Parse::Bad(413, _))));
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(parse(&huge), Err(Parse::Bad(431, _))));
        assert_eq!(percent_decode("%zz%41+"), "%zzA ");
    }
}
