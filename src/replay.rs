//! Replay: stored mail through scan and policy, with a summary and, optionally, a comparison
//! against expected verdicts (how a policy change is tried before it is turned on).

use crate::mailbox::Item;
use crate::policy::{Action, Verdict};
use crate::scan::ScanReport;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Counts over a replay.
#[derive(Debug, Default)]
pub struct Summary {
    pub messages: usize,
    pub bytes: usize,
    pub actions: BTreeMap<String, usize>,
    pub rules: BTreeMap<String, usize>,
    pub kinds: BTreeMap<String, usize>,
    pub exceptions: BTreeMap<String, usize>,
    pub input_errors: usize,
}

impl Summary {
    pub fn add(&mut self, item: &Item, report: &ScanReport, verdict: &Verdict) {
        self.messages += 1;
        self.bytes += item.raw.len();
        *self.actions.entry(verdict.action.to_string()).or_default() += 1;
        for r in &verdict.rules {
            let name = if r.monitor {
                format!("{} (monitor)", r.rule)
            } else {
                r.rule.clone()
            };
            *self.rules.entry(name).or_default() += 1;
        }
        let kinds: BTreeSet<&str> = report.findings.iter().map(|f| f.kind.as_str()).collect();
        for k in kinds {
            *self.kinds.entry(k.to_string()).or_default() += 1;
        }
        for e in &verdict.exceptions_used {
            *self.exceptions.entry(e.reference.clone()).or_default() += 1;
        }
    }

    /// The summary as text, with throughput over `elapsed`.
    pub fn render(&self, elapsed: Duration) -> String {
        let mut out = String::new();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "{} messages, {:.1} MB in {:.2} s: {:.0} messages/s, {:.1} MB/s",
            self.messages,
            self.bytes as f64 / 1e6,
            secs,
            self.messages as f64 / secs,
            self.bytes as f64 / 1e6 / secs
        );
        if self.input_errors > 0 {
            let _ = writeln!(out, "{} inputs could not be read", self.input_errors);
        }
        for (title, map) in [
            ("actions", &self.actions),
            ("rules (messages)", &self.rules),
            ("kinds (messages)", &self.kinds),
            ("exceptions used", &self.exceptions),
        ] {
            if map.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for (k, v) in map {
                let _ = writeln!(out, "  {k:<40} {v}");
            }
        }
        out
    }
}

/// An expectation file: one entry per message.
///
/// ```toml
/// [[message]]
/// file = "bcc_26_visible.eml"   # file name (the path's last component)
/// index = 0                     # mbox position, for messages of an mbox
/// action = "reject"
/// rules = ["bcc_mass_mailing"]  # every rule that fires, monitored ones included
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(rename = "message")]
    pub messages: Vec<Expected>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub file: String,
    #[serde(default)]
    pub index: Option<usize>,
    pub action: Action,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Compares verdicts with expectations as messages go by.
pub struct Checker {
    pending: BTreeMap<(String, Option<usize>), Expected>,
    pub mismatches: Vec<String>,
}

impl Checker {
    pub fn new(expectations: Expectations) -> Self {
        Checker {
            pending: expectations
                .messages
                .into_iter()
                .map(|e| ((e.file.clone(), e.index), e))
                .collect(),
            mismatches: Vec::new(),
        }
    }

    pub fn check(&mut self, item: &Item, verdict: &Verdict) {
        let file = std::path::Path::new(&item.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| item.path.clone());
        let label = match item.index {
            Some(i) => format!("{file}#{i}"),
            None => file.clone(),
        };
        let Some(want) = self.pending.remove(&(file, item.index)) else {
            self.mismatches
                .push(format!("{label}: no expectation for this message"));
            return;
        };
        let got_rules: BTreeSet<&str> = verdict.rule_names().into_iter().collect();
        let want_rules: BTreeSet<&str> = want.rules.iter().map(String::as_str).collect();
        if verdict.action != want.action || got_rules != want_rules {
            self.mismatches.push(format!(
                "{label}: expected {} {:?}, got {} {:?}",
                want.action, want_rules, verdict.action, got_rules
            ));
        }
    }

    /// Call when every message was seen: expectations left over are mismatches too.
    pub fn finish(&mut self) {
        for ((file, index), _) in std::mem::take(&mut self.pending) {
            let label = match index {
                Some(i) => format!("{file}#{i}"),
                None => file,
            };
            self.mismatches
                .push(format!("{label}: expected but not in the replayed mail"));
        }
    }
}
