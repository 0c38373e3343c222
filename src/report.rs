//! Printing scan results: one JSON object per line, or a readable text block.

use crate::mailbox::Item;
use crate::policy::Verdict;
use crate::scan::ScanReport;
use serde::Serialize;
use std::fmt::Write as _;

/// Recipient counts from the headers.
#[derive(Debug, Serialize)]
pub struct Recipients {
    pub to: usize,
    pub cc: usize,
    pub bcc: usize,
}

/// The JSON record for one message. Sensitive values appear only masked.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub message_id: Option<&'a str>,
    pub from: Option<&'a str>,
    pub recipients: Recipients,
    pub findings: &'a [crate::model::Finding],
    pub encrypted: &'a [crate::model::EncryptedPart],
    pub unscannable: &'a [crate::model::Unscannable],
    /// Phrases of the content rules found (what `chain_letter` and `mass_solicitation` score).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phrases: Vec<PhraseRecord<'a>>,
    /// Links to file-sharing services: service and host, never the link's path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkRecord<'a>>,
    pub decoded_bytes: usize,
    pub elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'a Verdict>,
}

#[derive(Debug, Serialize)]
pub struct PhraseRecord<'a> {
    pub rule: &'a str,
    pub phrase: &'a str,
    pub points: i64,
    #[serde(rename = "where")]
    pub location: &'a str,
}

#[derive(Debug, Serialize)]
pub struct LinkRecord<'a> {
    pub service: &'a str,
    pub host: &'a str,
    #[serde(rename = "where")]
    pub location: &'a str,
}

impl<'a> Record<'a> {
    pub fn new(item: &'a Item, report: &'a ScanReport, verdict: Option<&'a Verdict>) -> Self {
        Record {
            path: &item.path,
            index: item.index,
            message_id: report.info.message_id.as_deref(),
            from: report.info.from.as_deref(),
            recipients: Recipients {
                to: report.info.to.len(),
                cc: report.info.cc.len(),
                bcc: report.info.bcc.len(),
            },
            findings: &report.findings,
            encrypted: &report.encrypted,
            unscannable: &report.unscannable,
            phrases: report
                .signals
                .iter()
                .map(|s| PhraseRecord {
                    rule: &s.rule,
                    phrase: &s.name,
                    points: i64::from(s.weight) * s.count as i64,
                    location: &s.location,
                })
                .collect(),
            links: report
                .links
                .iter()
                .map(|l| LinkRecord {
                    service: &l.display,
                    host: &l.host,
                    location: &l.location,
                })
                .collect(),
            decoded_bytes: report.decoded_bytes,
            elapsed_ms: report.elapsed_micros as f64 / 1000.0,
            verdict,
        }
    }
}

/// A human-readable block for one message.
pub fn text_block(item: &Item, report: &ScanReport, verdict: Option<&Verdict>) -> String {
    let mut out = String::new();
    let name = match item.index {
        Some(i) => format!("{}#{}", item.path, i),
        None => item.path.clone(),
    };
    let _ = writeln!(
        out,
        "{name}  from={}  to={} cc={} bcc={}  id={}",
        report.info.from.as_deref().unwrap_or("-"),
        report.info.to.len(),
        report.info.cc.len(),
        report.info.bcc.len(),
        report.info.message_id.as_deref().unwrap_or("-"),
    );
    if report.findings.is_empty() && report.encrypted.is_empty() && report.unscannable.is_empty() {
        let _ = writeln!(out, "  clean");
    }
    if !report.findings.is_empty() {
        let _ = writeln!(
            out,
            "  {:<18} {:<7} {:>5}  {:<32} samples",
            "kind", "conf", "count", "where"
        );
        for f in &report.findings {
            let _ = writeln!(
                out,
                "  {:<18} {:<7} {:>5}  {:<32} {}",
                f.kind,
                f.confidence.as_str(),
                f.count,
                f.location,
                f.masked.join(", ")
            );
        }
    }
    for e in &report.encrypted {
        let _ = writeln!(out, "  encrypted ({}): {}", e.kind, e.location);
    }
    for u in &report.unscannable {
        let _ = writeln!(out, "  unscannable: {} ({})", u.location, u.reason);
    }
    if let Some(v) = verdict {
        let would = v
            .would_action
            .map(|a| format!(" (monitor: would {a})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  verdict: {}{would}", v.action);
        for r in &v.rules {
            let m = if r.monitor { " [monitor]" } else { "" };
            let _ = writeln!(out, "    {} -> {}{m}: {}", r.rule, r.action, r.reason);
        }
        for e in &v.exceptions_used {
            let _ = writeln!(
                out,
                "    exception {} ({}) waived {} {}",
                e.reference,
                e.approver,
                e.rule,
                e.kinds.join(",")
            );
        }
        if v.require_tls {
            let _ = writeln!(out, "    delivery requires TLS");
        }
    }
    out
}
