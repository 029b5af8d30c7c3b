#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# channel_test BIN_DIR TOOLS_DIR: the attested channel end to end, with real processes and
# sockets: nginx (the app) ← enclavia-local-ingress (the enclave side, NSM simulator) ← relay ←
# `enclavia proxy` / `enclavia connect` / the C ABI. Then every way a client must refuse an
# enclave, and a hostile host (enclavia-tamper-pipe) that flips, drops, reorders, truncates and
# replays records: each ends in a clear client error and no byte reaches the app.
set -uo pipefail
bin=${1:?build bin dir}
tools=${2:?tests/tools dir}
enclavia=$bin/enclavia
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$(dirname "$0")/testlib.sh"

command -v nginx >/dev/null || { echo "SKIP: nginx not installed (scripts/install-deps)"; exit 77; }

# shellcheck source=/dev/null
source "$tools/processes.sh"
one_line() { [ "$(wc -l <"$work/err")" -eq 1 ]; }
err_has() { grep -q -- "$1" "$work/err" || { echo "stderr was: $(cat "$work/err")" >&2; return 1; }; }

# --- the application: nginx serving a page and a 4 MiB file; an echo server that counts bytes.
app_port=$(free_port)
echo_port=$(free_port)
mkdir -p "$work/www" "$work/nginx/tmp"
echo "hello through the channel" >"$work/www/index.html"
head -c $((4 << 20)) /dev/urandom >"$work/www/big.bin"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
error_log $work/nginx/error.log; pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$app_port; root $work/www; }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
python3 "$tools/echo_counter.py" "$echo_port" "$work/echo.log" >"$work/echo.out" 2>&1 & pids+=($!)
wait_line "$work/echo.out" listening >/dev/null || exit 1
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$app_port/" && break; sleep 0.05; done

pcr0=$(printf 'app' | sha384sum | cut -d' ' -f1)
pcr2=$(printf 'config' | sha384sum | cut -d' ' -f1)
other=$(printf 'other' | sha384sum | cut -d' ' -f1)

# start_ingress NAME ARGS...: an enclave-side terminator on unix:$work/NAME.sock.
start_ingress() {
  local name=$1; shift
  "$bin/enclavia-local-ingress" --listen "unix:$work/$name.sock" --port "$app_port" \
    --port "$echo_port" --simulator-state "$work/sim" --pcr "0=$pcr0" --pcr "2=$pcr2" "$@" \
    >"$work/$name.log" 2>&1 & pids+=($!)
  eval "${name}_pid=$!"
  wait_line "$work/$name.log" 'listening on' >/dev/null
}
# start_relay NAME UPSTREAM: a relay; sets NAME_url.
start_relay() {
  local name=$1 upstream=$2
  "$bin/enclavia-relay" --listen tcp:127.0.0.1:0 --enclave "$upstream" --idle-timeout 30 \
    >"$work/$name.log" 2>&1 & pids+=($!)
  eval "${name}_pid=$!"
  local line port
  line=$(wait_line "$work/$name.log" 'listening on tcp:') || return 1
  port=$(echo "$line" | listening_port)
  eval "${name}_url=ws://127.0.0.1:$port/"
}
# trust FILE [KEY=VALUE lines...]: a trust file for the simulator root and the PCRs above.
trust() {
  local file=$1; shift
  {
    echo "roots = [\"$work/sim/root.pem\"]"
    for line in "$@"; do echo "$line"; done
    echo "[[accept]]"
    echo "PCR0 = \"$pcr0\""
    echo "PCR2 = \"$pcr2\""
  } >"$file"
}

start_ingress enclave || exit 1
start_relay relay "unix:$work/enclave.sock" || exit 1
trust "$work/trust.toml"
trust "$work/fresh.toml" "fresh = true"

# --- connect: attestation, a request, bulk data both ways, a closed port.
expect 0 "connect --attestation-only" -- "$enclavia" connect "$relay_url" --trust "$work/trust.toml" --attestation-only
check "attested PCR0" grep -q "\"PCR0\": \"$pcr0\"" "$work/out"
check "document binds the static key" python3 -c "
import json,sys; j=json.load(open('$work/out'))
key=open('$work/enclave.log').read().split('static key ')[1][:64]
sys.exit(0 if j['public_key']==key and j['nonce']=='' else 1)"
expect 0 "connect fresh" -- "$enclavia" connect "$relay_url" --trust "$work/fresh.toml" --attestation-only
check "fresh document has a 32-byte nonce" python3 -c "
import json,sys; j=json.load(open('$work/out')); sys.exit(0 if len(j['nonce'])==64 else 1)"

printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' >"$work/req"
expect 0 "connect GET" -- "$enclavia" connect "$relay_url" --trust "$work/trust.toml" --port "$app_port" <"$work/req"
check "connect: 200" grep -q "200 OK" "$work/out"
check "connect: body" grep -q "hello through the channel" "$work/out"

head -c $((16 << 20)) /dev/urandom >"$work/upload"
expect 0 "connect echo 16 MiB" -- "$enclavia" connect "$relay_url" --trust "$work/trust.toml" --port "$echo_port" <"$work/upload"
check "16 MiB echoed intact" cmp -s "$work/upload" "$work/out"

expect 1 "connect to a closed port" -- "$enclavia" connect "$relay_url" --trust "$work/trust.toml" --port 9 <"$work/req"
check "closed port: reason" err_has "port 9 is not open"

# --- the C ABI.
trust "$work/bad.toml"
sed -i "s/PCR0 = \"$pcr0\"/PCR0 = \"$other\"/" "$work/bad.toml"
expect 0 "C ABI test" -- "$bin/client_c_test" "$relay_url" "$work/trust.toml" "$work/bad.toml" "$app_port"
check "C ABI: PCR0" grep -q "pcr0 $pcr0" "$work/out"

# --- proxy: legacy HTTP clients, many concurrent streams over one channel.
"$enclavia" proxy --listen tcp:127.0.0.1:0 --enclave "$relay_url" --trust "$work/trust.toml" \
  --port "$app_port" >"$work/proxy.out" 2>"$work/proxy.err" & pids+=($!)
proxy_line=$(wait_line "$work/proxy.out" 'listening on') || exit 1
proxy_port=$(echo "$proxy_line" | listening_port)
check "proxy logs the verified PCRs" grep -q "verified enclave: PCR0=$pcr0" "$work/proxy.err"
check "proxy: GET /" test "$(curl -s "http://127.0.0.1:$proxy_port/")" = "hello through the channel"
curl -s -o "$work/big.out" "http://127.0.0.1:$proxy_port/big.bin"
check "proxy: 4 MiB intact" cmp -s "$work/www/big.bin" "$work/big.out"
seq 1 200 | xargs -P 32 -I{} sh -c "curl -s http://127.0.0.1:$proxy_port/big.bin | sha256sum" >"$work/sums"
want=$(sha256sum <"$work/www/big.bin")
check "proxy: 200 concurrent 4 MiB downloads intact" test "$(grep -c -F "$want" "$work/sums")" -eq 200
check "proxy: one channel served them all" test "$(grep -c 'verified enclave' "$work/proxy.err")" -eq 1
# A client that reads at 20 KB/s fills only its own stream's window: 20 downloads beside it finish.
curl -s --limit-rate 20k -o /dev/null "http://127.0.0.1:$proxy_port/big.bin" & slow=$!
pids+=($slow)
sleep 0.5
seq 1 20 | xargs -P 8 -I{} sh -c "curl -s -m 60 http://127.0.0.1:$proxy_port/big.bin | sha256sum" >"$work/sums2"
check "proxy: a slow reader starves no one" test "$(grep -c -F "$want" "$work/sums2")" -eq 20
check "proxy: the slow reader is still being served" kill -0 "$slow"
kill "$slow" 2>/dev/null

# Reconnect: the enclave restarts (a new static key, the same measurements); the proxy
# reconnects and verifies again.
kill "$enclave_pid"; wait "$enclave_pid" 2>/dev/null
start_ingress enclave || exit 1
ok=0
for _ in 1 2 3 4 5; do
  if [ "$(curl -s -m 10 "http://127.0.0.1:$proxy_port/")" = "hello through the channel" ]; then ok=1; break; fi
  sleep 0.5
done
check "proxy: works after the enclave restarted" test "$ok" -eq 1
check "proxy: verified the new enclave" test "$(grep -c 'verified enclave' "$work/proxy.err")" -eq 2

expect 1 "proxy refuses to start when verification fails" -- timeout 20 "$enclavia" proxy \
  --listen tcp:127.0.0.1:0 --enclave "$relay_url" --trust "$work/bad.toml" --port "$app_port"
check "proxy refusal names the check" err_has "match no accepted set"
check "proxy accepted nothing" test ! -s "$work/out"

# --- refusals: each a clear one-line client error, before any application byte.
refuse() {  # refuse NAME TRUST_FILE URL NEEDLE
  local before
  before=$(grep -c accept "$work/echo.log" 2>/dev/null || true)
  expect 1 "$1" -- timeout 20 "$enclavia" connect "$3" --trust "$2" --port "$echo_port" <"$work/req"
  check "$1: names the check" err_has "$4"
  check "$1: one line" one_line
  check "$1: no app byte" test "$(grep -c accept "$work/echo.log" 2>/dev/null || true)" = "$before"
}
refuse "PCR mismatch" "$work/bad.toml" "$relay_url" "match no accepted set"
mkdir -p "$work/othersim"
"$enclavia" attest simulate --state-dir "$work/othersim" -o "$work/unused.cose" >/dev/null 2>&1
sed "s#$work/sim/root.pem#$work/othersim/root.pem#" "$work/trust.toml" >"$work/unknown_root.toml"
refuse "unknown root" "$work/unknown_root.toml" "$relay_url" "untrusted\|root"

start_ingress old --clock-offset -7200 && start_relay relay_old "unix:$work/old.sock"
refuse "document too old" "$work/trust.toml" "$relay_old_url" "old"
start_ingress expired --clock-offset -18000 && start_relay relay_expired "unix:$work/expired.sock"
trust "$work/long.toml" 'max_age = "1d"'
refuse "expired certificate" "$work/long.toml" "$relay_expired_url" "expired\|not valid"
start_ingress debug --debug-mode && start_relay relay_debug "unix:$work/debug.sock"
zero=$(printf '0%.0s' $(seq 1 96))
printf 'roots = ["%s"]\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$zero" >"$work/debug.toml"
refuse "debug enclave without allow_debug" "$work/debug.toml" "$relay_debug_url" "debug"
printf 'roots = ["%s"]\nallow_debug = true\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$zero" >"$work/debug_ok.toml"
expect 0 "debug enclave with allow_debug" -- "$enclavia" connect "$relay_debug_url" --trust "$work/debug_ok.toml" --attestation-only
start_ingress wrongkey --misbehave wrong-public-key && start_relay relay_wrongkey "unix:$work/wrongkey.sock"
refuse "public_key is not the static key" "$work/trust.toml" "$relay_wrongkey_url" "public_key"
start_ingress replay --misbehave replay-fresh && start_relay relay_replay "unix:$work/replay.sock"
expect 0 "first fresh session" -- "$enclavia" connect "$relay_replay_url" --trust "$work/fresh.toml" --attestation-only
refuse "fresh document replayed from another session" "$work/fresh.toml" "$relay_replay_url" "nonce"

# --- a hostile host between relay and enclave.
# tamper NAME ACTION...: relay → tamper pipe → enclave; a client session must fail cleanly and
# deliver nothing. Two writes, so a dropped or swapped record is followed by another.
tamper() {
  local name=$1; shift
  "$bin/enclavia-tamper-pipe" --listen "unix:$work/t_$name.sock" --upstream "unix:$work/enclave.sock" \
    "$@" >"$work/t_$name.log" 2>&1 & pids+=($!)
  wait_line "$work/t_$name.log" 'listening on' >/dev/null || return 1
  start_relay "r_$name" "unix:$work/t_$name.sock" || return 1
  local url_var="r_${name}_url" before
  before=$(grep -c accept "$work/echo.log" 2>/dev/null || true)
  (printf 'first'; sleep 0.3; printf 'second'; sleep 0.3) | timeout 20 "$enclavia" connect "${!url_var}" \
    --trust "$work/trust.toml" --port "$echo_port" >"$work/out" 2>"$work/err"
  local code=$?
  check "tamper $name: client fails (exit $code)" test "$code" -eq 1
  check "tamper $name: one-line error" one_line
  check "tamper $name: host acted" grep -q '^tamper:' "$work/t_$name.log"
  check "tamper $name: nothing delivered" test "$(grep -c accept "$work/echo.log" 2>/dev/null || true)" = "$before"
}
tamper flip_msg1 --flip up:0:5
tamper flip_msg2 --flip down:0:40
tamper flip_msg3 --flip up:1:10
tamper flip_data --flip up:2:3
tamper drop_data --drop up:2
tamper swap_data --swap up:2
tamper truncate_msg2 --truncate down:0:50
tamper truncate_data --truncate up:2:20
tamper cut_msg2 --cut down:0

# A flipped reply after the request got through: the client refuses the altered bytes.
"$bin/enclavia-tamper-pipe" --listen "unix:$work/t_down.sock" --upstream "unix:$work/enclave.sock" \
  --flip down:1:4 >"$work/t_down.log" 2>&1 & pids+=($!)
wait_line "$work/t_down.log" 'listening on' >/dev/null
start_relay r_down "unix:$work/t_down.sock"
expect 1 "tampered reply" -- timeout 20 "$enclavia" connect "$r_down_url" --trust "$work/trust.toml" --port "$app_port" <"$work/req"
check "tampered reply: authentication failure named" err_has "authentication"
check "tampered reply: no altered byte printed" test ! -s "$work/out"

# Replay: record a genuine session, then replay its records toward the enclave.
"$bin/enclavia-tamper-pipe" --listen "unix:$work/t_rec.sock" --upstream "unix:$work/enclave.sock" \
  --record "$work/session.rec" >"$work/t_rec.log" 2>&1 & pids+=($!)
wait_line "$work/t_rec.log" 'listening on' >/dev/null
start_relay r_rec "unix:$work/t_rec.sock"
expect 0 "recorded session" -- "$enclavia" connect "$r_rec_url" --trust "$work/trust.toml" --port "$echo_port" <"$work/req"
check "recorded session was echoed" cmp -s "$work/req" "$work/out"
before=$(grep -c accept "$work/echo.log")
"$bin/enclavia-tamper-pipe" --listen "unix:$work/t_rep.sock" --upstream "unix:$work/enclave.sock" \
  --replay "$work/session.rec" >"$work/t_rep.log" 2>&1 & pids+=($!)
wait_line "$work/t_rep.log" 'listening on' >/dev/null
start_relay r_rep "unix:$work/t_rep.sock"
timeout 20 "$enclavia" connect "$r_rep_url" --trust "$work/trust.toml" --port "$echo_port" <"$work/req" >/dev/null 2>&1
check "replay ran" wait_line "$work/t_rep.log" '^replay: sent'
check "replay: enclave closed the session" grep -q '^replay: .*upstream closed' "$work/t_rep.log"
check "replay: nothing delivered" test "$(grep -c accept "$work/echo.log")" = "$before"

finish
