//! Tenant routes (`/{tenant}/...`: the tenant, its summary, quota,
//! metadata and meter definitions) and the admin's `/any/host/...`.

use super::auth::Access;
use super::error::{ApiError, Reply};
use super::http::Request;
use super::input::{body, read_json, section, text_field, uuid};
use super::routes::Api;
use crate::conf::{self, Dict, Node};
use crate::db::meters::{self};
use crate::db::published::{OVERVIEW_FILE, SUMMARY_FILE};
use crate::db::views;
use crate::model::TenantKey;
use uuid::Uuid;

impl Api {
    pub(super) fn tenant_route(
        &self,
        m: &str,
        t: Uuid,
        rest: &[&str],
        req: &Request,
        access: &Access,
    ) -> Reply {
        let dir = self.db.tenant_dir(t);
        match (m, rest) {
            ("GET", []) => {
                let mut doc = self.db.tenant_doc(t)?;
                doc.remove("meter");
                Ok(views::wrap("tenant", Node::Dict(flat_metadata(doc))))
            }
            ("POST", []) => {
                let spec = section(req, "tenant")?;
                let key = match text_field(&spec, "key") {
                    Some(k) => Some(
                        TenantKey::from_base64(&k)
                            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    ),
                    None => None,
                };
                let name = text_field(&spec, "name").unwrap_or_default();
                let created = self.db.create_tenant(Some(t), &name, key)?;
                let mut d = Dict::new();
                d.insert("key", Node::Str(created.key.to_base64()));
                d.insert("name", Node::Str(created.name));
                Ok(views::wrap("tenant", Node::Dict(d)))
            }
            ("PUT", []) => {
                self.db.tenant(t)?;
                let spec = section(req, "tenant")?;
                // Every right and every value is checked before anything
                // is written: a refused request changes nothing.
                if spec.get("name").is_some() || spec.get("quota").is_some() {
                    self.admin(access)?;
                }
                let key = match text_field(&spec, "key") {
                    Some(k) => Some(
                        TenantKey::from_base64(&k)
                            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    ),
                    None => None,
                };
                let quota = match spec.get("quota") {
                    None => None,
                    Some(Node::Int(q)) if *q >= 0 => Some(*q),
                    Some(_) => {
                        return Err(ApiError::BadRequest("quota must be a number of MB".into()))
                    }
                };
                if let Some(key) = key {
                    self.db
                        .set_tenant_field(t, "key", Node::Str(key.to_base64()))?;
                }
                if let Some(n) = text_field(&spec, "name") {
                    self.db.set_tenant_field(t, "name", Node::Str(n))?;
                }
                if let Some(q) = quota {
                    self.db.set_tenant_field(t, "quota", Node::Int(q))?;
                }
                let mut doc = self.db.tenant_doc(t)?;
                doc.remove("meter");
                Ok(views::wrap("tenant", Node::Dict(doc)))
            }
            ("DELETE", []) => {
                self.db.delete_tenant(t)?;
                Ok(views::wrap("deleted", Node::Str(t.to_string())))
            }
            ("GET", ["summary"]) => {
                self.db.tenant(t)?;
                Ok(views::wrap("summary", read_json(&dir.join(SUMMARY_FILE))?))
            }
            ("GET", ["quota"]) => Ok(views::quota_node(&self.db, t)?),
            ("GET", ["meta"]) => {
                let doc = self.db.tenant_doc(t)?;
                Ok(views::wrap(
                    "metadata",
                    doc.get("metadata")
                        .cloned()
                        .unwrap_or(Node::Dict(Dict::new())),
                ))
            }
            ("POST" | "PUT", ["meta"]) => {
                let b = body(req)?;
                let Some(Node::Dict(new)) = b.get("metadata") else {
                    return Err(ApiError::BadRequest("body needs a metadata object".into()));
                };
                let mut doc = self.db.tenant_doc(t)?;
                let mut meta = doc
                    .get("metadata")
                    .and_then(Node::as_dict)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in new.iter() {
                    meta.insert(k.to_string(), v.clone());
                }
                doc.insert("metadata", Node::Dict(meta.clone()));
                self.db.save_tenant_doc(t, &doc)?;
                Ok(views::wrap("metadata", Node::Dict(meta)))
            }
            ("GET", ["meter"]) => Ok(views::meter_list(&self.definitions(t, None)?)),
            ("POST" | "PUT", ["meter", id @ ..]) if !id.is_empty() => {
                let id = id.join("/");
                let spec = section(req, "meter")?;
                let kind = text_field(&spec, "type").unwrap_or_else(|| "integer".into());
                let description = text_field(&spec, "description").unwrap_or_default();
                let unit = text_field(&spec, "unit").unwrap_or_default();
                let mut doc = self.db.tenant_doc(t)?;
                meters::set_meter(&mut doc, &id, &kind, &description, &unit)?;
                self.db.save_tenant_doc(t, &doc)?;
                let mut e = Dict::new();
                e.insert("type", Node::Str(kind));
                e.insert("description", Node::Str(description));
                e.insert("unit", Node::Str(unit));
                Ok(views::wrap("meter", views::wrap(&id, Node::Dict(e))))
            }
            ("DELETE", ["meter", id @ ..]) if !id.is_empty() => {
                let id = id.join("/");
                let mut doc = self.db.tenant_doc(t)?;
                if !meters::delete_meter(&mut doc, &id) {
                    return Err(ApiError::NotFound(format!(
                        "meter definition {id} not found"
                    )));
                }
                self.db.save_tenant_doc(t, &doc)?;
                Ok(views::wrap("meter", views::wrap("deleted", Node::Str(id))))
            }
            ("GET", ["watcher"]) => Ok(views::watcher_list(&self.definitions(t, None)?)),
            ("POST" | "PUT", ["watcher", id @ ..]) if !id.is_empty() => {
                self.set_watchers(t, None, &id.join("/"), req)
            }
            ("DELETE", ["watcher", id @ ..]) if !id.is_empty() => {
                self.delete_watchers(t, None, &id.join("/"))
            }
            ("GET", ["host"]) => Ok(views::host_list(&views::hosts_usage_indexed(
                &self.db,
                t,
                self.collector_live(),
            )?)),

            (_, ["host", h, more @ ..]) => {
                let h = uuid(h, "host")?;
                self.host_route(m, t, h, more, req)
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    /// The tenant a host belongs to, by looking at every tenant.
    pub(super) fn tenant_of(&self, h: Uuid) -> Result<Uuid, ApiError> {
        for t in self.db.tenant_ids()? {
            if self.db.host_dir(t, h).is_dir() {
                return Ok(t);
            }
        }
        Err(ApiError::NotFound(format!("host {h} not found")))
    }

    pub(super) fn any_host(&self, method: &str, rest: &[&str]) -> Reply {
        if method != "GET" {
            return Err(ApiError::Method);
        }
        match rest {
            ["overview"] => {
                let mut all = Dict::new();
                for t in self.db.tenant_ids()? {
                    let text = self.overview_text(t)?;
                    let doc =
                        crate::conf::parse(&text).map_err(|e| ApiError::Internal(e.to_string()))?;
                    if let Some(Node::Dict(hosts)) = doc.path("overview") {
                        for (h, entry) in hosts.iter() {
                            let mut e = entry.as_dict().cloned().unwrap_or_default();
                            e.insert("tenant", Node::Str(t.to_string()));
                            all.insert(h.to_string(), Node::Dict(e));
                        }
                    }
                }
                Ok(views::wrap("overview", Node::Dict(all)))
            }
            [h] => {
                let h = uuid(h, "host")?;
                let t = self.tenant_of(h)?;
                let text = self.record(t, h, None)?;
                conf::parse(&text)
                    .map(Node::Dict)
                    .map_err(|e| ApiError::Internal(e.to_string()))
            }
            [h, "tenant"] => {
                let h = uuid(h, "host")?;
                Ok(views::wrap(
                    "tenant",
                    Node::Str(self.tenant_of(h)?.to_string()),
                ))
            }
            _ => Err(ApiError::NotFound("resource not found".into())),
        }
    }

    /// The tenant overview file as the collector wrote it.
    pub(super) fn overview_text(&self, t: Uuid) -> Result<String, ApiError> {
        let path = self.db.tenant_dir(t).join(OVERVIEW_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => match crate::db::published::written_at(&path) {
                Some(written) => self.overview_with_age(text, written),
                None => Ok(text),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("{\"overview\": {}}\n".into()),
            Err(e) => Err(ApiError::Internal(format!("{}: {e}", path.display()))),
        }
    }
}

/// A tenant document as the original answered it: the metadata keys also
/// flat beside `name`, `key` and `quota` (which no metadata key shadows).
fn flat_metadata(mut doc: Dict) -> Dict {
    let meta = doc.get("metadata").and_then(Node::as_dict).cloned();
    for (k, v) in meta.iter().flat_map(|m| m.iter()) {
        if doc.get(k).is_none() {
            doc.insert(k.to_string(), v.clone());
        }
    }
    doc
}
