//! The `export { <name> { ... } }` section of opticon-collector.conf:
//! one target per name, each read and checked whole.

use super::encode::Format;
use super::series::SeriesRules;
use crate::conf::schema::Shape;
use crate::conf::{positive, Dict, Node, ValueError};
use crate::svc::httpc::Endpoint;
use std::collections::HashMap;
use std::time::Duration;

/// The keys of one target (documented in opticon-collector(8)).
pub static TARGET_SHAPE: Shape = Shape::Keys(&[
    ("type", Shape::Value),
    ("url", Shape::Value),
    ("tenant", Shape::Value),
    ("header", Shape::Value),
    ("tenant_key", Shape::Value),
    ("batch", Shape::Value),
    ("spool", Shape::Value),
    ("timeout", Shape::Value),
    ("retry_min", Shape::Value),
    ("retry_max", Shape::Value),
    ("include", Shape::Value),
    ("exclude", Shape::Value),
    ("rows", Shape::Value),
    ("headers", Shape::Value),
]);

/// The `export` section's shape, for the collector's schema.
pub const EXPORT_SHAPE: (&str, Shape) = ("export", Shape::Named(&TARGET_SHAPE));

/// Where the engine keeps a sample's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Only in the `tenant` label (single-node VictoriaMetrics,
    /// Prometheus).
    Label,
    /// In the URL: `{tenant}` in it becomes the tenant's id
    /// (VictoriaMetrics cluster's `/insert/{tenant}/prometheus/...`).
    Path,
    /// In this request header (`X-Scope-OrgID` for Mimir and Cortex,
    /// `THANOS-TENANT` for Thanos receive).
    Header(String),
}

/// One export target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Its name in the config (names its spool and its metrics).
    pub name: String,
    /// What it speaks.
    pub format: Format,
    /// Where requests go (with `{tenant}` for [`Placement::Path`]).
    pub url: String,
    /// Where the tenant goes.
    pub placement: Placement,
    /// The tenant metadata key holding the tenant's id at this target
    /// (path and header placements).
    pub tenant_key: String,
    /// Most samples in one request.
    pub batch: usize,
    /// Most bytes the spool holds before dropping the oldest.
    pub spool_bytes: u64,
    /// How long one request may take.
    pub timeout: Duration,
    /// First wait before a retry (doubling, with jitter).
    pub retry_min: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Which meters, and how tables are labelled.
    pub rules: SeriesRules,
    /// Headers every request carries (`Authorization` for InfluxDB 2.x
    /// or a hosted engine).
    pub headers: Vec<(String, String)>,
}

/// The placeholder a path target's URL holds.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

fn names(doc: &Dict, key: &str) -> Result<Vec<String>, ValueError> {
    match doc.get(key) {
        None => Ok(Vec::new()),
        Some(Node::Str(s)) => Ok(vec![s.clone()]),
        Some(Node::Array(items)) => items
            .iter()
            .map(|n| match n {
                Node::Str(s) => Ok(s.clone()),
                other => Err(ValueError::new(
                    key,
                    format!("{} is not a meter or group name", other.to_json(false)),
                )),
            })
            .collect(),
        Some(other) => Err(ValueError::new(
            key,
            format!("{} is not a name or a list of names", other.to_json(false)),
        )),
    }
}

fn seconds(doc: &Dict, key: &str, default: f64) -> Result<Duration, ValueError> {
    match doc.get(key).map(|n| (n, n.as_f64())) {
        None => Ok(Duration::from_secs_f64(default)),
        Some((_, Some(s))) if s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        Some((n, _)) => Err(ValueError::new(
            key,
            format!("{} is not a positive number of seconds", n.to_json(false)),
        )),
    }
}

impl TargetConfig {
    /// Read one target; errors name the key below the target.
    pub fn from_dict(name: &str, doc: &Dict) -> Result<TargetConfig, ValueError> {
        let at = |e: ValueError| ValueError::new(format!("export/{name}/{}", e.key), e.why);
        let text = |key: &str| -> Result<Option<&str>, ValueError> {
            match doc.get(key) {
                None => Ok(None),
                Some(Node::Str(s)) => Ok(Some(s.as_str())),
                Some(other) => Err(ValueError::new(
                    key,
                    format!("{} is not a string", other.to_json(false)),
                )),
            }
        };
        let read = || -> Result<TargetConfig, ValueError> {
            let format = match text("type")? {
                Some("remote_write") => Format::RemoteWrite,
                Some("influx") => Format::Influx,
                Some(other) => {
                    return Err(ValueError::new(
                        "type",
                        format!("{other:?} is not remote_write or influx"),
                    ))
                }
                None => return Err(ValueError::new("type", "missing (remote_write or influx)")),
            };
            let url = text("url")?
                .ok_or_else(|| ValueError::new("url", "missing"))?
                .to_string();
            let placement = match text("tenant")? {
                None | Some("label") => Placement::Label,
                Some("path") => Placement::Path,
                Some("header") => {
                    Placement::Header(text("header")?.unwrap_or("X-Scope-OrgID").to_string())
                }
                Some(other) => {
                    return Err(ValueError::new(
                        "tenant",
                        format!("{other:?} is not label, path or header"),
                    ))
                }
            };
            let has_placeholder = url.contains(TENANT_PLACEHOLDER);
            if (placement == Placement::Path) != has_placeholder {
                return Err(ValueError::new(
                    "url",
                    if has_placeholder {
                        "holds {tenant}, which only a target with tenant: path fills"
                    } else {
                        "must hold {tenant} where the tenant's id goes (tenant: path)"
                    },
                ));
            }
            Endpoint::parse(&url.replace(TENANT_PLACEHOLDER, "0"))
                .map_err(|e| ValueError::new("url", e.to_string()))?;
            if let Some(h) = text("header")? {
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(ValueError::new(
                        "header",
                        format!("{h:?} is not a header name"),
                    ));
                }
            }
            let mut rows = HashMap::new();
            match doc.get("rows") {
                None => {}
                Some(Node::Dict(d)) => {
                    for (group, _) in d.iter() {
                        rows.insert(group.to_string(), names(d, group)?);
                    }
                }
                Some(other) => {
                    return Err(ValueError::new(
                        "rows",
                        format!("{} is not a dict of group: [columns]", other.to_json(false)),
                    ))
                }
            }
            let mut headers = Vec::new();
            match doc.get("headers") {
                None => {}
                Some(Node::Dict(d)) => {
                    for (name, value) in d.iter() {
                        let ok_name = !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                        match value {
                            Node::Str(v) if ok_name && !v.contains(['\r', '\n']) => {
                                headers.push((name.to_string(), v.clone()))
                            }
                            _ => {
                                return Err(ValueError::new(
                                    format!("headers/{name}"),
                                    "is not a header name with a one-line string value",
                                ))
                            }
                        }
                    }
                }
                Some(other) => {
                    return Err(ValueError::new(
                        "headers",
                        format!("{} is not a dict of header: value", other.to_json(false)),
                    ))
                }
            }
            let retry_min = seconds(doc, "retry_min", 1.0)?;
            let retry_max = seconds(doc, "retry_max", 60.0)?.max(retry_min);
            Ok(TargetConfig {
                name: name.to_string(),
                format,
                url,
                placement,
                tenant_key: text("tenant_key")?.unwrap_or("export_id").to_string(),
                batch: positive(doc, "batch", 2000)?.min(1_000_000) as usize,
                spool_bytes: positive(doc, "spool", 1 << 30)?.max(1 << 16),
                timeout: seconds(doc, "timeout", 30.0)?,
                retry_min,
                retry_max,
                rules: SeriesRules {
                    include: names(doc, "include")?,
                    exclude: names(doc, "exclude")?,
                    rows,
                },
                headers,
            })
        };
        read().map_err(at)
    }

    /// The URL a request of `route` (a tenant's id) goes to.
    pub fn url_for(&self, route: &str) -> String {
        match self.placement {
            Placement::Path => self.url.replace(TENANT_PLACEHOLDER, route),
            _ => self.url.clone(),
        }
    }
}

/// Every target of a config document, in the order written.
pub fn targets_from_dict(doc: &Dict) -> Result<Vec<TargetConfig>, ValueError> {
    match doc.get("export") {
        None => Ok(Vec::new()),
        Some(Node::Dict(d)) => d
            .iter()
            .map(|(name, node)| match node {
                Node::Dict(t) => TargetConfig::from_dict(name, t),
                other => Err(ValueError::new(
                    format!("export/{name}"),
                    format!(
                        "{} is not a target {{ type url ... }}",
                        other.to_json(false)
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(ValueError::new(
            "export",
            format!("{} is not a dict of targets", other.to_json(false)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Dict {
        crate::conf::parse(text).unwrap()
    }

    #[test]
    fn the_issue_form_reads() {
        let t = targets_from_dict(&doc(r#"export {
                vm { type: remote_write, url: "http://127.0.0.1:8428/api/v1/write", tenant: label }
                influx { type: influx, url: "http://127.0.0.1:8428/write", tenant: label }
            }"#))
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].format, Format::RemoteWrite);
        assert_eq!(t[1].format, Format::Influx);
        assert_eq!(t[0].batch, 2000);
        assert_eq!(t[0].spool_bytes, 1 << 30);
    }

    #[test]
    fn mistakes_name_the_key() {
        for (text, key) in [
            ("export { a { url: \"http://x/\" } }", "export/a/type"),
            (
                "export { a { type: rw, url: \"http://x/\" } }",
                "export/a/type",
            ),
            (
                "export { a { type: influx, url: \"ftp://x/\" } }",
                "export/a/url",
            ),
            (
                "export { a { type: influx, url: \"http://x/\", tenant: path } }",
                "export/a/url",
            ),
            (
                "export { a { type: influx, url: \"http://x/\", batch: 0 } }",
                "export/a/batch",
            ),
            (
                "export { a { type: influx, url: \"http://x/\", include: [1] } }",
                "export/a/include",
            ),
        ] {
            let e = targets_from_dict(&doc(text)).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
        let t = targets_from_dict(&doc(
            "export { c { type: remote_write, url: \"http://vm:8480/insert/{tenant}/prometheus/api/v1/write\", tenant: path } }",
        ))
        .unwrap();
        assert_eq!(
            t[0].url_for("42"),
            "http://vm:8480/insert/42/prometheus/api/v1/write"
        );
        let t = targets_from_dict(&doc(
            "export { i { type: influx, url: \"http://influx:8086/api/v2/write?org=o&bucket=b\", headers { Authorization: \"Token s3cret\" } } }",
        ))
        .unwrap();
        assert_eq!(
            t[0].headers,
            [("Authorization".into(), "Token s3cret".into())]
        );
        let e = targets_from_dict(&doc(
            "export { i { type: influx, url: \"http://x/\", headers { \"a b\": c } } }",
        ))
        .unwrap_err();
        assert_eq!(e.key, "export/i/headers/a b");
    }
}
