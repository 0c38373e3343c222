//! The quarantine's own costs: sealing a 20 KB message, and holding 20 KB messages in a real
//! SQLite store (WAL, synchronous = FULL: every commit fsync'd) through the group-commit writer
//! from 8 threads at once, as the milter's judging threads do. The whole milter path, Postfix's
//! side of the socket included, is measured with `maildlp milter-load --sensitive` (README).
//!
//! `cargo bench --bench quarantine -- --warm-up-time 1 --measurement-time 5`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::policy::{self, Policy};
use maildlp::quarantine::writer::Writer;
use maildlp::quarantine::{Details, HeldRecord, Mode, Store, StoreUrl, new_id};
use maildlp::scan::Scanner;
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 8;
const PER_THREAD: usize = 16;

fn message() -> Vec<u8> {
    let mut m =
        b"From: pat@city.test\r\nTo: sam@example.com\r\nSubject: Enrolment\r\n\r\n".to_vec();
    while m.len() < 20_000 {
        m.extend_from_slice(
            b"The parks department will resurface the north lot on 2026-12-03.\r\n",
        );
    }
    m.extend_from_slice(b"Employee SSN: 536-22-4817 (synthetic)\r\n");
    m
}

fn record(raw: &[u8]) -> HeldRecord {
    let scanner = Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default());
    let policy = Policy::default_policy().expect("policy");
    let report = scanner.scan(raw);
    let env = policy::Envelope {
        sender: Some("pat@city.test".into()),
        recipients: vec!["sam@example.com".into()],
    };
    let verdict = policy::evaluate(&policy, &report, &env);
    HeldRecord {
        received_ms: 0,
        mode: Mode::Store,
        queue_id: None,
        client_addr: None,
        sender: "pat@city.test".into(),
        recipients: env.recipients,
        details: Details::new(&report, &verdict),
        notices: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let raw = message();
    let rec = record(&raw);
    let dir = std::env::temp_dir().join(format!("maildlp-bench-q-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store: Store = runtime
        .block_on(Store::open(
            &StoreUrl::sqlite(&dir.join("quarantine.db")),
            &dir.join("quarantine.key"),
            true,
        ))
        .expect("store");

    let mut g = c.benchmark_group("quarantine");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("seal 20 KB message + details", |b| {
        b.iter(|| rec.clone().seal(store.key(), new_id(), &raw))
    });

    let writer = {
        let _guard = runtime.enter();
        Writer::spawn(store.clone(), 1024, Duration::from_secs(30))
    };
    let raw = Arc::new(raw);
    g.throughput(Throughput::Elements((THREADS * PER_THREAD) as u64));
    g.sample_size(10);
    g.bench_function("hold 20 KB messages into SQLite, 8 threads", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        let (w, raw, rec) = (writer.clone(), raw.clone(), rec.clone());
                        std::thread::spawn(move || {
                            for _ in 0..PER_THREAD {
                                w.hold_blocking(rec.clone(), &new_id(), &raw).expect("hold");
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().expect("thread");
                }
            }
            started.elapsed()
        })
    });
    g.finish();
    runtime.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
