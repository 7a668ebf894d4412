#!/usr/bin/env bash
# The Redis ACL user of one tenant's workers (`worker-<tenant>`) or direct producers
# (`producer-<tenant>`): its line for users.acl, or the ACL SETUSER command that creates (or
# replaces) it on a running server.
#
#   deploy/redis/tenant-user.sh worker acme                                    # users.acl line
#   deploy/redis/tenant-user.sh --password-stdin worker acme < secret          # with #<sha256>
#   deploy/redis/tenant-user.sh --setuser --password-stdin producer acme < secret  # ACL SETUSER
#
# --password-stdin reads the secret (its first line) from stdin and adds its SHA-256 (`#<hex>`),
# so the secret is never an argument. Without it the line has no password: the user cannot log in
# until `#<sha256 hex of the secret>` is added to it. The rules and how to apply them on a server
# or a cluster are explained in the Security section of deploy/redis/redis.conf.
set -euo pipefail
export LC_ALL=C # so that [a-z] means the 26 ASCII letters, whatever the caller's locale

# services/common/names.py TENANT_ID: no glob character (* ? [ ] \), no `/`, `{`, `}` or `:`.
readonly TENANT_ID='^[a-z0-9][a-z0-9-]{0,31}$'
# worker: exactly what services/worker/broker.py sends (redis-py's CLIENT SETINFO on connect
# aside, whose refusal redis-py ignores): XGROUP CREATE ... MKSTREAM, XREADGROUP, XAUTOCLAIM, XACK
# of malformed entries, XGROUP DELCONSUMER on exit, on the tenant's dispatch streams only.
readonly WORKER_KEYS='~jobstream:{$tenant/*}:dispatch'
readonly WORKER_COMMANDS='-@all +xgroup|create +xreadgroup +xautoclaim +xack +xgroup|delconsumer'
# producer: services/client/direct.py runs the store's create script (EVALSHA; SCRIPT LOAD when
# Redis lost it), and Redis checks each command the script calls against this user: the commands
# of create_jobs.lua and lib.lua (tests/unit/test_tenant_user.py keeps this list equal to them),
# on every key of the tenant's queues. The list of queue ids lives outside every queue's slot:
# the selector lets it only add to it (ZADD NX, once per queue per process).
readonly PRODUCER_KEYS='~jobstream:{$tenant/*'
readonly PRODUCER_COMMANDS='-@all +evalsha +eval +script|load
  +append +del +exists +expire +get +getrange +hdel +hget +hgetall +hincrby +hmget +hset +hsetnx
  +lpush +ltrim +pexpire +set
  +xack +xadd +xdel +xgroup|create +xinfo|groups +xrange +zadd +zcard +zpopmin +zrange +zrem
  +zremrangebyscore +zscore
  (~jobstream:queues +zadd)'

usage() {
  echo "usage: $0 [--setuser] [--password-stdin] worker|producer <tenant>" >&2
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
role=""
tenant=""
for argument in "$@"; do
  case $argument in
    --setuser) setuser=true ;;
    --password-stdin) from_stdin=true ;;
    -*) usage ;;
    *)
      if [[ -z $role ]]; then role=$argument
      elif [[ -z $tenant ]]; then tenant=$argument
      else usage
      fi ;;
  esac
done
[[ -n $tenant ]] || usage
if [[ ! $tenant =~ $TENANT_ID ]]; then
  echo "tenant id '$tenant' must match $TENANT_ID" >&2
  exit 2
fi

# `{` and `}` are literal in ACL globs; `/` ends the tenant id, so `acme` never matches `acme-2`.
case $role in
  worker) keys=$WORKER_KEYS commands=$WORKER_COMMANDS ;;
  producer) keys=$PRODUCER_KEYS commands=$PRODUCER_COMMANDS ;;
  *) usage ;;
esac
read -r -a words <<<"${commands//$'\n'/ }" # one line, single spaces
rules="on resetpass resetkeys resetchannels ${keys//\$tenant/$tenant} ${words[*]}"
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
  echo "ACL SETUSER $role-$tenant $rules"
else
  echo "user $role-$tenant $rules"
fi
