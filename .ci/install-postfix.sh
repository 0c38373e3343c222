#!/usr/bin/env bash
# Debian's Postfix for the end-to-end milter test (tests/postfix_e2e.rs). The test runs its own
# private instance (own config, queue and data directories, loopback ports); the system-wide
# Postfix is never configured or started.
set -euo pipefail
if [ -x /usr/sbin/postfix ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq postfix >/dev/null
