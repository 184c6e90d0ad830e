#!/usr/bin/env bash
# Starts the several-node layout for a person to try: a throwaway
# PostgreSQL cluster (var/pgsql, or a directory in /tmp when run as root
# and var/ is out of reach; see scripts/pg-test.sh), two issod nodes on it
# (ports 8082 and 8083), haproxy in front on 8080 (round robin, no sticky
# sessions, health checks on /readyz), and what `make run` starts besides
# (isso-sim, the demo agency service, isso-cardagent). Ctrl-C stops
# everything and removes the database.
#
#   scripts/cluster.sh            ISSO_CLUSTER_NODES=3 scripts/cluster.sh
#
# Try: log in at the demo agency, then `kill -9` the pid of one node that
# the banner prints; haproxy marks it down within two seconds and the
# next login completes on the other.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ISSO_BUILD_DIR:-$top/build}
for f in issod issoctl isso-sim; do
  [ -x "$build/$f" ] || { echo "cluster: $build/$f missing; run make build first" >&2; exit 1; }
done
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  echo "cluster: haproxy not found; install Debian's haproxy package (scripts/setup.sh does)" >&2
  exit 1
fi
mkdir -p "$top/var"
export ISSO_CLUSTER_NODES=${ISSO_CLUSTER_NODES:-2}
exec "$top/scripts/pg-test.sh" --dir "$top/var/pgsql" -- \
  bash -c 'export ISSO_STORE_DRIVER=postgresql ISSO_STORE_CONNINFO="$ISSO_PG_CONNINFO"; exec "$1/scripts/run.sh"' \
  cluster "$top"
