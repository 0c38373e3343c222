//! Whole-message throughput of `Scanner::scan` (MIME parse, decode, normalise, detect,
//! aggregate) on raw mail: real benign mail (ham-dev), the scan fixtures (attachments,
//! archives, Office, PDF), and a text-heavy set of large plain-text messages.
//!
//! `cargo bench --bench scan -- --warm-up-time 1 --measurement-time 3`
//! Criterion reports bytes/s; messages/s = bytes/s ÷ the mean message size printed first.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::scan::Scanner;
use std::hint::black_box;
use std::path::Path;

fn read_dir_sorted(dir: &Path, suffix: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// Large plain-text messages built from the ham-dev bodies: what a report or a pasted
/// spreadsheet looks like (about 1 MB each).
fn text_heavy(ham: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    for m in ham {
        let split = m
            .windows(4)
            .position(|w| w == b"\r\n\r\n" || w.starts_with(b"\n\n"))
            .unwrap_or(0);
        body.extend_from_slice(&m[split..]);
    }
    body.chunks(1 << 20)
        .take(8)
        .map(|chunk| {
            let mut msg = b"From: pat@city.test\r\nTo: sam@example.com\r\nSubject: report\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
            msg.extend_from_slice(chunk);
            msg
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ham = read_dir_sorted(&root.join("../shared/corpora/ham-dev"), ".eml");
    // The archive bomb fixture measures the limit, not throughput: leave it out.
    let fixtures: Vec<Vec<u8>> = read_dir_sorted(&root.join("fixtures/scan"), ".eml")
        .into_iter()
        .filter(|m| m.len() < 200_000)
        .collect();
    let heavy = text_heavy(&ham);
    let scanner = Scanner::new(
        Detector::new(&[]).expect("built-in patterns load"),
        Limits::default(),
    );
    let mut group = c.benchmark_group("scan");
    for (name, set) in [
        ("ham-dev", &ham),
        ("fixtures", &fixtures),
        ("text-heavy", &heavy),
    ] {
        let bytes: usize = set.iter().map(Vec::len).sum();
        println!(
            "{name}: {} messages, {} bytes, mean {} bytes",
            set.len(),
            bytes,
            bytes / set.len().max(1)
        );
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for m in set.iter() {
                    black_box(scanner.scan(black_box(m)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
