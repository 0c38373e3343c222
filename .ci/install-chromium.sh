#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the review console's browser tests
# (tests/console_browser.rs starts chromedriver itself, headless, on a loopback port).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
policy="$(apt-cache policy chromium-driver 2>/dev/null || true)"
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version
chromedriver --version
