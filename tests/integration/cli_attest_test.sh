#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cli_attest_test ENCLAVIA FIXTURES: drives `enclavia attest` as a user would and checks exit
# codes, the one-line error contract and the JSON schema.
set -uo pipefail
enclavia=${1:?path to enclavia}
fixtures=${ENCLAVIA_FIXTURES:-${2:-}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"

one_line_error() {  # stderr is exactly one line starting with "enclavia: "
  [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q '^enclavia: ' "$work/err"
}
json() { python3 -c "import json,sys; j=json.load(open('$work/out')); sys.exit(0 if ($1) else 1)"; }

pcr0=$(printf 'k' | sha384sum | cut -d' ' -f1)
expect 0 "simulate" -- "$enclavia" attest simulate --state-dir "$work/sim" --pcr "0=$pcr0" \
  --nonce 0102 --user-data 68656c6c6f --public-key aabb -o "$work/doc.cose"
check "root.pem created" test -s "$work/sim/root.pem"
check "root.key private" test "$(stat -c %a "$work/sim/root.key")" = 600

expect 0 "verify simulator document" -- "$enclavia" attest verify "$work/doc.cose" \
  --root "$work/sim/root.pem" --no-aws-root --pcr "0=$pcr0" --nonce 0102 --public-key aabb
check "summary says valid" grep -q '^valid: Nitro attestation document' "$work/out"

expect 0 "verify --json" -- "$enclavia" attest verify "$work/doc.cose" --root "$work/sim/root.pem" --json
check "json schema" json "sorted(j) == sorted(['valid','error','module_id','timestamp','digest','pcrs','public_key','user_data','nonce'])"
check "json values" json "j['valid'] is True and j['error'] is None and j['digest'] == 'SHA384' and j['pcrs']['0'] == '$pcr0' and j['nonce'] == '0102' and j['user_data'] == '68656c6c6f' and j['public_key'] == 'aabb' and len(j['pcrs']) == 16"

base64 "$work/doc.cose" > "$work/doc.b64"
expect 0 "verify base64 input" -- "$enclavia" attest verify "$work/doc.b64" --root "$work/sim/root.pem"

expect 1 "AWS root only rejects simulator document" -- "$enclavia" attest verify "$work/doc.cose"
check "untrusted is one line" one_line_error
check "untrusted names the root" grep -qi 'trusted' "$work/err"

expect 1 "--json on failure" -- "$enclavia" attest verify "$work/doc.cose" --json
check "json failure" json "j['valid'] is False and isinstance(j['error'], str) and len(j['error']) > 0"

expect 1 "wrong PCR" -- "$enclavia" attest verify "$work/doc.cose" --root "$work/sim/root.pem" \
  --pcr "0=$(printf 'x' | sha384sum | cut -d' ' -f1)"
check "wrong PCR message" grep -q 'PCR0 mismatch' "$work/err"
expect 1 "wrong nonce" -- "$enclavia" attest verify "$work/doc.cose" --root "$work/sim/root.pem" --nonce 0103
check "wrong nonce message" grep -q 'nonce mismatch' "$work/err"
expect 1 "expired later" -- "$enclavia" attest verify "$work/doc.cose" --root "$work/sim/root.pem" \
  --at "$(date -u -d '+5 hours' +%Y-%m-%dT%H:%M:%SZ)"
check "expired message" grep -q 'expired' "$work/err"

python3 - "$work/doc.cose" "$work/tampered.cose" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[len(d) // 2] ^= 0x10
open(sys.argv[2], 'wb').write(d)
PY
expect 1 "tampered" -- "$enclavia" attest verify "$work/tampered.cose" --root "$work/sim/root.pem"
check "tampered is one line" one_line_error

printf 'not a document' > "$work/garbage"
expect 1 "garbage" -- "$enclavia" attest verify "$work/garbage"
check "garbage is one line" one_line_error
: > "$work/empty"
expect 1 "empty file" -- "$enclavia" attest verify "$work/empty"
check "empty is one line" one_line_error
head -c 200000 /dev/zero > "$work/huge"
expect 1 "oversize file" -- "$enclavia" attest verify "$work/huge"
check "oversize is one line" one_line_error
expect 1 "missing file" -- "$enclavia" attest verify "$work/nope"
check "missing is one line" one_line_error

expect 2 "bad PCR index" -- "$enclavia" attest verify "$work/doc.cose" --pcr 99=00
expect 2 "bad --at" -- "$enclavia" attest verify "$work/doc.cose" --at yesterday
expect 2 "missing FILE" -- "$enclavia" attest verify
expect 1 "user_data too large" -- "$enclavia" attest simulate --state-dir "$work/sim" \
  --user-data "$(head -c 1025 /dev/zero | od -v -An -tx1 | tr -d ' \n')" -o "$work/x.cose"
check "too large names the NSM error" grep -q 'InputTooLarge' "$work/err"

if [ -n "$fixtures" ] && [ -f "$fixtures/nitro/expected.json" ]; then
  f="$fixtures/nitro/att_2024-09-07_blocky_maxfields.cose.b64"
  expect 0 "real document at its time" -- "$enclavia" attest verify "$f" --at 2024-09-07T14:37:39.545Z --json
  check "real document fields" json "j['valid'] and j['module_id'].startswith('i-') and len(j['nonce']) == 2048 and j['timestamp'] == 1725719859545"
  expect 1 "real document now" -- "$enclavia" attest verify "$f"
  check "real document expired" grep -q 'expired' "$work/err"
  expect 1 "real debug document needs --allow-debug" -- "$enclavia" attest verify \
    "$fixtures/nitro/att_2022-10-12_evervault_debug_pubkey.cose" --at 2022-10-12T13:50:06.081Z
  check "debug message" grep -q 'debug' "$work/err"
else
  echo "SKIP: real-document checks (shared fixtures not found; set ENCLAVIA_FIXTURES)"
fi

finish
