//! The shared corpora: hard MIME cases must all scan (no panic, bounded time), and real benign
//! mail must almost never get a medium or high finding.

use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::model::Confidence;
use maildlp::scan::Scanner;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn shared() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
    assert!(
        dir.is_dir(),
        "{} is missing: the tests expect the shared/ folder beside the repository",
        dir.display()
    );
    dir
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn scanner() -> Scanner {
    Scanner::new(
        Detector::new(&[]).expect("patterns load"),
        Limits::default(),
    )
}

#[test]
fn every_hard_mime_case_scans_quickly() {
    let mut files = Vec::new();
    files_under(&shared().join("mime"), &mut files);
    assert!(
        files.len() >= 150,
        "expected the whole MIME corpus, found {}",
        files.len()
    );
    let scanner = scanner();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for path in &files {
        let raw = std::fs::read(path).expect("corpus file readable");
        let started = Instant::now();
        let report = scanner.scan(&raw);
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, path.clone());
        }
        // Every message yields a defined result: header info or an unscannable reason.
        assert!(
            report.info.parsed || !report.unscannable.is_empty(),
            "{}: neither parsed nor reported unscannable",
            path.display()
        );
    }
    println!(
        "{} MIME cases scanned; slowest {:?} ({})",
        files.len(),
        slowest.0,
        slowest.1.display()
    );
    // Generous so that a loaded CI machine does not flake; typical is well under 10 ms.
    assert!(
        slowest.0 < Duration::from_secs(1),
        "{} took {:?}",
        slowest.1.display(),
        slowest.0
    );
}

#[test]
fn benign_mail_is_almost_never_flagged() {
    let mut files = Vec::new();
    files_under(&shared().join("ham-dev"), &mut files);
    assert!(
        files.len() >= 900,
        "expected ham-dev, found {}",
        files.len()
    );
    let scanner = scanner();
    let mut flagged = Vec::new();
    for path in &files {
        let raw = std::fs::read(path).expect("corpus file readable");
        let report = scanner.scan(&raw);
        let hits: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.confidence >= Confidence::Medium)
            .map(|f| format!("{} {} {:?}", f.kind, f.location, f.masked))
            .collect();
        if !hits.is_empty() {
            flagged.push(format!(
                "{}: {}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                hits.join("; ")
            ));
        }
    }
    let rate = flagged.len() as f64 / files.len() as f64;
    println!(
        "ham-dev: {} of {} messages with a medium/high finding ({:.2}%)",
        flagged.len(),
        files.len(),
        rate * 100.0
    );
    for f in &flagged {
        println!("  {f}");
    }
    assert!(
        rate <= 0.005,
        "false-positive rate {:.2}% is over 0.5%:\n{}",
        rate * 100.0,
        flagged.join("\n")
    );
}

/// The content rules (issue 12) on real benign mail, mostly mailing-list traffic: they may
/// fire now and then (this is why chain_letter and mass_solicitation default to monitor
/// mode), but rarely. The README reports the rates this prints.
#[test]
fn content_rules_rarely_fire_on_benign_mail() {
    use maildlp::policy::{self, Envelope, Policy};
    let mut files = Vec::new();
    files_under(&shared().join("ham-dev"), &mut files);
    let scanner = scanner();
    let policy = Policy::default_policy().expect("default policy");
    let rules = ["chain_letter", "mass_solicitation", "unapproved_file_share"];
    let mut fired: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    for path in &files {
        let raw = std::fs::read(path).expect("corpus file readable");
        let report = scanner.scan(&raw);
        let verdict = policy::evaluate(&policy, &report, &Envelope::from_headers(&report));
        for (i, rule) in rules.iter().enumerate() {
            if verdict.rules.iter().any(|h| h.rule == *rule) {
                fired[i].push(
                    path.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    for (rule, hits) in rules.iter().zip(&fired) {
        let rate = hits.len() as f64 / files.len() as f64;
        println!(
            "ham-dev: {rule} fires on {} of {} messages ({:.2}%): {}",
            hits.len(),
            files.len(),
            rate * 100.0,
            hits.join(", ")
        );
        assert!(
            rate <= 0.01,
            "{rule} fires on {:.2}% of ham-dev",
            rate * 100.0
        );
    }
}
