#!/usr/bin/env bash
# Debian's PostgreSQL server binaries for the tests that need a database (tests/support/pg.rs).
# Each test runs its own private cluster (initdb in a temporary directory, loopback port, unix
# socket in that directory); the system-wide cluster is never configured, and if the package
# starts its default cluster it is stopped again so that it does not hold port 5432.
set -euo pipefail

have_initdb() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
online_clusters() {
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/ { print $1 "/" $2 }'
  fi
}

if have_initdb; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Clusters that were already running before the install are someone else's: leave them alone.
running_before="$(online_clusters)"

# Refresh the package lists only when they do not know the package (fresh image, empty lists).
# (Read the whole output first: `grep -q` would close the pipe early and, with pipefail, fail.)
policy="$(apt-cache policy postgresql 2>/dev/null || true)"
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
  apt-get update -qq
fi
if ! apt-get install -y -qq postgresql >/dev/null; then
  # Lists that are present but stale name versions the mirror no longer has.
  echo "install-postgres: apt-get install failed; refreshing the package lists and retrying" >&2
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

# The package creates a default cluster (main, port 5432) and starts it where services may
# start (not under Docker's policy-rc.d). Stop what the install started.
for cluster in $(online_clusters); do
  if ! grep -qxF "$cluster" <<<"$running_before"; then
    echo "install-postgres: stopping the default cluster $cluster started by the package" >&2
    pg_ctlcluster "${cluster%%/*}" "${cluster#*/}" stop
  fi
done

if ! have_initdb; then
  echo "install-postgres: postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
