#!/usr/bin/env bash
# Debian's Sendmail for the end-to-end milter test (tests/sendmail_e2e.rs), unpacked into a prefix
# instead of installed: Debian's sendmail-bin conflicts with postfix (installing one removes the
# other), and the Postfix tests need postfix. The test runs its own private daemon from the prefix
# (own config, queue and pid files, loopback ports); nothing system-wide is configured or started.
# Idempotent: does nothing when the prefix already holds a Sendmail with milter support.
set -euo pipefail
PREFIX="${MAILDLP_SENDMAIL_PREFIX:-/opt/maildlp-sendmail}"
BIN="$PREFIX/usr/libexec/sendmail/sendmail"

version() {
  # -d0.1 prints the version and "Compiled with: ... MILTER ..."; -bt with no input just exits
  # (non-zero here, as there is no /etc/mail/sendmail.cf: only the output counts). Sendmail
  # first qualifies the machine's host name and, when it has no domain (a machine named "vm"),
  # sleeps 60 s: so it runs under a dotted name in its own UTS namespace where that is allowed
  # (as tests/support/sendmail.rs does), else for 5 s, enough to print the version.
  if unshare --uts true 2>/dev/null; then
    unshare --uts sh -c 'hostname maildlp-install.test && exec "$0" -d0.1 -bt' "$BIN" \
      </dev/null 2>&1 || true
  else
    timeout 5 "$BIN" -d0.1 -bt </dev/null 2>&1 || true
  fi
}
has_milter() {
  [ -x "$BIN" ] && version | grep -qw MILTER
}

need_pkgs=()
command -v m4 >/dev/null || need_pkgs+=(m4)
# Sendmail's one shared library that a system without sendmail lacks (TCP wrappers).
ldconfig -p | grep -q 'libwrap\.so\.0' || need_pkgs+=(libwrap0)
export DEBIAN_FRONTEND=noninteractive
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if has_milter; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download sendmail-bin sendmail-cf sendmail-base >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download sendmail-bin sendmail-cf sendmail-base >/dev/null
fi
mkdir -p "$PREFIX"
for f in sendmail-*.deb; do
  dpkg-deb -x "$f" "$PREFIX"
done
# Sendmail refuses group- or world-writable directories on the paths it uses.
chmod 755 "$PREFIX"

if ! has_milter; then
  echo "install-sendmail: $BIN does not run or has no MILTER support:" >&2
  version >&2
  exit 1
fi
version | head -n 1
