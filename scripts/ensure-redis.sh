#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (Redis 7+) are on PATH, installing Debian's `redis-server`
# package when they are not. Tests, `make run` and `make bench` start their own redis-server
# processes; the package's own service is never used, and this script neither starts, stops nor
# disables it.
set -euo pipefail
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

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

echo "ensure-redis: redis-server not found" >&2
apt_install ensure-redis "$PACKAGE" || fail "redis-server is not installed and could not be installed."

have_redis || fail "the package $PACKAGE is installed but redis-server or redis-cli is still not on PATH."
check_version
