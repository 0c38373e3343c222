//! One message through decode and detect: the [`ScanReport`].

use crate::decode::{self, Ctx, MessageInfo, Sink};
use crate::detect::{self, Detector};
use crate::limits::Limits;
use crate::mask::mask_kind;
use crate::model::{EncryptedPart, Finding, Unscannable};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// Samples kept per finding.
const MAX_SAMPLES: usize = 3;

/// What one message holds.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    pub info: MessageInfo,
    pub findings: Vec<Finding>,
    pub encrypted: Vec<EncryptedPart>,
    pub unscannable: Vec<Unscannable>,
    /// Phrases of the content rules (`chain_letter`, `mass_solicitation`) found, where.
    pub signals: Vec<Signal>,
    /// Links to file-sharing and paste services, where.
    pub links: Vec<SharedLink>,
    /// Decoded bytes looked at (text and container contents).
    pub decoded_bytes: usize,
    pub elapsed_micros: u64,
}

/// A `[[phrase]]` of a content rule found in one place of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub rule: String,
    /// The phrase's name in its pattern file.
    pub name: String,
    /// Points per occurrence.
    pub weight: i32,
    /// Occurrences that count.
    pub count: usize,
    pub location: String,
}

/// A link to a file-sharing or paste service found in one place of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLink {
    /// The `[[service]]` name and its display name.
    pub service: String,
    pub display: String,
    /// Lower-case host.
    pub host: String,
    /// Path and query (the sharing link works for whoever holds it: kept for the policy's
    /// approved-tenant check, never printed).
    pub path: String,
    pub location: String,
}

/// Links kept per message.
const MAX_LINKS: usize = 1_000;

/// The engine: compiled patterns and limits, shared by every message (and thread).
#[derive(Debug)]
pub struct Scanner {
    detector: Detector,
    limits: Limits,
}

impl Scanner {
    pub fn new(detector: Detector, limits: Limits) -> Self {
        Scanner { detector, limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Scan one raw RFC 5322 message.
    pub fn scan(&self, raw: &[u8]) -> ScanReport {
        self.scan_inner(raw, None).0
    }

    /// Scan a message and also keep what a reviewer is shown: up to `max_excerpts` excerpts
    /// of the text around the values found (every value in them masked) and the parts read.
    pub fn scan_with_evidence(&self, raw: &[u8], max_excerpts: usize) -> (ScanReport, Evidence) {
        let (report, evidence) = self.scan_inner(raw, Some(max_excerpts));
        (report, evidence.unwrap_or_default())
    }

    /// `s` with every value the detector finds in it masked (at any confidence): for showing
    /// text that was not judged, such as a header, to a reviewer.
    pub fn mask_values(&self, s: &str) -> String {
        let norm = detect::normalize(s);
        let mut matches = self.detector.find(&norm);
        if matches.is_empty() {
            return norm.into_owned();
        }
        matches.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
        masked_span(&norm, 0, norm.len(), &matches)
    }

    fn scan_inner(&self, raw: &[u8], excerpts: Option<usize>) -> (ScanReport, Option<Evidence>) {
        let started = Instant::now();
        let mut collector = Collector {
            detector: &self.detector,
            safe: HashMap::new(),
            findings: BTreeMap::new(),
            encrypted: Vec::new(),
            unscannable: Vec::new(),
            evidence: excerpts.map(|max| (max, Evidence::default())),
            signals: Vec::new(),
            signal_at: HashMap::new(),
            links: Vec::new(),
        };
        let (info, decoded_bytes) = {
            let mut ctx = Ctx::new(&self.limits, &mut collector);
            let info = decode::decode_message(&mut ctx, raw);
            (info, ctx.decoded_bytes())
        };
        let findings = collector
            .findings
            .into_iter()
            .map(|((kind, location), agg)| Finding {
                kind,
                confidence: agg.confidence,
                count: agg.values.len(),
                location,
                masked: agg.samples,
            })
            .collect();
        let report = ScanReport {
            info,
            findings,
            encrypted: collector.encrypted,
            unscannable: collector.unscannable,
            signals: collector.signals,
            links: collector.links,
            decoded_bytes,
            elapsed_micros: started.elapsed().as_micros() as u64,
        };
        (report, collector.evidence.map(|(_, e)| e))
    }
}

/// What the review console shows of a message besides its findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub excerpts: Vec<Excerpt>,
    /// Every place text was read from, with its decoded size, in reading order.
    pub parts: Vec<(String, usize)>,
    /// More values were found than excerpts kept.
    pub truncated: bool,
}

/// A value found, in its context: `before` + `value` + `after` is a stretch of the decoded
/// text with whitespace collapsed and **every** value the detector finds in it masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    pub location: String,
    pub kind: String,
    pub confidence: crate::model::Confidence,
    pub before: String,
    /// The value itself, masked.
    pub value: String,
    pub after: String,
}

/// Characters of context on each side of a value.
const EXCERPT_CONTEXT: usize = 60;
/// Excerpts kept per kind and place.
const EXCERPTS_PER_FINDING: usize = 3;

/// `text[from..to]` with the values in `matches` masked and whitespace collapsed.
fn masked_span(text: &str, from: usize, to: usize, matches: &[detect::Match]) -> String {
    let mut out = String::new();
    let mut at = from;
    for m in matches {
        if m.end <= at || m.start >= to {
            continue;
        }
        if m.start > at {
            out.push_str(text.get(at..m.start).unwrap_or(""));
        }
        let (s, e) = (m.start.max(at), m.end.min(to));
        if (s, e) == (m.start, m.end) {
            out.push_str(&mask_match(m, text.get(s..e).unwrap_or("")));
        } else {
            // A value cut by the window's edge (or overlapping one already shown): nothing
            // of it in clear.
            out.extend(
                text.get(s..e).unwrap_or("").chars().map(
                    |c| {
                        if c.is_alphanumeric() { '*' } else { c }
                    },
                ),
            );
        }
        at = e;
    }
    if at < to {
        out.push_str(text.get(at..to).unwrap_or(""));
    }
    let mut collapsed = String::with_capacity(out.len());
    let mut space = false;
    for c in out.chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
        } else {
            if space {
                collapsed.push(' ');
            }
            space = false;
            collapsed.push(c);
        }
    }
    if space {
        collapsed.push(' ');
    }
    collapsed
}

/// The byte offset `n` characters before `at` (or after, `forward`), on a char boundary.
fn step_chars(text: &str, at: usize, n: usize, forward: bool) -> usize {
    if forward {
        text.get(at..)
            .and_then(|t| t.char_indices().nth(n).map(|(i, _)| at + i))
            .unwrap_or(text.len())
    } else {
        text.get(..at)
            .and_then(|t| {
                t.char_indices()
                    .rev()
                    .nth(n.saturating_sub(1))
                    .map(|(i, _)| i)
            })
            .unwrap_or(0)
    }
}

/// The masked form of a match: nothing in clear for a secret pattern, else [`mask_kind`].
fn mask_match(m: &detect::Match, value: &str) -> String {
    if m.secret {
        "********".to_string()
    } else {
        mask_kind(&m.kind, value)
    }
}

struct Aggregate {
    confidence: crate::model::Confidence,
    /// Distinct values (compared without separators), so a number quoted twice counts once.
    values: HashSet<String>,
    samples: Vec<String>,
}

struct Collector<'d> {
    detector: &'d Detector,
    /// Place names and reasons with any value in them masked (`attachment:***-**-6789.csv`):
    /// a file name or a Content-Type can hold a value, and these strings reach JSON, logs,
    /// verdict reasons and the 550 reply.
    safe: HashMap<String, String>,
    /// (kind, location) → aggregate; ordered so output is stable.
    findings: BTreeMap<(String, String), Aggregate>,
    encrypted: Vec<EncryptedPart>,
    unscannable: Vec<Unscannable>,
    /// With the console's evidence: how many excerpts at most, and what is kept so far.
    evidence: Option<(usize, Evidence)>,
    signals: Vec<Signal>,
    /// (phrase, location) → index in `signals`.
    signal_at: HashMap<(String, String), usize>,
    links: Vec<SharedLink>,
}

impl Collector<'_> {
    fn keep_evidence(&mut self, location: &str, text: &str, matches: &[detect::Match]) {
        let Some((max, evidence)) = self.evidence.as_mut() else {
            return;
        };
        evidence.parts.push((location.to_string(), text.len()));
        let mut sorted: Vec<detect::Match> = matches.to_vec();
        sorted.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
        for m in &sorted {
            let shown = evidence
                .excerpts
                .iter()
                .filter(|e| e.location == location && e.kind == m.kind)
                .count();
            if shown >= EXCERPTS_PER_FINDING {
                continue;
            }
            if evidence.excerpts.len() >= *max {
                evidence.truncated = true;
                return;
            }
            let from = step_chars(text, m.start, EXCERPT_CONTEXT, false);
            let to = step_chars(text, m.end, EXCERPT_CONTEXT, true);
            let value = text.get(m.start..m.end).unwrap_or("");
            evidence.excerpts.push(Excerpt {
                location: location.to_string(),
                kind: m.kind.clone(),
                confidence: m.confidence,
                before: masked_span(text, from, m.start, &sorted),
                value: mask_match(m, value),
                after: masked_span(text, m.end, to, &sorted),
            });
        }
    }

    /// `s` with every value the detector finds in it masked, at any confidence.
    fn safe(&mut self, s: &str) -> String {
        if let Some(done) = self.safe.get(s) {
            return done.clone();
        }
        let norm = detect::normalize(s);
        // Places are paths of names: read them as words (same length, so spans line up).
        let mut matches = self.detector.find(&decode::name_as_words(&norm));
        let out = if matches.is_empty() {
            s.to_string()
        } else {
            matches.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
            let mut out = String::with_capacity(norm.len());
            let mut at = 0;
            for m in &matches {
                if m.start < at {
                    continue; // inside a span already masked
                }
                out.push_str(&norm[at..m.start]);
                out.push_str(&mask_match(m, &norm[m.start..m.end]));
                at = m.end;
            }
            out.push_str(&norm[at..]);
            out
        };
        self.safe.insert(s.to_string(), out.clone());
        out
    }
}

impl Sink for Collector<'_> {
    fn text(&mut self, location: &str, text: &str) {
        let text = detect::normalize(text);
        self.detect(location, &text, None);
    }

    fn text_across(&mut self, location: &str, before: &str, after: &str) {
        let before = detect::normalize(before);
        let joined = format!("{before}{}", detect::normalize(after));
        self.detect(location, &joined, Some(before.len()));
    }

    fn encrypted(&mut self, location: &str, kind: &str) {
        let part = EncryptedPart {
            location: self.safe(location),
            kind: kind.to_string(),
        };
        if !self.encrypted.contains(&part) {
            self.encrypted.push(part);
        }
    }

    fn unscannable(&mut self, location: &str, reason: &str) {
        let location = self.safe(location);
        let reason = self.safe(reason);
        self.unscannable.push(Unscannable { location, reason });
    }
}

impl Collector<'_> {
    /// Run the detectors on normalised `text` from `location`. With `cut`, the text is two
    /// pieces joined at that offset, and only values that cross it count (content-rule phrases
    /// and links were counted in each piece).
    fn detect(&mut self, location: &str, text: &str, cut: Option<usize>) {
        let mut found = self.detector.find_all(text);
        if let Some(cut) = cut {
            found.matches.retain(|m| m.start < cut && m.end > cut);
            found.signals.clear();
            found.links.clear();
        }
        let location = &self.safe(location);
        if found.truncated {
            self.unscannable.push(Unscannable {
                location: location.to_string(),
                reason: format!(
                    "candidate limit: more than {} values of one pattern; the rest of this part was not checked",
                    detect::MAX_MATCHES_PER_PATTERN.min(detect::MAX_CANDIDATES_PER_PATTERN)
                ),
            });
        }
        if self.evidence.is_some() {
            let location = location.clone();
            self.keep_evidence(&location, text, &found.matches);
        }
        for sig in found.signals {
            // The same text read twice (an HTML part and its <br>-joined form) counts once.
            let key = (sig.name.clone(), location.to_string());
            if let Some(old) = self
                .signal_at
                .get(&key)
                .and_then(|&i| self.signals.get_mut(i))
            {
                old.count = old.count.max(sig.count);
                old.weight = old.weight.max(sig.weight);
                continue;
            }
            self.signal_at.insert(key, self.signals.len());
            self.signals.push(Signal {
                rule: sig.rule,
                name: sig.name,
                weight: sig.weight,
                count: sig.count,
                location: location.to_string(),
            });
        }
        for l in found.links {
            if self.links.len() >= MAX_LINKS
                || self
                    .links
                    .iter()
                    .any(|o| o.host == l.host && o.path == l.path && o.location == *location)
            {
                continue;
            }
            self.links.push(SharedLink {
                service: l.service,
                display: l.display,
                host: l.host,
                path: l.path,
                location: location.to_string(),
            });
        }
        for m in found.matches {
            let value = text.get(m.start..m.end).unwrap_or("");
            let key: String = value.chars().filter(|c| c.is_alphanumeric()).collect();
            let sample = mask_match(&m, value);
            let agg = self
                .findings
                .entry((m.kind, location.to_string()))
                .or_insert_with(|| Aggregate {
                    confidence: m.confidence,
                    values: HashSet::new(),
                    samples: Vec::new(),
                });
            agg.confidence = agg.confidence.max(m.confidence);
            if agg.values.insert(key) && agg.samples.len() < MAX_SAMPLES {
                agg.samples.push(sample);
            }
        }
    }
}
