#!/usr/bin/env bash
# A 3-master Redis Cluster on loopback, for trying jobstream against a cluster on one machine.
#
#   deploy/redis/cluster/start-local-cluster.sh          # start (or restart) it, print the URL
#   deploy/redis/cluster/start-local-cluster.sh stop     # stop it (data stays in $DIR)
#
# Environment: BASE_PORT (default 7101; nodes use BASE_PORT..BASE_PORT+2, and each node's cluster
# bus port + 10000), DIR (default .data/redis-cluster). Not for production: no replicas, loopback.
set -euo pipefail

readonly BASE_PORT=${BASE_PORT:-7101}
readonly DIR=${DIR:-.data/redis-cluster}
readonly PORTS=("$BASE_PORT" "$((BASE_PORT + 1))" "$((BASE_PORT + 2))")
readonly DEADLINE_S=20

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "redis-server/redis-cli not found: install the Debian package redis-server" >&2
  exit 1
fi

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

field() {  # field PORT NAME: one field of CLUSTER INFO
  cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

wait_until() {  # wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds or the deadline
  local description=$1 deadline=$((SECONDS + DEADLINE_S))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for $description" >&2; exit 1; }
    sleep 0.05
  done
}

start_node() {
  local port=$1 dir="$DIR/$1"
  mkdir -p "$dir"
  if [[ -f "$dir/redis.pid" ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    return  # already running
  fi
  # AOF as in production, so a stop/start keeps the data; nodes.conf keeps the cluster membership.
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file nodes.conf --appendonly yes --appendfsync everysec --save "" \
    --maxmemory-policy noeviction --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log"
  wait_until "redis on port $port" cli "$port" ping
}

cluster_ok() {
  local port
  for port in "${PORTS[@]}"; do
    [[ $(field "$port" cluster_state) == ok && $(field "$port" cluster_known_nodes) == 3 ]] ||
      return 1
  done
}

start() {
  local port addresses=()
  for port in "${PORTS[@]}"; do
    start_node "$port"
    addresses+=("127.0.0.1:$port")
  done
  if [[ $(field "${PORTS[0]}" cluster_slots_assigned) != 16384 ]]; then
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes </dev/null
  fi
  wait_until "cluster_state:ok on every node" cluster_ok
  echo "cluster ready: JOBSTREAM_REDIS_CLUSTER=true REDIS_URL=redis://127.0.0.1:${PORTS[0]}/0"
}

stop() {
  local port pid
  for port in "${PORTS[@]}"; do
    [[ -f "$DIR/$port/redis.pid" ]] || continue
    pid=$(cat "$DIR/$port/redis.pid")
    if kill "$pid" 2>/dev/null; then
      wait_until "redis on port $port to stop" bash -c "! kill -0 $pid"
    fi
  done
  echo "cluster stopped (data in $DIR)"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
