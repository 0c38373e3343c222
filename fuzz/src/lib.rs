//! The fuzz targets' entry points. They live in `targets.rs`, which the root package's
//! `tests/fuzz_regressions.rs` also includes, so a crash input is replayed through exactly the
//! code the fuzzer ran.

pub mod targets;
