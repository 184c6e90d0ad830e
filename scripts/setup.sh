#!/usr/bin/env bash
# Installs exactly what iSSO needs to build, run and test: Debian packages
# and the pinned npm test packages. Idempotent; uses sudo when not root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  build-essential cmake ninja-build pkg-config clang
  libmicrohttpd-dev libjansson-dev libcjose-dev libsodium-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql haproxy libcurl4-openssl-dev libqrencode-dev libinih-dev
  libcmocka-dev libclang-rt-14-dev
  libzxcvbn-dev libunistring-dev
  chromium fonts-noto-cjk
  curl ca-certificates
  jq softhsm2 opensc libp11-kit-dev libnss-wrapper
  systemd # systemd-analyze verifies dist/systemd/issod.service in the tests
)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js: the machine's own when it has one (it may come from another
# repository than Debian's, whose npm package would conflict with it).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node packages for the integration tests and the demo agency service,
# pinned by tests/package-lock.json.
if [ ! -d "$top/tests/node_modules" ] || [ "$top/tests/package-lock.json" -nt "$top/tests/node_modules/.stamp" ]; then
  (cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$top/tests/node_modules/.stamp"
fi
