#!/usr/bin/env bash
# `make bench`: issod against node oidc-provider, side by side, on this
# machine (bench/README.md). Not part of `make check`: nothing here is a
# test, and no number is asserted anywhere.
#
# Installs what only the benchmark needs — Debian's wrk, and the pinned
# npm packages of bench/package-lock.json into bench/node_modules (never
# tests/node_modules) — then runs bench/run.mjs, which prints a table and
# writes build/bench/results.json (settings: see bench/run.mjs), or with
# the argument "scale" bench/scale.mjs (`make bench-scale`: sessions,
# persons and nodes; build/bench/scale.json).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bench: installing wrk (Debian)"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk
fi

if [ ! -d "$top/bench/node_modules" ] || [ "$top/bench/package-lock.json" -nt "$top/bench/node_modules/.stamp" ]; then
  (cd "$top/bench" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$top/bench/node_modules/.stamp"
fi

for b in issod issoctl isso-sim; do
  [ -x "${ISSO_BUILD_DIR:-$top/build}/$b" ] || { echo "bench: ${ISSO_BUILD_DIR:-$top/build}/$b missing (make build)" >&2; exit 1; }
done

case "${1:-}" in
  scale) exec node "$top/bench/scale.mjs" ;;
  "") exec node "$top/bench/run.mjs" ;;
  *) echo "usage: bench/bench.sh [scale]" >&2; exit 2 ;;
esac
