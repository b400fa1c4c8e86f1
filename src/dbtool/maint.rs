//! Upkeep, for cron and for operators: purge, quotas, fsck, du.

use super::error::{usage, ToolError, EXIT_FAIL};
use super::tool::{args, Tool};
use crate::conf::{Dict, Node};
use crate::db::time::parse_age;
use crate::db::{fsck, migrate};
use crate::svc::text::{size, table};
use getopts::Matches;

impl Tool {
    pub(super) fn purge(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let older = m
            .opt_str("older-than")
            .map(|a| parse_age(&a))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        let stale = m
            .opt_str("stale")
            .map(|a| parse_age(&a))
            .transpose()
            .map_err(|e| usage(e.to_string()))?;
        if older.is_none() && stale.is_none() {
            return Err(usage("purge needs --older-than AGE and/or --stale AGE"));
        }
        for t in self.tenants(m)? {
            if let Some(age) = stale {
                for h in self.db.purge_stale(t, self.now - age)? {
                    println!("{t}: deleted silent host {h}");
                }
            }
            if let Some(age) = older {
                let n = self.db.purge_before(t, self.now - age)?;
                if n > 0 {
                    println!("{t}: deleted {n} day files");
                }
            }
        }
        Ok(0)
    }

    /// `migrate`: convert day files per host to tenant day files, in
    /// place; run again after an interruption, it goes on.
    pub(super) fn migrate(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let mut status = 0;
        for t in self.tenants(m)? {
            let dir = self.db.tenant_dir(t);
            let done = migrate::migrate_tenant(&dir, |date, files| {
                println!("{t}: {}: {files} host day files converted", date.stem());
            })?;
            for left in &done.left {
                eprintln!("opticon-db: {t}: {left}");
                status = EXIT_FAIL;
            }
            println!(
                "{t}: {} days, {} host day files, {} samples converted",
                done.days, done.files, done.samples
            );
        }
        if m.opt_strs("tenant").is_empty() {
            self.db.check_layout()?;
            println!("the database is in tenant day files");
        }
        Ok(status)
    }

    /// `enforce-quota`.
    pub(super) fn enforce_quota(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let mut status = 0;
        for t in self.tenants(m)? {
            let (days, why) = self.db.enforce_quota(t)?;
            for d in days {
                println!("{t}: deleted {}", d.stem());
            }
            if let Some(why) = why {
                eprintln!("opticon-db: {t}: {why}");
                status = EXIT_FAIL;
            }
        }
        Ok(status)
    }

    pub(super) fn fsck(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let repair = m.opt_present("repair");
        let tenants = self.tenants(m)?;
        let report = fsck::fsck(&self.db, &tenants, repair)?;
        for f in &report.findings {
            println!("{f}");
        }
        for r in &report.repairs {
            println!("repaired: {r}");
        }
        println!(
            "fsck: {} files, {} samples, {} problems",
            report.files,
            report.samples,
            report.findings.len()
        );
        if !repair || report.findings.is_empty() {
            return Ok(if report.findings.is_empty() {
                0
            } else {
                EXIT_FAIL
            });
        }
        // Exit by what is left after the repairs.
        let after = fsck::fsck(&self.db, &tenants, false)?;
        for f in &after.findings {
            println!("left: {f}");
        }
        println!("fsck after repair: {} problems", after.findings.len());
        Ok(if after.findings.is_empty() {
            0
        } else {
            EXIT_FAIL
        })
    }

    pub(super) fn du(&self, m: &Matches) -> Result<i32, ToolError> {
        args(m, 0, "no arguments")?;
        let mut rows = Vec::new();
        let mut total = 0;
        for t in self.tenants(m)? {
            let info = self.db.tenant(t)?;
            let bytes = self.db.tenant_bytes(t)?;
            total += bytes;
            rows.push((t, info, bytes));
        }
        if self.json {
            let list = rows
                .iter()
                .map(|(t, info, bytes)| {
                    let mut d = Dict::new();
                    d.insert("id", Node::Str(t.to_string()));
                    d.insert("name", Node::Str(info.name.clone()));
                    d.insert("bytes", Node::Int(*bytes as i64));
                    d.insert("quota", Node::Int((info.quota_mb * 1048576) as i64));
                    Node::Dict(d)
                })
                .collect();
            let mut top = Dict::new();
            top.insert("tenant", Node::Array(list));
            top.insert("total", Node::Int(total as i64));
            self.print_json(Node::Dict(top));
        } else {
            let mut lines: Vec<Vec<String>> = rows
                .iter()
                .map(|(t, info, bytes)| {
                    vec![
                        size(*bytes),
                        format!("{} MB", info.quota_mb),
                        t.to_string(),
                        info.name.clone(),
                    ]
                })
                .collect();
            lines.push(vec![
                size(total),
                String::new(),
                "total".into(),
                String::new(),
            ]);
            table(&["Size", "Quota", "Tenant", "Name"], lines);
        }
        Ok(0)
    }
}
