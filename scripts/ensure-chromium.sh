#!/usr/bin/env bash
# Makes sure /usr/bin/chromium runs, installing Debian's `chromium` package when it is missing. The
# browser tests (tests/gateway/test_browser.py) drive it with the PyPI `playwright` package, which
# cannot download a browser of its own here (`playwright install` does not work), so they launch
# this one by path.
set -euo pipefail
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

readonly PACKAGE=chromium
readonly BROWSER=/usr/bin/chromium

fail() {
  echo "ensure-chromium: $*" >&2
  echo "ensure-chromium: install the Debian package '$PACKAGE' (apt-get install -y $PACKAGE)" \
    "so that $BROWSER exists, then run this again." >&2
  exit 1
}

check_version() {
  local version
  # Debian's wrapper script reads flags from /etc/chromium.d; --version starts no browser.
  version=$("$BROWSER" --version 2>/dev/null) || fail "$BROWSER is there but '$BROWSER --version' failed."
  echo "ensure-chromium: $version at $BROWSER"
}

if [[ -x "$BROWSER" ]]; then
  check_version
  exit 0
fi

echo "ensure-chromium: $BROWSER not found" >&2
apt_install ensure-chromium "$PACKAGE" || fail "chromium is not installed and could not be installed."

[[ -x "$BROWSER" ]] || fail "the package $PACKAGE is installed but $BROWSER is still not there."
check_version
