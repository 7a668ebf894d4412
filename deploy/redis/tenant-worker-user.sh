#!/usr/bin/env bash
# The Redis ACL user of one tenant's workers, `worker-<tenant>`: its line for users.acl, or the
# ACL SETUSER command that creates (or replaces) it on a running server.
#
#   deploy/redis/tenant-worker-user.sh acme                                 # users.acl line
#   deploy/redis/tenant-worker-user.sh --password-stdin acme < secret       # with #<sha256>
#   deploy/redis/tenant-worker-user.sh --setuser --password-stdin acme < secret   # ACL SETUSER
#
# --password-stdin reads the secret (its first line) from stdin and adds its SHA-256 (`#<hex>`),
# so the secret is never an argument. Without it the line has no password: the user cannot log in
# until `#<sha256 hex of the secret>` is added to it. The rules and how to apply them on a server
# or a cluster are explained in the Security section of deploy/redis/redis.conf.
set -euo pipefail
export LC_ALL=C # so that [a-z] means the 26 ASCII letters, whatever the caller's locale

# services/common/names.py TENANT_ID: no glob character (* ? [ ] \), no `/`, `{`, `}` or `:`.
readonly TENANT_ID='^[a-z0-9][a-z0-9-]{0,31}$'
# Exactly what services/worker/broker.py sends (redis-py's CLIENT SETINFO on connect aside, whose
# refusal redis-py ignores): XGROUP CREATE ... MKSTREAM, XREADGROUP, XAUTOCLAIM, XACK of malformed
# entries, XGROUP DELCONSUMER on exit. None of them is in @dangerous.
readonly COMMANDS='-@all +xgroup|create +xreadgroup +xautoclaim +xack +xgroup|delconsumer'

usage() {
  echo "usage: $0 [--setuser] [--password-stdin] <tenant>" >&2
  exit 2
}

sha256_hex() {
  if command -v sha256sum >/dev/null; then
    sha256sum | cut -d' ' -f1
  else
    shasum -a 256 | cut -d' ' -f1
  fi
}

setuser=false
from_stdin=false
tenant=""
for argument in "$@"; do
  case $argument in
    --setuser) setuser=true ;;
    --password-stdin) from_stdin=true ;;
    -*) usage ;;
    *) [[ -z $tenant ]] || usage; tenant=$argument ;;
  esac
done
[[ -n $tenant ]] || usage
if [[ ! $tenant =~ $TENANT_ID ]]; then
  echo "tenant id '$tenant' must match $TENANT_ID" >&2
  exit 2
fi

# `{` and `}` are literal in ACL globs; `/` ends the tenant id, so `acme` never matches `acme-2`.
rules="on resetpass resetkeys resetchannels ~jobstream:{$tenant/*}:dispatch $COMMANDS"
if $from_stdin; then
  secret=""
  IFS= read -r secret || true
  if [[ -z $secret ]]; then
    echo "no secret on stdin" >&2
    exit 2
  fi
  rules+=" #$(printf %s "$secret" | sha256_hex)"
else
  echo "note: no password; add #<sha256 hex of the secret> or use --password-stdin" >&2
fi

if $setuser; then
  echo "ACL SETUSER worker-$tenant $rules"
else
  echo "user worker-$tenant $rules"
fi
