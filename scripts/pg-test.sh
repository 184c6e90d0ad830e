#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster and removes the
# cluster afterwards, whatever the command's outcome:
#
#   scripts/pg-test.sh [--dir DIR] [--keep-env] -- COMMAND [ARG...]
#
# The cluster lives in DIR (default build/pgsql-test), listens on a unix
# socket in DIR only (no TCP) and trusts local connections: it is for
# tests, never for data. COMMAND sees
#   ISSO_TEST_STORE_DRIVER=postgresql
#   ISSO_TEST_STORE_DSN / ISSO_PG_CONNINFO   the conninfo of database "isso"
#   ISSO_PG_DIR                              DIR, ISSO_PG_CTL  pg_ctl
#   ISSO_PG_RUN                              the prefix that runs pg_ctl as
#                                            the cluster's owner ("" or
#                                            "runuser -u nobody --")
# PostgreSQL refuses to run as root: as root the cluster is owned by and
# run as "nobody" (then DIR must be reachable by nobody; when it is not,
# e.g. a checkout under /root, the cluster goes to a directory in /tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/pgsql-test"

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--dir DIR] -- COMMAND [ARG...]" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--dir DIR] -- COMMAND [ARG...]" >&2; exit 2; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && bindir=$d
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
fi
if [ -z "$bindir" ]; then
  echo "pg-test: PostgreSQL server binaries (initdb, pg_ctl) not found;" \
       "install Debian's postgresql package (scripts/setup.sh does)" >&2
  exit 1
fi

run=()
owner=""
if [ "$(id -u)" -eq 0 ]; then
  owner=nobody
  run=(runuser -u "$owner" --)
fi

# A cluster left by an interrupted run is stopped and replaced.
stop_cluster() {
  if [ -f "$1/data/postmaster.pid" ]; then
    "${run[@]}" "$bindir/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}
stop_cluster "$dir"
rm -rf "$dir"
mkdir -p "$dir"
if [ -n "$owner" ]; then
  chown "$owner" "$dir"
  # The owner must reach DIR, and the socket path must fit (107 bytes).
  if ! "${run[@]}" test -w "$dir" || [ ${#dir} -gt 80 ]; then
    rmdir "$dir"
    dir=$(mktemp -d /tmp/isso-pg.XXXXXX)
    chown "$owner" "$dir"
    chmod 0755 "$dir"
  fi
elif [ ${#dir} -gt 80 ]; then
  dir=$(mktemp -d /tmp/isso-pg.XXXXXX)
fi

cleanup() {
  local rc=$?
  stop_cluster "$dir"
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${run[@]}" "$bindir/initdb" -D "$dir/data" -U isso -A trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# Fast and disposable: no TCP, no durability.
"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off \
      -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"${run[@]}" "$bindir/createdb" -h "$dir" -U isso isso

export ISSO_TEST_STORE_DRIVER=postgresql
export ISSO_PG_CONNINFO="host=$dir dbname=isso user=isso"
export ISSO_TEST_STORE_DSN="$ISSO_PG_CONNINFO"
export ISSO_PG_DIR="$dir" ISSO_PG_CTL="$bindir/pg_ctl" ISSO_PG_RUN="${run[*]}"
"$@"
