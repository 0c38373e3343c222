//! Replay: stored mail through scan and policy, with a summary and, optionally, a comparison
//! against expected verdicts (how a policy change is tried before it is turned on).

use crate::mailbox::Item;
use crate::policy::{Action, Policy, Verdict, content_score};
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
    /// Per content rule: how the messages scored against its threshold.
    pub scores: BTreeMap<String, ScoreStats>,
    /// Messages with a link to each file-sharing service (approved tenants included).
    pub links: BTreeMap<String, usize>,
}

/// How the messages of a replay scored on one content rule (`chain_letter`,
/// `mass_solicitation`): what an analyst tunes the threshold and the phrases with.
#[derive(Debug, Default)]
pub struct ScoreStats {
    pub threshold: i64,
    /// Messages with a score above 0.
    pub scored: usize,
    /// Messages at half the threshold or more, under it.
    pub near: usize,
    /// Messages at or over the threshold (the rule fires, or would in monitor mode).
    pub over: usize,
    pub highest: i64,
    /// Per phrase: messages in which it scored.
    pub phrases: BTreeMap<String, usize>,
}

/// Score lines of one message (`--scores`): `file#i  chain_letter 12/10: phrase 6, ...`, or
/// nothing when no content rule scored.
pub fn score_lines(label: &str, report: &ScanReport, policy: &Policy) -> String {
    let mut out = String::new();
    for (rule, threshold) in content_rules(policy) {
        let score = content_score(report, rule);
        if score.phrases.is_empty() {
            continue;
        }
        let mark = if score.points >= threshold {
            "  FIRES"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{label}  {rule} {}/{threshold}{mark}: {}",
            score.points,
            score.describe()
        );
    }
    out
}

fn content_rules(policy: &Policy) -> [(&'static str, i64); 2] {
    [
        ("chain_letter", policy.rules.chain_letter.threshold),
        (
            "mass_solicitation",
            policy.rules.mass_solicitation.threshold,
        ),
    ]
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

    /// Count a message's content-rule scores and file-sharing links.
    pub fn add_content(&mut self, report: &ScanReport, policy: &Policy) {
        for (rule, threshold) in content_rules(policy) {
            let score = content_score(report, rule);
            let st = self.scores.entry(rule.to_string()).or_default();
            st.threshold = threshold;
            if score.points > 0 {
                st.scored += 1;
                st.highest = st.highest.max(score.points);
            }
            if score.points >= threshold {
                st.over += 1;
            } else if score.points > 0 && 2 * score.points >= threshold {
                st.near += 1;
            }
            for (name, points) in &score.phrases {
                if *points != 0 {
                    *st.phrases.entry(name.clone()).or_default() += 1;
                }
            }
        }
        let services: BTreeSet<&str> = report.links.iter().map(|l| l.display.as_str()).collect();
        for s in services {
            *self.links.entry(s.to_string()).or_default() += 1;
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
        if self.scores.values().any(|s| s.scored > 0) {
            let _ = writeln!(out, "content rule scores (messages):");
            for (rule, st) in &self.scores {
                let _ = writeln!(
                    out,
                    "  {rule:<20} threshold {}: {} at or over, {} at half or more, {} above 0 (highest {})",
                    st.threshold, st.over, st.near, st.scored, st.highest
                );
                let mut phrases: Vec<(&String, &usize)> = st.phrases.iter().collect();
                phrases.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (name, n) in phrases {
                    let _ = writeln!(out, "    {name:<38} {n}");
                }
            }
        }
        if !self.links.is_empty() {
            let _ = writeln!(
                out,
                "file-sharing links (messages, approved tenants included):"
            );
            for (k, v) in &self.links {
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
