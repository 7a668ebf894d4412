#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (Redis 7+) are on PATH, installing Debian's `redis-server`
# package when they are not. Tests, `make run` and `make bench` start their own redis-server
# processes; the package's own service is never used, and this script neither starts, stops nor
# disables it.
set -euo pipefail

readonly PACKAGE=redis-server
readonly MIN_MAJOR=7

fail() {
  echo "ensure-redis: $*" >&2
  echo "ensure-redis: install the Debian package '$PACKAGE' (apt-get install -y $PACKAGE)," \
    "or put redis-server and redis-cli $MIN_MAJOR.x or newer on PATH, then run this again." >&2
  exit 1
}

have_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}

check_version() {
  local version
  version=$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
  if [[ -z "$version" || "${version%%.*}" -lt $MIN_MAJOR ]]; then
    fail "redis-server ${version:-of unknown version} is too old: jobstream needs $MIN_MAJOR or newer."
  fi
  echo "ensure-redis: redis-server $version at $(command -v redis-server)"
}

if have_redis; then
  check_version
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "redis-server is not installed and apt-get is not available."

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal (CI) sudo must not wait for a password it will never get.
  if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
else
  fail "redis-server is not installed, and installing it needs root (sudo is not available)."
fi

echo "ensure-redis: redis-server not found; installing the Debian package $PACKAGE" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
  fail "apt-get update failed."
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "$PACKAGE" || fail "apt-get install -y $PACKAGE failed."

have_redis || fail "the package $PACKAGE is installed but redis-server or redis-cli is still not on PATH."
check_version
