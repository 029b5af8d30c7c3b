#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# e2e_test BIN_DIR TOOLS_DIR: the browser client core (wasm, bindings/js) in Node 20 against a
# real enclave side: an HTTP server and an echo server (the app) ← enclavia-local-ingress (the
# enclave side, NSM simulator) ← enclavia-relay (ws://). test/e2e.mjs connects, checks the
# attestation, makes a request, echoes 1 MiB and is refused with a wrong PCR0. Then the native
# client (`enclavia connect`) echoes the same 1 MiB, and the times are compared (goal: wasm within
# 1.2x). Exits 77 (skip) when bindings/js/dist is not built.
set -uo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
tools=$(cd "${2:?tests/tools dir}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$here/../dist/enclavia_core.wasm" ] || { echo "SKIP: bindings/js/dist not built (scripts/build-wasm)"; exit 77; }
# Node's WebSocket: global from Node 22, behind --experimental-websocket from 20.10; Debian 12's
# own Node 18 has none (the browser test covers the browser's).
node --experimental-websocket --no-warnings -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' \
  2>/dev/null || { echo "SKIP: this Node ($(node --version)) has no WebSocket (needs 20.10+)"; exit 77; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$tools/processes.sh"

app_port=$(free_port)
echo_port=$(free_port)
mkdir -p "$work/www"
echo "hello through the channel" >"$work/www/index.html"
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$app_port" >"$work/http.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$tools/echo_counter.py" "$echo_port" "$work/echo.log" >"$work/echo.out" 2>&1 &
pids+=($!)
wait_line "$work/echo.out" listening >/dev/null || exit 1
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$app_port/" && break; sleep 0.05; done

pcr0=$(printf 'app' | sha384sum | cut -d' ' -f1)
other=$(printf 'other' | sha384sum | cut -d' ' -f1)
"$bin/enclavia-local-ingress" --listen "unix:$work/enclave.sock" --port "$app_port" \
  --port "$echo_port" --simulator-state "$work/sim" --pcr "0=$pcr0" >"$work/ingress.log" 2>&1 &
pids+=($!)
wait_line "$work/ingress.log" 'listening on' >/dev/null || exit 1
"$bin/enclavia-relay" --listen tcp:127.0.0.1:0 --enclave "unix:$work/enclave.sock" \
  --idle-timeout 30 >"$work/relay.log" 2>&1 &
pids+=($!)
port=$(wait_line "$work/relay.log" 'listening on tcp:' | listening_port) || exit 1
url="ws://127.0.0.1:$port/"
printf 'roots = ["%s"]\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$pcr0" >"$work/trust.toml"
printf 'roots = ["%s"]\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$other" >"$work/wrong.toml"

status=0
node --experimental-websocket --no-warnings ${ENCLAVIA_NODE_FLAGS:-} "$here/e2e.mjs" "$url" "$work/trust.toml" \
  "$work/wrong.toml" "$pcr0" "$app_port" "$echo_port" | tee "$work/node.out" || status=1

# The native client, same relay, same 1 MiB, best of 3.
head -c $((1 << 20)) /dev/urandom >"$work/mib"
best=""
for _ in 1 2 3; do
  start=$(date +%s%N)
  "$bin/enclavia" connect "$url" --trust "$work/trust.toml" --port "$echo_port" <"$work/mib" >"$work/mib.out" 2>"$work/connect.err"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  cmp -s "$work/mib" "$work/mib.out" || { echo "FAIL native 1 MiB echo: $(cat "$work/connect.err")"; status=1; }
  if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
# The native handshake alone (process start included), best of 3: subtracted from the figure
# above, it leaves the native client's 1 MiB echo time.
attest=""
for _ in 1 2 3; do
  start=$(date +%s%N)
  "$bin/enclavia" connect "$url" --trust "$work/trust.toml" --attestation-only >/dev/null 2>&1 ||
    { echo "FAIL native connect --attestation-only"; status=1; }
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ -z "$attest" ] || [ "$ms" -lt "$attest" ]; then attest=$ms; fi
done
wasm=$(awk '/^figure echo_1mib_ms/ {print $3}' "$work/node.out")
cold=$(awk '/^figure handshake_ms/ {print $3}' "$work/node.out")
warm=$(awk '/^figure handshake_warm_ms/ {print $3}' "$work/node.out")
echo "figure native: connect+handshake ${attest} ms (process start included); connect+handshake+1 MiB echo ${best} ms; so 1 MiB ~$((best - attest)) ms"
echo "figure wasm (Node): handshake ${cold:-?} ms first, ${warm:-?} ms warm; 1 MiB echo on an open channel ${wasm:-?} ms"
exit $status
