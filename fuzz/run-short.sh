#!/usr/bin/env bash
# Build every fuzz target and run each for SECONDS (default 30) from its seeds, one at a time.
# Exits non-zero if any crash or hang was found, printing the reproducer paths.
#
#   fuzz/run-short.sh [SECONDS]
#   TARGETS="pdf rtf" fuzz/run-short.sh 60     # some targets only
#   OUT=/tmp/fuzz-out fuzz/run-short.sh        # keep the findings there (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH="${1:-30}"
ALL="scan_message mime pdf rtf zip gzip tar ole html patterns policy milter_codec milter_session smtp_session web_forms"
TARGETS="${TARGETS:-$ALL}"
OUT="${OUT:-$(mktemp -d -t maildlp-fuzz.XXXXXX)}"
mkdir -p "$OUT"
# An input running past this (ms) is a hang: the targets cut a message at 1 s of scanning.
TIMEOUT_MS="${TIMEOUT_MS:-5000}"
# Memory a run may take (MB): past it an allocation fails and AFL reports a crash.
MEMORY_MB="${MEMORY_MB:-2048}"

cargo afl build --release --quiet

# Non-interactive, on a shared machine whose CPU governor and core dump settings are not ours.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFL_QUIET=1 AFL_NO_CRASH_README=1

found=()
passed=0
failed=0
for t in $TARGETS; do
  if [ ! -d "seeds/$t" ]; then
    echo "run-short: no seeds/$t: unknown target" >&2
    exit 2
  fi
  echo "run-short: $t for ${SECONDS_EACH}s"
  rm -rf "${OUT:?}/$t"
  cargo afl fuzz -i "seeds/$t" -o "$OUT/$t" -V "$SECONDS_EACH" -t "$TIMEOUT_MS" -m "$MEMORY_MB" \
    "target/release/$t" >"$OUT/$t.log" 2>&1 || {
    tail -30 "$OUT/$t.log" >&2
    echo "run-short: afl-fuzz failed for $t (log: $OUT/$t.log)" >&2
    exit 1
  }
  stats="$OUT/$t/default/fuzzer_stats"
  if [ -f "$stats" ]; then
    awk -F' *: *' -v t="$t" '$1 ~ /^(execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs)$/ {
      printf "%s%s=%s", (n++ ? " " : "  " t ": "), $1, $2 } END { print "" }' "$stats"
  fi
  before="${#found[@]}"
  for kind in crashes hangs; do
    for f in "$OUT/$t/default/$kind"/id:*; do
      [ -e "$f" ] && found+=("$t $kind: $f")
    done
  done
  if [ "${#found[@]}" -eq "$before" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

if [ "${#found[@]}" -gt 0 ]; then
  echo "run-short: ${#found[@]} finding(s); reproduce with: fuzz/target/release/TARGET < FILE" >&2
  printf '  %s\n' "${found[@]}" >&2
  echo "fuzz: $passed passed, $failed failed"
  exit 1
fi
echo "run-short: no crash or hang (findings dir: $OUT)"
echo "fuzz: $passed passed, $failed failed"
