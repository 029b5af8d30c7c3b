#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# channel.sh BUILD_DIR [MIB] [RUNS]: the attested channel against baselines in the same run.
#  1. Bulk throughput, MIB MiB (default 1024) each way: client → enclavia proxy → relay →
#     ingress → app, against the same three hops as plain TCP relays (socat), no encryption.
#  2. HTTP requests/s with wrk (keep-alive) through enclavia proxy, against wrk straight to the
#     app (nginx).
#  3. Enclave-side handshakes/s per core with the cached attestation, against the X25519 + AEAD
#     floor (enclavia_channel_bench).
# Runs alternate between the two sides of each comparison; the table gives medians and ratios.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
mib=${2:-1024}
runs=${3:-5}
bin=$build/bin
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}" $(cat "$work"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx socat wrk; do
  command -v "$tool" >/dev/null || { echo "channel.sh: $tool missing (scripts/install-deps)"; exit 1; }
done
# shellcheck source=/dev/null
source "$here/../tests/tools/processes.sh"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The apps: nginx (HTTP) and the bulk server.
app_port=$(free_port)
bulk_port=$(free_port)
mkdir -p "$work/www" "$work/nginx/tmp"
echo "hello through the channel" >"$work/www/index.html"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
error_log $work/nginx/error.log; pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$app_port; root $work/www; }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
"$bin/enclavia_bulk" server "$bulk_port" >"$work/bulk.out" & pids+=($!)
wait_line "$work/bulk.out" listening >/dev/null

# The enclavia path.
pcr0=$(printf 'bench' | sha384sum | cut -d' ' -f1)
"$bin/enclavia-local-ingress" --listen "unix:$work/enclave.sock" --port "$app_port" --port "$bulk_port" \
  --simulator-state "$work/sim" --pcr "0=$pcr0" >"$work/ingress.log" 2>&1 & pids+=($!)
wait_line "$work/ingress.log" 'listening on' >/dev/null
"$bin/enclavia-relay" --listen tcp:127.0.0.1:0 --enclave "unix:$work/enclave.sock" >"$work/relay.log" 2>&1 & pids+=($!)
relay_port=$(wait_line "$work/relay.log" 'listening on tcp:' | listening_port)
printf 'roots = ["%s"]\n[[accept]]\nPCR0 = "%s"\n' "$work/sim/root.pem" "$pcr0" >"$work/trust.toml"
start_proxy() {  # start_proxy NAME APP_PORT → prints the proxy's port
  "$bin/enclavia" proxy --listen tcp:127.0.0.1:0 --enclave "ws://127.0.0.1:$relay_port/" \
    --trust "$work/trust.toml" --port "$2" >"$work/$1.out" 2>"$work/$1.err" &
  echo $! >"$work/$1.pid"  # A command substitution's pids+=() would not reach cleanup.
  wait_line "$work/$1.out" 'listening on' | listening_port
}
proxy_http=$(start_proxy proxy_http "$app_port")
proxy_bulk=$(start_proxy proxy_bulk "$bulk_port")

# The baseline path: the same three hops as plain TCP relays.
hop3=$(free_port); hop2=$(free_port); hop1=$(free_port)
socat -b 65536 "TCP-LISTEN:$hop3,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$bulk_port" & pids+=($!)
socat -b 65536 "TCP-LISTEN:$hop2,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$hop3" & pids+=($!)
socat -b 65536 "TCP-LISTEN:$hop1,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$hop2" & pids+=($!)
sleep 0.3

bytes=$((mib << 20))
echo "== bulk: $mib MiB each way, $runs alternating runs =="
for i in $(seq 1 "$runs"); do
  for dir in d u; do
    "$bin/enclavia_bulk" client "127.0.0.1:$hop1" "$dir" "$bytes" | awk '{print $1}' >>"$work/plain_$dir"
    "$bin/enclavia_bulk" client "127.0.0.1:$proxy_bulk" "$dir" "$bytes" | awk '{print $1}' >>"$work/chan_$dir"
  done
done

echo "== HTTP: wrk keep-alive, 64 connections, 2 threads, $runs alternating 5 s runs =="
# Warm the channel and nginx first.
wrk -t 2 -c 64 -d 1s "http://127.0.0.1:$proxy_http/" >/dev/null
for i in $(seq 1 "$runs"); do
  wrk -t 2 -c 64 -d 5s "http://127.0.0.1:$app_port/" | awk '/Requests\/sec/ {print $2}' >>"$work/rps_direct"
  wrk -t 2 -c 64 -d 5s "http://127.0.0.1:$proxy_http/" | awk '/Requests\/sec/ {print $2}' >>"$work/rps_proxy"
done
errors=$(wrk -t 2 -c 64 -d 2s "http://127.0.0.1:$proxy_http/" | grep -E 'Non-2xx|Socket errors' || true)

echo "== handshakes: enclave side, cached attestation =="
"$bin/enclavia_channel_bench" --benchmark_repetitions="$runs" --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_format=json >"$work/hs.json" 2>/dev/null

python3 - "$work" "$mib" <<'EOF'
import json, statistics, sys
work, mib = sys.argv[1], int(sys.argv[2])
def med(name):
    return statistics.median(float(x) for x in open(f"{work}/{name}").read().split())
print()
print("| measurement | enclavia | baseline | ratio | goal |")
print("|---|---|---|---|---|")
for d, label in (("d", "download"), ("u", "upload")):
    chan, plain = med(f"chan_{d}"), med(f"plain_{d}")
    print(f"| bulk {label}, {mib} MiB (MiB/s) | {mib/chan:.0f} | {mib/plain:.0f} (3 socat hops) | "
          f"**{plain/chan:.2f}** | >= 0.8 |")
rp, rd = med("rps_proxy"), med("rps_direct")
print(f"| HTTP requests/s (wrk, keep-alive) | {rp:.0f} | {rd:.0f} (direct to nginx) | **{rp/rd:.2f}** | >= 0.5 |")
bench = {b["name"]: b for b in json.load(open(f"{work}/hs.json"))["benchmarks"]}
def t(name, key):
    return bench[name + "_median"][key]
# The handshake times only the enclave's steps (manual wall time); the floor is pure CPU.
cached = t("BM_EnclaveHandshake/fresh:0/manual_time", "real_time")
fresh = t("BM_EnclaveHandshake/fresh:1/manual_time", "real_time")
floor = t("BM_Floor", "cpu_time")
print(f"| enclave handshakes/s per core, cached document | {1e6/cached:.0f} | {1e6/floor:.0f} (X25519 + AEAD floor) | "
      f"**{floor/cached:.2f}** of the floor | >= 5000/s |")
print(f"| enclave handshakes/s per core, fresh document (NSM simulator signs each) | {1e6/fresh:.0f} | | | |")
EOF
[ -z "$errors" ] || echo "wrk through the proxy reported: $errors"
