#!/usr/bin/env bash
# cargo-afl (AFL++ for Rust on the stable toolchain) and its runtime, for the fuzz targets in
# fuzz/ (fuzz/run-short.sh). The version matches the `afl` crate pinned in fuzz/Cargo.toml.
set -euo pipefail

VERSION=0.18.2

if ! cargo afl --version 2>/dev/null | grep -q "cargo-afl $VERSION"; then
  # Building AFL++ needs make and a C compiler.
  if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends make gcc libc6-dev >/dev/null
  fi
  cargo install cargo-afl --version "$VERSION" --locked
fi

# The AFL++ runtime is built once per rustc version; "already built" is not an error.
if ! out="$(cargo afl config --build 2>&1)"; then
  if ! grep -q "already built" <<<"$out"; then
    echo "$out" >&2
    echo "install-afl: building the AFL++ runtime failed (see above)" >&2
    exit 1
  fi
fi
cargo afl --version
