//! One message through decode and detect: the [`ScanReport`].

use crate::decode::{self, Ctx, MessageInfo, Sink};
use crate::detect::{self, Detector};
use crate::limits::Limits;
use crate::mask::mask_kind;
use crate::model::{EncryptedPart, Finding, Unscannable};
use std::collections::{BTreeMap, HashSet};
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
    /// Decoded bytes looked at (text and container contents).
    pub decoded_bytes: usize,
    pub elapsed_micros: u64,
}

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
        let started = Instant::now();
        let mut collector = Collector {
            detector: &self.detector,
            findings: BTreeMap::new(),
            encrypted: Vec::new(),
            unscannable: Vec::new(),
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
        ScanReport {
            info,
            findings,
            encrypted: collector.encrypted,
            unscannable: collector.unscannable,
            decoded_bytes,
            elapsed_micros: started.elapsed().as_micros() as u64,
        }
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
    /// (kind, location) → aggregate; ordered so output is stable.
    findings: BTreeMap<(String, String), Aggregate>,
    encrypted: Vec<EncryptedPart>,
    unscannable: Vec<Unscannable>,
}

impl Sink for Collector<'_> {
    fn text(&mut self, location: &str, text: &str) {
        let text = detect::normalize(text);
        let found = self.detector.find_all(&text);
        if found.truncated {
            self.unscannable.push(Unscannable {
                location: location.to_string(),
                reason: format!(
                    "candidate limit: more than {} values of one pattern; the rest of this part was not checked",
                    detect::MAX_MATCHES_PER_PATTERN.min(detect::MAX_CANDIDATES_PER_PATTERN)
                ),
            });
        }
        for m in found.matches {
            let value = text.get(m.start..m.end).unwrap_or("");
            let key: String = value.chars().filter(|c| c.is_alphanumeric()).collect();
            let sample = mask_kind(&m.kind, value);
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

    fn encrypted(&mut self, location: &str, kind: &str) {
        let part = EncryptedPart {
            location: location.to_string(),
            kind: kind.to_string(),
        };
        if !self.encrypted.contains(&part) {
            self.encrypted.push(part);
        }
    }

    fn unscannable(&mut self, location: &str, reason: &str) {
        self.unscannable.push(Unscannable {
            location: location.to_string(),
            reason: reason.to_string(),
        });
    }
}
