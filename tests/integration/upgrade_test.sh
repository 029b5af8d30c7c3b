#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# upgrade_test BIN_DIR BUILD_DIR TOOLS_DIR: upgrades as a chain of attestations end to end
# (issue 8, docs/upgrade.md), with real processes on the local platform:
#   deploy kv v1 with a control key, a volume and a witness → write data → stage v2 (--after 3s)
#   → status shows it → activate before due: refused, saying when → revoke, activate: refused
#   (the host's check and, with --force, the enclave's own) → stage v2 again, activate when due:
#   served by v2, 4 chain entries, the data readable, clients pinning only the genesis or only
#   v1's PCRs still connect → v3: 7 entries, data readable, `enclavia chain` verifies 2 steps →
#   forged signature, another genesis, a replayed request, an immutable enclave: each refused →
#   the superseded v1 relaunched with the old chain on the same volume: refused by the witness →
#   a PKCS#11 control key on SoftHSM2 signs a full upgrade (skipped without softhsm2).
# Needs root, namespaces, /dev/fuse, loop devices, btrfs, nbdfuse; exits 77 (skip) otherwise.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
build=$(cd "${2:?build dir}" && pwd)
tools=$(cd "${3:?tools dir}" && pwd)
why=""
[ "$(id -u)" -eq 0 ] || why="needs root"
[ -z "$why" ] && ! unshare --mount --pid --net --fork true 2>/dev/null && why="needs Linux namespaces"
[ -z "$why" ] && [ ! -c /dev/fuse ] && why="needs /dev/fuse"
[ -z "$why" ] && [ ! -c /dev/loop-control ] && why="needs loop devices"
[ -z "$why" ] && ! grep -qw btrfs /proc/filesystems && ! modprobe btrfs 2>/dev/null && why="needs btrfs"
for tool in nbdfuse mkfs.btrfs curl python3; do
  [ -z "$why" ] && ! command -v "$tool" >/dev/null && why="needs $tool (scripts/install-deps)"
done
if [ -n "$why" ]; then
  echo "upgrade_test: $why; skipping"
  exit 77
fi
work=$(mktemp -d)
export ENCLAVIA_HOME=$work/home
export ENCLAVIA_AUTO_ACTIVATE=0  # The test activates; the control plane's timer would race it.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  "$bin/enclavia" down >/dev/null 2>&1
  pkill -9 -f "enclavia-sandbox --dir $ENCLAVIA_HOME" 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "upgrade_test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"
# shellcheck source=/dev/null
source "$tools/processes.sh"
enclavia() { "$bin/enclavia" "$@"; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
json() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
status_json() { enclavia upgrade status kv --json >"$work/status.json" 2>/dev/null; }

# proxy NAME TRUST: an attested proxy to kv's port 8080 with that trust file; sets $port.
proxy() {
  port=$(free_port)
  "$bin/enclavia" proxy --listen "tcp:127.0.0.1:$port" --enclave "$url" --trust "$2" --port 8080 \
    >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
  wait_line "$work/$1.out" "listening on" >/dev/null
  eval "${1}_port=$port"
}
get() { curl -s --max-time 30 "http://127.0.0.1:$1/kv/$2"; }
put() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT --data-binary "$3" "http://127.0.0.1:$1/kv/$2"; }
# served PORT KEY VALUE: until the value comes back through that proxy (≤ 60 s).
served() { for _ in $(seq 1 300); do [ "$(get "$1" "$2")" = "$3" ] && return 0; sleep 0.2; done; return 1; }

expect 0 "up -d" -- enclavia up -d

# ── three images of kv whose PCRs differ (a file in the rootfs) ──────────────────────────────
for v in 1 2 3; do
  mkdir -p "$work/kv$v"
  cp -r "$build/examples/kv/rootfs" "$work/kv$v/"
  cp "$build/examples/kv/Enclaviafile" "$work/kv$v/"
  echo "kv version $v" >"$work/kv$v/rootfs/VERSION"
  expect 0 "build kv v$v" -- enclavia build "$work/kv$v" -o "$work/kv$v.eif" --no-progress
  enclavia describe "$work/kv$v.eif" --json >"$work/kv$v.describe.json"
done
pcr0() { json "$work/kv$1.describe.json" 'd["Measurements"]["PCR0"]'; }
check "v1 and v2 measure differently" [ "$(pcr0 1)" != "$(pcr0 2)" ]

expect 0 "keys new" -- enclavia keys new "$work/control.pem"
expect 0 "keys new (another owner)" -- enclavia keys new "$work/other.pem"
expect 0 "deploy v1 with a control key, a volume and a witness" -- \
  enclavia deploy "$work/kv1.eif" --name kv --control-key "$work/control.pem" \
  --staging-window 2s --storage 256M --witnesses 1 --json
cp "$work/out" "$work/kv.json"
url=$(json "$work/kv.json" 'd["url"]')
status_json
genesis=$(json "$work/status.json" 'd["genesis"]')
check "status: a genesis of one entry" [ "$(json "$work/status.json" 'd["length"]')" = 1 ]

# Trust files: the genesis only; v1's PCRs only (as `enclavia trust` writes them).
expect 0 "trust kv" -- enclavia trust kv -o "$work/v1.toml"
roots=$(grep '^roots' "$work/v1.toml")
printf '%s\nmax_age = "1h"\nfresh = false\nallow_debug = false\ngenesis = ["%s"]\n' \
  "$roots" "$genesis" >"$work/genesis.toml"
proxy v1 "$work/v1.toml"
proxy gen "$work/genesis.toml"
check "PUT through the v1-pinned client" [ "$(put "$v1_port" greeting before-upgrade)" = 204 ]
check "GET through the genesis-pinned client" served "$gen_port" greeting before-upgrade

# A hostile host keeps every object it ever stored: here, v1's wrapped key.
cp "$ENCLAVIA_HOME/host/volumes/kv/kms/data-key" "$work/v1-data-key"

# ── stage v2, refuse early and revoked activations ───────────────────────────────────────────
# The window is long enough for the early refusals below even on a loaded machine; after the
# revocation the test waits until it has passed, so the revocation alone is what refuses.
staged_at=$(date +%s)
expect 0 "stage v2 (--after 20s)" -- \
  enclavia upgrade stage kv --image "$work/kv2.eif" --after 20s --id v2 --control-key "$work/control.pem"
expect 0 "status" -- enclavia upgrade status kv
check "status shows the staged request and its PCR0" grep -q "$(pcr0 2)" "$work/out"
check "status shows the time left" grep -q "in [0-9]* s" "$work/out"
expect 1 "activate before due: refused" -- enclavia upgrade activate kv v2
check "the refusal says when" grep -q "not due until" "$work/err"
expect 1 "activate before due (--force): the enclave refuses" -- enclavia upgrade activate kv v2 --force
check "the enclave's refusal names the window" grep -qi "due\|window" "$work/err"
expect 0 "revoke v2" -- enclavia upgrade revoke kv v2 --control-key "$work/control.pem"
while [ "$(date +%s)" -le $((staged_at + 22)) ]; do sleep 1; done
expect 1 "activate after revocation: refused" -- enclavia upgrade activate kv v2
check "the refusal says revoked" grep -q "revoked" "$work/err"
expect 1 "activate after revocation (--force): the enclave refuses" -- enclavia upgrade activate kv v2 --force
check "the enclave still serves v1" served "$v1_port" greeting before-upgrade

# ── the adversarial requests ─────────────────────────────────────────────────────────────────
expect 1 "a request signed by another key: refused" -- \
  enclavia upgrade stage kv --image "$work/kv2.eif" --after 1s --id forged --control-key "$work/other.pem"
check "the refusal names the signature" grep -qi "signed\|signature" "$work/err"

# ── stage v2 again, activate when due ────────────────────────────────────────────────────────
expect 0 "stage v2 again" -- \
  enclavia upgrade stage kv --image "$work/kv2.eif" --after 3s --id v2b --control-key "$work/control.pem"
# The request as signed, for the replay below.
status_json
sleep 4
expect 0 "activate v2 when due" -- enclavia upgrade activate kv v2b
status_json
check "the chain has 4 entries" [ "$(json "$work/status.json" 'd["length"]')" = 4 ]
check "the head PCR0 is v2's" [ "$(json "$work/status.json" 'd["head_pcrs"]["0"]')" = "$(pcr0 2)" ]
check "data written before is read through the v1-pinned client" served "$v1_port" greeting before-upgrade
check "and through the genesis-pinned client" served "$gen_port" greeting before-upgrade
check "new writes work" [ "$(put "$gen_port" greeting after-v2)" = 204 ]
expect 0 "chain kv verifies" -- enclavia chain kv --trust "$work/v1.toml"
check "chain: one step, accepted from v1" grep -q "trust:    accepted" "$work/out"

# ── v3 ───────────────────────────────────────────────────────────────────────────────────────
expect 0 "stage v3" -- \
  enclavia upgrade stage kv --image "$work/kv3.eif" --after 2s --id v3 --control-key "$work/control.pem"
sleep 3
expect 0 "activate v3" -- enclavia upgrade activate kv v3
expect 0 "chain by URL (public) verifies two steps" -- enclavia chain "$url" --json
check "the chain has 7 entries" [ "$(json "$work/out" 'd["length"]')" = 7 ]
check "data still readable after v3" served "$gen_port" greeting after-v2
# The C ABI (through the Python binding) reports the chain a channel followed.
here_src=$(cd "$(dirname "$0")/../.." && pwd)
PYTHONPATH="$here_src/bindings/python" ENCLAVIA_LIBRARY="$build/lib/libenclavia-client.so" \
  "$py" - "$url" "$work/genesis.toml" "$genesis" "$(pcr0 3)" >"$work/python.out" 2>&1 <<'PY'
import sys
import enclavia
url, trust, genesis, pcr0 = sys.argv[1:]
with enclavia.connect(url, trust=trust) as channel:
    a = channel.attestation
    print("upgrades", a.upgrades, "genesis", a.genesis.hex() if a.genesis else None)
    assert a.upgrades == 2, a.upgrades
    assert a.genesis is not None and a.genesis.hex() == genesis, a.genesis
    assert a.pcrs[0].hex() == pcr0
PY
check "python: a genesis-pinned channel reports 2 upgrades from the genesis, at v3's PCR0" \
  grep -q "^upgrades 2 genesis $genesis" "$work/python.out"

# A replayed request: the v2 request entry, genuinely signed, staged again (it names a head the
# chain has left behind).
control_addr=$(cat "$ENCLAVIA_HOME/control/address"); control_addr=${control_addr#tcp:}
token=$(cat "$ENCLAVIA_HOME/control/token")
image2=$(sha256sum "$work/kv2.eif" | cut -d' ' -f1)
old_request=$(curl -s -H "Authorization: Bearer $token" "http://$control_addr/v1/enclaves/kv/chain" |
  "$py" -c 'import json,sys; print(json.load(sys.stdin)["chain"][1])')
code=$(curl -s -o "$work/replay.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
  -X POST "http://$control_addr/v1/enclaves/kv/upgrade/stage" \
  --data "{\"image\":\"$image2\",\"request\":\"$old_request\"}")
check "an old request replayed: refused ($code)" [ "$code" -ge 400 ]
check "the refusal names the stale head" grep -qi "head" "$work/replay.json"

# ── an immutable enclave refuses every upgrade ───────────────────────────────────────────────
expect 0 "deploy an immutable enclave" -- enclavia deploy "$work/kv1.eif" --name frozen --immutable
expect 1 "stage on the immutable enclave: refused" -- \
  enclavia upgrade stage frozen --image "$work/kv2.eif" --after 1s --control-key "$work/control.pem"

# ── the superseded v1 relaunched with its old chain on the same volume ───────────────────────
# The host puts v1's wrapped key back, so the KMS would release the key to v1 again: only the
# witness, which has seen the chain move on, stands in the way.
cp "$work/v1-data-key" "$ENCLAVIA_HOME/host/volumes/kv/kms/data-key"
image1=$(sha256sum "$work/kv1.eif" | cut -d' ' -f1)
chain1=$(curl -s -H "Authorization: Bearer $token" "http://$control_addr/v1/enclaves/kv/chain" |
  "$py" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["chain"][:1]))')
curl -s -o "$work/relaunch.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
  -X POST "http://$control_addr/v1/enclaves" --data "{\"name\":\"kv-old\",\"image\":\"$image1\",\"chain\":$chain1,\"storage\":{\"size_bytes\":268435456,\"backend\":\"dir:$ENCLAVIA_HOME/host/volumes/kv\",\"witnesses\":[\"witness-1\"]}}" >"$work/relaunch.code"
for _ in $(seq 1 100); do
  enclavia inspect kv-old >"$work/old.json" 2>/dev/null
  grep -qi "superseded" "$work/old.json" && break
  sleep 0.3
done
check "the superseded image is refused (superseded)" grep -qi "superseded" "$work/old.json"

# ── PKCS#11 on SoftHSM2 ──────────────────────────────────────────────────────────────────────
module=$(ls /usr/lib/*/softhsm/libsofthsm2.so /usr/lib/softhsm/libsofthsm2.so 2>/dev/null | head -1)
if [ -n "$module" ] && command -v softhsm2-util >/dev/null && command -v pkcs11-tool >/dev/null; then
  export SOFTHSM2_CONF=$work/softhsm2.conf
  mkdir -p "$work/tokens"
  echo "directories.tokendir = $work/tokens" >"$SOFTHSM2_CONF"
  softhsm2-util --init-token --free --label ctl --so-pin 1234 --pin 5678 >/dev/null
  pkcs11-tool --module "$module" --token-label ctl --login --pin 5678 --keypairgen \
    --key-type EC:prime256v1 --label ctl --id 01 >/dev/null 2>&1
  export ENCLAVIA_PKCS11_MODULE=$module ENCLAVIA_PKCS11_PIN=5678
  key="pkcs11:token=ctl;object=ctl"
  expect 0 "deploy with a PKCS#11 control key" -- \
    enclavia deploy "$work/kv1.eif" --name hsm --control-key "$key" --staging-window 1s
  expect 0 "stage with the PKCS#11 key" -- \
    enclavia upgrade stage hsm --image "$work/kv2.eif" --after 1s --id h2 --control-key "$key"
  sleep 2
  expect 0 "activate the PKCS#11-signed upgrade" -- enclavia upgrade activate hsm h2
  expect 0 "its chain verifies" -- enclavia chain hsm
else
  echo "upgrade_test: softhsm2 or pkcs11-tool missing; the PKCS#11 part is skipped"
fi

finish
