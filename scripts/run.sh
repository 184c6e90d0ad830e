#!/usr/bin/env bash
# `make run`: starts isso-sim, issod, the demo agency service and
# isso-cardagent (over SoftHSM2 test cards made by scripts/test-pki.sh in
# var/pki), with SQLite and keys under var/. Ctrl-C stops them all.
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
# Every connector talks to isso-sim: mode sim, its accounts and the
# published TW FidO test key. issod has no such defaults and refuses them
# for an issuer that is not on loopback. isso-sim is on 127.0.0.1, which
# outbound requests reach only when listed.
sim=http://127.0.0.1:$sim_port
export ISSO_OUTBOUND_ALLOW=${ISSO_OUTBOUND_ALLOW:-127.0.0.1:$sim_port}
export ISSO_SMS_MODE=${ISSO_SMS_MODE:-sim}
export ISSO_SMS_URL=${ISSO_SMS_URL:-$sim/api/mtk/SmSend}
export ISSO_SMS_USERNAME=${ISSO_SMS_USERNAME:-isso}
export ISSO_SMS_PASSWORD=${ISSO_SMS_PASSWORD:-isso-sim}
export ISSO_TWFIDO_MODE=${ISSO_TWFIDO_MODE:-sim}
export ISSO_TWFIDO_URL=${ISSO_TWFIDO_URL:-$sim}
export ISSO_TWFIDO_SP_SERVICE_ID=${ISSO_TWFIDO_SP_SERVICE_ID:-TPE-ISSO-SIM}
export ISSO_TWFIDO_KEY=${ISSO_TWFIDO_KEY:-6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4}
export ISSO_TELECOM_MODE=${ISSO_TELECOM_MODE:-sim}
export ISSO_TELECOM_URL=${ISSO_TELECOM_URL:-$sim/telecom}
export ISSO_TELECOM_CLIENT_ID=${ISSO_TELECOM_CLIENT_ID:-isso}
export ISSO_TELECOM_SECRET=${ISSO_TELECOM_SECRET:-isso-sim}
export ISSO_MOICA_MODE=${ISSO_MOICA_MODE:-sim}
export ISSO_MOICA_URL=${ISSO_MOICA_URL:-$sim/moica}
export ISSO_MOICA_CLIENT_ID=${ISSO_MOICA_CLIENT_ID:-isso}
export ISSO_MOICA_SECRET=${ISSO_MOICA_SECRET:-isso-sim}
export ISSO_NHI_MODE=${ISSO_NHI_MODE:-sim}
export ISSO_NHI_URL=${ISSO_NHI_URL:-$sim/nhi}
export ISSO_NHI_CLIENT_ID=${ISSO_NHI_CLIENT_ID:-isso}
export ISSO_NHI_SECRET=${ISSO_NHI_SECRET:-isso-sim}
issuer="http://127.0.0.1:$ISSO_SERVER_PORT"
agent_port=${AGENT_PORT:-61161}
nhi_port=${NHI_PORT:-7777}

# The test PKI and one SoftHSM2 token per test card (made once; again when
# sim/identities.json changes). The agent reaches them through the testcard
# PKCS#11 layer, which counts wrong PINs and can "remove" a card like a
# real reader would.
scripts/test-pki.sh --out var/pki
# One card of each kind in the "readers", as on a citizen's desk: 王小明's
# MOICA and NHI cards unless DEMO_CARDS names others; swap with
# scripts/test-pki.sh --out var/pki --remove|--insert CARD.
demo_cards=${DEMO_CARDS:-TP03000000000001 000012340001}
for card in $(node -e '
  const c = require("./var/pki/cards.json");
  for (const x of [...c.moica, ...c.rogue]) console.log(x.card_sn);
  for (const x of c.nhi) console.log(x.card_no);'); do
  case " $demo_cards " in
  *" $card "*) scripts/test-pki.sh --out var/pki --insert "$card" ;;
  *) scripts/test-pki.sh --out var/pki --remove "$card" ;;
  esac
done >/dev/null
export ISSO_CARDAGENT_URL=${ISSO_CARDAGENT_URL:-http://localhost:$agent_port}
export ISSO_CARDAGENT_NHI_URL=${ISSO_CARDAGENT_NHI_URL:-ws://127.0.0.1:$nhi_port/echo}
export ISSO_MOICA_ROOTS=${ISSO_MOICA_ROOTS:-$top/var/pki/roots.pem}
export ISSO_MOICA_INTERMEDIATES=${ISSO_MOICA_INTERMEDIATES:-$top/var/pki/chain.pem}

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

# The TaipeiPass members among isso-sim's test identities (sim/identities.json),
# so every test citizen who has an account can log in. Already-present
# members (and organisations and their members) are left alone.
ISSOCTL="$build/issoctl" node -e '
  const { spawnSync } = require("child_process");
  const d = require("./sim/identities.json");
  for (const c of d.citizens) {
    const t = c.taipeipass;
    if (!t) continue;
    const a = ["user", "add", "--account", t.account, "--password", t.password,
      "--phone", c.phone, "--name", c.name, "--id-number", c.national_id,      "--birthdate", c.birthdate, "--phone-verified"];
    if (t.email) a.push("--email", t.email);
    if (t.address) a.push("--address", t.address);
    if (t.level === "gold") a.push("--gold");
    spawnSync(process.env.ISSOCTL, a, { stdio: "ignore" });
  }
  // Organisations (組織 / 公司企業) and the members who act for them, named
  // by national ID: the citizen with that ID and their TaipeiPass account.
  for (const o of d.organisations || []) {
    spawnSync(process.env.ISSOCTL, ["org", "add", "--ubn", o.ubn, "--name", o.name],
      { stdio: "ignore" });
    for (const id of o.members || []) {
      const c = d.citizens.find((x) => x.national_id === id);
      if (!c || !c.taipeipass) continue;
      spawnSync(process.env.ISSOCTL, ["org", "member", "add", "--ubn", o.ubn,
        "--account", c.taipeipass.account], { stdio: "ignore" });
    }
  }'

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$build/isso-sim" serve --port "$sim_port" --pki var/pki & pids+=($!)
if [ -n "${ISSO_CLUSTER_NODES:-}" ]; then
  # scripts/cluster.sh: the nodes on the ports after the issuer's, haproxy
  # on the issuer's (round robin, no stickiness, health checks on /readyz)
  cat > var/haproxy.cfg <<CFG
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend isso
    bind 127.0.0.1:$ISSO_SERVER_PORT
    http-request deny deny_status 404 if { path_beg /metrics }
    default_backend issod
backend issod
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
CFG
  nodes=""
  for i in $(seq 1 "$ISSO_CLUSTER_NODES"); do
    port=$((ISSO_SERVER_PORT + 1 + i))
    echo "    server node$i 127.0.0.1:$port check" >> var/haproxy.cfg
    ISSO_SERVER_PORT=$port ISSO_SERVER_PUBLIC_URL=$issuer ISSO_SERVER_TRUST_PROXY=1 \
      "$build/issod" & pids+=($!)
    nodes="$nodes node$i http://127.0.0.1:$port (pid $!)"
  done
  "$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f var/haproxy.cfg & pids+=($!)
else
  "$build/issod" & pids+=($!)
fi
SOFTHSM2_CONF=$top/var/pki/softhsm2.conf ISSO_TESTCARD_STATE=$top/var/pki/testcard \
  "$build/isso-cardagent" --port "$agent_port" --nhi-port "$nhi_port" \
  --module "$build/libisso-testcard.so" --nhi-service-cert var/pki/nhi-service.crt \
  --trust "$issuer" & pids+=($!)
DEMO_PORT=$demo_port DEMO_ISSUER=$issuer DEMO_CLIENT_FILE=var/demo-client.json \
  node demo/agency.mjs & pids+=($!)

sleep 1
cat <<MSG

  iSSO               $issuer${ISSO_CLUSTER_NODES:+   (haproxy; issod$nodes; store $ISSO_STORE_DRIVER)}
  isso-sim           http://127.0.0.1:$sim_port   (read SMS: build/isso-sim phone sms-last 0912345678)
  demo agency        http://127.0.0.1:$demo_port
  isso-cardagent     http://localhost:$agent_port   (NHI cards: ws://127.0.0.1:$nhi_port/echo)
  test citizens      sim/identities.json (e.g. account wang.xiaoming, password Test-Pass-01;
                     cards and their PINs / registration passwords are there too)
  test cards         in the readers: $demo_cards (王小明; PIN 123456, NHI password nhi12345)
                     swap: scripts/test-pki.sh --out var/pki --remove|--insert|--unlock CARD

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
