//! Throughput of `Detector::find`: on the decoded text of real benign mail (ham-dev): one
//! ordinary part (the median one of 1 KB or more), every part one by one, all parts as one
//! text; and on a synthetic text dense with sensitive values (numbers every few words).
//!
//! `cargo bench --bench detect -- --warm-up-time 1 --measurement-time 3`
//!
//! `keywords_only` runs the keyword search alone (maildlp's pass and aho-corasick's DFA on the
//! same keywords); `DETECT_DUMP=<dir>` writes the keywords and parts for
//! `benches/hyperscan_keywords.c`, which runs Hyperscan on them.
//!
//! For instruction counts (stable on a loaded machine), `DETECT_PROFILE=<name>:<rounds>` runs
//! one workload (`ham_dev_segments`, `ham_dev_joined`, `ham_dev_median_part` or
//! `dense_synthetic`) once to warm the regex caches and then `rounds` times through `profiled()`, without criterion:
//! `DETECT_PROFILE=dense_synthetic:5 valgrind --tool=callgrind --toggle-collect='detect::profiled'
//! target/release/deps/detect-<hash>`; instructions per byte = Ir ÷ (rounds × bytes printed).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maildlp::decode::{self, Ctx, Sink};
use maildlp::detect::{Detector, normalize};
use maildlp::limits::Limits;
use std::hint::black_box;
use std::path::Path;

struct Texts(Vec<String>);

impl Sink for Texts {
    fn text(&mut self, _location: &str, text: &str) {
        self.0.push(text.to_string());
    }
    fn encrypted(&mut self, _location: &str, _kind: &str) {}
    fn unscannable(&mut self, _location: &str, _reason: &str) {}
}

/// The text segments maildlp's decoder produces for each message of the corpus.
fn ham_texts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/ham-dev");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    let limits = Limits::default();
    let mut texts = Texts(Vec::new());
    for p in paths {
        if let Ok(raw) = std::fs::read(&p) {
            let mut ctx = Ctx::new(&limits, &mut texts);
            decode::decode_message(&mut ctx, &raw);
        }
    }
    texts.0
}

fn luhn_complete(prefix: &str, len: usize, seed: u64) -> String {
    let mut d: Vec<u32> = prefix.bytes().map(|b| u32::from(b - b'0')).collect();
    let mut x = seed;
    while d.len() < len - 1 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        d.push(((x >> 33) % 10) as u32);
    }
    let sum = |d: &[u32]| -> u32 {
        d.iter()
            .rev()
            .enumerate()
            .map(|(i, &v)| {
                if i % 2 == 1 {
                    let w = v * 2;
                    if w > 9 { w - 9 } else { w }
                } else {
                    v
                }
            })
            .sum()
    };
    for c in 0..10 {
        let mut t = d.clone();
        t.push(c);
        if sum(&t) % 10 == 0 {
            return t.iter().map(|v| char::from(b'0' + *v as u8)).collect();
        }
    }
    String::new()
}

/// About 1 MB of synthetic mail text in which every few lines hold a sensitive value (all
/// values are generated: none is a real person's).
fn dense_text() -> String {
    let mut s = String::new();
    let mut i: u64 = 0;
    while s.len() < 1_000_000 {
        i += 1;
        let area = 100 + (i * 37) % 500;
        let group = 10 + (i * 13) % 89;
        let serial = 1000 + (i * 7919) % 8999;
        let card = luhn_complete("4539", 16, i);
        let card = format!(
            "{} {} {} {}",
            &card[0..4],
            &card[4..8],
            &card[8..12],
            &card[12..16]
        );
        s.push_str(&format!(
            "Hello team, following up on the case from meeting {i} on 2002-08-22 at 10:{:02}.\n\
             Employee SSN {area:03}-{group:02}-{serial:04} and phone (555) 123-{:04}.\n\
             Please charge card {card} exp 12/27, order #{}.\n\
             Login for the portal: username: user{i} password: Pw{i}x!Zq{}\n\
             Routing 021000021 account 4821{:05} at First Bank.\n\
             Nothing else here, regards, the office. Version 2.4.18, see ticket 88{i}.\n\n",
            i % 60,
            i % 10000,
            1_000_000 + i,
            i * 31,
            i % 100_000,
        ));
    }
    s
}

/// One ordinary part: the text of median length among those of 1 KB or more.
fn median_part(texts: &[String]) -> Option<&String> {
    let mut sized: Vec<&String> = texts.iter().filter(|t| t.len() >= 1024).collect();
    sized.sort_by_key(|t| t.len());
    sized.get(sized.len() / 2).copied()
}

/// One pass of `detector.find` over `texts` (kept out of line so callgrind can count it alone).
#[inline(never)]
fn profiled(detector: &Detector, texts: &[String]) -> usize {
    texts
        .iter()
        .map(|t| detector.find(black_box(t)).len())
        .sum()
}

/// `DETECT_PROFILE=<name>:<rounds>`: run one workload without criterion (see the top).
fn profile(spec: &str) {
    let (name, rounds) = spec.split_once(':').unwrap_or((spec, "10"));
    let rounds: usize = rounds.parse().unwrap_or(10);
    let detector = Detector::new(&[]).expect("built-in patterns load");
    let ham = || -> Vec<String> {
        ham_texts()
            .iter()
            .map(|t| normalize(t).into_owned())
            .collect()
    };
    let texts = match name {
        "ham_dev_segments" => ham(),
        "ham_dev_joined" => vec![ham().join("\n")],
        "ham_dev_median_part" => median_part(&ham()).into_iter().cloned().collect(),
        "dense_synthetic" => vec![dense_text()],
        other => {
            eprintln!("DETECT_PROFILE: unknown workload {other:?}");
            return;
        }
    };
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut found = texts.iter().map(|t| detector.find(t).len()).sum::<usize>();
    for _ in 0..rounds {
        found += profiled(&detector, &texts);
    }
    println!(
        "{name}: {} texts, {bytes} bytes, {rounds} rounds, {found} matches",
        texts.len()
    );
}

/// The keyword search alone, over every ham-dev part: maildlp's keyword pass, and
/// aho-corasick's fastest automaton on the same keywords (the yardstick for the first stage of
/// detection; `benches/hyperscan_keywords.c` runs Hyperscan on them too).
fn keywords_only(c: &mut Criterion, detector: &Detector, texts: &[String]) {
    let total: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("keywords_only");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("maildlp_keyword_pass", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| detector.keyword_occurrences(black_box(t.as_bytes())))
                .sum::<usize>()
        })
    });
    let ac = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(detector.keywords())
        .expect("the keywords build an automaton");
    g.bench_function("aho_corasick_dfa", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| ac.find_overlapping_iter(black_box(t.as_bytes())).count())
                .sum::<usize>()
        })
    });
    g.finish();
}

/// `DETECT_DUMP=<dir>`: write the keywords (`keywords.txt`, one per line, a line break inside
/// one written `\n`) and the decoded ham-dev parts (`ham-dev-parts.bin`, NUL between parts)
/// for `benches/hyperscan_keywords.c`.
fn dump(dir: &str) {
    let detector = Detector::new(&[]).expect("built-in patterns load");
    let texts: Vec<String> = ham_texts()
        .iter()
        .map(|t| normalize(t).into_owned())
        .collect();
    let keywords: Vec<String> = detector
        .keywords()
        .iter()
        .map(|k| String::from_utf8_lossy(k).replace('\n', "\\n"))
        .collect();
    let dir = Path::new(dir);
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("keywords.txt"), keywords.join("\n")))
        .and_then(|()| std::fs::write(dir.join("ham-dev-parts.bin"), texts.join("\0")));
    match written {
        Ok(()) => println!(
            "{}: {} keywords, {} parts",
            dir.display(),
            keywords.len(),
            texts.len()
        ),
        Err(e) => eprintln!("DETECT_DUMP: cannot write to {}: {e}", dir.display()),
    }
}

fn bench(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("DETECT_PROFILE") {
        profile(&spec);
        return;
    }
    if let Ok(dir) = std::env::var("DETECT_DUMP") {
        dump(&dir);
        return;
    }
    let detector = Detector::new(&[]).expect("built-in patterns load");
    let raw = ham_texts();
    let texts: Vec<String> = raw.iter().map(|t| normalize(t).into_owned()).collect();
    let total: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("detect");
    if total > 0 {
        let raw_total: usize = raw.iter().map(String::len).sum();
        g.throughput(Throughput::Bytes(raw_total as u64));
        g.bench_function("normalize_ham_dev", |b| {
            b.iter(|| {
                raw.iter()
                    .map(|t| normalize(black_box(t)).len())
                    .sum::<usize>()
            })
        });
        if let Some(part) = median_part(&texts) {
            g.throughput(Throughput::Bytes(part.len() as u64));
            g.bench_function("ham_dev_median_part", |b| {
                b.iter(|| detector.find(black_box(part)).len())
            });
        }
        g.throughput(Throughput::Bytes(total as u64));
        g.bench_function("ham_dev_segments", |b| {
            b.iter(|| {
                let mut n = 0;
                for t in &texts {
                    n += detector.find(black_box(t)).len();
                }
                n
            })
        });
        let joined = texts.join("\n");
        g.throughput(Throughput::Bytes(joined.len() as u64));
        g.bench_function("ham_dev_joined", |b| {
            b.iter(|| detector.find(black_box(&joined)).len())
        });
    } else {
        eprintln!("ham-dev corpus not found: skipping the ham benchmarks");
    }
    let dense = dense_text();
    g.throughput(Throughput::Bytes(dense.len() as u64));
    g.bench_function("dense_synthetic", |b| {
        b.iter(|| detector.find(black_box(&dense)).len())
    });
    g.finish();
    if total > 0 {
        keywords_only(c, &detector, &texts);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
