# shellcheck shell=bash
# Sourced by the scripts/ensure-*.sh scripts: installs Debian packages with apt-get, as root or
# through sudo (`sudo -n` without a terminal, so CI never waits for a password it will not get).
#
#   apt_install LOG_NAME PACKAGE...
#
# Prints what it does to stderr prefixed with LOG_NAME; returns non-zero (after saying why) when
# apt-get is missing, root is needed and sudo is not there, or apt-get update/install fails. The
# caller adds its own advice (what to install by hand) and exits.

apt_install() {
  local who=$1
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: apt-get is not available to install $*." >&2
    return 1
  fi
  local as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "$who: installing $* needs root (sudo is not available)." >&2
      return 1
    fi
    if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
  fi
  echo "$who: installing the Debian package(s) $*" >&2
  if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
    echo "$who: apt-get update failed." >&2
    return 1
  fi
  if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"; then
    echo "$who: apt-get install -y $* failed." >&2
    return 1
  fi
}
