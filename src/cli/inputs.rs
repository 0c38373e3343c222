//! Scanning many stored messages on every core (`scan`, `replay`), with results handed on in
//! input order.

use maildlp::mailbox::{InputError, Item, Messages};
use maildlp::scan::{ScanReport, Scanner};
use rayon::prelude::*;
use std::path::PathBuf;

/// Messages read ahead per thread: enough to keep every core busy between two ordered
/// hand-overs, few enough that memory stays bounded (a batch holds its messages' bytes).
const PER_THREAD: usize = 8;

/// The number of threads for `--jobs` (default: every core).
pub fn jobs(requested: Option<usize>) -> usize {
    requested.filter(|&n| n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Read the messages under `paths`, scan them on `jobs` threads, and call `each` with every
/// message and its report, or its input error, in input order. The message's bytes are
/// dropped before `each` sees it (only its place is kept).
pub fn for_each_scanned(
    paths: &[PathBuf],
    max_message_bytes: usize,
    jobs: usize,
    scanner: &Scanner,
    mut each: impl FnMut(Result<(Item, ScanReport), InputError>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| anyhow::anyhow!("starting {jobs} scan threads: {e}"))?;
    let mut inputs = Messages::new(paths, max_message_bytes);
    loop {
        let batch: Vec<Result<Item, InputError>> =
            inputs.by_ref().take(jobs * PER_THREAD).collect();
        if batch.is_empty() {
            return Ok(());
        }
        let done: Vec<Result<(Item, ScanReport), InputError>> = pool.install(|| {
            batch
                .into_par_iter()
                .map(|item| {
                    item.map(|mut item| {
                        let report = scanner.scan(&item.raw);
                        item.raw = Vec::new();
                        (item, report)
                    })
                })
                .collect()
        });
        for r in done {
            each(r)?;
        }
    }
}
