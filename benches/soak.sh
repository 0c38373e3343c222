#!/usr/bin/env bash
# Soak: TOTAL messages (default 1,000,000) through `maildlp milter`, a mixed load played by
# `maildlp milter-load` in rounds: ham-dev's 999 real messages, the hard MIME corpus (malformed
# and odd structure), synthetic sensitive messages and a 5 MB message. RSS and open file
# descriptors of the milter are sampled every second, messages/s and p50/p99 latency per round.
# Writes target/soak/{samples.csv,rounds.csv,soak.svg} and prints a summary.
#
#   cargo build --release && bash benches/soak.sh            # TOTAL=200000 bash ... for a shorter run
#
# The milter runs with --quarantine-mode mta: quarantined messages go to the MTA's hold queue,
# not to the store (a million held copies would measure the disk, not the filter; the store's
# path is measured by `cargo bench --bench quarantine`).
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${TOTAL:-1000000}
ROUND=${ROUND:-50000}
CONN=${CONN:-8}
BIN=${BIN:-target/release/maildlp}
SHARED=${SHARED:-../shared}
OUT=target/soak
rm -rf "$OUT" && mkdir -p "$OUT/mix"

# The mix.
cp "$SHARED"/corpora/ham-dev/*.eml "$OUT/mix/"
find "$SHARED"/corpora/mime -type f -size -400k | head -200 | while read -r f; do
  cp "$f" "$OUT/mix/mime-$(basename "$(dirname "$f")")-$(basename "$f")"
done
for i in $(seq 1 50); do
  printf 'From: pat@city.test\r\nTo: sam@example.com\r\nSubject: enrolment %s\r\n\r\nEmployee SSN: 536-22-%04d (synthetic)\r\nCard 4111 1111 1111 1111 for the fee.\r\n' "$i" "$((4000 + i))" > "$OUT/mix/sensitive-$i.eml"
done
python3 - "$OUT/mix/large.eml" <<'PY'
import sys
line = "Quarterly maintenance schedule for the parks department, nothing sensitive here.\r\n"
with open(sys.argv[1], "w") as f:
    f.write("From: pat@city.test\r\nTo: sam@example.com\r\nSubject: large\r\n\r\n")
    f.write(line * (5 * 1024 * 1024 // len(line)))
PY
echo "mix: $(ls "$OUT/mix" | wc -l) messages, $(du -sh "$OUT/mix" | cut -f1)"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" milter --listen "inet:127.0.0.1:$PORT" --quarantine-mode mta --max-connections 64 \
  2> "$OUT/milter.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; kill $SAMPLER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q ready "$OUT/milter.log" && break; sleep 0.1; done

START=$(date +%s.%N)
echo "t,rss_kib,fds" > "$OUT/samples.csv"
(
  while kill -0 "$PID" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$PID/fd" 2>/dev/null | wc -l)
    echo "$(python3 -c "import time; print(round(time.time()-$START,1))"),$rss,$fds" >> "$OUT/samples.csv"
    sleep 1
  done
) &
SAMPLER=$!

echo "round,t,messages,per_s,p50_ms,p99_ms,max_ms,errors" > "$OUT/rounds.csv"
per=$((ROUND / CONN))
rounds=$((TOTAL / (per * CONN)))
for r in $(seq 1 "$rounds"); do
  line=$("$BIN" milter-load --addr "127.0.0.1:$PORT" --connections "$CONN" \
    --messages-per-connection "$per" --message "$OUT/mix" || true)
  t=$(python3 -c "import time; print(round(time.time()-$START,1))")
  python3 - "$r" "$t" "$line" >> "$OUT/rounds.csv" <<'PY'
import re, sys
r, t, line = sys.argv[1:4]
m = re.search(r"^(\d+) messages .* (\d+) messages/s; latency p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms; (\d+) errors", line)
if not m:
    sys.exit(f"round {r}: unexpected output: {line}")
print(",".join([r, t] + list(m.groups())))
PY
  tail -1 "$OUT/rounds.csv"
done
kill "$SAMPLER" 2>/dev/null || true
python3 benches/soak-chart.py "$OUT"
