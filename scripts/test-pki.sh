#!/usr/bin/env bash
# Test PKI and smart cards for the card logins (docs/test-pki.md).
#
#   scripts/test-pki.sh [--out DIR] [--identities FILE] [--force]
#   scripts/test-pki.sh [--out DIR] --remove CARD | --insert CARD | --unlock CARD
#
# The first form makes a test GRCA -> MOICA chain with a certificate per
# MOICA card of sim/identities.json, a rogue chain with the same names, a
# test NHI card CA, the test NHI card service's key pair (the key the
# password blob of EnCrypt is encrypted to), and one SoftHSM2 token per card. It regenerates only
# when DIR/cards.json is missing or older than the identities file or this
# script (keeping the keys it has), or with --force (all new). The second
# form changes the state that the testcard PKCS#11 module
# (build/libisso-testcard.so) reads: CARD is a MOICA card_sn or an NHI
# card_no.
#
# Nothing made here is a real certificate; every key is random and lives in
# DIR only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
self="$top/scripts/$(basename "$0")"

out=$top/var/pki
identities=$top/sim/identities.json
force=0
action=
card=
module=${ISSO_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
so_pin=12345678
nhi_pin=000000
rogue_sn=ROGUE00000000001
rogue_pin=123456
rogue_id=A123456789

usage() {
  sed -n '4,5p' "$self" | sed 's/^# *//' >&2
  exit 2
}
die() {
  echo "test-pki: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
  --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
  --identities) [ $# -ge 2 ] || usage; identities=$2; shift 2 ;;
  --force) force=1; shift ;;
  --remove | --insert | --unlock)
    [ $# -ge 2 ] && [ -z "$action" ] || usage
    action=${1#--}; card=$2; shift 2 ;;
  -h | --help) usage ;;
  *) usage ;;
  esac
done

mkdir -p "$out"
out=$(cd "$out" && pwd)

# --remove / --insert / --unlock: files in DIR/testcard, named by the
# token's serial (the card_sn, or the NHI card_no).
if [ -n "$action" ]; then
  [[ $card =~ ^[A-Za-z0-9]{1,32}$ ]] || die "bad card number"
  mkdir -p "$out/testcard"
  case $action in
  remove) : > "$out/testcard/$card.removed" ;;
  insert) rm -f "$out/testcard/$card.removed" ;;
  unlock) rm -f "$out/testcard/$card.pin-failures" ;;
  esac
  exit 0
fi

for t in openssl softhsm2-util pkcs11-tool jq iconv flock; do
  command -v "$t" >/dev/null || die "$t is needed (scripts/setup.sh installs it)"
done
[ -r "$module" ] || die "no SoftHSM2 module at $module"
[ -r "$identities" ] || die "cannot read $identities"

# One generator at a time per DIR (tests may share one).
exec 9>"$out/.lock"
flock 9

if [ $force -eq 0 ] && [ -e "$out/cards.json" ] &&
   [ ! "$identities" -nt "$out/cards.json" ] && [ ! "$self" -nt "$out/cards.json" ]; then
  exit 0
fi

started=$(date +%s%N)
stage=$(mktemp -d "$out/.gen.XXXXXX")
trap 'rm -rf "$stage"' EXIT
ca=$stage/.ca
mkdir -p "$ca/new" "$stage/moica" "$stage/nhi" "$stage/tokens" "$stage/testcard"
: > "$ca/index"

# Dates for `openssl ca` (GeneralizedTime input; it writes UTCTime
# before 2050 as RFC 5280 asks).
when() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
ca_from=$(when '-10 years')
ca_until=$(when '+20 years')
from=$(when '-1 day')
until=$(when '+5 years')
expired_from=$(when '-6 years')
expired_until=$(when '-1 day')

cat > "$ca/openssl.cnf" <<'EOF'
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = $ENV::PKI_CA
database = $dir/index
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
string_mask = utf8only
utf8 = yes
preserve = yes

[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
serialNumber = optional

[ req ]
distinguished_name = req_dn
string_mask = utf8only
utf8 = yes

[ req_dn ]

[ ext_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_subca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_ocsp ]
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_citizen ]
keyUsage = critical, digitalSignature, nonRepudiation
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8090/moica/ocsp
crlDistributionPoints = URI:http://127.0.0.1:8090/moica/crl
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_nhi ]
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_nhi_service ]
keyUsage = critical, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
export PKI_CA=$ca OPENSSL_CONF=$ca/openssl.cnf

# Card lists from the identities, one tab-separated line per card.
moica_list=$(jq -r '.citizens | to_entries[] | select(.value.cards.moica != null) |
  [(.key + 1), .value.cards.moica.card_sn, .value.national_id, .value.name,
   .value.cards.moica.pin, (.value.cards.moica.status // "valid")] | @tsv' "$identities")
# Sex from the national ID's second character (1 M, 2 F; resident
# certificate numbers: 8 or A/C M, 9 or B/D F), else the identity's "sex".
jq_sex='def sex: .national_id[1:2] as $c |
  if ($c | test("^[18AC]$")) then "M" elif ($c | test("^[29BD]$")) then "F" else (.sex // "") end;'
nhi_list=$(jq -r "$jq_sex"'.citizens[] | select(.cards.nhi != null) |
  [.cards.nhi.card_no, .national_id, .name, .birthdate, sex] | @tsv' "$identities")
rogue_line=$(jq -r --arg id "$rogue_id" '.citizens | to_entries[] |
  select(.value.national_id == $id) | [(.key + 1), .value.name] | @tsv' "$identities")
[ -n "$rogue_line" ] || die "no identity $rogue_id for the rogue card"

# RSA key generation is most of the time: the CA keys first, then the
# card keys in the background, in the order the cards are made below. A
# regeneration keeps the keys DIR already has (not with --force).
genkeys() {
  local keep=$out
  [ $force -eq 0 ] || keep=/nonexistent
  printf '%s\n' "$@" | xargs -P "$(nproc)" -I{} sh -c \
    'if head -n1 "$2" 2>/dev/null | grep -qx -- "-----BEGIN PRIVATE KEY-----"; then
       cp "$2" "$1.tmp"
     else
       openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.tmp" 2>/dev/null
     fi && mv "$1.tmp" "$1"' sh "$stage/{}.key" "$keep/{}.key"
}
card_keys=()
while IFS=$'\t' read -r _ sn _; do card_keys+=("moica/$sn"); done <<< "$moica_list"
card_keys+=("moica/$rogue_sn")
while IFS=$'\t' read -r no _; do card_keys+=("nhi/$no"); done <<< "$nhi_list"
genkeys grca moica moica-ocsp rogue-root rogue-ca nhi-ca nhi-service
genkeys "${card_keys[@]}" &
keygen=$!
trap 'kill $keygen 2>/dev/null || :; wait || :; rm -rf "$stage"' EXIT
# key NAME: waits for NAME.key.
key() {
  while [ ! -e "$stage/$1.key" ]; do
    kill -0 $keygen 2>/dev/null || [ -e "$stage/$1.key" ] || die "key generation failed for $1"
    sleep 0.02
  done
}

# issue NAME SUBJECT EXT FROM UNTIL [ISSUER]: NAME.crt from NAME.key,
# signed by ISSUER (none: self-signed), serial 16 random bytes, positive.
issue() {
  local name=$1 subj=$2 ext=$3 nb=$4 na=$5 issuer=${6:-} serial
  key "$name"
  # SRANDOM: 32 bits from getrandom(2) each; the top bit cleared.
  printf -v serial '%08x%08x%08x%08x' $(( (SRANDOM & 0x7fffffff) | 0x01000000 )) \
    $SRANDOM $SRANDOM $SRANDOM
  echo "$serial" > "$ca/serial"
  openssl req -new -utf8 -key "$stage/$name.key" -subj "$subj" -out "$ca/req.csr"
  if [ -z "$issuer" ]; then
    set -- -selfsign -keyfile "$stage/$name.key"
  else
    set -- -cert "$stage/$issuer.crt" -keyfile "$stage/$issuer.key"
  fi
  openssl ca -batch -notext -utf8 -preserveDN "$@" -in "$ca/req.csr" -out "$stage/$name.crt" \
    -extensions "$ext" -startdate "$nb" -enddate "$na" 2>/dev/null ||
    die "openssl ca failed for $name"
}

grca_dn='/C=TW/O=Government Root Certification Authority (TEST)'
moica_dn='/C=TW/O=行政院/OU=內政部憑證管理中心 (TEST)'
issue grca "$grca_dn" ext_root "$ca_from" "$ca_until"
issue moica "$moica_dn" ext_subca "$ca_from" "$ca_until" grca
issue moica-ocsp "$moica_dn/CN=MOICA OCSP Responder (TEST)" ext_ocsp "$from" "$until" moica
issue rogue-root "$grca_dn" ext_root "$ca_from" "$ca_until"
issue rogue-ca "$moica_dn" ext_subca "$ca_from" "$ca_until" rogue-root
issue nhi-ca '/C=TW/O=NHI (TEST)/CN=NHI Card CA (TEST)' ext_root "$ca_from" "$ca_until"
issue nhi-service '/C=TW/O=NHI (TEST)/CN=NHI card service (TEST)' ext_nhi_service "$from" "$until" \
  nhi-ca
cp "$stage/grca.crt" "$stage/roots.pem"
cp "$stage/moica.crt" "$stage/chain.pem"

# Tokens. Each is made alone in a token directory of its own (SoftHSM2
# reads every token of its directory at each start), then moved to the
# others; the final softhsm2.conf names DIR/tokens.
softhsm_conf() {
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$1"
}

# token LABEL PIN KEYFILE-BASE OBJECT-LABEL: leaves SOFTHSM2_CONF naming
# the new token's own directory, for more objects; token_done moves it.
token() {
  local label=$1 pin=$2 base=$3 olabel=$4
  rm -rf "$ca/token"
  mkdir "$ca/token"
  export SOFTHSM2_CONF=$ca/token.conf
  softhsm_conf "$ca/token" > "$SOFTHSM2_CONF"
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" \
    </dev/null >/dev/null
  softhsm2-util --import "$stage/$base.key" --token "$label" --label "$olabel" --id 01 \
    --pin "$pin" </dev/null >/dev/null
  sed '/^-----/d' "$stage/$base.crt" | base64 -d > "$ca/cert.der"
  pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin" \
    --write-object "$ca/cert.der" --type cert --id 01 --label "$olabel" >/dev/null 2>&1 ||
    die "cannot write the certificate to token $label"
}
token_done() {
  mv "$ca/token"/* "$stage/tokens/"
}

while IFS=$'\t' read -r idx sn nid name pin status; do
  if [ "$status" = expired ]; then
    nb=$expired_from na=$expired_until
  else
    nb=$from na=$until
  fi
  printf -v subject_sn '%012d%s' "$idx" "${nid: -4}"
  issue "moica/$sn" "/C=TW/CN=$name/serialNumber=$subject_sn" ext_citizen "$nb" "$na" moica
  token "$sn" "$pin" "moica/$sn" "MOICA signature"
  token_done
done <<< "$moica_list"
IFS=$'\t' read -r idx name <<< "$rogue_line"
printf -v subject_sn '%012d%s' "$idx" "${rogue_id: -4}"
issue "moica/$rogue_sn" "/C=TW/CN=$name/serialNumber=$subject_sn" ext_citizen "$from" "$until" \
  rogue-ca
token "$rogue_sn" "$rogue_pin" "moica/$rogue_sn" "MOICA signature"
token_done

# NHI basic data (50 bytes): card number, Big5 name padded with spaces to
# 20 bytes, national ID, ROC birth date YYYMMDD, sex.
while IFS=$'\t' read -r no nid name birth sex; do
  [[ $sex =~ ^[MF]$ ]] || die "no sex for NHI card $no"
  issue "nhi/$no" "/C=TW/O=NHI (TEST)/CN=$no" ext_nhi "$from" "$until" nhi-ca
  label="NHI $no"
  token "$label" "$nhi_pin" "nhi/$no" "NHI card"
  big5=$(printf '%s' "$name" | iconv -f UTF-8 -t BIG5) || die "name of card $no is not Big5"
  IFS=- read -r y m d <<< "$birth"
  basic=$ca/basic.bin
  # Byte lengths: the C locale counts bytes.
  LC_ALL=C printf '%s%-20s%s%03d%s%s%s' "$no" "$big5" "$nid" $(( 10#$y - 1911 )) "$m" "$d" \
    "$sex" > "$basic"
  [ "$(LC_ALL=C wc -c < "$basic")" -eq 50 ] || die "basic data of card $no is not 50 bytes"
  pkcs11-tool --module "$module" --token-label "$label" --login --pin "$nhi_pin" \
    --write-object "$basic" --type data --application-label isso-nhi --label "NHI basic" \
    >/dev/null 2>&1 || die "cannot write the basic data to token $label"
  token_done
done <<< "$nhi_list"

# The manifest, written last: its presence means a complete PKI.
jq --arg so "$so_pin" --arg np "$nhi_pin" --arg rsn "$rogue_sn" --arg rpin "$rogue_pin" \
   --arg rid "$rogue_id" "$jq_sex"'
  {so_pin: $so, nhi_token_pin: $np, nhi_service_cert: "nhi-service.crt",
   moica: [.citizens[] | select(.cards.moica != null) |
     {card_sn: .cards.moica.card_sn, national_id, name, pin: .cards.moica.pin,
      status: (.cards.moica.status // "valid"), cert: "moica/\(.cards.moica.card_sn).crt"}],
   rogue: [.citizens[] | select(.national_id == $rid) |
     {card_sn: $rsn, national_id, name, pin: $rpin, cert: "moica/\($rsn).crt"}],
   nhi: [.citizens[] | select(.cards.nhi != null) |
     {card_no: .cards.nhi.card_no, national_id, name, birthdate, sex: sex,
      registration_password: .cards.nhi.registration_password,
      cert: "nhi/\(.cards.nhi.card_no).crt"}]}' "$identities" > "$stage/cards.json"

# Into place: the old PKI, tokens and testcard state go, the new come.
rm -rf "$ca"
for f in grca.crt grca.key moica.crt moica.key moica-ocsp.crt moica-ocsp.key roots.pem \
         chain.pem rogue-root.crt rogue-root.key rogue-ca.crt rogue-ca.key nhi-ca.crt \
         nhi-ca.key nhi-service.crt nhi-service.key moica nhi tokens testcard; do
  rm -rf "${out:?}/$f"
  mv "$stage/$f" "$out/$f"
done
softhsm_conf "$out/tokens" > "$out/softhsm2.conf"
rm -f "$out/cards.json"
mv "$stage/cards.json" "$out/cards.json"

n=$(( $(wc -l <<< "$moica_list") + 1 + $(wc -l <<< "$nhi_list") ))
echo "test-pki: $n cards in $out ($(( ($(date +%s%N) - started) / 1000000 )) ms)" >&2
