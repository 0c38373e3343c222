#!/usr/bin/env bash
# The long run: each target in turn for its share of time, one AFL process at a time under
# `nice -n 19` (the machine is shared), findings and stats in fuzz/out/<target>/ (a target run
# again resumes from its queue). Then the figures of every target as a Markdown table.
#
#   fuzz/run-long.sh scan_message:600 pdf:600 zip:300 ...
#   fuzz/run-long.sh --table            # only print the table of what is in fuzz/out
set -euo pipefail
cd "$(dirname "$0")"

table() {
  echo "| target | time (s) | execs | execs/s | corpus | bitmap coverage | crashes | hangs |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for stats in out/*/default/fuzzer_stats; do
    [ -f "$stats" ] || continue
    t="$(basename "$(dirname "$(dirname "$stats")")")"
    awk -F' *: *' -v t="$t" '
      { v[$1] = $2 }
      END { printf "| `%s` | %d | %d | %.0f | %d | %s | %d | %d |\n", t, v["run_time"], v["execs_done"],
            v["execs_done"] / (v["run_time"] ? v["run_time"] : 1), v["corpus_count"], v["bitmap_cvg"],
            v["saved_crashes"], v["saved_hangs"] }' "$stats"
  done
}

if [ "${1:-}" = "--table" ]; then
  table
  exit 0
fi

cargo afl build --release --quiet
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
mkdir -p out
for spec in "$@"; do
  t="${spec%%:*}"
  secs="${spec#*:}"
  input="seeds/$t"
  # Resume where the last run of this target stopped.
  if [ -d "out/$t/default/queue" ]; then
    input="-"
    export AFL_AUTORESUME=1
  fi
  echo "$(date -u +%H:%M:%S) $t for ${secs}s"
  nice -n 19 cargo afl fuzz -i "$input" -o "out/$t" -V "$secs" -t 5000 -m 2048 \
    "target/release/$t" >>"out/$t.log" 2>&1 || echo "afl-fuzz failed for $t: see out/$t.log"
  unset AFL_AUTORESUME
done
table
