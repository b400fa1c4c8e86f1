//! The dashboard: static files (HTML, CSS, JavaScript; no framework, no
//! build step) embedded in the binary and served under `/ui/`, with
//! strict headers. Asset names carry a hash of their content, so they are
//! cached for good while `index.html` is revalidated by its ETag; a
//! browser opening the API's base URL is sent to `/ui/`, JSON clients of
//! `/` get what they always got. `network/ui false` turns it off.

use super::http::{Request, Response};

/// The files, as written under `src/api/web/`.
const FILES: [(&str, &str, &[u8]); 3] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("web/app.css"),
    ),
    (
        "graph.js",
        "text/javascript; charset=utf-8",
        include_bytes!("web/graph.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("web/app.js"),
    ),
];

/// The page that loads them.
const INDEX: &str = include_str!("web/index.html");

/// Only this origin, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One asset: its name with the content hash, type and bytes.
#[derive(Debug)]
struct Asset {
    hashed: String,
    content_type: &'static str,
    body: &'static [u8],
}

/// The dashboard's files, ready to serve.
#[derive(Debug)]
pub struct Dashboard {
    assets: Vec<Asset>,
    index: Vec<u8>,
    index_etag: String,
}

fn short_hash(bytes: &[u8]) -> String {
    crate::crypto::sha256(bytes)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Default for Dashboard {
    fn default() -> Dashboard {
        Dashboard::new()
    }
}

impl Dashboard {
    /// Hash the assets and point the page at the hashed names.
    pub fn new() -> Dashboard {
        let mut index = INDEX.to_string();
        let mut assets = Vec::new();
        for (name, content_type, body) in FILES {
            let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{}.{ext}", short_hash(body));
            index = index.replace(&format!("\"{name}\""), &format!("\"{hashed}\""));
            assets.push(Asset {
                hashed,
                content_type,
                body,
            });
        }
        let index_etag = format!("\"{}\"", short_hash(index.as_bytes()));
        Dashboard {
            assets,
            index: index.into_bytes(),
            index_etag,
        }
    }

    /// Total bytes of the page and its assets (the goal is under 150 KB).
    pub fn size(&self) -> usize {
        self.index.len() + self.assets.iter().map(|a| a.body.len()).sum::<usize>()
    }

    /// The answer to a `GET` under `/ui/`.
    pub fn serve(&self, req: &Request) -> Response {
        let name = req.path.trim_start_matches("/ui").trim_start_matches('/');
        let mut r = if name.is_empty() || name == "index.html" {
            let unchanged = req.header("if-none-match") == Some(self.index_etag.as_str());
            Response {
                status: if unchanged { 304 } else { 200 },
                content_type: "text/html; charset=utf-8",
                headers: vec![
                    ("Cache-Control", "no-cache".into()),
                    ("ETag", self.index_etag.clone()),
                ],
                body: if unchanged {
                    Vec::new()
                } else {
                    self.index.clone()
                },
            }
        } else if let Some(a) = self.assets.iter().find(|a| a.hashed == name) {
            Response {
                status: 200,
                content_type: a.content_type,
                headers: vec![(
                    "Cache-Control",
                    "public, max-age=31536000, immutable".into(),
                )],
                body: a.body.to_vec(),
            }
        } else {
            Response::error(404, "no such file in the dashboard")
        };
        secure(&mut r);
        r
    }
}

/// The headers every dashboard response carries.
pub fn secure(r: &mut Response) {
    r.headers.push(("Content-Security-Policy", CSP.into()));
    r.headers.push(("X-Content-Type-Options", "nosniff".into()));
    r.headers.push(("Referrer-Policy", "no-referrer".into()));
    r.headers.push(("X-Frame-Options", "DENY".into()));
}

/// Whether a request for `/` comes from a browser (which asks for HTML
/// first); curl and the clients ask for anything or for JSON.
pub fn wants_html(req: &Request) -> bool {
    req.header("accept").is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.trim().starts_with("text/html"))
    })
}

/// The redirect of a browser from `/` to the dashboard.
pub fn to_dashboard() -> Response {
    let mut r = Response {
        status: 302,
        content_type: "text/html; charset=utf-8",
        headers: vec![("Location", "/ui/".into())],
        body: b"<a href=\"/ui/\">/ui/</a>\n".to_vec(),
    };
    secure(&mut r);
    r
}
