#!/usr/bin/env bash
# Makes sure `curl` is installed (Debian's `curl` package): the README's REST examples use it, and
# the suite runs them (tests/e2e/test_readme.py).
set -euo pipefail
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v curl >/dev/null; then
  exit 0
fi
echo "ensure-curl: curl not found" >&2
apt_install ensure-curl curl || {
  echo "ensure-curl: install the Debian package 'curl' (apt-get install -y curl)" >&2
  exit 1
}
