#!/usr/bin/env bash
# What an administrator sees: messages/s a real Postfix accepts over SMTP, with no milter, with
# a filter that does nothing, and with maildlp as its milter, each over a unix socket and over
# TCP, and with maildlp relay as an after-queue content filter, in one run. A private Postfix
# (own config, queue and data directories, loopback ports; shared/notes/postfix-test-instance.md)
# relays to Postfix's own smtp-sink; Postfix's smtp-source injects the load.
#
#   bash benches/postfix-throughput.sh            # needs root, Debian's postfix, a release build
#   MESSAGES=3000 SESSIONS=8 MESSAGE=path.eml bash benches/postfix-throughput.sh
#
# Prints one line per setup: messages, seconds, messages/s.
set -euo pipefail
cd "$(dirname "$0")/.."

MAILDLP=${MAILDLP:-target/release/maildlp}
MESSAGES=${MESSAGES:-3000}
SESSIONS=${SESSIONS:-8}
MESSAGE=${MESSAGE:-}
[ -x "$MAILDLP" ] || cargo build --release >/dev/null
[ -x /usr/sbin/postfix ] || { echo "needs Debian's postfix: bash .ci/install-postfix.sh" >&2; exit 2; }

DIR=$(mktemp -d /tmp/maildlp-pfbench.XXXXXX)
chmod 755 "$DIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK=$(free_port); SMTP=$(free_port); TCP=$(free_port)
SOCK="$DIR/maildlp.sock"

cleanup() {
  /usr/sbin/postfix -c "$DIR/conf" stop >/dev/null 2>&1 || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "${MILTER_PID:-}" ] && kill "$MILTER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

# A ~5 KB message from the benign corpus (or MESSAGE).
if [ -z "$MESSAGE" ]; then
  MESSAGE="$DIR/message.eml"
  for f in ../shared/corpora/ham-dev/*; do
    size=$(stat -c %s "$f")
    if [ "$size" -gt 4000 ] && [ "$size" -lt 8000 ]; then cp "$f" "$MESSAGE"; break; fi
  done
fi

/usr/sbin/smtp-sink -u postfix -c "127.0.0.1:$SINK" 1000 >/dev/null 2>&1 &
SINK_PID=$!

mkdir -p "$DIR/conf" "$DIR/queue" "$DIR/data"
chown -R postfix:postfix "$DIR/data"
write_main_cf() { # $1: milter spec or empty
  cat > "$DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $DIR/queue
data_directory = $DIR/data
maillog_file = $DIR/maillog
maillog_file_prefixes = $DIR
myhostname = maildlp-bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$SINK
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
milter_protocol = 6
milter_default_action = tempfail
smtpd_milters = $1
EOF
}
awk -v port="$SMTP" '
  /^#/ || /^[ \t]/ || NF < 8 { print; next }
  { if ($1 == "smtp" && $2 == "inet") $1 = "127.0.0.1:" port; $5 = "n"; print }
' /etc/postfix/master.cf > "$DIR/conf/master.cf"
write_main_cf ""
/usr/sbin/postfix -c "$DIR/conf" start >/dev/null 2>&1
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SMTP") 2>/dev/null && break; sleep 0.1; done

run() { # $1: label
  local start end
  # Wait until the queue from the previous run is empty.
  for _ in $(seq 100); do
    [ -z "$(find "$DIR/queue/active" "$DIR/queue/incoming" "$DIR/queue/deferred" -type f 2>/dev/null | head -1)" ] && break
    sleep 0.2
  done
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$SESSIONS" -m "$MESSAGES" -f pat@city.test -t sam@example.com \
    -F "$MESSAGE" "127.0.0.1:$SMTP" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "import sys; n=$MESSAGES; t=$end-$start; print(f'{sys.argv[1]:<34} {n} messages in {t:6.2f} s: {n/t:7.0f} messages/s')" "$1"
}

run "postfix alone"

# A filter that does nothing (libmilter through Debian's python3-milter, accepting every
# message): what the milter protocol alone costs Postfix, the yardstick for maildlp's rows.
if /usr/bin/python3 -c 'import Milter' 2>/dev/null \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-milter >/dev/null 2>&1; then
  cat > "$DIR/noop.py" <<'PY'
import sys
import Milter
class Noop(Milter.Base):
    def eom(self):
        return Milter.ACCEPT
Milter.factory = Noop
Milter.runmilter("noop", sys.argv[1], 60)
PY
  NOOP_TCP=$(free_port)
  for pair in "unix:$DIR/noop.sock|unix:$DIR/noop.sock|unix socket" \
              "inet:$NOOP_TCP@127.0.0.1|inet:127.0.0.1:$NOOP_TCP|TCP loopback"; do
    IFS='|' read -r listen spec label <<<"$pair"
    /usr/bin/python3 "$DIR/noop.py" "$listen" >/dev/null 2>&1 &
    MILTER_PID=$!
    sleep 1
    [ -S "$DIR/noop.sock" ] && chmod 666 "$DIR/noop.sock"
    write_main_cf "$spec"
    /usr/sbin/postfix -c "$DIR/conf" reload >/dev/null 2>&1; sleep 1
    run "postfix + no-op filter, $label"
    kill "$MILTER_PID"; wait "$MILTER_PID" 2>/dev/null || true
  done
else
  echo "(no-op filter rows skipped: Debian's python3-milter could not be installed)"
fi

"$MAILDLP" milter --listen "unix:$SOCK" --quarantine-mode mta >/dev/null 2>&1 &
MILTER_PID=$!
sleep 1
chmod 666 "$SOCK"
write_main_cf "unix:$SOCK"
/usr/sbin/postfix -c "$DIR/conf" reload >/dev/null 2>&1; sleep 1
run "postfix + maildlp, unix socket"
kill "$MILTER_PID"; wait "$MILTER_PID" 2>/dev/null || true

"$MAILDLP" milter --listen "inet:127.0.0.1:$TCP" --quarantine-mode mta >/dev/null 2>&1 &
MILTER_PID=$!
sleep 1
write_main_cf "inet:127.0.0.1:$TCP"
/usr/sbin/postfix -c "$DIR/conf" reload >/dev/null 2>&1; sleep 1
run "postfix + maildlp, TCP loopback"

# maildlp relay as Postfix's after-queue content filter (README "Relay mode"): smtpd queues
# the message, the `maildlp` transport hands it to the relay, which forwards it to the
# re-injection smtpd. Acceptance is decoupled from filtering, so this row also reports the
# rate through the filter: until the queue is empty again (every message filtered, re-injected
# and delivered to the sink).
kill "$MILTER_PID"; wait "$MILTER_PID" 2>/dev/null || true
RELAY=$(free_port); REINJECT=$(free_port)
"$MAILDLP" relay --listen "127.0.0.1:$RELAY" --next-hop "127.0.0.1:$REINJECT" --next-hop-tls off \
  --data-dir "$DIR/relay-data" >/dev/null 2>&1 &
MILTER_PID=$!
cat >> "$DIR/conf/master.cf" <<EOF2
maildlp unix - - n - 20 smtp
  -o smtp_send_xforward_command=yes
  -o disable_mime_output_conversion=yes
127.0.0.1:$REINJECT inet n - n - 20 smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_milters=
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
EOF2
write_main_cf ""
echo "content_filter = maildlp:[127.0.0.1]:$RELAY" >> "$DIR/conf/main.cf"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$RELAY") 2>/dev/null && break; sleep 0.1; done
/usr/sbin/postfix -c "$DIR/conf" reload >/dev/null 2>&1; sleep 1
drained() { # wait (up to 5 minutes) until Postfix's queue is empty
  for _ in $(seq 3000); do
    [ -z "$(find "$DIR/queue/active" "$DIR/queue/incoming" "$DIR/queue/deferred" "$DIR/queue/maildrop" -type f 2>/dev/null | head -1)" ] && return
    sleep 0.1
  done
}
drained
start=$(date +%s.%N)
run "postfix + maildlp relay, accepted"
drained
end=$(date +%s.%N)
python3 -c "import sys; n=$MESSAGES; t=$end-$start; print(f'{sys.argv[1]:<34} {n} messages in {t:6.2f} s: {n/t:7.0f} messages/s')" "  ... through the filter"
