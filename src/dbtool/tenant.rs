//! Tenant commands: create, list, delete, metadata, quota, key.

use super::error::{usage, ToolError};
use super::tool::{args, parse_uuid, word_value, Tool};
use crate::conf::{Dict, Node};
use crate::db::limits::LIMIT_KEYS;
use crate::db::published::METRICS_FILE;
use crate::db::{views, DbError};
use crate::model::TenantKey;
use crate::svc::text::{size, table};
use getopts::Matches;

impl Tool {
    pub(super) fn tenant_create(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let id = match m.opt_str("tenant") {
            Some(t) => Some(parse_uuid(&t, "tenant")?),
            None => None,
        };
        let key = match m.opt_str("key") {
            Some(k) => Some(TenantKey::from_base64(&k).map_err(|e| usage(e.to_string()))?),
            None => None,
        };
        let name = m.opt_str("name").unwrap_or_default();
        let t = self.db.create_tenant(id, &name, key)?;
        if self.json {
            let mut d = Dict::new();
            d.insert("id", Node::Str(t.id.to_string()));
            d.insert("name", Node::Str(t.name));
            d.insert("key", Node::Str(t.key.to_base64()));
            let mut top = Dict::new();
            top.insert("tenant", Node::Dict(d));
            self.print_json(Node::Dict(top));
        } else {
            println!(
                "UUID:    {}\nName:    {}\nAES Key: {}",
                t.id,
                t.name,
                t.key.to_base64()
            );
        }
        Ok(0)
    }

    pub(super) fn tenant_list(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        if self.json {
            self.print_json(views::tenant_list(&self.db, |_| true)?);
        } else {
            let list = self.db.list_tenants()?;
            let rows = list
                .iter()
                .map(|t| vec![t.id.to_string(), t.hosts.to_string(), t.name.clone()])
                .collect();
            table(&["UUID", "Hosts", "Name"], rows);
        }
        Ok(0)
    }

    /// `tenant-delete`.
    pub(super) fn tenant_delete(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        self.db.delete_tenant(t)?;
        Ok(0)
    }

    /// `tenant-get-metadata`.
    pub(super) fn tenant_get_metadata(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let doc = self.db.tenant_doc(self.tenant(m)?)?;
        let meta = doc
            .get("metadata")
            .cloned()
            .unwrap_or(Node::Dict(Dict::new()));
        self.print_json(meta);
        Ok(0)
    }

    /// `tenant-set-metadata`.
    pub(super) fn tenant_set_metadata(&self, m: &Matches) -> Result<i32, ToolError> {
        let a = args(m, 2, "KEY VALUE")?;
        let t = self.tenant(m)?;
        let mut doc = self.db.tenant_doc(t)?;
        let mut meta = match doc.remove("metadata") {
            Some(Node::Dict(d)) => d,
            _ => Dict::new(),
        };
        meta.insert(a[0].clone(), word_value(&a[1]));
        doc.insert("metadata", Node::Dict(meta));
        self.db.save_tenant_doc(t, &doc)?;
        Ok(0)
    }

    pub(super) fn tenant_get_quota(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        if self.json {
            self.print_json(views::quota_node(&self.db, t)?);
        } else {
            let (quota, used, percent) = views::quota(&self.db, t)?;
            println!(
                "Tenant storage quota: {quota} MB\nCurrent usage: {percent:.2} % ({})",
                size(used)
            );
        }
        Ok(0)
    }

    /// `tenant-set-quota`.
    pub(super) fn tenant_set_quota(&self, m: &Matches) -> Result<i32, ToolError> {
        let a = args(m, 1, "MB")?;
        let mb: u64 = a[0]
            .parse()
            .map_err(|_| usage(format!("quota {:?} is not a whole number of MB", a[0])))?;
        let mb = i64::try_from(mb).map_err(|_| usage("quota too large"))?;
        self.db
            .set_tenant_field(self.tenant(m)?, "quota", Node::Int(mb))?;
        Ok(0)
    }

    /// `tenant-set-key`.
    pub(super) fn tenant_set_key(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let key = match m.opt_str("key") {
            Some(k) => TenantKey::from_base64(&k).map_err(|e| usage(e.to_string()))?,
            None => TenantKey(
                crate::crypto::random_key().map_err(|e| DbError::Io(self.db.root().into(), e))?,
            ),
        };
        self.db
            .set_tenant_field(t, "key", Node::Str(key.to_base64()))?;
        if self.json {
            let mut d = Dict::new();
            d.insert("key", Node::Str(key.to_base64()));
            self.print_json(Node::Dict(d));
        } else {
            println!("AES Key: {}", key.to_base64());
        }
        Ok(0)
    }

    /// `tenant-show`: the tenant, its limits (the collector's defaults
    /// unless its metadata sets them) and what the running collector last
    /// said it refused.
    pub(super) fn tenant_show(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let t = self.tenant(m)?;
        let info = self.db.tenant(t)?;
        let doc = self.db.tenant_doc(t)?;
        let meta = doc.get("metadata").and_then(Node::as_dict);
        let published = std::fs::read_to_string(self.db.root().join(METRICS_FILE))
            .ok()
            .and_then(|text| crate::conf::parse(&text).ok());
        let usage = published
            .as_ref()
            .and_then(|d| d.path(&format!("tenants/{t}")))
            .cloned();
        let int = |key: &str| {
            usage
                .as_ref()
                .and_then(|u| u.path(key))
                .and_then(Node::as_int)
        };
        let limit = |key: &str| meta.and_then(|d| d.get(key)).and_then(Node::as_int);
        if self.json {
            let mut d = Dict::new();
            d.insert("id", Node::Str(t.to_string()));
            d.insert("name", Node::Str(info.name.clone()));
            d.insert("quota", Node::Int(info.quota_mb as i64));
            let mut limits = Dict::new();
            for key in LIMIT_KEYS {
                limits.insert(
                    key,
                    limit(key).map_or(Node::Str("default".into()), Node::Int),
                );
            }
            d.insert("limits", Node::Dict(limits));
            d.insert("collector", usage.clone().unwrap_or(Node::Null));
            let mut top = Dict::new();
            top.insert("tenant", Node::Dict(d));
            self.print_json(Node::Dict(top));
            return Ok(0);
        }
        println!(
            "UUID:    {t}\nName:    {}\nQuota:   {} MB",
            info.name, info.quota_mb
        );
        for key in LIMIT_KEYS {
            match limit(key) {
                Some(n) => println!("{key}: {n}"),
                None => println!("{key}: the collector's default"),
            }
        }
        match usage {
            Some(_) => println!(
                "Collector: {} hosts; refused {} new hosts over max_hosts, {} over max_new_hosts_per_minute, {} payloads over max_host_bytes_per_cycle",
                int("hosts").unwrap_or(0),
                int("refused_hosts").unwrap_or(0),
                int("refused_new_hosts").unwrap_or(0),
                int("refused_bytes").unwrap_or(0)
            ),
            None => println!("Collector: no figures (not running, or the tenant sent nothing)"),
        }
        Ok(0)
    }
}
