//! Replays every fixture of `fixtures/scan/` and `fixtures/evasion/` (crafted messages that
//! once passed silently) through the scan engine and compares the result exactly with each
//! directory's `expected.toml` (kinds and locations only: no values are printed).

use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::model::Confidence;
use maildlp::scan::Scanner;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    message: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    file: String,
    #[serde(default)]
    note: Option<String>,
    findings: Vec<String>,
    encrypted: Vec<String>,
    unscannable: bool,
    /// Values counted per `kind@location`, when the count matters (`fixtures/tables/`).
    #[serde(default)]
    counts: BTreeMap<String, usize>,
}

#[test]
fn every_fixture_gives_exactly_the_expected_findings() {
    check_dir("scan");
}

/// `fixtures/creds/`: driver's licences, credentials in prose, code and configuration, token
/// families (issue 9), with placeholders, masked values and documentation samples as negatives.
#[test]
fn every_credential_fixture_gives_exactly_the_expected_findings() {
    check_dir("creds");
}

/// `fixtures/context/`: how far a label reaches and which value it belongs to (issue 9).
#[test]
fn every_context_fixture_gives_exactly_the_expected_findings() {
    check_dir("context");
}

/// `fixtures/tables/`: a column header labels every cell below it (CSV, TSV, xlsx, ods, HTML,
/// `|` and aligned text tables, 60 rows each), and headers that label nothing (issue 9).
#[test]
fn every_table_fixture_gives_exactly_the_expected_findings() {
    check_dir("tables");
}

/// `fixtures/evasion/` and every `fixtures/evasion-*/` (one per class of issue 13).
#[test]
fn every_evasion_fixture_gives_exactly_the_expected_findings() {
    let mut dirs: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
            .expect("fixtures")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n == "evasion" || n.starts_with("evasion-"))
            .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    for d in &dirs {
        check_dir(d);
    }
}

fn check_dir(name: &str) {
    let dir = || {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    };
    let text =
        std::fs::read_to_string(dir().join("expected.toml")).expect("expected.toml readable");
    let expected: Expected = toml::from_str(&text).expect("expected.toml parses");
    let scanner = Scanner::new(
        Detector::new(&[]).expect("patterns load"),
        Limits::default(),
    );
    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = expected.message.iter().map(|m| m.file.as_str()).collect();
    for entry in std::fs::read_dir(dir()).expect("fixtures dir") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".eml") && !listed.contains(name.as_str()) {
            problems.push(format!("{name}: not listed in expected.toml"));
        }
    }
    for m in &expected.message {
        let raw = std::fs::read(dir().join(&m.file)).expect("fixture readable");
        let report = scanner.scan(&raw);
        let got: BTreeSet<String> = report
            .findings
            .iter()
            .filter(|f| f.confidence >= Confidence::Medium)
            .map(|f| format!("{}@{}", f.kind, f.location))
            .collect();
        let want: BTreeSet<String> = m.findings.iter().cloned().collect();
        let got_enc: BTreeSet<String> = report
            .encrypted
            .iter()
            .map(|e| format!("{}@{}", e.kind, e.location))
            .collect();
        let want_enc: BTreeSet<String> = m.encrypted.iter().cloned().collect();
        let note = m.note.as_deref().unwrap_or("");
        if got != want {
            problems.push(format!(
                "{} {note}: findings missing {:?}, unexpected {:?}",
                m.file,
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
        for (key, &want) in &m.counts {
            let count = report
                .findings
                .iter()
                .find(|f| format!("{}@{}", f.kind, f.location) == *key)
                .map_or(0, |f| f.count);
            if count != want {
                problems.push(format!(
                    "{} {note}: {key} counts {count} values, expected {want}",
                    m.file
                ));
            }
        }
        if got_enc != want_enc {
            problems.push(format!(
                "{}: encrypted missing {:?}, unexpected {:?}",
                m.file,
                want_enc.difference(&got_enc).collect::<Vec<_>>(),
                got_enc.difference(&want_enc).collect::<Vec<_>>()
            ));
        }
        if report.unscannable.is_empty() == m.unscannable {
            let reasons: Vec<String> = report
                .unscannable
                .iter()
                .map(|u| format!("{}: {}", u.location, u.reason))
                .collect();
            problems.push(format!(
                "{}: expected unscannable={}, got {:?}",
                m.file, m.unscannable, reasons
            ));
        }
        for f in &report.findings {
            for s in &f.masked {
                let clear = s.chars().filter(|c| c.is_alphanumeric()).count();
                if clear > 4 {
                    problems.push(format!(
                        "{}: a {} sample shows {clear} characters in clear",
                        m.file, f.kind
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} fixture problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
