#!/usr/bin/env bash
# `make run`: starts isso-sim, issod and the demo agency service, with
# SQLite and keys under var/. Ctrl-C stops all three.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${ISSO_BUILD_DIR:-$top/build}
mkdir -p var

export ISSO_STORE_PATH=${ISSO_STORE_PATH:-$top/var/isso.db}
export ISSO_KEYS_MASTER_KEY_FILE=${ISSO_KEYS_MASTER_KEY_FILE:-$top/var/master.key}
export ISSO_SERVER_PORT=${ISSO_SERVER_PORT:-8080}
sim_port=${SIM_PORT:-8090}
demo_port=${DEMO_PORT:-8081}
export ISSO_SMS_URL=${ISSO_SMS_URL:-http://127.0.0.1:$sim_port/api/mtk/SmSend}
issuer="http://127.0.0.1:$ISSO_SERVER_PORT"

"$build/issoctl" init >/dev/null

# The demo agency service's client, registered once and kept in var/.
if [ ! -s var/demo-client.json ] ||
   ! "$build/issoctl" client show "$(node -e 'process.stdout.write(require("./var/demo-client.json").client_id)')" >/dev/null 2>&1; then
  "$build/issoctl" client add --name "臺北市政府示範線上服務 Demo agency service" \
    --purpose "示範：以 iSSO 登入並顯示取得的資料 (demo: log in and show the data received)" \
    --redirect-uri "http://127.0.0.1:$demo_port/callback" \
    --post-logout-redirect-uri "http://127.0.0.1:$demo_port/" \
    --scope "openid uuid profile id_number phone email birthdate address" > var/demo-client.json
  "$build/issoctl" client approve "$(node -e 'process.stdout.write(require("./var/demo-client.json").client_id)')" >/dev/null
fi

# A demo TaipeiPass member (the same data isso-sim knows as a gold member).
"$build/issoctl" user add --account demo.citizen --password 'Taipei2026demo' \
  --phone 0912345678 --email demo.citizen@example.tw --name '王小明' \
  --id-number A123456789 --birthdate 1990-05-17 --address '臺北市信義區市府路1號' --gold \
  >/dev/null 2>&1 || true

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$build/isso-sim" serve --port "$sim_port" & pids+=($!)
"$build/issod" & pids+=($!)
DEMO_PORT=$demo_port DEMO_ISSUER=$issuer DEMO_CLIENT_FILE=var/demo-client.json \
  node demo/agency.mjs & pids+=($!)

sleep 1
cat <<MSG

  iSSO               $issuer
  isso-sim           http://127.0.0.1:$sim_port   (read SMS: build/isso-sim phone sms-last 0912345678)
  demo agency        http://127.0.0.1:$demo_port
  demo member        account demo.citizen, password Taipei2026demo

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
