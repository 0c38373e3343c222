//! Every input the fuzzers found a crash or hang with (`tests/fuzz-regressions/<target>/`), and
//! every seed (`fuzz/seeds/<target>/`), replayed through the fuzz target's own entry point
//! (`fuzz/src/targets.rs`, included here as it is): no panic, not even one caught inside the
//! engine (a PDF panic is turned into "corrupt PDF", but it is still a bug), and done in
//! bounded time.

#[allow(dead_code)]
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Far above the scan time limit the targets use (1 s): an input still running then ignores it.
const TIME_BOUND: Duration = Duration::from_secs(20);

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Count panics on the thread they happen on, caught or not (tests run in parallel).
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Replay every file of `<root>/<target>/` through its target; the failures, one line each.
fn replay(root: &str) -> (usize, Vec<String>) {
    count_panics();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let mut count = 0;
    let mut failures = Vec::new();
    for &(name, target) in targets::TARGETS {
        for path in files(&base.join(name)) {
            let Ok(data) = std::fs::read(&path) else {
                failures.push(format!("{}: cannot read", path.display()));
                continue;
            };
            count += 1;
            let shown = path.display().to_string();
            let worker = std::thread::spawn(move || {
                let started = Instant::now();
                let result = std::panic::catch_unwind(|| target(&data));
                (result.is_ok(), PANICS.with(Cell::get), started.elapsed())
            });
            let started = Instant::now();
            while !worker.is_finished() && started.elapsed() < TIME_BOUND {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !worker.is_finished() {
                // The thread cannot be stopped: report it and leave it running (the test
                // fails anyway).
                failures.push(format!("{shown}: still running after {TIME_BOUND:?}"));
                continue;
            }
            match worker.join() {
                Ok((true, 0, took)) if took <= TIME_BOUND => {}
                Ok((true, 0, took)) => failures.push(format!("{shown}: took {took:?}")),
                Ok((_, panics, _)) => {
                    failures.push(format!("{shown}: {panics} panic(s), see the output above"))
                }
                Err(_) => failures.push(format!("{shown}: the replay thread died")),
            }
        }
    }
    (count, failures)
}

#[test]
fn crash_inputs_found_by_fuzzing_stay_fixed() {
    let (count, failures) = replay("tests/fuzz-regressions");
    assert!(
        failures.is_empty(),
        "{} of {count} regression inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fuzz_seeds_pass_every_target() {
    let (count, failures) = replay("fuzz/seeds");
    assert!(count >= targets::TARGETS.len(), "only {count} seed files");
    assert!(
        failures.is_empty(),
        "{} of {count} seeds fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
